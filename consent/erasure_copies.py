"""Copies of an erased person's data that do not hang off their profile, found by their
identifiers and removed by `erasure_copies_scrub` (called by consent.requests.profile_erase,
in its transaction):

* import jobs: the report's sample rows (dropped when a cell names the person), and any
  other text of the report, the error and the file name that does;
* failed import rows (ImportRowError) naming the person: deleted;
* stored uploads (MEDIA_ROOT/imports: previewed, drafted or interrupted jobs, and files no
  job points at) holding a row of the person: deleted, and their jobs can no longer run;
* other customers' timelines (a note, a merge since undone) and unlinked data requests
  naming the person's phone, email or ids;
* free-form configuration of the apps above (segment definitions and descriptions, saved
  analyses' parameters): the value is replaced by "—", so a condition naming the person
  matches nobody;
* the admin's history (object names);
* the tracking sources' debugger log: the person's collected messages (by profile id, their
  merged records' too) and any other logged message naming them.

A cell or text names the person when, lower-cased without spaces or punctuation, it holds
one of their identifiers written the same way ("139-1234 5678", "+86 139 1234 5678" and
"13912345678" alike; a phone also by its national number, as CRM files write it).
Identifiers shorter than 6 characters are not looked for: they would match strangers.
Exports and access-request files are never stored (streamed, or temporary files)."""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

import phonenumbers
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.db import models
from django.utils.translation import gettext as _

from profiles.importing.files import (
    file_remove,
    local_path,
    parts_delete,
    parts_joined_copy,
    upload_dir,
    upload_names,
    upload_storage,
)
from profiles.importing.readers import open_table
from profiles.models import CollectLog, ImportJob, ImportRowError, ImportStatus, ProfileActivity

from .models import DataSubjectRequest

logger = logging.getLogger("cdp.consent")
ERASED = "—"
MIN_NEEDLE = 6
# Free-form fields of the apps above consent, named (consent may not import them): a
# value there may quote a person's identifier.
FREE_FORM_FIELDS = {
    "segments.Segment": ("definition", "description", "last_error"),
    "segments.SavedAnalysis": ("parameters",),
}
# Jobs whose upload is gone can no longer run: they end as failed, with the reason.
_RUNNABLE = (ImportStatus.DRAFT, ImportStatus.QUEUED, ImportStatus.PREVIEWED, ImportStatus.INTERRUPTED)


def squashed(text: str) -> str:
    """Lower case without spaces or punctuation: "139-1234 5678" and "13912345678" alike."""
    return re.sub(r"[\W_]+", "", text.casefold())


class Needles:
    """The person's identifiers, as looked for in free text and in file rows."""

    def __init__(self, identifiers: Iterable[tuple[str, str]]):
        self.exact: set[str] = set()  # as stored: for the database's own LIKE
        self.squashed: set[str] = set()
        for kind, value in identifiers:
            forms = {value}
            if kind == "phone" and value.startswith("+"):
                try:
                    forms.add(str(phonenumbers.parse(value).national_number))
                except phonenumbers.NumberParseException:
                    pass
            self.exact |= {form for form in forms if len(form) >= MIN_NEEDLE}
            self.squashed |= {s for form in forms if len(s := squashed(form)) >= MIN_NEEDLE}

    def __bool__(self) -> bool:
        return bool(self.squashed)

    def found_in(self, text) -> bool:
        text = squashed(str(text))
        return len(text) >= MIN_NEEDLE and any(needle in text for needle in self.squashed)

    def in_row(self, cells: Iterable) -> bool:
        return any(self.found_in(cell) for cell in cells if cell not in (None, ""))

    def like_q(self, *fields: str) -> models.Q:
        """Rows whose field holds one of the identifiers as stored (a pre-filter: found_in decides)."""
        q = models.Q(pk__in=[])
        for field in fields:
            for needle in self.exact:
                q |= models.Q(**{f"{field}__icontains": needle})
        return q


def scrubbed(value, needles: Needles):
    """`value` (JSON data or text) without the person: sample rows naming them are left
    out, any other text naming them becomes "—"."""
    if isinstance(value, dict):
        return {key: scrubbed(item, needles) for key, item in value.items()}
    if isinstance(value, list):
        return [scrubbed(item, needles) for item in value
                if not (isinstance(item, dict) and isinstance(item.get("values"), list)
                        and needles.in_row(item["values"]))]
    if isinstance(value, str | int | float) and not isinstance(value, bool) and needles.found_in(value):
        return ERASED
    return value


def erasure_copies_scrub(*, identifiers: set[tuple[str, str]], profile_ids: list[int]) -> dict[str, int]:
    """Remove every copy listed in the module docstring; returns counts by kind of copy."""
    needles = Needles(identifiers)
    collected = CollectLog.objects.filter(profile_id__in=profile_ids).delete()[0]
    if not needles:
        return {"collect_log": collected} if collected else {}
    counts = {
        "collect_log": collected + _collect_log_delete(needles),
        "import_reports": _import_jobs_scrub(needles),
        "import_errors": _import_errors_delete(needles),
        "import_uploads": _uploads_delete(needles),
        "other_timelines": _json_rows_scrub(ProfileActivity.objects.exclude(profile_id__in=profile_ids), "params",
                                            needles),
        "data_requests": _requests_scrub(needles),
        "admin_history": _admin_log_scrub(needles),
    }
    for label, fields in FREE_FORM_FIELDS.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        for field in fields:
            counts[f"{label}.{field}"] = _json_rows_scrub(model._base_manager.all(), field, needles)
    return {kind: count for kind, count in counts.items() if count}


def _import_jobs_scrub(needles: Needles) -> int:
    """Reports hold at most a few sample rows per action: read them all."""
    changed = 0
    jobs = ImportJob.objects.only("pk", "report", "error", "file_name")
    for job in jobs.iterator(chunk_size=500):
        report, error, file_name = (scrubbed(getattr(job, f), needles) for f in ("report", "error", "file_name"))
        if (report, error, file_name) != (job.report, job.error, job.file_name):
            ImportJob.objects.filter(pk=job.pk).update(report=report, error=error, file_name=file_name)
            changed += 1
    return changed


def _import_errors_delete(needles: Needles) -> int:
    """Failed rows belong to no customer: their cells are the only way to tell."""
    naming = [pk for pk, values in ImportRowError.objects.values_list("pk", "values").iterator(chunk_size=2000)
              if needles.in_row(values)]
    return ImportRowError.objects.filter(pk__in=naming).delete()[0]


def _uploads_delete(needles: Needles) -> int:
    """Delete every stored upload holding a row of the person; the jobs using it fail
    with the reason (their rows would be refused anyway: the identifiers are suppressed)."""
    deleted = 0
    for name in upload_names():  # the storage's uploads (a folder, or a bucket)
        legacy = os.path.join(upload_dir(), os.path.basename(name))  # jobs from before uploads had storage names
        jobs = list(ImportJob.objects.filter(file_path__in=(name, legacy)))
        try:
            path = local_path(name)
        except FileNotFoundError:
            continue
        if not _file_names(path, jobs, needles):
            continue
        for job in jobs:
            file_remove(job)
        upload_storage().delete(name)
        deleted += 1
        reason = _("The uploaded file was deleted: it held data of a person erased at their request. Upload it "
                   "again to import the other rows.")
        for job in jobs:
            status = ImportStatus.FAILED if job.status in _RUNNABLE else job.status
            ImportJob.objects.filter(pk=job.pk).update(status=status, error=reason, file_size=0)
    for job in ImportJob.objects.filter(status=ImportStatus.UPLOADING):  # a file still coming in parts (API)
        with parts_joined_copy(job.pk, extension=os.path.splitext(job.file_name)[1].lower()) as path:
            if path is None or not _file_names(path, [job], needles):
                continue
        parts_delete(job.pk)
        deleted += 1
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.FAILED, file_size=0, error=_(
            "The uploaded file was deleted: it held data of a person erased at their request. Upload it again to "
            "import the other rows."))
    return deleted


def _file_names(path: str, jobs: list[ImportJob], needles: Needles) -> bool:
    """Whether a row of the file names the person. A file that cannot be read as a table
    is searched as text."""
    job = jobs[0] if jobs else None
    try:
        table = open_table(path, name=job.file_name if job else path, kind=job.kind if job else "profiles")
        if needles.in_row(table.headers):
            return True
        return any(needles.in_row(cells) for _number, cells in table.rows())
    except Exception:  # noqa: BLE001 - unreadable as a table: look at its bytes
        logger.warning("erasure: %s is not readable as a table; searched as text", path)
        with open(path, "rb") as file:
            raw = file.read()
        return any(needles.found_in(line) for line in raw.decode("utf-8", "ignore").splitlines()) or any(
            needles.found_in(line) for line in raw.decode("gb18030", "ignore").splitlines())


def _json_rows_scrub(queryset: models.QuerySet, field: str, needles: Needles) -> int:
    """Rows whose `field` (JSON or text) names the person, rewritten without them."""
    changed = 0
    for pk, value in queryset.filter(needles.like_q(field)).values_list("pk", field).iterator(chunk_size=500):
        new = scrubbed(value, needles)
        if new != value:
            queryset.model._base_manager.filter(pk=pk).update(**{field: new})
            changed += 1
    return changed


def _requests_scrub(needles: Needles) -> int:
    """Requests not linked to the customer (received before anyone could tell who it
    was) that name them."""
    requests = DataSubjectRequest.objects.filter(needles.like_q("requester", "contact", "details"))
    return requests.update(requester=ERASED, contact="", details="")


def _collect_log_delete(needles: Needles) -> int:
    """Logged messages of no known profile (rejected ones) that name the person: their
    payloads are masked, but a message's event name or reason may still quote an identifier."""
    rows = CollectLog.objects.filter(needles.like_q("payload", "name", "reason"))
    naming = [pk for pk, payload, name, reason in rows.values_list("pk", "payload", "name", "reason")
              if needles.found_in(name) or needles.found_in(reason) or _json_names(payload, needles)]
    return CollectLog.objects.filter(pk__in=naming).delete()[0]


def _json_names(value, needles: Needles) -> bool:
    return scrubbed(value, needles) != value


def _admin_log_scrub(needles: Needles) -> int:
    """The admin's history names objects as they were: an import job by its file name,
    an identity by its value."""
    return LogEntry.objects.filter(needles.like_q("object_repr")).update(object_repr=ERASED)
