"""Tracking sources (数据源): the websites, apps, mini programs and servers that send events
through the collection endpoints. A source's write key is shown once — when the source is
made and when the key is rotated — with copy-paste set-up for the SDKs; the source's page
shows its traffic: the last messages received (masked, as they were logged), the rejected
ones with the reason, and counts per hour for two days."""
import datetime
import json
from functools import partial
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max, Sum
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import CollectHourlyCount, CollectLog, CollectOutcome, CollectSource
from ..services.sources import source_code_free, source_key_assign, source_key_rotate

DEBUGGER_ROWS = 50
LOG_TABLE = "admin/profiles/collectsource/log_table.html"
CHART_HOURS = 48
OUTCOMES = [CollectOutcome.ACCEPTED, CollectOutcome.DUPLICATE, CollectOutcome.DROPPED, CollectOutcome.REJECTED]


def origin_normalise(line: str) -> str:
    """`https://Shop.Example.cn:8443/` → `https://shop.example.cn:8443`; anything but a
    scheme, a host and a port is refused (a browser's Origin header carries nothing else)."""
    text = line.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.path
            or parts.query or parts.fragment or parts.username or parts.password or "*" in text):
        raise ValidationError(
            _("“%(origin)s” is not an origin: write the scheme, the host and the port if any, without a path, "
              "e.g. https://shop.example.cn or http://localhost:8080."), code="invalid_origin",
            params={"origin": line.strip()[:100]})
    host = parts.hostname.lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


class OriginsField(forms.CharField):
    """Allowed origins, one per line, stored as a list."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "https://shop.example.cn"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def clean(self, value):
        value = super().clean(value)
        origins, errors = [], []
        for line in (value or "").splitlines():
            if not line.strip():
                continue
            try:
                origin = origin_normalise(line)
            except ValidationError as error:
                errors.append(error)
                continue
            if origin not in origins:
                origins.append(origin)
        if errors:
            raise ValidationError(errors)
        return origins


class CollectSourceForm(forms.ModelForm):
    allowed_origins = OriginsField(
        label=_("allowed origins"), required=False,
        help_text=_("One per line, e.g. https://shop.example.cn. Browser pages from these origins may send with "
                    "this key; empty: browsers may not send (servers and apps always may)."))
    consent_purpose = forms.ChoiceField(label=_("needs consent for"), required=False,
                                        help_text=CollectSource._meta.get_field("consent_purpose").help_text)

    class Meta:
        model = CollectSource
        fields = ("name", "code", "kind", "allowed_origins", "user_id_kind", "consent_purpose", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from consent.models import Purpose  # the admin is a face: it may read any app

        choices = [("", _("none: collect without asking"))]
        choices += [(p.code, f"{p} ({p.code})") for p in Purpose.objects.order_by("code")]
        current = self.instance.consent_purpose
        if current and current not in {code for code, _label in choices}:
            choices.append((current, current))  # a purpose since removed stays visible
        if "consent_purpose" in self.fields:  # a view-only reader's form has no fields
            self.fields["consent_purpose"].choices = choices
        if "code" in self.fields:
            self.fields["code"].required = False
            self.fields["code"].help_text = _("Empty: made from the name. Events from this source are stored with "
                                              "“sdk-<code>” as their source.")
            if self.instance.pk:
                self.fields["code"].disabled = True  # events already carry it

    def clean_code(self):
        code = self.cleaned_data.get("code")
        if self.instance.pk:
            return self.instance.code
        if not code and self.cleaned_data.get("name"):
            code = source_code_free(self.cleaned_data["name"])
        return code


# --- what the source's page reads -------------------------------------------------------------

def log_rows(source: CollectSource, *, rejected: bool, limit: int = DEBUGGER_ROWS) -> list[dict]:
    """The newest messages (or rejected ones) as the page and its JSON show them: one query."""
    rows = CollectLog.objects.filter(source=source)
    if rejected:
        rows = rows.filter(outcome=CollectOutcome.REJECTED)
    rows = rows.order_by("-received_at", "-pk").values(
        "pk", "received_at", "protocol", "type", "name", "outcome", "reason", "library", "profile_id",
        "payload")[:limit]
    labels = dict(CollectOutcome.choices)
    return [{
        "id": row["pk"],
        "received_at": timezone.localtime(row["received_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        "protocol": row["protocol"], "type": row["type"], "name": row["name"], "outcome": row["outcome"],
        "outcome_label": str(labels.get(row["outcome"], row["outcome"])), "reason": row["reason"],
        "library": row["library"],
        "customer_url": reverse("admin:profiles_profile_change", args=[row["profile_id"]]) if row["profile_id"] else "",
        "payload": json.dumps(row["payload"], ensure_ascii=False, indent=2, sort_keys=True)[:20_000],
    } for row in rows]


def hourly_chart(source: CollectSource, now: datetime.datetime) -> dict:
    """Counts per hour for the last CHART_HOURS hours (empty hours as zero), in local time: one query."""
    last = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    hours = [last - datetime.timedelta(hours=n) for n in range(CHART_HOURS - 1, -1, -1)]
    rows = CollectHourlyCount.objects.filter(source=source, hour__gte=hours[0]).values_list("hour", *OUTCOMES)
    by_hour = {timezone.localtime(hour).replace(minute=0, second=0, microsecond=0): counts for hour, *counts in rows}
    labels = dict(CollectOutcome.choices)
    series = [{"code": outcome, "name": str(labels[outcome]),
               "data": [by_hour.get(hour, [0] * len(OUTCOMES))[i] for hour in hours]}
              for i, outcome in enumerate(OUTCOMES)]
    for serie in series:
        serie["total"] = sum(serie["data"])
    return {"hours": [hour.strftime("%m-%d %H:00") for hour in hours], "series": series}


def source_totals(source: CollectSource) -> dict:
    totals = CollectHourlyCount.objects.filter(source=source).aggregate(**{o: Sum(o) for o in OUTCOMES})
    return {outcome: totals[outcome] or 0 for outcome in OUTCOMES}


def public_base() -> str:
    return settings.CDP_PUBLIC_URL.rstrip("/")


def snippets(key: str) -> list[dict]:
    """Copy-paste set-up of the SDKs for a key, pointing at this server's endpoints."""
    base = public_base()
    parts = urlsplit(base)
    api_host = f"{parts.netloc}{parts.path}/collect/v1"
    scheme = parts.scheme or "https"
    return [
        {"id": "snippet-analytics-js", "title": "analytics.js (Segment)", "code": (
            "// @segment/analytics-next: settings given here, nothing is fetched from Segment's CDN\n"
            "import { AnalyticsBrowser } from \"@segment/analytics-next\";\n\n"
            f"const segmentIo = {{ apiKey: \"{key}\", apiHost: \"{api_host}\", protocol: \"{scheme}\" }};\n"
            "export const analytics = AnalyticsBrowser.load({\n"
            f"  writeKey: \"{key}\",\n"
            "  cdnSettings: { integrations: { \"Segment.io\": segmentIo }, plan: {}, metrics: { sampleRate: 0 }, "
            "remotePlugins: [] },\n"
            "}, { integrations: { \"Segment.io\": segmentIo } });\n"
            "analytics.page();")},
        {"id": "snippet-python", "title": "analytics-python (segment-analytics-python)", "code": (
            "import segment.analytics as analytics\n\n"
            f"analytics.write_key = \"{key}\"\n"
            f"analytics.host = \"{base}/collect\"\n\n"
            "analytics.track(\"U100\", \"Order Completed\", {\"revenue\": 199.0})")},
        {"id": "snippet-node", "title": "analytics-node (@segment/analytics-node)", "code": (
            "import { Analytics } from \"@segment/analytics-node\";\n\n"
            # analytics-node joins host and path with new URL(path, host): the prefix goes in the path
            f"const analytics = new Analytics({{ writeKey: \"{key}\", host: \"{base}\", path: \"/collect/v1/batch\" }});\n"
            "analytics.track({ userId: \"U100\", event: \"Order Completed\", properties: { revenue: 199 } });")},
        {"id": "snippet-sensors", "title": gettext("Sensors Data SDK (sa-sdk-javascript, app SDKs)"), "code": (
            "sensors.init({\n"
            f"  server_url: \"{base}/collect/sa?project=default&token={key}\",\n"
            "  is_track_single_page: true,\n"
            "  send_type: \"beacon\",\n"
            "});\n"
            "sensors.quick(\"autoTrack\");")},
    ]


@admin.register(CollectSource)
class CollectSourceAdmin(admin.ModelAdmin):
    form = CollectSourceForm
    list_display = ("name", "code", "kind", "is_active", "user_id_kind", "consent_purpose_shown", "key_prefix",
                    "last_received", "key_created_at")
    list_filter = ("kind", "is_active")
    list_select_related = ("user_id_kind",)
    search_fields = ("name", "code", "key_prefix")
    readonly_fields = ("key_prefix", "key_created_at", "created_at")

    def get_fieldsets(self, request, obj=None):
        main = (None, {"fields": ("name", "code", "kind", "is_active")})
        rules = (_("Who may send, and what it means"), {
            "fields": ("allowed_origins", "user_id_kind", "consent_purpose")})
        if obj is None:
            return [main, rules]
        return [main, rules, (_("Write key"), {"fields": ("key_prefix", "key_created_at", "created_at")})]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match and match.url_name == "profiles_collectsource_changelist":  # the list's column only
            queryset = queryset.annotate(last_received_at=Max("log__received_at"))
        return queryset

    @admin.display(description=_("last message"), ordering="last_received_at")
    def last_received(self, source):
        when = getattr(source, "last_received_at", None)
        return date_format(timezone.localtime(when), "Y-m-d H:i") if when else "—"

    @admin.display(description=_("needs consent for"), ordering="consent_purpose")
    def consent_purpose_shown(self, source):
        return source.consent_purpose or "—"

    def has_delete_permission(self, request, obj=None):
        # Events keep "sdk-<code>" as their source: deactivate a source instead of deleting it.
        return False

    def get_urls(self):
        def view(function, name, route):
            return path(route, self.admin_site.admin_view(partial(function, self)),
                        name=f"profiles_collectsource_{name}")

        return [
            view(rotate_view, "rotate", "<int:source_id>/rotate/"),
            view(debugger_view, "debugger", "<int:source_id>/debugger/"),
            *super().get_urls(),
        ]

    def save_model(self, request, obj, form, change):
        if not change:
            request._collect_write_key = source_key_assign(obj)
            obj.save(force_insert=True)
        else:
            obj.save()

    def response_add(self, request, obj, post_url_continue=None):
        key = getattr(request, "_collect_write_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        return key_page(self, request, obj, key, rotated=False)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        source = self.get_object(request, unquote(object_id))
        extra = {}
        if source is not None and request.method == "GET":
            extra = source_page_context(self, request, source)
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})


def source_page_context(model_admin, request, source: CollectSource) -> dict:
    now = timezone.now()
    events_url = reverse("admin:profiles_event_changelist") + "?" + urlencode({"source": source.event_source})
    return {
        "source": source,
        "debugger": {"url": reverse("admin:profiles_collectsource_debugger", args=[source.pk]),
                     "messages": log_rows(source, rejected=False), "rejected": log_rows(source, rejected=True)},
        "chart": hourly_chart(source, now),
        "totals": source_totals(source),
        "events_url": events_url,
        "can_rotate": model_admin.has_change_permission(request, source),
        "endpoints": {"segment": f"{public_base()}/collect/v1/",
                      "sensors": f"{public_base()}/collect/sa?project=default&token=…"},
    }


def _source(model_admin, request, source_id) -> CollectSource:
    source = get_object_or_404(CollectSource.objects.select_related("user_id_kind"), pk=source_id)
    if not model_admin.has_view_permission(request, source):
        raise PermissionDenied
    return source


def key_page(model_admin, request, source: CollectSource, key: str, *, rotated: bool) -> TemplateResponse:
    """The key, once: the response to the POST that made it (never stored, never in a redirect)."""
    context = {
        **model_admin.admin_site.each_context(request), "opts": CollectSource._meta, "source": source,
        "title": gettext("Write key of “%(name)s”") % {"name": source.name},
        "key": key, "rotated": rotated, "snippets": snippets(key),
        "source_url": reverse("admin:profiles_collectsource_change", args=[source.pk]),
    }
    response = TemplateResponse(request, "admin/profiles/collectsource/key.html", context)
    response["Cache-Control"] = "no-store"
    return response


def rotate_view(model_admin, request, source_id):
    """GET: what rotating does, and a confirm button; POST: the new key, once."""
    source = _source(model_admin, request, source_id)
    if not model_admin.has_change_permission(request, source):
        raise PermissionDenied
    if request.method == "POST":
        key = source_key_rotate(source=source)
        # The admin's history of the source says who rotated it, and the new key's prefix.
        model_admin.log_change(request, source, gettext("Write key rotated; the new key starts with %(prefix)s.")
                               % {"prefix": source.key_prefix})
        return key_page(model_admin, request, source, key, rotated=True)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    context = {
        **model_admin.admin_site.each_context(request), "opts": CollectSource._meta, "source": source,
        "title": gettext("Rotate the write key of “%(name)s”") % {"name": source.name},
        "source_url": reverse("admin:profiles_collectsource_change", args=[source.pk]),
    }
    return TemplateResponse(request, "admin/profiles/collectsource/rotate.html", context)


def debugger_view(model_admin, request, source_id):
    """The debugger's tables (rendered as on the page) and the totals as JSON, polled by the
    source's page; `?format=rows` gives the rows as data instead."""
    source = _source(model_admin, request, source_id)
    messages, rejected = log_rows(source, rejected=False), log_rows(source, rejected=True)
    answer = {"totals": source_totals(source), "chart": hourly_chart(source, timezone.now()),
              "latest": messages[0]["id"] if messages else None}
    if request.GET.get("format") == "rows":
        answer.update(messages=messages, rejected=rejected)
    else:
        answer.update({
            "messages_html": render_to_string(LOG_TABLE, {"rows": messages, "rejected": False}, request=request),
            "rejected_html": render_to_string(LOG_TABLE, {"rows": rejected, "rejected": True}, request=request)})
    return JsonResponse(answer)
