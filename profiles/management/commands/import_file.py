"""python manage.py import_file PATH --kind profiles|events|consent [--mapping NAME] [--mode …] [--dry-run]

The same pipeline as the admin. Prints a progress bar and the report (counts, first rows
of each outcome, errors with row, column and message). Exit status: 0 when every row went
in (or would), 2 when some rows failed (the rest was imported unless all-or-nothing or
--dry-run), 1 when the import failed as a whole.

Operator-level: whoever can run manage.py holds the database credentials, so no staff
permission is checked here — a consent file is recorded as "import_file", where the admin
asks for the permission to record consent. An import this command ran that was interrupted
(the process killed) is resumed or undone on its page in the admin by an administrator.
"""
import os
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from cdp.actors import Actor
from profiles.importing.jobs import failed_rows_lines, import_job_create
from profiles.importing.pipeline import import_run
from profiles.importing.readers import ReadError
from profiles.models import ErrorPolicy, ImportKind, ImportMode, ImportStatus, MappingTemplate

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Import customers, events or consent records from a CSV, TSV, XLSX or JSON file."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--kind", choices=ImportKind.values, default=ImportKind.PROFILES)
        parser.add_argument("--mapping", metavar="NAME", help="a saved mapping template (else headers are recognised)")
        parser.add_argument("--mode", choices=ImportMode.values, default=ImportMode.CREATE_OR_UPDATE)
        parser.add_argument("--on-error", choices=ErrorPolicy.values, default=ErrorPolicy.SKIP,
                            help="skip bad rows (default) or all_or_nothing")
        parser.add_argument("--source", default="import", help="stored on identities and events, e.g. the CRM's name")
        parser.add_argument("--dry-run", action="store_true", help="report what would happen; write nothing")
        parser.add_argument("--failed-rows", metavar="PATH", help="write the failed rows (with an error column) here")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--show-errors", type=int, default=100, metavar="N", help="print at most N failed rows")

    def handle(self, *args, path, kind, mapping, mode, on_error, source, dry_run, failed_rows, batch_size,
               show_errors, **options):
        if not os.path.isfile(path):
            raise CommandError(_("No file at %(path)s.") % {"path": path})
        template = None
        if mapping:
            template = MappingTemplate.objects.filter(kind=kind, name=mapping).first()
            if template is None:
                raise CommandError(_("No mapping template “%(name)s” for %(kind)s imports.") % {
                    "name": mapping, "kind": ImportKind(kind).label})
        try:
            job, table = import_job_create(path=os.path.abspath(path), name=os.path.basename(path), kind=kind,
                                           actor=Actor.system("import_file"), source=source, mode=mode,
                                           error_policy=on_error, template=template)
        except ReadError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(_("Import #%(job)s: %(file)s, %(format)s, encoding %(encoding)s") % {
            "job": job.pk, "file": job.file_name, "format": table.format.upper(),
            "encoding": table.encoding or "-"})
        for header, target in job.mapping.items():
            self.stdout.write(f"  {header} → {target or _('(ignored)')}")
        import_run(job, dry_run=dry_run, batch_size=batch_size, on_progress=self._progress)
        self.stderr.write("")
        self._report(job, show_errors)
        if failed_rows and job.failed:
            with open(failed_rows, "w", encoding="utf-8", newline="") as file:
                file.writelines(failed_rows_lines(job, table.headers))
            self.stdout.write(_("Failed rows written to %(path)s") % {"path": failed_rows})
        if job.status == ImportStatus.FAILED:
            sys.exit(1)
        if job.failed:
            sys.exit(2)

    def _progress(self, job) -> None:
        done = int(job.progress * BAR_WIDTH)
        self.stderr.write(f"\r[{'#' * done}{'.' * (BAR_WIDTH - done)}] {job.progress:4.0%}  "
                          + _("%(rows)s rows") % {"rows": f"{job.rows_read:,}"}, ending="")
        self.stderr.flush()

    def _report(self, job, show_errors: int) -> None:
        write = self.stdout.write
        title = _("Preview (nothing was written)") if job.dry_run else _("Import")
        write(f"{title}: {job.get_status_display()}")
        if job.error:
            write(self.style.ERROR(job.error))
        counts = {name: f"{getattr(job, name):,}" for name in ("created", "updated", "unchanged", "skipped", "failed")}
        write(_("rows %(rows)s · created %(created)s · updated %(updated)s · unchanged %(unchanged)s · "
                "skipped %(skipped)s · failed %(failed)s") % {**counts, "rows": f"{job.rows_read:,}"})
        seconds = job.report.get("seconds")
        if seconds is not None:
            write(_("%(seconds)s s, %(rate)s rows/s") % {"seconds": seconds,
                                                         "rate": f"{job.report.get('rows_per_second', 0):,}"})
        for action, label in (("create", _("first rows to create")), ("update", _("first rows to update")),
                              ("unchanged", _("first unchanged rows")), ("skip", _("first skipped rows"))):
            samples = job.report.get("samples", {}).get(action) or []
            if samples:
                write(f"{label}: " + ", ".join(str(s["row"]) for s in samples))
        for error in job.row_errors.order_by("row_number")[:show_errors]:
            for item in error.errors:
                column = f" [{item['column']}]" if item.get("column") else ""
                write(self.style.WARNING(_("row %(row)s") % {"row": error.row_number} + f"{column}: {item['message']}"))
        if job.failed > show_errors:
            write(_("… and %(count)s more failed rows (use --failed-rows PATH)") % {"count": job.failed - show_errors})
        warnings = job.report.get("warnings") or {}
        if warnings.get("count"):  # imported, but without a refused cell (a landline in the mobile column)
            write(_("rows with a warning (imported without the cell named): %(count)s") % {
                "count": f"{warnings['count']:,}"})
            for item in (warnings.get("rows") or [])[:show_errors]:
                column = f" [{item['column']}]" if item.get("column") else ""
                write(self.style.WARNING(_("row %(row)s") % {"row": item["row"]} + f"{column}: {item['message']}"))
