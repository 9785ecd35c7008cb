"""Admin for purposes, notices, the consent ledger and do-not-contact."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cdp.actors import Actor
from cdp.admin_readonly import ReadOnlyAdmin
from profiles.models import Profile
from profiles.services import profile_require_active

from ..models import (
    Channel,
    ConsentRecord,
    ConsentSource,
    ConsentStatus,
    DataSubjectRequest,
    DoNotContact,
    DoNotContactReason,
    ErasureNotice,
    Notice,
    Purpose,
    Suppression,
)
from ..services import consent_record, do_not_contact_add, do_not_contact_lift, notice_publish


class NoticeInline(admin.TabularInline):
    model = Notice
    fields = ("version", "text_zh", "requires_reconsent", "published_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
    list_display = ("code", "name_zh", "name_en", "channel", "lawful_basis", "pipl_category", "recipient", "is_active")
    list_filter = ("channel", "lawful_basis", "pipl_category", "is_active")
    search_fields = ("code", "name_zh", "name_en", "recipient")
    readonly_fields = ("reconsent_from_version", "created_at")
    inlines = [NoticeInline]

    def get_readonly_fields(self, request, obj=None):
        # The code is referenced by segments, exports and partners: fixed once created.
        return (*self.readonly_fields, "code") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger refers to it: retire it with "active" instead


class NoticeForm(forms.ModelForm):
    class Meta:
        model = Notice
        fields = ("purpose", "text_zh", "text_en", "requires_reconsent")


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    """A notice is published once and never edited: a change is a new version."""

    form = NoticeForm
    list_display = ("purpose", "version", "requires_reconsent", "published_at")
    list_filter = ("purpose", "requires_reconsent")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return ("purpose", "version", "text_zh", "text_en", "requires_reconsent", "published_at") if obj else ()

    def save_model(self, request, obj, form, change):
        published = notice_publish(purpose=form.cleaned_data["purpose"], text_zh=form.cleaned_data["text_zh"],
                                   text_en=form.cleaned_data["text_en"],
                                   requires_reconsent=form.cleaned_data["requires_reconsent"],
                                   actor=Actor.staff(request.user))
        obj.pk, obj.version = published.pk, published.version


class ConsentForm(forms.Form):
    """Recording a grant, a denial or a withdrawal, with its evidence."""

    purpose = forms.ModelChoiceField(label=_("purpose"), queryset=Purpose.objects.filter(is_active=True),
                                     to_field_name="code")
    status = forms.ChoiceField(label=_("status"), choices=ConsentStatus.choices)
    source = forms.ChoiceField(label=_("source"), choices=ConsentSource.choices, initial=ConsentSource.ADMIN)
    captured_at = forms.DateTimeField(label=_("captured at"), required=False,
                                      help_text=_("When the person said it; empty means now."),
                                      widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    notice_version = forms.IntegerField(label=_("notice version"), required=False, min_value=1,
                                        help_text=_("Empty means the current version."))
    expires_at = forms.DateTimeField(label=_("expires at"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    guardian_consent = forms.BooleanField(label=_("given by a guardian"), required=False)
    evidence_channel = forms.ChoiceField(label=_("evidence channel"), required=False,
                                         choices=[("", "—"), *Channel.choices])
    evidence_reference = forms.CharField(label=_("form or document reference"), required=False, max_length=200,
                                         help_text=_("e.g. the paper form's number or the web form's id"))
    evidence_text = forms.CharField(label=_("evidence notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))


class DoNotContactForm(forms.Form):
    channel = forms.ChoiceField(label=_("channel"), choices=[c for c in Channel.choices if c[0] != Channel.NONE])
    reason = forms.ChoiceField(label=_("reason"), choices=DoNotContactReason.choices, initial=DoNotContactReason.MANUAL)
    note = forms.CharField(label=_("note"), required=False, max_length=300)


class LiftForm(forms.Form):
    lift_reason = forms.CharField(label=_("why lifted"), max_length=300,
                                  help_text=_("e.g. the customer subscribed again on the web form"))


def _profile_page(profile: Profile) -> str:
    return reverse("admin:profiles_profile_change", args=[profile.pk]) + "#consent"


def _refused_if_not_active(request, profile: Profile):
    """Erased and merged customers are read-only: the forms say why instead of opening."""
    try:
        profile_require_active(profile)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(_profile_page(profile))
    return None


def _form_page(profile: Profile, form_id: str, submit_label: str) -> dict:
    """Context for admin/cdp/form_page.html: a form about one customer."""
    return {"profile": profile, "back_url": _profile_page(profile), "back_label": str(profile), "form_id": form_id,
            "submit_label": submit_label}


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    """The ledger, read-only: entries are added from the customer page, imports and the
    API, never changed here."""

    list_display = ("captured_at", "profile", "purpose", "status", "notice_version", "source", "guardian_consent",
                    "actor_label", "recorded_at")
    list_filter = ("purpose", "status", "source", "guardian_consent")
    list_select_related = ("profile", "purpose")
    search_fields = ("=profile__uuid", "evidence_reference")
    date_hierarchy = "captured_at"
    show_full_result_count = False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("record/<uuid:profile_uuid>/", wrap(self.record_view), name="consent_consentrecord_record"),
            path("do-not-contact/<uuid:profile_uuid>/", wrap(self.do_not_contact_view),
                 name="consent_donotcontact_add_for"),
            *super().get_urls(),
        ]

    def record_view(self, request, profile_uuid):
        """Grant, deny or withdraw for one customer, with evidence. Withdrawing is the
        same form with "withdrawn" chosen: one click from the profile page."""
        if not request.user.has_perm("consent.add_consentrecord"):
            raise PermissionDenied
        profile = get_object_or_404(Profile, uuid=profile_uuid)
        if refused := _refused_if_not_active(request, profile):
            return refused
        initial = {"purpose": request.GET.get("purpose"), "status": request.GET.get("status", ConsentStatus.GRANTED)}
        form = ConsentForm(request.POST or None, initial=initial)
        status = request.POST.get("status") or initial["status"]
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                consent_record(
                    profile=profile, purpose_code=data["purpose"].code, status=data["status"], source=data["source"],
                    actor=Actor.staff(request.user), captured_at=data["captured_at"],
                    notice_version=data["notice_version"], expires_at=data["expires_at"],
                    guardian_consent=data["guardian_consent"],
                    evidence={"channel": data["evidence_channel"], "reference": data["evidence_reference"],
                              "text": data["evidence_text"], "ip": request.META.get("REMOTE_ADDR"),
                              "user_agent": request.META.get("HTTP_USER_AGENT", "")},
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.message_user(request, gettext("Recorded: %(purpose)s — %(status)s.") % {
                    "purpose": data["purpose"].name, "status": ConsentStatus(data["status"]).label}, messages.SUCCESS)
                return HttpResponseRedirect(_profile_page(profile))
        # The page says what it does: withdrawing is not "recording consent".
        if status == ConsentStatus.WITHDRAWN:
            title, submit = gettext("Withdraw consent for %(name)s"), gettext("Withdraw consent")
        elif status == ConsentStatus.DENIED:
            title, submit = gettext("Record a refusal by %(name)s"), gettext("Record the refusal")
        else:
            title, submit = gettext("Record consent for %(name)s"), gettext("Record")
        context = {**self.admin_site.each_context(request), **_form_page(profile, "consent-form", submit),
                   "opts": self.model._meta, "form": form,
                   "title": title % {"name": profile},
                   "notices": {p.code: list(p.notices.order_by("-version")[:3])
                               for p in Purpose.objects.filter(is_active=True).prefetch_related("notices")}}
        return TemplateResponse(request, "admin/consent/record.html", context)

    def do_not_contact_view(self, request, profile_uuid):
        if not request.user.has_perm("consent.add_donotcontact"):
            raise PermissionDenied
        profile = get_object_or_404(Profile, uuid=profile_uuid)
        if refused := _refused_if_not_active(request, profile):
            return refused
        form = DoNotContactForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            do_not_contact_add(profile=profile, actor=Actor.staff(request.user), **form.cleaned_data)
            self.message_user(request, gettext("Do not contact on %(channel)s.") % {
                "channel": Channel(form.cleaned_data["channel"]).label}, messages.SUCCESS)
            return HttpResponseRedirect(_profile_page(profile))
        context = {**self.admin_site.each_context(request), **_form_page(profile, "dnc-form", gettext("Save")),
                   "opts": DoNotContact._meta, "form": form,
                   "title": gettext("Do not contact %(name)s") % {"name": profile}}
        return TemplateResponse(request, "admin/cdp/form_page.html", context)


@admin.register(DoNotContact)
class DoNotContactAdmin(admin.ModelAdmin):
    list_display = ("profile", "channel", "reason", "created_at", "created_by", "lifted_at", "lifted_by")
    list_filter = ("channel", "reason", ("lifted_at", admin.EmptyFieldListFilter))
    list_select_related = ("profile",)
    search_fields = ("=profile__uuid",)
    readonly_fields = ("profile", "channel", "reason", "note", "created_at", "created_by", "lifted_at", "lifted_by",
                       "lift_reason")
    show_full_result_count = False

    def get_urls(self):
        return [path("<int:entry_id>/lift/", self.admin_site.admin_view(self.lift_view),
                     name="consent_donotcontact_lift"), *super().get_urls()]

    def has_add_permission(self, request):
        return False  # from the customer page, through the service

    def has_delete_permission(self, request, obj=None):
        return False  # lifted, never deleted

    def lift_view(self, request, entry_id):
        if not request.user.has_perm("consent.change_donotcontact"):
            raise PermissionDenied
        entry = get_object_or_404(DoNotContact, pk=entry_id)
        form = LiftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            do_not_contact_lift(entry=entry, actor=Actor.staff(request.user), reason=form.cleaned_data["lift_reason"])
            self.message_user(request, gettext("The block on %(channel)s is lifted.") % {
                "channel": entry.get_channel_display()}, messages.SUCCESS)
            return HttpResponseRedirect(_profile_page(entry.profile))
        context = {**self.admin_site.each_context(request),
                   **_form_page(entry.profile, "lift-form", gettext("Lift the block")),
                   "opts": DoNotContact._meta, "form": form, "entry": entry,
                   "title": gettext("Lift do-not-contact for %(name)s") % {"name": entry.profile}}
        return TemplateResponse(request, "admin/consent/lift.html", context)


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    """Keyed hashes of erased people's identifiers (profiles.Suppression, shown here among
    the privacy pages): nothing readable, nothing to edit."""

    list_display = ("kind", "digest", "created_at", "erasure_request")
    list_filter = ("kind",)
    show_full_result_count = False

    def get_queryset(self, request):
        # The request is kept by id (profiles cannot point at consent): its label in the same query.
        requests = DataSubjectRequest.objects.filter(pk=OuterRef("request_id"))
        return super().get_queryset(request).annotate(
            request_kind=Subquery(requests.values("kind")[:1]), request_requester=Subquery(requests.values("requester")[:1]))

    @admin.display(description=_("request"), ordering="request_id")
    def erasure_request(self, obj):
        if obj.request_id is None:
            return None
        if obj.request_kind is None:  # the request is gone; its id stays
            return f"#{obj.request_id}"
        label = f"{DataSubjectRequest.Kind(obj.request_kind).label} · {obj.request_requester}"
        return format_html('<a href="{}">{}</a>', reverse("admin:consent_datasubjectrequest_change",
                                                         args=[obj.request_id]), label)


@admin.register(ErasureNotice)
class ErasureNoticeAdmin(admin.ModelAdmin):
    """Partners that received an erased person's data, to be told (PIPL Art. 47, GDPR
    Art. 19). Staff send the notice through the partner's agreed channel and mark it."""

    list_display = ("recipient", "request", "queued_at", "sent_at")
    list_filter = (("sent_at", admin.EmptyFieldListFilter), "recipient")
    readonly_fields = ("recipient", "subject_digest", "request", "queued_at", "sent_at")
    actions = ["mark_sent"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Mark the selected notices as sent"), permissions=["change"])
    def mark_sent(self, request, queryset):
        sent = queryset.filter(sent_at__isnull=True).update(sent_at=timezone.now())
        self.message_user(request, gettext("%(count)d notices marked as sent.") % {"count": sent}, messages.SUCCESS)
