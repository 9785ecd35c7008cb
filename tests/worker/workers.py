"""Real `celery -A cdp worker` processes for the worker tests, on the test database.

Each test's workers use queues of their own (CDP_QUEUE_PREFIX), so that several runs on one
broker never take each other's messages, and consume the queues the test names: all of
them, or one (to show that routing keeps the others' work from it).

PostgreSQL only: a worker process must reach the test database, which on SQLite lives in
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.db import connection
from amqp.exceptions import ChannelError
from kombu import Connection

from cdp.queues import QUEUES, task_routes

from .brokers import celery_through

ROOT = Path(__file__).resolve().parents[2]
BROKERS = {
    "filesystem": "filesystem://",
    "redis": os.environ.get("CDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("CDP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
WAIT_SECONDS = 120


@dataclass
class Worker:
    broker_url: str
    transport_options: dict
    prefix: str
    media_root: Path
    log: Path
    process: subprocess.Popen
    others: list[Worker] = field(default_factory=list)  # more workers on the same queues

    def through(self):
        """This process sends its tasks to the workers' broker and queues, for real."""
        return celery_through(self.broker_url, self.transport_options, task_default_queue=self.prefix + "default",
                              task_routes=task_routes(self.prefix))

    def logs(self) -> str:
        return "\n".join(worker.log.read_text(errors="replace")[-4000:] for worker in [self, *self.others])

    def wait_for(self, done, what: str, seconds: float = WAIT_SECONDS):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if done():
                return
            for worker in [self, *self.others]:
                if worker.process.poll() is not None:
                    pytest.fail(f"a worker stopped while waiting for {what}:\n{self.logs()}")
            time.sleep(0.2)
        pytest.fail(f"{what} did not happen within {seconds} s; worker logs:\n{self.logs()}")


def broker_or_skip(name: str) -> str:
    url = BROKERS[name]
    parts = urlsplit(url)
    if parts.scheme == "filesystem":
        return url
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return url
    except OSError:
        message = f"{name} is not running at {parts.netloc.rpartition('@')[2]}"
        if os.environ.get("CDP_BROKERS_REQUIRED") == "1":
            pytest.fail(message + " (CDP_BROKERS_REQUIRED=1)")
        pytest.skip(message)


def _test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start(broker_url: str, prefix: str, queues: list[str], home: Path, name: str, env_extra: dict):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "cdp.settings",  # not the test settings: those run tasks eagerly
        "DATABASE_URL": _test_database_url(),
        "CONN_MAX_AGE": "0",  # no connection left open when the tests drop their database
        "CELERY_BROKER_URL": broker_url,
        "CDP_QUEUE_PREFIX": prefix,  # what its tasks queue stays among this test's queues
        "CDP_VAR_DIR": str(home / "var"),
        "MEDIA_ROOT": str(home / "media"),
        **env_extra,
    })
    log = home / f"{name}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "cdp", "worker", "--loglevel=INFO", "--concurrency=1",
             "-Q", ",".join(prefix + queue for queue in queues), "-n", f"{name}-{prefix}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return log, process


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)  # warm shutdown
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def workers_running(broker: str, home: Path, *, queues: list[str] | None = None, count: int = 1,
                    one_per_queue: bool = False, env: dict | None = None):
    """`count` workers on `broker` consuming `queues` (default: all) of a fresh prefix; or,
    `one_per_queue`, a worker for each queue, as a deployment runs them."""
    broker_url = broker_or_skip(broker)
    prefix = f"cdp-e2e-{uuid.uuid4().hex[:10]}-"
    started = []
    folder = home / "var" / "celery-broker"  # where cdp.settings puts the workers' filesystem broker
    transport_options = ({"data_folder_in": str(folder), "data_folder_out": str(folder),
                          "control_folder": str(folder / "control")} if broker_url == "filesystem://" else {})
    try:
        groups = [[queue] for queue in queues or QUEUES] if one_per_queue else [list(queues or QUEUES)] * count
        for number, group in enumerate(groups):
            log, process = _start(broker_url, prefix, group, home, f"worker{number}-{'-'.join(group)}"[:60], env or {})
            started.append((log, process))
        for log, process in started:
            deadline = time.monotonic() + 60
            while "ready." not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"a worker did not start on {broker}:\n{log.read_text()[-4000:]}")
                time.sleep(0.2)
        workers = [Worker(broker_url, transport_options, prefix, home / "media", log, process)
                   for log, process in started]
        workers[0].others = workers[1:]
        yield workers[0]
    finally:
        for _log, process in started:
            _stop(process)
        with Connection(broker_url, transport_options=transport_options) as connection_:  # the test's queues go too
            for queue in QUEUES:
                try:
                    with connection_.channel() as channel:
                        channel.queue_delete(prefix + queue)
                except Exception:  # noqa: BLE001 — never declared, or already gone
                    pass


def queue_length(worker: Worker, queue: str) -> int:
    """Messages waiting in one of the test's queues (Redis forgets an empty one: 0)."""
    with Connection(worker.broker_url, transport_options=worker.transport_options) as connection_:
        try:
            with connection_.channel() as channel:
                return channel.queue_declare(queue=worker.prefix + queue, passive=True).message_count
        except ChannelError:
            return 0
