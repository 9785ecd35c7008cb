import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import connections
from django.utils.text import slugify
from django.utils.translation import gettext as _


def login_file_for(database: dict) -> Path:
    """Where the login of the admin account in `database` is kept: var/admin-login.txt for
    the laptop's SQLite database, a file named after the database for any other, so that
    running against a second database never overwrites the first one's login."""
    name = str(database.get("NAME") or "")
    sqlite = database["ENGINE"].endswith("sqlite3")
    if sqlite and name and Path(name).resolve() == (settings.VAR_DIR / "db.sqlite3").resolve():
        return settings.VAR_DIR / "admin-login.txt"
    parts = (database["ENGINE"].rsplit(".", 1)[-1], database.get("HOST"), database.get("PORT"),
             Path(name).name if sqlite else name)
    return settings.VAR_DIR / f"admin-login-{slugify('-'.join(str(p) for p in parts if p))[:80]}.txt"


class Command(BaseCommand):
    help = _("Create the local admin account once (password kept in var/admin-login.txt) and print the login.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--database", default="default")

    def handle(self, *args, username, database, **options):
        login_file = login_file_for(connections[database].settings_dict)
        User = get_user_model()
        user = User.objects.using(database).filter(username=username).first()
        if user is None or not login_file.exists():
            password = secrets.token_urlsafe(12)
            user = user or User(username=username, is_staff=True, is_superuser=True)
            user.set_password(password)
            user.save(using=database)
            login_file.write_text(f"{username}\n{password}\n", encoding="utf-8")
            login_file.chmod(0o600)
        username, password = login_file.read_text(encoding="utf-8").split()[:2]
        self.stdout.write(self.style.SUCCESS(
            _("Admin login: %(username)s / %(password)s  →  http://127.0.0.1:8000/admin/")
            % {"username": username, "password": password}
        ))
