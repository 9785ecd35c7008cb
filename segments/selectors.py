"""Reads about segments, including what the lower apps ask through their registries."""
from django.urls import reverse
from django.utils.translation import gettext as _

from profiles.selectors import ProfileSection, TagUsage

from .models import Segment, SegmentMembership


def tag_slugs_in(definition) -> set[str]:
    """Every tag slug a definition names, at any depth."""
    found: set[str] = set()
    if isinstance(definition, dict):
        if isinstance(definition.get("tag"), str):
            found.add(definition["tag"])
        if isinstance(definition.get("tags"), list):
            found.update(t for t in definition["tags"] if isinstance(t, str))
        for value in definition.values():
            found |= tag_slugs_in(value)
    elif isinstance(definition, list):
        for item in definition:
            found |= tag_slugs_in(item)
    return found


def segments_using_tag(tag) -> list[TagUsage]:
    """For the tag's "where used" list (registered in profiles.selectors.TAG_USAGE_FINDERS)."""
    return [
        TagUsage(_("Segment"), segment.name, reverse("admin:segments_segment_change", args=[segment.pk]))
        for segment in Segment.objects.only("pk", "name", "definition")
        if tag.slug in tag_slugs_in(segment.definition)
    ]


def profile_segments_section(profile, request) -> ProfileSection:
    """The profile page's "segments" card: where the customer is a member, since when."""
    memberships = SegmentMembership.objects.filter(profile=profile).select_related("segment").order_by("-entered_at")
    return ProfileSection("admin/segments/profile_section.html",
                          {"memberships": list(memberships), "profile_uuid": str(profile.uuid)})
