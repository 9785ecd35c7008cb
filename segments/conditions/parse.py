"""JSON → typed nodes, validated against the registry. Every problem is reported with the
path of the node that has it ("all[2].count.value: …"); nothing invalid ever compiles,
so a bad definition can never silently match everyone."""
import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from cdp.dates import typed_moment
from consent.models import Channel, Purpose
from profiles.masking import can_see_personal_data
from profiles.models import EventDefinition, Tag, TagCategory
from profiles.normalisers import (
    NormalisationError,
    normalise_city,
    normalise_date,
    normalise_email,
    normalise_gender,
    normalise_phone,
    normalise_province,
)

from ..models import Segment
from . import registry, schema
from .campaigns import ACTIONS, ANY, WITHOUT_ACTIONS, campaign_source
from .nodes import (
    CampaignCondition,
    ConsentCondition,
    EventCondition,
    FieldCondition,
    Group,
    Not,
    PropertyFilter,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    Window,
)

MAX_DEPTH = 20
# Phones and emails are shown masked to staff without the permission to see personal data;
# matching them by a part would recover them a character at a time (a count per guess).
PERSONAL_FIELDS = {"phone", "email"}
PART_OPERATORS = {"contains", "starts_with"}


class Problems:
    def __init__(self):
        self.items: list[tuple[str, str]] = []
        self.visiting: list[str] = []  # segment slugs being expanded, outermost first
        self.whole_personal_values_only = False  # the writer may not see phones and emails

    def add(self, path: str, message: str) -> None:
        self.items.append((path or "$", message))


def parse(definition, *, defining: str | None = None, user=None) -> object:
    """The node tree for `definition`, or ValidationError listing every problem.
    `defining` is the slug of the segment being defined: a reference back to it, direct
    or through other segments, is a cycle and refused. `user` is the staff member writing
    it (None: the system reading a stored definition): without the permission to see
    personal data they compare phones and emails with whole values only, not a part.
    Segments they refer to were checked for whoever wrote those."""
    problems = Problems()
    problems.visiting = [defining] if defining else []
    problems.whole_personal_values_only = user is not None and not can_see_personal_data(user)
    nul = _nul_path(definition)
    if nul is not None:  # PostgreSQL refuses text holding NUL: such a value never reaches a query
        problems.add(nul, _("This text contains a NUL character (\\u0000), which cannot be stored or searched."))
        node = None
    else:
        node = _node(definition, "", problems, depth=0)
    if problems.items:
        raise ValidationError(
            [ValidationError("%(path)s: %(message)s", code="invalid_condition", params={"path": p, "message": m})
             for p, m in problems.items]
        )
    return node


def _nul_path(data) -> str | None:
    """The path of the first key or text holding a NUL character, if any (walked without
    recursion, however deep the definition)."""
    stack = [(data, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return path or "$"
        if isinstance(item, dict):
            for key, value in item.items():
                if "\x00" in str(key):
                    return path or "$"
                stack.append((value, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list):
            stack.extend((value, f"{path}[{index}]") for index, value in enumerate(item))
    return None


def _node(data, path: str, problems: Problems, depth: int):
    if depth > MAX_DEPTH:
        problems.add(path, _("Groups are nested too deeply (at most %(n)s levels).") % {"n": MAX_DEPTH})
        return None
    if not isinstance(data, dict) or not data:
        problems.add(path, _("Each condition must be an object such as {\"field\": \"city\", \"op\": \"eq\", \"value\": \"上海\"}."))
        return None
    kind = schema.kind_of(data)
    if kind is None:
        problems.add(path, _unknown_condition())
        return None
    shape = schema.shape_problems(kind, data, path)
    if shape:
        for at, message in shape:
            problems.add(at, message)
        return None
    for key in ("all", "any"):
        if key in data:
            children = data[key]
            if not isinstance(children, list) or not children:
                problems.add(f"{path}{key}", _("A group needs a list of at least one condition."))
                return None
            return Group(key, tuple(_node(c, f"{path}{key}[{i}].", problems, depth + 1) for i, c in enumerate(children)))
    if "not" in data:
        return Not(_node(data["not"], f"{path}not.", problems, depth + 1))
    if "field" in data:
        return _field(data, path, problems)
    if any(key in data for key in ("tag", "tags", "tag_category")):
        return _tag(data, path, problems)
    if "event" in data:
        return _event(data, path, problems)
    if "sequence" in data:
        return _sequence(data, path, problems)
    if "campaign" in data:
        return _campaign(data, path, problems)
    if "consent" in data:
        return _consent(data, path, problems)
    if "segment" in data:
        return _segment(data, path, problems, depth)
    problems.add(path, _unknown_condition())
    return None


def _unknown_condition() -> str:
    return _("Unknown condition: use all, any, not, field, tag, tags, tag_category, event, sequence, campaign, "
             "consent or segment.")


def _field(data: dict, path: str, problems: Problems):
    spec = registry.field_spec(str(data["field"]))
    if spec is None:
        problems.add(f"{path}field", _("“%(field)s” is not a field that can be queried.") % {"field": data["field"]})
        return None
    op = data.get("op")
    if op not in registry.OPERATORS[spec.type]:
        problems.add(f"{path}op", _("“%(op)s” does not apply to %(field)s; use one of: %(ops)s.")
                     % {"op": op, "field": spec.label, "ops": ", ".join(sorted(registry.OPERATORS[spec.type]))})
        return None
    if problems.whole_personal_values_only and spec.name in PERSONAL_FIELDS and op in PART_OPERATORS:
        problems.add(f"{path}op", _("Without the permission to see personal data, compare %(field)s with a whole "
                                    "value (equals, is one of), not a part of it.") % {"field": spec.label})
        return None
    if spec.name == "age" and op not in {"between", "gte", "lte", "is_set", "is_empty"}:
        problems.add(f"{path}op", _("Age takes between, gte, lte, is set or is empty."))
        return None
    value = _field_value(spec, op, data.get("value"), f"{path}value", problems)
    if spec.name in YEAR_BOUNDS and value is not None:
        low, high = YEAR_BOUNDS[spec.name]
        for i, years in enumerate(value if isinstance(value, tuple) else (value,)):
            if years is not None and not (years == years.to_integral_value() and low <= years <= high):
                at = f"{path}value[{i}]" if isinstance(value, tuple) else f"{path}value"
                problems.add(at, (_("An age is a whole number of years from 0 to %(max)s.") if spec.name == "age"
                                  else _("A birth year is a year like 1995 (%(min)s to %(max)s)."))
                             % {"min": low, "max": high})
    return FieldCondition(spec.name, op, value)


MAX_AGE = 150
# Ages are birth dates counted back from today and birth years a calendar year: outside
# these, no date exists to compare with (year 0, 5,000 years ago) and the query cannot be built.
YEAR_BOUNDS = {"age": (0, MAX_AGE), "birth_year": (1, 9999)}


def _field_value(spec, op: str, value, path: str, problems: Problems):
    if op in {"is_set", "is_empty"}:
        return None
    if op in {"within_last_days", "more_than_days_ago", "anniversary_within_days"}:
        return _whole(value, path, problems, minimum=0)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            problems.add(path, _("“between” takes a list of two values, [from, to]."))
            return None
        return tuple(_scalar(spec, v, f"{path}[{i}]", problems, op) for i, v in enumerate(value))
    if op in {"in", "not_in"}:
        if not isinstance(value, list) or not value:
            problems.add(path, _("“%(op)s” takes a non-empty list of values.") % {"op": op})
            return None
        return tuple(_scalar(spec, v, f"{path}[{i}]", problems, op) for i, v in enumerate(value))
    return _scalar(spec, value, path, problems, op)


# Values compared with what imports and the API store are normalised the same way, so that
# 上海市, Shanghai and 上海 (or 女士 and female, 138-0013-8000 and +8613800138000) ask the
# same question. Parts (contains, starts with) are compared as typed.
VALUE_NORMALISERS = {"city": normalise_city, "province": normalise_province, "gender": normalise_gender,
                     "phone": normalise_phone, "email": normalise_email}
WHOLE_VALUE_OPERATORS = {"eq", "ne", "in", "not_in"}


def _scalar(spec, value, path: str, problems: Problems, op: str = "eq"):
    if spec.type == registry.NUMBER:
        return _number(value, path, problems)
    if spec.type in (registry.DATE, registry.DATETIME):
        return _moment(value, path, problems, as_datetime=spec.type == registry.DATETIME)
    normalise = VALUE_NORMALISERS.get(spec.name)
    if normalise and op in WHOLE_VALUE_OPERATORS and isinstance(value, str) and value.strip():
        try:
            value = normalise(value)
        except NormalisationError as error:
            problems.add(path, str(error))
            return value
    if spec.type == registry.CHOICE:
        if value not in spec.choices:
            problems.add(path, _("“%(value)s” is not one of: %(choices)s.")
                         % {"value": value, "choices": ", ".join(map(str, spec.choices))})
        return value
    if not isinstance(value, str) or value == "":
        problems.add(path, _("Give a non-empty text value."))
    return value


def _number(value, path: str, problems: Problems) -> Decimal | None:
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        number = Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation
        return number
    except (InvalidOperation, ValueError):
        problems.add(path, _("“%(value)s” is not a number.") % {"value": value})
        return None


# Bounds that keep a number inside what the databases compute with: a century of days,
# and counts no customer reaches.
MAX_DAYS, MAX_COUNT = 36_500, 1_000_000_000


def _whole(value, path: str, problems: Problems, minimum: int, maximum: int = MAX_DAYS) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        problems.add(path, _("Give a whole number from %(min)s to %(max)s.") % {"min": minimum, "max": maximum})
        return None
    return value


def _moment(value, path: str, problems: Problems, as_datetime: bool):
    """A date ("2026-01-31") or datetime; datetimes without a zone are in the display zone."""
    parsed = None
    if isinstance(value, str):
        parsed = typed_moment(value)
        if parsed is None and ":" not in value:  # the dates imports accept: 2026/1/31, 2026年1月31日 …
            try:
                parsed = normalise_date(value)
            except NormalisationError:
                parsed = None
    if parsed is None:
        problems.add(path, _("“%(value)s” is not a date like 2026-01-31.") % {"value": value})
        return None
    if as_datetime:
        from django.utils import timezone

        if not isinstance(parsed, datetime.datetime):
            parsed = datetime.datetime.combine(parsed, datetime.time.min)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
    elif isinstance(parsed, datetime.datetime):
        parsed = parsed.date()
    return parsed


def _tag(data: dict, path: str, problems: Problems):
    op = data.get("op")
    if "tag_category" in data:
        category = str(data["tag_category"])
        exists = TagCategory.objects.filter(code=category).exists() or (
            category.isdigit() and TagCategory.objects.filter(pk=int(category)).exists()
        )
        if op != "has_any" or not exists:
            problems.add(path, _("Use {\"tag_category\": <root code or id>, \"op\": \"has_any\"} with an existing category."))
            return None
        return TagCondition("in_category", category=category)
    slugs = data.get("tags") if "tags" in data else [data.get("tag")]
    if not isinstance(slugs, list) or not slugs or not all(isinstance(s, str) and s for s in slugs):
        problems.add(path, _("Name the tag(s) by slug or name."))
        return None
    # A tag is named by its slug or, as marketers write it, by its name (喜欢运动鞋).
    found = dict(Tag.objects.filter(slug__in=slugs).values_list("slug", "slug"))
    named: dict[str, list[str]] = {}
    for name, slug in Tag.objects.filter(name__in=set(slugs) - set(found)).values_list("name", "slug"):
        named.setdefault(name, []).append(slug)
    key = "tags" if "tags" in data else "tag"
    for i, slug in enumerate(slugs):
        at = f"{path}{key}[{i}]" if key == "tags" else f"{path}tag"
        if len(named.get(slug, [])) == 1:
            found[slug] = named[slug][0]
        elif slug in named:
            problems.add(at, _("Several tags are called “%(name)s” (%(slugs)s): name one by its slug.")
                         % {"name": slug, "slugs": ", ".join(sorted(named[slug]))})
        elif slug not in found:
            problems.add(at, _("There is no tag “%(slug)s”.") % {"slug": slug})
    slugs = [found.get(slug, slug) for slug in slugs]
    allowed = {"has", "has_not", "weight_gte"} if "tag" in data else {"has_any", "has_all"}
    if op not in allowed:
        problems.add(f"{path}op", _("Use one of: %(ops)s.") % {"ops": ", ".join(sorted(allowed))})
        return None
    weight = None
    if op == "weight_gte":
        weight = _number(data.get("value"), f"{path}value", problems)
        if weight is not None and not 0 <= weight <= 1:
            problems.add(f"{path}value", _("An interest weight is between 0 and 1."))
        weight = float(weight) if weight is not None else None
    return TagCondition(op, tags=tuple(slugs), weight=weight)


# A rolling window's unit → its largest amount (a century, as for days).
WINDOW_UNITS = {"minutes": MAX_DAYS * 1440, "hours": MAX_DAYS * 24, "days": MAX_DAYS, "weeks": MAX_DAYS // 7,
                "months": MAX_DAYS // 30}
PERIODS = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year")


def _window(data, path: str, problems: Problems) -> Window | None:
    if data is None:
        return None
    if isinstance(data, dict) and len(data) > 1:
        problems.add(path, _("A window is one of: the last N minutes, hours, days, weeks or months, a calendar "
                             "period, or between two dates."))
        return None
    unit = next((unit for unit in WINDOW_UNITS if isinstance(data, dict) and unit in data), None)
    if unit:
        return Window(amount=_whole(data[unit], f"{path}.{unit}", problems, minimum=1, maximum=WINDOW_UNITS[unit]),
                      unit=unit)
    if isinstance(data, dict) and "period" in data:
        if data["period"] not in PERIODS:
            problems.add(f"{path}.period", _("A period is one of: %(periods)s.") % {"periods": ", ".join(PERIODS)})
            return None
        return Window(period=data["period"])
    if isinstance(data, dict) and isinstance(data.get("between"), list) and len(data["between"]) == 2:
        start, end = (_moment(v, f"{path}.between[{i}]", problems, as_datetime=True) for i, v in enumerate(data["between"]))
        if start and end and start >= end:
            problems.add(path, _("The window must start before it ends."))
        return Window(start=start, end=end)
    problems.add(path, _("A window is {\"days\": 30} (or minutes, hours, weeks, months), {\"period\": "
                         "\"this_month\"} or {\"between\": [\"2026-01-01\", \"2026-02-01\"]}."))
    return None


def _event(data: dict, path: str, problems: Problems, in_sequence: bool = False) -> EventCondition | None:
    name = data.get("event")
    if not EventDefinition.objects.filter(name=name).exists():
        problems.add(f"{path}event", _("“%(event)s” is not a registered event.") % {"event": name})
    where, filters = [], data.get("where") or []
    if not isinstance(filters, list):
        problems.add(f"{path}where", _("Property filters are a list: [{\"property\": \"category\", \"op\": \"eq\", \"value\": \"sneakers\"}]."))
        filters = []
    for i, item in enumerate(filters):
        item_path = f"{path}where[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("property"), str) or not item["property"].isidentifier():
            problems.add(item_path, _("Filter a property like {\"property\": \"category\", \"op\": \"eq\", \"value\": \"sneakers\"}."))
            continue
        if item.get("op") not in registry.PROPERTY_OPERATORS:
            problems.add(f"{item_path}.op", _("Use one of: %(ops)s.") % {"ops": ", ".join(sorted(registry.PROPERTY_OPERATORS))})
            continue
        value = item.get("value")
        if item["op"] in {"in", "not_in"} and (not isinstance(value, list) or not value):
            problems.add(f"{item_path}.value", _("“%(op)s” takes a non-empty list of values.") % {"op": item["op"]})
        if item["op"] in {"gt", "gte", "lt", "lte"}:
            value = _number(value, f"{item_path}.value", problems)
        where.append(PropertyFilter(item["property"], item["op"], value))
    amount = None
    if "amount" in data:
        spec = data["amount"]
        if not isinstance(spec, dict) or spec.get("op") not in registry.AMOUNT_OPERATORS:
            problems.add(f"{path}amount", _("Compare the amount like {\"op\": \"gte\", \"value\": 300}."))
        else:
            amount = (spec["op"], _number(spec.get("value"), f"{path}amount.value", problems))
    window = _window(data.get("within"), f"{path}within", problems) if "within" in data else None
    when = {"time_of_day": _time_of_day(data.get("time_of_day"), f"{path}time_of_day", problems),
            "days_of_week": _days_of_week(data.get("days_of_week", []), f"{path}days_of_week", problems)}
    if in_sequence:
        return EventCondition(name, window=window, where=tuple(where), amount=amount, **when)

    measures = [key for key in ("count", "first_within_days", "last_more_than_days_ago", *AGGREGATE_MEASURES)
                if key in data]
    if len(measures) > 1:
        problems.add(path, _("Use only one of count, first_within_days, last_more_than_days_ago, sum, avg, min, max "
                             "or distinct."))
        return None
    if "share" in data and when["time_of_day"] is None and not when["days_of_week"]:
        problems.add(f"{path}share", _("A share compares the events at a time of day or on days of the week with all "
                                       "of them: add “time_of_day” or “days_of_week”."))
        return None
    measure = measures[0] if measures else "count"
    if measure in ("count", *AGGREGATE_MEASURES):
        spec = data.get(measure, {"op": "gte", "value": 1})
        of = spec.get("of", "") if isinstance(spec, dict) else ""
        if of and not of.isidentifier():
            problems.add(f"{path}{measure}.of", _("Name an event property, like price or category."))
        counted = measure in ("count", "distinct")
        operators = registry.COUNT_OPERATORS if counted else registry.AMOUNT_OPERATORS
        if not isinstance(spec, dict) or spec.get("op") not in operators:
            problems.add(f"{path}{measure}", _("Use {\"op\": one of %(ops)s, \"value\": …}.") % {"ops": ", ".join(sorted(operators))})
            return None
        if measure == "share":
            value = _number(spec.get("value"), f"{path}share.value", problems)
            if value is not None and not 0 <= value <= 1:
                problems.add(f"{path}share.value", _("A share is between 0 and 1 (0.5 = half)."))
        elif spec["op"] == "between":
            value = _count_range(spec.get("value"), f"{path}{measure}.value", problems)
        else:
            value = (_whole(spec.get("value"), f"{path}{measure}.value", problems, minimum=0, maximum=MAX_COUNT)
                     if counted
                     else _number(spec.get("value"), f"{path}{measure}.value", problems))
        return EventCondition(name, measure, spec["op"], value, window, tuple(where), amount, **when, of=of)
    days = _whole(data[measure], f"{path}{measure}", problems, minimum=1)
    if window is not None:
        problems.add(f"{path}within", _("first/last conditions carry their own number of days; drop “within”."))
    short = "first_within" if measure == "first_within_days" else "last_before"
    return EventCondition(name, short, "gte", days, None, tuple(where), amount, **when)


# Measures over the matching events: sum, average, least and greatest of the amount or of a
# numeric property ("of"), and how many distinct values a property takes.
AGGREGATE_MEASURES = ("sum", "avg", "min", "max", "distinct", "share")


def _time_of_day(data, path: str, problems: Problems) -> tuple[int, int] | None:
    """{"from": "20:00", "to": "24:00"} → minutes after midnight [from, to); "22:00"–"06:00"
    wraps past midnight."""
    if data is None:
        return None
    bounds = []
    for key in ("from", "to"):
        text = data[key]
        hours, _sep, minutes = text.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2
                and 0 <= int(hours) * 60 + int(minutes) <= 24 * 60 and int(minutes) < 60):
            problems.add(f"{path}.{key}", _("“%(value)s” is not a time like 20:00 (00:00 to 24:00).") % {"value": text})
            return None
        bounds.append(int(hours) * 60 + int(minutes))
    if bounds[0] == bounds[1]:
        problems.add(path, _("The time of day must not start and end at the same time."))
        return None
    return bounds[0], bounds[1]


def _days_of_week(days, path: str, problems: Problems) -> tuple[int, ...]:
    for i, day in enumerate(days):
        if isinstance(day, bool) or not 1 <= day <= 7:
            problems.add(f"{path}[{i}]", _("Days of the week are 1 (Monday) to 7 (Sunday)."))
    return tuple(sorted(set(days)))


def _count_range(value, path: str, problems: Problems) -> tuple[int, int] | None:
    """[from, to] of a count "between", both ends included."""
    if not isinstance(value, list) or len(value) != 2:
        problems.add(path, _("“between” takes a list of two values, [from, to]."))
        return None
    low, high = (_whole(v, f"{path}[{i}]", problems, minimum=0, maximum=MAX_COUNT) for i, v in enumerate(value))
    if low is not None and high is not None and low > high:
        problems.add(path, _("The first number must not be greater than the second."))
    return (low, high)


MAX_SEQUENCE_STEPS = 5


def _sequence(data: dict, path: str, problems: Problems):
    steps = data.get("sequence")
    if not isinstance(steps, list) or not 2 <= len(steps) <= MAX_SEQUENCE_STEPS:
        problems.add(f"{path}sequence", _("A sequence is a list of 2 to %(n)s events, in the order they happen.")
                     % {"n": MAX_SEQUENCE_STEPS})
        return None
    parsed = tuple(_event(step, f"{path}sequence[{i}].", problems, in_sequence=True) for i, step in enumerate(steps))
    default_gap = (_whole(data["within_days"], f"{path}within_days", problems, minimum=1)
                   if "within_days" in data else None)
    gaps = []
    for i, step in enumerate(steps[1:], start=1):
        if "within" in step:
            problems.add(f"{path}sequence[{i}].within", _("A later step's time is bounded by “within_days” after the "
                                                         "step before it; remove its own window."))
        if "within_days" in step:
            gaps.append(_whole(step["within_days"], f"{path}sequence[{i}].within_days", problems, minimum=1))
        elif default_gap is None:
            problems.add(f"{path}sequence[{i}]", _("Say within how many days this step follows the one before: its "
                                                   "own “within_days” or the sequence's."))
        else:
            gaps.append(default_gap)
    if "within_days" in steps[0]:
        problems.add(f"{path}sequence[0].within_days", _("The first step follows nothing: bound it with a window "
                                                         "(“within”) instead."))
    op = data.get("op", "then")
    if op not in {"then", "not_then"}:
        problems.add(f"{path}op", _("A sequence's op is “then” or “not_then”."))
    excluding = None
    if "not_between" in data:
        excluding = _event(data["not_between"], f"{path}not_between.", problems, in_sequence=True)
        if op == "not_then" and len(steps) == 2:
            problems.add(f"{path}not_between", _("With “not_then” and two steps only the first step happens: "
                                                 "there is nothing in between."))
        if "within" in data["not_between"] or "within_days" in data["not_between"]:
            problems.add(f"{path}not_between", _("What must not happen in between takes no time bounds of its own."))
    return SequenceCondition(parsed, tuple(gaps), op, excluding)


def _campaign(data: dict, path: str, problems: Problems):
    """{"campaign": 12 | "双11短信" | "any", "action": "received", "without": "clicked",
    "channel": "sms" (with any), "within": {...}, "count": {...}}."""
    source = campaign_source()
    if source is None:
        problems.add(f"{path}campaign", _("Campaign conditions are not available: the campaigns app is not installed."))
        return None
    ref, campaign_id = data["campaign"], None
    if ref != ANY:
        found = source.find(ref) if not isinstance(ref, bool) else []
        if len(found) == 1:
            campaign_id = found[0]
        elif found:
            problems.add(f"{path}campaign", _("Several campaigns are called “%(name)s” (ids %(ids)s): name one by "
                                              "its id.") % {"name": ref, "ids": ", ".join(map(str, sorted(found)))})
        else:
            problems.add(f"{path}campaign", _("There is no campaign “%(campaign)s”; give its id or name, or “any”.")
                         % {"campaign": ref})
    action = data.get("action")
    if action not in ACTIONS:
        problems.add(f"{path}action", _("“%(action)s” is not something campaigns record; use one of: %(actions)s.")
                     % {"action": action, "actions": ", ".join(ACTIONS)})
        return None
    channel = data.get("channel", "")
    if channel and ref != ANY:
        problems.add(f"{path}channel", _("A campaign has its own channel: name a channel with “any” campaign only."))
    elif channel and channel not in Channel.values:
        problems.add(f"{path}channel", _("“%(channel)s” is not a channel; use one of: %(channels)s.")
                     % {"channel": channel, "channels": ", ".join(Channel.values)})
    without = data.get("without", "")
    if without and without not in WITHOUT_ACTIONS[action]:
        allowed = WITHOUT_ACTIONS[action]
        problems.add(f"{path}without", (_("“without” names what did not follow on the same message: for "
                                          "“%(action)s” one of %(allowed)s.") if allowed else
                                        _("Nothing follows “%(action)s” on a message: drop “without”."))
                     % {"action": action, "allowed": ", ".join(allowed)})
    window = _window(data["within"], f"{path}within", problems) if "within" in data else None
    spec = data.get("count", {"op": "gte", "value": 1})
    if spec["op"] not in registry.COUNT_OPERATORS:
        problems.add(f"{path}count.op", _("Use one of: %(ops)s.") % {"ops": ", ".join(sorted(registry.COUNT_OPERATORS))})
        return None
    if spec["op"] == "between":
        value = _count_range(spec.get("value"), f"{path}count.value", problems)
    else:
        value = _whole(spec.get("value"), f"{path}count.value", problems, minimum=0, maximum=MAX_COUNT)
    return CampaignCondition(action, campaign_id, channel, without, spec["op"], value, window)


# granted / not_granted: whether consent counts now (expiry, notice version, a guardian's for
# minors: consent.selectors.consent_q). state_*: the state last recorded, as it was said.
CONSENT_OPERATORS = ("granted", "not_granted", "state_granted", "state_denied", "state_withdrawn", "state_expired",
                     "state_never_asked")


def _consent(data: dict, path: str, problems: Problems):
    code = data.get("consent")
    if not isinstance(code, str) or not Purpose.objects.filter(code=code, is_active=True).exists():
        problems.add(f"{path}consent", _("“%(code)s” is not an active purpose.") % {"code": code})
    op = data.get("op", "granted")
    if op not in CONSENT_OPERATORS:
        problems.add(f"{path}op", _("A consent condition's op is one of: %(ops)s.") % {"ops": ", ".join(CONSENT_OPERATORS)})
    return ConsentCondition(str(code), op)


def _segment(data: dict, path: str, problems: Problems, depth: int):
    slug = data.get("segment")
    op = data.get("op", "in")
    if op not in {"in", "not_in"}:
        problems.add(f"{path}op", _("A segment condition's op is “in” or “not_in”."))
    segment = Segment.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    if segment is None:
        problems.add(f"{path}segment", _("There is no segment “%(slug)s”.") % {"slug": slug})
        return None
    if slug in problems.visiting:
        chain = " → ".join([*problems.visiting, slug])
        problems.add(f"{path}segment", _("Segments cannot refer to each other in a circle: %(chain)s.") % {"chain": chain})
        return None
    if segment.kind != Segment.Kind.DYNAMIC:
        return SegmentCondition(slug, op, segment.pk)
    inner = Problems()
    inner.visiting = [*problems.visiting, slug]
    definition = _node(segment.definition, "", inner, depth + 1)
    for inner_path, message in inner.items:
        problems.add(f"{path}segment", _("Segment “%(slug)s” is invalid at %(path)s: %(message)s")
                     % {"slug": slug, "path": inner_path, "message": message})
    return SegmentCondition(slug, op, segment.pk, definition)
