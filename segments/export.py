"""Exporting a segment's members for a purpose: only those who may be processed for it
(consent counts, not on the do-not-contact list of its channel), formula-safe, audited,
streamed.

The snapshot: under the purpose lock (shared; ledger writes take it exclusively) the ids of
the members who may be exported are copied into a temporary table in one INSERT … SELECT,
and the lock is released as that short transaction commits. A withdrawal committed before
the export started is therefore never exported, and one in progress is waited for; a
withdrawal made while the file is being written does not wait for it (it comes after the
snapshot). The rows are then read from the snapshot in keyset pages: CSV streamed line by
line, XLSX written by openpyxl's write-only mode to a temporary file and streamed back.

Contact data: phones and emails are masked, except the one contact column the purpose's
channel needs (phones for SMS and phone calls, emails for email) when the user has the
permission "export contact data for a consented channel"; the audit entry says which.
"""
import datetime
import itertools
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from cdp.actors import Actor
from cdp.audit import audit_record
from cdp.exports import csv_lines, xlsx_row
from cdp.replica import on_replica
from consent.models import Channel, Purpose
from consent.selectors import consenting_profiles
from consent.services import purpose_lock
from profiles.masking import mask_email, mask_phone
from profiles.models import Profile, ProfileStatus

from .models import Segment, SegmentMembership

# column → (label, Profile field); the only columns an export can name, so a request cannot
# reach an arbitrary field.
COLUMNS = {
    "uuid": (gettext_lazy("customer id"), "uuid"),
    "name": (pgettext_lazy("person", "name"), "name"),
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
# the contact column each channel sends to; WeChat and app push reach people by ids the
# export does not carry
CHANNEL_CONTACT = {Channel.SMS: "phone", Channel.PHONE: "phone", Channel.EMAIL: "email"}
CONTACT_PERMISSION = "segments.export_contact_data"
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
PAGE = 2000
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Export:
    """A started export: its snapshot is taken and audited; `chunks` yields the file
    (for a StreamingHttpResponse) and drops the snapshot when done or closed."""

    chunks: Iterator[bytes]
    filename: str
    content_type: str
    count: int
    unmasked: tuple[str, ...]

    def read(self) -> bytes:
        """The whole file at once (small exports, tests)."""
        return b"".join(self.chunks)


def contact_column(purpose: Purpose) -> str | None:
    """The column the purpose's channel needs to reach people ("phone" for SMS), if any."""
    return CHANNEL_CONTACT.get(purpose.channel)


def export_purpose(purpose_code: str) -> Purpose:
    purpose = Purpose.objects.filter(code=purpose_code, is_active=True).first() if purpose_code else None
    if purpose is None:
        raise ValidationError(_("Choose the purpose the export is for."), code="purpose_required")
    return purpose


def exportable_profiles(segment: Segment, purpose: Purpose, *, now: datetime.datetime | None = None):
    """The members of `segment` who may be exported for `purpose` now: consent counts and
    not blocked on its channel."""
    members = Profile.objects.filter(
        pk__in=SegmentMembership.objects.filter(segment=segment).values("profile_id"))
    return consenting_profiles(members, purpose.code, now=now or timezone.now())


def segment_export_count(*, segment: Segment, purpose: Purpose, now: datetime.datetime | None = None) -> int:
    """How many customers an export of `segment` for `purpose` would hold now (read
    from the replica when there is a fresh one)."""
    return on_replica(lambda: exportable_profiles(segment, purpose, now=now).count())


def segment_export(*, segment: Segment, purpose_code: str, columns: list[str], file_format: str, actor: Actor,
                   contact_allowed: bool, request=None, now: datetime.datetime | None = None) -> Export:
    """Start an export of the members of `segment` who may be processed for the purpose,
    with `columns`. Phones and emails are masked, except the purpose channel's contact
    column when `contact_allowed` (the caller checks CONTACT_PERMISSION). Takes the
    snapshot and records the audit entry now; ValidationError (with a code) for bad input
    or when nobody may be exported."""
    purpose = export_purpose(purpose_code)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise ValidationError(_("Choose columns among: %(columns)s.") % {"columns": ", ".join(COLUMNS)},
                              code="invalid_columns")
    if file_format not in FORMATS:
        raise ValidationError(_("Choose CSV or XLSX."), code="invalid_format")
    contact = contact_column(purpose)
    unmasked = (contact,) if contact_allowed and contact in columns else ()
    table = f"segment_export_{uuid.uuid4().hex[:16]}"
    with transaction.atomic():
        purpose_lock(purpose, shared=True)  # waits for a withdrawal being written; released at commit
        count = _snapshot(table, exportable_profiles(segment, purpose, now=now))
        if not count:
            raise ValidationError(
                _("No member of this segment may be exported for “%(purpose)s”: nobody's consent for it counts, "
                  "or all who consented are on the do-not-contact list of its channel.") % {"purpose": purpose},
                code="nothing_to_export")
        audit_record(actor=actor, action="segment_exported", target=segment.slug, count=count, request=request,
                     details={"segment": segment.name, "purpose": purpose.code, "columns": columns,
                              "format": file_format, "unmasked": list(unmasked),
                              "members": segment.member_count})
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    header = [str(COLUMNS[c][0]) for c in columns]
    rows = _rows(table, columns, unmasked)
    chunks = _csv_chunks(header, rows) if file_format == "csv" else _xlsx_chunks(header, rows)
    return Export(_dropping(table, chunks), f"{segment.slug}-{purpose.code}-{stamp}.{file_format}",
                  CONTENT_TYPES[file_format], count, unmasked)


def _snapshot(table: str, profiles) -> int:
    """Copy the ids of `profiles` into a new temporary table (this connection's only, and
    kept after the commit); the number copied."""
    sql, params = profiles.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} (profile_id bigint PRIMARY KEY)")
        cursor.execute(f"INSERT INTO {table} (profile_id) {sql}", params)
        return cursor.rowcount


def _rows(table: str, columns: list[str], unmasked: tuple[str, ...]) -> Iterator[list]:
    """The snapshot's customers in keyset pages of PAGE ids, as export cells. Someone
    erased since the snapshot is left out."""
    fields = [COLUMNS[c][1] for c in columns]
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT profile_id FROM {table} WHERE profile_id > %s ORDER BY profile_id LIMIT %s",
                           [last, PAGE])
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        last = ids[-1]
        for values in Profile.objects.filter(pk__in=ids, status=ProfileStatus.ACTIVE).order_by("pk").values_list(
                *fields):
            yield [_cell(column, value, unmasked) for column, value in zip(columns, values)]


def _cell(column: str, value, unmasked: tuple[str, ...]):
    if column in MASKS and column not in unmasked:
        value = MASKS[column](value or "")
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, datetime.date):
        value = value.isoformat()
    elif value is not None and not isinstance(value, (int, str)):
        value = str(value)
    return value


def _csv_chunks(header: list[str], rows: Iterator[list]) -> Iterator[bytes]:
    """UTF-8 CSV with a BOM, formula-safe, in chunks of about CHUNK bytes."""
    pending, size = [], 0
    for line in csv_lines(itertools.chain([header], rows)):
        pending.append(line)
        size += len(line)
        if size >= CHUNK:
            yield "".join(pending).encode("utf-8")
            pending, size = [], 0
    if pending:
        yield "".join(pending).encode("utf-8")


def _xlsx_chunks(header: list[str], rows: Iterator[list]) -> Iterator[bytes]:
    """An XLSX sheet written row by row (openpyxl write-only mode: memory stays flat) into
    a temporary file, then streamed back; text cells are typed strings."""
    from openpyxl import Workbook

    with tempfile.TemporaryFile(suffix=".xlsx") as file:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(title=_("Customers"))
        sheet.append(xlsx_row(sheet, header))
        for row in rows:
            sheet.append(xlsx_row(sheet, row))
        workbook.save(file)
        file.seek(0)
        while chunk := file.read(CHUNK):
            yield chunk


def _dropping(table: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks`, then the snapshot table dropped, also when the download is abandoned."""
    try:
        yield from chunks
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
        except DatabaseError:
            pass  # a broken connection: its temporary tables went with it
