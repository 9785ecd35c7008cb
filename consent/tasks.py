"""Celery tasks of the consent app. Scheduled by beat (see CELERY_BEAT_SCHEDULE)."""
import logging

from celery import shared_task

from cdp.retrying import RETRY_TRANSIENT

from .selectors import consent_state_drift

logger = logging.getLogger("cdp.consent")


@shared_task(**RETRY_TRANSIENT)  # it only reads: a retry after a database hiccup is harmless
def check_consent_state() -> int:
    """Nightly: the current states must be what the ledger says. Drift is logged as an
    error (for the alerting) and left for staff to look at and repair
    (manage.py consent_check_state --repair): it means something wrote states around
    the services. Returns the number of drifted states."""
    drift = consent_state_drift()
    if drift:
        kinds = {kind: sum(1 for d in drift if d.kind == kind) for kind in ("missing", "different", "unexpected")}
        logger.error("consent states differ from the ledger: %s (run manage.py consent_check_state)", kinds)
    return len(drift)
