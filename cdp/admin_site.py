from django.contrib import admin
from django.utils.translation import gettext_lazy as _


class CdpAdminSite(admin.AdminSite):
    site_header = _("Customer Data Platform")
    site_title = _("CDP back office")
    index_title = _("Overview")
    site_url = None  # the admin is the whole product
