from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = _("Segments")

    def ready(self):
        # profiles cannot import segments; it asks through these registries instead.
        from profiles.selectors import PROFILE_SECTIONS, TAG_USAGE_FINDERS

        from .rule_tags import rule_tags_using_tag
        from .selectors import profile_segments_section, segments_using_tag

        TAG_USAGE_FINDERS.append(segments_using_tag)
        TAG_USAGE_FINDERS.append(rule_tags_using_tag)
        PROFILE_SECTIONS.append(profile_segments_section)
