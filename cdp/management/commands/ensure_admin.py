import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = _("Create the local admin account once (password kept in var/admin-login.txt) and print the login.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        login_file = settings.VAR_DIR / "admin-login.txt"
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None or not login_file.exists():
            password = secrets.token_urlsafe(12)
            user = user or User(username=username, is_staff=True, is_superuser=True)
            user.set_password(password)
            user.save()
            login_file.write_text(f"{username}\n{password}\n", encoding="utf-8")
            login_file.chmod(0o600)
        username, password = login_file.read_text(encoding="utf-8").split()[:2]
        self.stdout.write(self.style.SUCCESS(
            _("Admin login: %(username)s / %(password)s  →  http://127.0.0.1:8000/admin/")
            % {"username": username, "password": password}
        ))
