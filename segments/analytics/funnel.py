"""Funnels: how many customers go through 2–8 steps in order, each step within the
conversion window of the first, where they drop out and how long each step takes.

Each customer enters with their first step-1 event in the period (and segment); every
later step is the earliest matching event after the previous step and no later than
step 1 + the window. Taking the earliest is what lets the most customers go on, so the
counts are the largest the rules allow. One statement: a derived table per step, each
LEFT JOINed to the events of the next (set-based on both databases)."""
from __future__ import annotations

import datetime
import statistics
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.replica import reading, reading_alias
from cdp.sql import tune_for_analysis
from profiles.models import Event
from profiles.selectors import event_labels

from .common import (
    BREAKDOWNS,
    DAY,
    Scope,
    dimension_label,
    event_label,
    in_scope,
    plus,
    profile_dimension,
    scope_from,
    seconds_between,
    sql_of,
    step_events,
    whole,
)

MIN_STEPS, MAX_STEPS = 2, 8
MAX_WINDOW_DAYS = 90
MAX_BREAKDOWN_GROUPS = 20


@dataclass(frozen=True)
class FunnelQuery:
    steps: tuple[dict, ...]
    window: datetime.timedelta
    scope: Scope
    breakdown: str = ""


@dataclass
class FunnelStep:
    number: int
    event: str
    label: str
    count: int
    from_previous: float | None  # share of the previous step's customers, 0–1
    from_first: float | None
    dropped: int | None  # reached this step but not the next (None for the last step)
    median_seconds: float | None  # from the previous step (None for the first)


@dataclass
class FunnelResult:
    query: FunnelQuery
    steps: list[FunnelStep]
    breakdown: list[tuple[str, list[int]]] = field(default_factory=list)  # (group label, count per step)


def funnel_query(parameters: dict, now: datetime.datetime) -> FunnelQuery:
    """Validated parameters: {"steps": [{"event", "where"}…], "window_days", "days" or
    "start"/"end", "segment", "breakdown"}. ValidationError says what is wrong."""
    steps = parameters.get("steps")
    if not isinstance(steps, list) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise ValidationError(_("A funnel has from %(low)s to %(high)s steps.") % {"low": MIN_STEPS, "high": MAX_STEPS},
                              code="bad_steps")
    for number, step in enumerate(steps, start=1):
        step_events(step, now, _("step %(n)s") % {"n": number})  # validates the event and its filters
    breakdown = parameters.get("breakdown") or ""
    if breakdown and breakdown not in BREAKDOWNS:
        raise ValidationError(_("Break down by one of: %(names)s.") % {"names": ", ".join(BREAKDOWNS)}, code="bad_breakdown")
    window_days = whole(parameters.get("window_days", 7), _("conversion window"), low=1, high=MAX_WINDOW_DAYS)
    return FunnelQuery(
        steps=tuple({"event": s["event"], "where": s.get("where") or []} for s in steps),
        window=window_days * DAY, scope=scope_from(parameters, now), breakdown=breakdown,
    )


def funnel_steps_sql(query: FunnelQuery, now: datetime.datetime) -> tuple[str, list]:
    """A WITH clause defining s1 … sn: s_k holds (profile_id, t1, …, tk) for each
    customer who reached step k, with the moment they reached each step. Each s_k joins
    only the customers of s_(k-1), so the work shrinks with the funnel; callers add
    their SELECT over these tables."""
    first, *later = [step_events(step, now, str(n)) for n, step in enumerate(query.steps, start=1)]
    entered = in_scope(first, query.scope).order_by().values("profile_id").annotate(t1=Min("occurred_at"))
    entered_sql, params = sql_of(entered)
    tables = [f"s1 AS ({entered_sql})"]
    reached = ["t1"]
    for number, events in enumerate(later, start=2):
        # Bounded by the latest moment any customer's window can reach, for the index.
        candidates = events.filter(occurred_at__gt=query.scope.start,
                                   occurred_at__lte=query.scope.end + query.window).values("profile_id", "occurred_at")
        events_sql, events_params = sql_of(candidates)
        deadline, deadline_params = plus("f.t1", query.window)
        carried = ", ".join(f"f.{column}" for column in reached)
        tables.append(
            f"s{number} AS (SELECT f.profile_id, {carried}, MIN(e.occurred_at) AS t{number} FROM s{number - 1} f "
            f"JOIN ({events_sql}) e ON e.profile_id = f.profile_id AND e.occurred_at > f.{reached[-1]} "
            f"AND e.occurred_at <= {deadline} GROUP BY f.profile_id, {carried})"
        )
        params = [*params, *events_params, *deadline_params]
        reached.append(f"t{number}")
    return "WITH " + ", ".join(tables), params


def funnel_dropped_sql(query: FunnelQuery, step: int, now: datetime.datetime) -> tuple[str, list]:
    """SQL selecting the profile_id of those who reached step `step` (1-based) but not the next."""
    if not 1 <= step < len(query.steps):
        raise ValidationError(_("Customers can drop out after step 1 to %(n)s.") % {"n": len(query.steps) - 1},
                              code="bad_step")
    with_sql, params = funnel_steps_sql(query, now)
    return (f"{with_sql} SELECT d.profile_id FROM s{step} d WHERE NOT EXISTS "
            f"(SELECT 1 FROM s{step + 1} n WHERE n.profile_id = d.profile_id)", params)


def funnel(query: FunnelQuery, now: datetime.datetime | None = None) -> FunnelResult:
    now = now or timezone.now()
    with_sql, params = funnel_steps_sql(query, now)
    n = len(query.steps)
    with transaction.atomic(using=reading_alias()), reading.cursor() as cursor:
        tune_for_analysis()
        counts, medians = _counts_and_medians(cursor, with_sql, params, n)
        groups = _breakdown(cursor, with_sql, params, query, now) if query.breakdown else []
    labels = event_labels()
    steps = []
    for k, step in enumerate(query.steps):
        steps.append(FunnelStep(
            number=k + 1, event=step["event"], label=_step_label(labels, step), count=counts[k],
            from_previous=None if k == 0 else _share(counts[k], counts[k - 1]),
            from_first=None if k == 0 else _share(counts[k], counts[0]),
            dropped=counts[k] - counts[k + 1] if k + 1 < n else None,
            median_seconds=None if k == 0 else medians[k - 1],
        ))
    return FunnelResult(query=query, steps=steps, breakdown=groups)


def _step_label(labels: dict, step: dict) -> str:
    label = event_label(labels, step["event"])
    if step["where"]:
        filters = ", ".join(f"{w.get('property')} {w.get('op')} {w.get('value')}" for w in step["where"])
        label = f"{label} ({filters})"
    return label


def _share(part: int, whole_count: int) -> float | None:
    return part / whole_count if whole_count else None


def _counts_and_medians(cursor, with_sql: str, params: list, n: int) -> tuple[list[int], list[float | None]]:
    """Customers per step, and the median seconds from step k-1 to step k (k = 2…n):
    one statement on PostgreSQL (percentile_cont); on SQLite (small data) the
    differences are read and the median taken here."""
    counts = [f"(SELECT COUNT(*) FROM s{k})" for k in range(1, n + 1)]
    gaps = {k: seconds_between(f"s.t{k}", f"s.t{k - 1}") for k in range(2, n + 1)}
    if reading.vendor == "postgresql":
        medians = [f"(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {gap}) FROM s{k} s)" for k, gap in gaps.items()]
        cursor.execute(f"{with_sql} SELECT {', '.join(counts + medians)}", params)
        row = cursor.fetchone()
        return [int(c) for c in row[:n]], [None if m is None else float(m) for m in row[n:]]
    cursor.execute(f"{with_sql} SELECT {', '.join(counts)}", params)
    found = [int(c) for c in cursor.fetchone()]
    medians = []
    for k, gap in gaps.items():
        cursor.execute(f"{with_sql} SELECT {gap} FROM s{k} s", params)
        values = [row[0] for row in cursor.fetchall()]
        medians.append(statistics.median(values) if values else None)
    return found, medians


def _breakdown(cursor, with_sql: str, params: list, query: FunnelQuery, now: datetime.datetime
               ) -> list[tuple[str, list[int]]]:
    """Counts per step for each value of the dimension, largest groups first; past the
    20th, the rest are added up as "other"."""
    n = len(query.steps)
    reached = " UNION ALL ".join(f"SELECT {k} AS k, profile_id FROM s{k}" for k in range(1, n + 1))
    if query.breakdown == "source":
        # The source of the event that let the customer in (a lookup per customer on the
        # timeline index).
        events_table = reading.ops.quote_name(Event._meta.db_table)
        dims_sql = (f"SELECT g.profile_id AS id, (SELECT MIN(e.source) FROM {events_table} e WHERE "
                    f"e.profile_id = g.profile_id AND e.name = %s AND e.occurred_at = g.t1) AS dim FROM s1 g")
        dims_params = [query.steps[0]["event"]]
    else:
        dims_sql, dims_params = sql_of(profile_dimension(query.breakdown, timezone.localdate(now)))
    cursor.execute(f"{with_sql} SELECT d.dim, r.k, COUNT(*) FROM ({reached}) r JOIN ({dims_sql}) d "
                   f"ON d.id = r.profile_id GROUP BY d.dim, r.k", [*params, *dims_params])
    per_group: dict = {}
    for dim, k, count in cursor.fetchall():
        per_group.setdefault(dim, [0] * n)[k - 1] = int(count)
    rows = sorted(per_group.items(), key=lambda item: (-item[1][0], str(item[0])))
    groups = [(dimension_label(query.breakdown, dim), counts) for dim, counts in rows[:MAX_BREAKDOWN_GROUPS]]
    rest = [counts for _dim, counts in rows[MAX_BREAKDOWN_GROUPS:]]
    if rest:
        groups.append((_("other"), [sum(counts[k] for counts in rest) for k in range(n)]))
    return groups
