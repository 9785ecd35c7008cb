"""A soft time limit that lands mid-statement must not leave the worker's connection
unusable for what follows (the job's report, the next task)."""
import signal

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError, connection

from cdp.sql import connection_recover

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg leaves an interrupted statement running"),
]


def _interrupted_mid_statement() -> None:
    """What Celery's soft time limit does: a signal handler raises in the middle of a query."""
    def soft_limit(*_args):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(SoftTimeLimitExceeded), connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(3)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_statement_interrupted_by_the_soft_time_limit_leaves_the_connection_busy():
    _interrupted_mid_statement()
    with pytest.raises(OperationalError, match="another command is already in progress"), \
            connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()


def test_after_recovering_the_next_statement_runs_on_a_fresh_connection():
    _interrupted_mid_statement()
    connection_recover()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_recovering_a_healthy_connection_keeps_it():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    connection_recover()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == pid
