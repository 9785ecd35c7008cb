"""Admin for data subject requests (access, erasure, rectification, restriction): open
requests by deadline (overdue and due soon first), then the closed ones; buttons to
download the customer's data, extend, complete, refuse and erase."""
import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cdp.actors import Actor
from cdp.audit import audit_record
from cdp.models import AuditLog
from profiles.masking import can_see_personal_data, mask_contact

from ..models import DataSubjectRequest
from ..requests import (
    data_request_complete,
    data_request_create,
    data_request_export,
    data_request_extend,
    data_request_refuse,
    erasure_preview,
    profile_erase,
    subject_profile,
)

DSR = DataSubjectRequest
DUE_SOON_DAYS = 7
OPEN_STATUSES = (DSR.Status.RECEIVED, DSR.Status.IN_PROGRESS)
ERASE_PERMISSION = "consent.erase_profile"
DEADLINE = Coalesce("extended_until", "due_at")


class DeadlineFilter(admin.SimpleListFilter):
    title = _("deadline")
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("overdue", _("Overdue")), ("soon", _("Due within 7 days")), ("open", _("Open")),
                ("closed", _("Closed"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        open_requests = queryset.filter(status__in=OPEN_STATUSES)
        if self.value() == "overdue":
            return open_requests.filter(respond_by__lt=now)
        if self.value() == "soon":
            return open_requests.filter(respond_by__gte=now, respond_by__lt=now + datetime.timedelta(days=DUE_SOON_DAYS))
        if self.value() == "open":
            return open_requests
        if self.value() == "closed":
            return queryset.exclude(status__in=OPEN_STATUSES)
        return queryset


class DataSubjectRequestForm(forms.ModelForm):
    class Meta:
        model = DSR
        fields = ("kind", "profile", "requester", "contact", "details", "received_at")


class ExtendForm(forms.Form):
    until = forms.DateField(label=_("extended until"), widget=forms.DateInput(attrs={"type": "date"}),
                            help_text=_("At most two months after the original due date."))
    reason = forms.CharField(label=_("reason for the extension"), max_length=300,
                             help_text=_("Told to the person, e.g. the request is complex or one of many."))

    def deadline(self) -> datetime.datetime:
        """The end of the chosen day in the display time zone."""
        day = self.cleaned_data["until"]
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time(23, 59, 59)))


class CompleteForm(forms.Form):
    outcome = forms.CharField(label=_("outcome"), widget=forms.Textarea(attrs={"rows": 4}),
                              help_text=_("What was done, e.g. “export sent by email on 3 March”."))


class RefuseForm(forms.Form):
    reason = forms.CharField(label=_("reason for refusing"), widget=forms.Textarea(attrs={"rows": 4}),
                             help_text=_("e.g. the requester's identity could not be verified."))


class EraseForm(forms.Form):
    confirmation = forms.CharField(label=_("type the customer's name or public id to confirm"), max_length=200)

    def __init__(self, *args, profile, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted = {str(profile.uuid)} | ({profile.name.strip()} if profile.name.strip() else set())

    def clean_confirmation(self):
        typed = self.cleaned_data["confirmation"].strip()
        if typed not in self.accepted:
            raise ValidationError(_("This is not the customer's name or public id."), code="confirmation_mismatch")
        return typed


@admin.register(DSR)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    form = DataSubjectRequestForm
    change_form_template = "admin/consent/datasubjectrequest/change_form.html"
    list_display = ("deadline_badge", "kind", "requester", "customer", "received_at", "status_badge", "handled_by")
    list_display_links = ("deadline_badge", "kind", "requester")
    list_filter = (DeadlineFilter, "status", "kind")
    list_select_related = ("profile", "handled_by")
    search_fields = ("requester", "contact", "=profile__uuid")
    raw_id_fields = ("profile",)
    readonly_fields = ("due_at", "extended_until", "extension_reason", "status", "handled_by", "completed_at",
                       "outcome")
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(respond_by=DEADLINE)  # the model's `deadline`, in SQL

    def get_ordering(self, request):
        # Open requests by deadline (overdue first), then closed ones, latest deadline first.
        is_open = Q(status__in=OPEN_STATUSES)
        return [Case(When(is_open, then=Value(0)), default=Value(1)).asc(),
                Case(When(is_open, then=DEADLINE)).asc(), DEADLINE.desc()]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # A recorded request changes only through the buttons (services, audited). The
        # requester's contact is shown masked, revealed by an audited click.
        fields = ["contact_shown" if name == "contact" else name for name in DataSubjectRequestForm.Meta.fields]
        return ("contact", *fields, *self.readonly_fields)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if obj is None else [name for name in fields if name != "contact"]  # contact_shown instead

    @admin.display(description=_("contact for the answer"))
    def contact_shown(self, obj):
        """Masked for everyone; the page's reveal button (change_form.html) shows it in full."""
        return format_html('<span id="dsr-contact">{}</span>', mask_contact(obj.contact) or "—")

    def reveal_contact_view(self, request, request_id):
        """The requester's contact in full for staff allowed to see personal data (POST; audited)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = get_object_or_404(DSR.objects.select_related("profile"), pk=request_id)
        if not self.has_view_permission(request, obj) or not can_see_personal_data(request.user):
            raise PermissionDenied
        audit_record(actor=Actor.staff(request.user), action=AuditLog.Action.REVEAL_PERSONAL_DATA,
                     target=str(obj.profile.uuid) if obj.profile_id else f"data request {obj.pk}",
                     details={"fields": ["contact"], "via": "data subject request", "request": obj.pk},
                     request=request)
        return JsonResponse({"contact": obj.contact})

    def has_delete_permission(self, request, obj=None):
        return False  # proof that the request was answered

    @admin.display(description=_("deadline"), ordering="respond_by")
    def deadline_badge(self, obj):
        deadline = timezone.localtime(obj.deadline)
        if not obj.is_open:
            return format_html('<span class="dsr-badge" style="background:#8c8c8c">{}</span>', f"{deadline:%Y-%m-%d}")
        now = timezone.now()
        if obj.deadline < now:
            colour, label = "#cf1322", gettext("Overdue")
        elif obj.deadline < now + datetime.timedelta(days=DUE_SOON_DAYS):
            colour, label = "#d46b08", gettext("Due soon")
        else:
            colour, label = "#389e0d", gettext("On time")
        extended = " " + gettext("(extended)") if obj.extended_until else ""
        return format_html('<span class="dsr-badge" style="background:{};color:#fff;padding:1px 6px;'
                           'border-radius:8px">{}</span> {}{}', colour, label, f"{deadline:%Y-%m-%d}", extended)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        colours = {DSR.Status.RECEIVED: "#1677ff", DSR.Status.IN_PROGRESS: "#d46b08",
                   DSR.Status.COMPLETED: "#389e0d", DSR.Status.REFUSED: "#8c8c8c"}
        return format_html('<span style="background:{};color:#fff;padding:1px 6px;border-radius:8px">{}</span>',
                           colours.get(obj.status, "#8c8c8c"), obj.get_status_display())

    @admin.display(description=_("customer"))
    def customer(self, obj):
        if obj.profile_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:profiles_profile_change", args=[obj.profile_id]),
                           obj.profile.uuid)

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing is edited here (see get_readonly_fields)
        data = form.cleaned_data
        created = data_request_create(kind=data["kind"], requester=data["requester"], profile=data["profile"],
                                      contact=data["contact"], details=data["details"],
                                      received_at=data["received_at"], actor=Actor.staff(request.user))
        obj.pk, obj.due_at, obj.status = created.pk, created.due_at, created.status

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update({"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False,
                            **self._buttons_context(request, obj)})
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _buttons_context(self, request, obj) -> dict:
        can_handle = self.has_change_permission(request, obj)
        profile = obj.profile
        return {
            "can_reveal_contact": (can_see_personal_data(request.user) and bool(obj.contact)
                                   and mask_contact(obj.contact) != obj.contact),
            "can_export": can_handle and profile is not None,
            "can_answer": can_handle and obj.is_open,
            "can_erase": (obj.is_open and obj.kind == DSR.Kind.ERASURE and profile is not None
                          and request.user.has_perm(ERASE_PERMISSION)),
        }

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:request_id>/export/<str:file_format>/", wrap(self.export_view),
                 name="consent_datasubjectrequest_export"),
            path("<int:request_id>/extend/", wrap(self.extend_view), name="consent_datasubjectrequest_extend"),
            path("<int:request_id>/complete/", wrap(self.complete_view), name="consent_datasubjectrequest_complete"),
            path("<int:request_id>/refuse/", wrap(self.refuse_view), name="consent_datasubjectrequest_refuse"),
            path("<int:request_id>/erase/", wrap(self.erase_view), name="consent_datasubjectrequest_erase"),
            path("<int:request_id>/reveal-contact/", wrap(self.reveal_contact_view),
                 name="consent_datasubjectrequest_reveal_contact"),
            *super().get_urls(),
        ]

    def _request_for_handling(self, request, request_id) -> DataSubjectRequest:
        obj = get_object_or_404(DSR.objects.select_related("profile"), pk=request_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def _change_url(self, obj) -> str:
        return reverse("admin:consent_datasubjectrequest_change", args=[obj.pk])

    def export_view(self, request, request_id, file_format):
        """Download everything held about the customer (POST: every download is audited)."""
        obj = self._request_for_handling(request, request_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            name, content, content_type = data_request_export(request=obj, file_format=file_format,
                                                              actor=Actor.staff(request.user), http_request=request,
                                                              language=request.POST.get("language") or None)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return HttpResponseRedirect(self._change_url(obj))
        response = HttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def _answer_view(self, request, request_id, form_class, title, handle):
        """A small form that answers the request through a service, then back to it."""
        obj = self._request_for_handling(request, request_id)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                handle(obj, form, Actor.staff(request.user))
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, gettext("The request was updated."))
                return HttpResponseRedirect(self._change_url(obj))
        return TemplateResponse(request, "admin/consent/datasubjectrequest/answer.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "original": obj, "form": form,
            "title": title, "form_id": "answer-form", "submit_label": gettext("Save"),
            "back_url": self._change_url(obj), "back_label": str(obj),
        })

    def extend_view(self, request, request_id):
        return self._answer_view(
            request, request_id, ExtendForm, gettext("Extend the deadline"),
            lambda obj, form, actor: data_request_extend(request=obj, until=form.deadline(),
                                                         reason=form.cleaned_data["reason"], actor=actor))

    def complete_view(self, request, request_id):
        return self._answer_view(
            request, request_id, CompleteForm, gettext("Complete the request"),
            lambda obj, form, actor: data_request_complete(request=obj, outcome=form.cleaned_data["outcome"],
                                                           actor=actor))

    def refuse_view(self, request, request_id):
        return self._answer_view(
            request, request_id, RefuseForm, gettext("Refuse the request"),
            lambda obj, form, actor: data_request_refuse(request=obj, reason=form.cleaned_data["reason"],
                                                         actor=actor))

    def erase_view(self, request, request_id):
        """Confirmation page: what will be deleted, then erasure once the customer's name
        or public id is typed."""
        obj = get_object_or_404(DSR.objects.select_related("profile"), pk=request_id)
        if not request.user.has_perm(ERASE_PERMISSION):
            raise PermissionDenied
        if obj.profile is None:
            messages.error(request, gettext("Link the request to a customer first."))
            return HttpResponseRedirect(self._change_url(obj))
        # A merged profile's data lives on its survivor: that is the customer to erase.
        profile = subject_profile(obj.profile)
        form = EraseForm(request.POST or None, profile=profile)
        if request.method == "POST" and form.is_valid():
            try:
                result = profile_erase(profile=profile, request=obj, actor=Actor.staff(request.user))
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, gettext("The customer was erased: %(count)s records deleted.")
                                 % {"count": sum(result["deleted"].values())})
                return HttpResponseRedirect(self._change_url(obj))
        return TemplateResponse(request, "admin/consent/datasubjectrequest/erase.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "original": obj, "form": form,
            "profile": profile, "named_profile": obj.profile if obj.profile_id != profile.pk else None,
            "preview": erasure_preview(profile), "title": gettext("Erase a customer"),
        })
