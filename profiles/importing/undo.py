"""Undoing an import, in one transaction: tags and events it added are removed, identities
it attached to existing customers are detached, fields it changed get their earlier
values back, customers it created are deleted. Consent records it added are corrected by
new ledger entries (the ledger is append-only), through the consent kind's undo hook."""
from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.audit import audit_record

from .. import activity
from ..metrics import metrics_recompute
from ..models import Event, Identity, ImportChange, ImportJob, ImportStatus, Profile, ProfileTag, Tag, TagSource
from ..services.bulk import bulk_writer, ranges_q
from ..services.tags import tag_count_refresh, tag_delete
from .consent import consent_undo
from .files import file_remove
from .pipeline import _profiles_with_ids

_DELETE_CHUNK = 5000


def import_undo_queue(*, job: ImportJob) -> bool:
    """Claim `job` for an undo in the background (the caller queues the task on commit);
    False if it cannot be undone or an undo is already queued."""
    if not job.can_undo:
        return False
    return bool(ImportJob.objects.filter(
        pk=job.pk, status=job.status, dry_run=False, undone_at__isnull=True, undo_queued_at__isnull=True,
    ).update(undo_queued_at=timezone.now(), heartbeat_at=timezone.now(), undo_progress=0, undo_error=""))


def import_undo_queued_run(*, job: ImportJob, actor: Actor) -> ImportJob:
    """The queued undo of `job`, its progress reported as it goes. If it cannot be done, the
    job says why and can be undone again once that is dealt with."""
    progress = _UndoProgress(job.pk)
    try:
        return import_undo(job=job, actor=actor, queued=True, on_progress=progress)
    except ValidationError as error:
        ImportJob.objects.filter(pk=job.pk).update(undo_queued_at=None, undo_error=" ".join(error.messages))
        job.refresh_from_db()
        return job
    finally:
        progress.close()


class _UndoProgress:
    """Undo runs in one transaction, invisible to others until it commits: on PostgreSQL
    its progress is written over a second connection, for the job page to follow."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.connection = None

    def __call__(self, fraction: float) -> None:
        now = timezone.now()  # the heartbeat too: the housekeeping task tells a dead undo by it
        if not connection.in_atomic_block:
            ImportJob.objects.filter(pk=self.job_id).update(undo_progress=fraction, heartbeat_at=now)
        elif connection.vendor == "postgresql":
            if self.connection is None:
                self.connection = connections.create_connection("default")
            with self.connection.cursor() as cursor:
                cursor.execute(f"UPDATE {ImportJob._meta.db_table} SET undo_progress = %s, heartbeat_at = %s "
                               "WHERE id = %s", [fraction, now, self.job_id])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def import_undo(*, job: ImportJob, actor: Actor, queued: bool = False,
                on_progress: Callable[[float], None] | None = None) -> ImportJob:
    """Undo `job` in one transaction. `queued`: the undo that `import_undo_queue` claimed."""
    report = on_progress or (lambda fraction: None)
    with transaction.atomic():
        # Undos and import batches take turns on the import lock. The job's row itself is
        # not locked: a queued undo reports its progress on it over a second connection.
        store = bulk_writer()
        store.lock()
        job = ImportJob.objects.get(pk=job.pk)
        undoable = job.is_undoing and job.status in (ImportStatus.DONE, ImportStatus.FAILED,
                                                     ImportStatus.INTERRUPTED) if queued else job.can_undo
        if not undoable:
            raise ValidationError(_("This import cannot be undone (it is a preview, still running, or already "
                                    "undone)."), code="import_not_undoable")
        report(0.01)
        batches = list(job.batches.order_by("-number"))
        reason = _("undo of import #%(job)s") % {"job": job.pk}
        created = [r for b in batches for r in b.profile_ids]

        tag_rows = _in_ranges(ProfileTag, [r for b in batches for r in b.profile_tag_ids])
        for tag in Tag.objects.filter(pk__in=tag_rows.values("tag_id")):
            holders = Profile.objects.filter(pk__in=tag_rows.filter(tag=tag).values("profile_id"))
            holders = holders.exclude(ranges_q(created)) if created else holders
            activity.tag_removed(profiles=holders, tag=tag, source=TagSource.IMPORT, reason=reason, actor=actor)
        tags = set(tag_rows.values_list("tag_id", flat=True))
        tag_rows.delete()
        for tag in Tag.objects.filter(pk__in=tags):
            tag_count_refresh(tag)
        report(0.1)

        event_rows = _in_ranges(Event, [r for b in batches for r in b.event_ids])
        event_profiles = sorted(set(event_rows.values_list("profile_id", flat=True)))
        event_rows.delete()
        report(0.25)

        consent_undo(job, [r for b in batches for r in b.consent_ids], actor)
        report(0.35)

        _in_ranges(Identity, [r for b in batches for r in b.identity_ids]).delete()
        report(0.4)

        # In slices of customers, in profile order so that each customer's changes are
        # together; the earliest "before" wins when a file changed a customer twice.
        params = {"job": job.pk, "file": job.file_name}
        changes = (ImportChange.objects.filter(job=job).order_by("profile_id", "-id")
                   .values_list("profile_id", "before").iterator(chunk_size=_DELETE_CHUNK))
        pending: dict[int, dict] = {}
        to_restore, restored = max(job.updated, 1), 0
        for profile_id, before in changes:
            if profile_id not in pending and len(pending) >= _DELETE_CHUNK:
                _restore(store, pending, params, actor)
                restored += len(pending)
                report(0.4 + 0.3 * min(restored / to_restore, 1))
                pending = {}
            pending.setdefault(profile_id, {}).update(before)
        _restore(store, pending, params, actor)
        report(0.7)

        try:
            # In slices: the ORM collects what cascades from each customer it deletes.
            to_delete, deleted = max(sum(last - first + 1 for first, last in created), 1), 0
            for chunk in _id_chunks(created, _DELETE_CHUNK):
                Profile.objects.filter(pk__in=chunk).delete()
                deleted += len(chunk)
                report(0.7 + 0.28 * deleted / to_delete)
        except ProtectedError:
            raise ValidationError(_("Customers created by this import are now referenced by records that must be "
                                    "kept (another customer merged into them, or consent records); undo those "
                                    "first."), code="import_undo_protected") from None
        if event_profiles:
            metrics_recompute(profile_ids=event_profiles)  # customers deleted above simply match nothing
        # Tags the import created because its file named them go with it, unless someone has
        # given them to a customer since, or a segment, rule or campaign uses them.
        created_tags = (job.report.get("unknown_tags") or {}).get("created_ids") or []
        for tag in Tag.objects.filter(pk__in=created_tags).exclude(profile_tags__isnull=False):
            try:
                with transaction.atomic():
                    tag_delete(tag=tag)
            except (ValidationError, ProtectedError):
                pass  # still in use: kept

        job.status, job.undone_at, job.undone_by_label = ImportStatus.UNDONE, timezone.now(), actor.label[:150]
        job.undo_progress, job.undo_error = 1, ""
        job.save(update_fields=["status", "undone_at", "undone_by_label", "undo_progress", "undo_error"])
        audit_record(actor=actor, action="import_undone", target=f"import:{job.pk}",
                     details={"file": job.file_name, "created": job.created, "updated": job.updated},
                     count=job.created + job.updated)
    file_remove(job)  # an interrupted import's upload, kept for resuming until now
    return job


def _restore(store, befores: dict[int, dict], params: dict, actor: Actor) -> None:
    """Put the fields back on the customers that still exist, and say so on their timelines."""
    existing = set(Profile.objects.filter(pk__in=list(befores)).values_list("pk", flat=True))
    befores = {pk: before for pk, before in befores.items() if pk in existing}
    if befores:
        store.profiles_update(befores)
        activity.profiles_imported(profiles=_profiles_with_ids(list(befores)), action="undone", params=params,
                                   actor=actor)


def _id_chunks(ranges: list[list[int]], size: int):
    chunk: list[int] = []
    for first, last in ranges:
        for pk in range(first, last + 1):
            chunk.append(pk)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _in_ranges(model, ranges: list[list[int]]):
    if not ranges:
        return model.objects.none()
    return model.objects.filter(ranges_q(ranges))
