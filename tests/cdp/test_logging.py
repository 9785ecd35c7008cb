"""Structured logs: a request id on every line of a request and of the tasks it queues;
no phone, e-mail or API key in any line."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.urls import reverse

from cdp.logs import RedactingJsonFormatter, RedactingTextFormatter
from cdp.observability import LogContextFilter
from segments.models import Segment
from tests.factories import ProfileFactory


def _formatter(kind: str) -> logging.Formatter:
    options = {key: value for key, value in settings.LOGGING["formatters"][kind].items() if key != "()"}
    if kind == "json":
        return RedactingJsonFormatter(**options)
    return RedactingTextFormatter(options["format"])


class Captured(logging.Handler):
    """What the console handler of settings.LOGGING would write: its filter, its formatter."""

    def __init__(self, kind: str):
        super().__init__(level=logging.DEBUG)
        self.addFilter(LogContextFilter())
        self.setFormatter(_formatter(kind))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record):
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def captured():
    handler = Captured("json")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.django_db
def test_the_response_carries_the_callers_request_id_when_sane_else_a_new_one(client):
    assert client.get("/health/", HTTP_X_REQUEST_ID="lb-7f3a.42")["X-Request-ID"] == "lb-7f3a.42"
    for insane in ("two words", "x" * 200, "id\nInjected: yes", "", "<script>"):
        given = client.get("/health/", HTTP_X_REQUEST_ID=insane)["X-Request-ID"]
        assert given != insane and len(given) == 32
    first, second = client.get("/health/")["X-Request-ID"], client.get("/health/")["X-Request-ID"]
    assert first != second


@pytest.mark.django_db
def test_every_line_of_a_request_carries_its_id(client, captured):
    client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-404")
    lines = [json.loads(line) for line in captured.lines if "no-such-page" in line]
    assert lines and all(line["request_id"] == "req-404" for line in lines)
    # and after the request, lines belong to no request
    logging.getLogger("cdp.test").info("between requests")
    assert json.loads(captured.lines[-1])["request_id"] == "-"


@pytest.mark.django_db(transaction=True)
def test_a_task_queued_by_a_request_logs_with_the_requests_id(staff_client, captured, seeded_transactional_db):
    # given a segment
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai",
                                     definition={"field": "city", "op": "eq", "value": "上海"})
    # when "recompute now" is asked in a request with an id (the task runs eagerly, in the tests)
    response = staff_client.post(reverse("admin:segments_segment_changelist"), {
        "action": "recompute_now", "_selected_action": [segment.pk]}, HTTP_X_REQUEST_ID="recompute-1")
    assert response.status_code == 302
    # then the task's lines carry the request's id and the task's name
    task_lines = [json.loads(line) for line in captured.lines if '"segments.tasks.recompute_segment"' in line]
    assert task_lines, captured.lines
    assert {line["request_id"] for line in task_lines} == {"recompute-1"}
    assert all(line["task_id"] != "-" for line in task_lines)


@pytest.mark.parametrize("kind", ["text", "json"])
def test_exception_messages_task_arguments_and_keys_are_redacted_in_either_format(kind):
    # given lines as settings.LOGGING formats them, carrying personal data every way it travels
    handler = Captured(kind)
    log = logging.getLogger("cdp.test.redaction")
    log.addHandler(handler)
    try:
        try:
            raise ValueError("no customer with phone +86 139-1234-5678 or e-mail li.na@example.org")
        except ValueError:
            log.exception("lookup failed for %s", "13912345678")
        log.error("could not queue %s%r%r", "profiles.tasks.send", ("+8613912345678",), {"email": "li.na@example.org"})
        log.warning("partner called with Authorization: Api-Key AbCdEfGh.0123456789abcdefABCDEF0123456789")
        log.info("GET /api/v1/profiles/lookup/?email=li.na%40example.org&page=2")
    finally:
        log.removeHandler(handler)
    text = "\n".join(handler.lines)
    # then none of it is in the lines, which still say what happened
    for needle in ("1391234", "139-1234", "li.na", "example.org", "0123456789abcdef"):
        assert needle not in text, needle
    assert "ValueError: no customer with phone [redacted] or e-mail [redacted]" in text
    assert "could not queue profiles.tasks.send('[redacted]',){'email': '[redacted]'}" in text
    assert "lookup/?email=[redacted]&page=2" in text
    if kind == "json":
        assert all(json.loads(line)["logger"] == "cdp.test.redaction" for line in handler.lines)


def test_every_handler_that_writes_lines_redacts_them():
    """No logger reaches a stream through a handler of its own (Django's DEBUG console was one)."""
    loggers = [logging.getLogger()] + [logger for logger in logging.root.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    writers = [(logger.name, handler) for logger in loggers for handler in logger.handlers
               if isinstance(handler, logging.StreamHandler) and not type(handler).__module__.startswith("_pytest")]
    assert writers
    for name, handler in writers:
        assert isinstance(handler.formatter, (RedactingTextFormatter, RedactingJsonFormatter)), name


# --- End to end: gunicorn and a Celery worker, their logs read as a file -----------------

ROOT = Path(__file__).resolve().parents[2]
PHONE_TYPED, PHONE = "+86 139 1234 5678", "+8613912345678"
EMAIL = "Li.Na@Example.ORG"
WEB_PORT = 8171


def _wait(predicate, what: str, processes, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        for process, log in processes:
            if process.poll() is not None:
                pytest.fail(f"{what}: a process stopped:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen in {seconds} s:\n" + "\n".join(log.read_text()[-3000:] for _p, log in processes))


def _stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.worker
@pytest.mark.postgres
def test_end_to_end_logs_hold_no_personal_data_and_follow_the_request_into_the_worker(
        seeded_transactional_db, tmp_path, client, staff_user):
    from cdp.celery import app
    from cdp.models import Partner
    from tests.cdp.test_api_fixtures import key_for

    # given the web app under gunicorn and a worker, on the test database, logging JSON lines to files
    partner = Partner.objects.create(name="Shop backend", code="shop", purposes=["email_marketing"])
    key = key_for(partner)
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai",
                                     definition={"field": "city", "op": "eq", "value": "上海"})
    client.force_login(staff_user)
    session = client.cookies["sessionid"].value
    queue = app.amqp.router.route({}, "segments.tasks.recompute_segment")["queue"].name
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_", "CDP_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "cdp.settings", "DATABASE_URL": _test_database_url(), "CONN_MAX_AGE": "0",
                "CELERY_BROKER_URL": "filesystem://", "CDP_VAR_DIR": str(tmp_path / "var"),
                "CDP_LOG_FORMAT": "json", "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1"})
    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    with open(web_log, "wb") as out:
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:cdp.gunicorn_conf", "cdp.wsgi",
                                "-b", f"127.0.0.1:{WEB_PORT}", "-w", "1"],
                               cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    with open(worker_log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "cdp", "worker", "--loglevel=INFO",
                                   "--concurrency=1", "-Q", queue, "--without-gossip", "--without-mingle",
                                   "--without-heartbeat"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    processes = [(web, web_log), (worker, worker_log)]
    base = f"http://127.0.0.1:{WEB_PORT}"
    try:
        _wait(lambda: "ready." in worker_log.read_text(errors="replace"), "the worker starting", processes)

        def web_up():
            try:
                return requests.get(f"{base}/health/", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        _wait(web_up, "gunicorn starting", processes)

        # when a partner upserts a customer with a phone and an e-mail, and looks them up by phone
        api = {"Authorization": f"Api-Key {key}"}
        upsert = requests.post(f"{base}/api/v1/profiles/", json={
            "identities": [{"kind": "phone", "value": PHONE_TYPED}], "email": EMAIL, "name": "李娜"},
            headers={**api, "X-Request-ID": "e2e-upsert"}, timeout=10)
        assert upsert.status_code == 201, upsert.text
        assert upsert.headers["X-Request-ID"] == "e2e-upsert"
        bad = requests.post(f"{base}/api/v1/profiles/", json={
            "identities": [{"kind": "phone", "value": PHONE}], "email": f"{EMAIL} {PHONE}"}, headers=api, timeout=10)
        assert bad.status_code in (400, 422)
        lookup = requests.get(f"{base}/api/v1/profiles/lookup/", params={"phone": PHONE}, headers=api, timeout=10)
        assert lookup.status_code == 200, lookup.text
        requests.get(f"{base}/api/v1/profiles/lookup/", params={"email": EMAIL}, headers=api, timeout=10)
        # and staff search by phone in the admin and queue a segment's calculation
        browser = requests.Session()
        browser.cookies.set("sessionid", session)
        search = browser.get(f"{base}/admin/profiles/profile/", params={"q": PHONE_TYPED}, timeout=10)
        assert search.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', search.text)[1]
        queued = browser.post(f"{base}/admin/segments/segment/", data={
            "action": "recompute_now", "_selected_action": segment.pk, "csrfmiddlewaretoken": token},
            headers={"X-Request-ID": "e2e-recompute", "Referer": f"{base}/admin/segments/segment/"},
            timeout=10, allow_redirects=False)
        assert queued.status_code == 302, queued.text[:500]

        # then the worker's lines of that task carry the request's id
        def task_logged():
            return [line for line in _json_lines(worker_log)
                    if line.get("task_name") == "segments.tasks.recompute_segment"]

        _wait(lambda: any("succeeded" in line["message"] for line in task_logged()), "the task", processes)
        assert {line["request_id"] for line in task_logged()} == {"e2e-recompute"}
    finally:
        _stop(web)
        _stop(worker)

    # and every line the web app wrote is JSON, gunicorn's included, each access line with its request's id
    text = web_log.read_text() + worker_log.read_text()
    web_lines = web_log.read_text().splitlines()
    assert web_lines and len(_json_lines(web_log)) == len(web_lines)
    access = {(line["message"].split('"')[1], line["request_id"])
              for line in _json_lines(web_log) if line["logger"] == "gunicorn.access"}
    assert ("POST /api/v1/profiles/ HTTP/1.1", "e2e-upsert") in access
    assert ("POST /admin/segments/segment/ HTTP/1.1", "e2e-recompute") in access
    requested = {request for request, _id in access}
    assert "GET /api/v1/profiles/lookup/?phone=[redacted] HTTP/1.1" in requested
    assert "GET /api/v1/profiles/lookup/?email=[redacted] HTTP/1.1" in requested
    assert "GET /admin/profiles/profile/?q=[redacted] HTTP/1.1" in requested
    # and no line holds the phone, the e-mail or the API key, in any spelling
    prefix, secret = key.split(".")
    for needle in (PHONE, PHONE_TYPED, "13912345678", "139 1234", "139+1234", "1391234", EMAIL, EMAIL.lower(),
                   "Li.Na", "li.na", "Li.Na%40", secret, key):
        assert needle not in text, f"{needle!r} found in the logs"


def _test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _json_lines(path):
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
    return lines
