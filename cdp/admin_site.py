from django.contrib import admin
from django.utils.translation import gettext_lazy as _


class CdpAdminSite(admin.AdminSite):
    site_header = _("Customer Data Platform")
    site_title = _("CDP back office")
    index_title = _("Overview")
    site_url = None  # the admin is the whole product

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The apps' admin modules plug in here (cdp sits below them and imports none):
        # index providers give the dashboard (templates/admin/index.html) its context,
        # app sections add pages that are not models (behaviour analysis) to the app list.
        self.index_providers = []
        self.app_sections = []

    def index(self, request, extra_context=None):
        context = {}
        for provider in self.index_providers:
            context.update(provider(request))
        return super().index(request, {**context, **(extra_context or {})})

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label is None:
            app_list += [section for section in (add(request) for add in self.app_sections) if section]
        return app_list
