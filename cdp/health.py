"""Liveness (/health/) and readiness (/ready/) for load balancers and orchestrators.

/health/ says the process answers and touches nothing else: a database outage must not get
every web process restarted. /ready/ runs django-health-check's checks concurrently — the
database, the cache, the broker, each file storage, and whether every migration this code
knows is applied — and answers JSON: 200 when all pass, 503 with the failing ones named.
The output names checks and fixed reasons only (no host, user or driver message: those go to
the log). Neither needs a login; neither is cached.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import os
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck
from health_check.checks import Cache, Storage
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

# What /ready/ says when a check fails: fixed words, never the exception's text.
FAILURES = {
    "database": "the database cannot be reached",
    "cache": "the cache cannot store and read back a value",
    "broker": "the task broker cannot be reached",
    "storage": "the file storage cannot write, read and delete a file",
    "migrations": "migrations are not applied (run manage.py migrate)",
}


def _timeout() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.CDP_READY_CHECK_TIMEOUT)


# The database checks run on one thread of their own that keeps its connection between
# probes (a new PostgreSQL connection per probe would cost more than the whole budget); the
# other checks share a small pool, also kept, so a probe starts no thread.
_database_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ready-db")
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ready")


def _on_database_thread(function):
    """Run `function(connection)` on the database thread, its connection opened (or reopened
    when it broke or outlived CONN_MAX_AGE) as a request would."""

    def call(alias):
        connection = connections[alias]
        connection.close_if_unusable_or_obsolete()
        try:
            return function(connection)
        except Exception:
            connection.close()  # the next probe starts afresh
            raise

    return call


def close_database_connection() -> None:
    """Close the database thread's connection (tests, before their database is dropped)."""
    _database_thread.submit(connections.close_all).result()


@dataclasses.dataclass
class Database(HealthCheck):
    """SELECT 1, given up after CDP_READY_CHECK_TIMEOUT."""

    alias: str = "default"

    @property
    def timeout(self):
        return _timeout()

    async def run(self):
        def select_one(connection):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone()

        try:
            result = await asyncio.get_running_loop().run_in_executor(
                _database_thread, _on_database_thread(select_one), self.alias)
        except DatabaseError as error:
            raise ServiceUnavailable(type(error).__name__) from error
        if result != (1,):
            raise ServiceUnavailable("unexpected answer")


# The broker check keeps one connection per process, on a thread of its own, and makes a
# round trip on it at every probe (a broken connection is noticed, and replaced once): a new
# AMQP connection per probe would cost the handshake and fill RabbitMQ's log.
_broker_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ready-broker")
_broker: tuple[str, object] | None = None  # (what it was opened for, kombu Connection); broker thread only


def _broker_forget() -> None:
    global _broker
    if _broker is not None:
        try:
            _broker[1].release()
        except Exception:  # noqa: BLE001 — already broken
            pass
    _broker = None


def _broker_round_trip(url: str, options: dict, seconds: float) -> None:
    from .celery import app

    global _broker
    opened_for = f"{url} {sorted(options.items())!r} {seconds}"
    if _broker is not None and _broker[0] != opened_for:
        _broker_forget()
    for attempt in (1, 2):
        fresh = _broker is None
        if fresh:
            connection = app.connection_for_write(url, connect_timeout=seconds, transport_options={
                **options, "socket_timeout": seconds, "socket_connect_timeout": seconds, "max_retries": 0})
            try:
                connection.ensure_connection(max_retries=0, timeout=seconds)
            except Exception:
                connection.release()
                raise
            _broker = (opened_for, connection)
        connection = _broker[1]
        try:
            channel = connection.default_channel  # Redis pings when it makes the channel
            if connection.transport.driver_type == "redis":
                channel.client.ping()
            elif connection.transport.driver_type == "amqp":
                channel.exchange_declare("amq.direct", "direct", passive=True)  # always there
            return
        except Exception:
            _broker_forget()
            if fresh or attempt == 2:  # a kept connection that broke gets one fresh try
                raise


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker answers a round trip (Redis, RabbitMQ) or its folders exist and are
    writable (the filesystem broker), within CDP_BROKER_CHECK_TIMEOUT."""

    @property
    def timeout(self):
        return datetime.timedelta(seconds=settings.CDP_BROKER_CHECK_TIMEOUT)

    async def run(self):
        from .celery import app

        options = app.conf.broker_transport_options or {}
        if app.conf.broker_url.startswith("filesystem://"):
            folders = {options.get("data_folder_in", "."), options.get("data_folder_out", ".")}
            if not all(os.path.isdir(folder) and os.access(folder, os.R_OK | os.W_OK | os.X_OK) for folder in folders):
                raise ServiceUnavailable("the broker's folder is missing or not writable")
            return
        try:
            await asyncio.get_running_loop().run_in_executor(
                _broker_thread, _broker_round_trip, app.conf.broker_url, dict(options),
                settings.CDP_BROKER_CHECK_TIMEOUT)
        except Exception as error:  # noqa: BLE001 — every client's own error types
            raise ServiceUnavailable(f"{type(error).__name__}") from error


_known_migrations: set[tuple[str, str]] | None = None


def _migrations_on_disk() -> set[tuple[str, str]]:
    """Every migration of this code (read from disk once per process: the code does not change)."""
    global _known_migrations
    if _known_migrations is None:
        from django.db.migrations.loader import MigrationLoader

        _known_migrations = set(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)
    return _known_migrations


@dataclasses.dataclass
class Migrations(HealthCheck):
    """Every migration on disk is recorded as applied (one read of django_migrations)."""

    alias: str = "default"

    @property
    def timeout(self):
        return _timeout()

    async def run(self):
        def applied(connection):
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT app, name FROM {connection.ops.quote_name('django_migrations')}")
                return set(cursor.fetchall())

        known = _migrations_on_disk()
        try:
            missing = known - await asyncio.get_running_loop().run_in_executor(
                _database_thread, _on_database_thread(applied), self.alias)
        except DatabaseError as error:
            raise ServiceUnavailable(type(error).__name__) from error
        if missing:
            raise ServiceUnavailable(f"{len(missing)} migrations not applied")


def ready_checks() -> list[tuple[str, HealthCheck]]:
    checks = [("database", Database()), ("migrations", Migrations()), ("cache", Cache()), ("broker", Broker())]
    storages = [alias for alias in settings.STORAGES if alias != "staticfiles"]
    checks += [("storage" if alias == "default" else f"storage:{alias}", Storage(alias=alias)) for alias in storages]
    return checks


@never_cache
def health(request):
    """Liveness: this process answers. Nothing else is touched."""
    return JsonResponse({"status": "ok"})


class ReadyView(HealthCheckView):
    """Readiness, as JSON: {"status": "ok"|"unavailable", "checks": {name: {status, ms[, error]}}}."""

    def get_executor(self):
        return contextlib.nullcontext(_pool)

    async def get(self, request, *args, **kwargs):
        named = ready_checks()
        with self.get_executor() as executor:
            results = await asyncio.gather(*(check.get_result(executor) for _name, check in named))
        checks = {}
        for (name, _check), result in zip(named, results):
            entry = {"status": "unavailable" if result.error else "ok", "ms": round(result.time_taken * 1000, 1)}
            if result.error:
                entry["error"] = FAILURES[name.partition(":")[0]]
            checks[name] = entry
        ok = all(entry["status"] == "ok" for entry in checks.values())
        return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
