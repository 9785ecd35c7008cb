from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class CdpConfig(AppConfig):
    name = "cdp"
    verbose_name = _("Platform")


class CdpAdminConfig(AdminConfig):
    default_site = "cdp.admin_site.CdpAdminSite"
