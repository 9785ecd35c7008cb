from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from segments.conditions.campaigns import campaign_source_register

        from .buckets import register_sqlite_functions
        from .conditions import SOURCE

        register_sqlite_functions()
        # segments cannot import campaigns: its condition language asks through this source.
        campaign_source_register(SOURCE)
