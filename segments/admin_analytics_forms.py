"""The analysis pages' forms: each turns its fields into the saved parameters (the JSON
a SavedAnalysis keeps) and back, so a saved analysis reopens in the same form."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from profiles.models import EventDefinition

from .analytics.funnel import MAX_STEPS
from .analytics.paths import AFTER, AUTO, BEFORE, EXACT
from .analytics.periods import MONTH, WEEK
from .analytics.retention import FIRST_ORDER, FIRST_SEEN
from .models import Segment

PROPERTY_OPS = (("eq", "="), ("ne", "≠"), ("contains", _("contains")), ("in", _("is one of")),
                ("gt", ">"), ("gte", "≥"), ("lt", "<"), ("lte", "≤"))


def event_choices(blank: str | None = None) -> list[tuple[str, str]]:
    from django.utils.translation import gettext

    choices = [(d.name, f"{gettext(d.label)} ({d.name})") for d in EventDefinition.objects.order_by("name")]
    return [("", blank), *choices] if blank is not None else choices


def segment_choices() -> list[tuple[str, str]]:
    return [("", _("All customers")), *Segment.objects.order_by("name").values_list("slug", "name")]


class RangeForm(forms.Form):
    """The period (the last N days, or two dates) and an optional segment."""

    days = forms.IntegerField(label=_("last N days"), min_value=1, max_value=731, initial=30, required=False)
    start = forms.DateField(label=_("from"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("to"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    segment = forms.ChoiceField(label=_("segment"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = segment_choices()

    def range_parameters(self) -> dict:
        data = self.cleaned_data
        found = {"start": data["start"].isoformat(), "end": data["end"].isoformat()} if data.get("start") and data.get(
            "end") else {"days": data.get("days") or 30}
        if data.get("segment"):
            found["segment"] = data["segment"]
        return found

    @staticmethod
    def range_data(parameters: dict) -> dict:
        found = {key: parameters[key] for key in ("days", "start", "end", "segment") if parameters.get(key)}
        return found


class FunnelForm(RangeForm):
    window_days = forms.IntegerField(label=_("conversion window (days)"), min_value=1, max_value=90, initial=7)
    breakdown = forms.ChoiceField(label=_("break down by"), required=False, choices=[
        ("", _("nothing")), ("city", _("city")), ("gender", _("gender")), ("age", _("age band")), ("source", _("source")),
    ])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        events = event_choices(blank="—")
        for n in range(1, MAX_STEPS + 1):
            self.fields[f"step_{n}"] = forms.ChoiceField(label=_("step %(n)s") % {"n": n}, required=False, choices=events)
            self.fields[f"step_{n}_property"] = forms.CharField(label=_("property"), required=False, max_length=64)
            self.fields[f"step_{n}_op"] = forms.ChoiceField(label=_("operator"), required=False, choices=PROPERTY_OPS)
            self.fields[f"step_{n}_value"] = forms.CharField(label=_("value"), required=False, max_length=200)

    def step_rows(self):
        return [(self[f"step_{n}"], self[f"step_{n}_property"], self[f"step_{n}_op"], self[f"step_{n}_value"])
                for n in range(1, MAX_STEPS + 1)]

    def parameters(self) -> dict:
        data = self.cleaned_data
        steps = []
        for n in range(1, MAX_STEPS + 1):
            if not data.get(f"step_{n}"):
                continue
            step = {"event": data[f"step_{n}"], "where": []}
            if data.get(f"step_{n}_property"):
                op, value = data.get(f"step_{n}_op") or "eq", data.get(f"step_{n}_value") or ""
                step["where"].append({"property": data[f"step_{n}_property"], "op": op,
                                      "value": [v.strip() for v in value.split(",") if v.strip()] if op == "in" else value})
            steps.append(step)
        return {"steps": steps, "window_days": data["window_days"], "breakdown": data.get("breakdown") or "",
                **self.range_parameters()}

    @classmethod
    def data_from(cls, parameters: dict) -> dict:
        found = {**cls.range_data(parameters), "window_days": parameters.get("window_days", 7),
                 "breakdown": parameters.get("breakdown", "")}
        for n, step in enumerate(parameters.get("steps") or [], start=1):
            found[f"step_{n}"] = step.get("event", "")
            for where in (step.get("where") or [])[:1]:  # the form shows one filter per step
                value = where.get("value")
                found.update({f"step_{n}_property": where.get("property", ""), f"step_{n}_op": where.get("op", "eq"),
                              f"step_{n}_value": ", ".join(map(str, value)) if isinstance(value, list) else value})
        return found


class RetentionForm(forms.Form):
    period = forms.ChoiceField(label=_("cohorts"), choices=[(WEEK, _("weekly")), (MONTH, _("monthly"))], initial=WEEK)
    periods = forms.IntegerField(label=_("number of cohorts"), min_value=2, max_value=24, initial=12)
    cohort = forms.ChoiceField(label=_("cohort by"), initial=FIRST_SEEN,
                               choices=[(FIRST_SEEN, _("first seen")), (FIRST_ORDER, _("first order"))])
    return_event = forms.ChoiceField(label=_("returning means"), required=False)
    segment = forms.ChoiceField(label=_("segment"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["return_event"].choices = event_choices(blank=str(_("any event")))
        self.fields["segment"].choices = segment_choices()

    def parameters(self) -> dict:
        data = self.cleaned_data
        found = {key: data[key] for key in ("period", "periods", "cohort")}
        found["return_event"] = data.get("return_event") or ""
        if data.get("segment"):
            found["segment"] = data["segment"]
        return found

    @classmethod
    def data_from(cls, parameters: dict) -> dict:
        return {key: parameters[key] for key in ("period", "periods", "cohort", "return_event", "segment") if key in parameters}


class PathsForm(RangeForm):
    event = forms.ChoiceField(label=_("event"))
    direction = forms.ChoiceField(label=_("direction"), initial=AFTER,
                                  choices=[(AFTER, _("what happens next")), (BEFORE, _("what happened before"))])
    steps = forms.IntegerField(label=_("events to follow"), min_value=1, max_value=5, initial=3)
    within_days = forms.IntegerField(label=_("within (days)"), min_value=1, max_value=90, initial=7)
    precision = forms.ChoiceField(label=_("precision"), initial=AUTO, required=False, choices=[
        (AUTO, _("fast: a fixed sample of one customer in ten when many did the event")),
        (EXACT, _("exact: every customer (slower after frequent events)"))])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].choices = event_choices()

    def parameters(self) -> dict:
        data = self.cleaned_data
        return {"event": data["event"], "direction": data["direction"], "steps": data["steps"],
                "within_days": data["within_days"], "precision": data.get("precision") or AUTO, **self.range_parameters()}

    @classmethod
    def data_from(cls, parameters: dict) -> dict:
        return {**cls.range_data(parameters), **{key: parameters[key] for key in (
            "event", "direction", "steps", "within_days", "precision") if key in parameters}}


class LifecycleForm(forms.Form):
    weeks = forms.IntegerField(label=_("weeks"), min_value=2, max_value=52, initial=12)
    segment = forms.ChoiceField(label=_("segment"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = segment_choices()

    def parameters(self) -> dict:
        found = {"weeks": self.cleaned_data["weeks"]}
        if self.cleaned_data.get("segment"):
            found["segment"] = self.cleaned_data["segment"]
        return found

    @classmethod
    def data_from(cls, parameters: dict) -> dict:
        return {key: parameters[key] for key in ("weeks", "segment") if key in parameters}


class RfmForm(forms.Form):
    segment = forms.ChoiceField(label=_("segment"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = segment_choices()

    def parameters(self) -> dict:
        return {"segment": self.cleaned_data["segment"]} if self.cleaned_data.get("segment") else {}

    @classmethod
    def data_from(cls, parameters: dict) -> dict:
        return {"segment": parameters["segment"]} if parameters.get("segment") else {}

