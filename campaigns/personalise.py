"""The token values of each customer of a batch, read in a fixed number of queries."""
from django.conf import settings
from django.utils import translation

from profiles.models import Profile, ProfileTag, TagKind
from segments.analytics.rfm import GROUPS, group_of

from .links import click_url, unsubscribe_url

GROUP_LABELS = {code: label for code, label, _cells in GROUPS}


def _tier(profile: Profile) -> str:
    if profile.rfm_recency and profile.rfm_frequency:
        return str(GROUP_LABELS[group_of(profile.rfm_recency, profile.rfm_frequency)])
    return profile.get_lifecycle_stage_display() if profile.lifecycle_stage else ""


def tokens_for(deliveries) -> dict[int, dict[str, str]]:
    """Delivery id → token values, in the messages' language (settings.LANGUAGE_CODE).
    `deliveries` carry `profile_id`, `pk` and, where the variant hands out coupons,
    a prefetched coupon code in `coupon_code`."""
    profile_ids = {d.profile_id for d in deliveries}
    profiles = Profile.objects.in_bulk(profile_ids)
    interests = {}
    for profile_id, name in (ProfileTag.objects.filter(profile_id__in=profile_ids, tag__kind=TagKind.INTEREST)
                             .order_by("profile_id", "-weight", "tag__name").values_list("profile_id", "tag__name")):
        interests.setdefault(profile_id, name)
    values = {}
    with translation.override(settings.LANGUAGE_CODE):
        for delivery in deliveries:
            profile = profiles.get(delivery.profile_id)
            if profile is None:
                continue
            values[delivery.pk] = {
                "name": profile.name or settings.CAMPAIGN_NAME_FALLBACK,
                "city": profile.city,
                "tier": _tier(profile),
                "top_interest": interests.get(profile.pk, ""),
                "coupon": getattr(delivery, "coupon_code", "") or "",
                "link": click_url(delivery.pk) if delivery.variant and delivery.variant.link_url else "",
                "unsubscribe": unsubscribe_url(delivery.pk),
            }
    return values
