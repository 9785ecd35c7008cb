"""The import pipeline: file → rows → normalised values → matched customers → written in batches.

`import_run(job)` does the whole import (or, with `dry_run`, everything but keeping it):

1. the file is opened and read as a stream (`readers`), its columns mapped (`mapping`);
2. each row is normalised (`rows.RowParser`); problems become per-row issues;
3. rows are taken in batches. In a batch, the identity keys of all rows are looked up at
   once and each row is classified: *create* (nobody holds its keys), *update* (one
   customer does, and something differs), *unchanged*, *skipped* (the mode says so) or
   *failed* (invalid, or a **conflict**: its keys belong to two different customers).
   A customer row whose key already appeared earlier in the same batch waits for the next
   batch, so a file listing the same person twice creates them once and then updates them;
4. the batch is written set-based (`store`) in one transaction, under an advisory lock
   that makes concurrent imports take turns: a crash leaves no half-written batch;
5. what undo needs is recorded with the batch (ids added, fields' values before).

Rules: a blank cell never overwrites a stored value (and 未知 never overwrites a gender);
custom traits merge key by key; tags are added, never removed. "Skip bad rows" commits
batch by batch; "all or nothing" and dry runs run in one transaction that is rolled back
when a row failed (or always, for a dry run), so the counts of a dry run are exactly what
the import would do.
"""
from __future__ import annotations

import gc
import json
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import get_language, override
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.sql import connection_recover, statistics_refresh

from .. import activity
from ..metrics import metrics_recompute
from ..models import (
    AttributeDefinition,
    ErrorPolicy,
    Event,
    ImportBatch,
    ImportJob,
    ImportKind,
    ImportMode,
    ImportRowError,
    IdentityKind,
    ImportStatus,
    Profile,
    ProfileStatus,
    Tag,
    TagCategory,
    TagKind,
    TagSource,
)
from ..identity import CONFLICT, resolve
from ..services.bulk import ID_LIST, BulkWriter, bulk_writer, id_list, id_ranges, ranges_q
from ..services.suppression import suppressed_among
from ..services.tags import tag_count_refresh
from .files import file_remove
from .mapping import DEFAULT_PRECEDENCE, mapping_clean, traits_register
from .readers import ReadError, Table, open_table
from .rows import Issue, Row, RowParser, no_customer_issue
from .consent import suppressed_issue

log = logging.getLogger(__name__)

SAMPLE_ROWS = 5  # first rows of each outcome shown in the report
WARNING_ROWS = 1000  # rows imported with a refused cell: all are counted, the first listed
UNKNOWN_TAGS_LISTED = 1000  # distinct tag names not in the taxonomy: all rows counted, these many names listed
ACTIONS = ("create", "update", "unchanged", "skip", "fail")


def batch_size_for_connection() -> int:
    return 20_000 if connection.vendor == "postgresql" else 2_000


# The reading thread pauses briefly every so many rows. A thread back from the database
# waits for the GIL until the running one gives it up, by default after 5 ms: with a
# dozen round trips a batch, and one per chunk of a COPY, that was a sixth of an import
# (without → with the pauses: 200k new customers 15,050 → 17,800 rows/s, 2M events
# 19,400 → 22,900).
_ROWS_BETWEEN_PAUSES, _PAUSE = 64, 0.0001


class ImportAborted(Exception):
    """The whole import stops (unreadable file, invalid mapping); the message is translated."""


class _Superseded(Exception):
    """The job is no longer this worker's: it was marked interrupted (its heartbeat had
    stopped), then perhaps resumed or undone. The batch in hand is rolled back and the
    worker leaves the job as it is."""


@dataclass
class Outcome:
    """What happened to one row (kept only for the report's samples)."""

    action: str
    row: Row
    profile_id: int | None = None
    changes: dict = field(default_factory=dict)


def import_run(job: ImportJob, *, dry_run: bool = False, batch_size: int | None = None,
               on_progress: Callable[[ImportJob], None] | None = None, actor: Actor | None = None,
               resume: bool = False) -> ImportJob:
    """Run (or preview) `job`; returns it with status, counts and report filled in.
    Never raises for bad input: the job's status and `error` say what went wrong.

    `actor`: who runs it, credited on the timeline and in the audit log (default: whoever
    ran it last, else who uploaded it). `resume`: an interrupted import continues after its
    last committed batch (an "all or nothing" one, which kept nothing, starts again)."""
    if actor is not None:
        job.run_by, job.run_by_label = actor.user, actor.label[:150]
    with override(job.language or None), _without_cyclic_gc():
        runner = _Runner(job, dry_run=dry_run, batch_size=batch_size or batch_size_for_connection(),
                         on_progress=on_progress, resume=resume)
        runner.run()
    return job


def import_runner_actor(job: ImportJob) -> Actor:
    if job.run_by_id:
        return Actor.staff(job.run_by)
    if job.run_by_label:
        return Actor.system(job.run_by_label)
    return Actor.staff(job.created_by) if job.created_by_id else Actor.system(job.actor_label or "import")


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """A batch holds tens of thousands of rows, each a handful of small dicts and lists, and
    the cyclic garbage collector walked all of them again and again: a third of the import's
    Python time. Rows hold no reference cycles: they are freed when their batch is done,
    collector or not."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Runner:
    def __init__(self, job: ImportJob, *, dry_run: bool, batch_size: int, on_progress, resume: bool = False):
        self.job = job
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.on_progress = on_progress
        # Only batches of a "skip bad rows" import are kept one by one: only those resume. A
        # batch commits with the row to resume at, so none committed (0) means start afresh.
        self.resume = resume and not dry_run and job.error_policy != ErrorPolicy.ALL_OR_NOTHING and job.resume_row > 0
        self.one_transaction = dry_run or job.error_policy == ErrorPolicy.ALL_OR_NOTHING
        self.store: BulkWriter = bulk_writer()
        self.actor = import_runner_actor(job)
        self.samples: dict[str, list] = {action: [] for action in ACTIONS}
        # Rows imported without a refused cell (a landline in the mobile column).
        self.warnings: dict = {"count": 0, "rows": []}
        # Tags named by imported rows that were not in the taxonomy: per tag, how many rows
        # (and the first), whether they were created (under `category`) or left out.
        self.unknown_tags: dict = {"rows": 0, "tags": {}, "category": "", "created": False}
        self.new_tags_category: TagCategory | None = None
        self.created_tags: dict[str, Tag] = {}  # casefolded name → the tag this import created (or found)
        self.parser: RowParser | None = None
        self.errors_file = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.batch_number = 0
        self.metrics_stale: set[int] = set()
        # Events are COPYed without first asking which of them are already stored: the
        # unique (source, external id) index refuses a batch holding one, which is then
        # written again with the check, as is every later batch (a re-imported or
        # overlapping file). A preview always checks: its counts must be exact.
        self.events_may_exist = dry_run or self.resume
        self._progress_connection = None

    # --- the whole run ---

    def run(self) -> None:
        job = self.job
        started = time.monotonic()
        if self.resume:  # counts, errors and samples of the committed batches stay
            self.batch_number = max(job.batches.values_list("number", flat=True), default=0)
            self.samples.update({action: list(rows) for action, rows in (job.report.get("samples") or {}).items()
                                 if action in self.samples})
            self.warnings = dict(job.report.get("warnings") or self.warnings)
            self.unknown_tags = _unknown_tags_state(job.report.get("unknown_tags")) or self.unknown_tags
            job.rows_read = job.created + job.updated + job.unchanged + job.skipped + job.failed
            if job.kind == ImportKind.EVENTS:  # customers who got events before the interruption
                ranges = [r for batch in job.batches.all() for r in batch.event_ids]
                if ranges:
                    self.metrics_stale.update(
                        Event.objects.filter(ranges_q(ranges)).values_list("profile_id", flat=True).distinct())
        else:
            ImportRowError.objects.filter(job=job).delete()  # a previous preview's errors
            job.started_at, job.resume_row = timezone.now(), 0
            job.rows_read = job.created = job.updated = job.unchanged = job.skipped = job.failed = 0
        job.dry_run = self.dry_run
        job.status = ImportStatus.PREVIEWING if self.dry_run else ImportStatus.RUNNING
        job.finished_at, job.error, job.progress, job.heartbeat_at = None, "", 0, timezone.now()
        job.save()
        one_transaction = self.one_transaction
        try:
            table = open_table(job.file_path, name=job.file_name, kind=job.kind)
            job.encoding, job.file_format, job.headers = table.encoding, table.format, table.headers
            mapping = mapping_clean(job.kind, table.headers, job.mapping, job.precedence)
            if job.kind == ImportKind.CONSENT:
                from .consent import consent_available

                if not consent_available():
                    raise ImportAborted(_("Consent imports are not available yet in this installation."))
            if one_transaction:
                with transaction.atomic():
                    self._run_batches(table, mapping)
                    if self.dry_run or job.failed:
                        transaction.set_rollback(True)
            else:
                self._run_batches(table, mapping)
        except _Superseded:
            log.warning("import %s was marked interrupted while this worker ran it; leaving it", job.pk)
            self._close_progress_connection()
            self.errors_file.close()
            return
        except FileNotFoundError:
            job.status, job.error = ImportStatus.FAILED, _("The uploaded file is gone; upload it again.")
        except (ReadError, ImportAborted) as error:
            job.status, job.error = ImportStatus.FAILED, str(error)
        except ValidationError as error:  # the mapping does not fit the file
            job.status, job.error = ImportStatus.FAILED, " ".join(error.messages)
        except Exception as error:  # noqa: BLE001 — the job must say it failed, whatever happened
            log.exception("import %s failed", job.pk)
            connection_recover()  # a fresh one writes the report, if the limit hit mid-statement
            job.status = ImportStatus.FAILED
            if one_transaction:
                job.error = _("The import stopped because of an internal error (%(error)s); nothing was "
                              "written.") % {"error": type(error).__name__}
            else:
                job.error = _("The import stopped because of an internal error (%(error)s). Batches already "
                              "written are kept and can be undone.") % {"error": type(error).__name__}
        else:
            if self.dry_run:
                job.status = ImportStatus.PREVIEWED
            elif job.error_policy == ErrorPolicy.ALL_OR_NOTHING and job.failed:
                job.status = ImportStatus.FAILED
                job.error = _("%(count)s rows failed, so nothing was imported (all or nothing). Fix them and "
                              "import the file again.") % {"count": job.failed}
            else:
                job.status = ImportStatus.DONE
            job.progress = 1
        finally:
            self._close_progress_connection()
        self._save_errors()
        job.finished_at = timezone.now()
        job.heartbeat_at = job.finished_at
        job.report = {
            "samples": self.samples,
            "warnings": self.warnings,
            **({"unknown_tags": _unknown_tags_report(self.unknown_tags)} if self.unknown_tags["rows"] else {}),
            "seconds": round(time.monotonic() - started, 3),
            "rows_per_second": round(job.rows_read / max(time.monotonic() - started, 1e-6)),
        }
        job.save()
        if not self.dry_run:
            file_remove(job)  # personal data: the upload is not kept once imported

    def _run_batches(self, table: Table, mapping: dict[str, str]) -> None:
        job = self.job
        if job.kind == ImportKind.PROFILES:
            mapping = traits_register(mapping)  # inside the transaction: a dry run registers nothing
        parser = RowParser(kind=job.kind, headers=table.headers, mapping=mapping, source=job.source,
                           trait_definitions={d.key: d for d in AttributeDefinition.objects.all()})
        self.parser = parser
        if parser.new_tags_category is not None:
            self.new_tags_category = TagCategory.objects.filter(pk=parser.new_tags_category).first()
            self.unknown_tags.update(category=str(self.new_tags_category or ""), created=True)
        self.precedence = job.precedence or DEFAULT_PRECEDENCE
        self.strong_kinds = set(IdentityKind.objects.filter(merge_on=True).values_list("code", flat=True))
        deferred: list[Row] = []
        next_row = self.job.resume_row if self.resume else 0
        with closing(self._parsed_batches(table, parser, skip_below=next_row)) as batches:
            for batch, progress in batches:
                if batch:
                    next_row = batch[-1].number + 1
                deferred = self._batch(deferred + batch, next_row)
                self._progress(progress)
        while deferred:
            deferred = self._batch(deferred, next_row)
        self._metrics_refresh()
        self._progress(table.progress())

    def _parsed_batches(self, table: Table, parser: RowParser,
                        skip_below: int = 0) -> Iterator[tuple[list[Row], float]]:
        """The file's rows, parsed, in batches with the progress after each. A helper thread
        reads and parses the next batch while this one is written: waiting for the database
        releases the GIL. One batch at most waits for its turn, so memory stays bounded."""
        waiting: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()
        language = get_language()

        def produce() -> None:
            batch: list[Row] = []
            try:
                with override(language):  # the rows' error messages, in the job's language
                    for number, cells in table.rows():
                        if number < skip_below:  # committed before the import was interrupted
                            continue
                        batch.append(parser.parse(number, cells))
                        if not len(batch) % _ROWS_BETWEEN_PAUSES:
                            time.sleep(_PAUSE)
                        if len(batch) >= self.batch_size:
                            waiting.put((batch, table.progress(), None))
                            batch = []
                            if stop.is_set():
                                return
                waiting.put((batch, table.progress(), None))
            except Exception as error:  # noqa: BLE001 — raised again in the importing thread
                waiting.put((batch, 0.0, error))

        helper = threading.Thread(target=produce, name=f"import-{self.job.pk}-reader", daemon=True)
        helper.start()
        try:
            while True:
                batch, progress, error = waiting.get()
                self.job.rows_read += len(batch)
                if error is not None:
                    raise error
                if len(batch) < self.batch_size:  # the file's last rows
                    if batch:
                        yield batch, progress
                    return
                yield batch, progress
        finally:
            stop.set()
            while helper.is_alive():  # let it finish the batch it is on, and leave
                try:
                    waiting.get(timeout=0.1)
                except queue.Empty:
                    pass

    def _metrics_refresh(self) -> None:
        """Orders and spend of the customers who got events, once at the end: an order
        history lists a customer in many batches. Derived data (also refreshed nightly), so
        a preview skips it."""
        if self.dry_run:
            return
        stale = sorted(self.metrics_stale)
        if stale:
            statistics_refresh(Event, rows_added=self.job.created)
        for start in range(0, len(stale), self.batch_size):
            with transaction.atomic():
                metrics_recompute(profile_ids=stale[start:start + self.batch_size])

    # --- one batch ---

    def _batch(self, rows: list[Row], next_row: int = 0) -> list[Row]:
        """Process `rows` in one transaction; returns the rows deferred to the next batch.
        `next_row`: the file's first row not read yet. Unless the import is one transaction,
        the batch commits with its counts, failed rows and where a resumed import would
        continue (its first deferred row, else `next_row`)."""
        if not rows:
            return []
        counted = False
        retries = 1
        while True:
            tags_known = set(self.created_tags)
            try:
                with transaction.atomic():
                    self.store.lock()
                    if not self.one_transaction and not ImportJob.objects.filter(
                            pk=self.job.pk, status=ImportStatus.RUNNING).update(heartbeat_at=timezone.now()):
                        raise _Superseded
                    deferred, outcomes, undo = self._classify_and_write(rows)
                    self.batch_number += 1
                    if not self.dry_run and any(undo.values()):
                        ImportBatch.objects.create(job=self.job, number=self.batch_number, **{
                            name: id_ranges(ids) for name, ids in undo.items()})
                    if not self.one_transaction:
                        for outcome in outcomes:
                            self._count(outcome)
                        counted = True
                        self._checkpoint(min((row.number for row in deferred), default=next_row))
                break
            except IntegrityError:
                for key in set(self.created_tags) - tags_known:  # rolled back with the batch
                    gone = self.created_tags.pop(key).pk
                    if gone in self.unknown_tags.get("created_ids", []):
                        self.unknown_tags["created_ids"].remove(gone)
                if self.job.kind == ImportKind.EVENTS and not self.events_may_exist:
                    self.events_may_exist = True  # an event already stored: check from now on
                    continue
                # Someone else (the API, an admin) added one of these identities or events
                # between our lookup and our insert: look again once.
                if not retries:
                    raise
                retries -= 1
        if not counted:
            for outcome in outcomes:
                self._count(outcome)
        return deferred

    def _checkpoint(self, resume_row: int) -> None:
        """In the batch's transaction: the job's counts, samples and failed rows so far, and
        the first row not committed, so that a resumed import continues exactly there."""
        job = self.job
        job.resume_row, job.heartbeat_at = resume_row, timezone.now()
        ImportJob.objects.filter(pk=job.pk).update(
            resume_row=resume_row, heartbeat_at=job.heartbeat_at, rows_read=job.rows_read, created=job.created,
            updated=job.updated, unchanged=job.unchanged, skipped=job.skipped, failed=job.failed,
            report={**job.report, "samples": self.samples, "warnings": self.warnings,
                    "unknown_tags": _unknown_tags_report(self.unknown_tags)})
        self._flush_errors()

    def _classify_and_write(self, rows: list[Row]):
        valid = [row for row in rows if not row.issues]
        outcomes = [Outcome("fail", row) for row in rows if row.issues]
        claimed: set[tuple[str, str]] = set()
        ready, deferred = [], []
        for row in valid:
            # Only customer rows wait for the next batch: they may create the customer a
            # later row updates. Events and consent rows of one customer go together.
            if self.job.kind == ImportKind.PROFILES and claimed.intersection(row.keys):
                deferred.append(row)
            else:
                claimed.update(row.keys)
                ready.append(row)
        owners = self.store.owners(claimed)
        if self.job.kind == ImportKind.EVENTS:
            outcomes += self._events(ready, owners)
            return deferred, outcomes, self._undo
        if self.job.kind == ImportKind.CONSENT:
            from .consent import consent_rows_write

            written, ids = consent_rows_write(self, ready, owners)
            outcomes += written
            self._undo = {"consent_ids": ids}
            return deferred, outcomes, self._undo
        outcomes += self._profiles(ready, owners)
        return deferred, outcomes, self._undo

    def _owner(self, row: Row, owners: dict) -> int | None:
        """The one customer this row's keys belong to (None: nobody); see `_owners`."""
        return self._owners([row], owners, together=False)[0]

    def _owners(self, rows: list[Row], owners: dict, *, together: bool) -> list[int | None]:
        """The customer of each row by the identity resolver (None: nobody yet). A row whose
        keys belong to two customers is a conflict: reported on the row, never merged or
        duplicated. Keys the row may not give its customer (a device someone else uses) are
        dropped from it. `together`: rows sharing a key nobody holds are one person (a
        batch of customers, in which such rows do not meet: later ones wait for the next)."""
        decisions = resolve([row.keys for row in rows], owners, self.strong_kinds, precedence=self.precedence,
                            link=together)
        found = []
        for row, decision in zip(rows, decisions):
            if decision.action == CONFLICT:
                first_key, other_key = decision.keys
                row.issues.append(Issue(row.key_columns[other_key], _(
                    "Conflict: %(kind)s %(value)s belongs to a different customer than %(first_kind)s "
                    "%(first_value)s. Correct the row, or merge the two customers first.") % {
                    "kind": other_key[0], "value": other_key[1], "first_kind": first_key[0],
                    "first_value": first_key[1]}, "conflict"))
                found.append(None)
                continue
            if len(decision.new_keys) != len(row.keys):
                row.keys = [key for key in row.keys
                            if key in decision.new_keys or owners.get(key, False) == decision.profile_id]
            found.append(decision.profile_id)
        return found

    # --- profiles ---

    def _profiles(self, rows: list[Row], owners: dict) -> list[Outcome]:
        self._undo = {"profile_ids": [], "identity_ids": [], "profile_tag_ids": []}
        outcomes, creates, updates = [], [], []
        matched: dict[int, int] = {}
        for row, profile_id in zip(rows, self._owners(rows, owners, together=True)):
            if row.issues:
                outcomes.append(Outcome("fail", row))
            elif profile_id is None:
                if self.job.mode == ImportMode.UPDATE_ONLY:
                    outcomes.append(Outcome("skip", row))
                else:
                    creates.append(row)
            elif self.job.mode == ImportMode.CREATE_ONLY:
                outcomes.append(Outcome("skip", row, profile_id))
            else:
                matched[row.number] = profile_id
                updates.append(row)
        # Identifiers of people erased at their request are never imported again.
        suppressed = suppressed_among(list({key for row in creates + updates for key in row.keys
                                                 if key not in owners}))
        if suppressed:
            for row in creates + updates:
                if suppressed.intersection(row.keys):
                    row.issues += [suppressed_issue(row, key) for key in row.keys if key in suppressed]
                    outcomes.append(Outcome("fail", row))
            creates = [row for row in creates if not row.issues]
            updates = [row for row in updates if not row.issues]
        if self.new_tags_category is not None:
            self._unknown_tags_create([row for row in creates + updates if row.unknown_tags])
        current = self.store.profiles_current(sorted(set(matched.values())))
        changes: dict[int, dict] = {}
        befores: dict[int, dict] = {}
        new_identities: list[tuple[int, str, str]] = []
        tag_pairs: dict[tuple[int, int], int] = {}
        touched: list[Outcome] = []
        keys_added: set[int] = set()  # rows giving their customer a new identity
        for row in updates:
            profile_id = matched[row.number]
            before = current[profile_id]
            if before["status"] != ProfileStatus.ACTIVE:
                row.issues.append(Issue("", _("The matching customer is %(status)s and cannot be updated.") % {
                    "status": ProfileStatus(before["status"]).label}, "inactive_profile"))
                outcomes.append(Outcome("fail", row))
                continue
            diff = {name: value for name, value in row.fields.items() if before[name] != value}
            if row.traits:
                traits = {**(before["traits"] or {}), **row.traits}
                if traits != before["traits"]:
                    diff["traits"] = traits
            outcome = Outcome("update", row, profile_id, diff)
            for kind, value in row.keys:
                if (kind, value) not in owners:
                    new_identities.append((profile_id, kind, value))
                    keys_added.add(row.number)
            for tag in row.tags:
                tag_pairs.setdefault((profile_id, tag.pk), row.number)
            if diff:
                befores[profile_id] = {name: _json_value(before[name]) for name in diff}
                changes[profile_id] = {name: _json_value(value) for name, value in diff.items()}
            touched.append(outcome)
        if tag_pairs:
            existing = self.store.profile_tags_existing(set(tag_pairs))
            for pair in existing:
                tag_pairs.pop(pair)
        tagged_rows = set(tag_pairs.values())
        for outcome in touched:
            number = outcome.row.number
            if not outcome.changes and number not in keys_added and number not in tagged_rows:
                outcome.action = "unchanged"
            outcomes.append(outcome)

        # Writes: new customers, their identities, changes, new identities, tags, timeline.
        created_ids = self.store.profiles_insert([{**row.fields, **({"traits": row.traits} if row.traits else {})}
                                                  for row in creates],
                                                 defaults={"country": settings.CDP_DEFAULT_COUNTRY})
        created_identities = []
        for row, profile_id in zip(creates, created_ids):
            outcomes.append(Outcome("create", row, profile_id))
            created_identities += [(profile_id, kind, value) for kind, value in row.keys]
            for tag in row.tags:
                tag_pairs[(profile_id, tag.pk)] = row.number
        self._undo["profile_ids"] = created_ids
        # Identities added to existing customers are undone one by one; those of new
        # customers go when the customer goes.
        self._undo["identity_ids"] = self.store.identities_insert(new_identities, self.job.source)
        self.store.identities_insert(created_identities, self.job.source, ids_needed=False)
        self.store.profiles_update(changes)
        if not self.dry_run:
            self.store.changes_insert(self.job.pk, befores)
        updated_ids = [o.profile_id for o in outcomes if o.action == "update"]
        params = {"job": self.job.pk, "file": self.job.file_name}
        for ids, action in ((created_ids, "created"), (updated_ids, "updated")):
            if ids:
                activity.profiles_imported(profiles=_profiles_with_ids(ids), action=action, params=params,
                                           actor=self.actor)
        self._undo["profile_tag_ids"] = self._tags_add(list(tag_pairs))
        return outcomes

    def _unknown_tags_create(self, rows: list[Row]) -> None:
        """The tags these rows name that are not in the taxonomy, created (manual tags) under
        the category the user chose, and given to the rows. In the batch's transaction: a
        preview creates them and rolls them back with everything else."""
        names: dict[str, str] = {}
        for row in rows:
            for name in row.unknown_tags:
                names.setdefault(name.casefold(), name)
        for key, name in names.items():
            if key in self.created_tags:
                continue
            tag = Tag.objects.filter(is_active=True, name=name).exclude(kind=TagKind.RULE).first()
            if tag is None:  # not made meanwhile by someone else (or by another import)
                base = slugify(name, allow_unicode=True)[:90] or "tag"
                slug, number = base, 2
                while Tag.objects.filter(slug=slug).exists():
                    slug, number = f"{base}-{number}", number + 1
                tag = Tag.objects.create(
                    name=name, slug=slug, category=self.new_tags_category, kind=TagKind.MANUAL,
                    description=_("Created by import #%(job)s (%(file)s), whose file named it.") % {
                        "job": self.job.pk, "file": self.job.file_name})
                if not self.dry_run:  # undoing the import deletes it again (if nobody uses it by then)
                    self.unknown_tags.setdefault("created_ids", []).append(tag.pk)
            self.created_tags[key] = tag
        for row in rows:
            for name in row.unknown_tags:
                tag = self.created_tags[name.casefold()]
                if tag not in row.tags:
                    row.tags.append(tag)

    def _tags_add(self, pairs: list[tuple[int, int]]) -> list[int]:
        if not pairs:
            return []
        by_tag: dict[int, list[int]] = {}
        for profile_id, tag_id in pairs:
            by_tag.setdefault(tag_id, []).append(profile_id)
        reason = _("import #%(job)s (%(file)s)") % {"job": self.job.pk, "file": self.job.file_name}
        for tag in Tag.objects.select_for_update().filter(pk__in=list(by_tag)).order_by("pk"):
            activity.tag_added(profiles=_profiles_with_ids(by_tag[tag.pk]), tag=tag, source=TagSource.IMPORT,
                               reason=reason, actor=self.actor)
        ids = self.store.profile_tags_insert(pairs, self.actor.user.pk if self.actor.user else None,
                                             self.actor.label, reason)
        for tag in Tag.objects.filter(pk__in=list(by_tag)):
            tag_count_refresh(tag)
        return ids

    # --- events ---

    def _events(self, rows: list[Row], owners: dict) -> list[Outcome]:
        self._undo = {"event_ids": []}
        outcomes, inserts, seen = [], [], set()
        keys = {(row.event["source"], row.event["external_id"]) for row in rows}
        existing = self.store.events_existing(keys) if self.events_may_exist else set()
        for row, profile_id in zip(rows, self._owners(rows, owners, together=False)):
            key = (row.event["source"], row.event["external_id"])
            if row.issues:
                outcomes.append(Outcome("fail", row))
            elif profile_id is None:
                row.issues.append(no_customer_issue())
                outcomes.append(Outcome("fail", row))
            elif key in existing or key in seen:
                outcomes.append(Outcome("unchanged", row, profile_id))
            else:
                seen.add(key)
                inserts.append((row, profile_id))
                outcomes.append(Outcome("create", row, profile_id))
        ids = self.store.events_insert([{**row.event, "profile_id": profile_id} for row, profile_id in inserts])
        self._undo["event_ids"] = ids
        self.metrics_stale.update(profile_id for _row, profile_id in inserts)
        return outcomes

    # --- bookkeeping ---

    def _count(self, outcome: Outcome) -> None:
        job = self.job
        attribute = {"create": "created", "update": "updated", "unchanged": "unchanged", "skip": "skipped",
                     "fail": "failed"}[outcome.action]
        setattr(job, attribute, getattr(job, attribute) + 1)
        row = outcome.row
        if row.unknown_tags and outcome.action in ("create", "update", "unchanged"):
            state = self.unknown_tags
            state["rows"] += 1
            for name in row.unknown_tags:
                entry = state["tags"].get(name.casefold())
                if entry is not None:
                    entry["rows"] += 1
                elif len(state["tags"]) < UNKNOWN_TAGS_LISTED:
                    state["tags"][name.casefold()] = {"name": name, "rows": 1, "first_row": row.number}
                else:
                    state["more"] = state.get("more", 0) + 1
        if row.warnings:
            if outcome.action == "fail":  # the failed-rows file lists everything to fix
                row.issues += row.warnings
            elif outcome.action != "skip":  # stored without the refused cells
                self.warnings["count"] += 1
                if len(self.warnings["rows"]) < WARNING_ROWS:
                    self.warnings["rows"] += [{"row": row.number, "column": i.column, "message": i.message,
                                               "code": i.code} for i in row.warnings]
        samples = self.samples[outcome.action]
        if len(samples) < SAMPLE_ROWS:
            sample = {"row": row.number, "values": [_json_cell(c) for c in row.cells]}
            if self.parser is not None:
                stored = self.parser.stored_cells(row.cells)
                if any(value is not None for value in stored):
                    sample["stored"] = stored
            if outcome.changes:
                sample["changes"] = sorted(outcome.changes)
            if row.issues:
                sample["errors"] = [{"column": i.column, "message": i.message} for i in row.issues]
            if row.warnings and outcome.action != "fail":
                sample["warnings"] = [{"column": i.column, "message": i.message} for i in row.warnings]
            samples.append(sample)
        if outcome.action == "fail":
            self.errors_file.write(json.dumps([outcome.row.number, [_json_cell(c) for c in outcome.row.cells],
                                               [{"column": i.column, "message": i.message, "code": i.code}
                                                for i in outcome.row.issues]], ensure_ascii=False) + "\n")

    def _save_errors(self) -> None:
        """Every failed row, kept after the import (or the preview) for the report and the
        failed-rows file. Written outside the import's transaction: a rolled-back
        "all or nothing" run still shows why."""
        self._flush_errors()
        self.errors_file.close()

    def _flush_errors(self) -> None:
        """Store the failed rows spooled so far, and empty the spool."""
        self.errors_file.seek(0)
        chunk = []
        for line in self.errors_file:
            number, values, errors = json.loads(line)
            chunk.append(ImportRowError(job=self.job, row_number=number, values=values, errors=errors))
            if len(chunk) >= 2000:
                ImportRowError.objects.bulk_create(chunk)
                chunk = []
        ImportRowError.objects.bulk_create(chunk)
        self.errors_file.seek(0)
        self.errors_file.truncate()

    def _progress(self, progress: float) -> None:
        job = self.job
        job.progress = progress
        job.heartbeat_at = timezone.now()
        if self.on_progress:
            self.on_progress(job)
        fields = {"progress": job.progress, "rows_read": job.rows_read, "created": job.created,
                  "updated": job.updated, "unchanged": job.unchanged, "skipped": job.skipped, "failed": job.failed,
                  "heartbeat_at": job.heartbeat_at}
        if not connection.in_atomic_block:
            if not ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(**fields):
                raise _Superseded
        elif connection.vendor == "postgresql":
            # Inside the one transaction of a dry run / all-or-nothing import the row is not
            # visible to others: report progress over a second connection.
            if self._progress_connection is None:
                self._progress_connection = connections.create_connection("default")
            assignments = ", ".join(f"{name} = %s" for name in fields)
            with self._progress_connection.cursor() as cursor:
                cursor.execute(f"UPDATE {ImportJob._meta.db_table} SET {assignments} WHERE id = %s",
                               [*fields.values(), job.pk])

    def _close_progress_connection(self) -> None:
        if self._progress_connection is not None:
            self._progress_connection.close()
            self._progress_connection = None


def _unknown_tags_report(state: dict) -> dict:
    """The report's form of the unknown tags: most frequent first."""
    tags = sorted(state["tags"].values(), key=lambda entry: (-entry["rows"], entry["first_row"]))
    return {"rows": state["rows"], "count": len(tags), "tags": tags, "category": state["category"],
            "created": state["created"], "more": state.get("more", 0), "created_ids": state.get("created_ids", [])}


def _unknown_tags_state(report: dict | None) -> dict | None:
    """A resumed import's unknown tags, back from its report."""
    if not report:
        return None
    return {"rows": report.get("rows", 0), "category": report.get("category", ""),
            "created": report.get("created", False), "more": report.get("more", 0),
            "created_ids": list(report.get("created_ids") or []),
            "tags": {entry["name"].casefold(): dict(entry) for entry in report.get("tags") or []}}


def _profiles_with_ids(ids: Iterable[int]):
    ids = list(ids)
    if connection.vendor == "postgresql":
        return Profile.objects.filter(pk__in=RawSQL(f"SELECT unnest({ID_LIST})", [id_list(ids)]))
    return Profile.objects.filter(pk__in=ids)


def _json_value(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _json_cell(value):
    if value is None:
        return ""
    if isinstance(value, (int, float, str, bool)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)

