"""Retention: customers grouped into weekly or monthly cohorts by when they were first
seen (or placed their first order), and for each later period the share who came back
and did the returning event (any event, or a chosen one)."""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.replica import reading, reading_alias
from cdp.sql import tune_for_analysis
from profiles.metrics import ORDER_EVENT
from profiles.models import Event, EventDefinition, Profile, ProfileStatus

from .common import for_segment, segment_named, sql_of, whole
from .periods import MONTH, WEEK, period_case, period_label, period_starts

FIRST_SEEN, FIRST_ORDER = "first_seen", "first_order"
MAX_PERIODS = 24


@dataclass(frozen=True)
class RetentionQuery:
    period: str
    periods: int
    cohort: str
    return_event: str  # "" = any event
    segment: object = None


@dataclass
class Cohort:
    label: str
    size: int
    returned: list[int]  # customers active again in period 1, 2, … after the cohort's own (as far as there is data)

    @property
    def shares(self) -> list[float]:
        return [n / self.size if self.size else 0.0 for n in self.returned]


@dataclass
class RetentionResult:
    query: RetentionQuery
    cohorts: list[Cohort]


def retention_query(parameters: dict) -> RetentionQuery:
    period = parameters.get("period") or WEEK
    if period not in (WEEK, MONTH):
        raise ValidationError(_("Cohorts are weekly or monthly."), code="bad_period")
    cohort = parameters.get("cohort") or FIRST_SEEN
    if cohort not in (FIRST_SEEN, FIRST_ORDER):
        raise ValidationError(_("Group cohorts by first seen or first order."), code="bad_cohort")
    return_event = parameters.get("return_event") or ""
    if return_event and not EventDefinition.objects.filter(name=return_event).exists():
        raise ValidationError(_("“%(event)s” is not a registered event.") % {"event": return_event}, code="bad_event")
    return RetentionQuery(
        period=period, periods=whole(parameters.get("periods", 12), _("periods"), low=2, high=MAX_PERIODS),
        cohort=cohort, return_event=return_event, segment=segment_named(parameters.get("segment")),
    )


def retention(query: RetentionQuery, now: datetime.datetime | None = None) -> RetentionResult:
    now = now or timezone.now()
    starts = period_starts(query.period, query.periods, now)
    cohort_sql, cohort_params = sql_of(_cohort_members(query, starts))
    cohort_case, cohort_case_params = period_case("m.first_at", starts)
    # Any event: the registered names let PostgreSQL read the (name, occurred_at) index
    # for the period instead of every event (unregistered names are refused on the way in).
    events = Event.objects.filter(occurred_at__gte=starts[1], occurred_at__lt=starts[-1],
                                  name__in=[query.return_event] if query.return_event else _registered_names())
    events_sql, events_params = sql_of(events.values("profile_id", "occurred_at"))
    event_case, event_case_params = period_case("e.occurred_at", starts)
    with transaction.atomic(using=reading_alias()), reading.cursor() as cursor:
        tune_for_analysis()
        # One statement: the cohorts' sizes (period -1), then each customer counted once
        # per later period they were active in. The cohort query is written out twice
        # rather than shared (a WITH) so that PostgreSQL plans each half in parallel.
        members = f"SELECT m.profile_id, {cohort_case} AS cohort FROM ({cohort_sql}) m"
        members_params = [*cohort_case_params, *cohort_params]
        cursor.execute(
            f"SELECT c.cohort, -1, COUNT(*) FROM ({members}) c GROUP BY c.cohort "
            f"UNION ALL SELECT a.cohort, a.period, COUNT(*) FROM (SELECT DISTINCT c.profile_id, c.cohort, "
            f"{event_case} AS period FROM ({members}) c JOIN ({events_sql}) e ON e.profile_id = c.profile_id) a "
            f"WHERE a.period > a.cohort GROUP BY a.cohort, a.period",
            [*members_params, *event_case_params, *members_params, *events_params],
        )
        rows = cursor.fetchall()
    sizes = {cohort: count for cohort, period, count in rows if period == -1}
    returned = {(cohort, period): count for cohort, period, count in rows if period != -1}
    cohorts = []
    for index in range(query.periods):
        later = range(index + 1, query.periods)
        cohorts.append(Cohort(
            label=period_label(query.period, starts[index]), size=int(sizes.get(index, 0)),
            returned=[int(returned.get((index, period), 0)) for period in later],
        ))
    return RetentionResult(query=query, cohorts=cohorts)


def _registered_names() -> list[str]:
    return list(EventDefinition.objects.values_list("name", flat=True))


def _cohort_members(query: RetentionQuery, starts: list[datetime.datetime]):
    """(profile_id, first_at) for the customers whose first moment falls in the periods."""
    if query.cohort == FIRST_SEEN:
        members = Profile.objects.filter(status=ProfileStatus.ACTIVE, first_seen_at__gte=starts[0],
                                         first_seen_at__lt=starts[-1])
        members = for_segment(members, query.segment, "pk").order_by().values(profile_id=F("pk"), first_at=F("first_seen_at"))
        return members
    firsts = (Event.objects.filter(name=ORDER_EVENT).order_by().values("profile_id")
              .annotate(first_at=Min("occurred_at")).filter(first_at__gte=starts[0], first_at__lt=starts[-1]))
    return for_segment(firsts, query.segment, "profile_id")
