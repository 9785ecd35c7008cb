"""Prometheus metrics: what the product does, at /metrics for the configured scraper only.

Requests by view and status and their latency come from django-prometheus's middleware
(`django_http_*`). The product's own metrics are here:

- counted where they happen: Celery task runs and durations (task signals, in the worker),
  segment calculations (a SegmentSnapshot is written per calculation), campaign delivery
  outcomes (`deliveries_record`, called where sending and receipts store them);
- read when scraped, so that they cost nothing in between and agree across processes: queue
  depth per Celery queue (from the broker) and rows imported per import kind (from the
  import jobs).

Several processes (gunicorn's workers, Celery's pool) each count their own share. With
PROMETHEUS_MULTIPROC_DIR set, prometheus-client's multiprocess mode keeps the counts in
files there and the endpoint adds them up; without it, each process serves its own.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterable

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

# Tasks run from milliseconds (a receipt) to an hour (a 10M-row import).
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

task_runs = Counter("cdp_celery_task_runs", "Celery task runs by task and final state "
                    "(SUCCESS, FAILURE, RETRY…).", ["task", "state"])
task_duration = Histogram("cdp_celery_task_duration_seconds", "Celery task run time by task.", ["task"],
                          buckets=TASK_BUCKETS)
segment_recompute = Histogram("cdp_segment_recompute_duration_seconds",
                              "How long a segment's calculation took (one per SegmentSnapshot).",
                              buckets=TASK_BUCKETS)
campaign_deliveries = Counter("cdp_campaign_deliveries", "Campaign messages by channel and outcome: sent, retry "
                              "(queued again), dead (given up), delivered and failed (the vendor's receipts).",
                              ["channel", "outcome"])

# --- Celery tasks ---------------------------------------------------------------------
_started: dict[str, float] = {}


def _on_task_prerun(task_id=None, **_kwargs) -> None:
    _started[task_id] = time.monotonic()


def _on_task_postrun(task_id=None, task=None, state=None, **_kwargs) -> None:
    started = _started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    task_runs.labels(name, state or "UNKNOWN").inc()
    if started is not None:
        task_duration.labels(name).observe(time.monotonic() - started)


def connect_celery_signals() -> None:
    from celery import signals

    signals.task_prerun.connect(_on_task_prerun, weak=False, dispatch_uid="cdp.metrics_prerun")
    signals.task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="cdp.metrics_postrun")


# --- Segments and campaigns -----------------------------------------------------------

def _on_segment_snapshot(instance=None, created=False, **_kwargs) -> None:
    if created and instance.duration_ms:
        segment_recompute.observe(instance.duration_ms / 1000)


def connect_model_signals() -> None:
    """By the model's label: the core app does not import the apps above it."""
    from django.db.models.signals import post_save

    post_save.connect(_on_segment_snapshot, sender="segments.SegmentSnapshot", weak=False,
                      dispatch_uid="cdp.metrics_segment_snapshot")


# A delivery's status stored by a send attempt → the outcome counted.
_SEND_OUTCOMES = {"sent": "sent", "queued": "retry", "dead": "dead"}


def deliveries_record(deliveries: Iterable) -> None:
    """Count the deliveries a send attempt just stored, by `channel` and outcome (from `status`)."""
    for delivery in deliveries:
        outcome = _SEND_OUTCOMES.get(delivery.status)
        if outcome:
            campaign_deliveries.labels(delivery.channel, outcome).inc()


def delivery_receipts_record(channel_kinds: Iterable[tuple[str, str]]) -> None:
    """Count new receipts saying delivered or failed, by channel (each receipt once)."""
    for channel, kind in channel_kinds:
        if kind in ("delivered", "failed"):
            campaign_deliveries.labels(channel, kind).inc()


# --- Read when scraped ----------------------------------------------------------------

def queue_depths() -> dict[str, int]:
    """Messages waiting per Celery queue, asked of the broker (filesystem, Redis, RabbitMQ)."""
    from .celery import app

    timeout = settings.CDP_BROKER_CHECK_TIMEOUT
    names = sorted(set(app.amqp.queues) | {app.conf.task_default_queue} | _routed_queues(app.conf.task_routes))
    depths = {}
    with app.connection_for_read(connect_timeout=timeout,
                                 transport_options={**app.conf.broker_transport_options,
                                                    "socket_timeout": timeout}) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        channel = connection.channel()
        for name in names:
            try:
                depths[name] = channel.queue_declare(name, passive=True).message_count
            except connection.channel_errors:
                depths[name] = 0  # not declared yet: nothing was ever queued there
                if connection.transport.driver_type == "amqp":  # RabbitMQ closed the channel
                    channel = connection.channel()
        channel.close()
    return depths


def _routed_queues(routes) -> set[str]:
    """The queue names of CELERY_TASK_ROUTES ({task: {"queue": name}} or {task: name}, or a list of such)."""
    tables = routes if isinstance(routes, (list, tuple)) else [routes or {}]
    names = set()
    for table in tables:
        for route in table.values() if isinstance(table, dict) else ():
            name = route.get("queue") if isinstance(route, dict) else route
            if isinstance(name, str):
                names.add(name)
    return names


class ScrapeTimeCollector:
    """Collected at each scrape: queue depths and rows imported."""

    def collect(self):
        up = GaugeMetricFamily("cdp_celery_broker_up", "1 when the broker answered the queue depth question.")
        depth = GaugeMetricFamily("cdp_celery_queue_depth", "Messages waiting in each Celery queue.",
                                  labels=["queue"])
        try:
            for name, count in queue_depths().items():
                depth.add_metric([name], count)
            up.add_metric([], 1)
        except Exception as error:  # noqa: BLE001 — the scrape still answers, with the broker down
            log.warning("queue depth unavailable: %s", type(error).__name__)
            up.add_metric([], 0)
        yield up
        yield depth
        try:
            yield from _import_rows()
        except Exception as error:  # noqa: BLE001 — the other metrics still answer without the database
            log.warning("import rows unavailable: %s", type(error).__name__)


def _import_rows():
    from django.apps import apps
    from django.db.models import Count, Sum

    ImportJob = apps.get_model("profiles", "ImportJob")  # by label: the core app imports no app above it

    rows = CounterMetricFamily("cdp_import_rows", "Rows read by imports (not previews), by import kind; "
                               "rate() gives rows per second.", labels=["kind"])
    running = GaugeMetricFamily("cdp_imports_running", "Imports running now, by kind.", labels=["kind"])
    totals = dict(ImportJob.objects.filter(dry_run=False).values_list("kind").annotate(total=Sum("rows_read")))
    busy = dict(ImportJob.objects.filter(status="running").values_list("kind").annotate(n=Count("id")))
    for kind in sorted(set(totals) | set(busy)):
        rows.add_metric([kind], totals.get(kind) or 0)
        running.add_metric([kind], busy.get(kind) or 0)
    yield rows
    yield running


class _ThisProcess:
    """The default registry (this process's metrics) as one collector of another registry."""

    def collect(self):
        return REGISTRY.collect()


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # every process's files, added up
    else:
        registry.register(_ThisProcess())
    registry.register(ScrapeTimeCollector())
    return registry


# --- The endpoint ---------------------------------------------------------------------

def scraper_allowed(request) -> bool:
    """CDP_METRICS_TOKEN (Authorization: Bearer …) and/or CDP_METRICS_ALLOWED_IPS; with
    neither configured the endpoint does not exist (404)."""
    if not settings.CDP_METRICS_TOKEN and not settings.CDP_METRICS_ALLOWED_IPS:
        raise Http404
    return credentials_allowed(request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", ""))


def credentials_allowed(authorization: str, address: str) -> bool:
    token, networks = settings.CDP_METRICS_TOKEN, settings.CDP_METRICS_ALLOWED_IPS
    if not token and not networks:
        return False
    if token:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return False
    if networks:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if not any(ip in ipaddress.ip_network(network, strict=False) for network in networks):
            return False
    return True


@never_cache
def metrics_view(request):
    if not scraper_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
