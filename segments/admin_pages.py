"""Pages of a segment beyond its form (wired into SegmentAdmin.get_urls): its members
and the export for a purpose."""
from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from cdp.actors import Actor
from consent.models import Purpose
from profiles.masking import can_see_personal_data, mask_phone
from profiles.models import Profile

from .export import COLUMNS, CONTACT_PERMISSION, contact_column, export_purpose, segment_export, segment_export_count
from .models import Segment, SegmentMembership

EXPORT_PERMISSION = "segments.export_segment"
DEFAULT_COLUMNS = ["uuid", "name", "phone", "city"]


class ExportForm(forms.Form):
    purpose = forms.ModelChoiceField(
        label=_("purpose"), queryset=Purpose.objects.filter(is_active=True), to_field_name="code",
        help_text=_("Only customers whose consent for this purpose counts now, and who are not on the "
                    "do-not-contact list of its channel, are exported."),
    )
    columns = forms.MultipleChoiceField(label=_("columns"), choices=[(k, v[0]) for k, v in COLUMNS.items()],
                                        initial=DEFAULT_COLUMNS, widget=forms.CheckboxSelectMultiple)
    file_format = forms.ChoiceField(label=_("format"), choices=[("xlsx", "Excel (XLSX)"), ("csv", "CSV")],
                                    initial="xlsx")


def segment_export_view(model_admin, request, segment_id):
    if not request.user.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied
    segment = get_object_or_404(Segment, pk=segment_id)
    contact_allowed = request.user.has_perm(CONTACT_PERMISSION)
    chosen = Purpose.objects.filter(code=request.POST.get("purpose") or request.GET.get("purpose", ""),
                                    is_active=True).first()
    initial = {}
    if chosen is not None:  # ?purpose=sms_marketing: chosen, with its channel's contact column ticked
        initial = {"purpose": chosen, "columns": [*DEFAULT_COLUMNS, *[c for c in [contact_column(chosen)]
                                                                         if c and c not in DEFAULT_COLUMNS]]}
    form = ExportForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            export = segment_export(segment=segment, purpose_code=data["purpose"].code, columns=data["columns"],
                                    file_format=data["file_format"], actor=Actor.staff(request.user),
                                    contact_allowed=contact_allowed, request=request)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
            response["Content-Disposition"] = content_disposition_header(True, export.filename)
            response["X-Exported-Count"] = str(export.count)
            return response
    purposes = Purpose.objects.filter(is_active=True)
    context = {**model_admin.admin_site.each_context(request), "opts": Segment._meta, "segment": segment,
               "form": form, "form_id": "export-form", "contact_allowed": contact_allowed,
               "contacts": {p.code: contact_column(p) or "" for p in purposes},
               "estimate": _export_estimate(segment, chosen, contact_allowed) if chosen else None,
               "count_url": reverse("admin:segments_segment_export_count", args=[segment.pk]),
               "submit_label": gettext("Download"), "back_label": segment.name,
               "back_url": reverse("admin:segments_segment_change", args=[segment.pk]),
               "title": gettext("Export “%(name)s”") % {"name": segment.name}}
    return TemplateResponse(request, "admin/segments/export.html", context)


def segment_export_count_view(model_admin, request, segment_id):
    """JSON for the export form, when a purpose is chosen: how many will be exported and
    what happens to the contact columns."""
    if not request.user.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied
    segment = get_object_or_404(Segment, pk=segment_id)
    try:
        purpose = export_purpose(request.GET.get("purpose", ""))
    except ValidationError as error:
        return JsonResponse({"error": error.messages[0], "code": error.code}, status=400)
    return JsonResponse(_export_estimate(segment, purpose, request.user.has_perm(CONTACT_PERMISSION)))


def _export_estimate(segment: Segment, purpose: Purpose, contact_allowed: bool) -> dict:
    count = segment_export_count(segment=segment, purpose=purpose)
    if count:
        message = ngettext("%(count)s customer will be exported.", "%(count)s customers will be exported.",
                           count) % {"count": f"{count:,}"}
    else:
        message = gettext("Nobody in this segment may be exported for this purpose: no one's consent for it "
                          "counts, or all who consented are on the do-not-contact list of its channel.")
    contact = contact_column(purpose)
    label = str(COLUMNS[contact][0]) if contact else ""
    if contact and contact_allowed:
        note = gettext("The %(column)s column is exported unmasked, because the channel of this purpose needs it; "
                       "other phones and emails are masked.") % {"column": label}
    elif contact:
        note = gettext("The %(column)s column is exported masked: exporting contact data for a consented channel "
                       "needs a permission you do not have.") % {"column": label}
    else:
        note = gettext("Phones and emails are exported masked: this purpose has no channel that needs them.")
    return {"count": count, "message": message, "contact": contact or "", "contact_unmasked": bool(
        contact and contact_allowed), "contact_note": note}


MEMBERS_PAGE = 50


def segment_members_view(model_admin, request, segment_id):
    """Members, newest first, keyset-paginated (?before=<membership id>) so that a page
    of a million-member segment costs the same as the first."""
    if not request.user.has_perm("segments.view_segment"):
        raise PermissionDenied
    segment = get_object_or_404(Segment, pk=segment_id)
    memberships = SegmentMembership.objects.filter(segment=segment).order_by("-pk")
    before = request.GET.get("before", "")
    if before.isdigit():
        memberships = memberships.filter(pk__lt=int(before))
    page = list(memberships[:MEMBERS_PAGE + 1])
    profiles = Profile.objects.in_bulk([m.profile_id for m in page[:MEMBERS_PAGE]])
    # Masked for everyone, superusers included; staff allowed to see more reveal a row with
    # the profile's audited reveal (one audit row per customer revealed).
    rows = [
        {"membership": m, "profile": profiles.get(m.profile_id),
         "phone": mask_phone(profiles[m.profile_id].phone) if m.profile_id in profiles else ""}
        for m in page[:MEMBERS_PAGE]
    ]
    context = {**model_admin.admin_site.each_context(request), "opts": Segment._meta, "segment": segment,
               "rows": rows, "next_before": page[MEMBERS_PAGE - 1].pk if len(page) > MEMBERS_PAGE else None,
               "can_export": request.user.has_perm(EXPORT_PERMISSION),
               "can_reveal": can_see_personal_data(request.user),
               "title": gettext("Members of “%(name)s”") % {"name": segment.name}}
    return TemplateResponse(request, "admin/segments/members.html", context)
