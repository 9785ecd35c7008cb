"""Recommendation benchmarks: the nightly run for every customer, one customer on demand,
and an offline evaluation against a "most popular categories" baseline.

Evaluation: each customer's last order is held out; their earlier views, carts and orders
are copied to a table of our own with times shifted so that the held-out order is "now"
(recency and the recently-bought exclusion then read as they would have that day); the
similarity is learnt from those histories only; the list is scored at 1, 3 and 10 against
the held-out category, beside the categories ordered most often before (same histories).
The bench's own tables are dropped afterwards, so --reuse keeps the dataset as built."""
import datetime
import math
import random
import statistics
import time

from common import Row, at_most
from django.conf import settings
from django.db import connection
from django.utils import timezone

from profiles.models import Profile
from profiles.services.recommendations import (
    recommendations_compute,
    recommendations_refresh_all,
    recommendations_refresh_one,
    similarity_recompute,
)

EVENTS, HELD, SIM, OUT = "bench_rec_events", "bench_rec_holdout", "bench_rec_similarity", "bench_rec_out"
NIGHTLY_TARGET_S, ONE_TARGET_MS, LIFT_TARGET = 600, 200, 1.3
KS = (1, 3, 10)


def _drop(cursor):
    for table in (EVENTS, HELD, SIM, OUT):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


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
        at_most("recommendations nightly (similarity + every customer)", seconds, "s", NIGHTLY_TARGET_S),
        at_most("recommendations one customer on demand (median)", statistics.median(timings), "ms", ONE_TARGET_MS),
        Row("recommendations one customer on demand (max)", max(timings), "ms"),
    ]


def bench_recommendations_evaluation(ctx):
    # As asked: everything before the held-out order — which includes the views and carts of
    # the same visit. Then a stricter variant: only what happened a day or more before it.
    return _evaluation("") + _evaluation(" (history to the day before)", gap_days=1)


def _evaluation(label: str, gap_days: int = 0):
    weights = settings.CDP_RECOMMENDATION_EVENT_WEIGHTS
    names = ", ".join(f"'{n}'" for n in weights)
    now = timezone.now()
    with connection.cursor() as cursor:
        _drop(cursor)
        cursor.execute(f"""
            CREATE TABLE {HELD} AS
            SELECT DISTINCT ON (profile_id) profile_id, category, occurred_at AS cutoff, id
            FROM profiles_event WHERE name = 'order' AND category IS NOT NULL
            ORDER BY profile_id, occurred_at DESC, id DESC""")
        cursor.execute(f"CREATE UNIQUE INDEX ON {HELD} (profile_id)")
        cursor.execute(f"""
            CREATE TABLE {EVENTS} AS
            SELECT e.profile_id, e.name, e.category, e.occurred_at + (%s - h.cutoff) AS occurred_at
            FROM profiles_event e JOIN {HELD} h ON h.profile_id = e.profile_id
            WHERE e.name IN ({names}) AND e.category IS NOT NULL
              AND (e.occurred_at < h.cutoff - make_interval(days => %s)
                   OR (%s = 0 AND e.occurred_at = h.cutoff AND e.id < h.id))""", [now, gap_days, gap_days])
        cursor.execute(f"CREATE INDEX ON {EVENTS} (profile_id)")
        cursor.execute(f"CREATE TABLE {SIM} (LIKE profiles_categorysimilarity INCLUDING ALL)")
        cursor.execute(f"CREATE TABLE {OUT} (LIKE profiles_recommendation INCLUDING ALL)")
        cursor.execute(f"ANALYZE {HELD}; ANALYZE {EVENTS}")
        cursor.execute(f"SELECT COUNT(*) FROM {HELD}")
        held = cursor.fetchone()[0]
    started = time.perf_counter()
    similarity_recompute(now=now, events_table=EVENTS, table=SIM)
    recommendations_compute(now=now, events_table=EVENTS, table=OUT, similarity_table=SIM)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        # Ours: the rank of the held-out category in the customer's list.
        cursor.execute(f"""
            SELECT o.rank FROM {HELD} h JOIN {OUT} o ON o.profile_id = h.profile_id AND o.category = h.category""")
        ours = [r for (r,) in cursor.fetchall()]
        # As read (profiles.recommendations): a list shorter than 10 filled up with the popular
        # categories (the similarity's own popularity) not ordered in the recently-bought window.
        cursor.execute(f"SELECT source FROM {SIM} WHERE source = target ORDER BY score DESC, source")
        engaged = [c for (c,) in cursor.fetchall()][:10]
        cursor.execute(f"SELECT profile_id, category FROM {HELD}")
        held_rows = cursor.fetchall()
        cursor.execute(f"SELECT profile_id, category FROM {OUT}")
        listed, counts, own = {}, {}, set()
        for pid, c in cursor.fetchall():
            listed.setdefault(pid, set()).add(c)
            counts[pid] = counts.get(pid, 0) + 1
            own.add((pid, c))
        cursor.execute(f"SELECT DISTINCT profile_id, category FROM {EVENTS} WHERE name = 'order' AND occurred_at >= %s",
                       [now - datetime.timedelta(days=settings.CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS)])
        for pid, c in cursor.fetchall():
            listed.setdefault(pid, set()).add(c)
        filled = list(ours)
        for pid, category in held_rows:
            if (pid, category) not in own and category not in listed.get(pid, ()):
                fills = [c for c in engaged if c not in listed.get(pid, ())]
                if category in fills:
                    filled.append(counts.get(pid, 0) + 1 + fills.index(category))
        # Baseline: categories by orders before the cutoffs, the same list for everyone.
        cursor.execute(f"""
            SELECT category FROM {EVENTS} WHERE name = 'order' GROUP BY category ORDER BY COUNT(*) DESC, category""")
        popular = [c for (c,) in cursor.fetchall()][:10]
        cursor.execute(f"SELECT category, COUNT(*) FROM {HELD} GROUP BY category")
        held_by_category = dict(cursor.fetchall())
        cursor.execute(f"SELECT COUNT(DISTINCT profile_id) FROM {EVENTS}")
        with_history = cursor.fetchone()[0]
        _drop(cursor)
    base = [rank for rank, c in enumerate(popular, 1) for _ in range(held_by_category.get(c, 0))]

    def hit(ranks, k):
        return sum(1 for r in ranks if r <= k) / held

    def ndcg(ranks):
        return sum(1 / math.log2(r + 1) for r in ranks if r <= 10) / held

    rows = [Row(f"recommendations eval{label} customers (held-out last order)", held, "customers"),
            Row(f"recommendations eval{label} customers with history before it", with_history, "customers"),
            Row(f"recommendations eval{label} categories", len(held_by_category), "categories"),
            Row(f"recommendations eval{label} compute", seconds, "s")]
    for k in KS:
        rows.append(Row(f"recommendations hit rate@{k} ours{label}", hit(ours, k), ""))
        rows.append(Row(f"recommendations hit rate@{k} ours + popular fill{label}", hit(filled, k), ""))
        rows.append(Row(f"recommendations hit rate@{k} popular{label}", hit(base, k), ""))
    rows.append(Row(f"recommendations NDCG@10 ours{label}", ndcg(ours), ""))
    rows.append(Row(f"recommendations NDCG@10 ours + popular fill{label}", ndcg(filled), ""))
    rows.append(Row(f"recommendations NDCG@10 popular{label}", ndcg(base), ""))
    base10 = hit(base, 10)
    # The target. With fewer than 10 categories in the data (8 in the demo) the
    # popular list holds every category, so its hit rate@10 is 1 and no recommender can
    # reach 1.3×; the rows @1 and @3 above show the difference that remains measurable.
    ratio = hit(filled, 10) / base10 if base10 else 0
    rows.append(Row(f"recommendations hit rate@10 ours + fill / popular{label}", ratio, "×", f">= {LIFT_TARGET}", ratio >= LIFT_TARGET))
    for k in (1, 3):
        base_k = hit(base, k)
        rows.append(Row(f"recommendations hit rate@{k} ours + fill / popular{label} (information)",
                        hit(filled, k) / base_k if base_k else 0, "×"))
    return rows
