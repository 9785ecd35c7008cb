"""Why is this customer in (or out of) a segment: every node of a definition, described in
the reader's language, with whether this one customer meets it. Each node is checked by
the database with the same compiled query the segment uses, so the answer cannot drift
from the membership."""
import datetime
from dataclasses import dataclass, field

from django.db.models import Avg, Count, Max, Min, Sum
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import pgettext

from consent.models import Channel, Purpose
from profiles.event_labels import EventLabels
from profiles.masking import mask_email, mask_phone
from profiles.models import Gender, LifecycleStage, Profile, ProfileTag, Tag, TagCategory

from ..models import Segment
from . import registry
from .campaigns import campaign_messages, campaign_source
from .compile import _category_and_descendants, _matching_events, compile_condition, window_bounds
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

OPERATOR_LABELS = {
    "eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
}


@dataclass
class Explanation:
    label: str
    matched: bool
    children: list["Explanation"] = field(default_factory=list)
    actual: str = ""  # what this customer has, e.g. "女" or "3 times"


def explain(node, profile: Profile, now: datetime.datetime, labels: EventLabels | None = None) -> Explanation:
    """Names, choices and tags by their labels in the reader's language, each condition
    with the customer's own value beside it."""
    labels = labels or EventLabels.load()
    matched = Profile.objects.filter(pk=profile.pk).filter(compile_condition(node, now)).exists()
    children = []
    if isinstance(node, Group):
        children = [explain(child, profile, now, labels) for child in node.children]
    elif isinstance(node, Not):
        children = [explain(node.child, profile, now, labels)]
    return Explanation(describe(node, labels), matched, children, actual=_actual(node, profile, now, labels))


def describe(node, labels: EventLabels | None = None) -> str:
    labels = labels or EventLabels.load()
    if isinstance(node, Group):
        return _("all of these") if node.op == "all" else _("any of these")
    if isinstance(node, Not):
        return _("none of this")
    if isinstance(node, FieldCondition):
        return _describe_field(node)
    if isinstance(node, TagCondition):
        return _describe_tag(node)
    if isinstance(node, EventCondition):
        return _describe_event(node, labels)
    if isinstance(node, SequenceCondition):
        return _describe_sequence(node, labels)
    if isinstance(node, ConsentCondition):
        purpose = Purpose.objects.filter(code=node.purpose).first()
        name = purpose.name if purpose else node.purpose
        return {
            "granted": _("consent for “%(purpose)s” is granted"),
            "not_granted": _("consent for “%(purpose)s” is not granted"),
            "state_granted": _("consent for “%(purpose)s” was last recorded as granted (not expired)"),
            "state_denied": _("consent for “%(purpose)s” was refused"),
            "state_withdrawn": _("consent for “%(purpose)s” was withdrawn"),
            "state_expired": _("consent for “%(purpose)s” has expired"),
            "state_never_asked": _("never asked for consent for “%(purpose)s”"),
        }[node.op] % {"purpose": name}
    if isinstance(node, CampaignCondition):
        return _describe_campaign(node)
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
        "after": _("%(field)s after %(value)s"), "on_or_before": _("%(field)s on or before %(value)s"),
        "on_or_after": _("%(field)s on or after %(value)s"),
        "within_last_days": _("%(field)s within the last %(value)s days"),
        "more_than_days_ago": _("%(field)s more than %(value)s days ago"),
        "anniversary_within_days": _("%(field)s anniversary in the next %(value)s days"),
    }
    if isinstance(value, tuple):
        shown = [_choice_label(node.field, item) for item in value]
        value = " – ".join(shown) if node.op == "between" else "、".join(shown)
    else:
        value = _choice_label(node.field, value)
    if node.op in texts:
        return texts[node.op] % {"field": label, "value": value}
    return f"{label} {OPERATOR_LABELS[node.op]} {value}"


CHOICE_LABELS = {"gender": Gender, "lifecycle_stage": LifecycleStage}


def _choice_label(field_name: str, value) -> str:
    """A stored code by its label: "female" → 女."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, datetime.date):
        return value.isoformat()
    choices = CHOICE_LABELS.get(field_name)
    if choices is not None and value in choices.values:
        return str(choices(value).label)
    return "" if value is None else str(value)


def _describe_tag(node: TagCondition) -> str:
    names = dict(Tag.objects.filter(slug__in=node.tags).values_list("slug", "name"))
    tags = "、".join(names.get(slug, slug) for slug in node.tags)
    return {
        "has": _("has tag %(tags)s"), "has_not": _("does not have tag %(tags)s"),
        "has_any": _("has any of the tags %(tags)s"), "has_all": _("has all the tags %(tags)s"),
        "in_category": _("has a tag in category %(category)s"),
        "weight_gte": _("interest %(tags)s weighs at least %(weight)s"),
    }[node.op] % {"tags": tags, "category": _category_label(node.category), "weight": node.weight}


def _category_label(code_or_id: str) -> str:
    category = (TagCategory.objects.filter(code=code_or_id).first()
                or (TagCategory.objects.filter(pk=int(code_or_id)).first() if str(code_or_id).isdigit() else None))
    return category.display_name if category else code_or_id


def _window_text(window: Window | None) -> str:
    if window is None:
        return ""
    if window.amount is not None:
        return {"minutes": _(" in the last %(n)s minutes"), "hours": _(" in the last %(n)s hours"),
                "days": _(" in the last %(days)s days"), "weeks": _(" in the last %(n)s weeks"),
                "months": _(" in the last %(n)s months")}[window.unit] % {"n": window.amount, "days": window.amount}
    if window.period:
        return " " + str(PERIOD_LABELS[window.period])
    return _(" between %(start)s and %(end)s") % {"start": f"{window.start:%Y-%m-%d}", "end": f"{window.end:%Y-%m-%d}"}


def _describe_sequence(node: SequenceCondition, labels: EventLabels) -> str:
    """did A, then B within 7 days, then C within 3 days (without D in between) — or "but
    not C within 3 days" for a drop-off."""
    first, *later = node.steps
    text = _("did %(first)s") % {"first": _describe_event(first, labels, bare=True)}
    for i, (step, days) in enumerate(zip(later, node.gaps)):
        last = i == len(later) - 1
        template = (_("%(so_far)s, but not %(then)s within %(days)s days") if last and node.op == "not_then"
                    else _("%(so_far)s, then %(then)s within %(days)s days"))
        text = template % {"so_far": text, "then": _describe_event(step, labels, bare=True), "days": days}
    if node.excluding is not None:
        text = _("%(so_far)s, without %(event)s in between") % {
            "so_far": text, "event": _describe_event(node.excluding, labels, bare=True)}
    return text


def campaign_action_labels() -> dict[str, str]:
    """What campaigns record per message, as a marketer says it (the builder offers the same words)."""
    return {"sent": pgettext("campaign action", "sent"), "received": pgettext("campaign action", "received"),
            "opened": pgettext("campaign action", "opened"), "clicked": pgettext("campaign action", "clicked"),
            "converted": pgettext("campaign action", "converted"),
            "unsubscribed": pgettext("campaign action", "unsubscribed"),
            "held_out": pgettext("campaign action", "held out (not sent)")}


def _describe_campaign(node: CampaignCondition) -> str:
    """campaign “双11短信”: received, but not clicked, ≥ 1 messages in the last 30 days"""
    source = campaign_source()
    if node.campaign_id is None:
        channels = dict(Channel.choices)
        campaign = (_("any %(channel)s campaign") % {"channel": channels.get(node.channel, node.channel)}
                    if node.channel else _("any campaign"))
    else:
        name = source.names([node.campaign_id]).get(node.campaign_id) if source else None
        campaign = _("campaign “%(name)s”") % {"name": name or node.campaign_id}
    actions = campaign_action_labels()
    text = _("%(campaign)s: %(action)s") % {"campaign": campaign, "action": actions[node.action]}
    if node.without:
        text = _("%(so_far)s, but not %(action)s") % {"so_far": text, "action": actions[node.without]}
    if node.op == "between":
        counted = _("%(low)s–%(high)s messages") % {"low": node.value[0], "high": node.value[1]}
    else:
        counted = _("%(op)s %(n)s messages") % {"op": OPERATOR_LABELS[node.op], "n": node.value}
    return _("%(condition)s, %(count)s") % {"condition": text, "count": counted} + _window_text(node.window)


PERIOD_LABELS = {
    "today": _lazy("today"), "yesterday": _lazy("yesterday"), "this_week": _lazy("this week"),
    "last_week": _lazy("last week"), "this_month": _lazy("this month"), "last_month": _lazy("last month"),
    "this_year": _lazy("this year"),
}
PROPERTY_OPERATOR_LABELS = {"in": "∈", "not_in": "∉", "contains": "∋"}


def _describe_event(node: EventCondition, labels: EventLabels, bare: bool = False) -> str:
    text = labels.event(node.event)
    for item in node.where:
        op = OPERATOR_LABELS.get(item.op) or PROPERTY_OPERATOR_LABELS.get(item.op, item.op)
        text += (f" [{labels.property(item.property, node.event)} {op} "
                 f"{labels.value(item.property, item.value, node.event)}]")
    if node.amount:
        text += f" [{_('amount')} {OPERATOR_LABELS[node.amount[0]]} {node.amount[1]}]"
    if node.time_of_day:
        start, end = node.time_of_day
        text += f" [{start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d}]"
    if node.days_of_week:
        text += f" [{'、'.join(str(WEEKDAYS[day - 1]) for day in node.days_of_week)}]"
    if bare:
        return text + _window_text(node.window)
    if node.measure == "count" and node.op == "between":
        measured = _("%(event)s %(low)s–%(high)s times") % {"event": text, "low": node.value[0], "high": node.value[1]}
    elif node.measure == "count":
        measured = _("%(event)s %(op)s %(n)s times") % {"event": text, "op": OPERATOR_LABELS[node.op], "n": node.value}
    elif node.measure == "first_within":
        measured = _("first %(event)s within the last %(n)s days") % {"event": text, "n": node.value}
    elif node.measure == "last_before":
        measured = _("last %(event)s more than %(n)s days ago") % {"event": text, "n": node.value}
    elif node.measure == "share":
        measured = _("%(event)s mostly at these times: share %(op)s %(n)s%%") % {
            "event": text, "op": OPERATOR_LABELS[node.op], "n": f"{float(node.value) * 100:g}"}
    elif node.measure == "distinct":
        low_high = (f"{node.value[0]}–{node.value[1]}" if node.op == "between"
                    else f"{OPERATOR_LABELS[node.op]} {node.value}")
        measured = _("%(event)s in %(n)s distinct %(property)s") % {
            "event": text, "n": low_high, "property": labels.property(node.of, node.event)}
    else:
        what = {"sum": _("total"), "avg": _("average"), "min": _("least"), "max": _("greatest")}[node.measure]
        of = labels.property(node.of, node.event) if node.of else _("amount")
        measured = _("%(what)s %(of)s of %(event)s %(op)s %(n)s") % {
            "what": what, "of": of, "event": text, "op": OPERATOR_LABELS[node.op], "n": node.value,
        }
    return measured + _window_text(node.window)


# --- the customer's own values -------------------------------------------------------------

def _actual(node, profile: Profile, now: datetime.datetime, labels: EventLabels) -> str:
    if isinstance(node, FieldCondition):
        value = _field_value(node.field, profile, now)
        return _("this customer: %(value)s") % {"value": _choice_label(node.field, value) or _("not set")}
    if isinstance(node, TagCondition):
        return _tags_held(node, profile)
    if isinstance(node, EventCondition):
        return _event_measure(node, profile, now)
    if isinstance(node, CampaignCondition) and campaign_source() is not None:
        start, end = window_bounds(node.window, now) if node.window is not None else (None, None)
        count = campaign_messages(node, start, end, now).filter(profile_id=profile.pk).count()
        return _("this customer: %(n)s messages") % {"n": count}
    return ""


def _field_value(name: str, profile: Profile, now: datetime.datetime):
    spec = registry.field_spec(name)
    if spec is None:
        return None
    if name == "age":
        born = profile.birth_date
        if born is None:
            return None
        today = timezone.localdate(now)
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    value = Profile.objects.filter(pk=profile.pk).values_list(spec.lookup, flat=True).first()
    # Phones and emails are masked here as everywhere (the profile page has the audited reveal).
    masks = {"phone": mask_phone, "email": mask_email}
    return masks[name](value) if name in masks and value else value


def _tags_held(node: TagCondition, profile: Profile) -> str:
    held = ProfileTag.objects.filter(profile=profile).select_related("tag").order_by("tag__name")
    if node.op == "in_category":
        held = held.filter(tag__category_id__in=_category_and_descendants(node.category))
    else:
        held = held.filter(tag__slug__in=node.tags)
    if node.op == "weight_gte":
        shown = [f"{pt.tag.name} {pt.weight:.2f}" for pt in held if pt.weight is not None]
    else:
        shown = [pt.tag.name for pt in held]
    if not shown:
        return _("this customer has none of them")
    return _("this customer has: %(tags)s") % {"tags": "、".join(shown)}


def _event_measure(node: EventCondition, profile: Profile, now: datetime.datetime) -> str:
    events = _matching_events(node, now, profile=profile.pk)
    if node.measure == "count":
        count = events.aggregate(n=Count("*"))["n"]
        return _("this customer: %(n)s times") % {"n": count}
    if node.measure in ("sum", "avg"):
        amount = events.aggregate(m=(Sum if node.measure == "sum" else Avg)("amount"))["m"]
        return _("this customer: %(value)s") % {"value": f"¥{amount:,.2f}" if amount is not None else _("none")}
    moment = events.aggregate(m=(Min if node.measure == "first_within" else Max)("occurred_at"))["m"]
    if moment is None:
        return _("this customer: never")
    template = _("this customer: first on %(date)s") if node.measure == "first_within" else _(
        "this customer: last on %(date)s")
    return template % {"date": timezone.localtime(moment).strftime("%Y-%m-%d")}
