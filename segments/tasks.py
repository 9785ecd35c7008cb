"""Celery tasks of the segments app (queue `segments`; the scheduler on `default`).

Calculations are claimed and backed off in segments/scheduling.py: a segment is never
queued again while it waits or runs, never calculated twice at once, and one that keeps
failing is tried again after 2, 4, 8 … minutes instead of every minute."""
import datetime
import logging
from contextlib import nullcontext

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError

from cdp.retrying import RETRY_TRANSIENT, soft_time_limit_of
from cdp.sql import is_timeout, statement_timeout

from .models import Segment
from .rule_tags import rule_tags_refresh
from .scheduling import (
    segment_calculation_claim, segment_calculation_failed, segment_calculation_released, segment_calculation_succeeded,
    segment_queue_claim, segment_queue_release, segments_abandoned_fail, segments_due,
)
from .services import segment_recompute

log = logging.getLogger("cdp.segments")

__all__ = ["recompute_segment", "recompute_due_segments", "refresh_rule_tags", "segments_due", "segment_queue"]


@shared_task(bind=True)
def recompute_segment(self, segment_id: int, version: int | None = None, if_stale: bool = False,
                      requested_at: float | None = None) -> int | None:
    """Queued on save (with the saved version), on demand and by the scheduler. Does nothing
    when the segment changed since `version`, when another calculation holds it, when
    `if_stale` and that version is calculated by now, or when a calculation that started
    after `requested_at` (a timestamp) has finished: a second delivery changes nothing.

    Not retried by Celery: a failure (a time limit included) is recorded on the segment and
    the scheduler tries again after the segment's backoff."""
    calculated = Segment.objects.filter(pk=segment_id, calculated_version=version)
    if if_stale and calculated.exists():
        return None
    if requested_at is not None and calculated.filter(
            last_calculated_at__gte=datetime.datetime.fromtimestamp(requested_at, tz=datetime.UTC)).exists():
        return None
    started = timezone.now()
    if not segment_calculation_claim(segment_id=segment_id, now=started):
        log.info("segment %s is being calculated by another worker; this request is left to it", segment_id)
        return None
    limit = soft_time_limit_of(self)
    try:
        # The soft time limit interrupts Python between statements, not a statement waiting
        # in the database: the same limit on each statement stops those. One transaction
        # around the service's, so that its error bookkeeping goes with it (ours follows).
        with transaction.atomic(), (statement_timeout(limit * 1000) if limit else nullcontext()):
            snapshot = segment_recompute(segment_id=segment_id, version=version)
    except BaseException as error:
        timed_out = _timed_out(error)
        if timed_out:
            message = _("Timed out: the calculation was stopped after %(seconds)s seconds (the time limit). "
                        "Nothing was changed; it is tried again later.") % {"seconds": limit}
        else:
            message = str(error) or type(error).__name__
        segment_calculation_failed(segment_id=segment_id, error=message, now=timezone.now())
        if timed_out:
            return None  # recorded on the segment; the task itself ends cleanly
        raise
    if snapshot is None:
        segment_calculation_released(segment_id=segment_id)
        return None
    segment_calculation_succeeded(segment_id=segment_id)
    return snapshot.member_count


def _timed_out(error: BaseException) -> bool:
    """The soft time limit, the statement timeout, or what either broke on its way out."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, SoftTimeLimitExceeded) or (isinstance(error, Exception) and is_timeout(error)):
            return True
        seen.add(id(error))
        error = error.__context__
    return False


def segment_queue(segment: Segment, *, now: datetime.datetime, if_stale: bool = False,
                  retry_now: bool = False) -> bool:
    """Claim the segment for the queue and send its calculation; False when it is queued or
    calculating already (or waiting out a failure, unless `retry_now`). If the broker does
    not take the message, the claim is released and the error raised."""
    if not segment_queue_claim(segment_id=segment.pk, now=now, retry_now=retry_now):
        return False
    try:
        recompute_segment.delay(segment.pk, segment.version, if_stale=if_stale, requested_at=now.timestamp())
    except Exception:
        segment_queue_release(segment_id=segment.pk)
        raise
    return True


@shared_task
def recompute_due_segments() -> int:
    """Every minute (beat): queue the dynamic segments not calculated for their current
    version (their save could not queue it, or it failed and its wait is over), then those
    whose refresh interval has passed. A segment already queued or calculating is left
    alone. Not retried: the next minute's run is the retry. Returns how many were queued."""
    now = timezone.now()
    segments_abandoned_fail(now=now)
    stale, due = segments_due(now)
    queued = 0
    for segment in stale + due:
        try:
            queued += segment_queue(segment, now=now, if_stale=segment in stale)
        except BrokerError:  # the broker is down: the next minute tries them all again
            log.exception("could not queue the calculation of segment %s; the next round tries again", segment.pk)
            break
        except Exception:  # noqa: BLE001 — run in place (eager): recorded on the segment, the others go on
            log.exception("the calculation of segment %s failed", segment.pk)
    return queued


@shared_task(**RETRY_TRANSIENT)
def refresh_rule_tags(tag_ids: list[int] | None = None) -> dict:
    """Every CDP_RULE_TAGS_EVERY_SECONDS (beat) for all active rule tags; queued with the
    saved tag's id after a rule is saved, and by the admin's "refresh now". A refresh
    writes what the rules say now, so a second run (or a retry) changes nothing more."""
    results = rule_tags_refresh(tag_ids=tag_ids)
    return {
        "refreshed": sum(1 for result in results if not result.error),
        "failed": [result.tag_id for result in results if result.error],
    }
