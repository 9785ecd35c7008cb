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


def _channel(folder):
    from kombu import Connection

    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(folder)}
    return Connection("filesystem://", transport_options=options)


def test_filesystem_means_our_transport_in_every_process_of_the_project():
    import cdp  # noqa: F401 — loads the Celery app, as every web and worker process does

    with _channel(ROOT / "var") as connection:
        assert type(connection.transport).__module__ == "cdp.broker_filesystem"


def test_a_message_is_never_visible_to_a_reader_before_it_is_whole(tmp_path, monkeypatch):
    # kombu's own transport creates <id>.<queue>.msg and then writes it: a worker polling
    # the folder could read it empty and stop (JSONDecodeError). Ours renames it into place.
    import os as real_os

    from cdp import broker_filesystem

    seen_while_writing = []
    replace = real_os.replace

    def replace_and_look(source, target):
        seen_while_writing.extend(name for name in real_os.listdir(tmp_path) if name.endswith(".jobs.msg"))
        assert Path(source).read_bytes()  # the whole message is written before it is named
        replace(source, target)

    monkeypatch.setattr(broker_filesystem.os, "replace", replace_and_look)
    with _channel(tmp_path) as connection:
        queue = connection.SimpleQueue("jobs")
        queue.put({"task": "ping", "n": 1})
        assert seen_while_writing == []
        assert queue.get(timeout=1).payload == {"task": "ping", "n": 1}
        queue.close()
    assert not [name for name in real_os.listdir(tmp_path) if name.endswith(".part")]
