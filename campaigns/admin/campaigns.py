"""Campaigns (营销活动): the list, the form in steps (基本信息, 受众, 内容, 发送) and, above
it, the campaign page: funnel, preview, test send, the life buttons, progress, dead
letters and results (campaigns/admin/pages.py)."""
from functools import partial

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from profiles.models import EventDefinition

from ..models import Campaign, Variant
from ..selectors import campaigns_progress
from ..services.copies import campaign_copy
from . import pages, result_pages
from .forms import CampaignForm, VariantForm, VariantFormSet


class VariantInline(admin.StackedInline):
    model = Variant
    form = VariantForm
    formset = VariantFormSet
    extra = 0
    min_num = 1
    max_num = 4
    verbose_name = _("variant")
    verbose_name_plural = _("content")
    fieldsets = [
        (None, {"fields": [("label", "weight"), "subject", "body", "link_url", "coupon_pool"]}),
        (_("SMS and WeChat"), {"fields": [("sms_sign_name", "sms_template_code"), "wechat_template_id"]}),
    ]

    def _editable(self, request, obj):
        return obj is None or obj.is_editable

    def has_add_permission(self, request, obj=None):
        return self._editable(request, obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(request, obj) and super().has_delete_permission(request, obj)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    inlines = [VariantInline]
    list_display = ("name", "status_shown", "channel", "audience", "owner", "launched_at", "progress")
    list_filter = ("status", "purpose")
    search_fields = ("name",)
    list_select_related = ("purpose", "segment", "owner")
    autocomplete_fields = ("segment",)
    date_hierarchy = "created_at"
    change_form_template = "admin/campaigns/campaign/change_form.html"
    actions = ["copy_as_draft"]

    def get_queryset(self, request):
        label = EventDefinition.objects.filter(name=OuterRef("trigger_event")).values("label")[:1]
        return super().get_queryset(request).annotate(trigger_event_label=Subquery(label))
    fieldsets = [
        (_("Basics"), {"fields": ["name", "purpose", "destination"]}),
        (_("Audience"), {"fields": ["audience_kind", "segment", "trigger_event", "trigger_where",
                                    "trigger_unless_event", "trigger_within_minutes", "delay_minutes",
                                    "trigger_once_per_days"]}),
        (pgettext_lazy("campaign form step", "Sending"), {"fields": ["schedule", "scheduled_at", "holdout_percent", ("cap_messages", "cap_days"),
                                   "ignore_quiet_hours"],
                        "description": _("Quiet hours: SMS and app push wait until 08:00 when due between 21:00 "
                                         "and 08:00 (China time), unless sending during quiet hours is ticked.")}),
        (_("Goal"), {"fields": ["goal_event", "goal_where", "attribution_days"],
                     "description": _("What counts as a conversion: results compare the customers who got the "
                                      "message with the holdout over the attribution window.")}),
    ]

    # -- list ---------------------------------------------------------------------------

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        self._progress = campaigns_progress([c.pk for c in changelist.result_list])
        return changelist

    @admin.display(description=_("status"), ordering="status")
    def status_shown(self, obj):
        return format_html('<span class="campaign-status campaign-status-{}">{}</span>', obj.status,
                           obj.get_status_display())

    @admin.display(description=_("channel"), ordering="purpose__channel")
    def channel(self, obj):
        return obj.purpose.get_channel_display()

    @admin.display(description=_("audience"))
    def audience(self, obj):
        if obj.audience_kind == Campaign.AudienceKind.TRIGGER_EVENT:
            label = obj.trigger_event_label  # registered events' labels are translatable source strings
            return gettext("trigger: %(event)s") % {"event": gettext(label) if label else obj.trigger_event}
        if obj.audience_kind == Campaign.AudienceKind.TRIGGER_SEGMENT:
            return gettext("trigger: enters %(segment)s") % {"segment": obj.segment}
        return str(obj.segment) if obj.segment_id else "—"

    @admin.display(description=_("progress"))
    def progress(self, obj):
        progress = getattr(self, "_progress", {}).get(obj.pk)
        if progress is None or not progress.to_send:
            return "—"
        return format_html('<progress max="100" value="{}"></progress> {} / {}', progress.percent,
                           f"{progress.done:,}", f"{progress.to_send:,}")

    def get_actions(self, request):
        """No bulk delete: a sent campaign's deliveries are its record (drafts are deleted one by one)."""
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Copy as new drafts"), permissions=["add"])
    def copy_as_draft(self, request, queryset):
        copies = [campaign_copy(campaign=campaign, user=request.user) for campaign in queryset]
        self.message_user(request, ngettext("%(count)s draft made: %(names)s", "%(count)s drafts made: %(names)s",
                                            len(copies)) % {"count": len(copies),
                                                            "names": "、".join(c.name for c in copies)},
                          messages.SUCCESS)

    # -- form ---------------------------------------------------------------------------

    TRIGGER_FIELDS = ("trigger_event", "trigger_where", "trigger_unless_event", "trigger_within_minutes",
                      "delay_minutes", "trigger_once_per_days")

    def get_fieldsets(self, request, obj=None):
        """Read-only (launched): only the fields that apply to this campaign."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.is_editable:
            return fieldsets
        hidden = set()
        if obj.audience_kind == Campaign.AudienceKind.SEGMENT:
            hidden.update(self.TRIGGER_FIELDS)
        elif obj.audience_kind == Campaign.AudienceKind.TRIGGER_SEGMENT:
            hidden.update(("trigger_event", "trigger_where", "trigger_unless_event", "trigger_within_minutes"))
        else:
            hidden.add("segment")
        if obj.schedule == Campaign.Schedule.NOW:
            hidden.add("scheduled_at")
        if obj.cap_messages is None:
            hidden.add(("cap_messages", "cap_days"))
        return [(title, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
                for title, options in fieldsets]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def has_change_permission(self, request, obj=None):
        """Read-only once launched: what was sent stays what the page shows."""
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Campaign.Status.DRAFT)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "destination":
            kwargs["queryset"] = db_field.related_model.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        # the page above the form; a save that fails shows the form alone (without the funnel's query)
        if campaign is None:
            extra = {}
        elif request.method == "GET":
            extra = pages.campaign_page_context(self, request, campaign)
        else:
            extra = pages.editor_context(campaign)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, {**(extra_context or {}), **pages.editor_context(None)})

    def get_urls(self):
        def view(function, name, route):
            return path(route, self.admin_site.admin_view(partial(function, self)), name=f"campaigns_campaign_{name}")

        return [
            view(pages.preview_view, "preview", "preview/"),
            view(result_pages.overview_view, "overview", "overview/"),
            view(pages.funnel_customers_view, "funnel", "<int:campaign_id>/funnel/<str:code>/"),
            view(pages.test_send_view, "test_send", "<int:campaign_id>/test-send/"),
            view(pages.launch_view, "launch", "<int:campaign_id>/launch/"),
            view(pages.approve_view, "approve", "<int:campaign_id>/approve/"),
            view(pages.pause_view, "pause", "<int:campaign_id>/pause/"),
            view(pages.resume_view, "resume", "<int:campaign_id>/resume/"),
            view(pages.cancel_view, "cancel", "<int:campaign_id>/cancel/"),
            view(pages.resend_view, "resend", "<int:campaign_id>/resend/"),
            view(pages.progress_view, "progress", "<int:campaign_id>/progress/"),
            view(result_pages.result_view, "result", "<int:campaign_id>/result/"),
            view(result_pages.result_segment_view, "result_segment", "<int:campaign_id>/result/segment/"),
            *super().get_urls(),
        ]
