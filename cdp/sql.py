"""SQL the ORM does not express: INSERT … SELECT from a queryset, statement timeouts."""
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.db.models import Field, Model, QuerySet, Value
from django.db.models.functions import Cast

from .replica import reading


def insert_from_select(model: type[Model], columns: dict[str, str], queryset: QuerySet, *,
                       ignore_conflicts: bool = False) -> int:
    """INSERT INTO model's table (column, …) SELECT alias, … FROM (queryset) in one statement.

    `columns` maps the target column names to the names the `values()` queryset selects
    (field names or annotation aliases), so the select order never matters.
    `ignore_conflicts` skips rows a unique constraint refuses (ON CONFLICT DO NOTHING).
    Returns the number of rows inserted.
    """
    sql, params = queryset.query.sql_with_params()
    quote = connection.ops.quote_name
    targets = ", ".join(quote(column) for column in columns)
    sources = ", ".join(f"selected.{quote(alias)}" for alias in columns.values())
    # "WHERE true": SQLite would otherwise read ON CONFLICT as a join's ON.
    conflicts = " WHERE true ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({targets}) SELECT {sources} FROM ({sql}) AS selected"
            + conflicts,
            params,
        )
        return cursor.rowcount


def constant(value, field: Field) -> Cast:
    """A typed constant column for an INSERT … SELECT: PostgreSQL reads a bare NULL (or
    an untyped parameter) in a subquery's select list as text, which no integer,
    timestamp or JSON column accepts."""
    return Cast(Value(value, output_field=field), output_field=field)


@contextmanager
def statement_timeout(milliseconds: int):
    """Abort any statement of this block that runs longer than `milliseconds` with an
    OperationalError that `is_timeout` recognises. Use inside transaction.atomic():
    on PostgreSQL it is SET LOCAL; on SQLite a progress handler interrupts the query.
    Applies to the database this block reads from (cdp.replica.reading)."""
    if reading.vendor == "postgresql":
        with reading.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [int(milliseconds)])
        yield
        return
    reading.ensure_connection()
    raw = reading.connection
    deadline = time.monotonic() + milliseconds / 1000
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


def is_timeout(error: Exception) -> bool:
    """True when `error` is statement_timeout's abort (PostgreSQL's query_canceled, or
    SQLite's "interrupted")."""
    cause = error.__cause__ or error
    return getattr(cause, "sqlstate", None) == "57014" or "interrupted" in str(cause)


def connection_recover() -> None:
    """After an interruption (Celery's soft time limit) that may have landed mid-statement:
    psycopg cancels a statement only on Ctrl-C, so the connection can be left busy with it
    ("another command is already in progress"). Outside a transaction, drop it: the next
    query opens a fresh one. (Inside one, the atomic block's failed rollback drops it.)"""
    if not connection.in_atomic_block and not connection.is_usable():
        connection.close()


def transaction_lock(namespace: int, key: int, *, shared: bool = False) -> None:
    """Hold a lock on (namespace, key) until the transaction ends (PostgreSQL advisory
    lock; SQLite serialises writers anyway). Shared holders exclude exclusive ones."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [namespace, key])


def statistics_refresh(model: type[Model], *, rows_added: int) -> None:
    """ANALYZE `model`'s table (PostgreSQL) when a bulk write added more than a tenth of
    the rows its statistics know of, as autovacuum will do, but only later: planned on
    the old figures, a read of the new rows' customers scans the whole table (metrics
    after a 2M-event import: 0.5 s per 2,000 customers instead of 0.13 s)."""
    if connection.vendor != "postgresql" or not rows_added:
        return
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        known = cursor.fetchone()[0]  # -1: never analysed
        if known < 0 or rows_added > known / 10:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def tune_for_analysis(*, parallel: bool = True) -> None:
    """PostgreSQL settings for the rest of this transaction, for one-off analytical
    statements (segment counts and recomputes, analyses): no JIT (compiling them costs
    more than it saves) and room to hash and sort in memory instead of spilling.
    `parallel=False` keeps the statement in one process: for a segment count, a parallel
    plan builds the same events aggregate in every worker (segment example 3: 540 ms in
    parallel, 300 ms without). Applies to the database this block reads from
    (cdp.replica.reading): the replica's inside cdp.replica.on_replica."""
    if reading.vendor != "postgresql":
        return
    values = {"jit": "off", "work_mem": settings.CDP_ANALYSIS_WORK_MEM}
    if not parallel:
        values["max_parallel_workers_per_gather"] = "0"
    with reading.cursor() as cursor:  # one round trip for all of them
        cursor.execute("SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)),
                       [item for pair in values.items() for item in pair])
