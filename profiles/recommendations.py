"""Reading recommendations: a customer's next-best categories with labels and the reason
in the reader's language. Written by `profiles.services.recommendations`."""
from dataclasses import dataclass

from django.utils.translation import gettext

from .event_labels import EventLabels
from .models import Profile, Recommendation, RecommendationReason

REASONS = {
    RecommendationReason.VIEWED: lambda c: gettext("Because you viewed %(category)s") % {"category": c},
    RecommendationReason.CARTED: lambda c: gettext("Because you added %(category)s to your cart") % {"category": c},
    RecommendationReason.BOUGHT: lambda c: gettext("Because you bought %(category)s") % {"category": c},
    RecommendationReason.INTEREST: lambda c: gettext("Because you are interested in %(category)s") % {"category": c},
}


@dataclass(frozen=True)
class RecommendedCategory:
    rank: int
    category: str
    label: str
    score: float
    reason_code: str
    reason_category: str
    reason: str
    computed_at: object


def profile_recommendations(profile: Profile | int, *, labels: EventLabels | None = None) -> list[RecommendedCategory]:
    """The stored list, best first ([] before the first computation)."""
    rows = list(Recommendation.objects.filter(profile_id=getattr(profile, "pk", profile)).order_by("rank"))
    if rows and labels is None:
        labels = EventLabels.load()
    result = []
    for row in rows:
        label = labels.value("category", row.category)
        because = labels.value("category", row.reason_category) if row.reason_category else label
        reason = REASONS.get(row.reason_code, lambda c: "")(because)
        result.append(RecommendedCategory(row.rank, row.category, label, row.score, row.reason_code,
                                          row.reason_category, reason, row.computed_at))
    return result


def top_recommended_label(profile_id: int) -> str:
    """The label of a customer's best recommended category ('' when none): the campaign token."""
    category = Recommendation.objects.filter(profile_id=profile_id, rank=1).values_list("category", flat=True).first()
    return EventLabels.load().value("category", category) if category else ""
