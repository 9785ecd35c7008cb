from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = _("Customer data")

    def ready(self):
        from .retention import rollups_merge_move, rollups_merge_restore
        from .services.merge import MERGE_HOOKS, MergeHook

        # A merge moves the rollups of expired events with the events (profiles.retention).
        MERGE_HOOKS.append(MergeHook("event_rollups", rollups_merge_move, rollups_merge_restore))
