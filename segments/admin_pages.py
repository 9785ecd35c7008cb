"""Pages of a segment beyond its form (wired into SegmentAdmin.get_urls): its members
and the export for a purpose."""
from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cdp.actors import Actor
from consent.models import Purpose
from profiles.masking import can_see_personal_data, mask_phone
from profiles.models import Profile

from .export import COLUMNS, segment_export
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
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            export = segment_export(segment=segment, purpose_code=data["purpose"].code, columns=data["columns"],
                                    file_format=data["file_format"], actor=Actor.staff(request.user),
                                    unmasked=can_see_personal_data(request.user), request=request)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            response = HttpResponse(export.content, content_type=export.content_type)
            response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
            response["X-Exported-Count"] = str(export.count)
            return response
    context = {**model_admin.admin_site.each_context(request), "opts": Segment._meta, "segment": segment,
               "form": form, "masked": not can_see_personal_data(request.user), "form_id": "export-form",
               "submit_label": gettext("Download"), "back_label": segment.name,
               "back_url": reverse("admin:segments_segment_change", args=[segment.pk]),
               "title": gettext("Export “%(name)s”") % {"name": segment.name}}
    return TemplateResponse(request, "admin/segments/export.html", context)


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
    unmasked = can_see_personal_data(request.user)
    rows = [
        {"membership": m, "profile": profiles.get(m.profile_id),
         "phone": (profiles[m.profile_id].phone if unmasked else mask_phone(profiles[m.profile_id].phone))
         if m.profile_id in profiles else ""}
        for m in page[:MEMBERS_PAGE]
    ]
    context = {**model_admin.admin_site.each_context(request), "opts": Segment._meta, "segment": segment,
               "rows": rows, "next_before": page[MEMBERS_PAGE - 1].pk if len(page) > MEMBERS_PAGE else None,
               "can_export": request.user.has_perm(EXPORT_PERMISSION),
               "title": gettext("Members of “%(name)s”") % {"name": segment.name}}
    return TemplateResponse(request, "admin/segments/members.html", context)
