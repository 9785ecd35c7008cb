"""The "Behaviour analysis" pages of the admin (funnels, retention, paths, lifecycle, RFM)
and the dashboard on the admin index. Faces only: forms turn into the saved parameters,
segments.analytics computes, and segments.analytics.segment_writes makes segments."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cdp.exports import csv_lines
from cdp.queueing import task_queue_after_commit
from cdp.replica import on_replica
from profiles.metrics import CHURNED_AFTER_DAYS, LIFECYCLE_WINDOW_DAYS
from profiles.event_labels import EventLabels
from profiles.models import ImportStatus, LifecycleStage

from . import analytics
from .admin_analytics_forms import FunnelForm, LifecycleForm, PathsForm, RetentionForm, RfmForm
from .analytics.dashboard import dashboard_figures
from .analytics.paths import AFTER, EXACT, path_label
from .analytics.rfm import GROUPS, group_cells
from .analytics.segment_writes import segment_from_funnel_drop_off, segment_from_rfm_cells
from .conditions.explain import OPERATOR_LABELS, PROPERTY_OPERATOR_LABELS
from .models import SavedAnalysis
from .tasks import recompute_segment


@dataclass(frozen=True)
class Analysis:
    kind: str
    title: object
    form: type[forms.Form]
    build: Callable  # (parameters, now) → query, ValidationError if invalid
    run: Callable  # (query, now) → result
    chart: Callable  # result → the chart's data for analytics.js
    table: Callable  # result → rows (header first) for the page's table and its CSV


def _share(value) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _duration(seconds) -> str:
    if seconds is None:
        return ""
    if seconds < 3600:
        return _("%(n)s min") % {"n": round(seconds / 60, 1)}
    if seconds < 86400:
        return _("%(n)s h") % {"n": round(seconds / 3600, 1)}
    return _("%(n)s days") % {"n": round(seconds / 86400, 1)}


# --- funnel ---------------------------------------------------------------------------------

def funnel_chart(result) -> dict:
    return {"kind": "funnel", "labels": [s.label for s in result.steps], "counts": [s.count for s in result.steps],
            "shares": [_share(s.from_first) if s.number > 1 else "100%" for s in result.steps],
            "series": _("customers")}


def funnel_table(result) -> list[list]:
    rows = [[_("step"), _("event"), _("customers"), _("conversion from previous step"), _("conversion from first step"),
             _("dropped after this step"), _("median time from previous step")]]
    for s in result.steps:
        rows.append([s.number, s.label, s.count, _share(s.from_previous), _share(s.from_first),
                     "" if s.dropped is None else s.dropped, _duration(s.median_seconds)])
    return rows


def funnel_breakdown_table(result) -> list[list]:
    if not result.breakdown:
        return []
    header = [_("group"), *[f"{s.number}. {s.label}" for s in result.steps], _("conversion from first step")]
    return [header, *([label, *counts, _share(counts[-1] / counts[0] if counts[0] else None)]
                      for label, counts in result.breakdown)]


# --- retention ------------------------------------------------------------------------------

def retention_chart(result) -> dict:
    cells = []
    for y, cohort in enumerate(result.cohorts):
        for x, (count, share) in enumerate(zip(cohort.returned, cohort.shares)):
            cells.append([x, y, round(share * 100, 1), count])
    return {"kind": "retention", "cohorts": [c.label for c in result.cohorts], "offsets": _offsets(result), "cells": cells,
            "sizes": [c.size for c in result.cohorts]}


def _offsets(result) -> list[str]:
    """Column titles: week 1, week 2… (or months) after the cohort's own period."""
    word = _("week %(n)s") if result.query.period == "week" else _("month %(n)s")
    return [word % {"n": k} for k in range(1, result.query.periods)]


def retention_table(result) -> list[list]:
    header = [_("cohort"), _("customers"), *_offsets(result)]
    rows = [header]
    for cohort in result.cohorts:
        rows.append([cohort.label, cohort.size, *[f"{_share(s)} ({n})" for n, s in zip(cohort.returned, cohort.shares)]])
    return rows


# --- paths ----------------------------------------------------------------------------------

def _path_end(result) -> str:
    return _("no further event") if result.query.direction == AFTER else _("no earlier event")


def _path_links(result) -> list[tuple[int, str, str, int]]:
    """The flows, labelled, plus those whose path stops at each event (as flows into an
    end node), so that the chart and the table show where customers drop out."""
    return [*((step, path_label(result, a), path_label(result, b), n) for step, a, b, n in result.flows),
            *((step, path_label(result, name), _path_end(result), n) for step, name, n in result.ended())]


def paths_chart(result) -> dict:
    nodes, links = {}, []
    for step, source, target, count in _path_links(result):
        for key in (f"{step}·{source}", f"{step + 1}·{target}"):
            nodes.setdefault(key, {"name": key})
        if target == _path_end(result):
            nodes[f"{step + 1}·{target}"]["itemStyle"] = {"color": "#bbb"}  # grey: out of the path
        links.append({"source": f"{step}·{source}", "target": f"{step + 1}·{target}", "value": count})
    return {"kind": "paths", "nodes": list(nodes.values()), "links": links}


def paths_table(result) -> list[list]:
    if result.sample_every == 1:
        return [[_("step"), _("from"), _("to"), _("customers")],
                *([step + 1, source, target, count] for step, source, target, count in _path_links(result))]
    return [[_("step"), _("from"), _("to"), _("customers (estimated)"), _("± (95%)")],
            *([step + 1, source, target, count, result.margin(count)]
              for step, source, target, count in _path_links(result))]


# --- lifecycle ------------------------------------------------------------------------------

# One colour per lifecycle stage, the same on the dashboard's pie and the lifecycle chart:
# grey before any activity, blues and greens while active, amber dormant, red churned.
LIFECYCLE_COLOURS = {
    LifecycleStage.PROSPECT: "#b0b7c3", LifecycleStage.NEW: "#5470c6", LifecycleStage.ACTIVE: "#91cc75",
    LifecycleStage.RETURNING: "#3ba272", LifecycleStage.DORMANT: "#fac858", LifecycleStage.CHURNED: "#ee6666",
}


def lifecycle_chart(result) -> dict:
    labels = dict(LifecycleStage.choices)
    return {"kind": "lifecycle", "labels": [timezone.localtime(m).strftime("%Y-%m-%d") for m in result.moments],
            "series": [{"name": str(labels[stage]), "data": counts, "color": LIFECYCLE_COLOURS.get(stage)}
                       for stage, counts in result.counts.items()]}


def lifecycle_table(result) -> list[list]:
    labels = dict(LifecycleStage.choices)
    rows = [[_("week ending"), *[str(labels[stage]) for stage in result.counts]]]
    for i, moment in enumerate(result.moments):
        rows.append([timezone.localtime(moment).strftime("%Y-%m-%d"), *[counts[i] for counts in result.counts.values()]])
    return rows


# --- RFM ------------------------------------------------------------------------------------

def rfm_chart(result) -> dict:
    names = {code: str(label) for code, label, _rf in GROUPS}
    return {"kind": "rfm", "cells": [[c.frequency - 1, c.recency - 1, c.customers, float(c.money), names[c.group]]
                                     for c in result.cells],
            "x": [f"F{f}" for f in range(1, 6)], "y": [f"R{r}" for r in range(1, 6)],
            "money": _("money"), "customers": _("customers")}


def rfm_table(result) -> list[list]:
    names = {code: str(label) for code, label, _rf in GROUPS}
    rows = [[_("R score"), _("F score"), _("group"), _("customers"), _("money")]]
    rows += [[c.recency, c.frequency, names[c.group], c.customers, c.money] for c in result.cells]
    return rows


ANALYSES = {
    "funnel": Analysis("funnel", gettext_lazy("Funnel"), FunnelForm, analytics.funnel_query, analytics.funnel,
                       funnel_chart, funnel_table),
    "retention": Analysis("retention", gettext_lazy("Retention"), RetentionForm,
                          lambda p, now: analytics.retention_query(p), analytics.retention, retention_chart, retention_table),
    "paths": Analysis("paths", gettext_lazy("Paths"), PathsForm, analytics.paths_query, analytics.paths,
                      paths_chart, paths_table),
    "lifecycle": Analysis("lifecycle", gettext_lazy("Lifecycle"), LifecycleForm,
                          lambda p, now: analytics.lifecycle_query(p), analytics.lifecycle, lifecycle_chart,
                          lifecycle_table),
    "rfm": Analysis("rfm", gettext_lazy("RFM"), RfmForm, lambda p, now: analytics.rfm_query(p),
                    lambda q, now: analytics.rfm(q), rfm_chart, rfm_table),
}


def csv_response(rows: list[list], filename: str) -> HttpResponse:
    response = HttpResponse("".join(csv_lines(rows)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ParametersForm(forms.Form):
    """The parameters an analysis ran with, posted back from its page."""

    parameters = forms.JSONField(widget=forms.HiddenInput)

    def clean_parameters(self):
        parameters = self.cleaned_data["parameters"]
        try:
            json.dumps(parameters, allow_nan=False)  # 1e400 reads as infinity, which no database stores
        except ValueError:
            parameters = None
        if not isinstance(parameters, dict):
            raise ValidationError(_("The analysis settings could not be read; run the analysis again."))
        return parameters


def valid(form: forms.Form) -> dict:
    """The form's cleaned data, or a ValidationError carrying all its messages."""
    if not form.is_valid():
        raise ValidationError([message for errors in form.errors.values() for message in errors])
    return form.cleaned_data


class SaveForm(ParametersForm):
    name = forms.CharField(label=gettext_lazy("name"), max_length=150,
                           error_messages={"required": gettext_lazy("Give the analysis a name.")})


@admin.register(SavedAnalysis)
class SavedAnalysisAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "owner", "updated_at", "open_link")
    list_filter = ("kind",)
    search_fields = ("name",)
    fields = ("name", "kind", "parameters", "owner", "created_at", "updated_at")
    readonly_fields = ("kind", "parameters", "owner", "created_at", "updated_at")
    list_select_related = ("owner",)

    def has_add_permission(self, request):
        return False  # saved from an analysis page, with the parameters it ran with

    @admin.display(description=gettext_lazy("open"))
    def open_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:segments_savedanalysis_open", args=[obj.pk]),
                           _("Open with fresh data"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("open/<int:pk>/", view(self.open_view), name="segments_savedanalysis_open"),
            path("funnel/drop-off/", view(self.drop_off_view), name="segments_savedanalysis_drop_off"),
            path("rfm/segment/", view(self.rfm_segment_view), name="segments_savedanalysis_rfm_segment"),
            path("dashboard/<str:chart>.csv", view(self.dashboard_csv_view), name="segments_savedanalysis_dashboard_csv"),
            *[path(f"{kind}/", view(self.analysis_view), {"kind": kind}, name=f"segments_savedanalysis_{kind}")
              for kind in ANALYSES],
            *[path(f"{kind}/save/", view(self.save_view), {"kind": kind}, name=f"segments_savedanalysis_{kind}_save")
              for kind in ANALYSES],
            *super().get_urls(),
        ]

    # --- the analysis pages -------------------------------------------------------------------

    def analysis_view(self, request, kind):
        if not self.has_view_permission(request):
            raise PermissionDenied
        analysis = ANALYSES[kind]
        saved = None
        if request.GET.get("saved"):
            saved = get_object_or_404(SavedAnalysis, pk=request.GET["saved"] if request.GET["saved"].isdigit() else None,
                                      kind=kind)
            form = analysis.form(analysis.form.data_from(saved.parameters))
        elif "run" in request.GET:
            form = analysis.form(request.GET)
        else:
            form = analysis.form(initial=self._initial(kind))
        now = timezone.now()
        result = parameters = None
        if form.is_bound and form.is_valid():
            parameters = form.parameters()
            try:
                result = on_replica(analysis.run, analysis.build(parameters, now), now)
            except ValidationError as error:
                form.add_error(None, error)
        if result is not None and request.GET.get("format") == "csv":
            rows = funnel_breakdown_table(result) if request.GET.get("part") == "breakdown" else analysis.table(result)
            return csv_response(rows, f"{kind}-{timezone.localtime(now):%Y%m%d-%H%M}.csv")
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": analysis.title,
            "analysis": analysis, "kinds": [(k, a.title) for k, a in ANALYSES.items()], "form": form, "result": result,
            "saved": saved, "parameters_json": json.dumps(parameters or {}, ensure_ascii=False),
            "table": analysis.table(result) if result is not None else None,
            "chart": analysis.chart(result) if result is not None else None,
            "csv_url": f"?{urlencode({**request.GET.dict(), 'format': 'csv'})}" if result is not None else "",
            "save_form": SaveForm(initial={"name": saved.name if saved else "", "parameters": parameters or {}}),
            "can_save": self.has_add_permission_for_saving(request),
            "can_make_segments": request.user.has_perm("segments.add_segment"),
            "now": now,
        }
        context.update(self._extra_context(kind, result, request, now))
        return TemplateResponse(request, f"admin/analytics/{kind}.html", context)

    @staticmethod
    def _initial(kind: str) -> dict:
        if kind == "funnel":  # the account-opening funnel staff ask for first
            return {"step_1": "account_open_start", "step_2": "account_open_submit", "step_3": "account_open_complete",
                    "window_days": 7, "days": 30}
        if kind == "paths":
            return {"event": "add_to_cart", "days": 30}
        return {}

    def _extra_context(self, kind, result, request, now) -> dict:
        if result is None:
            return {}
        if kind == "funnel":
            return {"breakdown_table": funnel_breakdown_table(result),
                    "breakdown_csv_url": f"?{urlencode({**request.GET.dict(), 'format': 'csv', 'part': 'breakdown'})}",
                    "drop_off_steps": [s for s in result.steps if s.dropped]}
        if kind == "paths" and result.sample_every > 1:
            return {"exact_url": f"?{urlencode({**request.GET.dict(), 'run': '1', 'precision': EXACT})}"}
        if kind == "lifecycle":
            return {"window_days": LIFECYCLE_WINDOW_DAYS, "churned_days": CHURNED_AFTER_DAYS}
        if kind == "rfm":
            rows = [[c for c in result.cells if c.recency == r] for r in range(5, 0, -1)]
            return {"grid": rows, "groups": result.groups}
        return {}

    def has_add_permission_for_saving(self, request) -> bool:
        return request.user.has_perm("segments.add_savedanalysis")

    def save_view(self, request, kind):
        """Save the analysis shown with a name (a new one, or the reopened one renamed)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission_for_saving(request):
            raise PermissionDenied
        form = SaveForm(request.POST)
        analysis = ANALYSES[kind]
        try:
            parameters = valid(form)["parameters"]
            analysis.build(parameters, timezone.now())  # only what runs is saved
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return HttpResponseRedirect(reverse(f"admin:segments_savedanalysis_{kind}"))
        saved = SavedAnalysis.objects.create(name=form.cleaned_data["name"], kind=kind, parameters=parameters,
                                             owner=request.user)
        messages.success(request, _("Saved “%(name)s”. Reopening it runs it on the latest data.") % {"name": saved.name})
        return HttpResponseRedirect(f"{reverse(f'admin:segments_savedanalysis_{kind}')}?saved={saved.pk}")

    def open_view(self, request, pk):
        saved = get_object_or_404(SavedAnalysis, pk=pk)
        return HttpResponseRedirect(f"{reverse(f'admin:segments_savedanalysis_{saved.kind}')}?saved={saved.pk}")

    # --- results into segments -----------------------------------------------------------------

    def drop_off_view(self, request):
        """One click: those who dropped out after a funnel step become a static segment."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("segments.add_segment"):
            raise PermissionDenied
        now = timezone.now()
        form = ParametersForm(request.POST)
        try:
            query = analytics.funnel_query(valid(form)["parameters"], now)
            step = int(request.POST["step"]) if request.POST.get("step", "").isdigit() else 0  # 0: refused, with the range
            name = (request.POST.get("name") or "").strip() or drop_off_name(query, step, now)
            segment = segment_from_funnel_drop_off(query=query, step=step, name=name, now=now)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return HttpResponseRedirect(reverse("admin:segments_savedanalysis_funnel"))
        messages.success(request, _("Segment “%(name)s” saved with %(count)s customers.")
                         % {"name": segment.name, "count": segment.member_count})
        return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]))

    def rfm_segment_view(self, request):
        """An RFM cell or named group becomes a dynamic segment on the stored scores."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("segments.add_segment"):
            raise PermissionDenied
        groups = {code: str(label) for code, label, _rf in GROUPS}
        try:
            if request.POST.get("group") in groups:
                cells, name = group_cells(request.POST["group"]), f"RFM {groups[request.POST['group']]}"
            else:
                recency, frequency = (int(v) for v in request.POST.get("cell", "").split(","))
                if not (1 <= recency <= 5 and 1 <= frequency <= 5):
                    raise ValueError
                cells, name = [(recency, frequency)], f"RFM R{recency} F{frequency}"
            within = analytics.rfm_query({"segment": request.POST.get("segment") or None}).segment
        except (ValueError, ValidationError):
            messages.error(request, _("Choose a cell of the grid or a group."))
            return HttpResponseRedirect(reverse("admin:segments_savedanalysis_rfm"))
        if within is not None:
            name = f"{name} · {within.name}"
        with transaction.atomic():
            segment = segment_from_rfm_cells(cells=cells, name=name, within=within)
            task_queue_after_commit(task=recompute_segment, args=(segment.pk, segment.version), request=request)
        messages.success(request, _("Segment “%(name)s” saved; its members are being calculated.") % {"name": segment.name})
        return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]))

    # --- the dashboard's downloads ----------------------------------------------------------------

    def dashboard_csv_view(self, request, chart):
        if chart not in DASHBOARD_CSV_PERMISSIONS:
            raise Http404
        if not request.user.has_perm(DASHBOARD_CSV_PERMISSIONS[chart]):
            raise PermissionDenied
        figures = dashboard_figures()
        if chart == "events":
            rows = [[_("day"), _("events")], *figures["events_per_day"]]
        elif chart == "lifecycle":
            labels = dict(LifecycleStage.choices)
            rows = [[_("lifecycle stage"), _("customers")], *[[str(labels[s]), n] for s, n in figures["lifecycle"]]]
        elif chart == "consent":
            rows = [[_("purpose"), _("customers who may be contacted"), _("share of customers")],
                    *[[_purpose_name(p), p["allowed"], _share(p["share"])] for p in figures["consent"]]]
        elif chart == "segments":
            rows = [[_("segment"), _("members")], *[[s["name"], s["member_count"]] for s in figures["segments"]]]
        else:
            raise Http404
        return csv_response(rows, f"dashboard-{chart}.csv")


def drop_off_name(query, step: int, now) -> str:
    """What a funnel's drop-off segment holds, from the funnel itself: "浏览商品后未加入购物车
    （漏斗 浏览商品 → 加入购物车 → 下单，12-05）"."""
    labels = EventLabels.load()
    names = [_funnel_step_name(labels, s) for s in query.steps]
    if not 1 <= step < len(names):  # refused by the write, with the range
        return _("Dropped after step %(n)s") % {"n": step}
    name = _("Did “%(reached)s” but not “%(next)s” (funnel %(funnel)s, %(date)s)") % {
        "reached": names[step - 1], "next": names[step], "funnel": " → ".join(names),
        "date": timezone.localtime(now).strftime("%m-%d"),
    }
    return name if len(name) <= 150 else name[:149] + "…"


def _funnel_step_name(labels: EventLabels, step: dict) -> str:
    """"下单 [品类 = 口红]": the event and its filters by their labels."""
    operators = {**OPERATOR_LABELS, **PROPERTY_OPERATOR_LABELS}
    filters = "".join(f" [{labels.property(w.get('property'), step['event'])} {operators.get(w.get('op'), w.get('op'))} "
                      f"{labels.value(w.get('property'), w.get('value'), step['event'])}]"
                      for w in step.get("where") or [] if isinstance(w, dict))
    return labels.event(step["event"]) + filters


# Each dashboard download needs the permission for the data it holds (being staff is not enough).
DASHBOARD_CSV_PERMISSIONS = {
    "events": "segments.view_savedanalysis",  # behaviour: the analyses' permission
    "lifecycle": "profiles.view_profile",
    "consent": "profiles.view_profile",
    "segments": "segments.view_segment",
}
DASHBOARD_PERMISSION = "profiles.view_profile"  # the dashboard's figures are about customers


def _purpose_name(purpose: dict) -> str:
    from django.utils.translation import get_language

    chinese = (get_language() or "zh-hans").startswith("zh")
    return (purpose["name_zh"] if chinese else purpose["name_en"]) or purpose["code"]


# --- the dashboard (admin index) ------------------------------------------------------------------

def dashboard_context(request) -> dict:
    """What templates/admin/index.html shows: the cached figures, labelled, with links."""
    if not request.user.is_active or not request.user.is_staff or not request.user.has_perm(DASHBOARD_PERMISSION):
        return {}
    figures = dashboard_figures(refresh=request.GET.get("refresh") == "1")
    computed_at = parse_datetime(figures["computed_at"])
    stages = dict(LifecycleStage.choices)
    statuses = dict(ImportStatus.choices)
    profiles_url = reverse("admin:profiles_profile_changelist")
    dashboard = {
        "age_minutes": int((timezone.now() - computed_at).total_seconds() // 60),
        "computed_at": computed_at,
        "customers": figures["customers"], "customers_url": f"{profiles_url}?status__exact=active",
        "new_this_week": figures["new_this_week"],
        "new_url": f"{profiles_url}?{urlencode({'status__exact': 'active', 'created_at__date__gte': figures['new_since']})}",
        "active_30_days": figures["active_30_days"],
        "active_url": f"{profiles_url}?lifecycle_stage__in=new,active,returning",
        "consent": [{**p, "label": _purpose_name(p), "percent": _share(p["share"])} for p in figures["consent"]],
        "segments": figures["segments"], "segment_count": figures["segment_count"],
        "imports": [{**job, "status_label": statuses.get(job["status"], job["status"])}
                    for job in figures["imports"]["recent"]],
        "import_statuses": [(statuses.get(s, s), n, s) for s, n in sorted(figures["imports"]["by_status"].items())],
        "lifecycle": [(stages[s], n, f"{profiles_url}?lifecycle_stage__exact={s}") for s, n in figures["lifecycle"]],
        "chart": {"kind": "dashboard", "days": [d for d, _n in figures["events_per_day"]],
                  "events": [n for _d, n in figures["events_per_day"]], "events_label": _("events"),
                  "lifecycle": [{"name": str(stages[s]), "value": n, "itemStyle": {"color": LIFECYCLE_COLOURS.get(s)}}
                                for s, n in figures["lifecycle"] if n]},
        "analyses": [(a.title, reverse(f"admin:segments_savedanalysis_{k}")) for k, a in ANALYSES.items()],
    }
    return {"dashboard": dashboard}


def analysis_section(request) -> dict | None:
    """The app list's "Behaviour analysis" section: the five analyses and the saved ones."""
    if not request.user.has_perm("segments.view_savedanalysis"):
        return None
    models = [{"name": analysis.title, "object_name": f"Analysis{kind.title()}", "perms": {"view": True},
               "admin_url": reverse(f"admin:segments_savedanalysis_{kind}"), "add_url": None, "view_only": True}
              for kind, analysis in ANALYSES.items()]
    return {"name": _("Behaviour analysis"), "app_label": "analytics", "app_url": reverse("admin:segments_savedanalysis_funnel"),
            "has_module_perms": True, "models": models}


admin.site.index_providers.append(dashboard_context)
admin.site.app_sections.append(analysis_section)
