"""Typed nodes → a Django Q over Profile. Pure: the same nodes and `now` give the same Q,
with the same meaning on SQLite and PostgreSQL. Behaviour compiles to EXISTS / correlated
aggregates over the events table (indexed on (name, occurred_at) and the profile)."""
import datetime
from decimal import Decimal

from django.db.models import Avg, Count, Exists, F, FloatField, Func, Max, Min, OuterRef, Q, Sum
from django.db.models.functions import Cast, Coalesce
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, ExtractMinute, Substr
from django.db.models.lookups import In
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from consent.models import ConsentState, ConsentStatus, Purpose
from consent.selectors import consent_q
from profiles.models import Event, Profile, ProfileTag, TagCategory, born_by, event_property_path
from profiles.selectors import tag_category_with_descendants

from ..models import SegmentMembership
from . import registry
from .campaigns import campaign_messages
from .nodes import (
    CampaignCondition,
    ConsentCondition,
    EventCondition,
    FieldCondition,
    Group,
    Not,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    Window,
)

COMPARE = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def compile_condition(node, now: datetime.datetime, candidates: Q | None = None) -> Q:
    """`candidates`: conditions on covered fields (registry.FieldSpec.covered) that the
    ancestors AND with this node. Wherever they hold, restricting a subquery to them
    changes nothing, so events aggregates are restricted to them: PostgreSQL then counts
    the orders of the customers who spent ≥ 3,000 (found in an index), not every order
    of the year. Other fields would cost a read of their customers' rows."""
    if isinstance(node, Group):
        if node.op == "all":
            for child in node.children:
                if isinstance(child, FieldCondition) and _covered(child.field):
                    candidates = _field(child, now) & (candidates or Q())
        combined = Q()
        for child in node.children:
            compiled = compile_condition(child, now, candidates)
            combined = (combined & compiled) if node.op == "all" else (combined | compiled)
        return combined
    if isinstance(node, Not):
        return ~compile_condition(node.child, now, candidates)
    if isinstance(node, FieldCondition):
        return _field(node, now)
    if isinstance(node, TagCondition):
        return _tag(node)
    if isinstance(node, EventCondition):
        return _event(node, now, candidates)
    if isinstance(node, SequenceCondition):
        return _sequence(node, now)
    if isinstance(node, ConsentCondition):
        return _consent(node, now)
    if isinstance(node, CampaignCondition):
        return _campaign(node, now)
    if isinstance(node, SegmentCondition):
        return _segment(node, now)
    raise TypeError(f"not a condition node: {node!r}")


# --- fields -------------------------------------------------------------------------------

def _covered(field: str) -> bool:
    spec = registry.PROFILE_FIELDS.get(field)  # custom traits never are
    return spec is not None and spec.covered


def _field(node: FieldCondition, now: datetime.datetime) -> Q:
    spec = registry.field_spec(node.field)
    path, op, value = spec.lookup, node.op, node.value
    if op in {"is_set", "is_empty"}:
        empty = Q(**{f"{path}__isnull": True})
        if spec.type in (registry.TEXT, registry.CHOICE) and not spec.nullable:
            empty |= Q(**{path: ""})
        if spec.name == "gender":
            empty |= Q(gender="unknown")
        return empty if op == "is_empty" else ~empty
    if spec.name == "age":
        return _age(op, value, timezone.localdate(now))
    if path.startswith("traits__"):
        return _trait(path, op, value, timezone.localdate(now))
    compared = _compare_value(path, op, value)
    if compared is not None:
        return compared
    today = timezone.localdate(now)
    if op == "within_last_days":
        since = now - datetime.timedelta(days=value) if spec.type == registry.DATETIME else today - datetime.timedelta(days=value)
        return Q(**{f"{path}__gte": since})
    if op == "more_than_days_ago":
        before = now - datetime.timedelta(days=value) if spec.type == registry.DATETIME else today - datetime.timedelta(days=value)
        return Q(**{f"{path}__lt": before})
    if op == "anniversary_within_days":
        return _anniversary(path, today, value)
    raise ValueError(f"operator {op} not compiled")


def _compare_value(path: str, op: str, value) -> Q | None:
    """The operators that compare the stored value with the given one (None for the
    others). "Not equal" and "none of" hold for an empty value too."""
    if op == "ne":
        return ~Q(**{path: value}) | Q(**{f"{path}__isnull": True})
    if op in COMPARE:
        return Q(**{f"{path}__{COMPARE[op]}": value})
    if op == "in":
        return Q(**{f"{path}__in": list(value)})
    if op == "not_in":
        return ~Q(**{f"{path}__in": list(value)}) | Q(**{f"{path}__isnull": True})
    if op == "contains":
        return Q(**{f"{path}__icontains": value})
    if op == "starts_with":
        return Q(**{f"{path}__istartswith": value})
    if op == "between":
        return Q(**{f"{path}__gte": value[0], f"{path}__lte": value[1]})
    if op == "before":
        return Q(**{f"{path}__lt": value})
    if op == "after":
        return Q(**{f"{path}__gt": value})
    if op == "on_or_after":
        return Q(**{f"{path}__gte": value})
    if op == "on_or_before":
        if isinstance(value, datetime.datetime) and _is_midnight(value):  # a day given: all of it
            return Q(**{f"{path}__lt": _day_after(value)})
        return Q(**{f"{path}__lte": value})
    return None


def _is_midnight(moment: datetime.datetime) -> bool:
    """A time given as a day only (2026-01-31): "on or before" it takes in the whole day."""
    return timezone.localtime(moment).time() == datetime.time.min


def _day_after(moment: datetime.datetime) -> datetime.datetime:
    local = timezone.localtime(moment)
    return timezone.make_aware(datetime.datetime.combine(local.date() + datetime.timedelta(days=1), datetime.time.min),
                               local.tzinfo)


def _json_value(value):
    """A parsed value as the JSON column stores it (see AttributeDefinition.coerce):
    numbers as numbers, dates as ISO strings, which sort like the dates."""
    if isinstance(value, tuple):
        return tuple(_json_value(item) for item in value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _trait(path: str, op: str, value, today: datetime.date) -> Q:
    """A custom trait, compared inside the JSON column. A customer without the key meets
    no comparison, under "not" too: the key's presence is ANDed in, because the missing
    key makes the comparison NULL, and NOT NULL is not true."""
    value = _json_value(value)
    if op in {"ne", "not_in"}:
        return _compare_value(path, op, value)
    if op == "within_last_days":
        condition = Q(**{f"{path}__gte": (today - datetime.timedelta(days=value)).isoformat()})
    elif op == "more_than_days_ago":
        condition = Q(**{f"{path}__lt": (today - datetime.timedelta(days=value)).isoformat()})
    elif op == "anniversary_within_days":  # "MM-DD" of the stored "YYYY-MM-DD"
        month_days = [f"{month:02d}-{day:02d}" for month, days in _upcoming_days(today, value).items() for day in days]
        condition = Q(In(Substr(KeyTextTransform(path.removeprefix("traits__"), "traits"), 6, 5), month_days))
    else:
        condition = _compare_value(path, op, value)
    return Q(traits__has_key=path.removeprefix("traits__")) & condition


def _age(op: str, value, today: datetime.date) -> Q:
    """Age in whole years from the birth date: age ≥ n ⇔ born on or before today − n years."""
    low, high = (value if op == "between" else (value, None) if op == "gte" else (None, value))
    condition = Q()
    if low is not None:
        condition &= Q(birth_date__lte=born_by(int(low), today))
    if high is not None:
        condition &= Q(birth_date__gt=born_by(int(high) + 1, today))
    return condition


def _anniversary(path: str, today: datetime.date, days: int) -> Q:
    """The (month, day) of the date falls within the next `days` days, across new year:
    one term per month, so that a year ahead stays a small query."""
    condition = Q()
    for month, days_of_month in _upcoming_days(today, days).items():
        condition |= Q(**{f"{path}__month": month, f"{path}__day__in": days_of_month})
    return condition


def _upcoming_days(today: datetime.date, days: int) -> dict[int, list[int]]:
    """month → its days among the next `days` days (29 February needs up to four years)."""
    by_month: dict[int, set[int]] = {}
    for offset in range(min(days, 4 * 366) + 1):
        day = today + datetime.timedelta(days=offset)
        by_month.setdefault(day.month, set()).add(day.day)
    return {month: sorted(days_of_month) for month, days_of_month in sorted(by_month.items())}


# --- tags ---------------------------------------------------------------------------------

def _holds(**filters) -> Exists:
    return Exists(ProfileTag.objects.filter(profile_id=OuterRef("pk"), **filters))


def _tag(node: TagCondition) -> Q:
    if node.op == "has":
        return Q(_holds(tag__slug=node.tags[0]))
    if node.op == "has_not":
        return ~Q(_holds(tag__slug=node.tags[0]))
    if node.op == "weight_gte":
        return Q(_holds(tag__slug=node.tags[0], weight__gte=node.weight))
    if node.op == "has_any":
        return Q(_holds(tag__slug__in=list(node.tags)))
    if node.op == "has_all":
        condition = Q()
        for slug in node.tags:
            condition &= Q(_holds(tag__slug=slug))
        return condition
    if node.op == "in_category":
        return Q(_holds(tag__category__in=_category_and_descendants(node.category)))
    raise ValueError(f"tag operator {node.op} not compiled")


def _category_and_descendants(code_or_id: str) -> list[int]:
    root = TagCategory.objects.filter(code=code_or_id).first() or TagCategory.objects.get(pk=int(code_or_id))
    return sorted(tag_category_with_descendants(root.pk))


# --- behaviour ----------------------------------------------------------------------------

def _matching_events(node: EventCondition, now: datetime.datetime, *, profile=None, use_window: bool = True):
    """Events matching the node's name, window, property filters and amount; for the
    profile `profile` (an OuterRef) when given, else for everyone."""
    events = Event.objects.filter(name=node.event)
    if profile is not None:
        events = events.filter(profile_id=profile)
    window = node.window if use_window else None
    if window is not None:
        start, end = window_bounds(window, now)
        events = events.filter(occurred_at__gte=start)
        if end is not None:
            events = events.filter(occurred_at__lt=end)
    for index, item in enumerate(node.where):
        textual = item.op in ("eq", "ne", "in", "not_in", "contains")
        key = event_property_path(item.property, item.value if textual else None)
        if key != "category":
            # Through an alias: in "properties__isnull" a property named like a lookup
            # ("isnull", "in", "contains"…) would be read as that lookup.
            events = events.alias(**{f"property_{index}": KeyTransform(item.property, "properties")})
            key = f"property_{index}"
        # An event without the property is "not equal" / "none of" (like an empty
        # field); exclude() alone would drop it, its comparison being NULL.
        if item.op == "eq":
            events = events.filter(**{key: item.value})
        elif item.op == "ne":
            events = events.filter(~Q(**{key: item.value}) | Q(**{f"{key}__isnull": True}))
        elif item.op == "in":
            events = events.filter(**{f"{key}__in": item.value})
        elif item.op == "not_in":
            events = events.filter(~Q(**{f"{key}__in": item.value}) | Q(**{f"{key}__isnull": True}))
        elif item.op == "contains":
            events = events.filter(**{f"{key}__icontains": item.value})
        else:
            events = events.filter(**{f"{key}__{COMPARE[item.op]}": _json_value(item.value)})
    if node.amount is not None:
        op, value = node.amount
        events = events.exclude(amount=value) if op == "ne" else events.filter(**{f"amount__{COMPARE[op]}": value})
    if (node.time_of_day is not None or node.days_of_week) and node.measure != "share":
        events = _at_local_times(events, node)
    return events


def _at_local_times(events, node: EventCondition):
    """Events at the node's time of day and on its days of the week, on the clock of the
    display time zone (an order at 21:00 Beijing time is "after 20:00", whatever UTC says)."""
    aliases, at = _local_times(node)
    return events.alias(**aliases).filter(at)


def _local_times(node: EventCondition) -> tuple[dict, Q]:
    """The local minute of the day and day of the week (aliases) and the node's condition on them."""
    zone = timezone.get_current_timezone()
    aliases, at = {}, Q()
    if node.time_of_day is not None:
        start, end = node.time_of_day
        if start % 60 == 0 and end % 60 == 0:  # whole hours (20:00–24:00): the hour alone, one extraction
            aliases["local_time"], start, end, day_end = ExtractHour("occurred_at", tzinfo=zone), start // 60, end // 60, 24
        else:
            aliases["local_time"] = ExtractHour("occurred_at", tzinfo=zone) * 60 + ExtractMinute("occurred_at", tzinfo=zone)
            day_end = 24 * 60
        if end in (0, day_end):  # up to midnight
            at &= Q(local_time__gte=start)
        elif start < end:
            at &= Q(local_time__gte=start, local_time__lt=end)
        else:  # past midnight: 22:00–06:00
            at &= Q(local_time__gte=start) | Q(local_time__lt=end)
    if node.days_of_week:
        aliases["local_weekday"] = ExtractIsoWeekDay("occurred_at", tzinfo=zone)
        at &= Q(local_weekday__in=list(node.days_of_week))
    return aliases, at


def window_bounds(window: Window, now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime | None]:
    """[start, end) of a window at `now`; end None: up to now. Calendar periods begin at
    midnight in the display time zone (Asia/Shanghai by default), weeks on Monday."""
    if window.amount is not None:
        if window.unit == "months":
            return now - relativedelta(months=window.amount), None
        return now - datetime.timedelta(**{window.unit: window.amount}), None
    if not window.period:
        return window.start, window.end
    today = timezone.localtime(now).date()
    monday = today - datetime.timedelta(days=today.weekday())
    first = today.replace(day=1)
    start, end = {
        "today": (today, today + datetime.timedelta(days=1)),
        "yesterday": (today - datetime.timedelta(days=1), today),
        "this_week": (monday, monday + datetime.timedelta(days=7)),
        "last_week": (monday - datetime.timedelta(days=7), monday),
        "this_month": (first, first + relativedelta(months=1)),
        "last_month": (first - relativedelta(months=1), first),
        "this_year": (today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1)),
    }[window.period]
    zone = timezone.get_current_timezone()
    return (timezone.make_aware(datetime.datetime.combine(start, datetime.time.min), zone),
            timezone.make_aware(datetime.datetime.combine(end, datetime.time.min), zone))


class JSONNumber(Func):
    """A JSON property's value where it is a number, else NULL (a text such as "abc" is not
    cast, which would fail on PostgreSQL)."""

    output_field = FloatField()

    def __init__(self, name: str):
        super().__init__(KeyTransform(name, "properties"))
        self.name = name

    def as_postgresql(self, compiler, connection):
        column, params = compiler.compile(self.source_expressions[0].lhs)
        return (f"CASE WHEN jsonb_typeof({column} -> %s) = 'number' THEN ({column} ->> %s)::double precision END",
                [*params, self.name, *params, self.name])

    def as_sqlite(self, compiler, connection):
        column, params = compiler.compile(self.source_expressions[0].lhs)
        path = f"$.\"{self.name}\""
        return (f"CASE WHEN json_type({column}, %s) IN ('integer', 'real') THEN json_extract({column}, %s) END",
                [*params, path, *params, path])


def _aggregate(node: EventCondition):
    """The measure of a customer's matching events. COUNT(*), not COUNT(id): the (name,
    occurred_at) index covers profile_id, so counts without property filters are answered
    by an index-only scan on PostgreSQL."""
    if node.measure == "count":
        return Count("*")
    if node.measure == "distinct":
        path = event_property_path(node.of, "")
        return Count(path if path == "category" else KeyTextTransform(node.of, "properties"), distinct=True)
    function = {"sum": Sum, "avg": Avg, "min": Min, "max": Max}[node.measure]
    if not node.of:
        return function("amount")
    aggregate = function(JSONNumber(node.of))
    return Coalesce(aggregate, 0.0) if node.measure == "sum" else aggregate  # events without the property add 0


def _event(node: EventCondition, now: datetime.datetime, candidates: Q | None = None) -> Q:
    if node.measure == "count" and node.op in ("gte", "gt") and node.value <= (1 if node.op == "gte" else 0):
        if node.op == "gt":  # more than 0 times: at least once
            return Q(Exists(_matching_events(node, now, profile=OuterRef("pk"))))
        if node.value == 0:  # everyone; not Q(), which vanishes inside OR and NOT
            return Q(pk__isnull=False)
        return Q(Exists(_matching_events(node, now, profile=OuterRef("pk"))))
    # One GROUP BY over the matching events (not a subquery per customer).
    events = _matching_events(node, now)
    if candidates is not None:
        events = events.filter(profile_id__in=Profile.objects.filter(candidates).values("pk"))
    if (node.measure, node.op) in (("max", "gte"), ("max", "gt"), ("min", "lte"), ("min", "lt")):
        # The greatest is ≥ v exactly when some value is ≥ v (the least ≤ v when some value
        # is ≤ v; values that are not numbers count in neither): a semi-join, no GROUP BY.
        value = JSONNumber(node.of) if node.of else F("amount")
        some = events.alias(v=value).filter(**{f"v__{COMPARE[node.op]}": node.value})
        return Q(pk__in=some.order_by().values("profile_id"))
    per_profile = events.order_by().values("profile_id")
    if node.measure == "share":  # of the customer's events, the share at these times (a usual time)
        aliases, at = _local_times(node)
        shares = per_profile.alias(**aliases).annotate(
            m=Cast(Count("id", filter=at), FloatField()) / Cast(Count("*"), FloatField()))
        meets = ~Q(m=node.value) if node.op == "ne" else Q(**{f"m__{COMPARE[node.op]}": float(node.value)})
        return Q(pk__in=shares.filter(meets).values("profile_id"))
    if node.measure == "first_within":
        firsts = per_profile.annotate(m=Min("occurred_at")).filter(m__gte=now - datetime.timedelta(days=node.value))
        return Q(pk__in=firsts.values("profile_id"))
    if node.measure == "last_before":
        lasts = per_profile.annotate(m=Max("occurred_at")).filter(m__lt=now - datetime.timedelta(days=node.value))
        return Q(pk__in=lasts.values("profile_id"))
    measured = per_profile.annotate(m=_aggregate(node))
    if node.op == "between":
        meets = Q(m__gte=node.value[0], m__lte=node.value[1])
    elif node.op in ("eq", "ne"):
        meets = Q(m=node.value) if node.op == "eq" else ~Q(m=node.value)
    else:
        meets = Q(**{f"m__{COMPARE[node.op]}": node.value})
    # Customers without a matching event have a count, sum and distinct count of 0: they
    # match exactly when 0 meets the comparison. An average, least or greatest of nothing
    # matches nothing.
    if node.measure in ("count", "sum", "distinct") and _compare(0, node.op, node.value):
        return ~Q(pk__in=measured.exclude(meets).values("profile_id"))
    return Q(pk__in=measured.filter(meets).values("profile_id"))


def _compare(left, op: str, right) -> bool:
    if op == "between":
        return right[0] <= left <= right[1]
    return {"eq": left == right, "ne": left != right, "gt": left > right, "gte": left >= right,
            "lt": left < right, "lte": left <= right}[op]


def _sequence(node: SequenceCondition, now: datetime.datetime) -> Q:
    """EXISTS a first step a such that EXISTS a step b of the same customer with
    a.occurred_at < b.occurred_at ≤ a.occurred_at + gap, such that EXISTS a step c after b …
    one subquery per step, each reading the time of the step before it (OuterRef). With
    "not_then" the last step is NOT EXISTS, counted only once its gap has passed, so that
    people still inside it are not reported as having dropped out."""
    steps, gaps = node.steps, node.gaps
    last_done = len(steps) - 1 if node.op == "then" else len(steps) - 2

    # Every later step happens after the first, so after the first step's window opens: a
    # bound the (profile, time) index can use, which the correlated one alone is not.
    opens = window_bounds(steps[0].window, now)[0] if steps[0].window is not None else None

    def following(k: int):
        """Step k's events within its gap after the enclosing query's row (step k - 1)."""
        gap = datetime.timedelta(days=gaps[k - 1])
        events = _matching_events(steps[k], now, profile=OuterRef("profile_id"), use_window=False).filter(
            occurred_at__gt=OuterRef("occurred_at"), occurred_at__lte=OuterRef("occurred_at") + gap)
        if opens is not None:
            events = events.filter(occurred_at__gt=opens)
        return events.filter(then(k))

    def then(k: int) -> Q:
        """What must hold of a row of step k."""
        if k > last_done:
            return Q()
        condition = Q()
        if k == last_done and node.excluding is not None and k >= 1:
            first_time = "occurred_at"
            for _level in range(k + 1):  # the first step's row, k + 1 queries out
                first_time = OuterRef(first_time)
            between = _matching_events(node.excluding, now, profile=OuterRef("profile_id"), use_window=False).filter(
                occurred_at__gt=first_time, occurred_at__lt=OuterRef("occurred_at"))
            condition &= ~Q(Exists(between))
        if k < last_done:
            condition &= Q(Exists(following(k + 1)))
        elif node.op == "not_then":
            settled = now - datetime.timedelta(days=gaps[k])
            condition &= Q(occurred_at__lte=settled) & ~Q(Exists(following(k + 1)))
        return condition

    firsts = _matching_events(steps[0], now, profile=OuterRef("pk"))
    return Q(Exists(firsts.filter(then(0))))


# --- campaigns ----------------------------------------------------------------------------

def _campaign(node: CampaignCondition, now: datetime.datetime) -> Q:
    """How many of the customer's messages had the action, compared: one semi-join (at
    least once) or one GROUP BY over the messages; customers never messaged count 0."""
    start, end = window_bounds(node.window, now) if node.window is not None else (None, None)
    messages = campaign_messages(node, start, end, now).order_by()
    if (node.op, node.value) in (("gte", 1), ("gt", 0)):
        return Q(pk__in=messages.values("profile_id"))
    counted = messages.values("profile_id").annotate(m=Count("*"))
    if node.op == "between":
        meets = Q(m__gte=node.value[0], m__lte=node.value[1])
    else:
        meets = ~Q(m=node.value) if node.op == "ne" else Q(**{f"m__{COMPARE[node.op]}": node.value})
    if _compare(0, node.op, node.value):
        return ~Q(pk__in=counted.exclude(meets).values("profile_id"))
    return Q(pk__in=counted.filter(meets).values("profile_id"))


# --- consent and other segments -------------------------------------------------------------

def _consent(node: ConsentCondition, now: datetime.datetime) -> Q:
    if node.op in ("granted", "not_granted"):
        allowed = consent_q(Purpose.objects.get(code=node.purpose), now)
        return allowed if node.op == "granted" else ~allowed
    states = ConsentState.objects.filter(profile_id=OuterRef("pk"), purpose__code=node.purpose)
    current = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    return {
        "state_never_asked": ~Q(Exists(states)),
        "state_granted": Q(Exists(states.filter(current, status=ConsentStatus.GRANTED))),
        "state_expired": Q(Exists(states.filter(status=ConsentStatus.GRANTED, expires_at__lte=now))),
        "state_denied": Q(Exists(states.filter(status=ConsentStatus.DENIED))),
        "state_withdrawn": Q(Exists(states.filter(status=ConsentStatus.WITHDRAWN))),
    }[node.op]


def _segment(node: SegmentCondition, now: datetime.datetime) -> Q:
    if node.definition is not None:
        inside = compile_condition(node.definition, now)
    else:
        inside = Q(Exists(SegmentMembership.objects.filter(segment_id=node.segment_id, profile_id=OuterRef("pk"))))
    return inside if node.op == "in" else ~inside


def events_matching(node: EventCondition, now: datetime.datetime):
    """The events an event node asks about (name, window, property and amount filters),
    for everyone: campaign triggers start from them."""
    return _matching_events(node, now)
