"""The visual condition builder: its catalogue (`builder_options`), the form widget that
shows it (`ConditionBuilderWidget`) and the preview a builder asks for while staff edit
(`builder_preview`). The builder edits the definition JSON in place, so whatever the
language can express loads and saves unchanged; the catalogue only says what to offer.

Adding a condition source (consent purposes, other segments…) is one entry in
`OPTION_SOURCES` here plus one kind in `condition-builder.js`'s KINDS."""
from collections.abc import Callable

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from consent.models import Channel, Purpose
from profiles.masking import mask_phone
from profiles.event_labels import EventLabels
from profiles.models import AttributeDefinition, EventDefinition, Gender, LifecycleStage, Tag, TagCategory

from .conditions import parse, registry
from .conditions.campaigns import ACTIONS, WITHOUT_ACTIONS, campaign_source
from .conditions.explain import campaign_action_labels
from .models import Segment
from .selectors import segment_preview

# The order operators are offered in; the registry says which apply to which type.
FIELD_OPERATOR_ORDER = (
    "eq", "ne", "in", "not_in", "contains", "starts_with", "gt", "gte", "lt", "lte", "between",
    "before", "after", "on_or_before", "on_or_after", "within_last_days", "more_than_days_ago", "anniversary_within_days", "is_set", "is_empty",
)
AGE_OPERATORS = ("between", "gte", "lte", "is_set", "is_empty")  # as parse.py allows for age


def _operator_labels() -> dict[str, str]:
    return {
        "eq": _("equals"), "ne": _("does not equal"), "in": _("is one of"), "not_in": _("is none of"),
        "contains": _("contains"), "starts_with": _("starts with"), "gt": ">", "gte": "≥", "lt": "<",
        "lte": "≤", "between": _("between"), "before": _("before"), "after": _("after"),
        "on_or_before": _("on or before"), "on_or_after": _("on or after"),
        "within_last_days": _("within the last N days"), "more_than_days_ago": _("more than N days ago"),
        "anniversary_within_days": _("anniversary in the next N days"), "is_set": _("is set"),
        "is_empty": _("is empty"),
    }


def _choice_labels(spec: registry.FieldSpec) -> list[dict]:
    known = {"gender": dict(Gender.choices), "lifecycle_stage": dict(LifecycleStage.choices)}.get(spec.name, {})
    booleans = {True: _("yes"), False: _("no")}
    return [
        {"value": value, "label": str(booleans[value] if isinstance(value, bool) else known.get(value, value))}
        for value in spec.choices
    ]


def _field_option(spec: registry.FieldSpec, group: str) -> dict:
    allowed = AGE_OPERATORS if spec.name == "age" else registry.OPERATORS[spec.type]
    return {
        "name": spec.name, "label": str(spec.label), "type": spec.type, "group": group,
        "operators": [op for op in FIELD_OPERATOR_ORDER if op in allowed],
        "choices": _choice_labels(spec),
    }


def field_options() -> list[dict]:
    """Profile fields and computed metrics, then custom traits ("traits.<key>")."""
    fields = [_field_option(spec, _("Customer")) for spec in registry.PROFILE_FIELDS.values()]
    for definition in AttributeDefinition.objects.order_by("label"):
        spec = registry.field_spec(f"traits.{definition.key}")
        fields.append(_field_option(spec, _("Custom traits")))
    return fields


def tag_options() -> list[dict]:
    """Every tag with its category path, retired ones last and marked, so that an old
    definition naming a retired tag still shows its name."""
    paths = _category_paths()
    return [
        {"value": tag.slug, "label": tag.name, "group": paths.get(tag.category_id, ""), "active": tag.is_active}
        for tag in Tag.objects.order_by("-is_active", "name").only("slug", "name", "category_id", "is_active")
    ]


def category_options() -> list[dict]:
    """Categories by the value the language takes: the root's code, or the id as text."""
    paths = _category_paths()
    categories = TagCategory.objects.only("pk", "code")
    return sorted(({"value": c.code or str(c.pk), "label": paths[c.pk]} for c in categories), key=lambda o: o["label"])


def _category_paths() -> dict[int, str]:
    """"兴趣标签 › 运动" for every category, in one query."""
    categories = {c.pk: c for c in TagCategory.objects.only("pk", "name", "parent_id", "code")}

    def path(category, seen=()):
        parent = categories.get(category.parent_id)
        prefix = path(parent, (*seen, category.pk)) + " › " if parent and parent.pk not in seen else ""
        return prefix + category.display_name

    return {pk: path(category) for pk, category in categories.items()}


def event_options() -> list[dict]:
    """Events with their properties and the values their definitions label ("alipay" → 支付宝)."""
    events = list(EventDefinition.objects.order_by("name"))
    labels = EventLabels((event.name, event.label, event.properties) for event in events)
    return [
        {
            "value": event.name, "label": _(event.label), "has_amount": event.has_amount,
            "properties": [
                {"name": p["name"], "label": _(p.get("label") or p["name"]), "type": p.get("type", "string"),
                 "values": [{"value": value, "label": labels.value(p["name"], value, event.name)}
                            for value in (p.get("values") if isinstance(p.get("values"), dict) else {})]}
                for p in event.properties if isinstance(p, dict) and p.get("name")
            ],
        }
        for event in events
    ]


def purpose_options() -> list[dict]:
    purposes = Purpose.objects.filter(is_active=True).order_by("code")
    return [{"value": p.code, "label": p.name, "group": p.code} for p in purposes]


def segment_options() -> list[dict]:
    """Other segments to be in or not in (cycles are refused by parse, not hidden here)."""
    return [{"value": slug, "label": name, "group": slug} for slug, name in Segment.objects.values_list("slug", "name")]


def campaign_options() -> list[dict]:
    """Campaigns to ask about (registered by the campaigns app; none without it)."""
    source = campaign_source()
    return source.options() if source is not None else []


# Condition sources with a list of {"value", "label"} each: the JS offers a kind (consent,
# segment…) only when its list is non-empty. A new source is one entry here and one kind
# in condition-builder.js.
OPTION_SOURCES: dict[str, Callable[[], list[dict]]] = {
    "purposes": purpose_options,
    "segments": segment_options,
    "campaigns": campaign_options,
}


def builder_options() -> dict:
    """Everything the builder offers, labelled in the active language (a handful of
    queries, whatever the size of the definition)."""
    return {
        "fields": field_options(),
        "tags": tag_options(),
        "categories": category_options(),
        "events": event_options(),
        **{name: source() for name, source in OPTION_SOURCES.items()},
        "operators": {
            "field": _operator_labels(),
            "count": {"gte": _("at least"), "gt": _("more than"), "lte": _("at most"), "lt": _("fewer than"),
                      "eq": _("exactly"), "ne": _("not exactly"), "between": _("between")},
            "amount": {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"},
            "property": {
                "eq": "=", "ne": "≠", "in": _("is one of"), "not_in": _("is none of"), "contains": _("contains"),
                "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
            },
        },
        "campaign_actions": [[action, label] for action, label in campaign_action_labels().items()
                             if action in ACTIONS],
        "campaign_without": {action: list(later) for action, later in WITHOUT_ACTIONS.items()},
        "channels": [[value, str(label)] for value, label in Channel.choices if value != Channel.NONE],
        "text": builder_text(),
    }


def builder_text() -> dict[str, str]:
    """The builder's own words. {n} and {s} are filled in by the JS."""
    return {
        "all": _("all of these"), "any": _("any of these"), "not": _("none of this"),
        "match": _("Customers matching"),
        "add_group": _("+ Group"), "add_not": _("+ Exclude"), "remove": _("Remove"),
        "kind_field": _("Attribute"), "kind_tag": pgettext("condition kind", "Tag"),
        "kind_event": _("Behaviour"), "kind_sequence": _("Sequence"),
        "kind_consent": _("Consent"), "kind_segment": _("Segment"), "kind_unknown": _("Condition (JSON)"),
        "pick": _("Choose…"), "search": _("Search…"), "no_match": _("Nothing matches."),
        "yes": _("yes"), "no": _("no"), "retired": _("retired"), "add_value": _("Type a value and press Enter"),
        "other_value": _("Another value…"),
        "days": _("days"), "and": pgettext("between … and …", "and"),
        "tag_has": _("has tag"), "tag_has_not": _("does not have tag"), "tag_weight_gte": _("interest weight ≥"),
        "tag_has_any": _("has any of the tags"), "tag_has_all": _("has all the tags"),
        "tag_in_category": _("has a tag in category"),
        "measure_count": _("number of times"), "measure_first": _("first time within the last N days"),
        "measure_last": _("last time more than N days ago"),
        "measure_sum": _("total"), "measure_avg": _("average"), "measure_min": _("least"), "measure_max": _("greatest"),
        "measure_distinct": _("number of distinct"), "measure_share": _("share at the time below (0–1)"), "measure_of": pgettext("total of …", "of"),
        "times": _("times"),
        "window_any": _("at any time"), "window_days": _("in the last N days"), "window_between": _("between dates"),
        "time_of_day": _("at a time of day"), "days_of_week": _("on days of the week"),
        "add_time_of_day": _("+ Time of day"), "add_days_of_week": _("+ Days of the week"),
        **{f"weekday_{day}": str(name) for day, name in enumerate(WEEKDAYS.values(), start=1)},
        "window_rolling": _("in the last …"), "window_period": _("in the calendar period"),
        "unit_minutes": _("minutes"), "unit_hours": _("hours"), "unit_days": _("days"), "unit_weeks": _("weeks"),
        "unit_months": _("months"),
        "period_today": _("today"), "period_yesterday": _("yesterday"), "period_this_week": _("this week"),
        "period_last_week": _("last week"), "period_this_month": _("this month"),
        "period_last_month": _("last month"), "period_this_year": _("this year"),
        "add_where": _("+ Property filter"), "add_amount": _("+ Amount filter"), "amount": _("amount"),
        "property": _("property"),
        "sequence_then": _("then did"), "sequence_not_then": _("but did not do"),
        "sequence_first": _("did"), "sequence_within": pgettext("sequence", "within"),
        "add_step": _("+ Step"), "add_not_between": _("+ Nothing in between"),
        "sequence_not_between": _("and in between did not do"),
        "consent_granted": _("has granted"), "consent_not_granted": _("has not granted"),
        "consent_state_granted": _("last said yes (not expired) to"), "consent_state_denied": _("refused"),
        "consent_state_withdrawn": _("withdrew"), "consent_state_expired": _("has an expired consent for"),
        "consent_state_never_asked": _("was never asked for"),
        "segment_in": _("is in segment"), "segment_not_in": _("is not in segment"),
        "kind_campaign": pgettext("condition kind", "Campaign"), "campaign_any": _("any campaign"),
        "campaign_any_channel": _("on any channel"), "campaign_without": _("but not"),
        "campaign_without_none": _("(nothing else)"), "messages": _("messages"),
        "edit_json": _("Edit as JSON"), "edit_visual": _("Back to the builder"),
        "bad_json": _("This is not valid JSON: {s}"),
        "unknown_hint": _("The builder cannot show this condition; edit its JSON here."),
        "preview_title": _("Preview"), "counting": _("Counting…"),
        "count": _("{n} matching customers"), "sample_title": _("A sample of matching customers"),
        "timed_out": _("Too broad to count in {n} s; save the segment to compute it in the background."),
        "has_errors": _("Fix the problems marked above to see the count."),
        "incomplete": _("Choose what the new condition checks to see the count."),
        "empty": _("Add a first condition to see who matches."),
        "failed": _("The preview could not be computed: {s}"),
        "name": pgettext("person", "name"), "phone": _("phone"), "city": _("city"),
        "nobody": _("No customer matches."),
    }


def builder_preview(definition, *, defining: str | None = None, sample_size: int = 20, user=None) -> dict:
    """The preview endpoint's answer for a definition: the count and a sample (phones
    masked, as in every list: revealing is an audited click on the profile page), or the
    problems by node path, or that counting hit the statement timeout. `defining` is the
    slug of the segment being edited, so that a reference back to it shows as a cycle;
    `user` the staff member asking (see parse: phones and emails by whole value only
    without the permission to see them)."""
    answer = {"count": None, "sample": [], "timed_out": False, "errors": [],
              "timeout_seconds": settings.CDP_PREVIEW_TIMEOUT_MS / 1000}
    try:
        if defining or user is not None:
            parse(definition, defining=defining, user=user)
        preview = segment_preview(definition, sample_size=sample_size)
    except ValidationError as error:
        return answer | {"errors": validation_errors(error)}
    return answer | {
        "count": preview.count,
        "timed_out": preview.timed_out,
        "sample": [
            {
                "name": str(profile),
                "uuid": str(profile.uuid), "phone": mask_phone(profile.phone),
                "city": profile.city, "url": reverse("admin:profiles_profile_change", args=[profile.pk]),
            }
            for profile in preview.sample
        ],
    }


def validation_errors(error: ValidationError) -> list[dict]:
    """parse()'s errors as [{path, message}]; the path names the bad node ("all[2].value")."""
    found = []
    for item in error.error_list:
        params = item.params or {}
        if "path" in params:
            found.append({"path": params["path"], "message": str(params["message"])})
        else:
            found.append({"path": "$", "message": " ".join(item.messages)})
    return found


class DefinitionField(forms.JSONField):
    """A condition's JSON on a form: nested beyond Python's stack it is a form error
    (Django's JSONField lets the RecursionError through, a 500)."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(_("This definition is nested too deeply to read."), code="invalid") from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


class ConditionBuilderWidget(forms.Textarea):
    """A definition textarea with the visual builder over it. The textarea stays the
    value that is submitted (and the "edit as JSON" view); the builder rewrites it on
    every change. Reusable on any form holding a condition (segments, rule tags)."""

    builder_template = "admin/segments/condition_builder.html"  # the project's engine, around the textarea

    class Media:
        css = {"all": ("segments/condition-builder.css",)}
        js = ("segments/condition-builder.js",)

    def __init__(self, attrs=None, preview_url: str | None = None, defining_field: str | None = None):
        """`defining_field`: the form field holding the slug of the segment being edited
        (for cycle errors in the preview)."""
        super().__init__({"rows": 14, "cols": 90, "class": "condition-builder-json", **(attrs or {})})
        self.preview_url = preview_url
        self.defining_field = defining_field

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, attrs, renderer)
        config = {
            "options": builder_options(),
            "previewUrl": self.preview_url or reverse("admin:segments_segment_builder_preview"),
            "definingField": self.defining_field,
        }
        return render_to_string(self.builder_template, {
            "textarea": textarea, "config": config, "config_id": f"{(attrs or {}).get('id', name)}-builder-config",
        })
