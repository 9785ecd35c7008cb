"""Pointing this process's Celery app at another broker for a test, then back."""
from __future__ import annotations

import socket
from contextlib import contextmanager

from cdp.celery import app


def closed_port_url() -> str:
    """A Redis URL on a local port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _drop_connections() -> None:
    """Forget the cached pools (kombu keeps them per broker URL: closing one would close it
    for every later user of that URL) and the queues and routes read from the old settings."""
    app._pool = None
    app.__dict__.pop("amqp", None)


@contextmanager
def celery_through(broker_url: str, transport_options: dict | None = None, **conf):
    """Send tasks to `broker_url` for real (not eagerly) inside the block."""
    keys = ("task_always_eager", "broker_url", "broker_transport_options", *conf)
    saved = {key: app.conf[key] for key in keys}
    _drop_connections()
    app.conf.update(task_always_eager=False, broker_url=broker_url, broker_transport_options=transport_options or {},
                    **conf)
    try:
        yield app
    finally:
        _drop_connections()
        app.conf.update(saved)
