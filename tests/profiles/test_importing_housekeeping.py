"""The life of an import job beyond one request: a heartbeat per committed batch, jobs whose
worker died marked interrupted and then resumed or undone, unrun uploads expiring, and large
undos running in Celery with progress."""
import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from profiles.importing.files import upload_dir
from profiles.importing.housekeeping import import_jobs_interrupt_stale, import_uploads_expire
from profiles.importing.jobs import import_job_create
from profiles.importing.pipeline import import_run
from profiles.importing.undo import import_undo
from profiles.models import Identity, ImportBatch, ImportJob, ImportStatus, Profile

ACTOR = Actor.system("tests")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def customers_file(count: int, *, start: int = 0) -> Path:
    """An upload of `count` customers (under MEDIA_ROOT/imports, as the admin stores it)."""
    path = Path(upload_dir()) / f"customers-{start}-{count}.csv"
    lines = ["crm_id,name,phone"] + [f"C{n:06d},客户{n},+86139{n:08d}" for n in range(start, start + count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def new_job(path: Path, user=None) -> ImportJob:
    actor = Actor.staff(user) if user else ACTOR
    job, _table = import_job_create(path=str(path), name=path.name, actor=actor)
    return job


class Killed(BaseException):
    """Stands in for SIGKILL inside the test process: not an Exception, so nothing in the
    pipeline catches it, and the job is left as a dead worker leaves it."""


def kill_after(batches: int):
    seen = []

    def on_progress(job):
        seen.append(job.progress)
        if len(seen) >= batches:
            raise Killed

    return on_progress


# --- 3. heartbeat, interrupted, resume ----------------------------------------------------


@pytest.mark.django_db
def test_each_committed_batch_touches_the_heartbeat():
    # given a job of 6 customers, in batches of 2
    job = new_job(customers_file(6))
    beats = []
    # when it runs
    import_run(job, batch_size=2, on_progress=lambda j: beats.append(j.heartbeat_at))
    # then every batch left a sign of life, and the finished job keeps the last one
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created == 6
    assert len(beats) >= 3 and all(beats) and beats == sorted(beats)
    assert job.heartbeat_at >= beats[-1]


@pytest.mark.django_db
def test_a_job_whose_heartbeat_stopped_is_marked_interrupted_and_a_live_one_is_not(settings):
    settings.CDP_IMPORT_HEARTBEAT_TIMEOUT = 600
    now = timezone.now()
    dead = new_job(customers_file(1))
    ImportJob.objects.filter(pk=dead.pk).update(status=ImportStatus.RUNNING, started_at=now - datetime.timedelta(hours=1),
                                                heartbeat_at=now - datetime.timedelta(minutes=11))
    alive = new_job(customers_file(1, start=5))
    ImportJob.objects.filter(pk=alive.pk).update(status=ImportStatus.RUNNING, started_at=now - datetime.timedelta(hours=1),
                                                 heartbeat_at=now - datetime.timedelta(minutes=2))
    # when the periodic task looks
    from profiles.tasks import import_housekeeping

    assert import_housekeeping()["interrupted"] == [dead.pk]
    # then the dead one is interrupted, says why, and may be undone or resumed
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == ImportStatus.INTERRUPTED and dead.error and dead.can_undo and dead.can_resume
    assert alive.status == ImportStatus.RUNNING


def test_the_housekeeping_task_is_scheduled():
    entries = [entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()]
    assert "profiles.tasks.import_housekeeping" in entries


def test_an_interrupted_import_resumes_after_its_last_committed_batch(seeded_transactional_db, staff_user, client):
    # given an import of 10 customers in batches of 3 whose worker died after two batches
    path = customers_file(10)
    job = new_job(path, staff_user)
    with pytest.raises(Killed):
        import_run(job, batch_size=3, on_progress=kill_after(2))
    job.refresh_from_db()
    assert job.status == ImportStatus.RUNNING and Profile.objects.count() == 6 and job.resume_row
    # when the periodic task finds it silent, and its uploader resumes it
    assert import_jobs_interrupt_stale(now=timezone.now() + datetime.timedelta(hours=1)) == [job.pk]
    job.refresh_from_db()
    assert job.status == ImportStatus.INTERRUPTED and path.exists()  # kept for resuming
    client.force_login(staff_user)
    page = client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    assert 'id="resume-import"' in page and 'id="undo-import"' in page
    client.post(reverse("admin:profiles_importjob_resume", args=[job.pk]))
    # then the rest is imported, once each, and the counts add up
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE, job.error
    assert Profile.objects.count() == 10 and Identity.objects.count() == 20  # a CRM id and a phone each
    assert (job.rows_read, job.created, job.unchanged, job.failed) == (10, 10, 0, 0)
    assert sorted(job.batches.values_list("number", flat=True)) == [1, 2, 3]  # the rest in one batch
    assert not path.exists()
    # and the whole import can still be undone
    import_undo(job=job, actor=ACTOR)
    assert not Profile.objects.exists()


def test_an_interrupted_import_can_be_undone(seeded_transactional_db, staff_user):
    path = customers_file(10)
    job = new_job(path, staff_user)
    with pytest.raises(Killed):
        import_run(job, batch_size=3, on_progress=kill_after(1))
    import_jobs_interrupt_stale(now=timezone.now() + datetime.timedelta(hours=1))
    job.refresh_from_db()
    assert job.status == ImportStatus.INTERRUPTED and Profile.objects.count() == 3
    import_undo(job=job, actor=ACTOR)
    job.refresh_from_db()
    assert job.status == ImportStatus.UNDONE and not Profile.objects.exists()
    assert not path.exists()  # the upload goes with it


def test_a_worker_whose_job_was_marked_interrupted_stops_writing(seeded_transactional_db, staff_user):
    # given a job marked interrupted (its heartbeat seemed to stop) while its worker still ran
    job = new_job(customers_file(9), staff_user)

    def marked_interrupted(running):
        if running.created == 3:
            ImportJob.objects.filter(pk=running.pk).update(status=ImportStatus.INTERRUPTED)

    import_run(job, batch_size=3, on_progress=marked_interrupted)
    # then the worker left it to whoever resumes or undoes it, after at most one more batch
    job.refresh_from_db()
    assert job.status == ImportStatus.INTERRUPTED
    assert Profile.objects.count() == 3


def test_reimporting_a_committed_batch_changes_nothing(seeded_transactional_db):
    """What resume relies on: the same rows again are all unchanged."""
    job = import_run(new_job(customers_file(4)), batch_size=2)
    again = import_run(new_job(customers_file(4)), batch_size=2)
    assert (job.created, again.created, again.updated, again.unchanged) == (4, 0, 0, 4)
    assert Profile.objects.count() == 4 and not ImportBatch.objects.filter(job=again).exists()


@pytest.mark.postgres
def test_a_killed_import_process_is_interrupted_then_resumed(seeded_transactional_db, tmp_path):
    # given `manage.py import_file` importing 6,000 customers in batches of 200, in its own process
    path = tmp_path / "customers.csv"
    lines = ["crm_id,name,phone"] + [f"K{n:06d},客户{n},+86137{n:08d}" for n in range(6000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "import_file", str(path), "--batch-size", "200"], cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # when it is SIGKILLed once a few batches are committed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = ImportJob.objects.first()
            if job is not None and job.resume_row > 600:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    job.refresh_from_db()
    assert job.status == ImportStatus.RUNNING and 600 <= Profile.objects.count() < 6000
    # then the periodic task marks it interrupted once its heartbeat is old
    with override_settings(CDP_IMPORT_HEARTBEAT_TIMEOUT=0):
        time.sleep(0.01)
        assert import_jobs_interrupt_stale() == [job.pk]
    job.refresh_from_db()
    assert job.status == ImportStatus.INTERRUPTED
    # and resuming imports the rest, every customer exactly once
    import_run(job, resume=True, batch_size=500)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE, job.error
    assert Profile.objects.count() == 6000 and Identity.objects.count() == 12000
    assert (job.rows_read, job.created, job.unchanged, job.failed) == (6000, 6000, 0, 0)
    # and the whole of it undoes
    import_undo(job=job, actor=ACTOR)
    assert not Profile.objects.exists()


# --- 4. unrun uploads expire ---------------------------------------------------------------


@pytest.mark.django_db
def test_uploads_previewed_but_never_run_expire(settings, client, staff_user):
    settings.CDP_IMPORT_UPLOAD_MAX_AGE_DAYS = 7
    now = timezone.now()
    # given a job previewed 8 days ago, one previewed yesterday, and one that ran
    old = import_run(new_job(customers_file(2), staff_user), dry_run=True)
    ImportJob.objects.filter(pk=old.pk).update(created_at=now - datetime.timedelta(days=9),
                                               finished_at=now - datetime.timedelta(days=8))
    recent = import_run(new_job(customers_file(2, start=10), staff_user), dry_run=True)
    ran = import_run(new_job(customers_file(2, start=20), staff_user))
    ImportJob.objects.filter(pk=ran.pk).update(created_at=now - datetime.timedelta(days=30))
    # when the periodic task runs
    from profiles.tasks import import_housekeeping

    assert import_housekeeping()["expired"] == [old.pk]
    # then only the old upload is gone, and its job says so and cannot be run
    old.refresh_from_db()
    assert old.file_expired_at and not Path(old.file_path).exists()
    assert Path(recent.file_path).exists()
    client.force_login(staff_user)
    page = client.get(reverse("admin:profiles_importjob_change", args=[old.pk])).content.decode()
    assert 'id="import-file-expired"' in page and 'id="run-import"' not in page
    client.post(reverse("admin:profiles_importjob_run", args=[old.pk]))
    old.refresh_from_db()
    assert old.status == ImportStatus.PREVIEWED and Profile.objects.count() == 2  # those of `ran`
    assert import_housekeeping()["expired"] == []  # once


# --- 5. a large undo runs in Celery, with progress --------------------------------------------


def test_a_large_undo_is_queued_and_the_page_follows_it(seeded_transactional_db, client, django_user_model,
                                                        monkeypatch):
    from profiles import tasks

    # given a marketer's import of a file above the inline size
    marketer = django_user_model.objects.create_user(username="mei", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name="营销 marketer"))
    job = import_run(new_job(customers_file(5), marketer))
    assert Profile.objects.count() == 5
    queued = []
    monkeypatch.setattr(tasks.undo_import, "delay", lambda *args: queued.append(args))
    client.force_login(marketer)
    # when they undo it
    with override_settings(CDP_IMPORT_INLINE_BYTES=10):
        response = client.post(reverse("admin:profiles_importjob_undo", args=[job.pk]), follow=True)
    # then it is queued (not run in the request), they are told, and the page shows progress
    assert queued == [(job.pk, marketer.pk)]
    assert Profile.objects.count() == 5
    text = response.content.decode()
    assert 'id="import-undo-progress"' in text and 'id="undo-import"' not in text
    assert any(m.level_tag == "info" and f"#{job.pk}" in str(m) for m in response.context["messages"])
    progress = client.get(reverse("admin:profiles_importjob_progress", args=[job.pk])).json()
    assert progress["undoing"] and progress["undo_progress"] == 0
    # a second click does not queue it twice
    with override_settings(CDP_IMPORT_INLINE_BYTES=10):
        client.post(reverse("admin:profiles_importjob_undo", args=[job.pk]))
    assert len(queued) == 1
    # when the worker runs it, then the import is undone, credited to the marketer
    assert tasks.undo_import(job.pk, marketer.pk) == ImportStatus.UNDONE
    assert tasks.undo_import(job.pk, marketer.pk) == "skipped"  # a second delivery
    job.refresh_from_db()
    assert not Profile.objects.exists() and job.undone_by_label == "mei" and job.undo_progress == 1
    assert not client.get(reverse("admin:profiles_importjob_progress", args=[job.pk])).json()["undoing"]


@pytest.mark.django_db
def test_a_queued_undo_that_cannot_be_done_says_why_and_can_be_tried_again(staff_user):
    from profiles.importing.undo import import_undo_queue, import_undo_queued_run

    job = import_run(new_job(customers_file(1), staff_user))
    assert import_undo_queue(job=job)
    job.refresh_from_db()
    # a customer the import created is now referenced by a consent record, which must be kept
    from consent.services import consent_record

    consent_record(profile=Profile.objects.get(), purpose_code="email_marketing", status="granted", source="admin",
                   actor=ACTOR)
    job = import_undo_queued_run(job=job, actor=Actor.staff(staff_user))
    assert job.status == ImportStatus.DONE and job.undo_error and not job.is_undoing and job.can_undo


@pytest.mark.django_db
def test_a_queued_undo_whose_worker_died_can_be_undone_again(staff_user, settings):
    from profiles.importing.undo import import_undo_queue

    settings.CDP_IMPORT_HEARTBEAT_TIMEOUT = 600
    # given an undo queued an hour ago that no worker finished
    job = import_run(new_job(customers_file(2), staff_user))
    assert import_undo_queue(job=job)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - datetime.timedelta(hours=1))
    job.refresh_from_db()
    assert job.is_undoing and not job.can_undo
    # when the periodic task looks, then the job says so and may be undone again
    assert import_jobs_interrupt_stale() == [job.pk]
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.undo_error and job.can_undo
    assert Profile.objects.count() == 2


def test_an_import_interrupted_before_its_first_batch_resumes_from_the_start(seeded_transactional_db, staff_user):
    # given a previewed job whose worker died before committing anything
    job = import_run(new_job(customers_file(4), staff_user), dry_run=True)
    assert job.status == ImportStatus.PREVIEWED and job.report["samples"]["create"]
    rows = [sample["row"] for sample in job.report["samples"]["create"]]
    ImportJob.objects.filter(pk=job.pk).update(  # as a worker killed right after starting leaves it
        status=ImportStatus.RUNNING, dry_run=False, heartbeat_at=timezone.now(), started_at=timezone.now())
    import_jobs_interrupt_stale(now=timezone.now() + datetime.timedelta(hours=1))
    job.refresh_from_db()
    assert job.status == ImportStatus.INTERRUPTED and job.resume_row == 0 and not Profile.objects.exists()
    # when it is resumed, then it runs as a fresh import: counts and samples are its own
    import_run(job, resume=True)
    job.refresh_from_db()
    assert (job.status, job.rows_read, job.created) == (ImportStatus.DONE, 4, 4)
    assert [sample["row"] for sample in job.report["samples"]["create"]] == rows  # not the preview's as well
    assert Profile.objects.count() == 4
