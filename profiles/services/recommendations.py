"""Next-best-category recommendations, set-based.

1. Item-to-item similarity (`similarity_recompute`): for each pair of categories a, b,
   cosine(a, b) = customers with both / √(customers with a · customers with b), counting
   the customers who viewed, carted or ordered in the category within the window
   (settings.CDP_RECOMMENDATION_WINDOW_DAYS). The row of a category with itself holds
   instead how many customers engaged with it: its popularity, which fills up short lists
   when they are read (profiles.recommendations).
2. Per customer (`recommendations_compute`), in one statement per range of customers:

       affinity(c)  = Σ over their events in c of  w(event) · 0.5 ^ (age in days / half-life)
       score(c')    = Σ_c affinity(c) · similarity(c, c')  +  Σ interest tag weights mapped to c'

   top 10 by score, leaving out categories they ordered in the last
   CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS days. The reason is the term that contributed
   most: the category behind it and whether they bought, carted or viewed it (or an
   interest tag of theirs maps to it).
"""
import datetime
import math

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ..models import CategorySimilarity, InterestMapping, Profile

TOP_N = 10
CHUNK = 200_000


def _age_days(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"(EXTRACT(EPOCH FROM (%s - {column})) / 86400.0)"
    return f"(julianday(%s) - julianday({column}))"


def _weights() -> dict[str, float]:
    return {name: float(w) for name, w in settings.CDP_RECOMMENDATION_EVENT_WEIGHTS.items()}


def _event_filter(weights) -> tuple[str, list]:
    return f"e.name IN ({', '.join(['%s'] * len(weights))}) AND e.category IS NOT NULL", list(weights)


def similarity_recompute(*, now: datetime.datetime | None = None, events_table: str = "profiles_event",
                         table: str = "profiles_categorysimilarity") -> int:
    """Recompute the category × category similarity from the window's events; returns the pairs."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=settings.CDP_RECOMMENDATION_WINDOW_DAYS)
    where, params = _event_filter(_weights())
    sql = f"""
        WITH uc AS (SELECT DISTINCT e.profile_id, e.category FROM {events_table} e
                    WHERE {where} AND e.occurred_at >= %s AND e.occurred_at <= %s)
        SELECT a.category, b.category, COUNT(*) FROM uc a JOIN uc b ON a.profile_id = b.profile_id
        GROUP BY a.category, b.category"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, since, now])
        pairs = cursor.fetchall()
    counts = {a: n for a, b, n in pairs if a == b}
    rows = [(a, b, float(n) if a == b else n / math.sqrt(counts[a] * counts[b]), now) for a, b, n in pairs]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.executemany(f"INSERT INTO {table} (source, target, score, computed_at) VALUES (%s, %s, %s, %s)", rows)
    return len(rows)


def _interest_values() -> tuple[str, list]:
    """(tag id, category) of the active interest mappings on the category property, as a
    VALUES list the statement joins (a handful of rows)."""
    pairs = [
        (m.tag_id, str(value))
        for m in InterestMapping.objects.filter(is_active=True, property_name="category")
        for value in m.property_values
    ]
    if not pairs:
        return "SELECT CAST(NULL AS BIGINT) AS tag_id, CAST(NULL AS VARCHAR(100)) AS category WHERE 1 = 0", []
    rows = " UNION ALL ".join(["SELECT CAST(%s AS BIGINT), CAST(%s AS VARCHAR(100))"] * len(pairs))
    return rows, [v for pair in pairs for v in pair]


def _statement(*, events_table: str, table: str, similarity_table: str) -> tuple[str, callable]:
    weights = _weights()
    where, names = _event_filter(weights)
    weight_case = "CASE e.name " + " ".join("WHEN %s THEN %s" for _ in weights) + " END"
    weight_params = [v for name, w in weights.items() for v in (name, w)]
    order_name = "order"
    interest_sql, interest_params = _interest_values()
    sql = f"""
        INSERT INTO {table} (profile_id, rank, category, score, reason_code, reason_category, computed_at)
        WITH aff AS (
            SELECT e.profile_id, e.category,
                   SUM({weight_case} * POWER(0.5, GREATEST_AGE / %s)) AS w,
                   MAX(CASE WHEN e.name = %s THEN 3 WHEN e.name = 'add_to_cart' THEN 2 ELSE 1 END) AS strongest,
                   MAX(CASE WHEN e.name = %s AND e.occurred_at >= %s THEN 1 ELSE 0 END) AS bought_recently
            FROM {events_table} e
            WHERE {where} AND e.occurred_at >= %s AND e.occurred_at <= %s
              AND e.profile_id >= %s AND e.profile_id <= %s
            GROUP BY e.profile_id, e.category
        ),
        im (tag_id, category) AS ({interest_sql}),
        cand AS (
            SELECT a.profile_id, s.target AS category, a.w * s.score AS contrib, a.category AS because,
                   CASE a.strongest WHEN 3 THEN 'bought' WHEN 2 THEN 'carted' ELSE 'viewed' END AS code
            FROM aff a JOIN {similarity_table} s ON s.source = a.category AND s.target <> a.category
            UNION ALL
            SELECT a.profile_id, a.category, a.w, a.category,
                   CASE a.strongest WHEN 3 THEN 'bought' WHEN 2 THEN 'carted' ELSE 'viewed' END
            FROM aff a
            UNION ALL
            SELECT pt.profile_id, im.category, pt.weight AS contrib, im.category AS because, 'interest' AS code
            FROM profiles_profiletag pt JOIN im ON im.tag_id = pt.tag_id
            WHERE pt.profile_id >= %s AND pt.profile_id <= %s AND pt.weight IS NOT NULL
        ),
        ranked_reason AS (
            SELECT profile_id, category, contrib, because, code,
                   SUM(contrib) OVER (PARTITION BY profile_id, category) AS score,
                   ROW_NUMBER() OVER (PARTITION BY profile_id, category ORDER BY contrib DESC, because) AS r
            FROM cand
        ),
        ranked AS (
            SELECT rr.profile_id, rr.category, rr.score, rr.code, rr.because,
                   ROW_NUMBER() OVER (PARTITION BY rr.profile_id ORDER BY rr.score DESC, rr.category) AS rank
            FROM ranked_reason rr
            WHERE rr.r = 1 AND rr.score > 0
              AND NOT EXISTS (SELECT 1 FROM aff b WHERE b.profile_id = rr.profile_id AND b.category = rr.category
                              AND b.bought_recently = 1)
        )
        SELECT profile_id, rank, category, score, code, because, %s FROM ranked WHERE rank <= {TOP_N}
        ON CONFLICT (profile_id, rank) DO UPDATE SET
            category = excluded.category, score = excluded.score, reason_code = excluded.reason_code,
            reason_category = excluded.reason_category, computed_at = excluded.computed_at
    """
    sql = sql.replace("GREATEST_AGE", "(CASE WHEN e.occurred_at > %s THEN 0 ELSE " + _age_days("e.occurred_at") + " END)")

    def params(*, now, exclude_since, since, lo, hi):
        return [*weight_params, now, now, settings.CDP_RECOMMENDATION_HALF_LIFE_DAYS, order_name, order_name,
                exclude_since, *names, since, now, lo, hi, *interest_params, lo, hi, now]

    return sql, params


def recommendations_compute(*, profile_ids: list[int] | None = None, now: datetime.datetime | None = None,
                            events_table: str = "profiles_event", table: str = "profiles_recommendation",
                            similarity_table: str = "profiles_categorysimilarity", chunk: int = CHUNK) -> int:
    """Recompute the recommendations of the given customers (all when None) from the current
    similarity; returns the rows written. Each range of customers is replaced in one transaction;
    a run overlapping another (nightly and on demand) updates the rows the other wrote."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=settings.CDP_RECOMMENDATION_WINDOW_DAYS)
    exclude_since = now - datetime.timedelta(days=settings.CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS)
    sql, params = _statement(events_table=events_table, table=table, similarity_table=similarity_table)
    if profile_ids is not None:
        ranges = [(pid, pid) for pid in sorted(set(profile_ids))]
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MIN(id), MAX(id) FROM {Profile._meta.db_table}")
            low, high = cursor.fetchone()
        ranges = [] if low is None else [(lo, min(lo + chunk - 1, high)) for lo in range(low, high + 1, chunk)]
    written = 0
    for lo, hi in ranges:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE profile_id >= %s AND profile_id <= %s", [lo, hi])
            cursor.execute(sql, params(now=now, exclude_since=exclude_since, since=since, lo=lo, hi=hi))
            written += cursor.rowcount
    return written


def recommendations_refresh_all(*, now: datetime.datetime | None = None) -> dict:
    """Nightly: the similarity, then every customer's list."""
    now = now or timezone.now()
    pairs = similarity_recompute(now=now)
    return {"pairs": pairs, "rows": recommendations_compute(now=now)}


def recommendations_refresh_one(*, profile: Profile, now: datetime.datetime | None = None) -> int:
    """On demand for one customer (the similarity of the last nightly run)."""
    if not CategorySimilarity.objects.exists():
        similarity_recompute(now=now)
    return recommendations_compute(profile_ids=[profile.pk], now=now)
