"""Recommendation benchmarks: the nightly run for every customer (both similarities, then
every list), one customer on demand, and the offline evaluation against the most popular
products (bench_recommendation_quality.py: each customer's last order held out)."""
import random
import statistics
import time

from common import Row, at_most

from profiles.models import Profile
from profiles.services.recommendations import (
    recommendations_refresh_all,
    recommendations_refresh_one,
)

NIGHTLY_TARGET_S, ONE_TARGET_MS = 600, 200


def bench_recommendations_nightly(ctx):
    started = time.perf_counter()
    result = recommendations_refresh_all()
    seconds = time.perf_counter() - started
    ids = list(Profile.objects.filter(recommendations__rank=1).values_list("pk", flat=True)[:5000])
    sample = random.Random(1).sample(ids, min(30, len(ids)))
    timings = []
    for pk in sample:
        t = time.perf_counter()
        recommendations_refresh_one(profile=Profile(pk=pk))
        timings.append((time.perf_counter() - t) * 1000)
    return [
        Row("recommendations nightly rows", result["rows"], "rows"),
        Row("recommendations nightly product similarity rows", result["product_pairs"], "rows"),
        at_most("recommendations nightly (similarity + every customer)", seconds, "s", NIGHTLY_TARGET_S),
        at_most("recommendations one customer on demand (median)", statistics.median(timings), "ms", ONE_TARGET_MS),
        Row("recommendations one customer on demand (max)", max(timings), "ms"),
    ]


def bench_recommendations_evaluation(ctx):
    """The offline evaluation (bench_recommendation_quality): hit rate and NDCG of the held-out
    last order's product against the most popular products."""
    from bench_recommendation_quality import bench_recommendation_quality

    return bench_recommendation_quality(ctx)
