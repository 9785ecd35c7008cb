"""Structured logs: a request id on every line of a request and of the tasks it queues;
no phone, e-mail or API key in any line."""
from __future__ import annotations

import json
import logging

import pytest
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
