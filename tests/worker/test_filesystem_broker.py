"""The default broker (kombu's filesystem transport) keeps all its files under var/."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PUBLISH = (
    "import django; django.setup(); "
    "from segments.tasks import recompute_segment; recompute_segment.delay(1, 1)"
)


def test_queueing_a_task_writes_nothing_outside_var(tmp_path):
    # given the default broker, and a process started from some other directory
    var = tmp_path / "var"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "DATABASE_URL"}}
    env.update({"DJANGO_SETTINGS_MODULE": "cdp.settings", "CDP_VAR_DIR": str(var), "PYTHONPATH": str(ROOT)})

    # when a task is queued
    subprocess.run([sys.executable, "-c", PUBLISH], cwd=elsewhere, env=env, check=True, capture_output=True)

    # then the message and the exchange table are under var/, and no `control` folder
    # appears where the process started
    assert list((var / "celery-broker").glob("*.msg"))
    assert list((var / "celery-broker" / "control").glob("*.exchange"))
    assert not (elsewhere / "control").exists()


def test_no_control_folder_is_committed_at_the_root():
    tracked = subprocess.run(["git", "ls-files", "control"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert tracked.stdout == ""
