"""python manage.py import_file PATH --kind profiles|events|consent [--mapping NAME] [--mode …] [--dry-run]
                                   [--create-missing-tags CATEGORY] [--failed-rows PATH | --no-failed-rows]

The same pipeline as the admin. Prints a progress bar and the report: counts, first rows
of each outcome, and every failed row by its line, grouped by the kind of error with
ranges ("rows 482–485, 1,203"), each group with an example message; the failed rows are
written to PATH-failed-rows.csv next to the file (or --failed-rows PATH; --no-failed-rows
for none), whose name is printed. Tags not in the taxonomy are listed with how many rows
name them; --create-missing-tags CATEGORY (a category's code or name) creates them there.
Exit status: 0 when every row went in (or would), 2 when some rows failed (the rest was
imported unless all-or-nothing or --dry-run), 1 when the import failed as a whole.

Operator-level: whoever can run manage.py holds the database credentials, so no staff
permission is checked here — a consent file is recorded as "import_file", where the admin
asks for the permission to record consent. An import this command ran that was interrupted
(the process killed) is resumed or undone on its page in the admin by an administrator.
"""
import os
import sys
from collections import defaultdict

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from cdp.actors import Actor
from profiles.importing.jobs import failed_rows_lines, import_job_create
from profiles.importing.mapping import TAGS_NEW, is_tags_target
from profiles.importing.pipeline import import_run
from profiles.importing.readers import ReadError
from profiles.models import ErrorPolicy, ImportKind, ImportMode, ImportStatus, MappingTemplate, TagCategory

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
        parser.add_argument("--failed-rows", metavar="PATH",
                            help="write the failed rows (with an error column) here; default: FILE-failed-rows.csv "
                                 "next to the file")
        parser.add_argument("--no-failed-rows", action="store_true", help="do not write the failed rows to a file")
        parser.add_argument("--create-missing-tags", metavar="CATEGORY",
                            help="create the tags the file names that are not in the taxonomy, as manual tags of "
                                 "this category (its code, e.g. value, or its name); default: report them and import "
                                 "the people without them")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--show-errors", type=int, default=20, metavar="N",
                            help="also print the first N failed rows with all their messages (every failed row is "
                                 "named in the summary by error kind)")

    def handle(self, *args, path, kind, mapping, mode, on_error, source, dry_run, failed_rows, batch_size,
               show_errors, no_failed_rows=False, create_missing_tags=None, **options):
        if not os.path.isfile(path):
            raise CommandError(_("No file at %(path)s.") % {"path": path})
        if failed_rows and no_failed_rows:
            raise CommandError(_("Use --failed-rows PATH or --no-failed-rows, not both."))
        category = _category(create_missing_tags) if create_missing_tags else None
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
        if category is not None:
            tags_columns = [header for header, target in job.mapping.items() if is_tags_target(target)]
            if tags_columns:
                job.mapping = {header: (f"{TAGS_NEW}{category.pk}" if header in tags_columns else target)
                               for header, target in job.mapping.items()}
                job.save(update_fields=["mapping"])
            else:
                self.stdout.write(self.style.WARNING(_("No column of the file holds tags: --create-missing-tags is "
                                                       "not used.")))
        self.stdout.write(_("Import #%(job)s: %(file)s, %(format)s, encoding %(encoding)s") % {
            "job": job.pk, "file": job.file_name, "format": table.format.upper(),
            "encoding": table.encoding or "-"})
        for header, target in job.mapping.items():
            self.stdout.write(f"  {header} → {target or _('(ignored)')}")
        import_run(job, dry_run=dry_run, batch_size=batch_size, on_progress=self._progress)
        self.stderr.write("")
        self._report(job, show_errors)
        if job.failed and not no_failed_rows:
            target = failed_rows or _failed_rows_path(path)
            try:
                with open(target, "w", encoding="utf-8", newline="") as file:
                    file.writelines(failed_rows_lines(job, table.headers))
            except OSError as error:
                self.stdout.write(self.style.ERROR(_("The failed rows could not be written to %(path)s (%(error)s); "
                                                     "use --failed-rows PATH.") % {"path": target,
                                                                                   "error": error.strerror or error}))
            else:
                self.stdout.write(_("Failed rows written to %(path)s (fix them and import that file)") % {
                    "path": target})
        if job.status == ImportStatus.FAILED:
            sys.exit(1)
        if job.failed:
            sys.exit(2)

    def _progress(self, job) -> None:
        done = int(job.progress * BAR_WIDTH)
        self.stderr.write(f"\r[{'#' * done}{'.' * (BAR_WIDTH - done)}] {job.progress:4.0%}  "
                          + _("%(rows)s rows") % {"rows": f"{job.rows_read:,}"}, ending="")
        self.stderr.flush()

    def _failed_summary(self, job, show_errors: int) -> None:
        """Every failed row, by its line: grouped by the kind of error and column, with ranges,
        each group with the first row's message as an example; then the first rows in full."""
        write = self.stdout.write
        if not job.failed:
            return
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        examples: dict[tuple[str, str], str] = {}
        shown = 0
        for error in job.row_errors.order_by("row_number").iterator(chunk_size=5000):
            for item in error.errors:
                key = (item.get("code", ""), item.get("column", ""))
                if not groups[key] or groups[key][-1] != error.row_number:
                    groups[key].append(error.row_number)
                examples.setdefault(key, _("row %(row)s") % {"row": error.row_number} + f": {item['message']}")
            if shown < show_errors:
                shown += 1
                for item in error.errors:
                    column = f" [{item['column']}]" if item.get("column") else ""
                    write(self.style.WARNING(_("row %(row)s") % {"row": error.row_number}
                                             + f"{column}: {item['message']}"))
        write(_("Failed rows by kind of error:"))
        for (code, column), rows in sorted(groups.items(), key=lambda item: (-len(item[1]), item[1][0])):
            where = f" [{column}]" if column else ""
            write(self.style.WARNING(f"  {code or 'error'}{where} · " + _("%(count)s rows") % {
                "count": f"{len(rows):,}"} + ": " + row_ranges(rows)))
            write(f"    {examples[(code, column)]}")

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
        self._failed_summary(job, show_errors)
        warnings = job.report.get("warnings") or {}
        if warnings.get("count"):  # imported, but without a refused cell (a landline in the mobile column)
            write(_("rows with a warning (imported without the cell named): %(count)s") % {
                "count": f"{warnings['count']:,}"})
            groups: dict = defaultdict(list)
            for item in warnings.get("rows") or []:
                groups[(item.get("code", ""), item.get("column", ""))].append(item)
            for (_code, column), items in groups.items():
                column = f" [{column}]" if column else ""
                rows = row_ranges(sorted({item["row"] for item in items}))
                write(self.style.WARNING(rows + f"{column}: {items[0]['message']}"))
            listed = len({item["row"] for item in warnings.get("rows") or []})
            if warnings["count"] > listed:
                write(_("… the first %(listed)s rows with a warning are listed.") % {"listed": f"{listed:,}"})
        unknown = job.report.get("unknown_tags") or {}
        if unknown.get("rows"):
            if unknown.get("created"):
                write(_("Tags not in the taxonomy, created under %(category)s: %(count)s (named by %(rows)s rows)") % {
                    "category": unknown.get("category"), "count": unknown["count"], "rows": f"{unknown['rows']:,}"})
            else:
                write(_("Tags not in the taxonomy, not given: %(count)s (named by %(rows)s rows). The people are "
                        "imported; to create the tags, import again with --create-missing-tags CATEGORY.") % {
                    "count": unknown["count"], "rows": f"{unknown['rows']:,}"})
            for entry in unknown.get("tags") or []:
                write("  " + _("%(tag)s: %(rows)s rows (first: row %(first)s)") % {
                    "tag": entry["name"], "rows": f"{entry['rows']:,}", "first": entry["first_row"]})


def row_ranges(rows: list[int]) -> str:
    """[482, 483, 484, 485, 1203] → "rows 482–485, 1,203" (第 482–485、1,203 行)."""
    parts: list[str] = []
    start = previous = None
    for number in rows:
        if previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            parts.append(_span(start, previous))
        start = previous = number
    if start is not None:
        parts.append(_span(start, previous))
    return _("rows %(ranges)s") % {"ranges": _(", ").join(parts)}


def _span(start: int, end: int) -> str:
    return f"{start:,}" if start == end else f"{start:,}–{end:,}"


def _failed_rows_path(path: str) -> str:
    stem, _extension = os.path.splitext(os.path.abspath(path))
    return f"{stem}-failed-rows.csv"


def _category(text: str) -> TagCategory:
    """The category named by its code (value, interest…), its name or its path (价值标签 › 会员)."""
    wanted = text.strip()
    found = list(TagCategory.objects.filter(code=wanted))
    if not found:
        found = [c for c in TagCategory.objects.all()
                 if wanted.casefold() in {c.name.casefold(), c.display_name.casefold(), str(c).casefold()}]
    if len(found) == 1:
        return found[0]
    if found:
        raise CommandError(_("Several tag categories are called “%(name)s”: name one by its path, e.g. "
                             "“%(path)s”.") % {"name": wanted, "path": str(found[0])})
    names = ", ".join(sorted(c.code or str(c) for c in TagCategory.objects.all()))
    raise CommandError(_("No tag category “%(name)s”. Categories: %(names)s.") % {"name": wanted, "names": names})
