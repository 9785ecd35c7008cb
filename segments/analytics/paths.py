"""Paths: what customers do next after a chosen event (or did before it), as the flows
of a Sankey chart. Each customer counts once: from their first matching event in the
period, the next (previous) `steps` events within `within_days` are followed (events at
the same moment in the order of their names).

After a frequent event (half a million customers viewing products) the exact answer
joins every customer's next events and takes seconds; by default the paths of a fixed
sample — the customers whose id ends in 0, one in ten — are followed instead and every
count scaled up, with its 95 % margin (`PathsResult.margin`). Below a few thousand
sampled customers, where the exact answer is cheap, or when asked (precision "exact"),
every customer is followed."""
from __future__ import annotations

import datetime
import math
from collections import Counter
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Min
from django.db.models.functions import Mod
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.replica import reading, reading_alias
from cdp.sql import tune_for_analysis
from profiles.models import Event, EventDefinition
from profiles.selectors import event_labels

from .common import DAY, Scope, event_label, in_scope, scope_from, sql_of, step_events, whole

AFTER, BEFORE = "after", "before"
MAX_STEPS = 5
MAX_NAMES_PER_STEP = 10
AUTO, EXACT = "auto", "exact"
SAMPLE_EVERY = 10  # the fixed sample: customers whose id is a multiple of 10
EXACT_BELOW = 2_000  # sampled customers under which every customer is followed instead


@dataclass(frozen=True)
class PathsQuery:
    event: dict  # {"event", "where"}
    direction: str
    steps: int
    within: datetime.timedelta
    scope: Scope
    precision: str = AUTO


@dataclass
class PathsResult:
    query: PathsQuery
    customers: int  # who did the event in the period
    # (from step, from event, to event, customers); step 0 is the chosen event itself
    flows: list[tuple[int, str, str, int]]
    labels: dict[str, str]
    sample_every: int = 1  # 1: every customer followed; n: counts estimated from one customer in n

    def margin(self, count: int) -> int:
        """The 95 % margin of an estimated count: each customer is in the sample with
        probability 1/n, so the count of n·c has a standard error of √(count·(n − 1))."""
        return round(1.96 * math.sqrt(count * (self.sample_every - 1)))

    def ended(self) -> list[tuple[int, str, int]]:
        """(step, event, customers) whose path stops there: no next (previous) event within
        the window. Step 0 is the chosen event; the last step followed is left out."""
        arrived, left = Counter({(0, self.query.event["event"]): self.customers}), Counter()
        for step, source, target, count in self.flows:
            arrived[(step + 1, target)] += count
            left[(step, source)] += count
        ended = [(step, name, n - left[(step, name)]) for (step, name), n in arrived.items()
                 if step < self.query.steps and n > left[(step, name)]]
        return sorted(ended, key=lambda end: (end[0], -end[2], end[1]))


def paths_query(parameters: dict, now: datetime.datetime) -> PathsQuery:
    event = {"event": parameters.get("event"), "where": parameters.get("where") or []}
    step_events(event, now, _("event"))
    direction = parameters.get("direction") or AFTER
    if direction not in (AFTER, BEFORE):
        raise ValidationError(_("Follow the events after or before."), code="bad_direction")
    return PathsQuery(
        event=event, direction=direction,
        steps=whole(parameters.get("steps", 3), _("steps"), low=1, high=MAX_STEPS),
        within=whole(parameters.get("within_days", 7), _("within days"), low=1, high=90) * DAY,
        scope=scope_from(parameters, now),
        precision=EXACT if parameters.get("precision") == EXACT else AUTO,
    )


def paths(query: PathsQuery, now: datetime.datetime | None = None) -> PathsResult:
    now = now or timezone.now()
    with transaction.atomic(using=reading_alias()):  # the analysis settings hold for the transaction
        tune_for_analysis()
        if query.precision == AUTO:
            sampled = _customers(query, now, SAMPLE_EVERY)
            if sampled >= EXACT_BELOW:
                return paths_followed(query, now, SAMPLE_EVERY, sampled)
        return paths_followed(query, now, 1)


def _customers(query: PathsQuery, now: datetime.datetime, sample_every: int) -> int:
    """How many customers of the sample did the event in the period."""
    events = _sampled(in_scope(step_events(query.event, now, "event"), query.scope), sample_every)
    return events.order_by().values("profile_id").distinct().count()


def paths_followed(query: PathsQuery, now: datetime.datetime, sample_every: int,
                   customers: int | None = None) -> PathsResult:
    """The paths of the customers whose id is a multiple of `sample_every`, counts scaled
    up by it (1: every customer, exact); `customers`: how many of them did the event, if
    counted already. Run inside paths()'s transaction, tuned for analysis."""
    # Each customer's first event, and the far edge of the window after (before) it,
    # computed once per customer rather than once per event compared with it.
    anchors = _sampled(in_scope(step_events(query.event, now, "event"), query.scope), sample_every).order_by().values(
        "profile_id").annotate(t=Min("occurred_at"))
    if query.direction == AFTER:
        anchors = anchors.annotate(edge=ExpressionWrapper(F("t") + query.within, output_field=DateTimeField()))
        joined, order = "e.occurred_at > a.t AND e.occurred_at <= a.edge", "e.occurred_at, e.name"
        span = (query.scope.start, query.scope.end + query.within)
    else:
        anchors = anchors.annotate(edge=ExpressionWrapper(F("t") - query.within, output_field=DateTimeField()))
        joined, order = "e.occurred_at < a.t AND e.occurred_at >= a.edge", "e.occurred_at DESC, e.name DESC"
        span = (query.scope.start - query.within, query.scope.end)
    anchors_sql, anchors_params = sql_of(anchors)
    # One hash join of the customers' first events with the events of the span (reading
    # each customer's next few events from the timeline index instead was slower: a
    # random read per customer). Naming the registered event names (unregistered ones
    # are refused on the way in) and ordering ties by name rather than id lets
    # PostgreSQL read the span from the (name, occurred_at) index alone.
    nearby = _sampled(Event.objects.filter(name__in=list(EventDefinition.objects.values_list("name", flat=True)),
                                           occurred_at__gte=span[0], occurred_at__lte=span[1]),
                      sample_every).values("profile_id", "name", "occurred_at")
    nearby_sql, nearby_params = sql_of(nearby)
    if customers is None:
        customers = _customers(query, now, sample_every)
    with reading.cursor() as cursor:
        # One window numbers each customer's events and names the one before: k ≤ steps
        # lets PostgreSQL stop numbering a customer's events after the last step.
        cursor.execute(
            f"SELECT s.k, s.previous, s.name, COUNT(*) FROM (SELECT e.name, ROW_NUMBER() OVER w AS k, "
            f"LAG(e.name) OVER w AS previous FROM ({anchors_sql}) a JOIN ({nearby_sql}) e "
            f"ON e.profile_id = a.profile_id AND {joined} "
            f"WINDOW w AS (PARTITION BY e.profile_id ORDER BY {order})) s WHERE s.k <= %s "
            f"GROUP BY s.k, s.previous, s.name",
            [*anchors_params, *nearby_params, query.steps],
        )
        rows = cursor.fetchall()
    anchor = query.event["event"]
    flows = [(k - 1, previous if previous is not None else anchor, name, count * sample_every)
             for k, previous, name, count in rows]
    return PathsResult(query=query, customers=customers * sample_every, flows=_top_names(flows), labels=event_labels(),
                       sample_every=sample_every)


def _sampled(events, sample_every: int):
    """Events of the customers in the sample. The id is in the (name, occurred_at) index,
    so PostgreSQL still reads the events from the index alone."""
    if sample_every == 1:
        return events
    return events.alias(bucket=Mod("profile_id", sample_every)).filter(bucket=0)


OTHER = "…"


def _top_names(flows: list[tuple[int, str, str, int]]) -> list[tuple[int, str, str, int]]:
    """Keep the 10 most frequent events at each step; the rest become "…", so that the
    chart stays readable however many event names there are."""
    arriving: dict[int, Counter] = {}
    for step, _source, target, count in flows:
        arriving.setdefault(step + 1, Counter())[target] += count
    kept = {step: {name for name, _n in counter.most_common(MAX_NAMES_PER_STEP)} for step, counter in arriving.items()}
    merged: Counter = Counter()
    for step, source, target, count in flows:
        source = source if step == 0 or source in kept.get(step, ()) else OTHER
        target = target if target in kept[step + 1] else OTHER
        merged[(step, source, target)] += count
    return sorted(((s, a, b, n) for (s, a, b), n in merged.items()), key=lambda flow: (flow[0], -flow[3], flow[1], flow[2]))


def path_label(result: PathsResult, name: str) -> str:
    return _("other events") if name == OTHER else event_label(result.labels, name)
