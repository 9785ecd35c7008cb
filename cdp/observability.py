"""Request ids: one per request, on every log line it writes and in the tasks it queues.

`RequestIdMiddleware` takes the caller's `X-Request-ID` when it is sane (a proxy or the
partner's own id), else makes one, and returns it in the response's `X-Request-ID`. The id
lives in a context variable that `LogContextFilter` copies onto every log record (with the
Celery task's id and name inside a worker). Celery carries it to the worker as a message
header (`before_task_publish`), and the worker puts it back in its context for the task's
run (`task_prerun`, undone by `task_postrun`) — see `connect_celery_signals`.
"""
from __future__ import annotations

import contextvars
import logging
import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
CELERY_HEADER = "cdp_request_id"
# What a caller may choose: short, and nothing a log reader or a header could misread.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("cdp_request_id", default=None)
task_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("cdp_task", default=None)


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_from_header(value: str | None) -> str:
    """The caller's id if it is sane, else a new one."""
    if value and _SANE.fullmatch(value):
        return value
    return request_id_new()


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestIdMiddleware:
    """First in the chain, so that every later middleware's and view's log lines carry it.

    The id stays set until the response is closed (`request_finished`), so that the access
    log line, which runserver and gunicorn write after the view returned, carries it too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        request_id_var.set(request.request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        return response


def forget_request_id(**_kwargs) -> None:
    """request_finished: the thread's next log lines belong to no request."""
    request_id_var.set(None)


class LogContextFilter(logging.Filter):
    """Adds request_id, task_id and task_name to every record ("-" outside one), for the
    formatters of settings.LOGGING. On the handler, so records of every logger get them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        task = task_var.get()
        record.task_id, record.task_name = task if task else ("-", "-")
        return True


# --- Celery ---------------------------------------------------------------------------

def _on_before_task_publish(headers=None, **_kwargs) -> None:
    """The queuing request's id travels in the message's headers."""
    request_id = request_id_var.get()
    if headers is not None and request_id and CELERY_HEADER not in headers:
        headers[CELERY_HEADER] = request_id


# task id → the context tokens to restore after the run (an eager task runs inside the
# request, whose id must come back afterwards).
_tokens: dict[str, tuple[contextvars.Token, contextvars.Token]] = {}


def _on_task_prerun(task_id=None, task=None, **_kwargs) -> None:
    request = task.request
    if getattr(request, CELERY_HEADER, None):
        request_id = getattr(request, CELERY_HEADER)
    elif request.is_eager:
        request_id = request_id_var.get()  # run inside the request (or task) that queued it
    else:
        request_id = None  # queued by no request: beat, the shell
    _tokens[task_id] = (request_id_var.set(request_id), task_var.set((task_id or "-", task.name)))


def _on_task_postrun(task_id=None, **_kwargs) -> None:
    tokens = _tokens.pop(task_id, None)
    if tokens is not None:
        request_token, task_token = tokens
        try:
            task_var.reset(task_token)
            request_id_var.reset(request_token)
        except ValueError:  # set in another context (a thread pool's other thread): just clear
            task_var.set(None)
            request_id_var.set(None)


def _on_setup_logging(**_kwargs) -> None:
    """The worker logs through settings.LOGGING (formats, redaction, request ids) instead of
    replacing the root logger's handlers with its own."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def connect_signals() -> None:
    """Called once per process from cdp/celery.py (imported with Django in every web and
    worker process): the Celery signals, request_finished, and the metrics' model signals."""
    from celery import signals
    from django.core.signals import request_finished

    from . import observability_metrics

    request_finished.connect(forget_request_id, weak=False, dispatch_uid="cdp.forget_request_id")
    observability_metrics.connect_model_signals()

    signals.setup_logging.connect(_on_setup_logging, weak=False, dispatch_uid="cdp.setup_logging")
    signals.before_task_publish.connect(_on_before_task_publish, weak=False, dispatch_uid="cdp.request_id_publish")
    signals.task_prerun.connect(_on_task_prerun, weak=False, dispatch_uid="cdp.request_id_prerun")
    signals.task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="cdp.request_id_postrun")
    observability_metrics.connect_celery_signals()
