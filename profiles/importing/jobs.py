"""Import jobs: creating one from a file, saving mapping templates, the failed-rows file.
The admin, the command line and the Celery task all come through here."""
from __future__ import annotations

import os
from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.exports import csv_lines

from ..models import ErrorPolicy, ImportJob, ImportKind, ImportMode, MappingTemplate
from .mapping import DEFAULT_PRECEDENCE, guess_mapping, mapping_clean
from .readers import Table, open_table


def import_job_create(*, path: str, name: str, kind: str = ImportKind.PROFILES, actor: Actor, source: str = "import",
                      mode: str = ImportMode.CREATE_OR_UPDATE, error_policy: str = ErrorPolicy.SKIP,
                      template: MappingTemplate | None = None, mapping: dict | None = None,
                      precedence: list[str] | None = None) -> tuple[ImportJob, Table]:
    """A draft job for the file at `path`: format and encoding detected, the mapping taken
    from `mapping`, else the template, else guessed from the headers. ReadError if the file
    cannot be read."""
    table = open_table(path, name=name, kind=kind)
    if mapping is None:
        guessed = guess_mapping(kind, table.headers)
        if template is not None:
            guessed.update({h: t for h, t in template.columns.items() if h in guessed})
        mapping = guessed
    if precedence is None:
        precedence = list(template.precedence) if template is not None and template.precedence else DEFAULT_PRECEDENCE
    job = ImportJob.objects.create(
        kind=kind, file_path=path, file_name=os.path.basename(name)[:255], file_size=table.size,
        file_format=table.format, encoding=table.encoding, headers=table.headers, source=(source or "import")[:64], template=template,
        mapping=mapping, precedence=precedence, mode=mode, error_policy=error_policy,
        language=get_language() or settings.LANGUAGE_CODE, created_by=actor.user, actor_label=actor.label[:150],
    )
    return job, table


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
