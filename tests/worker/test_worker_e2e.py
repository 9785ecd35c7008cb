"""End to end through a real broker: a `celery -A cdp worker` process, started here on Redis,
on RabbitMQ and on the default filesystem broker, takes the work the admin queues — a large import and a segment's
calculation — and writes its results into the test database.

PostgreSQL only: the worker process must reach the test database, which on SQLite lives in
this process's memory. Locally the tests skip when a broker is not running; CI sets
CDP_BROKERS_REQUIRED=1 so that a missing broker fails the run instead.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.db import connection
from django.urls import reverse
from kombu import Connection

from campaigns.models import Campaign, Delivery
from profiles.models import ImportJob, ImportStatus, Profile
from segments.models import Segment
from tests.factories import ProfileFactory

from tests.campaigns.conftest import receiver, webhook  # noqa: F401 — fixtures

from .brokers import celery_through

ROOT = Path(__file__).resolve().parents[2]
BROKERS = {
    "filesystem": "filesystem://",
    "redis": os.environ.get("CDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("CDP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
WAIT_SECONDS = 120
pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.usefixtures("seeded_transactional_db")]


@dataclass
class Worker:
    broker_url: str
    transport_options: dict
    queue: str
    media_root: Path
    log: Path
    process: subprocess.Popen

    def through(self):
        """This process sends its tasks to the worker's broker and queue, for real."""
        return celery_through(self.broker_url, self.transport_options, task_default_queue=self.queue)

    def wait_for(self, done, what: str):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if done():
                return
            if self.process.poll() is not None:
                pytest.fail(f"the worker stopped while waiting for {what}:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.2)
        pytest.fail(f"{what} did not happen within {WAIT_SECONDS} s; worker log:\n{self.log.read_text()[-4000:]}")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "filesystem":
        return True
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


def _test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module", params=list(BROKERS))
def worker(request, django_db_setup, tmp_path_factory):
    """A real worker on the broker, consuming a queue of its own, on the test database."""
    broker_url = BROKERS[request.param]
    if not _reachable(broker_url):
        message = f"{request.param} is not running at {urlsplit(broker_url).netloc.rpartition('@')[2]}"
        if os.environ.get("CDP_BROKERS_REQUIRED") == "1":
            pytest.fail(message + " (CDP_BROKERS_REQUIRED=1)")
        pytest.skip(message)
    home = tmp_path_factory.mktemp(f"worker-{request.param}")
    queue = f"cdp-e2e-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "cdp.settings",  # not the test settings: those run tasks eagerly
        "DATABASE_URL": _test_database_url(),
        "CONN_MAX_AGE": "0",  # no connection left open when the tests drop their database
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,  # what its tasks queue comes back to it
        "CDP_VAR_DIR": str(home / "var"),
        "MEDIA_ROOT": str(home / "media"),
    })
    log = home / "worker.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "cdp", "worker", "--loglevel=INFO", "--concurrency=1",
             "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    folder = home / "var" / "celery-broker"  # where cdp.settings puts the worker's filesystem broker
    transport_options = ({"data_folder_in": str(folder), "data_folder_out": str(folder),
                          "control_folder": str(folder / "control")} if broker_url == "filesystem://" else {})
    running = Worker(broker_url, transport_options, queue, home / "media", log, process)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start on {request.param}:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with Connection(broker_url, transport_options=transport_options) as broker:  # the test's queue goes too
            try:
                broker.default_channel.queue_delete(queue)
            except Exception:  # noqa: BLE001 — already gone
                pass


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_a_segment_saved_in_the_admin_is_calculated_by_the_worker(worker, staff_client):
    # given three customers in Shanghai and one in Beijing
    ProfileFactory.create_batch(3, city="上海")
    ProfileFactory(city="北京")

    # when a dynamic segment is saved in the admin
    with worker.through():
        response = staff_client.post(reverse("admin:segments_segment_add"), {
            "name": "上海客户", "slug": "shanghai", "description": "", "kind": "dynamic",
            "refresh_every_minutes": "", "definition": '{"field": "city", "op": "eq", "value": "上海"}',
            "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.calculated_version is None  # not calculated in the request

    # then the worker calculates it
    worker.wait_for(lambda: Segment.objects.filter(pk=segment.pk, calculated_version=segment.version).exists(),
                    "the segment's calculation")
    segment.refresh_from_db()
    assert segment.member_count == 3 and segment.last_error == ""


def test_a_large_import_is_previewed_and_run_by_the_worker(worker, staff_client, settings):
    # given a customer file larger than what runs in the request
    rows = 4000
    settings.MEDIA_ROOT = str(worker.media_root)
    settings.CDP_IMPORT_INLINE_BYTES = 64 * 1024
    lines = ["客户编号,姓名,手机,城市"] + [f"CRM{i:06d},客户{i},139{i:08d},上海" for i in range(rows)]
    upload = worker.media_root.parent / "customers.csv"
    upload.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert upload.stat().st_size > settings.CDP_IMPORT_INLINE_BYTES

    with worker.through():
        # when it is uploaded and its mapping confirmed: the preview is queued
        with open(upload, "rb") as file:
            staff_client.post(reverse("admin:profiles_importjob_upload"), {
                "file": file, "kind": "profiles", "source": "crm", "mode": "create_or_update",
                "error_policy": "skip"})
        job = ImportJob.objects.get()
        mapping = {f"column-{i}": job.mapping[header] for i, header in enumerate(job.headers)}
        response = staff_client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]),
                                     {**mapping, "precedence": "crm_id, phone"})
        assert response.status_code == 302

        # then the worker previews it
        worker.wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status=ImportStatus.PREVIEWED).exists(),
                        "the import's preview")
        job.refresh_from_db()
        assert (job.created, job.failed) == (rows, 0) and not Profile.objects.exists()

        # and when it is run, the worker imports it
        response = staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
        assert response.status_code == 302
        worker.wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status=ImportStatus.DONE).exists(),
                        "the import")
    job.refresh_from_db()
    assert (job.created, job.failed, job.dry_run) == (rows, 0, False)
    assert Profile.objects.filter(city="上海").count() == rows


def test_a_launched_campaign_is_decided_and_sent_by_the_worker(worker, staff_user, receiver, webhook):
    from campaigns.services.lifecycle import campaign_launch
    from campaigns.tasks import campaign_run
    from tests.campaigns.conftest import campaign_for, consenting, segment_of

    # given a campaign to 250 consenting customers, launched "now" by staff
    staff_user.is_superuser = True
    staff_user.save()
    campaign = campaign_for(segment_of(consenting(n=250)), webhook, ignore_quiet_hours=True)
    campaign_launch(campaign=campaign, user=staff_user)

    # when its run is queued: the worker decides it, then its drains send every message
    with worker.through():
        campaign_run.delay(campaign.pk)
    worker.wait_for(lambda: Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT).count() == 250,
                    "the campaign's messages")
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING
    assert len(receiver.keys_seen) == 250 and receiver.duplicates == 0
