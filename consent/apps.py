from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = _("Consent and privacy")

    def ready(self):
        # profiles cannot import consent; it asks through these registries instead.
        from profiles.importing.consent import consent_kind_register
        from profiles.selectors import PROFILE_SECTIONS
        from profiles.services.collect import consent_objectors_register
        from profiles.services.merge import MERGE_HOOKS, MergeHook

        from . import selectors, services
        from .models import ConsentRecord

        MERGE_HOOKS.append(MergeHook("consent", services.merge_move, services.merge_restore))
        PROFILE_SECTIONS.append(selectors.profile_consent_section)
        # Tracking sources that need consent drop the events of those who refused it.
        consent_objectors_register(selectors.objecting_profiles)
        # The consent import kind.
        consent_kind_register(record_many=services.consent_record_many,
                              entry=services.ConsentEntry, history=selectors.consent_history,
                              states=selectors.current_statuses,
                              recorded=selectors.recorded_entries,
                              records=lambda q: ConsentRecord.objects.filter(q))
