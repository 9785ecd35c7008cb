"""Queueing Celery tasks from a request without betting the request on the broker.

A save that queues follow-up work (a segment's recalculation, a large import) has already
committed when the task is sent. If the broker cannot be reached then, the user must not
get a server error for a save that worked: the failure is logged, the user is told, and
the work is left to the periodic tasks (segments stale for their version, rule tags and
interest scores on their schedule) or, through `on_failure`, put back for the user.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)


def task_queue_after_commit(*, task, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
                            request: HttpRequest | None = None, sent_message: str | None = None,
                            failure_message: str | None = None, on_failure: Callable[[], None] | None = None) -> None:
    """Send `task` once the current transaction commits (at once outside a transaction).

    Once sent, a `request` gets `sent_message` (if any) as information. If sending fails,
    whatever the reason: log it, call `on_failure`, and with a `request` add a warning for
    the user (`failure_message`, or: the scheduler catches up). Never raises, so later
    commit callbacks still run and the request still answers."""

    def send() -> None:
        try:
            task.delay(*args, **(kwargs or {}))
        except Exception:  # noqa: BLE001 — whatever the broker did, the save stands
            log.exception("could not queue %s%r%r; left for the scheduler", task.name, tuple(args), kwargs or {})
            if on_failure is not None:
                try:
                    on_failure()
                except Exception:  # noqa: BLE001
                    log.exception("could not put back the work of %s", task.name)
            if request is not None:
                messages.warning(request, failure_message or _(
                    "The task queue cannot be reached right now. What you saved is kept; the scheduled "
                    "refresh does the work once the queue is back."), fail_silently=True)
        else:
            if request is not None and sent_message:
                messages.info(request, sent_message, fail_silently=True)

    transaction.on_commit(send)
