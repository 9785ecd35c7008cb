"""Reading recommendations: a customer's next-best categories with labels and the reason
in the reader's language. Written by `profiles.services.recommendations`."""
import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from .event_labels import EventLabels
from .models import CategorySimilarity, Event, Profile, Recommendation, RecommendationReason

TOP_N = 10
POPULAR = "popular"  # a reason code of read-time fill-ups only (not stored)

REASONS = {
    RecommendationReason.VIEWED: lambda c: gettext("Because you viewed %(category)s") % {"category": c},
    RecommendationReason.CARTED: lambda c: gettext("Because you added %(category)s to your cart") % {"category": c},
    RecommendationReason.BOUGHT: lambda c: gettext("Because you bought %(category)s") % {"category": c},
    RecommendationReason.INTEREST: lambda c: gettext("Because you are interested in %(category)s") % {"category": c},
    POPULAR: lambda c: gettext("Popular with our customers"),
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


def popular_categories() -> list[str]:
    """The categories most customers engaged with (views, carts, orders) at the last
    similarity computation, most popular first."""
    return list(CategorySimilarity.objects.filter(source=F("target")).order_by("-score", "source")
                .values_list("source", flat=True)[:TOP_N])


def profile_recommendations(profile: Profile | int, *, labels: EventLabels | None = None,
                            fill: bool = True) -> list[RecommendedCategory]:
    """The stored list, best first; with `fill`, a list shorter than 10 is filled up with
    the popular categories the customer did not order in the recently-bought window
    (reason "popular"), so that a customer with little history still gets offers."""
    profile_id = getattr(profile, "pk", profile)
    rows = list(Recommendation.objects.filter(profile_id=profile_id).order_by("rank"))
    computed_at = rows[0].computed_at if rows else None
    fills = []
    if fill and len(rows) < TOP_N:
        since = timezone.now() - datetime.timedelta(days=settings.CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS)
        taken = {row.category for row in rows} | set(
            Event.objects.filter(profile_id=profile_id, name="order", occurred_at__gte=since, category__isnull=False)
            .values_list("category", flat=True))
        fills = [c for c in popular_categories() if c not in taken][:TOP_N - len(rows)]
    if (rows or fills) and labels is None:
        labels = EventLabels.load()
    result = []
    for row in rows:
        label = labels.value("category", row.category)
        because = labels.value("category", row.reason_category) if row.reason_category else label
        reason = REASONS.get(row.reason_code, lambda c: "")(because)
        result.append(RecommendedCategory(row.rank, row.category, label, row.score, row.reason_code,
                                          row.reason_category, reason, row.computed_at))
    for rank, category in enumerate(fills, len(rows) + 1):
        result.append(RecommendedCategory(rank, category, labels.value("category", category), 0.0, POPULAR, "",
                                          REASONS[POPULAR](""), computed_at or timezone.now()))
    return result


def top_recommended_label(profile_id: int) -> str:
    """The label of a customer's best recommended category ('' when none): the campaign token."""
    category = Recommendation.objects.filter(profile_id=profile_id, rank=1).values_list("category", flat=True).first()
    return EventLabels.load().value("category", category) if category else ""
