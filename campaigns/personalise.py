"""The token values of each customer of a batch, read in a fixed number of queries."""
from django.conf import settings
from django.utils import translation

from profiles.models import LifecycleStage, Profile, ProfileTag, TagKind
from profiles.recommendations import top_recommended_labels
from segments.analytics.rfm import GROUPS, group_of

from .links import url_maker

GROUP_LABELS = {code: label for code, label, _cells in GROUPS}
STAGES = dict(LifecycleStage.choices)


def _tier(recency: int | None, frequency: int | None, stage: str) -> str:
    if recency and frequency:
        return str(GROUP_LABELS[group_of(recency, frequency)])
    return str(STAGES.get(stage, ""))


def tokens_for(deliveries) -> dict[int, dict[str, str]]:
    """Delivery id → token values, in the messages' language (settings.LANGUAGE_CODE).
    `deliveries` carry `profile_id`, `pk`, `variant` and, where the variant hands out
    coupons, the code in `coupon_code`. At most five queries, whatever the batch size."""
    profile_ids = {d.profile_id for d in deliveries}
    profiles = {row[0]: row[1:] for row in Profile.objects.filter(pk__in=profile_ids).values_list(
        "pk", "name", "city", "rfm_recency", "rfm_frequency", "lifecycle_stage")}
    interests = {}
    for profile_id, name in (ProfileTag.objects.filter(profile_id__in=profile_ids, tag__kind=TagKind.INTEREST)
                             .order_by("profile_id", "-weight", "tag__name").values_list("profile_id", "tag__name")):
        interests.setdefault(profile_id, name)
    click, unsubscribe = url_maker("r"), url_maker("u")
    values, tiers = {}, {}
    with translation.override(settings.LANGUAGE_CODE):
        recommended = top_recommended_labels(profile_ids)  # best product's (or category's) label
        for delivery in deliveries:
            if delivery.profile_id not in profiles:
                continue
            name, city, recency, frequency, stage = profiles[delivery.profile_id]
            if (recency, frequency, stage) not in tiers:  # translated once per batch
                tiers[recency, frequency, stage] = _tier(recency, frequency, stage)
            values[delivery.pk] = {
                "name": name or settings.CAMPAIGN_NAME_FALLBACK,
                "city": city,
                "tier": tiers[recency, frequency, stage],
                "top_interest": interests.get(delivery.profile_id, ""),
                "recommended": recommended.get(delivery.profile_id, ""),
                "coupon": getattr(delivery, "coupon_code", "") or "",
                "link": click(delivery.pk) if delivery.variant and delivery.variant.link_url else "",
                "unsubscribe": unsubscribe(delivery.pk),
            }
    return values
