"""Campaign work for Celery: the tick that runs what is due, and the drains that send.

The tick (beat, every CAMPAIGN_TICK_SECONDS) decides due runs, evaluates triggers,
reclaims batches of dead workers, finishes campaigns whose messages have all left, and
keeps CAMPAIGN_DRAINS_PER_DESTINATION drains busy on each destination with due messages.
A drain holds its slot in the cache while it works, so ticks never pile drains up.

Queues (cdp/queues.py): drains and launches on `deliveries`, the tick on `default`.
Retries: each message has its own (the outbox's attempts, backoff and dead letters), so a
drain is never retried by Celery — that would send twice what a destination already took
— and the tick is not either: it runs again in seconds. A launch (`campaign_run`) is
retried after a database hiccup: deciding a run is one transaction under the campaign's
row lock, and a decided run is no longer due, so a second run changes nothing.
"""
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache

from cdp.retrying import RETRY_TRANSIENT
from cdp.sql import connection_recover

from .results import results_due
from .services.lifecycle import runs_due
from .services.sending import campaigns_finish, deliveries_reclaim, destination_drain, due_destinations
from .services.triggers import triggers_evaluate

log = logging.getLogger(__name__)
SLOT_SECONDS = 90  # longer than a drain's budget: a slot held by a dead worker frees itself


def _slot_key(destination_id: int, slot: int) -> str:
    return f"campaigns:drain:{destination_id}:{slot}"


def drains_start(destination_ids=None) -> int:
    """Queue a drain for every free slot of each destination with due messages."""
    started = 0
    for destination_id in destination_ids if destination_ids is not None else due_destinations():
        for slot in range(settings.CAMPAIGN_DRAINS_PER_DESTINATION):
            if cache.add(_slot_key(destination_id, slot), 1, timeout=SLOT_SECONDS):
                drain.delay(destination_id, slot)
                started += 1
    return started


# Limits below the slot's expiry: a drain killed at the hard limit has its slot back soon after.
@shared_task(acks_late=False, soft_time_limit=SLOT_SECONDS - 15, time_limit=SLOT_SECONDS - 5)
def drain(destination_id: int, slot: int) -> dict:
    try:
        outcome = destination_drain(destination_id=destination_id, budget_seconds=settings.CAMPAIGN_DRAIN_SECONDS)
    except SoftTimeLimitExceeded:
        connection_recover()
        # Its claimed messages stay `sending` until deliveries_reclaim puts them back (or
        # dead-letters those a destination cannot de-duplicate): none is sent twice.
        log.error("drain of destination %s (slot %s) ran past its time limit and stopped", destination_id, slot)
        return {"timed_out": True}
    finally:
        cache.delete(_slot_key(destination_id, slot))
    if outcome.sent or outcome.retried or outcome.stopped:
        drains_start([destination_id])  # more may be due: keep going without waiting for the tick
    return outcome.__dict__


@shared_task
def tick() -> dict:
    ran = runs_due()
    triggered = triggers_evaluate()
    reclaimed = deliveries_reclaim()
    finished = campaigns_finish()
    drains = drains_start()
    results = results_due()
    return {"ran": ran, "triggered": triggered, "reclaimed": reclaimed, "finished": finished, "drains": drains,
            "results": results}


@shared_task(**RETRY_TRANSIENT)
def campaign_run(campaign_id: int) -> None:
    """Queued at launch for "now": decide without waiting for the tick, then send."""
    from .services.lifecycle import campaign_run_due

    if campaign_run_due(campaign_id=campaign_id):
        drains_start()
