"""What every analysis shares: the period and segment it looks at, step events with
their property filters (the condition language's own `where`), breakdown dimensions and
the few SQL pieces that differ between SQLite and PostgreSQL."""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Case, CharField, F, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.dates import typed_date
from cdp.replica import reading
from profiles.models import Gender, Profile, born_by

from ..conditions import parse
from ..conditions.compile import _matching_events as matching_events  # the language's one event filter
from ..models import Segment, SegmentMembership
from ..selectors import AGE_BANDS

DAY = datetime.timedelta(days=1)
MAX_RANGE_DAYS = 731
BREAKDOWNS = ("city", "gender", "age", "source")


@dataclass(frozen=True)
class Scope:
    """The events an analysis looks at: [start, end) and, optionally, one segment's members."""

    start: datetime.datetime
    end: datetime.datetime
    segment: Segment | None = None


def scope_from(parameters: dict, now: datetime.datetime, *, default_days: int = 30) -> Scope:
    """A scope from saved parameters: {"days": 90} (the last 90 days up to `now`, so a
    reopened analysis shows fresh data) or {"start": "2026-09-01", "end": "2026-09-30"}
    (local dates, both included), plus an optional {"segment": slug}."""
    start_text, end_text = parameters.get("start"), parameters.get("end")
    if start_text or end_text:
        start_date, end_date = typed_date(start_text), typed_date(end_text)
        if start_date is None or end_date is None:
            raise ValidationError(_("Give both dates of the range, like 2026-09-01."), code="bad_range")
        if end_date < start_date:
            raise ValidationError(_("The range must start before it ends."), code="bad_range")
        if (end_date - start_date).days > MAX_RANGE_DAYS:
            raise ValidationError(_("The range can span at most two years."), code="bad_range")
        start, end = local_midnight(start_date), local_midnight(end_date + DAY)
    else:
        days = whole(parameters.get("days", default_days), _("days"), low=1, high=MAX_RANGE_DAYS)
        start, end = now - days * DAY, now
    return Scope(start=start, end=end, segment=segment_named(parameters.get("segment")))


def local_midnight(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def segment_named(slug) -> Segment | None:
    if not slug:
        return None
    segment = Segment.objects.filter(slug=slug).first()
    if segment is None:
        raise ValidationError(_("There is no segment “%(slug)s”.") % {"slug": slug}, code="unknown_segment")
    return segment


def whole(value, label, *, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's 1e400 is infinity
        number = None
    if number is None or not low <= number <= high or isinstance(value, bool):
        raise ValidationError(_("%(label)s must be a whole number from %(low)s to %(high)s.")
                              % {"label": label, "low": low, "high": high}, code="bad_number")
    return number


def step_events(step: dict, now: datetime.datetime, path: str) -> QuerySet:
    """Events matching one step ({"event": name, "where": [property filters]}), validated
    and filtered exactly as a segment's behaviour condition would be."""
    if not isinstance(step, dict) or not step.get("event"):
        raise ValidationError(_("%(path)s: choose an event.") % {"path": path}, code="bad_step")
    try:
        node = parse({"event": step["event"], "where": step.get("where") or []})
    except ValidationError as error:
        raise ValidationError([f"{path}: {message}" for message in error.messages], code="bad_step") from error
    return matching_events(node, now)


def in_scope(events: QuerySet, scope: Scope) -> QuerySet:
    events = events.filter(occurred_at__gte=scope.start, occurred_at__lt=scope.end)
    return for_segment(events, scope.segment, "profile_id")


def for_segment(queryset: QuerySet, segment: Segment | None, column: str) -> QuerySet:
    """Only the segment's members (its materialised membership, kept fresh by its recompute)."""
    if segment is None:
        return queryset
    return queryset.filter(**{f"{column}__in": SegmentMembership.objects.filter(segment=segment).values("profile_id")})


def sql_of(queryset: QuerySet) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def db_time(moment: datetime.datetime):
    """A datetime as a raw SQL parameter the way the ORM stores it (naive UTC text on SQLite)."""
    return reading.ops.adapt_datetimefield_value(moment)


def plus(column_sql: str, delta: datetime.timedelta) -> tuple[str, list]:
    """SQL for `column + delta` on either database (Django's own duration arithmetic)."""
    if reading.vendor == "postgresql":
        return f"({column_sql} + %s)", [delta]
    return reading.ops.combine_duration_expression("+", [column_sql, "%s"]), [
        delta // datetime.timedelta(microseconds=1)
    ]


def seconds_between(later_sql: str, earlier_sql: str) -> str:
    if reading.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({later_sql} - {earlier_sql}))"
    return f"((julianday({later_sql}) - julianday({earlier_sql})) * 86400.0)"


def age_band(today: datetime.date) -> Case:
    """The customer's age band (segments.selectors.AGE_BANDS) from the birth date."""
    return Case(
        *[When(birth_date__lte=born_by(low, today), birth_date__gt=born_by(high + 1, today), then=Value(f"{low}–{high}"))
          for low, high in AGE_BANDS[:-1]],
        When(birth_date__lte=born_by(AGE_BANDS[-1][0], today), then=Value(f"{AGE_BANDS[-1][0]}+")),
        default=Value(""), output_field=CharField(),
    )


def profile_dimension(dimension: str, today: datetime.date) -> QuerySet:
    """(id, dim) for every customer: the value a breakdown groups by."""
    expression = age_band(today) if dimension == "age" else F(dimension)
    return Profile.objects.order_by().annotate(dim=expression).values("id", "dim")


def dimension_label(dimension: str, value) -> str:
    if value in (None, ""):
        return _("unknown")
    if dimension == "gender":
        return str(dict(Gender.choices).get(value, value))
    return str(value)


def event_label(labels: dict[str, str], name: str) -> str:
    return labels.get(name) or name

