"""The pipeline's reads and writes, set-based: one statement (or one COPY) per batch and table.

`OrmStore` is the portable path (SQLite and any database Django supports): filter on
chunks of keys, `bulk_create`, `bulk_update`. `PostgresStore` does the same work the fast
way: keys as arrays (`unnest`), ids taken from the sequence up front and rows streamed
with COPY, updates COPYed into a temporary table and applied with one `UPDATE … FROM`.
Both run inside the batch's transaction, so a failure leaves nothing of the batch.
"""
from __future__ import annotations

import datetime
import decimal
import json
import uuid

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from ..demo import copy_escape
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
    def lock(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK])

    def owners(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        # One query per kind, "value = ANY(array)": an index scan on (kind, value) whatever
        # the size of the identity table.
        by_kind: dict[str, list[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        found = {}
        with connection.cursor() as cursor:
            for kind, values in by_kind.items():
                cursor.execute(f"SELECT value, profile_id FROM {Identity._meta.db_table} "
                               f"WHERE kind = %s AND value = ANY({TEXT_LIST})", [kind, text_list(values)])
                found.update({(kind, value): profile_id for value, profile_id in cursor.fetchall()})
        return found

    def profiles_current(self, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        result = {}
        rows = Profile.objects.extra(where=[f"{Profile._meta.db_table}.id = ANY({ID_LIST})"], params=[id_list(ids)])
        for row in rows.values("pk", "status", *UPDATABLE):
            result[row.pop("pk")] = row
        return result

    def _copy(self, model, columns: list[str], lines) -> None:
        quote = connection.ops.quote_name
        sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            buffer: list[str] = []
            for line in lines:
                buffer.append(line)
                if len(buffer) >= 5000:  # one write per few hundred kB, not per row
                    copy.write("".join(buffer))
                    buffer.clear()
            if buffer:
                copy.write("".join(buffer))

    def profiles_insert(self, rows: list[dict]) -> list[int]:
        """COPY the new customers, then read their ids back by the uuids given to them
        (cheaper than taking each id from the sequence first)."""
        if not rows:
            return []
        uuids = [uuid.uuid4() for _row in rows]
        now = _copy_value(timezone.now())
        given = ["name", "gender", "birth_date", "phone", "email", "country", "province", "city", "occupation",
                 "traits"]
        # Columns the import never sets get the model's default, formatted once.
        fixed = {}
        for model_field in Profile._meta.concrete_fields:
            if model_field.column in ("id", "uuid", "created_at", "updated_at") or model_field.name in given:
                continue
            fixed[model_field.column] = _copy_value(model_field.get_default() if model_field.has_default() else None)
        columns = ["uuid", *given, "created_at", "updated_at", *fixed]
        tail = "\t".join([now, now, *fixed.values()])
        defaults = {"name": "", "gender": "unknown", "birth_date": None, "phone": "", "email": "",
                    "country": settings.CDP_DEFAULT_COUNTRY, "province": "", "city": "", "occupation": "",
                    "traits": {}}

        def lines():
            for public_id, row in zip(uuids, rows):
                values = [str(public_id), *(_copy_value(row.get(name, defaults[name])) for name in given)]
                yield "\t".join(values) + "\t" + tail + "\n"

        self._copy(Profile, columns, lines())
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT uuid, id FROM {Profile._meta.db_table} "
                           "WHERE uuid = ANY(string_to_array(%s, ',')::uuid[])", [",".join(map(str, uuids))])
            ids = dict(cursor.fetchall())
        return [ids[public_id] for public_id in uuids]

    def identities_insert(self, rows: list[tuple[int, str, str]], source: str, *, ids_needed: bool = True) -> list[int]:
        """COPY the identities; their ids are only read back when undo needs them (identities
        of customers created by the same import go with the customer)."""
        if not rows:
            return []
        if ids_needed:
            return super().identities_insert(rows, source)
        tail = f"\t{copy_escape(source)}\t{_copy_value(timezone.now())}\n"
        self._copy(Identity, ["profile_id", "kind", "value", "source", "created_at"],
                   (f"{p}\t{copy_escape(k)}\t{copy_escape(v)}{tail}" for p, k, v in rows))
        return []

    def profiles_update(self, changes: dict[int, dict]) -> None:
        if not changes:
            return
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS import_profile_changes "
                           "(profile_id bigint PRIMARY KEY, changes jsonb) ON COMMIT DELETE ROWS")
            cursor.execute("TRUNCATE import_profile_changes")
            with cursor.cursor.copy("COPY import_profile_changes (profile_id, changes) FROM STDIN") as copy:
                for pk, fields in changes.items():
                    copy.write(f"{pk}\t{copy_escape(json.dumps(fields, ensure_ascii=False, default=str))}\n")
            sets = []
            for name in UPDATABLE:
                column = Profile._meta.get_field(name).column
                if name == "traits":
                    value = "c.changes->'traits'"
                elif name == "birth_date":
                    value = "(c.changes->>'birth_date')::date"
                else:
                    value = f"c.changes->>'{name}'"
                sets.append(f"{column} = CASE WHEN c.changes ? '{name}' THEN {value} ELSE p.{column} END")
            cursor.execute(
                f"UPDATE {Profile._meta.db_table} p SET {', '.join(sets)}, updated_at = %s "
                "FROM import_profile_changes c WHERE p.id = c.profile_id", [timezone.now()])

    def changes_insert(self, job_id: int, befores: dict[int, dict]) -> None:
        if befores:
            self._copy(ImportChange, ["job_id", "profile_id", "before"], (
                f"{job_id}\t{pk}\t{copy_escape(json.dumps(before, ensure_ascii=False, default=str))}\n"
                for pk, before in befores.items()))

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
        """COPY the events, then read their ids back by (source, external id) for undo."""
        if not rows:
            return []
        received = _copy_value(timezone.now())
        columns = ["profile_id", "name", "occurred_at", "properties", "amount", "source", "external_id",
                   "received_at"]

        def lines():
            for row in rows:
                yield "\t".join([
                    str(row["profile_id"]), copy_escape(row["name"]), _copy_value(row["occurred_at"]),
                    _copy_value(row["properties"]), _copy_value(row.get("amount")), copy_escape(row["source"]),
                    _copy_value(row["external_id"]), received]) + "\n"

        self._copy(Event, columns, lines())
        by_source: dict[str, list[str]] = {}
        for row in rows:
            by_source.setdefault(row["source"], []).append(row["external_id"])
        ids = []
        with connection.cursor() as cursor:
            for source, external_ids in by_source.items():
                cursor.execute(f"SELECT id FROM {Event._meta.db_table} WHERE source = %s AND "
                               f"external_id = ANY({TEXT_LIST})", [source, text_list(external_ids)])
                ids += [row[0] for row in cursor.fetchall()]
        return ids


def _copy_value(value) -> str:
    """A Python value as a field of PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return copy_escape(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        return copy_escape(json.dumps(value, ensure_ascii=False, default=str))
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        return str(value)
    return copy_escape(str(value))


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
