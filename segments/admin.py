from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from profiles.models import Profile
from profiles.selectors import profile_search

from .conditions import explain, parse
from .models import Segment, SegmentSnapshot
from .services import segment_save
from .tasks import recompute_segment


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ("name", "slug", "description", "kind", "definition", "refresh_every_minutes")
        widgets = {"definition": forms.Textarea(attrs={"rows": 12, "cols": 90, "style": "font-family: monospace"})}

    def clean_definition(self):
        definition = self.cleaned_data["definition"]
        if self.cleaned_data.get("kind", Segment.Kind.DYNAMIC) == Segment.Kind.DYNAMIC:
            parse(definition)  # ValidationError listing each bad node by its path
        return definition


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
    list_display = ("name", "kind", "member_count", "last_calculated_at", "version", "error_count")
    list_filter = ("kind",)
    search_fields = ("name", "slug")
    readonly_fields = ("version", "member_count", "last_calculated_at", "calculated_version", "error_count", "last_error")
    inlines = [SnapshotInline]
    actions = ["recompute_now"]

    def get_urls(self):
        return [
            path("<int:segment_id>/why/", self.admin_site.admin_view(self.why_view), name="segments_segment_why"),
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

    def save_model(self, request, obj, form, change):
        definition = form.cleaned_data["definition"]
        segment = segment_save(segment=obj, definition=definition)
        if segment.kind == Segment.Kind.DYNAMIC:
            transaction.on_commit(lambda: recompute_segment.delay(segment.pk, segment.version))

    @admin.action(description=_("Recompute the selected segments now"), permissions=["change"])
    def recompute_now(self, request, queryset):
        for segment in queryset.filter(kind=Segment.Kind.DYNAMIC):
            transaction.on_commit(lambda s=segment: recompute_segment.delay(s.pk, s.version))
        self.message_user(request, _("Recalculation queued."), messages.SUCCESS)
