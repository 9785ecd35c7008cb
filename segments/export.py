"""Exporting a segment's members for a purpose: only those who may be processed for it
(consent counts, not on the do-not-contact list of its channel), formula-safe, audited."""
import datetime
import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cdp.actors import Actor
from cdp.audit import audit_record
from cdp.exports import csv_lines, spreadsheet_safe
from consent.models import Purpose
from consent.selectors import consenting_profiles
from consent.services import purpose_lock
from profiles.masking import mask_email, mask_phone
from profiles.models import Profile

from .models import Segment

# column → (label, Profile attribute or a function of the profile); the only columns an
# export can name, so a request cannot reach an arbitrary field.
COLUMNS = {
    "uuid": (gettext_lazy("customer id"), "uuid"),
    "name": (gettext_lazy("name"), "name"),
    "phone": (gettext_lazy("phone"), "phone"),
    "email": (gettext_lazy("email"), "email"),
    "gender": (gettext_lazy("gender"), "gender"),
    "birth_date": (gettext_lazy("birth date"), "birth_date"),
    "province": (gettext_lazy("province"), "province"),
    "city": (gettext_lazy("city"), "city"),
    "lifecycle_stage": (gettext_lazy("lifecycle stage"), "lifecycle_stage"),
    "order_count": (gettext_lazy("orders"), "order_count"),
    "total_spent": (gettext_lazy("total spent"), "total_spent"),
    "last_order_at": (gettext_lazy("last order"), "last_order_at"),
}
MASKS = {"phone": mask_phone, "email": mask_email}
FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class Export:
    content: bytes
    filename: str
    content_type: str
    count: int


def segment_export(*, segment: Segment, purpose_code: str, columns: list[str], file_format: str, actor: Actor,
                   unmasked: bool, request=None, now: datetime.datetime | None = None) -> Export:
    """The members of `segment` who may be processed for the purpose, with `columns`.
    Phones and emails are masked unless `unmasked` (the caller checks the permission).
    The purpose is locked shared for the read, so a withdrawal is either seen or waits."""
    purpose = Purpose.objects.filter(code=purpose_code, is_active=True).first()
    if purpose is None:
        raise ValidationError(_("Choose the purpose the export is for."), code="purpose_required")
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise ValidationError(_("Choose columns among: %(columns)s.") % {"columns": ", ".join(COLUMNS)},
                              code="invalid_columns")
    if file_format not in FORMATS:
        raise ValidationError(_("Choose CSV or XLSX."), code="invalid_format")
    with transaction.atomic():
        purpose_lock(purpose, shared=True)
        members = Profile.objects.filter(segment_memberships__segment=segment)
        allowed = consenting_profiles(members, purpose.code, now=now or timezone.now()).order_by("pk")
        rows = [[_cell(profile, column, unmasked) for column in columns] for profile in allowed.iterator(2000)]
        audit_record(actor=actor, action="segment_exported", target=segment.slug, count=len(rows), request=request,
                     details={"segment": segment.name, "purpose": purpose.code, "columns": columns,
                              "format": file_format, "unmasked": unmasked,
                              "members": segment.member_count})
    header = [str(COLUMNS[c][0]) for c in columns]
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"{segment.slug}-{purpose.code}-{stamp}.{file_format}"
    if file_format == "csv":
        content = "".join(csv_lines([header, *rows])).encode("utf-8")
        return Export(content, filename, "text/csv; charset=utf-8", len(rows))
    return Export(_xlsx(header, rows), filename,
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", len(rows))


def _cell(profile: Profile, column: str, unmasked: bool):
    value = getattr(profile, COLUMNS[column][1])
    if column in MASKS and not unmasked:
        value = MASKS[column](value or "")
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, datetime.date):
        value = value.isoformat()
    elif value is not None and not isinstance(value, (int, str)):
        value = str(value)
    return value


def _xlsx(header: list[str], rows: list[list]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(header)
    for row in rows:
        sheet.append([spreadsheet_safe(cell) for cell in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
