"""Celery tasks: take ids, call a service. Scheduled by beat (see CELERY_BEAT_SCHEDULE)."""
from celery import shared_task

from .metrics import metrics_recompute
from .models import InterestMapping
from .services.interests import interests_recompute
from .services.tags import tags_expire

COLLECT_COUNTS_KEEP_DAYS = 90  # the source pages chart 48 hours; older counts are kept for a season


@shared_task
def recompute_all_metrics() -> int:
    """Nightly: lifecycle stages and recency scores move with the calendar."""
    return metrics_recompute()


@shared_task
def recompute_interests(mapping_ids: list[int] | None = None) -> dict:
    """Nightly for every active mapping, or on demand for the given ones."""
    mappings = InterestMapping.objects.select_related("tag")
    mappings = mappings.filter(pk__in=mapping_ids) if mapping_ids is not None else mappings.filter(is_active=True)
    return interests_recompute(mappings=list(mappings))


@shared_task
def recompute_recommendations() -> dict:
    """Nightly: the category similarity, then every customer's next-best categories."""
    from .services.recommendations import recommendations_refresh_all

    return recommendations_refresh_all()


@shared_task
def expire_tags() -> int:
    return tags_expire()


@shared_task(acks_late=True)
def run_import(job_id: int, dry_run: bool = False, resume: bool = False) -> str:
    """A large import (or its preview) in the background; the admin's job page follows its
    progress. Not retried automatically: batches already committed stay (and can be undone),
    and the job says it failed. Who runs it was stored on the job when it was queued."""
    from .importing.pipeline import import_run
    from .models import ImportJob, ImportStatus

    job = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).first()
    if job is None:  # already run by an earlier delivery of this message
        return "skipped"
    return import_run(job, dry_run=dry_run, resume=resume).status


@shared_task
def import_housekeeping() -> dict:
    """Every few minutes: jobs whose worker is gone are marked interrupted; uploads left
    unrun too long are deleted."""
    from .importing.housekeeping import import_jobs_interrupt_stale, import_uploads_expire

    return {"interrupted": import_jobs_interrupt_stale(), "expired": import_uploads_expire()}


@shared_task(acks_late=True)
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


@shared_task
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


# The watched import sources' tasks live beside their service; imported here so the worker registers them.
from .import_sources import poll_import_source, poll_import_sources  # noqa: E402,F401
