"""Import jobs: creating one from a file, saving mapping templates, the failed-rows file.
The admin, the command line and the Celery task all come through here."""
from __future__ import annotations

import os
from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.exports import csv_lines

from ..models import ErrorPolicy, ImportJob, ImportKind, ImportMode, ImportStatus, MappingTemplate
from .files import file_remove, part_store, parts_delete, parts_join, parts_sizes
from .mapping import DEFAULT_PRECEDENCE, guess_mapping, mapping_clean
from .readers import ReadError, Table, detect_format, open_table


def import_max_bytes() -> int:
    """The largest file an upload (the admin's or the API's, all parts together) may be."""
    return getattr(settings, "CDP_IMPORT_MAX_BYTES", 500 * 1024 * 1024)


def _file_read(path: str, *, name: str, kind: str, template: MappingTemplate | None, mapping: dict | None,
               precedence: list[str] | None) -> tuple[Table, dict, list[str]]:
    """The file opened, and its mapping: `mapping`, else the template's over the guessed one."""
    table = open_table(path, name=name, kind=kind)
    if mapping is None:
        guessed = guess_mapping(kind, table.headers)
        if template is not None:
            guessed.update({h: t for h, t in template.columns.items() if h in guessed})
        mapping = guessed
    if precedence is None:
        precedence = list(template.precedence) if template is not None and template.precedence else DEFAULT_PRECEDENCE
    return table, mapping, precedence


def import_job_create(*, path: str, name: str, kind: str = ImportKind.PROFILES, actor: Actor, source: str = "import",
                      mode: str = ImportMode.CREATE_OR_UPDATE, error_policy: str = ErrorPolicy.SKIP,
                      template: MappingTemplate | None = None, mapping: dict | None = None,
                      precedence: list[str] | None = None, partner=None) -> tuple[ImportJob, Table]:
    """A draft job for the file at `path` (a storage name or a local path): format and
    encoding detected, the mapping taken from `mapping`, else the template, else guessed
    from the headers. ReadError if the file cannot be read."""
    table, mapping, precedence = _file_read(path, name=name, kind=kind, template=template, mapping=mapping,
                                            precedence=precedence)
    job = ImportJob.objects.create(
        kind=kind, file_path=path, file_name=os.path.basename(name)[:255], file_size=table.size,
        file_format=table.format, encoding=table.encoding, headers=table.headers, source=(source or "import")[:64], template=template,
        mapping=mapping, precedence=precedence, mode=mode, error_policy=error_policy,
        language=get_language() or settings.LANGUAGE_CODE, created_by=actor.user, actor_label=actor.label[:150],
        partner=partner,
    )
    return job, table


# --- a file sent in parts (the partner API) ---

MAX_PARTS = 10_000


def import_job_receive(*, name: str, kind: str, actor: Actor, partner, source: str, mode: str, error_policy: str,
                       template: MappingTemplate | None, dry_run: bool) -> ImportJob:
    """A job waiting for its file, sent in numbered parts. ReadError if `name` is not a
    file we can import."""
    detect_format(name)
    return ImportJob.objects.create(
        status=ImportStatus.UPLOADING, kind=kind, file_name=os.path.basename(name)[:255], source=source[:64],
        template=template, mode=mode, error_policy=error_policy, dry_run=dry_run, partner=partner,
        language=get_language() or settings.LANGUAGE_CODE, created_by=actor.user, actor_label=actor.label[:150],
        precedence=list(template.precedence) if template is not None and template.precedence else DEFAULT_PRECEDENCE)


def import_part_add(*, job: ImportJob, number: int, content) -> dict[int, int]:
    """Store part `number` of the job's file (sending a part again replaces it); the parts
    received, {number: bytes}. ValidationError when the job takes no parts any more, the
    number is out of range or the file would pass the size limit."""
    if job.status != ImportStatus.UPLOADING:
        raise ValidationError(_("This import is not receiving parts any more."), code="not_receiving")
    if not 1 <= number <= MAX_PARTS:
        raise ValidationError(_("Number the parts from 1 to %(max)s.") % {"max": MAX_PARTS}, code="part_number")
    if not content.size:
        raise ValidationError(_("The part is empty."), code="part_empty")
    sizes = parts_sizes(job.pk)
    sizes.pop(number, None)
    limit = import_max_bytes()
    if sum(sizes.values()) + content.size > limit:
        raise ValidationError(_("With this part the file would pass the limit of %(limit)s MB: split the data "
                                "into several imports.") % {"limit": limit // 2**20}, code="file_too_large")
    part_store(job.pk, number, content)
    sizes[number] = content.size
    ImportJob.objects.filter(pk=job.pk).update(file_size=sum(sizes.values()))
    return dict(sorted(sizes.items()))


def import_parts_complete(*, job: ImportJob) -> ImportJob:
    """The parts joined into the job's file, read and mapped: the job becomes a draft,
    ready to run. ValidationError when parts are missing or the job is not receiving any;
    ReadError when the file cannot be read (the job is then marked failed)."""
    sizes = parts_sizes(job.pk)
    if not sizes:
        raise ValidationError(_("Send the file's parts before starting the import."), code="no_parts")
    missing = sorted(set(range(1, max(sizes) + 1)) - set(sizes))
    if missing:
        raise ValidationError(_("Parts %(parts)s are missing: send them, then start again.") % {
            "parts": ", ".join(str(n) for n in missing[:20])}, code="parts_missing")
    if not ImportJob.objects.filter(pk=job.pk, status=ImportStatus.UPLOADING).update(status=ImportStatus.DRAFT):
        raise ValidationError(_("This import is not receiving parts any more."), code="not_receiving")
    job.file_path = parts_join(job.pk, extension=os.path.splitext(job.file_name)[1].lower())
    job.status = ImportStatus.DRAFT
    try:
        table, mapping, precedence = _file_read(job.file_path, name=job.file_name, kind=job.kind,
                                                template=job.template, mapping=None, precedence=job.precedence)
    except ReadError as error:
        import_job_fail(job=job, error=str(error))
        raise
    job.file_size, job.file_format, job.encoding, job.headers = table.size, table.format, table.encoding, table.headers
    job.mapping, job.precedence = mapping, precedence
    job.save()
    return job


def import_job_fail(*, job: ImportJob, error: str) -> None:
    """A job that cannot run (its file unreadable, its mapping unfit): failed, its file deleted."""
    job.status, job.error, job.finished_at = ImportStatus.FAILED, error, timezone.now()
    job.save(update_fields=["status", "error", "finished_at", "file_path"])
    file_remove(job)
    parts_delete(job.pk)


def import_mapping_check(job: ImportJob) -> None:
    """ValidationError listing what to fix when the job's mapping does not fit its file."""
    mapping_clean(job.kind, job.headers, job.mapping, job.precedence)


def import_job_claim(*, job: ImportJob, dry_run: bool, actor: Actor) -> bool:
    """Mark a draft or previewed job queued to run (or preview) by `actor`; False if it is
    in no state to start (running, done, failed …). A second call finds it queued."""
    claimed = ImportJob.objects.filter(
        pk=job.pk, status__in=(ImportStatus.DRAFT, ImportStatus.PREVIEWED), file_expired_at__isnull=True).update(
        status=ImportStatus.QUEUED, dry_run=dry_run, progress=0, run_by=actor.user, run_by_label=actor.label[:150])
    if claimed:
        job.refresh_from_db()
    return bool(claimed)


def mapping_template_save(*, job: ImportJob, name: str, actor: Actor) -> MappingTemplate:
    """Save (or overwrite) the job's mapping as a template named `name` for its kind."""
    name = name.strip()
    if not name:
        raise ValidationError(_("Give the mapping template a name."), code="template_name_missing")
    template, _created = MappingTemplate.objects.update_or_create(
        kind=job.kind, name=name[:100],
        defaults={"columns": {h: t for h, t in job.mapping.items() if t}, "precedence": job.precedence,
                  "source": job.source, "created_by": actor.user},
    )
    ImportJob.objects.filter(pk=job.pk).update(template=template)
    return template


def job_mapping_set(*, job: ImportJob, mapping: dict, precedence: list[str], headers: list[str]) -> ImportJob:
    """Store a mapping the user adjusted, after checking it (ValidationError listing problems)."""
    job.mapping = mapping_clean(job.kind, headers, mapping, precedence)
    job.precedence = precedence
    job.save(update_fields=["mapping", "precedence"])
    return job


def failed_rows_lines(job: ImportJob, headers: list[str]) -> Iterator[str]:
    """The rows that failed, as CSV with the original columns plus "row" and "errors", formula-safe,
    for the user to fix and upload again."""

    def rows():
        yield [*headers, _("errors"), _("row")]
        for error in job.row_errors.order_by("row_number").iterator(chunk_size=2000):
            values = list(error.values) + [""] * (len(headers) - len(error.values))
            messages = "; ".join(
                f"{item['column']}: {item['message']}" if item.get("column") else item["message"]
                for item in error.errors)
            yield [*values[:len(headers)], messages, error.row_number]

    return csv_lines(rows())
