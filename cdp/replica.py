"""Reads that may lag behind a little — analyses, segment previews and counts — from a
streaming replica, so that they never compete with imports and the API for the primary.

With DATABASE_REPLICA_URL set, `on_replica(read, …)` runs `read` with the ORM's reads
sent to the "replica" database (ReplicaRouter) and `reading` standing for its connection
in raw SQL. It reads from the primary instead while the replica is down or replays more
than CDP_REPLICA_MAX_LAG_SECONDS behind (checked at most every
CDP_REPLICA_CHECK_SECONDS per process), and again on the primary when the replica fails
during the read. Writes always go to the primary. Without a replica, or outside
`on_replica`, `reading` is the primary's connection."""
import logging
import time
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

REPLICA = "replica"
log = logging.getLogger(__name__)
_alias: ContextVar[str] = ContextVar("cdp_reading_alias", default=DEFAULT_DB_ALIAS)
_checked: dict[str, float | bool] = {"at": float("-inf"), "fresh": False}


def reading_alias() -> str:
    """The database this block reads from: "replica" inside on_replica when it is fresh."""
    return _alias.get()


class _Reading:
    """The connection of reading_alias(), for raw SQL (`reading.cursor()`, `reading.ops`)."""

    def __getattr__(self, name):
        return getattr(connections[_alias.get()], name)


reading = _Reading()


def on_replica(read, *args, **kwargs):
    """`read(*args, **kwargs)` reading from the replica when it is fresh, else (or when
    it fails meanwhile) from the primary."""
    if not replica_fresh():
        return read(*args, **kwargs)
    token = _alias.set(REPLICA)
    try:
        return read(*args, **kwargs)
    except DatabaseError:
        if connections[REPLICA].is_usable():
            raise  # the read itself failed (a bad statement, a timeout): the primary would fail too
        log.warning("The read replica stopped answering; reading from the primary.")
        connections[REPLICA].close()
        _checked.update(at=time.monotonic(), fresh=False)
    finally:
        _alias.reset(token)
    return read(*args, **kwargs)


def replica_fresh() -> bool:
    """True when a replica is configured, answers, and replays at most
    CDP_REPLICA_MAX_LAG_SECONDS behind the primary."""
    if REPLICA not in settings.DATABASES:
        return False
    if time.monotonic() - _checked["at"] < settings.CDP_REPLICA_CHECK_SECONDS:
        return bool(_checked["fresh"])
    lag = replica_lag()
    fresh = lag is not None and lag <= settings.CDP_REPLICA_MAX_LAG_SECONDS
    if not fresh:
        log.warning("Reading from the primary: the read replica is %s.",
                    "unreachable" if lag is None else f"{lag:.1f} s behind")
    _checked.update(at=time.monotonic(), fresh=fresh)
    return fresh


def replica_forget() -> None:
    """Check the replica again on the next read (tests; after a failover)."""
    _checked.update(at=float("-inf"), fresh=False)


def replica_lag() -> float | None:
    """Seconds the replica is behind the primary (0 when it has replayed everything the
    primary has written, however long ago the last write was), None when unreachable."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            written = cursor.fetchone()[0]
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN pg_last_wal_replay_lsn() >= %s::pg_lsn THEN 0 "
                "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END",
                [written])
            return float(cursor.fetchone()[0])
    except DatabaseError:
        connections[REPLICA].close()
        return None


class ReplicaRouter:
    """Reads inside on_replica go to the replica; everything else to the primary."""

    def db_for_read(self, model, **hints):
        return _alias.get()

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, two copies

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # the replica follows the primary's schema by itself
