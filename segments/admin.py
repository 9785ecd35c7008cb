import json

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse, reverse_lazy
from django.utils import timezone
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cdp.queueing import task_queue_after_commit
from profiles.models import Profile
from profiles.selectors import profile_search

from .builder import ConditionBuilderWidget, DefinitionField, builder_preview
from .admin_pages import segment_export_count_view, segment_export_view, segment_members_view
from . import admin_analytics  # noqa: F401  (behaviour analysis pages and the dashboard)
from .quick import admin as quick_admin  # noqa: F401  (the quick audience box's endpoints and thresholds)
from .conditions import explain, parse
from .models import Segment, SegmentSnapshot
from .selectors import segment_breakdown, segment_overlaps
from .services import segment_freeze, segment_from_list, segment_save
from .slugs import segment_slug_suggest
from .status import segment_calculation_queued, segment_calculation_status
from .tasks import recompute_segment, segment_queue


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ("name", "slug", "description", "kind", "definition", "refresh_every_minutes")
        widgets = {"definition": ConditionBuilderWidget(defining_field="slug")}
        field_classes = {"definition": DefinitionField}

    user = None  # the staff member editing (SegmentAdmin.get_form): conditions are checked for them

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _slug_made_from_name(self.fields["slug"])

    def clean_slug(self):
        """Left empty: the name in pinyin (上海女性 → shang-hai-nv-xing), unique."""
        return (self.cleaned_data.get("slug") or self.instance.slug
                or segment_slug_suggest(self.cleaned_data.get("name") or "", exclude_pk=self.instance.pk))

    def clean_definition(self):
        definition = self.cleaned_data["definition"]
        if self.cleaned_data.get("kind", Segment.Kind.DYNAMIC) == Segment.Kind.DYNAMIC:
            # ValidationError listing each bad node by its path, cycles through this segment included
            parse(definition, defining=self.cleaned_data.get("slug") or self.instance.slug or None, user=self.user)
        return definition


class ListUploadForm(forms.Form):
    name = forms.CharField(label=_("name"), max_length=150)
    slug = forms.SlugField(label=_("slug"), max_length=100, allow_unicode=True)
    lines = forms.CharField(label=_("customers, one per line"), required=False, widget=forms.Textarea(attrs={"rows": 10}),
                            help_text=_("Phones in any format, emails, CRM ids or WeChat ids."))
    file = forms.FileField(label=_("or a text/CSV file"), required=False, help_text=_("One per line; UTF-8 or GB18030."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _slug_made_from_name(self.fields["slug"])

    def clean_slug(self):
        slug = self.cleaned_data["slug"] or segment_slug_suggest(self.cleaned_data.get("name") or "")
        if Segment.objects.filter(slug=slug).exists():
            raise ValidationError(_("Another segment already uses this slug."))
        return slug

    def clean(self):
        cleaned = super().clean()
        text = cleaned.get("lines") or ""
        upload = cleaned.get("file")
        if upload:
            raw = upload.read(MAX_LIST_BYTES + 1)
            if len(raw) > MAX_LIST_BYTES:
                raise ValidationError(_("The file is larger than 20 MB; split it."))
            for encoding in ("utf-8-sig", "gb18030"):  # strict UTF-8 first: GB18030 decodes anything
                try:
                    text += "\n" + raw.decode(encoding)
                    break
                except UnicodeDecodeError:
                    continue
            else:
                raise ValidationError(_("The file is neither UTF-8 nor GB18030 text."))
        cleaned["all_lines"] = [line.split(",")[0] for line in text.splitlines()]
        if not any(line.strip() for line in cleaned["all_lines"]):
            raise ValidationError(_("Paste at least one phone, email or id, or choose a file."))
        return cleaned


MAX_LIST_BYTES = 20 * 1024 * 1024


def _slug_made_from_name(field: forms.Field) -> None:
    """A slug field that may stay empty: the page suggests one as the name is typed
    (segments/segment_form.js), and saving makes one from the name."""
    field.required = False
    field.help_text = _("Used by other segments, exports and the API: letters, digits and hyphens. Made from the "
                        "name in pinyin when left empty; you can change it.")
    field.widget.attrs.update({"data-slug-from": "name", "data-suggest-url": reverse_lazy("admin:segments_segment_slug")})


class SnapshotInline(admin.TabularInline):
    model = SegmentSnapshot
    fields = ("calculated_at", "version", "member_count", "entered", "exited", "duration_ms")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-calculated_at")


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ("name", "kind", "members_listed", "last_calculated_at", "version", "error_count")
    list_filter = ("kind",)
    search_fields = ("name", "slug")
    readonly_fields = (
        "version", "members", "last_calculated_at", "calculated_version", "error_count", "last_error",
        "calculation_schedule", "size_history", "breakdown", "overlaps", "member_list",
    )
    # A static segment is a frozen list: no definition, schedule or calculation to show.
    STATIC_HIDDEN = ("definition", "refresh_every_minutes", "version", "members", "last_calculated_at",
                     "calculated_version", "error_count", "last_error", "calculation_schedule", "size_history",
                     "member_list")
    inlines = [SnapshotInline]
    actions = ["recompute_now", "retry_now", "freeze"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_fields(self, request, obj=None):
        """A new segment has no calculation yet: its form is the definition alone."""
        fields = super().get_fields(request, obj)
        if obj is None:
            return [name for name in fields if name not in self.readonly_fields]
        if obj.kind == Segment.Kind.STATIC:  # the list first, after what names it
            shown = [name for name in fields if name not in self.STATIC_HIDDEN]
            return [*shown[:3], "member_list", *shown[3:]]
        return [name for name in fields if name != "member_list"]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "kind") if obj is not None and obj.kind == Segment.Kind.STATIC else fields

    @admin.display(description=_("members"))
    def member_list(self, obj):
        """A static segment shown as the list it is: its size, its first members, the whole list."""
        newest = Profile.objects.filter(segment_memberships__segment=obj).order_by("-segment_memberships__pk")
        names = [str(profile) for profile in newest[:10]]
        return format_html(
            '<div id="static-members"><p>{}</p><p>{}{}</p><p><a href="{}">{}</a></p></div>',
            gettext("A fixed list of %(count)s customers, frozen when it was made.") % {"count": obj.member_count},
            "、".join(names), "…" if obj.member_count > len(names) else "",
            reverse("admin:segments_segment_members", args=[obj.pk]), gettext("See the whole list"),
        )

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None and obj.kind == Segment.Kind.DYNAMIC else []

    @admin.display(description=_("members"), ordering="member_count")
    def members_listed(self, obj):
        """The member count, or "calculating…" while the worker has not finished the
        current version (instead of the previous count, or 0)."""
        if obj.kind != Segment.Kind.DYNAMIC or obj.calculated_version == obj.version:
            return obj.member_count
        if obj.last_error and obj.error_count:
            return format_html('<span class="segment-calculation-failed">{}</span>', gettext("Calculation failed"))
        return format_html('<span class="segment-calculating">{}</span>', gettext("Calculating…"))

    @admin.display(description=_("members"))
    def members(self, obj):
        """As in the list, with the calculation's progress, followed until it is done."""
        if obj.pk is None:
            return "—"
        status = segment_calculation_status(obj)
        if not status.calculating and not status.failed:
            return obj.member_count
        if status.failed:
            return format_html('<span class="segment-calculation-failed">{}</span>', status.text)
        return format_html(
            '<div id="segment-calculating" data-status-url="{}"><progress max="1"{}></progress> '
            '<span class="segment-calculating-text">{}</span></div>',  # followed by segments/segment_form.js
            reverse("admin:segments_segment_status", args=[obj.pk]),
            format_html(' value="{}"', status.progress) if status.progress is not None else "",
            status.text,
        )

    @admin.display(description=_("scheduled calculation"))
    def calculation_schedule(self, obj):
        """The scheduler's view of the segment: calculating since when, or failing (how many
        times in a row, since when, the next automatic attempt) with a button to retry now."""
        if obj.pk is None:
            return "—"
        parts = []
        if obj.calculating_since:
            parts.append(gettext("Calculating since %(time)s.") % {"time": _local(obj.calculating_since)})
        elif obj.queued_at:
            parts.append(gettext("Queued at %(time)s, waiting for a worker.") % {"time": _local(obj.queued_at)})
        if obj.failures_in_a_row:
            parts.append(gettext("Failed %(count)s times in a row, last at %(time)s.") % {
                "count": obj.failures_in_a_row, "time": _local(obj.last_failed_at)})
            if obj.next_attempt_at:
                parts.append(gettext("Next automatic attempt: %(time)s.") % {"time": _local(obj.next_attempt_at)})
        if not parts:
            return gettext("Not calculating; no failure.")
        button = ""
        if obj.failures_in_a_row and not obj.calculating_since:
            # Submits the change form to the retry view (a form inside the form is not allowed).
            button = format_html(' <button type="submit" class="button" id="segment-retry-now" formaction="{}" '
                                 'formnovalidate>{}</button>',
                                 reverse("admin:segments_segment_retry", args=[obj.pk]), gettext("Retry now"))
        return format_html('<span id="segment-schedule">{}</span>{}', " ".join(parts), button)

    def retry_view(self, request, segment_id):
        """The change page's "retry now": queue the calculation without waiting out the backoff."""
        segment = get_object_or_404(Segment, pk=segment_id)
        if not self.has_change_permission(request, segment):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._retry(request, [segment])
        return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]))

    def _retry(self, request, segments) -> None:
        now = timezone.now()
        for segment in segments:
            try:
                queued = segment_queue(segment, now=now, retry_now=True)
            except Exception:  # noqa: BLE001 — the broker is down: the segment keeps its schedule
                self.message_user(request, gettext(
                    "The task queue cannot be reached right now; “%(name)s” is tried again on its schedule.")
                    % {"name": segment.name}, messages.WARNING)
                continue
            if queued:
                segment_calculation_queued(segment=segment, now=now)
                self.message_user(request, gettext("“%(name)s”: calculation queued.") % {"name": segment.name},
                                  messages.SUCCESS)
            else:
                self.message_user(request, gettext("“%(name)s” is already queued or being calculated.")
                                  % {"name": segment.name}, messages.WARNING)

    @admin.action(description=_("Retry the selected segments' failed calculations now"), permissions=["change"])
    def retry_now(self, request, queryset):
        self._retry(request, list(queryset.filter(kind=Segment.Kind.DYNAMIC)))

    def status_view(self, request, segment_id):
        """Whether the segment is still being calculated, polled by its page."""
        segment = get_object_or_404(Segment, pk=segment_id)
        if not self.has_view_permission(request, segment):
            raise PermissionDenied
        status = segment_calculation_status(segment)
        return JsonResponse({"calculating": status.calculating, "failed": status.failed, "progress": status.progress,
                             "text": status.text, "member_count": segment.member_count})

    @admin.display(description=_("size history"))
    def size_history(self, obj):
        """Members, entered and exited per calculation (the last 90), as an ECharts line."""
        snapshots = list(obj.snapshots.order_by("-calculated_at")[:90])[::-1] if obj.pk else []
        if not snapshots:
            return "—"
        data = {
            "labels": [timezone.localtime(s.calculated_at).strftime("%m-%d %H:%M") for s in snapshots],
            "series": {str(_("members")): [s.member_count for s in snapshots],
                       str(_("entered")): [s.entered for s in snapshots],
                       str(_("exited")): [s.exited for s in snapshots]},
        }
        return format_html(
            '<div id="size-history" style="width:720px;height:260px"></div>{}'
            '<script src="{}"></script><script src="{}"></script>',
            json_script(data, "size-history-data"), static("cdp/vendor/echarts-5.6.0.min.js"),
            static("segments/size_history.js"),
        )

    @admin.display(description=_("breakdown"))
    def breakdown(self, obj):
        if obj.pk is None or not obj.member_count:
            return "—"
        labels = {"gender": _("gender"), "age": _("age band"), "city": _("city"), "lifecycle": _("lifecycle stage")}
        tables = (
            format_html('<table style="display:inline-table;margin-right:16px"><caption>{}</caption>{}</table>',
                        labels[key], format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", rows))
            for key, rows in segment_breakdown(obj).items()
        )
        return format_html('<div id="breakdown">{}</div>', format_html_join("", "{}", ((t,) for t in tables)))

    @admin.display(description=_("overlap with other segments"))
    def overlaps(self, obj):
        rows = segment_overlaps(obj) if obj.pk else []
        if not rows:
            return "—"
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a>: {}', (
            (reverse("admin:segments_segment_change", args=[pk]), name, count) for name, pk, count in rows
        ))

    def get_urls(self):
        return [
            path("<int:segment_id>/why/", self.admin_site.admin_view(self.why_view), name="segments_segment_why"),
            path("from-list/", self.admin_site.admin_view(self.from_list_view), name="segments_segment_from_list"),
            path("<int:segment_id>/export/", self.admin_site.admin_view(partial(segment_export_view, self)),
                 name="segments_segment_export"),
            path("<int:segment_id>/export/count/",
                 self.admin_site.admin_view(partial(segment_export_count_view, self)),
                 name="segments_segment_export_count"),
            path("<int:segment_id>/members/", self.admin_site.admin_view(partial(segment_members_view, self)),
                 name="segments_segment_members"),
            path("builder/preview/", self.admin_site.admin_view(self.builder_preview_view),
                 name="segments_segment_builder_preview"),
            path("slug/", self.admin_site.admin_view(self.slug_view), name="segments_segment_slug"),
            path("<int:segment_id>/status/", self.admin_site.admin_view(self.status_view), name="segments_segment_status"),
            path("<int:segment_id>/retry/", self.admin_site.admin_view(self.retry_view), name="segments_segment_retry"),
            *super().get_urls(),
        ]

    def why_view(self, request, segment_id):
        """For one customer (by public id, phone, email, CRM id or name): which of the
        segment's conditions they meet and which they miss."""
        segment = get_object_or_404(Segment, pk=segment_id)
        if not self.has_view_permission(request, segment):
            raise PermissionDenied
        term = request.GET.get("profile", "").strip()
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "segment": segment, "term": term,
            "title": gettext("Why is a customer in “%(segment)s”?") % {"segment": segment.name},
        }
        if term:
            matches = list(profile_search(Profile.objects.all(), term).order_by("-id")[:2])
            if len(matches) != 1:
                context["problem"] = (gettext("No customer matches “%(term)s”.") if not matches
                                      else gettext("Several customers match “%(term)s”; use a phone, email or id."))
                context["problem"] %= {"term": term}
            else:
                try:
                    context["profile"] = matches[0]
                    context["explanation"] = explain(parse(segment.definition), matches[0], timezone.now())
                    context["member"] = segment.memberships.filter(profile=matches[0]).first()
                except ValidationError as error:
                    context["problem"] = " ".join(error.messages)
        return TemplateResponse(request, "admin/segments/why.html", context)

    def builder_preview_view(self, request):
        """The condition builder's live count and sample for an unsaved definition (POST
        {"definition": …}); used by every form that shows the builder."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            payload = json.loads(request.body)
            definition, defining = payload["definition"], payload.get("defining")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):  # nested beyond Python's stack
            message = gettext("Send the definition as JSON: {\"definition\": …}.")
            return JsonResponse({"count": None, "sample": [], "timed_out": False,
                                 "errors": [{"path": "$", "message": message}]}, status=400)
        return JsonResponse(builder_preview(definition, defining=defining if isinstance(defining, str) else None,
                                            user=request.user))

    def slug_view(self, request):
        """The slug a segment called ?name= would get (the form suggests it as the name is typed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        name = request.GET.get("name", "")[:150]
        return JsonResponse({"slug": segment_slug_suggest(name) if name.strip() else ""})

    def from_list_view(self, request):
        """A static segment from pasted or uploaded phones / emails / ids, with the lines
        that matched nobody listed for fixing."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ListUploadForm(request.POST or None, request.FILES or None)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": gettext("New static segment from a list")}
        if request.method == "POST" and form.is_valid():
            segment, unmatched = segment_from_list(name=form.cleaned_data["name"], slug=form.cleaned_data["slug"],
                                                   lines=form.cleaned_data["all_lines"])
            context.update({"segment": segment, "unmatched": unmatched[:500], "unmatched_count": len(unmatched)})
        return TemplateResponse(request, "admin/segments/from_list.html", context)

    @admin.action(description=_("Freeze the selected segments as static lists"), permissions=["add"])
    def freeze(self, request, queryset):
        for segment in queryset:
            frozen = segment_freeze(segment=segment)
            self.message_user(request, gettext("Frozen: “%(name)s” with %(count)s customers.")
                              % {"name": frozen.name, "count": frozen.memberships.count()}, messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        if "definition" not in form.cleaned_data:  # a static list: its name and description only
            return super().save_model(request, obj, form, change)
        definition = form.cleaned_data["definition"]
        segment = segment_save(segment=obj, definition=definition)
        if segment.kind == Segment.Kind.DYNAMIC:
            segment_calculation_queued(segment=segment)
            task_queue_after_commit(task=recompute_segment, args=(segment.pk, segment.version), request=request)

    @admin.action(description=_("Recompute the selected segments now"), permissions=["change"])
    def recompute_now(self, request, queryset):
        for segment in queryset.filter(kind=Segment.Kind.DYNAMIC):
            segment_calculation_queued(segment=segment)
            task_queue_after_commit(task=recompute_segment, args=(segment.pk, segment.version), request=request)
        self.message_user(request, _("Recalculation queued."), messages.SUCCESS)
