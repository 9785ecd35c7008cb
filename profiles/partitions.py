"""The events table partitioned by month of `occurred_at` (PostgreSQL; see docs/partitioning.md).

On PostgreSQL `profiles_event` is a range-partitioned table: one partition per calendar
month (UTC) named `profiles_event_pYYYYMM`, and `profiles_event_default` for rows of a
month that has no partition yet. SQLite keeps one plain table; everything here is a no-op
there.

A partitioned table's unique indexes must contain the partition key, so "one event per
(source, external_id)" cannot be a unique index on the events any more. It lives in the
small unpartitioned table `profiles_event_key` (its primary key), kept by triggers on the
events (`KEY_TRIGGERS_SQL`), so that every writer keeps working unchanged:

* an INSERT … ON CONFLICT DO NOTHING (the bulk writer, `bulk_create(ignore_conflicts=True)`)
  skips a duplicate, as the unique index made it do;
* any other INSERT or COPY of a duplicate fails with unique_violation naming
  `event_source_external_id_unique` (Django's IntegrityError), as before;
* deleting an event frees its key; changing its source or id moves the key.
"""
import datetime
import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

log = logging.getLogger("cdp.partitions")

TABLE = "profiles_event"
KEY_TABLE = "profiles_event_key"
DEFAULT_PARTITION = f"{TABLE}_default"
# Columns written by hand (the generated `category` is computed by each partition).
COLUMNS = ["id", "name", "occurred_at", "properties", "amount", "source", "external_id", "received_at", "profile_id"]

KEY_TABLE_SQL = f"""
CREATE TABLE {KEY_TABLE} (
    source varchar(64) NOT NULL,
    external_id varchar(128) NOT NULL,
    event_id bigint NOT NULL,
    CONSTRAINT event_source_external_id_unique PRIMARY KEY (source, external_id)
)"""

KEY_TRIGGERS_SQL = f"""
-- A new event claims its key. A duplicate is skipped inside INSERT … ON CONFLICT DO NOTHING
-- (the behaviour the unique index gave that statement) and refused everywhere else. The
-- statement's text is read only when a duplicate is found.
CREATE OR REPLACE FUNCTION profiles_event_key_claim() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    holder bigint;
BEGIN
    INSERT INTO {KEY_TABLE} (source, external_id, event_id) VALUES (NEW.source, NEW.external_id, NEW.id)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    SELECT event_id INTO holder FROM {KEY_TABLE} WHERE source = NEW.source AND external_id = NEW.external_id;
    IF holder = NEW.id THEN
        RETURN NEW;  -- the same event moving to another partition (its occurred_at changed)
    END IF;
    IF current_query() ~* '\\mON\\s+CONFLICT\\s+DO\\s+NOTHING\\M' THEN
        RETURN NULL;
    END IF;
    RAISE unique_violation USING
        MESSAGE = 'duplicate key value violates unique constraint "event_source_external_id_unique"',
        DETAIL = format('Key (source, external_id)=(%s, %s) already exists.', NEW.source, NEW.external_id),
        CONSTRAINT = 'event_source_external_id_unique', TABLE = '{TABLE}';
END $$;

CREATE OR REPLACE FUNCTION profiles_event_key_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {KEY_TABLE} WHERE source = OLD.source AND external_id = OLD.external_id AND event_id = OLD.id;
    RETURN OLD;
END $$;

CREATE OR REPLACE FUNCTION profiles_event_key_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.external_id IS NOT NULL THEN
        DELETE FROM {KEY_TABLE} WHERE source = OLD.source AND external_id = OLD.external_id AND event_id = OLD.id;
    END IF;
    IF NEW.external_id IS NOT NULL THEN
        INSERT INTO {KEY_TABLE} (source, external_id, event_id) VALUES (NEW.source, NEW.external_id, NEW.id);
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION profiles_event_key_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {KEY_TABLE};
    RETURN NULL;
END $$;

CREATE TRIGGER event_key_claim BEFORE INSERT ON {TABLE}
    FOR EACH ROW WHEN (NEW.external_id IS NOT NULL) EXECUTE FUNCTION profiles_event_key_claim();
CREATE TRIGGER event_key_release BEFORE DELETE ON {TABLE}
    FOR EACH ROW WHEN (OLD.external_id IS NOT NULL) EXECUTE FUNCTION profiles_event_key_release();
CREATE TRIGGER event_key_move BEFORE UPDATE OF source, external_id ON {TABLE}
    FOR EACH ROW WHEN (OLD.source IS DISTINCT FROM NEW.source OR OLD.external_id IS DISTINCT FROM NEW.external_id)
    EXECUTE FUNCTION profiles_event_key_move();
CREATE TRIGGER event_key_truncate AFTER TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION profiles_event_key_truncate();
-- Also with session_replication_role = replica (the test flush, bulk loads): the keys
-- must never disagree with the events.
ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER event_key_claim;
ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER event_key_release;
ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER event_key_move;
ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER event_key_truncate;
"""


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE])
        return cursor.fetchone() is not None


def month_start(moment: datetime.datetime | datetime.date) -> datetime.date:
    return datetime.date(moment.year, moment.month, 1)


def next_month(month: datetime.date) -> datetime.date:
    return datetime.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: datetime.date) -> str:
    return f"{TABLE}_p{month:%Y%m}"


def _bound(month: datetime.date) -> str:
    return f"{month:%Y-%m-%d} 00:00:00+00"


def partitions_list() -> list[dict]:
    """The partitions, oldest first: name, first and next month (None for the default),
    an estimate of their rows (from the statistics, nothing is counted)."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), GREATEST(c.reltuples, 0)::bigint "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname", [TABLE])
        rows = cursor.fetchall()
    result = []
    for name, bound, estimate in rows:
        first = datetime.date(int(name[-6:-2]), int(name[-2:]), 1) if name != DEFAULT_PARTITION else None
        result.append({"name": name, "month": first, "until": next_month(first) if first else None,
                       "default": first is None, "rows_estimate": estimate, "bound": bound})
    return result


def partitions_ensure(*, months_ahead: int | None = None, now: datetime.datetime | None = None) -> list[str]:
    """Create the partitions of this month and the next `months_ahead` months, and of every
    month that has rows in the default partition (events imported from the past, or dated
    beyond the months ahead), which are moved into them. Idempotent: beat runs it every
    few hours. Returns the names created."""
    if not is_partitioned():
        return []
    months_ahead = settings.CDP_EVENT_PARTITIONS_AHEAD if months_ahead is None else months_ahead
    month = month_start(timezone.now() if now is None else now)
    wanted = set()
    for _ in range(months_ahead + 1):
        wanted.add(month)
        month = next_month(month)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "
                       f"FROM {DEFAULT_PARTITION}")
        wanted.update(row[0] for row in cursor.fetchall())
    return partitions_create(sorted(wanted))


def partitions_create(months: list[datetime.date]) -> list[str]:
    """Create these months' partitions (those missing), in one transaction. PostgreSQL
    refuses to create one while the default partition holds rows of its month, so those
    rows are set aside first and inserted again through the parent, which routes them into
    the new partitions; the key triggers release and claim their keys on the way."""
    existing = {p["name"] for p in partitions_list()}
    missing = [month for month in months if partition_name(month) not in existing]
    if not missing:
        return []
    quote = connection.ops.quote_name
    columns = ", ".join(COLUMNS)
    ranges = " OR ".join(["(occurred_at >= %s AND occurred_at < %s)"] * len(missing))
    bounds = [bound for month in missing for bound in (_bound(month), _bound(next_month(month)))]
    with transaction.atomic(), connection.cursor() as cursor:
        # Serialises with writers of those months and with another maintenance run.
        cursor.execute(f"LOCK TABLE {quote(DEFAULT_PARTITION)} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"CREATE TEMPORARY TABLE event_strays ON COMMIT DROP AS "
                       f"SELECT {columns} FROM {quote(DEFAULT_PARTITION)} WITH NO DATA")
        cursor.execute(f"WITH moved AS (DELETE FROM {quote(DEFAULT_PARTITION)} WHERE {ranges} RETURNING {columns}) "
                       f"INSERT INTO event_strays SELECT * FROM moved", bounds)
        strays = cursor.rowcount
        for month in missing:
            cursor.execute(f"CREATE TABLE {quote(partition_name(month))} PARTITION OF {quote(TABLE)} "
                           f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(next_month(month))}')")
        if strays:
            cursor.execute(f"INSERT INTO {quote(TABLE)} ({columns}) SELECT {columns} FROM event_strays")
            for table in [DEFAULT_PARTITION, *map(partition_name, missing)]:  # planned on their real sizes
                cursor.execute(f"ANALYZE {quote(table)}")
    created = [partition_name(month) for month in missing]
    log.info("events partitions created", extra={"partitions": created, "moved": strays})
    return created


def partition_drop(name: str) -> None:
    """Drop one month's partition with its events, releasing their keys first (dropping
    a table fires no row trigger)."""
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {quote(TABLE)} DETACH PARTITION {quote(name)}")
        cursor.execute(f"DELETE FROM {KEY_TABLE} k USING {quote(name)} e "
                       f"WHERE e.external_id IS NOT NULL AND k.source = e.source AND k.external_id = e.external_id "
                       f"AND k.event_id = e.id")
        cursor.execute(f"DROP TABLE {quote(name)}")
    log.info("events partition dropped", extra={"partition": name})


# --- the migration: a plain events table into a partitioned one, keeping every row --------

def convert_to_partitioned(cursor, *, months_ahead: int = 3, now: datetime.datetime | None = None) -> None:
    """Rename the plain table away, create the partitioned one with the same columns, copy
    the rows (indexes are built after the copy, which is faster), fill the key table
    from the rows, install the triggers, drop the old table. One transaction: writers
    wait on the lock meanwhile (see docs/partitioning.md for the figures)."""
    cursor.execute(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')")
    cursor.execute(f"ALTER SEQUENCE {cursor.fetchone()[0]} RENAME TO {TABLE}_unpartitioned_id_seq")
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_unpartitioned")
    for index in ("profiles_event_pkey", "event_timeline", "event_name_time", "event_name_category_time",
                  "event_source_external_id_unique"):
        cursor.execute(f"ALTER INDEX IF EXISTS {index} RENAME TO {index}_unpartitioned")
    cursor.execute(f"""
        CREATE TABLE {TABLE} (
            id bigint GENERATED BY DEFAULT AS IDENTITY,
            name varchar(64) NOT NULL,
            occurred_at timestamptz NOT NULL,
            properties jsonb NOT NULL,
            amount numeric(14, 2),
            source varchar(64) NOT NULL,
            external_id varchar(128),
            received_at timestamptz NOT NULL,
            profile_id bigint NOT NULL,
            category text GENERATED ALWAYS AS (properties ->> 'category') STORED
        ) PARTITION BY RANGE (occurred_at)""")
    cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    # A partition for every month with events, and for this month and the next ones.
    cursor.execute(f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "
                   f"FROM {TABLE}_unpartitioned")
    months = {row[0] for row in cursor.fetchall()}
    month = month_start(timezone.now() if now is None else now)
    for _ in range(months_ahead + 1):
        months.add(month)
        month = next_month(month)
    for month in sorted(months):
        cursor.execute(f"CREATE TABLE {partition_name(month)} PARTITION OF {TABLE} "
                       f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(next_month(month))}')")
    columns = ", ".join(COLUMNS)
    cursor.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {TABLE}_unpartitioned")
    # The identity continues after the copied ids.
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), "
                   f"GREATEST((SELECT max(id) FROM {TABLE}_unpartitioned), "
                   f"(SELECT last_value FROM {TABLE}_unpartitioned_id_seq), 1))")
    create_indexes(cursor)
    cursor.execute(KEY_TABLE_SQL)
    cursor.execute(f"INSERT INTO {KEY_TABLE} (source, external_id, event_id) "
                   f"SELECT source, external_id, id FROM {TABLE}_unpartitioned WHERE external_id IS NOT NULL")
    cursor.execute(KEY_TRIGGERS_SQL)
    cursor.execute(f"DROP TABLE {TABLE}_unpartitioned")
    cursor.execute(f"ANALYZE {TABLE}")
    cursor.execute(f"ANALYZE {KEY_TABLE}")


def create_indexes(cursor) -> None:
    """The model's indexes on the partitioned table (each partition gets its own), an index
    on id for lookups by primary key, and (source, external_id) for the writers' look-ups
    of stored events. The id is unique by its identity sequence: a unique index on a
    partitioned table must contain occurred_at, and (id, occurred_at) guards nothing more."""
    cursor.execute(f"CREATE INDEX event_id ON {TABLE} (id)")
    cursor.execute(f"CREATE INDEX event_timeline ON {TABLE} (profile_id, occurred_at DESC, id DESC)")
    cursor.execute(f"CREATE INDEX event_name_time ON {TABLE} (name, occurred_at) INCLUDE (profile_id)")
    cursor.execute(f"CREATE INDEX event_name_category_time ON {TABLE} (name, category, occurred_at) "
                   f"INCLUDE (profile_id) WHERE category IS NOT NULL")
    cursor.execute(f"CREATE INDEX event_source_external_id ON {TABLE} (source, external_id) "
                   f"WHERE external_id IS NOT NULL")


def convert_to_plain(cursor) -> None:
    """The way back (migrating backwards): one plain table with the original indexes."""
    cursor.execute(f"DROP TABLE IF EXISTS {KEY_TABLE}")
    for function in ("claim", "release", "move", "truncate"):
        cursor.execute(f"DROP FUNCTION IF EXISTS profiles_event_key_{function}() CASCADE")
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_partitioned")
    for index in ("event_id", "event_timeline", "event_name_time", "event_name_category_time",
                  "event_source_external_id"):
        cursor.execute(f"ALTER INDEX IF EXISTS {index} RENAME TO {index}_partitioned")
    cursor.execute(f"CREATE TABLE {TABLE} (LIKE {TABLE}_partitioned INCLUDING DEFAULTS INCLUDING GENERATED "
                   f"INCLUDING IDENTITY)")
    columns = ", ".join(COLUMNS)
    cursor.execute(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {TABLE}_partitioned")
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), "
                   f"(SELECT GREATEST(max(id), 1) FROM {TABLE}))")
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT profiles_event_pkey PRIMARY KEY (id)")
    cursor.execute(f"CREATE INDEX event_timeline ON {TABLE} (profile_id, occurred_at DESC, id DESC)")
    cursor.execute(f"CREATE INDEX event_name_time ON {TABLE} (name, occurred_at) INCLUDE (profile_id)")
    cursor.execute(f"CREATE INDEX event_name_category_time ON {TABLE} (name, category, occurred_at) "
                   f"INCLUDE (profile_id) WHERE category IS NOT NULL")
    cursor.execute(f"CREATE UNIQUE INDEX event_source_external_id_unique ON {TABLE} (source, external_id) "
                   f"WHERE external_id IS NOT NULL")
    cursor.execute(f"DROP TABLE {TABLE}_partitioned CASCADE")
