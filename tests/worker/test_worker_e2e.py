"""End to end through a real broker: `celery -A cdp worker` processes, one per queue as a
deployment runs them, started here on Redis, on RabbitMQ and on the default filesystem
broker, take the work the admin queues — a large import, a segment's calculation, a
campaign — and write its results into the test database (tests/worker/workers.py says how
they are started).
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Delivery
from profiles.models import ImportJob, ImportStatus, Profile
from segments.models import Segment
from tests.factories import ProfileFactory

from tests.campaigns.conftest import receiver, webhook  # noqa: F401 — fixtures

from .workers import BROKERS, _test_database_url, workers_running  # noqa: F401 — tests/campaigns use the URL

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.usefixtures("seeded_transactional_db")]


@pytest.fixture(scope="module", params=list(BROKERS))
def worker(request, django_db_setup, tmp_path_factory):
    """Real workers on the broker, one per queue (of its own prefix), on the test database."""
    with workers_running(request.param, tmp_path_factory.mktemp(f"worker-{request.param}"),
                         one_per_queue=True) as running:
        yield running


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
