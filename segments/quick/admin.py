"""The quick audience box in the admin: the named thresholds' settings page, the box's
parse and create-a-segment endpoints (session auth, for quick-audience.js), and the
customer list's filter by a definition (?audience=<definition JSON>)."""
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cdp.queueing import task_queue_after_commit

from ..conditions import compile_condition, parse
from ..models import Segment
from ..services import segment_save
from ..slugs import segment_slug_suggest
from ..status import segment_calculation_queued
from ..tasks import recompute_segment
from .lexicon import warm_up
from .models import NamedThreshold
from .parse import MAX_LENGTH, quick_parse


@admin.register(NamedThreshold)
class NamedThresholdAdmin(admin.ModelAdmin):
    """What 高消费, 高购买频率, 高价值… mean in the quick audience box (a rule tag of the same
    name wins over its threshold)."""

    list_display = ("name", "synonyms", "measure", "op", "value", "window_days", "meaning")
    search_fields = ("name", "synonyms")
    fields = ("name", "synonyms", "measure", "op", "value", "window_days", "description")

    @admin.display(description=_("condition"))
    def meaning(self, obj):
        return json.dumps(obj.condition(), ensure_ascii=False)

    def get_urls(self):
        return [
            path("parse/", self.admin_site.admin_view(parse_view), name="segments_quick_parse"),
            path("create-segment/", self.admin_site.admin_view(create_segment_view), name="segments_quick_create"),
            *super().get_urls(),
        ]


def _may_read_segments(request) -> bool:
    return request.user.has_perm("segments.view_segment") or request.user.has_perm("profiles.view_profile")


def parse_view(request):
    """GET ?q=<line>&choose=<key>…: what quick_parse answers, for quick-audience.js."""
    if not _may_read_segments(request):
        raise PermissionDenied
    line = request.GET.get("q", "")
    result = quick_parse(line, choose=request.GET.getlist("choose"), user=request.user)
    return JsonResponse(result.as_dict() | {"too_long": len(line) > MAX_LENGTH})


class _CreateForm(forms.Form):
    q = forms.CharField(max_length=MAX_LENGTH)
    choose = forms.CharField(required=False)


def create_segment_view(request):
    """POST q=<line>[&choose=key,key]: a dynamic segment named after the line, with its
    definition (the campaign audience step offers it); the answer names it for the form's
    segment choice."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not request.user.has_perm("segments.add_segment"):
        raise PermissionDenied
    form = _CreateForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": [gettext("Type the audience first, e.g. 上海+女性+喜欢运动鞋.")]}, status=400)
    choose = [key for key in form.cleaned_data["choose"].split(",") if key]
    result = quick_parse(form.cleaned_data["q"], choose=choose, user=request.user)
    if result.definition is None:
        return JsonResponse({"errors": [gettext("Nothing in this line was understood; see the highlighted words.")]},
                            status=400)
    if result.errors:
        return JsonResponse({"errors": [e["message"] for e in result.errors]}, status=400)
    name = _unique_name(form.cleaned_data["q"].strip())
    segment = Segment(name=name, slug=segment_slug_suggest(name),
                      description=gettext("Made from the quick audience line “%(line)s”.") % {"line": result.query})
    try:
        segment = segment_save(segment=segment, definition=result.definition)
    except ValidationError as error:
        return JsonResponse({"errors": error.messages}, status=400)
    segment_calculation_queued(segment=segment)
    task_queue_after_commit(task=recompute_segment, args=(segment.pk, segment.version), request=request)
    return JsonResponse({"id": segment.pk, "name": segment.name, "slug": segment.slug,
                         "url": reverse("admin:segments_segment_change", args=[segment.pk])})


def _unique_name(line: str) -> str:
    name, number = line[:140], 2
    while Segment.objects.filter(name=name).exists():
        name, number = f"{line[:140]} ({number})", number + 1
    return name


def quick_audience_context(request, mode: str) -> dict:
    """What the box's template needs; starts loading the tokenizer in the background."""
    warm_up()
    return {"mode": mode, "parse_url": reverse("admin:segments_quick_parse"),
            "create_url": reverse("admin:segments_quick_create"),
            "preview_url": reverse("admin:segments_segment_builder_preview"),
            "segment_add_url": reverse("admin:segments_segment_add"),
            "profiles_url": reverse("admin:profiles_profile_changelist"),
            "can_create": request.user.has_perm("segments.add_segment")}


class QuickAudienceFilter(admin.SimpleListFilter):
    """The customer list filtered by a definition (?audience=<JSON>), as the quick
    audience box writes it: shown in the sidebar only while used."""

    title = _("quick audience")
    parameter_name = "audience"

    def lookups(self, request, model_admin):
        return [(self.value(), gettext("the line typed in the box"))] if self.value() else []

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            definition = json.loads(self.value())
            node = parse(definition, user=request.user)
        except (ValueError, RecursionError):
            messages.error(request, gettext("The audience in the address is not a valid definition."))
            return queryset.none()
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return queryset.none()
        return queryset.filter(compile_condition(node, timezone.now()))
