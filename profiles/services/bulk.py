"""The one bulk writer of customers, identities and events: imports, the partner API and
the SDK collection write through it (the demo dataset can COPY through `copy_text`).

`BulkWriter` is the portable path (SQLite and any database Django supports): filter on
chunks of keys, `bulk_create`, `bulk_update`, multi-row `INSERT … ON CONFLICT`.
`PostgresBulkWriter` does the same work the fast way: keys as arrays (`unnest`), ids
taken from the sequence up front and rows streamed with binary COPY (nothing read back),
updates COPYed into a temporary table and applied with one `UPDATE … FROM`.

Two kinds of insert:
* plain (`profiles_insert`, `identities_insert`, `events_insert`): every row is new, a
  clash with the table's unique index is an `IntegrityError` (the import, which holds the
  import lock and looked first, then writes the batch again);
* skipping (`identities_insert_new`, `events_insert_new`): a row someone else inserted
  meanwhile is left out and the caller is told which (the API and SDK collection, whose
  concurrent requests hold no lock; rows go in key order, so they take the unique index's
  locks in one order and cannot deadlock).
Everything runs in the caller's transaction, so a failure leaves nothing of the batch.
"""
from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterable, Sequence

from django.db import connection, transaction
from django.db.models import JSONField, Q
from django.utils import timezone
from psycopg.types.json import set_json_dumps

from ..models import Event, Identity, ImportChange, Profile, ProfileTag

Key = tuple[str, str]

# Advisory lock key: import batches (and undo) run one at a time, so two overlapping files
# cannot both decide that the same phone is new.
IMPORT_LOCK = 0x1D0C_1A9E
_CHUNK = 500  # keys per IN (...) on the portable path
# Long lists go to PostgreSQL as one delimited string split server-side: psycopg quotes a
# Python list element by element, which cost seconds per batch. Identity values and
# external ids never hold control characters (the normalisers refuse them), so the unit
# separator cannot appear inside one.
TEXT_LIST = "string_to_array(%s, chr(31))"
ID_LIST = "string_to_array(%s, ',')::bigint[]"


def text_list(values) -> str:
    return "\x1f".join(values)


def id_list(ids) -> str:
    return ",".join(map(str, ids))


UPDATABLE = ("name", "gender", "birth_date", "phone", "email", "country", "province", "city", "occupation", "traits")
EVENT_FIELDS = ("profile_id", "name", "occurred_at", "properties", "amount", "source", "external_id")


def bulk_writer() -> BulkWriter:
    return PostgresBulkWriter() if connection.vendor == "postgresql" else BulkWriter()


def _new_profile(defaults: dict | None, now) -> dict:
    """A new customer's values where the caller gives none: `defaults`, else the model's
    default (`now` for its times)."""
    values = {}
    for f in Profile._meta.concrete_fields:
        if f.primary_key or f.generated:
            continue
        if defaults and f.name in defaults:
            values[f.name] = defaults[f.name]
        elif f.name in ("created_at", "updated_at"):
            values[f.name] = now
        else:
            values[f.name] = f.get_default()
    return values


class BulkWriter:
    def lock(self) -> None:
        """Serialise imports. SQLite: the write transaction is already exclusive."""

    def owners(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        found = {}
        by_kind: dict[str, list[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in by_kind.items():
            for start in range(0, len(values), _CHUNK):
                rows = Identity.objects.filter(kind_id=kind, value__in=values[start:start + _CHUNK])
                for value, profile_id in rows.values_list("value", "profile_id"):
                    found[(kind, value)] = profile_id
        return found

    def profiles_current(self, ids: list[int]) -> dict[int, dict]:
        result = {}
        for start in range(0, len(ids), _CHUNK):
            for row in Profile.objects.filter(pk__in=ids[start:start + _CHUNK]).values("pk", "status", *UPDATABLE):
                result[row.pop("pk")] = row
        return result

    def profiles_insert(self, rows: list[dict], *, defaults: dict | None = None) -> list[int]:
        """New customers (field name → value; "uuid" too when the caller chose it); their
        ids, in the rows' order. A field a row leaves out takes `defaults`' value, else the
        model's default."""
        now = timezone.now()
        created = Profile.objects.bulk_create(
            [Profile(**{**(defaults or {}), **row}, created_at=now, updated_at=now) for row in rows], batch_size=1000)
        return [p.pk for p in created]

    def identities_insert(self, rows: list[tuple[int, str, str]], source: str, *, ids_needed: bool = True) -> list[int]:
        """(profile id, kind, value) rows, none of them held by anyone yet; their ids."""
        now = timezone.now()
        created = Identity.objects.bulk_create(
            [Identity(profile_id=p, kind_id=k, value=v, source=source, created_at=now) for p, k, v in rows],
            batch_size=1000)
        return [i.pk for i in created]

    def identities_insert_new(self, rows: list[tuple[int, str, str]], source: str) -> set[Key]:
        """(profile id, kind, value) rows, skipping keys someone holds already (a concurrent
        request may have inserted one since they were looked up); returns those keys."""
        if not rows:
            return set()
        now = timezone.now()
        values = [(kind, value, pid, source, now) for pid, kind, value in sorted(rows, key=lambda r: (r[1], r[2]))]
        inserted = self._insert_skipping(Identity, ["kind", "value", "profile_id", "source", "created_at"], values,
                                         ["kind", "value"])
        return {(kind, value) for _pid, kind, value in rows} - inserted

    def profiles_update(self, changes: dict[int, dict]) -> None:
        """`changes`: profile id → {field: new value (JSON form: dates as ISO text)}."""
        if not changes:
            return
        now = timezone.now()
        profiles = []
        fields = set()
        for start in range(0, len(changes), _CHUNK):
            for profile in Profile.objects.filter(pk__in=list(changes)[start:start + _CHUNK]):
                for name, value in changes[profile.pk].items():
                    setattr(profile, name, Profile._meta.get_field(name).to_python(value))
                    fields.add(name)
                profile.updated_at = now
                profiles.append(profile)
        Profile.objects.bulk_update(profiles, [*sorted(fields), "updated_at"], batch_size=500)

    def changes_insert(self, job_id: int, befores: dict[int, dict]) -> None:
        """Each changed customer's earlier values, for undo."""
        ImportChange.objects.bulk_create(
            [ImportChange(job_id=job_id, profile_id=pk, before=before) for pk, before in befores.items()],
            batch_size=2000)

    def profile_tags_existing(self, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
        profile_ids = sorted({p for p, _t in pairs})
        tag_ids = {t for _p, t in pairs}
        found = set()
        for start in range(0, len(profile_ids), _CHUNK):
            found.update(ProfileTag.objects.filter(profile_id__in=profile_ids[start:start + _CHUNK], tag_id__in=tag_ids)
                         .values_list("profile_id", "tag_id"))
        return found & pairs

    def profile_tags_insert(self, pairs: list[tuple[int, int]], actor_user_id: int | None, label: str,
                            reason: str) -> list[int]:
        now = timezone.now()
        created = ProfileTag.objects.bulk_create(
            [ProfileTag(profile_id=p, tag_id=t, source="import", assigned_by_id=actor_user_id,
                        assigned_by_label=label[:150], assigned_at=now, reason=reason[:255]) for p, t in pairs],
            batch_size=1000)
        return [row.pk for row in created]

    def events_existing(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        found = set()
        by_source: dict[str, list[str]] = {}
        for source, external_id in pairs:
            by_source.setdefault(source, []).append(external_id)
        for source, ids in by_source.items():
            for start in range(0, len(ids), _CHUNK):
                found.update(Event.objects.filter(source=source, external_id__in=ids[start:start + _CHUNK])
                             .values_list("source", "external_id"))
        return found

    def events_insert(self, rows: list[dict]) -> list[int]:
        """Events (`EVENT_FIELDS`; amount optional) none of which is stored yet; their ids."""
        now = timezone.now()
        created = Event.objects.bulk_create([Event(**row, received_at=now) for row in rows], batch_size=1000)
        return [e.pk for e in created]

    def events_insert_new(self, rows: list[dict], *, received_at: datetime.datetime) -> set[Key]:
        """Events (`EVENT_FIELDS`), skipping those whose (source, external id) is stored
        already; returns the (source, external id) of those inserted."""
        if not rows:
            return set()
        values = [tuple(row.get(name) for name in EVENT_FIELDS) + (received_at,)
                  for row in sorted(rows, key=lambda r: (r["source"], r["external_id"]))]
        return self._insert_skipping(Event, [*EVENT_FIELDS, "received_at"], values, ["source", "external_id"])

    def _insert_skipping(self, model, columns: list[str], rows: list[tuple], returning: list[str]) -> set[tuple]:
        """INSERT … ON CONFLICT DO NOTHING RETURNING `returning`: the keys actually
        inserted. Multi-row VALUES (SQLite ≥ 3.35), values prepared by the model's fields."""
        fields = [model._meta.get_field(column) for column in columns]  # names or attnames (profile_id)
        prepared = [[f.get_db_prep_save(v, connection) for f, v in zip(fields, row)] for row in rows]
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        target = ", ".join(quote(f.column) for f in fields)
        keys = ", ".join(quote(model._meta.get_field(c).column) for c in returning)
        inserted: set[tuple] = set()
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        chunk = max(1, 30_000 // len(columns))  # SQLite allows 32,766 parameters per statement
        with connection.cursor() as cursor:
            for start in range(0, len(prepared), chunk):
                part = prepared[start:start + chunk]
                cursor.execute(f"INSERT INTO {table} ({target}) VALUES {', '.join([placeholders] * len(part))} "
                               f"ON CONFLICT DO NOTHING RETURNING {keys}", [value for row in part for value in row])
                inserted.update(tuple(row) for row in cursor.fetchall())
        return inserted


_sequences: dict[str, str] = {}  # table → the sequence of its ids


class PostgresBulkWriter(BulkWriter):
    def lock(self) -> None:
        # JIT compiling is off for the batch: planned on arrays of thousands of keys, the
        # lookups look expensive enough to be compiled, which takes longer than running them.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s), set_config('jit', 'off', true)", [IMPORT_LOCK])

    def owners(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        # One query for all kinds, one probe of the (kind, value) index per key. The lateral
        # subquery (OFFSET 0 keeps it one) rules out hashing the whole identity table, which
        # the planner picks when its statistics are stale, as they are during a big import.
        if not keys:
            return {}
        kinds, values = zip(*keys)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT k.kind, k.value, i.profile_id FROM unnest({TEXT_LIST}, {TEXT_LIST}) AS k(kind, value) "
                f"CROSS JOIN LATERAL (SELECT profile_id FROM {Identity._meta.db_table} "
                "WHERE kind = k.kind AND value = k.value OFFSET 0) i",
                [text_list(kinds), text_list(values)])
            return {(kind, value): profile_id for kind, value, profile_id in cursor.fetchall()}

    def profiles_current(self, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        columns = ["id", "status", *(Profile._meta.get_field(name).column for name in UPDATABLE)]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(columns)} FROM {Profile._meta.db_table} WHERE id = ANY({ID_LIST})",
                           [id_list(ids)])
            rows = cursor.fetchall()
        traits = UPDATABLE.index("traits") + 1
        result = {}
        for pk, *values in rows:
            if isinstance(values[traits], str):  # Django leaves JSON columns to the field to decode
                values[traits] = {} if values[traits] == "{}" else json.loads(values[traits])  # mostly empty
            result[pk] = dict(zip(("status", *UPDATABLE), values))
        return result

    def _new_ids(self, model, count: int) -> list[int]:
        """`count` ids taken from the table's sequence in one round trip, so that rows can
        be COPYed with their ids and nothing has to be read back."""
        table = model._meta.db_table
        with connection.cursor() as cursor:
            if table not in _sequences:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
                _sequences[table] = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [_sequences[table], count])
            return [row[0] for row in cursor.fetchall()]

    def _copy(self, model, fields: list[str], rows) -> None:
        """COPY `rows` (tuples of Python values for `fields`) into `model`'s table, in the
        binary format: nothing to escape or format as text on either side."""
        fields = [model._meta.get_field(name) for name in fields]
        quote = connection.ops.quote_name
        sql = (f"COPY {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
               "FROM STDIN (FORMAT BINARY)")
        # psycopg's own cursor, so its errors are wrapped by hand: a unique violation
        # must reach the pipeline as Django's IntegrityError.
        with connection.cursor() as cursor, connection.wrap_database_errors:
            set_json_dumps(_json, cursor.cursor)
            with cursor.cursor.copy(sql) as copy:
                copy.set_types([f.db_type(connection).split("(")[0] for f in fields])  # varchar(16) → varchar
                for row in rows:
                    copy.write_row(row)

    def profiles_insert(self, rows: list[dict], *, defaults: dict | None = None) -> list[int]:
        if not rows:
            return []
        ids = self._new_ids(Profile, len(rows))
        template = _new_profile(defaults, timezone.now())
        del template["uuid"]  # one per row
        given: set[str] = set()
        for row in rows:
            given.update(row)
        varying = [(name, default) for name, default in template.items() if name in given]
        fixed = [name for name in template if name not in given]  # the same for every row
        tail = tuple(template[name] for name in fixed)
        self._copy(Profile, ["id", "uuid", *(name for name, _d in varying), *fixed], (
            (pk, row.get("uuid") or uuid.uuid4(), *[row.get(name, default) for name, default in varying], *tail)
            for pk, row in zip(ids, rows)))
        return ids

    def identities_insert(self, rows: list[tuple[int, str, str]], source: str, *, ids_needed: bool = True) -> list[int]:
        """COPY the identities; ids are taken for them only when undo needs them
        (identities of customers created by the same import go with the customer)."""
        if not rows:
            return []
        now = timezone.now()
        if not ids_needed:
            self._copy(Identity, ["profile", "kind", "value", "source", "created_at"],
                       ((p, k, v, source, now) for p, k, v in rows))
            return []
        ids = self._new_ids(Identity, len(rows))
        self._copy(Identity, ["id", "profile", "kind", "value", "source", "created_at"],
                   ((pk, p, k, v, source, now) for pk, (p, k, v) in zip(ids, rows)))
        return ids

    def profiles_update(self, changes: dict[int, dict]) -> None:
        if not changes:
            return
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS import_profile_changes "
                           "(profile_id bigint PRIMARY KEY, changes jsonb) ON COMMIT DELETE ROWS")
            cursor.execute("TRUNCATE import_profile_changes")
            set_json_dumps(_json, cursor.cursor)
            with cursor.cursor.copy("COPY import_profile_changes (profile_id, changes) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "jsonb"])
                for row in changes.items():
                    copy.write_row(row)
            # Only the fields some customer of the batch changes are assigned.
            changed = {name for fields in changes.values() for name in fields}
            sets = []
            for name in UPDATABLE:
                if name not in changed:
                    continue
                column = Profile._meta.get_field(name).column
                if name == "traits":
                    value = "c.changes->'traits'"
                elif name == "birth_date":
                    value = "(c.changes->>'birth_date')::date"
                else:
                    value = f"c.changes->>'{name}'"
                sets.append(f"{column} = CASE WHEN c.changes ? '{name}' THEN {value} ELSE p.{column} END")
            # The ids again as a list: the planner then probes the primary key for them rather
            # than scanning the whole table (it knows nothing of the temporary table's rows).
            cursor.execute(
                f"UPDATE {Profile._meta.db_table} p SET {', '.join(sets)}, updated_at = %s "
                f"FROM import_profile_changes c WHERE p.id = c.profile_id AND p.id = ANY({ID_LIST})",
                [timezone.now(), id_list(changes)])

    def changes_insert(self, job_id: int, befores: dict[int, dict]) -> None:
        if befores:
            self._copy(ImportChange, ["job", "profile_id", "before"],
                       ((job_id, pk, before) for pk, before in befores.items()))

    def events_existing(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        if not pairs:
            return set()
        by_source: dict[str, list[str]] = {}
        for source, external_id in pairs:
            by_source.setdefault(source, []).append(external_id)
        found = set()
        with connection.cursor() as cursor:
            for source, external_ids in by_source.items():
                cursor.execute(f"SELECT source, external_id FROM {Event._meta.db_table} "
                               f"WHERE source = %s AND external_id = ANY({TEXT_LIST})", [source, text_list(external_ids)])
                found.update(cursor.fetchall())
        return found

    def events_insert(self, rows: list[dict]) -> list[int]:
        if not rows:
            return []
        ids = self._new_ids(Event, len(rows))
        received = timezone.now()
        self._copy(Event, ["id", "profile", "name", "occurred_at", "properties", "amount", "source", "external_id",
                           "received_at"], (
            (pk, row["profile_id"], row["name"], row["occurred_at"], row["properties"], row.get("amount"),
             row["source"], row["external_id"], received) for pk, row in zip(ids, rows)))
        return ids


    def _staging_table(self, cursor, model, table: str, target: str, columns: list[str]) -> str:
        """A temporary table with just these columns, made once per database connection
        (temporary tables live as long as the connection) and emptied at every commit."""
        name = connection.ops.quote_name(f"staging_{model._meta.db_table}_{'_'.join(columns)}"[:63])
        made = getattr(connection, "_cdp_staging_tables", None)
        if made is None or made[0] is not connection.connection:  # a new connection has none yet
            made = (connection.connection, set())
            connection._cdp_staging_tables = made
        if name not in made[1]:
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS "
                           f"AS SELECT {target} FROM {table} WITH NO DATA")
            # Remembered once committed: a rolled-back transaction takes the new table with it.
            transaction.on_commit(lambda: made[1].add(name))
        return name

    def _insert_skipping(self, model, columns: list[str], rows: list[tuple], returning: list[str]) -> set[tuple]:
        """The rows COPYed into a temporary table first and inserted from it in one
        statement (no parameter list to build and parse)."""
        fields = [model._meta.get_field(column) for column in columns]
        # COPY adapts ints, text, decimals and times itself; JSON goes as its text.
        json_columns = [isinstance(f, JSONField) for f in fields]
        if any(json_columns):
            rows = [[json.dumps(v, ensure_ascii=False) if is_json else v for is_json, v in zip(json_columns, row)]
                    for row in rows]
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        target = ", ".join(quote(f.column) for f in fields)
        keys = ", ".join(quote(model._meta.get_field(c).column) for c in returning)
        with connection.cursor() as cursor:
            staging = self._staging_table(cursor, model, table, target, columns)
            with cursor.cursor.copy(f"COPY {staging} ({target}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # Moving the rows out empties the staging table in the same statement.
            cursor.execute(f"WITH moved AS (DELETE FROM {staging} RETURNING {target}) "
                           f"INSERT INTO {table} ({target}) SELECT {target} FROM moved "
                           f"ON CONFLICT DO NOTHING RETURNING {keys}")
            return {tuple(row) for row in cursor.fetchall()}


def copy_text(model, columns: Sequence[str], chunks: Iterable[bytes | str]) -> None:
    """PostgreSQL only: rows already formatted as COPY text (tab between fields, \\N for
    NULL, backslash, tab and line breaks escaped) into `model`'s table, `columns` being
    its column names; one COPY, the chunks streamed as they come."""
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(sql) as copy:
            for chunk in chunks:
                copy.write(chunk)


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def id_ranges(ids: list[int]) -> list[list[int]]:
    """[3, 4, 5, 9] → [[3, 5], [9, 9]]: ids taken from a sequence in one go stay compact."""
    ranges: list[list[int]] = []
    for pk in sorted(ids):
        if ranges and pk == ranges[-1][1] + 1:
            ranges[-1][1] = pk
        else:
            ranges.append([pk, pk])
    return ranges


def ranges_q(ranges: list[list[int]], field: str = "pk") -> Q:
    q = Q(pk__in=[])
    for first, last in ranges:
        q |= Q(**{f"{field}__range": (first, last)})
    return q
