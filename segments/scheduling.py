"""When a dynamic segment is calculated, by whom, and what happens when it fails.

Two claims, each one conditional UPDATE (atomic on PostgreSQL and SQLite alike, so two
schedulers or two workers never both win):

* queueing sets `queued_at` only if the segment is neither queued nor calculating, so the
  scheduler never puts a segment in the queue again while it waits there or runs;
* calculating sets `calculating_since` only if no other calculation holds it, so a
  second delivery of the message (or a second message) does nothing.

A claim left by a worker that died is taken over once it is older than the task's hard
time limit (`CDP_SEGMENT_CLAIM_STALE_SECONDS`). A failed calculation releases its claim,
counts one more failure in a row and waits before the next automatic attempt: 2, 4, 8 …
minutes, capped (`CDP_SEGMENT_RETRY_*`); a success clears the count. Staff can retry at
once from the segment's page.
"""
from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F, Q
from django.utils.translation import gettext as _

from .models import Segment

log = logging.getLogger("cdp.segments")


def claim_stale_after() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.CDP_SEGMENT_CLAIM_STALE_SECONDS)


def _busy(now: datetime.datetime) -> Q:
    """Queued or calculating, and that claim not yet stale."""
    cutoff = now - claim_stale_after()
    return Q(queued_at__gte=cutoff) | Q(calculating_since__gte=cutoff)


def retry_delay(failures_in_a_row: int) -> datetime.timedelta:
    """The wait after the n-th failure in a row: base × 2^(n-1), at most the cap."""
    seconds = settings.CDP_SEGMENT_RETRY_BASE_SECONDS * 2 ** max(0, min(failures_in_a_row, 30) - 1)
    return datetime.timedelta(seconds=min(seconds, settings.CDP_SEGMENT_RETRY_MAX_SECONDS))


def segments_due(now: datetime.datetime) -> tuple[list[Segment], list[Segment]]:
    """The scheduler's choice (also `manage.py segment_recompute --due`): the dynamic segments
    neither queued nor calculating, and not waiting out a failure, that are not calculated
    for their current version (the oldest first), then those whose refresh interval has
    passed, the longest-waiting first."""
    ready = (Segment.objects.filter(kind=Segment.Kind.DYNAMIC).exclude(_busy(now))
             .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)))
    stale = list(ready.filter(Q(calculated_version__isnull=True) | ~Q(calculated_version=F("version")))
                 .order_by("created_at", "pk"))
    due = [
        segment for segment in ready.filter(refresh_every_minutes__isnull=False).exclude(
            pk__in=[segment.pk for segment in stale]).order_by(F("last_calculated_at").asc(nulls_first=True), "pk")
        if segment.last_calculated_at is None
        or (now - segment.last_calculated_at).total_seconds() >= segment.refresh_every_minutes * 60
    ]
    return stale, due


def segment_queue_claim(*, segment_id: int, now: datetime.datetime, retry_now: bool = False) -> bool:
    """Mark the segment queued unless it is queued or calculating already. The scheduler
    also leaves one waiting out a failure; `retry_now` (staff) does not wait."""
    eligible = Segment.objects.filter(pk=segment_id, kind=Segment.Kind.DYNAMIC).exclude(_busy(now))
    if not retry_now:
        eligible = eligible.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    return bool(eligible.update(queued_at=now, **({"next_attempt_at": None} if retry_now else {})))


def segment_queue_release(*, segment_id: int) -> None:
    """The message could not be sent: the segment may be queued again."""
    Segment.objects.filter(pk=segment_id).update(queued_at=None)


def segment_calculation_claim(*, segment_id: int, now: datetime.datetime) -> bool:
    """Take the segment for one calculation, unless another holds it (and is not stale)."""
    cutoff = now - claim_stale_after()
    free = Q(calculating_since__isnull=True) | Q(calculating_since__lt=cutoff)
    return bool(Segment.objects.filter(free, pk=segment_id).update(calculating_since=now, queued_at=None))


def segments_abandoned_fail(*, now: datetime.datetime) -> list[int]:
    """Calculations whose worker vanished (killed at the hard time limit, out of memory, a
    restart) never release their claim: once it is stale, count it as a failure, so that a
    segment that keeps killing its worker backs off like any other failure."""
    cutoff = now - claim_stale_after()
    failed = []
    for segment_id in Segment.objects.filter(calculating_since__lt=cutoff).values_list("pk", flat=True):
        if Segment.objects.filter(pk=segment_id, calculating_since__lt=cutoff).update(calculating_since=None):
            segment_calculation_failed(segment_id=segment_id, now=now, error=_(
                "The worker calculating it stopped without finishing (killed at the hard time limit, out of "
                "memory, or restarted). It is tried again later."))
            failed.append(segment_id)
    return failed


def segment_calculation_succeeded(*, segment_id: int) -> None:
    Segment.objects.filter(pk=segment_id).update(calculating_since=None, failures_in_a_row=0, next_attempt_at=None)


def segment_calculation_released(*, segment_id: int) -> None:
    """Nothing calculated (the segment changed in the meantime): only the claim goes."""
    Segment.objects.filter(pk=segment_id).update(calculating_since=None)


def segment_calculation_failed(*, segment_id: int, error: str, now: datetime.datetime) -> datetime.datetime | None:
    """Release the claim, count the failure and set the next attempt; the error is kept on
    the segment (its page shows it) and logged. Returns the next attempt's time.

    Runs after whatever broke the calculation, possibly a connection left mid-query by a
    time limit: if the first write fails, it is written again on a fresh connection."""
    for attempt in (1, 2):
        try:
            return _failure_record(segment_id, error, now)
        except Exception:  # noqa: BLE001 — a broken connection: once more on a new one
            if attempt == 2:
                log.exception("could not record the failure of segment %s", segment_id)
                return None
            connection.close()
            close_old_connections()
    return None


def _failure_record(segment_id: int, error: str, now: datetime.datetime) -> datetime.datetime | None:
    Segment.objects.filter(pk=segment_id).update(
        calculating_since=None, failures_in_a_row=F("failures_in_a_row") + 1, last_failed_at=now,
        last_error=error[:2000], error_count=F("error_count") + 1)
    failures = Segment.objects.filter(pk=segment_id).values_list("failures_in_a_row", flat=True).first()
    if failures is None:  # deleted meanwhile
        return None
    next_attempt = now + retry_delay(failures)
    Segment.objects.filter(pk=segment_id).update(next_attempt_at=next_attempt)
    log.error("segment %s: calculation failed (%s in a row), next attempt at %s: %s",
              segment_id, failures, next_attempt.isoformat(), error[:500])
    return next_attempt
