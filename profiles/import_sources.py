"""Celery tasks of the watched import sources (profiles/importing/sources.py), imported by
profiles.tasks so that the worker registers them. Beat runs `poll_import_sources` every
minute (CELERY_BEAT_SCHEDULE); the admin's "poll now" queues `poll_import_source` with force."""
from celery import shared_task


@shared_task
def poll_import_sources() -> list[int]:
    """Queue one poll per due source; the poll claims its source, so a source still being
    polled (or queued twice) is polled once."""
    from .importing.sources import import_sources_due

    due = import_sources_due()
    for source_id in due:
        poll_import_source.delay(source_id)
    return due


@shared_task(acks_late=True)
def poll_import_source(source_id: int, force: bool = False) -> dict | None:
    """Import a source's new files (None: not due, or another worker holds it)."""
    from .importing.sources import import_source_poll

    return import_source_poll(source_id, force=force)
