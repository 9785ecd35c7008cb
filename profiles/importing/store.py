"""The pipeline's reads and writes, set-based: one statement (or one COPY) per batch and table.

`OrmStore` is the portable path (SQLite and any database Django supports): filter on
chunks of keys, `bulk_create`, `bulk_update`. `PostgresStore` does the same work the fast
way: keys as arrays (`unnest`), ids taken from the sequence up front and rows streamed
with binary COPY (nothing read back), updates COPYed into a temporary table and applied
with one `UPDATE … FROM`.
Both run inside the batch's transaction, so a failure leaves nothing of the batch.
"""
from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from psycopg.types.json import set_json_dumps

from ..models import Event, Identity, ImportChange, Profile, ProfileTag

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


def store_for_connection() -> OrmStore:
    return PostgresStore() if connection.vendor == "postgresql" else OrmStore()


class OrmStore:
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

    def profiles_insert(self, rows: list[dict]) -> list[int]:
        now = timezone.now()
        created = Profile.objects.bulk_create(
            [Profile(**row, created_at=now, updated_at=now) for row in rows], batch_size=1000)
        return [p.pk for p in created]

    def identities_insert(self, rows: list[tuple[int, str, str]], source: str, *, ids_needed: bool = True) -> list[int]:
        now = timezone.now()
        created = Identity.objects.bulk_create(
            [Identity(profile_id=p, kind_id=k, value=v, source=source, created_at=now) for p, k, v in rows],
            batch_size=1000)
        return [i.pk for i in created]

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
        now = timezone.now()
        created = Event.objects.bulk_create([Event(**row, received_at=now) for row in rows], batch_size=1000)
        return [e.pk for e in created]


class PostgresStore(OrmStore):
    def __init__(self):
        self._sequences: dict[type, str] = {}  # model → the sequence of its ids

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
                values[traits] = json.loads(values[traits])
            result[pk] = dict(zip(("status", *UPDATABLE), values))
        return result

    def _new_ids(self, model, count: int) -> list[int]:
        """`count` ids taken from the table's sequence in one round trip, so that rows can
        be COPYed with their ids and nothing has to be read back."""
        with connection.cursor() as cursor:
            if model not in self._sequences:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
                self._sequences[model] = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [self._sequences[model], count])
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

    def profiles_insert(self, rows: list[dict]) -> list[int]:
        if not rows:
            return []
        ids = self._new_ids(Profile, len(rows))
        now = timezone.now()
        defaults = {"name": "", "gender": "unknown", "birth_date": None, "phone": "", "email": "",
                    "country": settings.CDP_DEFAULT_COUNTRY, "province": "", "city": "", "occupation": "",
                    "traits": {}}
        # Fields the import never sets get the model's default.
        fixed = {f.name: f.get_default() for f in Profile._meta.concrete_fields
                 if f.name not in ("id", "uuid", "created_at", "updated_at", *defaults) and not f.generated}
        tail = (now, now, *fixed.values())
        self._copy(Profile, ["id", "uuid", *defaults, "created_at", "updated_at", *fixed], (
            (pk, uuid.uuid4(), *[row.get(name, default) for name, default in defaults.items()], *tail)
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
