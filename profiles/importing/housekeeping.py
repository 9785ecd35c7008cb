"""Periodic care of import jobs (Celery beat: profiles.tasks.import_housekeeping).

* A job whose worker is gone — killed, out of memory, the machine restarted — stops
  touching its heartbeat (once per committed batch). After `CDP_IMPORT_HEARTBEAT_TIMEOUT`
  seconds without one it is marked interrupted: its committed batches stay, and it can be
  resumed from the first row not yet committed, or undone.
* Uploads hold personal data. The file of a job that was uploaded or previewed but never
  run (or was interrupted and never resumed) is deleted after `CDP_IMPORT_UPLOAD_MAX_AGE_DAYS`
  days; the job says when its file expired. Local copies of uploads kept in a remote
  storage (S3) are deleted a day after their last use.
"""
from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from ..models import ImportJob, ImportStatus
from .files import cache_clean, file_remove, parts_delete

log = logging.getLogger(__name__)


def heartbeat_timeout() -> datetime.timedelta:
    return datetime.timedelta(seconds=getattr(settings, "CDP_IMPORT_HEARTBEAT_TIMEOUT", 15 * 60))


def upload_max_age() -> datetime.timedelta:
    return datetime.timedelta(days=getattr(settings, "CDP_IMPORT_UPLOAD_MAX_AGE_DAYS", 7))


def import_jobs_interrupt_stale(*, now: datetime.datetime | None = None) -> list[int]:
    """Mark running jobs (and previews) whose heartbeat stopped as interrupted, and give up
    queued undos whose heartbeat stopped; their ids."""
    now = now or timezone.now()
    cutoff = now - heartbeat_timeout()
    stale = ImportJob.objects.filter(status__in=(ImportStatus.RUNNING, ImportStatus.PREVIEWING)).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
    marked = []
    for job in stale.only("pk", "language", "status", "dry_run"):
        with override(job.language or None):
            error = (_("The preview stopped: the process running it ended unexpectedly. Nothing was written; "
                       "preview again.") if job.dry_run else
                     _("The import stopped: the process running it ended unexpectedly. The batches it committed "
                       "are kept: resume it to import the rest, or undo it."))
        # Only if it is still as we found it: a heartbeat in the meantime means it lives.
        if ImportJob.objects.filter(pk=job.pk, status=job.status).filter(
                Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)).update(
                status=ImportStatus.INTERRUPTED, error=error, finished_at=now):
            marked.append(job.pk)
            log.warning("import %s marked interrupted (no heartbeat since %s)", job.pk, cutoff)
    # A queued undo whose worker died (or that never reached one) changed nothing: it is
    # one transaction. The job can be undone again.
    for job in ImportJob.objects.filter(undo_queued_at__isnull=False, undone_at__isnull=True).filter(
            Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, undo_queued_at__lt=cutoff)).only("pk", "language"):
        with override(job.language or None):
            error = _("The undo stopped before it finished: the process running it ended unexpectedly. Nothing "
                      "was changed; undo the import again.")
        if ImportJob.objects.filter(pk=job.pk, undo_queued_at__isnull=False, undone_at__isnull=True).filter(
                Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)).update(undo_queued_at=None,
                                                                                undo_error=error):
            marked.append(job.pk)
            log.warning("undo of import %s abandoned (no heartbeat since %s)", job.pk, cutoff)
    return marked


def import_uploads_expire(*, now: datetime.datetime | None = None) -> list[int]:
    """Delete the uploads of jobs left unrun for longer than the configured age; their ids."""
    now = now or timezone.now()
    waiting = Q(status__in=(ImportStatus.UPLOADING, ImportStatus.DRAFT, ImportStatus.PREVIEWED,
                            ImportStatus.INTERRUPTED)) | Q(
        status=ImportStatus.FAILED, dry_run=True)
    jobs = (ImportJob.objects.filter(waiting, file_expired_at__isnull=True, undo_queued_at__isnull=True)
            .annotate(last_used=Coalesce(F("finished_at"), F("created_at")))
            .filter(last_used__lt=now - upload_max_age()))
    expired = []
    for job in jobs.only("pk", "file_path", "status"):
        # Claimed like a run claims it: a job someone starts at this moment keeps its file.
        if ImportJob.objects.filter(pk=job.pk, status=job.status, file_expired_at__isnull=True).update(
                file_expired_at=now):
            file_remove(job)
            parts_delete(job.pk)  # a file that was still coming in parts (the partner API)
            expired.append(job.pk)
    cache_clean()  # this machine's copies of remote uploads that no run is reading any more
    return expired
