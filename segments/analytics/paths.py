"""Paths: what customers do next after a chosen event (or did before it), as the flows
of a Sankey chart. Each customer counts once: from their first matching event in the
period, the next (previous) `steps` events within `within_days` are followed (events at
the same moment in the order of their names)."""
from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.sql import tune_for_analysis
from profiles.models import Event, EventDefinition
from profiles.selectors import event_labels

from .common import DAY, Scope, event_label, in_scope, scope_from, sql_of, step_events, whole

AFTER, BEFORE = "after", "before"
MAX_STEPS = 5
MAX_NAMES_PER_STEP = 10


@dataclass(frozen=True)
class PathsQuery:
    event: dict  # {"event", "where"}
    direction: str
    steps: int
    within: datetime.timedelta
    scope: Scope


@dataclass
class PathsResult:
    query: PathsQuery
    customers: int  # who did the event in the period
    # (from step, from event, to event, customers); step 0 is the chosen event itself
    flows: list[tuple[int, str, str, int]]
    labels: dict[str, str]

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
    )


def paths(query: PathsQuery, now: datetime.datetime | None = None) -> PathsResult:
    now = now or timezone.now()
    # Each customer's first event, and the far edge of the window after (before) it,
    # computed once per customer rather than once per event compared with it.
    customers_in_scope = in_scope(step_events(query.event, now, "event"), query.scope).order_by().values("profile_id")
    anchors = customers_in_scope.annotate(t=Min("occurred_at"))
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
    nearby = Event.objects.filter(name__in=list(EventDefinition.objects.values_list("name", flat=True)),
                                  occurred_at__gte=span[0], occurred_at__lte=span[1]).values("profile_id", "name",
                                                                                           "occurred_at")
    nearby_sql, nearby_params = sql_of(nearby)
    with transaction.atomic(), connection.cursor() as cursor:
        tune_for_analysis()
        customers = customers_in_scope.distinct().count()
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
    flows = [(k - 1, previous if previous is not None else anchor, name, count) for k, previous, name, count in rows]
    return PathsResult(query=query, customers=customers, flows=_top_names(flows), labels=event_labels())


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
