"""Liveness (/health/) and readiness (/ready/): what each says, and how /ready/ fails."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection, connections

from cdp.celery import app
from cdp.health import close_database_connection
from tests.worker.brokers import celery_through

# A port of this test's range where nothing listens.
CLOSED_PORT = 8178
BROKERS = {
    "redis": os.environ.get("CDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("CDP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
CHECKS = {"database", "migrations", "cache", "broker", "storage"}


@pytest.fixture(autouse=True)
def fresh_database_thread():
    """/ready/ keeps a connection on a thread of its own: none is left for the next test
    (or for the test database's removal)."""
    close_database_connection()
    yield
    close_database_connection()


def _closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def test_health_answers_without_a_login_and_without_the_database(client):
    # (no django_db mark: any database access would raise)
    response = client.get("/health/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_ready_reports_each_check(client):
    response = client.get("/ready/")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and set(body["checks"]) == CHECKS
    assert all(check["status"] == "ok" and check["ms"] >= 0 for check in body["checks"].values())
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_ready_fails_clearly_when_the_database_is_down(client, monkeypatch):
    # given a database that cannot be reached (a closed port; on SQLite a file that cannot be opened)
    assert _closed(CLOSED_PORT)
    database = connections.settings["default"]
    if connection.vendor == "postgresql":
        monkeypatch.setitem(database, "HOST", "127.0.0.1")
        monkeypatch.setitem(database, "PORT", str(CLOSED_PORT))
    else:
        monkeypatch.setitem(database, "NAME", "/nonexistent/folder/db.sqlite3")
    # when readiness is asked
    response = client.get("/ready/")
    # then it says unavailable, names the database (and the migrations it cannot read), and only those
    body = response.json()
    assert response.status_code == 503 and body["status"] == "unavailable"
    assert body["checks"]["database"] == {"status": "unavailable", "ms": body["checks"]["database"]["ms"],
                                          "error": "the database cannot be reached"}
    assert body["checks"]["migrations"]["status"] == "unavailable"
    assert {name for name, check in body["checks"].items() if check["status"] == "ok"} == {"cache", "broker", "storage"}
    # and nothing of the connection leaks into the answer
    assert str(CLOSED_PORT) not in response.text and "nonexistent" not in response.text


@pytest.mark.django_db
def test_ready_fails_quickly_when_the_broker_is_down(client):
    assert _closed(CLOSED_PORT)
    for url in (f"redis://127.0.0.1:{CLOSED_PORT}/0", f"amqp://guest:guest@127.0.0.1:{CLOSED_PORT}//"):
        with celery_through(url):
            response = client.get("/ready/")
        body = response.json()
        assert response.status_code == 503, url
        assert body["checks"]["broker"]["status"] == "unavailable"
        assert body["checks"]["broker"]["error"] == "the task broker cannot be reached"
        assert body["checks"]["broker"]["ms"] < 1500  # CDP_BROKER_CHECK_TIMEOUT, not a client's default
        assert str(CLOSED_PORT) not in response.text and "guest" not in response.text


@pytest.mark.django_db
def test_ready_fails_when_the_filesystem_brokers_folder_is_missing(client, tmp_path):
    folder = str(tmp_path / "gone")
    with celery_through("filesystem://", {"data_folder_in": folder, "data_folder_out": folder}):
        body = client.get("/ready/").json()
    assert body["checks"]["broker"]["status"] == "unavailable"
    with celery_through("filesystem://", {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path)}):
        assert client.get("/ready/").json()["checks"]["broker"]["status"] == "ok"


@pytest.mark.parametrize("broker", list(BROKERS))
@pytest.mark.django_db
def test_ready_reaches_the_real_brokers(client, broker):
    url = BROKERS[broker]
    if not _reachable(url):
        if os.environ.get("CDP_BROKERS_REQUIRED") == "1":
            pytest.fail(f"{broker} is not running (CDP_BROKERS_REQUIRED=1)")
        pytest.skip(f"{broker} is not running")
    with celery_through(url):
        body = client.get("/ready/").json()
    assert body["checks"]["broker"]["status"] == "ok", body


@pytest.mark.django_db(transaction=True)
def test_ready_fails_while_a_migration_is_not_applied(client):
    # given a migration of this code that the database has not recorded
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name, applied FROM django_migrations WHERE app = 'cdp' ORDER BY name DESC LIMIT 1")
        app_label, name, applied = cursor.fetchone()
        cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", [app_label, name])
    try:
        body = client.get("/ready/").json()
        assert body["status"] == "unavailable"
        assert body["checks"]["migrations"] == {"status": "unavailable", "ms": body["checks"]["migrations"]["ms"],
                                                "error": "migrations are not applied (run manage.py migrate)"}
        assert body["checks"]["database"]["status"] == "ok"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)",
                           [app_label, name, applied])
    assert client.get("/ready/").json()["status"] == "ok"


def test_the_broker_check_times_out_on_a_broker_that_never_answers(client, settings, db):
    # given a port that accepts the connection but never speaks (a hung broker)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 8177))
        silent.listen()
        settings.CDP_BROKER_CHECK_TIMEOUT = 0.3
        with celery_through("redis://127.0.0.1:8177/0"):
            body = client.get("/ready/").json()
    assert body["checks"]["broker"]["status"] == "unavailable"
    assert body["checks"]["broker"]["ms"] < 1500
    assert app.conf.broker_url  # the app's own settings came back


@pytest.mark.django_db
def test_the_kept_broker_connection_does_not_hide_an_outage(client, tmp_path):
    """/ready/ keeps its broker connection between probes: a broker that goes away (and
    comes back) is still noticed at the next probe."""
    port = 8176
    assert _closed(port)

    def start():
        process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", str(tmp_path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while _closed(port):
            assert time.monotonic() < deadline and process.poll() is None, "redis-server did not start"
            time.sleep(0.05)
        return process

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = start()
    try:
        with celery_through(f"redis://127.0.0.1:{port}/0"):
            assert client.get("/ready/").json()["checks"]["broker"]["status"] == "ok"
            server.terminate()
            server.wait()
            assert client.get("/ready/").json()["checks"]["broker"]["status"] == "unavailable"
            server = start()
            assert client.get("/ready/").json()["checks"]["broker"]["status"] == "ok"
    finally:
        server.terminate()
        server.wait()
