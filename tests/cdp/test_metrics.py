"""/metrics: only the configured scraper reads it; what it counts (requests, tasks, queues,
imports, segment calculations, campaign deliveries), also across processes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from campaigns.destinations import ReceiptInput, delivery_key
from campaigns.models import Campaign, Delivery
from campaigns.services.receipts import receipts_record
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain
from cdp.celery import app
from profiles.models import ImportJob
from profiles.tasks import import_housekeeping
from segments.models import Segment
from tests.campaigns.conftest import campaign_for, consenting, receiver, segment_of, webhook  # noqa: F401
from tests.factories import ProfileFactory
from tests.worker.brokers import celery_through

TOKEN = "scrape-3f9a1c7e"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scraper(settings, client):
    settings.CDP_METRICS_TOKEN = TOKEN

    def scrape() -> dict[tuple[str, tuple], float]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content[:500]
        assert response["Content-Type"].startswith("text/plain")
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(response.content.decode())
                for sample in family.samples}

    return scrape


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
def test_without_a_token_or_addresses_configured_there_is_no_endpoint(client, settings):
    settings.CDP_METRICS_TOKEN, settings.CDP_METRICS_ALLOWED_IPS = "", []
    assert client.get("/metrics").status_code == 404


@pytest.mark.django_db
def test_the_endpoint_refuses_anyone_without_the_token(client, settings):
    settings.CDP_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@pytest.mark.django_db
def test_an_address_allow_list_alone_or_with_the_token(client, settings):
    settings.CDP_METRICS_TOKEN, settings.CDP_METRICS_ALLOWED_IPS = "", ["10.1.0.0/16", "192.0.2.7"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.4.20").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    settings.CDP_METRICS_TOKEN = TOKEN
    assert client.get("/metrics", REMOTE_ADDR="10.1.4.20").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.4.20", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@pytest.mark.django_db
def test_requests_are_counted_by_view_and_status_with_their_latency(client, scraper):
    before = scraper()
    client.get("/health/")
    client.get("/health/")
    client.get("/no-such-page/")
    after = scraper()
    by_status = "django_http_responses_total_by_status_view_method_total"
    assert value(after, by_status, status="200", view="health", method="GET") - value(
        before, by_status, status="200", view="health", method="GET") == 2
    assert value(after, by_status, status="404", view="<unnamed view>", method="GET") > value(
        before, by_status, status="404", view="<unnamed view>", method="GET")
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert value(after, latency, view="health", method="GET") - value(before, latency, view="health", method="GET") == 2


@pytest.mark.django_db(transaction=True)
def test_task_runs_durations_and_segment_calculations(client, scraper, staff_user, seeded_transactional_db):
    before = scraper()
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai",
                                     definition={"field": "city", "op": "eq", "value": "上海"})
    client.force_login(staff_user)
    client.post(reverse("admin:segments_segment_changelist"), {"action": "recompute_now",
                                                               "_selected_action": [segment.pk]})
    after = scraper()
    task = "segments.tasks.recompute_segment"
    runs = "cdp_celery_task_runs_total"
    assert value(after, runs, task=task, state="SUCCESS") - value(before, runs, task=task, state="SUCCESS") == 1
    durations = "cdp_celery_task_duration_seconds_count"
    assert value(after, durations, task=task) - value(before, durations, task=task) == 1
    calculated = "cdp_segment_recompute_duration_seconds_count"
    assert value(after, calculated) - value(before, calculated) == 1


@pytest.mark.django_db
def test_a_failing_task_is_counted_as_a_failure(scraper):
    from profiles.tasks import run_import

    before = scraper()
    run_import.apply(args=("not-a-number",), throw=False)  # an id that cannot be: the task fails
    after = scraper()
    runs = "cdp_celery_task_runs_total"
    assert value(after, runs, task=run_import.name, state="FAILURE") - value(
        before, runs, task=run_import.name, state="FAILURE") == 1
    import_housekeeping.apply()
    assert value(scraper(), runs, task=import_housekeeping.name, state="SUCCESS") >= 1


@pytest.mark.django_db
def test_rows_imported_are_read_by_import_kind_when_scraped(scraper):
    ImportJob.objects.create(kind="profiles", file_name="a.csv", rows_read=1200, status="done")
    ImportJob.objects.create(kind="profiles", file_name="b.csv", rows_read=300, status="running")
    ImportJob.objects.create(kind="events", file_name="c.csv", rows_read=5000, status="done")
    ImportJob.objects.create(kind="events", file_name="d.csv", rows_read=9999, status="previewed", dry_run=True)
    samples = scraper()
    assert value(samples, "cdp_import_rows_total", kind="profiles") == 1500
    assert value(samples, "cdp_import_rows_total", kind="events") == 5000  # previews do not count
    assert value(samples, "cdp_imports_running", kind="profiles") == 1


@pytest.mark.django_db
def test_queue_depth_per_queue_from_the_broker(scraper, tmp_path):
    folder = str(tmp_path)
    with celery_through("filesystem://", {"data_folder_in": folder, "data_folder_out": folder}):
        for _ in range(3):
            import_housekeeping.apply_async()  # no worker: they wait
        samples = scraper()
    assert value(samples, "cdp_celery_broker_up") == 1
    assert value(samples, "cdp_celery_queue_depth", queue=app.conf.task_default_queue) == 3
    # every queue tasks are routed to is listed, empty or not
    routed = app.amqp.router.route({}, "segments.tasks.recompute_segment")["queue"].name
    assert ("cdp_celery_queue_depth", (("queue", routed),)) in samples
    with celery_through("redis://127.0.0.1:8178/0"):  # nothing listens: the scrape still answers
        samples = scraper()
    assert value(samples, "cdp_celery_broker_up") == 0


@pytest.mark.django_db
def test_campaign_deliveries_by_channel_and_outcome(scraper, settings, webhook, receiver):  # noqa: F811
    settings.CAMPAIGN_QUIET_HOURS = {}
    before = scraper()
    campaign = campaign_for(segment_of(consenting(n=3)), webhook)
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    run_decide(campaign=campaign)
    assert destination_drain(destination_id=webhook.pk, budget_seconds=10).sent == 3
    after = scraper()
    name = "cdp_campaign_deliveries_total"
    channel = Delivery.objects.values_list("channel", flat=True).first()
    assert value(after, name, channel=channel, outcome="sent") - value(
        before, name, channel=channel, outcome="sent") == 3
    # and the vendor's receipts: two delivered, one failed, each counted once however often it comes
    first, second, third = Delivery.objects.order_by("pk")
    receipts = [ReceiptInput(delivery_key(first.pk), "delivered"), ReceiptInput(delivery_key(second.pk), "delivered"),
                ReceiptInput(delivery_key(third.pk), "failed")]
    receipts_record(destination=webhook, receipts=receipts)
    receipts_record(destination=webhook, receipts=receipts)
    final = scraper()
    for outcome, count in (("delivered", 2), ("failed", 1)):
        assert value(final, name, channel=channel, outcome=outcome) - value(
            after, name, channel=channel, outcome=outcome) == count


MULTIPROCESS_CHILD = """
import django, os, sys
django.setup()
from cdp import observability_metrics as m
if sys.argv[1] == "count":
    m.campaign_deliveries.labels("sms", "sent").inc(int(sys.argv[2]))
else:
    from prometheus_client import generate_latest
    from prometheus_client.core import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    sys.stdout.write(generate_latest(registry).decode())
"""


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """gunicorn's workers (and Celery's pool) each count; the endpoint shows the sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "cdp.settings",
           "CDP_VAR_DIR": str(tmp_path / "var")}
    for count in (2, 5):
        subprocess.run([sys.executable, "-c", MULTIPROCESS_CHILD, "count", str(count)], cwd=ROOT, env=env, check=True)
    out = subprocess.run([sys.executable, "-c", MULTIPROCESS_CHILD, "read"], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert 'cdp_campaign_deliveries_total{channel="sms",outcome="sent"} 7.0' in out


REAL_BROKERS = {
    "redis": os.environ.get("CDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("CDP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}


@pytest.mark.parametrize("broker", list(REAL_BROKERS))
@pytest.mark.django_db
def test_queue_depth_on_redis_and_rabbitmq(scraper, broker):
    url = REAL_BROKERS[broker]
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        if os.environ.get("CDP_BROKERS_REQUIRED") == "1":
            pytest.fail(f"{broker} is not running (CDP_BROKERS_REQUIRED=1)")
        pytest.skip(f"{broker} is not running")
    queue = f"cdp-metrics-{uuid.uuid4().hex[:12]}"  # a queue of this test's own on the shared broker
    with celery_through(url, task_default_queue=queue):
        try:
            for _ in range(2):
                import_housekeeping.apply_async()
            samples = scraper()
        finally:
            with app.connection_for_write() as connection:
                connection.default_channel.queue_delete(queue)
    assert value(samples, "cdp_celery_broker_up") == 1
    assert value(samples, "cdp_celery_queue_depth", queue=queue) == 2


def test_a_workers_machine_serves_its_metrics_to_the_scraper_only(tmp_path):
    """manage.py serve_metrics: the workers' counts from PROMETHEUS_MULTIPROC_DIR, same rule as /metrics."""
    import requests

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "cdp.settings",
           "CDP_VAR_DIR": str(tmp_path / "var"), "CDP_METRICS_TOKEN": TOKEN}
    subprocess.run([sys.executable, "-c", MULTIPROCESS_CHILD, "count", "4"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen([sys.executable, "manage.py", "serve_metrics", "--bind", "127.0.0.1:8174"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                refused = requests.get("http://127.0.0.1:8174/metrics", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        assert refused.status_code == 403
        wrong = requests.get("http://127.0.0.1:8174/metrics", headers={"Authorization": "Bearer nope"}, timeout=2)
        assert wrong.status_code == 403
        answer = requests.get("http://127.0.0.1:8174/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
        assert answer.status_code == 200
        assert 'cdp_campaign_deliveries_total{channel="sms",outcome="sent"} 4.0' in answer.text
        assert requests.get("http://127.0.0.1:8174/other", timeout=2).status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=10)
