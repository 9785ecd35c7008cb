"""Tag benchmarks: bulk tagging half a million customers, a full interest recompute."""
import time

from common import Row, at_most
from django.db.models import Q

from cdp.actors import Actor
from profiles.models import (
    InterestMapping,
    Profile,
    ProfileActivity,
    Tag,
    TagCategory,
    TagKind,
)
from profiles.services.interests import interests_recompute
from profiles.services.tags import tag_assign, tag_remove

BENCH_PREFIX = "bench-"
INTERESTS = {  # tag slug → (name, property values)
    "bench-sneakers": ("喜欢运动鞋", ["sneakers"]),
    "bench-lipstick": ("口红达人", ["lipstick"]),
    "bench-japan": ("日本旅行", ["japan_travel"]),
}


def cleanup() -> None:
    """Leave the dataset as generate_demo made it, so that --reuse stays comparable."""
    tags = Tag.objects.filter(slug__startswith=BENCH_PREFIX)
    InterestMapping.objects.filter(tag__in=tags).delete()
    ProfileActivity.objects.filter(
        Q(type__in=["tag_added", "tag_removed"]) & Q(params__tag__startswith=BENCH_PREFIX)
    ).delete()
    tags.delete()


def bench_tag_assign(ctx):
    cleanup()
    tag = Tag.objects.create(name="压测标签", slug=f"{BENCH_PREFIX}bulk", category=TagCategory.objects.get(code="value"))
    women = Profile.objects.filter(gender="female")
    started = time.perf_counter()
    added = tag_assign(tag=tag, profiles=women, source="manual", actor=Actor.system("bench"))
    assign_seconds = time.perf_counter() - started
    started = time.perf_counter()
    tag_remove(tag=tag, profiles=women, source="manual", actor=Actor.system("bench"))
    remove_seconds = time.perf_counter() - started
    cleanup()
    # The target is for 500,000 customers; scale it for smaller datasets.
    limit = 10 * max(added, 1) / 500_000
    return [
        Row("tag_assign customers", added, "rows"),
        at_most("tag_assign (filter: gender = female)", assign_seconds, "s", limit),
        Row("tag_assign rate", added / assign_seconds, "customers/s"),
        Row("tag_remove same customers", remove_seconds, "s"),
    ]


def bench_interest_recompute(ctx):
    cleanup()
    category = TagCategory.objects.get(code="interest")
    for slug, (name, values) in INTERESTS.items():
        tag = Tag.objects.create(name=f"{name}（压测）", slug=slug, category=category, kind=TagKind.INTEREST)
        InterestMapping.objects.create(
            tag=tag, event_weights={"product_view": 1, "add_to_cart": 2, "order": 3},
            property_name="category", property_values=values, half_life_days=30, saturation=3, threshold=0.3,
        )
    mappings = list(InterestMapping.objects.filter(tag__slug__in=INTERESTS).select_related("tag"))
    started = time.perf_counter()
    first = interests_recompute(mappings=mappings)
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    interests_recompute(mappings=mappings)  # the nightly case: most customers keep their tags
    again_seconds = time.perf_counter() - started
    cleanup()
    gained = sum(result["gained"] for result in first.values())
    scale = max(ctx.dataset["stats"]["events"] / 10_000_000, 0.01)
    return [
        Row("interest customers tagged (3 mappings)", gained, "rows"),
        at_most("interest recompute, first run (3 mappings)", first_seconds, "s", 60 * scale),
        at_most("interest recompute, nightly re-run", again_seconds, "s", 60 * scale),
    ]
