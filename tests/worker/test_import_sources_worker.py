"""A watched folder polled the way users run it: a real `celery -A cdp worker --beat`
process (filesystem broker in a folder of its own, the test database) picks the file up on
beat's first tick, imports it and moves it to done/. PostgreSQL only: the worker process
must reach the test database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from profiles.models import ImportJob, ImportSource, ImportStatus, Profile

ROOT = Path(__file__).resolve().parents[2]
CRM = (ROOT / "tests" / "profiles" / "data" / "crm_gb18030.csv").read_bytes()
WAIT_SECONDS = 120
pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.usefixtures("seeded_transactional_db")]


def _test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_watched_folder_is_imported_by_a_worker_running_beat(tmp_path):
    # given a watched folder with a CRM export in it
    drop = tmp_path / "crm-drop"
    drop.mkdir()
    (drop / "members.csv").write_bytes(CRM)
    source = ImportSource.objects.create(name="CRM 导出", storage="folder", path=str(drop), interval_minutes=60)

    # when a worker with beat runs
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "cdp.settings", "DATABASE_URL": _test_database_url(), "CONN_MAX_AGE": "0",
                "CELERY_BROKER_URL": "filesystem://", "CDP_VAR_DIR": str(tmp_path / "var"),
                "MEDIA_ROOT": str(tmp_path / "media")})
    log = tmp_path / "worker.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "cdp", "worker", "--beat", "--loglevel=INFO", "--concurrency=1",
             "-Q", "default,imports,segments,deliveries", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not (drop / "done" / "members.csv").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the file was not imported by the worker:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # then the file was imported once, by the source, and the source says when it runs next
    job = ImportJob.objects.get()
    assert (job.import_source_id, job.status, job.created) == (source.pk, ImportStatus.DONE, 3)
    assert Profile.objects.count() == 3 and not (drop / "members.csv").exists()
    source.refresh_from_db()
    assert source.last_counts == {"imported": 1, "failed": 0, "duplicates": 0}
    assert source.next_run_at > source.last_run_at and source.claimed_until is None
