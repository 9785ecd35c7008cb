"""Lifecycle per week: how many customers were new, active, returning, dormant or
churned at the end of each of the last N weeks, by the rules of profiles.metrics (the
same constants, so the last point equals the stages stored on the profiles).

One pass over the events of the last N weeks + 90 days folds each customer's activity
into a bitmap of days-before-now (day d holds the events of (now - d days, now - d + 1
day]); each week end T = now - j days then reads its windows as masks:

* R: seen in [T - 30, T)        ⇔ a day in j+1 … j+30
* B: seen in [T - 60, T - 30)   ⇔ a day in j+31 … j+60
* W: seen in [T - 90, T)        ⇔ a day in j+1 … j+90
* first seen before T           ⇔ first day ≥ j+1; new ⇔ first day in j+1 … j+30

and, since a new customer has no event in B and every stage but churned has one in W:
active = R∧B, returning = R − new − active, dormant = W − R, churned = seen − W.
Counting with integer masks (not a CASE per event and week) keeps it one cheap pass."""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.replica import reading, reading_alias
from cdp.sql import tune_for_analysis
from profiles.metrics import CHURNED_AFTER_DAYS, LIFECYCLE_WINDOW_DAYS
from profiles.models import Event, LifecycleStage, Profile, ProfileStatus

from .common import DAY, db_time, for_segment, segment_named, sql_of, whole

STAGES = (LifecycleStage.NEW, LifecycleStage.ACTIVE, LifecycleStage.RETURNING, LifecycleStage.DORMANT,
          LifecycleStage.CHURNED)
MAX_WEEKS = 52
BITS = 62  # days per bitmap word (a BIGINT; the sign bit left alone)


@dataclass(frozen=True)
class LifecycleQuery:
    weeks: int
    segment: object = None


@dataclass
class LifecycleResult:
    query: LifecycleQuery
    moments: list[datetime.datetime]  # the end of each week, the last one is now
    counts: dict[str, list[int]]  # stage → customers per week


def lifecycle_query(parameters: dict) -> LifecycleQuery:
    return LifecycleQuery(weeks=whole(parameters.get("weeks", 12), _("weeks"), low=2, high=MAX_WEEKS),
                          segment=segment_named(parameters.get("segment")))


def lifecycle_moments(weeks: int, now: datetime.datetime) -> list[datetime.datetime]:
    return [now - datetime.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def _days_before(column_sql: str, now: datetime.datetime) -> tuple[str, list]:
    """SQL: the whole days d ≥ 1 with column in (now - d days, now - d + 1 day]."""
    if reading.vendor == "postgresql":
        # date_part is double precision; EXTRACT would compute in (slow) numeric.
        sql = f"CAST(CEIL(date_part('epoch', %s - {column_sql}) / 86400.0) AS INTEGER)"
    else:
        days = f"(julianday(%s) - julianday({column_sql}))"
        sql = f"(CAST({days} AS INTEGER) + (CASE WHEN {days} > CAST({days} AS INTEGER) THEN 1 ELSE 0 END))"
    return sql, [db_time(now)] * sql.count("%s")


def _fence() -> str:
    """Keeps PostgreSQL from inlining a subquery's computed column (the first day) into
    each of the weeks' sums that read it. Not used on the events' subquery: a fence
    there would also stop the parallel scan, which gains more than it costs."""
    return " OFFSET 0" if reading.vendor == "postgresql" else ""


def _word_or(expression: str) -> str:
    """The aggregate OR of one-bit values (SQLite has no BIT_OR; a sum of distinct
    powers of two is the same number)."""
    if reading.vendor == "postgresql":
        return f"BIT_OR({expression})"
    return f"SUM(DISTINCT {expression})"


def _mask(first_day: int, last_day: int, words: int) -> list[int]:
    """Per word, the bits of days first_day … last_day."""
    masks = [0] * words
    for day in range(first_day, last_day + 1):
        masks[day // BITS] |= 1 << (day % BITS)
    return masks


def lifecycle(query: LifecycleQuery, now: datetime.datetime | None = None) -> LifecycleResult:
    now = now or timezone.now()
    window, churn = LIFECYCLE_WINDOW_DAYS, CHURNED_AFTER_DAYS
    moments = lifecycle_moments(query.weeks, now)
    offsets = [7 * (query.weeks - 1 - i) for i in range(query.weeks)]  # T = now - j days
    last_day = offsets[0] + churn
    words = last_day // BITS + 1
    one = "CAST(1 AS BIGINT)" if reading.vendor == "postgresql" else "1"
    day, day_params = _days_before("x.occurred_at", now)
    bitmaps = ", ".join(
        _word_or(f"CASE WHEN e.d / {BITS} = {w} THEN ({one} << (e.d - {w * BITS})) ELSE 0 END") + f" AS w{w}"
        for w in range(words))
    # Events of the period, each as its day before now (events always belong to active
    # customers: merged customers' events move to the survivor, erased ones are deleted).
    events = Event.objects.filter(occurred_at__gte=now - last_day * DAY, occurred_at__lt=now)
    events_sql, events_params = sql_of(for_segment(events, query.segment, "profile_id").values("profile_id", "occurred_at"))
    seen = (f"SELECT e.profile_id, MAX(e.d) AS first_d, {bitmaps} FROM (SELECT x.profile_id, {day} AS d "
            f"FROM ({events_sql}) x) e GROUP BY e.profile_id")
    seen_params = [*day_params, *events_params]

    def hit(first: int, last: int) -> tuple[str, list[int]]:
        """Any of the days first … last: a test per word those days fall in."""
        masks = _mask(first, last, words)
        used = [w for w in range(words) if masks[w]]
        return " OR ".join(f"(s.w{w} & %s) <> 0" for w in used), [masks[w] for w in used]

    sums, sums_params = [], []
    for j in offsets:
        sums += [f"SUM(CASE WHEN s.first_d >= {j + 1} THEN 1 ELSE 0 END)",
                 f"SUM(CASE WHEN s.first_d BETWEEN {j + 1} AND {j + window} THEN 1 ELSE 0 END)"]
        for terms in ((hit(j + 1, j + window),), (hit(j + 1, j + churn),),
                      (hit(j + 1, j + window), hit(j + window + 1, j + 2 * window))):
            sums.append(f"SUM(CASE WHEN {' AND '.join(f'({sql})' for sql, _m in terms)} THEN 1 ELSE 0 END)")
            sums_params += [mask for _sql, masks in terms for mask in masks]
    profiles = for_segment(Profile.objects.filter(status=ProfileStatus.ACTIVE), query.segment, "pk")
    profiles_sql, profiles_params = sql_of(profiles.order_by().values("id", "first_seen_at"))
    metric_first, metric_params = _days_before("p.first_seen_at", now)
    # The first day: the stored first-seen metric, unless the events show an earlier one
    # (metrics not yet recomputed).
    first = (f"(CASE WHEN p.first_seen_at IS NULL OR e.first_d > {metric_first} THEN e.first_d "
             f"ELSE {metric_first} END)")
    columns = ", ".join(f"e.w{w}" for w in range(words))
    with transaction.atomic(using=reading_alias()), reading.cursor() as cursor:
        tune_for_analysis()
        # One row of sums (no GROUP BY over the customers, so nothing to sort).
        cursor.execute(
            f"SELECT {', '.join(sums)} FROM (SELECT {first} AS first_d, {columns} FROM ({profiles_sql}) p "
            f"LEFT JOIN ({seen}) e ON e.profile_id = p.id{_fence()}) s",
            [*sums_params, *metric_params, *metric_params, *profiles_params, *seen_params],
        )
        row = [int(value or 0) for value in cursor.fetchone()]
    counts = {stage.value: [0] * query.weeks for stage in STAGES}
    for i in range(query.weeks):
        seen_by, new, recent, within_churn, active = row[5 * i:5 * i + 5]
        counts[LifecycleStage.NEW.value][i] = new
        counts[LifecycleStage.ACTIVE.value][i] = active
        counts[LifecycleStage.RETURNING.value][i] = recent - new - active
        counts[LifecycleStage.DORMANT.value][i] = within_churn - recent
        counts[LifecycleStage.CHURNED.value][i] = seen_by - within_churn
    return LifecycleResult(query=query, moments=moments, counts=counts)
