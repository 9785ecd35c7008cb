"""The set-based write of a batch of consent ledger entries (an import's batch, the demo,
any caller of consent_record_many with many entries).

The entries, validated by consent.services, go into a temporary staging table — by COPY
on PostgreSQL, one executemany on SQLite — with their ledger ids taken up front from the
ledger's sequence, in the order given. Then one INSERT … SELECT each writes the ledger,
the current states (an upsert that keeps a newer state: a later entry wins only if it is
newer by capture time, then id), the timeline rows and the audit rows. The ledger guard
triggers (migrations 0002/0003) see ordinary inserts: nothing here updates or deletes a
ledger row, and every state copies its entry.

Per entry this costs a tuple in Python and four index insertions in the database, instead
of a model instance for the ledger, the timeline and the audit log each and a state read
back (see bench/bench_consent.py for the figures).
"""
from __future__ import annotations

import datetime
from typing import NamedTuple

from django.db import connection

from cdp.actors import Actor
from cdp.models import AuditLog
from profiles.models import Profile, ProfileActivity, ProfileStatus

from .models import ConsentRecord, ConsentState, Purpose

STAGING = "consent_entries_staging"
# (column, PostgreSQL type, SQLite type); evidence_ip goes as text and is cast on insert.
_COLUMNS = (
    ("id", "int8", "integer"), ("profile_id", "int8", "integer"), ("purpose_id", "int8", "integer"),
    ("status", "text", "text"), ("notice_version", "int4", "integer"), ("captured_at", "timestamptz", "text"),
    ("source", "text", "text"), ("evidence_channel", "text", "text"), ("evidence_ip", "text", "text"),
    ("evidence_user_agent", "text", "text"), ("evidence_reference", "text", "text"), ("evidence_text", "text", "text"),
    ("expires_at", "timestamptz", "text"), ("guardian_consent", "bool", "integer"), ("target", "text", "text"),
)
_sequences: dict[str, str] = {}


class StagedEntry(NamedTuple):
    """One valid entry as the ledger stores it, in the staging table's column order (after
    the id); `target` is the customer's public id (the audit row's)."""

    profile_id: int
    purpose_id: int
    status: str
    notice_version: int | None
    captured_at: datetime.datetime
    source: str
    evidence_channel: str
    evidence_ip: str | None
    evidence_user_agent: str
    evidence_reference: str
    evidence_text: str
    expires_at: datetime.datetime | None
    guardian_consent: bool
    target: str


def active_profiles_locked(profile_ids: set[int]) -> set[int]:
    """Which of these customers are active, each locked until the transaction ends (an
    erasure or a merge waits for the entries). PostgreSQL gets the ids as one string:
    psycopg adapts a 20,000-element list element by element."""
    if connection.vendor != "postgresql":
        return set(Profile.objects.select_for_update().filter(pk__in=profile_ids, status=ProfileStatus.ACTIVE)
                   .order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {_table(Profile)} WHERE id = ANY(string_to_array(%s, ',')::bigint[]) AND status = %s "
            "ORDER BY id FOR UPDATE", [",".join(map(str, profile_ids)), ProfileStatus.ACTIVE])
        return {row[0] for row in cursor.fetchall()}


def ledger_ids_take(count: int) -> list[int]:
    """`count` new ledger ids, increasing, taken from the ledger's sequence (PostgreSQL) or
    its AUTOINCREMENT counter (SQLite, whose update also takes the write lock), so that rows
    go in with their ids and nothing is read back."""
    table = ConsentRecord._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if table not in _sequences:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
                _sequences[table] = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [_sequences[table], count])
            return sorted(row[0] for row in cursor.fetchall())
        highest = f"(SELECT COALESCE(MAX(id), 0) FROM {_table(ConsentRecord)})"
        cursor.execute(f"UPDATE sqlite_sequence SET seq = MAX(seq, {highest}) + %s WHERE name = %s", [count, table])
        if not cursor.rowcount:
            cursor.execute(f"INSERT INTO sqlite_sequence (name, seq) VALUES (%s, {highest} + %s)", [table, count])
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        last = cursor.fetchone()[0]
        return list(range(last - count + 1, last + 1))


def ledger_write(entries: list[StagedEntry], ids: list[int], *, actor: Actor, now: datetime.datetime) -> None:
    """Stage `entries` (with their `ids`), then write the ledger, the states, the timeline
    and the audit rows from the staging table, one statement each."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        _stage(cursor, entries, ids, postgres)
        typed = _typed(postgres)
        ledger, state = _table(ConsentRecord), _table(ConsentState)
        names = [column for column, _pg, _lite in _COLUMNS if column != "target"]
        copied = ", ".join(f"s.{column}::inet" if postgres and column == "evidence_ip" else f"s.{column}"
                           for column in names)
        cursor.execute(
            f"INSERT INTO {ledger} ({', '.join(names)}, recorded_at, actor_kind, actor_user_id, actor_label, "
            f"pseudonymised) SELECT {copied}, {typed('timestamptz')}, {typed('text')}, {typed('int4')}, "
            f"{typed('text')}, %s FROM {STAGING} s ORDER BY s.id",
            [_when(now, postgres), actor.kind, _user_id(actor), actor.label[:150], False])
        kept = ("status", "notice_version", "captured_at", "expires_at", "guardian_consent")
        # The latest staged entry per customer and purpose; it replaces the current state
        # only if it is later (a back-filled paper form joins the history, not the state).
        cursor.execute(
            f"INSERT INTO {state} (profile_id, purpose_id, {', '.join(kept)}, record_id) "
            f"SELECT profile_id, purpose_id, {', '.join(kept)}, id FROM ("
            f"SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s.profile_id, s.purpose_id "
            f"ORDER BY s.captured_at DESC, s.id DESC) AS n FROM {STAGING} s) latest WHERE n = 1 "
            f"ON CONFLICT (purpose_id, profile_id) DO UPDATE SET "
            + ", ".join(f"{column} = excluded.{column}" for column in (*kept, "record_id"))
            + f" WHERE ({state}.captured_at, {state}.record_id) < (excluded.captured_at, excluded.record_id)")
        json = "jsonb_build_object" if postgres else "json_object"
        purposes = _table(Purpose)
        # The timeline's params as profiles.activity.consents_changed writes them.
        cursor.execute(
            f"INSERT INTO {_table(ProfileActivity)} (profile_id, type, params, actor_kind, actor_user_id, actor_label, "
            f"occurred_at) SELECT s.profile_id, {typed('text')}, {json}('purpose', p.code, 'purpose_name', p.name_zh, "
            f"'purpose_name_en', p.name_en, 'status', s.status, 'source', s.source), {typed('text')}, "
            f"{typed('int4')}, {typed('text')}, {typed('timestamptz')} "
            f"FROM {STAGING} s JOIN {purposes} p ON p.id = s.purpose_id ORDER BY s.id",
            [ProfileActivity.Type.CONSENT_CHANGED.value, actor.kind, _user_id(actor), actor.label[:150],
             _when(now, postgres)])
        # The audit rows as cdp.audit.audit_record_many writes them, one per entry.
        cursor.execute(
            f"INSERT INTO {_table(AuditLog)} (action, actor_kind, actor_user_id, actor_label, target, details, count, "
            f"occurred_at) SELECT {typed('text')}, {typed('text')}, {typed('int4')}, {typed('text')}, s.target, "
            f"{json}('purpose', p.code, 'status', s.status, 'source', s.source, 'record', s.id), 1, "
            f"{typed('timestamptz')} FROM {STAGING} s JOIN {purposes} p ON p.id = s.purpose_id ORDER BY s.id",
            [AuditLog.Action.CONSENT_RECORDED.value, actor.kind, _user_id(actor), actor.label[:150], _when(now, postgres)])


def _stage(cursor, entries: list[StagedEntry], ids: list[int], postgres: bool) -> None:
    """The staging table, emptied (it lives as long as the connection), then filled."""
    types = [(column, pg if postgres else lite) for column, pg, lite in _COLUMNS]
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} ("
                   + ", ".join(f"{column} {kind}" for column, kind in types) + ")")
    cursor.execute(f"DELETE FROM {STAGING}" if not postgres else f"TRUNCATE {STAGING}")
    if postgres:
        with cursor.cursor.copy(f"COPY {STAGING} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([kind for _column, kind in types])
            for pk, entry in zip(ids, entries):
                copy.write_row((pk, *entry))
        return
    adapt = connection.ops.adapt_datetimefield_value
    cursor.executemany(
        f"INSERT INTO {STAGING} VALUES ({', '.join(['%s'] * len(types))})",
        [(pk, entry.profile_id, entry.purpose_id, entry.status, entry.notice_version, adapt(entry.captured_at),
          entry.source, entry.evidence_channel, entry.evidence_ip, entry.evidence_user_agent, entry.evidence_reference,
          entry.evidence_text, adapt(entry.expires_at), entry.guardian_consent, entry.target)
         for pk, entry in zip(ids, entries)])


def _typed(postgres: bool):
    """A parameter placeholder with its type: PostgreSQL would read an untyped parameter in
    an INSERT … SELECT's list as text."""
    return (lambda kind: f"%s::{kind}") if postgres else (lambda kind: "%s")


def _when(moment: datetime.datetime, postgres: bool):
    return moment if postgres else connection.ops.adapt_datetimefield_value(moment)


def _user_id(actor: Actor) -> int | None:
    return actor.user.pk if actor.user is not None else None


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)
