"""Celery tasks: take ids, call a service. Scheduled by beat (see CELERY_BEAT_SCHEDULE).

Queues (cdp/queues.py): imports and their undo on `imports`, the nightly recomputes on
`segments`, the rest on `default`. The recomputes and the housekeeping write what the data
says now, so running one twice, or retrying it after a database hiccup, changes nothing more."""
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from cdp.retrying import RETRY_TRANSIENT, TRANSIENT_ERRORS, soft_time_limit_of

from .metrics import metrics_recompute
from .models import InterestMapping
from .services.interests import interests_recompute
from .services.tags import tags_expire

log = logging.getLogger("cdp.imports")
COLLECT_COUNTS_KEEP_DAYS = 90  # the source pages chart 48 hours; older counts are kept for a season


@shared_task(**RETRY_TRANSIENT)
def recompute_all_metrics() -> int:
    """Nightly: lifecycle stages and recency scores move with the calendar."""
    return metrics_recompute()


@shared_task(**RETRY_TRANSIENT)
def recompute_interests(mapping_ids: list[int] | None = None) -> dict:
    """Nightly for every active mapping, or on demand for the given ones."""
    mappings = InterestMapping.objects.select_related("tag")
    mappings = mappings.filter(pk__in=mapping_ids) if mapping_ids is not None else mappings.filter(is_active=True)
    return interests_recompute(mappings=list(mappings))


@shared_task(**RETRY_TRANSIENT)
def recompute_recommendations() -> dict:
    """Nightly: the category similarity, then every customer's next-best categories."""
    from .services.recommendations import recommendations_refresh_all

    return recommendations_refresh_all()


@shared_task(**RETRY_TRANSIENT)
def expire_tags() -> int:
    return tags_expire()


@shared_task(bind=True, acks_late=True, max_retries=5)
def run_import(self, job_id: int, dry_run: bool = False, resume: bool = False) -> str:
    """A large import (or its preview) in the background (queue `imports`); the admin's job
    page follows its progress. Who runs it was stored on the job when it was queued.

    The job is claimed first: one conditional UPDATE moves it from queued to running, so of
    two deliveries of the message (or two workers) exactly one runs it, and the other, like
    a late redelivery, skips it. Only that claim is retried (a database hiccup, nothing done
    yet); once running, the import is not retried: batches already committed stay (they can
    be resumed or undone), and the job says why it stopped — "timed out" past its time limit."""
    from .importing.pipeline import import_run
    from .models import ImportJob, ImportStatus

    try:
        claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
            status=ImportStatus.PREVIEWING if dry_run else ImportStatus.RUNNING, heartbeat_at=timezone.now())
    except TRANSIENT_ERRORS as error:
        raise self.retry(exc=error, countdown=2 * 2 ** self.request.retries) from error
    if not claimed:  # run (or running) by another delivery of this message
        log.info("import %s is not queued (taken by another worker, or done); skipped", job_id)
        return "skipped"
    job = ImportJob.objects.get(pk=job_id)
    try:
        job = import_run(job, dry_run=dry_run, resume=resume)
    except SoftTimeLimitExceeded:  # after the pipeline's own handling (writing its report)
        _import_timed_out(job, soft_time_limit_of(self))
        return ImportStatus.INTERRUPTED
    if job.status == ImportStatus.FAILED and SoftTimeLimitExceeded.__name__ in job.error:
        _import_timed_out(job, soft_time_limit_of(self))
        return ImportStatus.INTERRUPTED
    return job.status


def _import_timed_out(job, limit: int | None) -> None:
    """Say plainly that the job ran out of time, and let it be resumed (what the pipeline
    committed is kept; an all-or-nothing import or a preview wrote nothing)."""
    from django.utils.translation import gettext as _
    from django.utils.translation import override

    from .models import ErrorPolicy, ImportJob, ImportStatus

    with override(job.language or None):
        hours = round((limit or 0) / 3600, 1)
        if job.dry_run or job.error_policy == ErrorPolicy.ALL_OR_NOTHING:
            error = _("Timed out: stopped after its time limit (%(hours)s h). Nothing was written; run it "
                      "again, or split the file.") % {"hours": hours}
        else:
            error = _("Timed out: stopped after its time limit (%(hours)s h). The batches it committed are "
                      "kept: resume it to import the rest, or undo it.") % {"hours": hours}
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.INTERRUPTED, error=error,
                                               finished_at=timezone.now())
    log.error("import %s timed out after %s s", job.pk, limit)


@shared_task(**RETRY_TRANSIENT)
def import_housekeeping() -> dict:
    """Every few minutes: jobs whose worker is gone are marked interrupted; uploads left
    unrun too long are deleted."""
    from .importing.housekeeping import import_jobs_interrupt_stale, import_uploads_expire

    return {"interrupted": import_jobs_interrupt_stale(), "expired": import_uploads_expire()}


@shared_task(acks_late=True, **RETRY_TRANSIENT)  # one transaction: a retry starts afresh
def undo_import(job_id: int, user_id: int | None = None) -> str:
    """A large import's undo, queued by the admin; the job page follows its progress."""
    from django.contrib.auth import get_user_model

    from cdp.actors import Actor

    from .importing.undo import import_undo_queued_run
    from .models import ImportJob

    job = ImportJob.objects.filter(pk=job_id, undo_queued_at__isnull=False, undone_at__isnull=True).first()
    if job is None:  # already done by an earlier delivery of this message
        return "skipped"
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    actor = Actor.staff(user) if user is not None else Actor.system("undo")
    return import_undo_queued_run(job=job, actor=actor).status


@shared_task(**RETRY_TRANSIENT)
def collect_housekeeping() -> dict:
    """Hourly: the tracking sources' debugger log trimmed to its newest rows per source and
    outcome, and their hourly counts older than COLLECT_COUNTS_KEEP_DAYS deleted."""
    import datetime

    from django.utils import timezone

    from .models import CollectHourlyCount
    from .services.collect import collect_log_trim

    cutoff = timezone.now() - datetime.timedelta(days=COLLECT_COUNTS_KEEP_DAYS)
    counts = CollectHourlyCount.objects.filter(hour__lt=cutoff).delete()[0]
    return {"log_rows": collect_log_trim(), "hourly_counts": counts}


@shared_task(**RETRY_TRANSIENT)
def maintain_event_partitions() -> list[str]:
    """Every few hours (PostgreSQL): this month's and the next months' event partitions
    exist before their first event arrives (CDP_EVENT_PARTITIONS_AHEAD). Idempotent."""
    from .partitions import partitions_ensure

    return partitions_ensure()


@shared_task(**RETRY_TRANSIENT)
def apply_event_retention() -> dict:
    """Nightly: events past their name's retention policy are deleted (whole partitions
    dropped where they can be), their metrics kept in rollups. A retried or repeated run
    finds nothing more to delete."""
    from .partitions import partitions_ensure
    from .retention import retention_apply

    partitions_ensure()  # a dropped month never leaves the current ones missing
    return retention_apply()


# The watched import sources' tasks live beside their service; imported here so the worker registers them.
from .import_sources import poll_import_source, poll_import_sources  # noqa: E402,F401
