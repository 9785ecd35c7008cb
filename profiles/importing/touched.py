"""The customers an import created or updated, for the job page's links and the customer
list's "import" filter.

Read from what undo keeps, never from the timeline's JSON params (not indexed): the
batches' id ranges of created customers (primary-key ranges), and for updated customers
the changed fields (indexed by job and customer) plus the identities and tags the import
added to existing customers (primary-key ranges, then the row's customer). An event
import's customers are its events' customers, a consent import's those of its ledger
entries. Each is one indexed condition on the customer list's query.
"""
from __future__ import annotations

from django.db.models import Q, QuerySet

from ..models import Event, Identity, ImportChange, ImportJob, ImportKind, ProfileTag
from ..services.bulk import ranges_q

CREATED, UPDATED, EVENTS = "created", "updated", "events"


def _ranges(job: ImportJob, field: str) -> list[list[int]]:
    return [pair for ranges in job.batches.values_list(field, flat=True) for pair in ranges]


def import_touched_q(job: ImportJob, action: str) -> Q | None:
    """A Q on Profile for the customers `job` created (CREATED) or updated (UPDATED): for
    event and consent imports, UPDATED is the customers whose events or consent it
    recorded. None when the job wrote nothing of that kind (a preview, an undone job)."""
    if job.dry_run or job.undone_at:
        return None
    if job.kind == ImportKind.PROFILES:
        if action == CREATED:
            ranges = _ranges(job, "profile_ids")
            return ranges_q(ranges) if ranges else None
        if action != UPDATED:
            return None
        q = Q(pk__in=ImportChange.objects.filter(job=job).values("profile_id"))
        identities = _ranges(job, "identity_ids")
        if identities:
            q |= Q(pk__in=Identity.objects.filter(ranges_q(identities)).values("profile_id"))
        tags = _ranges(job, "profile_tag_ids")
        if tags:
            q |= Q(pk__in=ProfileTag.objects.filter(ranges_q(tags)).values("profile_id"))
        return q
    if action != UPDATED:
        return None
    if job.kind == ImportKind.EVENTS:
        ranges = _ranges(job, "event_ids")
        return Q(pk__in=Event.objects.filter(ranges_q(ranges)).values("profile_id")) if ranges else None
    if job.kind == ImportKind.CONSENT:
        from .consent import _hooks, consent_available

        ranges = _ranges(job, "consent_ids")
        if not ranges or not consent_available():
            return None
        return Q(pk__in=_hooks["records"](ranges_q(ranges)).values("profile_id"))
    return None


def import_events_q(job: ImportJob) -> Q | None:
    """A Q on Event for the events an event import added (primary-key ranges)."""
    if job.kind != ImportKind.EVENTS or job.dry_run or job.undone_at:
        return None
    ranges = _ranges(job, "event_ids")
    return ranges_q(ranges) if ranges else None


def import_touched(job: ImportJob, action: str, profiles: QuerySet) -> QuerySet:
    """`profiles` narrowed to the customers `job` created or updated (none if it wrote none)."""
    q = import_touched_q(job, action)
    return profiles.filter(q) if q is not None else profiles.none()


def import_touched_counts(job: ImportJob) -> dict[str, int]:
    """{CREATED: n, UPDATED: m, EVENTS: e}: distinct customers (and events), as they are now (an erased customer
    still counts; one merged away does not exist any more)."""
    from ..models import Profile

    counts = {}
    for action in (CREATED, UPDATED):
        q = import_touched_q(job, action)
        counts[action] = Profile.objects.filter(q).count() if q is not None else 0
    q = import_events_q(job)
    counts[EVENTS] = Event.objects.filter(q).count() if q is not None else 0
    return counts
