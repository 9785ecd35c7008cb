"""Real workers under faults: routing keeps an import from holding up a segment, two workers
given the same import run it once, and a calculation past its soft time limit ends with the
segment saying "timed out" (tests/worker/workers.py starts the workers)."""
from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from cdp.actors import Actor
from profiles.importing.jobs import import_job_create
from profiles.models import ImportJob, ImportStatus, Profile
from profiles.tasks import run_import
from segments.models import Segment, SegmentMembership
from segments.tasks import recompute_segment
from tests.factories import ProfileFactory

from .workers import queue_length, workers_running

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.usefixtures("seeded_transactional_db")]

SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}


def _queued_import(folder, rows: int) -> ImportJob:
    path = folder / "customers.csv"
    lines = ["客户编号,姓名,手机,城市"] + [f"CRM{i:06d},客户{i},139{i:08d},上海" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    job, _table = import_job_create(path=str(path), name="customers.csv", actor=Actor.system("test"),
                                    precedence=["crm_id", "phone"])
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)
    return job


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_segment_is_calculated_while_an_import_waits_on_a_queue_no_worker_reads(broker, tmp_path):
    # given an import and a segment, and a worker for the `segments` queue only
    job = _queued_import(tmp_path, rows=50)
    ProfileFactory.create_batch(2, city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI)
    with workers_running(broker, tmp_path, queues=["segments"]) as worker:
        # when the import is queued first, then the segment's calculation
        with worker.through():
            run_import.delay(job.pk)
            recompute_segment.delay(segment.pk, segment.version)

        # then the segment is calculated, and the import still waits in its own queue
        worker.wait_for(lambda: Segment.objects.filter(pk=segment.pk, calculated_version=segment.version).exists(),
                        "the segment's calculation")
        assert Segment.objects.get(pk=segment.pk).member_count == 2
        assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.QUEUED
        assert queue_length(worker, "imports") == 1
        assert queue_length(worker, "segments") == 0


def test_two_workers_given_the_same_import_run_it_once(tmp_path):
    # given a queued import of 3,000 customers and two workers on the `imports` queue
    rows = 3000
    job = _queued_import(tmp_path, rows=rows)
    with workers_running("redis", tmp_path, queues=["imports"], count=2) as workers:
        # when its message is sent twice at once (a redelivery, or a double click)
        with workers.through():
            run_import.delay(job.pk)
            run_import.delay(job.pk)

        # then one worker imports it and the other skips it
        workers.wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status=ImportStatus.DONE).exists(), "the import")
        workers.wait_for(lambda: "'skipped'" in workers.logs(), "the second message's skip")
    job.refresh_from_db()
    assert (job.created, job.failed) == (rows, 0)
    assert Profile.objects.count() == rows
    assert workers.logs().count("'skipped'") == 1


def test_a_calculation_past_its_soft_time_limit_leaves_the_segment_timed_out(tmp_path):
    # given a segment whose members' table another transaction holds (a calculation that
    # cannot finish), and a worker whose calculations may take 2 seconds
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI)
    release, held = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
                cursor.execute(f"LOCK TABLE {SegmentMembership._meta.db_table} IN ACCESS EXCLUSIVE MODE")
                held.set()
                release.wait(60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert held.wait(10)
        limit = {"CDP_SEGMENT_SOFT_TIME_LIMIT": "2"}
        with workers_running("redis", tmp_path, queues=["segments"], env=limit) as worker:
            # when its calculation runs
            with worker.through():  # the limits travel in the message: the sender's settings decide
                recompute_segment.apply_async((segment.pk, segment.version), soft_time_limit=2, time_limit=62)

            # then it stops at the limit and the segment says so, instead of "calculating" forever
            worker.wait_for(lambda: Segment.objects.filter(pk=segment.pk, failures_in_a_row=1).exists(),
                            "the time limit")
    finally:
        release.set()
        holder.join()
    segment.refresh_from_db()
    assert segment.calculating_since is None and segment.next_attempt_at is not None
    assert "Timed out" in segment.last_error or "超时" in segment.last_error
    assert segment.calculated_version is None


def test_an_import_past_its_soft_time_limit_is_interrupted_and_says_it_timed_out(tmp_path):
    # given a queued import far larger than a 1-second limit allows, keeping what it commits
    job = _queued_import(tmp_path, rows=60_000)
    with workers_running("redis", tmp_path, queues=["imports"], env={"CDP_IMPORT_SOFT_TIME_LIMIT": "1"}) as worker:
        # when a worker runs it (the limits travel in the message: the sender's settings decide)
        with worker.through():
            run_import.apply_async((job.pk,), soft_time_limit=1, time_limit=61)

        # then it stops at the limit: interrupted (so it can be resumed or undone), saying why
        worker.wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status=ImportStatus.INTERRUPTED).exists(),
                        "the import's time limit")
    job.refresh_from_db()
    assert "Timed out" in job.error or "超时" in job.error
    assert job.finished_at is not None and job.created < 60_000
