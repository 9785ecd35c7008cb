"""What a Celery task may retry by itself (failures that say nothing about the work), and
the time limit a run is under.

A lost database connection, a deadlock, SQLite's "database is locked", a broker that did
not answer: the same task a little later will most likely succeed. Anything else (bad
data, a bug) fails the same way again and is left for people to see, not retried.

Only tasks whose work is one transaction, or safe to repeat, use `RETRY_TRANSIENT`
(docs/background-work.md lists which and why).
"""
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

TRANSIENT_ERRORS = (OperationalError, InterfaceError, BrokerError)

# Celery's own retry: after 2, 4, 8, 16, 32 s (with jitter, each at most 5 minutes), then it fails.
RETRY_TRANSIENT = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}


def soft_time_limit_of(task) -> int | None:
    """The soft limit this run is under. The limits travel in the message, set from the
    settings of whoever queued it; without them, the task's own (the worker's settings)."""
    limits = getattr(task.request, "timelimit", None) or (None, None)
    return limits[1] or task.soft_time_limit or task.app.conf.task_soft_time_limit
