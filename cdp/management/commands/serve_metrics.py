"""Serve this machine's metrics where no web process runs (a machine of Celery workers).

    PROMETHEUS_MULTIPROC_DIR=/run/cdp-metrics python manage.py serve_metrics --bind 10.0.0.5:9808

The workers write their task metrics to PROMETHEUS_MULTIPROC_DIR; this adds them up and
answers GET /metrics under the same rule as the web's endpoint (CDP_METRICS_TOKEN and/or
CDP_METRICS_ALLOWED_IPS; 404 with neither, 403 for anyone else). Queue depth and import rows
are the web's to report (they are the same seen from anywhere).
"""
from __future__ import annotations

import os
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.core.management.base import BaseCommand, CommandError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from cdp.observability_metrics import credentials_allowed


def metrics_app(environ, start_response):
    from django.conf import settings

    def answer(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8"):
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    if environ.get("PATH_INFO") != "/metrics" or not (settings.CDP_METRICS_TOKEN or settings.CDP_METRICS_ALLOWED_IPS):
        return answer("404 Not Found", b"Not Found\n")
    if not credentials_allowed(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", "")):
        return answer("403 Forbidden", b"Forbidden\n")
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return answer("200 OK", generate_latest(registry), CONTENT_TYPE_LATEST)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # scrapes every 15 s would fill the log
        pass


class Command(BaseCommand):
    help = "Serve the metrics of this machine's Celery workers (PROMETHEUS_MULTIPROC_DIR) at /metrics."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:9808", help="address:port (default 127.0.0.1:9808)")

    def handle(self, *args, bind, **options):
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            raise CommandError("Set PROMETHEUS_MULTIPROC_DIR to the folder the workers write their metrics to.")
        host, _, port = bind.rpartition(":")
        server = make_server(host or "127.0.0.1", int(port), metrics_app, handler_class=_Quiet)
        self.stdout.write(f"Serving the workers' metrics at http://{bind}/metrics")
        server.serve_forever()
