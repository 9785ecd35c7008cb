from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class CdpConfig(AppConfig):
    name = "cdp"
    verbose_name = _("Platform")

    def ready(self):
        from django.db.models.signals import post_migrate

        from .logs import install as keep_personal_data_out_of_logs
        from .roles import roles_seed

        keep_personal_data_out_of_logs()  # phones and emails in searched addresses

        # After every app's permissions exist (post_migrate runs per app; the last
        # run sees them all, and seeding is idempotent).
        post_migrate.connect(roles_seed, dispatch_uid="cdp.roles_seed")


class CdpAdminConfig(AdminConfig):
    default_site = "cdp.admin_site.CdpAdminSite"
