"""Reading recommendations: a customer's next-best products (or categories, where their
events name no product) with labels and the reason in the reader's language. Written by
`profiles.services.recommendations`.

A product's label is its name where the event definitions label the `product_id` values
(the demo's catalogue does), else its id."""
import datetime
import math
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from .event_labels import EventLabels
from .models import (
    CategorySimilarity,
    Event,
    ProductSimilarity,
    Profile,
    Recommendation,
    RecommendationReason,
)

TOP_N = 10
POPULAR = "popular"  # a reason code of read-time fill-ups only (not stored)

REASONS = {
    RecommendationReason.VIEWED: lambda item: gettext("Because you viewed %(category)s") % {"category": item},
    RecommendationReason.CARTED: lambda item: gettext("Because you added %(category)s to your cart") % {"category": item},
    RecommendationReason.BOUGHT: lambda item: gettext("Because you bought %(category)s") % {"category": item},
    RecommendationReason.INTEREST: lambda item: gettext("Because you are interested in %(category)s") % {"category": item},
}


def _popular_reason(product: bool) -> str:
    return gettext("Popular product") if product else gettext("Popular with our customers")


@dataclass(frozen=True)
class Recommended:
    """One recommended item: a product (product_id set; category is its category, when
    known) or a category (product_id empty)."""

    rank: int
    category: str
    label: str
    score: float
    reason_code: str
    reason_category: str
    reason: str
    computed_at: object
    product_id: str = ""
    category_label: str = ""
    reason_product: str = ""


RecommendedCategory = Recommended  # the name before products


# The popular lists fill short recommendation lists on every profile page; they change
# only when the similarity is computed again (which forgets them, popular_forget), so they
# are kept in Django's cache, with a time limit for a computation in another process when
# that cache is not shared.
POPULAR_CACHE_SECONDS, POPULAR_PRODUCTS_KEPT = 300, 200
POPULAR_CATEGORIES_KEY, POPULAR_PRODUCTS_KEY = "cdp-popular-categories", "cdp-popular-products"


def popular_categories() -> list[str]:
    """The categories most customers engaged with (views, carts, orders) at the last
    similarity computation, most popular first."""
    return cache.get_or_set(POPULAR_CATEGORIES_KEY, lambda: list(
        CategorySimilarity.objects.filter(source=F("target")).order_by("-score", "source")
        .values_list("source", flat=True)[:TOP_N]), POPULAR_CACHE_SECONDS)


def popular_products(limit: int = TOP_N) -> list[tuple[str, str]]:
    """(product id, category) of the products most customers engaged with at the last
    similarity computation, most popular first."""
    products = ProductSimilarity.objects.filter(source=F("target")).order_by("-score", "source")
    if limit > POPULAR_PRODUCTS_KEPT:
        return list(products.values_list("source", "target_category")[:limit])
    return cache.get_or_set(POPULAR_PRODUCTS_KEY, lambda: list(
        products.values_list("source", "target_category")[:POPULAR_PRODUCTS_KEPT]), POPULAR_CACHE_SECONDS)[:limit]


def popular_forget() -> None:
    """The similarity was computed again: read the popular lists anew."""
    cache.delete_many([POPULAR_CATEGORIES_KEY, POPULAR_PRODUCTS_KEY])


def _label(labels: EventLabels, product_id: str, category: str) -> str:
    if product_id:
        return labels.value("product_id", product_id)
    return labels.value("category", category)


def profile_recommendations(profile: Profile | int, *, labels: EventLabels | None = None,
                            fill: bool = True) -> list[Recommended]:
    """The stored list, best first; with `fill`, a list shorter than 10 is filled up with
    what is popular — products, or categories where the list (or the shop's data) has no
    products — that the customer did not order in the recently-bought window (reason
    "popular"), so that a customer with little history still gets offers."""
    profile_id = getattr(profile, "pk", profile)
    rows = list(Recommendation.objects.filter(profile_id=profile_id).order_by("rank"))
    computed_at = rows[0].computed_at if rows else None
    fills = []
    if fill and len(rows) < TOP_N:
        since = timezone.now() - datetime.timedelta(days=settings.CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS)
        bought = list(Event.objects.filter(profile_id=profile_id, name="order", occurred_at__gte=since)
                      .values_list("category", "properties__product_id"))
        by_category = rows and not rows[0].product_id
        # The kept (cached) head of the popular list; read further only when the customer
        # has bought so many of those that too few are left.
        popular = [] if by_category else popular_products(POPULAR_PRODUCTS_KEPT)
        if popular:
            taken = {row.product_id for row in rows} | {str(p) for _c, p in bought if p is not None}
            fills = [(p, c) for p, c in popular if p not in taken][:TOP_N - len(rows)]
            if len(fills) < TOP_N - len(rows) and len(popular) == POPULAR_PRODUCTS_KEPT:
                popular = popular_products(TOP_N + len(bought) + len(rows))
                fills = [(p, c) for p, c in popular if p not in taken][:TOP_N - len(rows)]
        else:
            taken = {row.category for row in rows} | {c for c, _p in bought if c is not None}
            fills = [("", c) for c in popular_categories() if c not in taken][:TOP_N - len(rows)]
    if (rows or fills) and labels is None:
        labels = EventLabels.load()
    result = []
    for row in rows:
        because = _label(labels, row.reason_product, row.reason_category) if (
            row.reason_product or row.reason_category) else _label(labels, row.product_id, row.category)
        reason = REASONS.get(row.reason_code, lambda c: "")(because)
        result.append(Recommended(
            row.rank, row.category, _label(labels, row.product_id, row.category), row.score, row.reason_code,
            row.reason_category, reason, row.computed_at, row.product_id,
            labels.value("category", row.category) if row.category else "", row.reason_product))
    for rank, (product_id, category) in enumerate(fills, len(rows) + 1):
        result.append(Recommended(
            rank, category, _label(labels, product_id, category), 0.0, POPULAR, "",
            _popular_reason(bool(product_id)), computed_at or timezone.now(), product_id,
            labels.value("category", category) if category else ""))
    return result


def top_recommended_labels(profile_ids, labels: EventLabels | None = None) -> dict[int, str]:
    """{customer id: the label of their best recommendation} for those with one."""
    top = list(Recommendation.objects.filter(profile_id__in=profile_ids, rank=1)
               .values_list("profile_id", "product_id", "category"))
    if not top:
        return {}
    labels = labels or EventLabels.load()
    return {profile_id: _label(labels, product_id, category) for profile_id, product_id, category in top}


def top_recommended_label(profile_id: int) -> str:
    """The label of a customer's best recommended product or category ('' when none): the
    campaign token."""
    return top_recommended_labels([profile_id]).get(profile_id, "")


# --- offline evaluation (bench/bench_recommendation_quality.py) ---------------------------

def hit_rate(ranks, customers: int, k: int = TOP_N) -> float:
    """Share of the `customers` whose held-out item is in their top k; `ranks` holds the
    1-based rank of the held-out item for each customer whose list contains it."""
    return sum(1 for r in ranks if r <= k) / customers if customers else 0.0


def ndcg(ranks, customers: int, k: int = TOP_N) -> float:
    """Normalised discounted cumulative gain at k with one relevant item per customer: the
    mean over `customers` of 1 / log2(rank + 1) when the held-out item is at rank ≤ k, else 0
    (the ideal list has it first, gain 1)."""
    return sum(1 / math.log2(r + 1) for r in ranks if r <= k) / customers if customers else 0.0
