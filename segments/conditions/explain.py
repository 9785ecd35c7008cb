"""Why is this customer in (or out of) a segment: every node of a definition, described in
the reader's language, with whether this one customer meets it. Each node is checked by
the database with the same compiled query the segment uses, so the answer cannot drift
from the membership."""
import datetime
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from consent.models import Purpose
from profiles.models import EventDefinition, Profile

from ..models import Segment
from . import registry
from .compile import compile_condition
from .nodes import (
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

OPERATOR_LABELS = {
    "eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
}


@dataclass
class Explanation:
    label: str
    matched: bool
    children: list["Explanation"] = field(default_factory=list)


def explain(node, profile: Profile, now: datetime.datetime) -> Explanation:
    matched = Profile.objects.filter(pk=profile.pk).filter(compile_condition(node, now)).exists()
    children = []
    if isinstance(node, Group):
        children = [explain(child, profile, now) for child in node.children]
    elif isinstance(node, Not):
        children = [explain(node.child, profile, now)]
    return Explanation(describe(node), matched, children)


def describe(node) -> str:
    if isinstance(node, Group):
        return _("all of these") if node.op == "all" else _("any of these")
    if isinstance(node, Not):
        return _("none of this")
    if isinstance(node, FieldCondition):
        return _describe_field(node)
    if isinstance(node, TagCondition):
        return _describe_tag(node)
    if isinstance(node, EventCondition):
        return _describe_event(node)
    if isinstance(node, SequenceCondition):
        template = (_("did %(first)s, then %(then)s within %(days)s days") if node.op == "then"
                    else _("did %(first)s but not %(then)s within %(days)s days"))
        return template % {"first": _describe_event(node.first, bare=True),
                           "then": _describe_event(node.then, bare=True), "days": node.within_days}
    if isinstance(node, ConsentCondition):
        purpose = Purpose.objects.filter(code=node.purpose).first()
        name = purpose.name if purpose else node.purpose
        return (_("consent for “%(purpose)s” is granted") if node.op == "granted"
                else _("consent for “%(purpose)s” is not granted")) % {"purpose": name}
    if isinstance(node, SegmentCondition):
        name = Segment.objects.filter(slug=node.segment).values_list("name", flat=True).first() or node.segment
        return (_("in segment “%(segment)s”") if node.op == "in" else _("not in segment “%(segment)s”")) % {
            "segment": name}
    return str(node)


def _describe_field(node: FieldCondition) -> str:
    label = str(registry.field_spec(node.field).label)
    value = node.value
    texts = {
        "is_set": _("%(field)s is set"), "is_empty": _("%(field)s is empty"),
        "in": _("%(field)s is one of %(value)s"), "not_in": _("%(field)s is none of %(value)s"),
        "contains": _("%(field)s contains “%(value)s”"), "starts_with": _("%(field)s starts with “%(value)s”"),
        "between": _("%(field)s between %(value)s"), "before": _("%(field)s before %(value)s"),
        "after": _("%(field)s after %(value)s"),
        "within_last_days": _("%(field)s within the last %(value)s days"),
        "more_than_days_ago": _("%(field)s more than %(value)s days ago"),
        "anniversary_within_days": _("%(field)s anniversary in the next %(value)s days"),
    }
    if isinstance(value, tuple):
        value = " – ".join(map(str, value)) if node.op == "between" else "、".join(map(str, value))
    if node.op in texts:
        return texts[node.op] % {"field": label, "value": value}
    return f"{label} {OPERATOR_LABELS[node.op]} {value}"


def _describe_tag(node: TagCondition) -> str:
    tags = "、".join(node.tags)
    return {
        "has": _("has tag %(tags)s"), "has_not": _("does not have tag %(tags)s"),
        "has_any": _("has any of the tags %(tags)s"), "has_all": _("has all the tags %(tags)s"),
        "in_category": _("has a tag in category %(category)s"),
        "weight_gte": _("interest %(tags)s weighs at least %(weight)s"),
    }[node.op] % {"tags": tags, "category": node.category, "weight": node.weight}


def _window_text(window: Window | None) -> str:
    if window is None:
        return ""
    if window.days is not None:
        return _(" in the last %(days)s days") % {"days": window.days}
    return _(" between %(start)s and %(end)s") % {"start": f"{window.start:%Y-%m-%d}", "end": f"{window.end:%Y-%m-%d}"}


def _describe_event(node: EventCondition, bare: bool = False) -> str:
    label = EventDefinition.objects.filter(name=node.event).values_list("label", flat=True).first() or node.event
    text = _(label)
    for item in node.where:
        text += f" [{item.property} {OPERATOR_LABELS.get(item.op, item.op)} {item.value}]"
    if node.amount:
        text += f" [{_('amount')} {OPERATOR_LABELS[node.amount[0]]} {node.amount[1]}]"
    if bare:
        return text + _window_text(node.window)
    if node.measure == "count":
        measured = _("%(event)s %(op)s %(n)s times") % {"event": text, "op": OPERATOR_LABELS[node.op], "n": node.value}
    elif node.measure == "first_within":
        measured = _("first %(event)s within the last %(n)s days") % {"event": text, "n": node.value}
    elif node.measure == "last_before":
        measured = _("last %(event)s more than %(n)s days ago") % {"event": text, "n": node.value}
    else:
        what = _("total amount") if node.measure == "sum" else _("average amount")
        measured = _("%(what)s of %(event)s %(op)s %(n)s") % {
            "what": what, "event": text, "op": OPERATOR_LABELS[node.op], "n": node.value,
        }
    return measured + _window_text(node.window)
