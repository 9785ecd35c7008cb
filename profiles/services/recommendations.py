"""Next-best-product recommendations, set-based (SQLite and PostgreSQL).

Items are products — the `product_id` property of views, carts and orders — and, for a
customer whose events name no product (a shop that sends only categories), categories.

1. Item-to-item similarity, learnt from the customers who viewed, carted or ordered within
   the window (settings.CDP_RECOMMENDATION_WINDOW_DAYS):
   - `product_similarity_recompute`: cosine(a, b) = customers with both / √(customers with
     a · customers with b) over each customer's MAX_PRODUCTS_PER_CUSTOMER most recent
     products; each product keeps its NEIGHBOURS closest ones. A product's row with itself
     holds how many customers engaged with it: its popularity (read-time fill-ups and the
     baseline of the offline evaluation).
   - `similarity_recompute`: the same for categories (all pairs: categories are few).
2. Per customer (`recommendations_compute`), in one statement per range of customers:

       affinity(i) = Σ over their events on item i of  w(event) · 0.5 ^ (age in days / half-life)
       score(j)    = affinity(j) + Σ_i affinity(i) · similarity(i, j)
                     (+ for categories: the interest tag weights mapped to j)

   top 10 by score, leaving out what they ordered in the last
   CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS days. A customer with any product in their
   history gets products; the others categories. The reason is the term that contributed
   most: the product (or category) behind it and whether they bought, carted or viewed it
   (or an interest tag of theirs maps to it).
"""
import datetime
import math
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ..models import CategorySimilarity, InterestMapping, ProductSimilarity, Profile
from ..recommendations import popular_forget

TOP_N = 10
CHUNK = 200_000
NEIGHBOURS = 10  # similar products kept per product
MAX_PRODUCTS_PER_CUSTOMER = 50  # most recent products of a customer counted in the similarity


def _age_days(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"(CAST(EXTRACT(EPOCH FROM (%s - {column})) AS DOUBLE PRECISION) / 86400.0)"
    return f"(julianday(%s) - julianday({column}))"


def product_expression(alias: str = "e") -> str:
    """The SQL of an event's product id (NULL when it names none)."""
    if connection.vendor == "postgresql":
        return f"NULLIF({alias}.properties ->> 'product_id', '')"
    return f"NULLIF(CAST(json_extract({alias}.properties, '$.product_id') AS TEXT), '')"


def _weights() -> dict[str, float]:
    return {name: float(w) for name, w in settings.CDP_RECOMMENDATION_EVENT_WEIGHTS.items()}


def _event_filter(weights) -> tuple[str, list]:
    return f"e.name IN ({', '.join(['%s'] * len(weights))}) AND e.category IS NOT NULL", list(weights)


def _window(now):
    now = now or timezone.now()
    return now, now - datetime.timedelta(days=settings.CDP_RECOMMENDATION_WINDOW_DAYS)


def similarity_recompute(*, now: datetime.datetime | None = None, events_table: str = "profiles_event",
                         table: str = "profiles_categorysimilarity") -> int:
    """Recompute the category × category similarity from the window's events; returns the pairs."""
    now, since = _window(now)
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
    _analyze(table)
    popular_forget()
    return len(rows)


def product_similarity_recompute(*, now: datetime.datetime | None = None, events_table: str = "profiles_event",
                                 table: str = "profiles_productsimilarity", neighbours: int = NEIGHBOURS) -> int:
    """Recompute the product × product similarity (each product's closest `neighbours`, and
    its popularity on the row with itself) from the window's events; returns the rows."""
    now, since = _window(now)
    weights = _weights()
    names = ", ".join(["%s"] * len(weights))
    product = product_expression("e")
    sql = f"""
        INSERT INTO {table} (source, target, target_category, score, computed_at)
        WITH seen AS (
            SELECT x.profile_id, x.product, MAX(x.category) AS category, MAX(x.occurred_at) AS last_at
            FROM (SELECT e.profile_id, {product} AS product, e.category, e.occurred_at FROM {events_table} e
                  WHERE e.name IN ({names}) AND e.occurred_at >= %s AND e.occurred_at <= %s) x
            WHERE x.product IS NOT NULL
            GROUP BY x.profile_id, x.product
        ),
        up AS (
            SELECT profile_id, product, category FROM (
                SELECT profile_id, product, category,
                       ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY last_at DESC, product) AS r
                FROM seen) s
            WHERE r <= {int(MAX_PRODUCTS_PER_CUSTOMER)}
        ),
        pop AS (SELECT product, COUNT(*) AS n, MAX(category) AS category FROM up GROUP BY product),
        pair AS (
            SELECT a.product AS source, b.product AS target, COUNT(*) AS n
            FROM up a JOIN up b ON a.profile_id = b.profile_id AND a.product <> b.product
            GROUP BY a.product, b.product
        ),
        scored AS (
            SELECT p.source, p.target, pb.category, p.n / SQRT(pa.n * pb.n) AS score,
                   ROW_NUMBER() OVER (PARTITION BY p.source ORDER BY p.n / SQRT(pa.n * pb.n) DESC, p.target) AS r
            FROM pair p JOIN pop pa ON pa.product = p.source JOIN pop pb ON pb.product = p.target
        )
        SELECT source, target, COALESCE(category, ''), score, %s FROM scored WHERE r <= {int(neighbours)}
        UNION ALL
        SELECT product, product, COALESCE(category, ''), n, %s FROM pop"""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(sql, [*weights, since, now, now, now])
        written = cursor.rowcount
    _analyze(table)
    popular_forget()
    return written


def _analyze(table: str) -> None:
    """Fresh planner statistics for a similarity table just rewritten (a few thousand rows,
    milliseconds): the lists' statement joins it to every customer's items, and planned on
    a stale row count (autovacuum off, or not yet run) it picks worse joins."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


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


def _statement(*, events_table: str, table: str, similarity_table: str,
               product_similarity_table: str) -> tuple[str, callable]:
    weights = _weights()
    names = ", ".join(["%s"] * len(weights))
    weight_case = "CASE x.name " + " ".join("WHEN %s THEN %s" for _ in weights) + " END"
    weight_params = [v for name, w in weights.items() for v in (name, w)]
    interest_sql, interest_params = _interest_values()
    product = product_expression("e")
    age = "(CASE WHEN x.occurred_at > %s THEN 0 ELSE " + _age_days("x.occurred_at") + " END)"
    sql = f"""
        INSERT INTO {table} (profile_id, rank, category, product_id, score, reason_code, reason_category,
                             reason_product, computed_at)
        WITH aff0 AS (
            SELECT x.profile_id, x.category, x.product,
                   SUM({weight_case} * POWER(0.5, {age} / %s)) AS w,
                   MAX(CASE WHEN x.name = 'order' THEN 3 WHEN x.name = 'add_to_cart' THEN 2 ELSE 1 END) AS strongest,
                   MAX(CASE WHEN x.name = 'order' AND x.occurred_at >= %s THEN 1 ELSE 0 END) AS bought_recently
            FROM (SELECT e.profile_id, e.name, e.category, {product} AS product, e.occurred_at
                  FROM {events_table} e
                  WHERE e.name IN ({names}) AND e.occurred_at >= %s AND e.occurred_at <= %s
                    AND e.profile_id >= %s AND e.profile_id <= %s) x
            WHERE x.category IS NOT NULL OR x.product IS NOT NULL
            GROUP BY x.profile_id, x.category, x.product
        ),
        paff AS (
            SELECT profile_id, product, COALESCE(MAX(category), '') AS category, SUM(w) AS w,
                   MAX(strongest) AS strongest, MAX(bought_recently) AS bought_recently
            FROM aff0 WHERE product IS NOT NULL GROUP BY profile_id, product
        ),
        caff AS (
            SELECT a.profile_id, a.category, SUM(a.w) AS w, MAX(a.strongest) AS strongest,
                   MAX(a.bought_recently) AS bought_recently
            FROM aff0 a
            WHERE a.category IS NOT NULL AND NOT EXISTS (SELECT 1 FROM paff p WHERE p.profile_id = a.profile_id)
            GROUP BY a.profile_id, a.category
        ),
        im (tag_id, category) AS ({interest_sql}),
        cand AS (
            -- (every item the customer engaged with has its own row, which says whether they
            -- ordered it recently: such items are left out below)
            SELECT a.profile_id, s.target AS product, s.target_category AS category, a.w * s.score AS contrib,
                   a.product AS because, a.category AS because_category, a.strongest, 0 AS bought
            FROM paff a JOIN {product_similarity_table} s ON s.source = a.product AND s.target <> a.product
            UNION ALL
            SELECT a.profile_id, a.product, a.category, a.w, a.product, a.category, a.strongest, a.bought_recently
            FROM paff a
            UNION ALL
            SELECT a.profile_id, '', s.target, a.w * s.score, '', a.category, a.strongest, 0
            FROM caff a JOIN {similarity_table} s ON s.source = a.category AND s.target <> a.category
            UNION ALL
            SELECT a.profile_id, '', a.category, a.w, '', a.category, a.strongest, a.bought_recently FROM caff a
            UNION ALL
            SELECT pt.profile_id, '', im.category, pt.weight, '', im.category, 0, 0
            FROM profiles_profiletag pt JOIN im ON im.tag_id = pt.tag_id
            WHERE pt.profile_id >= %s AND pt.profile_id <= %s AND pt.weight IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM paff p WHERE p.profile_id = pt.profile_id)
        ),
        ranked AS (  -- per item: its score, and the term that contributed most (the reason)
            SELECT profile_id, product, category, because, because_category, strongest,
                   SUM(contrib) OVER (PARTITION BY profile_id, product, category) AS score,
                   MAX(bought) OVER (PARTITION BY profile_id, product, category) AS bought,
                   ROW_NUMBER() OVER (PARTITION BY profile_id, product, category
                                      ORDER BY contrib DESC, because_category, because) AS r
            FROM cand
        ),
        top AS (
            SELECT profile_id, product, category, score, because, because_category,
                   CASE strongest WHEN 3 THEN 'bought' WHEN 2 THEN 'carted' WHEN 1 THEN 'viewed'
                                  ELSE 'interest' END AS code,
                   ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY ROUND(score * 1000000) DESC, category, product)
                       AS rank  -- (rounded: equal sums added in another order are equal)
            FROM ranked WHERE r = 1 AND score > 0 AND bought = 0
        )
        SELECT profile_id, rank, category, product, score, code, because_category, because, %s
        FROM top WHERE rank <= {TOP_N}
        ON CONFLICT (profile_id, rank) DO UPDATE SET
            category = excluded.category, product_id = excluded.product_id, score = excluded.score,
            reason_code = excluded.reason_code, reason_category = excluded.reason_category,
            reason_product = excluded.reason_product, computed_at = excluded.computed_at
    """

    def params(*, now, exclude_since, since, lo, hi):
        return [*weight_params, now, now, settings.CDP_RECOMMENDATION_HALF_LIFE_DAYS, exclude_since,
                *weights, since, now, lo, hi, *interest_params, lo, hi, now]

    return sql, params


def recommendations_compute(*, profile_ids: list[int] | None = None, now: datetime.datetime | None = None,
                            events_table: str = "profiles_event", table: str = "profiles_recommendation",
                            similarity_table: str = "profiles_categorysimilarity",
                            product_similarity_table: str = "profiles_productsimilarity", chunk: int = CHUNK,
                            workers: int = 1) -> int:
    """Recompute the recommendations of the given customers (all when None) from the current
    similarities; returns the rows written. Each range of customers is replaced in one
    transaction; a run overlapping another (nightly and on demand) updates the rows the other wrote.
    `workers` > 1 (PostgreSQL, outside a transaction): that many ranges at a time, each on a
    connection of its own (one statement uses one core; generate_demo uses every core)."""
    now, since = _window(now)
    exclude_since = now - datetime.timedelta(days=settings.CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS)
    sql, params = _statement(events_table=events_table, table=table, similarity_table=similarity_table,
                             product_similarity_table=product_similarity_table)
    if profile_ids is not None:
        ranges = [(pid, pid) for pid in sorted(set(profile_ids))]
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MIN(id), MAX(id) FROM {Profile._meta.db_table}")
            low, high = cursor.fetchone()
        if workers > 1 and low is not None:  # enough ranges to keep every worker busy to the end
            chunk = max(1, min(chunk, -(-(high - low + 1) // (3 * workers))))
        ranges = [] if low is None else [(lo, min(lo + chunk - 1, high)) for lo in range(low, high + 1, chunk)]

    def replace(bounds: tuple[int, int]) -> int:
        lo, hi = bounds
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql" and hi > lo:  # the nightly run's big sorts and aggregates
                cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute(f"DELETE FROM {table} WHERE profile_id >= %s AND profile_id <= %s", [lo, hi])
            cursor.execute(sql, params(now=now, exclude_since=exclude_since, since=since, lo=lo, hi=hi))
            return cursor.rowcount

    # Other connections would not see what this one's open transaction wrote.
    if workers <= 1 or len(ranges) <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        return sum(replace(bounds) for bounds in ranges)

    def replace_on_own_connection(bounds: tuple[int, int]) -> int:
        try:
            return replace(bounds)
        finally:
            connection.close()  # this thread's

    with ThreadPoolExecutor(max_workers=min(workers, len(ranges)), thread_name_prefix="recommendations") as pool:
        return sum(pool.map(replace_on_own_connection, ranges))


def recommendations_refresh_all(*, now: datetime.datetime | None = None, workers: int = 1) -> dict:
    """Nightly: the similarities, then every customer's list (`workers`: see recommendations_compute)."""
    now = now or timezone.now()
    pairs = similarity_recompute(now=now)
    product_pairs = product_similarity_recompute(now=now)
    return {"pairs": pairs, "product_pairs": product_pairs,
            "rows": recommendations_compute(now=now, workers=workers)}


def recommendations_refresh_one(*, profile: Profile, now: datetime.datetime | None = None) -> int:
    """On demand for one customer (the similarities of the last nightly run)."""
    if not CategorySimilarity.objects.exists() and not ProductSimilarity.objects.exists():  # never run yet
        similarity_recompute(now=now)
        product_similarity_recompute(now=now)
    return recommendations_compute(profile_ids=[profile.pk], now=now)
