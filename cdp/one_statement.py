"""Several writes and a read sent to the database as one statement.

Each statement of a short request is a round trip that waits on the database (and on
PostgreSQL a little planning); a call that ends with a few small writes and one small read
can send them together. PostgreSQL runs inserts and updates inside WITH (data-modifying
common table expressions) in the same snapshot as the statement's read: the read does not
see these writes, only what earlier statements wrote. Other databases run them one after
another. A row inserted here can be referred to by the rows inserted after it
(`insert_returning`: a new customer, its identities and its timeline row in one go).
"""
from dataclasses import dataclass, field

from django.db import DatabaseError, connections
from django.db.models import Expression, Model, Q, QuerySet
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery, UpdateQuery


class InsertedId(Expression):
    """The primary key of a row inserted earlier in the same statement, as a value for a
    later insert's foreign key: a sub-select of that insert's RETURNING on PostgreSQL; the
    key itself once the row is saved (other databases, and after the statement ran)."""

    def __init__(self, obj: Model, alias: str):
        super().__init__()
        self.obj, self.alias = obj, alias

    def as_sql(self, compiler, connection):
        if self.obj.pk is not None:
            return "%s", [self.obj.pk]
        return f"(SELECT {connection.ops.quote_name(self.obj._meta.pk.column)} FROM {self.alias})", []


@dataclass
class Statement:
    """Collects writes (`insert`, `insert_returning`, `update`) and at most one read
    (`read`), then sends them in that order (`run`)."""

    using: str = "default"
    # ("insert", objs, ignore_conflicts) | ("returning", [obj], False) | ("update", [obj], fields)
    writes: list[tuple[str, list[Model], object]] = field(default_factory=list)
    query: QuerySet | None = None
    rows: list[tuple] = field(default_factory=list)  # the read's, once run

    def insert(self, objs: list[Model], *, ignore_conflicts: bool = False) -> None:
        """New rows of one model (their primary keys stay unset: nothing is returned)."""
        if objs:
            self.writes.append(("insert", list(objs), ignore_conflicts))

    def insert_returning(self, obj: Model) -> InsertedId:
        """One new row whose primary key is set once the statement ran; the value returned
        stands for that key in the rows inserted after it (e.g. `profile_id=`). Not with
        a read: the read would not see the row anyway."""
        self.writes.append(("returning", [obj], False))
        return InsertedId(obj, f"w{len(self.writes) - 1}")

    def update(self, obj: Model, fields: list[str]) -> None:
        """Save these fields of an existing row, as obj.save(update_fields=fields) does
        (auto_now fields included). The row must exist: a statement without a read raises
        DatabaseError when it did not; with a read, lock the row first."""
        self.writes.append(("update", [obj], list(fields)))

    def read(self, queryset: QuerySet) -> None:
        """A values_list() queryset of plain columns (text, numbers, booleans): on
        PostgreSQL its rows come straight from the cursor, without field converters."""
        self.query = queryset

    def run(self) -> list[tuple]:
        """Send everything; the read's rows ([] without one), also kept in `rows`."""
        if self.query is not None and any(kind == "returning" for kind, _objs, _extra in self.writes):
            raise ValueError("A statement with insert_returning() cannot also read.")
        self.rows = self._run()
        return self.rows

    def _run(self) -> list[tuple]:
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            for kind, objs, extra in self.writes:
                self._write_alone(kind, objs, extra)
            return [row if isinstance(row, tuple) else (row,) for row in self.query] if self.query is not None else []
        parts = [self._write_sql(n, kind, objs, extra) for n, (kind, objs, extra) in enumerate(self.writes)]
        returning = [(f"w{n}", objs[0]) for n, (kind, objs, _extra) in enumerate(self.writes) if kind == "returning"]
        updates = [f"w{n}" for n, (kind, _objs, _extra) in enumerate(self.writes) if kind == "update"]
        if self.query is not None:
            parts.append(self.query.query.get_compiler(using=self.using).as_sql())
        elif returning or updates:  # what came back: the new keys, and a row per updated row
            selects = [f"(SELECT {connection.ops.quote_name(obj._meta.pk.column)} FROM {alias})"
                       for alias, obj in returning] + [f"(SELECT count(*) FROM {alias})" for alias in updates]
            parts.append((f"SELECT {', '.join(selects)}", []))
        if not parts:
            return []
        *first, (last_sql, last_params) = parts
        sql = "".join([f"WITH {', '.join(f'w{n} AS ({part})' for n, (part, _params) in enumerate(first))} "
                       if first else "", last_sql])
        params = [param for _sql, part_params in first for param in part_params] + list(last_params)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if self.query is not None:
                return cursor.fetchall()
            if not (returning or updates):
                return []
            row = cursor.fetchone()
        for (_alias, obj), pk in zip(returning, row):
            obj.pk = pk
            obj._state.adding, obj._state.db = False, self.using
        if any(count == 0 for count in row[len(returning):]):
            raise DatabaseError("Save with update_fields did not affect any rows.")
        for kind, objs, _extra in self.writes:
            if kind != "update":
                self._resolve_references(objs)
        return []

    def _write_alone(self, kind: str, objs: list[Model], extra) -> None:
        self._resolve_references(objs)
        manager = type(objs[0])._default_manager.using(self.using)
        if kind == "insert":
            manager.bulk_create(objs, ignore_conflicts=extra)
        elif kind == "returning":
            objs[0].save(force_insert=True, using=self.using)
        else:
            objs[0].save(update_fields=extra, using=self.using)

    @staticmethod
    def _resolve_references(objs: list[Model]) -> None:
        """Foreign keys given as InsertedId get the key they stand for."""
        for obj in objs:
            for model_field in obj._meta.concrete_fields:
                value = obj.__dict__.get(model_field.attname)
                if isinstance(value, InsertedId):
                    setattr(obj, model_field.attname, value.obj.pk)

    def _write_sql(self, n: int, kind: str, objs: list[Model], extra) -> tuple[str, list]:
        model = type(objs[0])
        opts = model._meta
        if kind == "update":
            obj = objs[0]
            query = UpdateQuery(model)
            query.add_update_fields([(f, None, f.pre_save(obj, False))
                                     for f in (opts.get_field(name) for name in extra)])
            query.add_q(Q(pk=obj.pk))
            sql, params = query.get_compiler(using=self.using).as_sql()
            return f"{sql} RETURNING 1", list(params)
        fields = [f for f in opts.concrete_fields if not f.generated and f is not opts.auto_field]
        query = InsertQuery(model, on_conflict=OnConflict.IGNORE if extra else None)
        query.insert_values(fields, objs)
        [(sql, params)] = query.get_compiler(using=self.using).as_sql()
        if kind == "returning":
            sql += f" RETURNING {connections[self.using].ops.quote_name(opts.pk.column)}"
        return sql, list(params)
