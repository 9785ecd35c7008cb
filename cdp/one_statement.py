"""Several inserts and a read sent to the database as one statement.

Each statement of a short request is a round trip that waits on the database (and on
PostgreSQL a little planning); a call that ends with a few small writes and one small read
can send them together. PostgreSQL runs inserts inside WITH (data-modifying common table
expressions) in the same snapshot as the statement's read: the read does not see these
inserts, only what earlier statements wrote. Other databases run them one after another.
"""
from dataclasses import dataclass, field

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery


@dataclass
class Statement:
    """Collects inserts (`insert`) and at most one read (`read`), then sends them (`run`)."""

    using: str = "default"
    inserts: list[tuple[type[Model], list[Model], bool]] = field(default_factory=list)
    query: QuerySet | None = None
    rows: list[tuple] = field(default_factory=list)  # the read's, once run

    def insert(self, objs: list[Model], *, ignore_conflicts: bool = False) -> None:
        """New rows of one model (their primary keys stay unset: nothing is returned)."""
        if objs:
            self.inserts.append((type(objs[0]), list(objs), ignore_conflicts))

    def read(self, queryset: QuerySet) -> None:
        """A values_list() queryset of plain columns (text, numbers, booleans): on
        PostgreSQL its rows come straight from the cursor, without field converters."""
        self.query = queryset

    def run(self) -> list[tuple]:
        """Send everything; the read's rows ([] without one), also kept in `rows`."""
        self.rows = self._run()
        return self.rows

    def _run(self) -> list[tuple]:
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            for model, objs, ignore_conflicts in self.inserts:
                model._default_manager.using(self.using).bulk_create(objs, ignore_conflicts=ignore_conflicts)
            return [row if isinstance(row, tuple) else (row,) for row in self.query] if self.query is not None else []
        parts = [self._insert_sql(*insert) for insert in self.inserts]
        if self.query is not None:
            parts.append(self.query.query.get_compiler(using=self.using).as_sql())
        if not parts:
            return []
        *first, (last_sql, last_params) = parts
        sql = "".join([f"WITH {', '.join(f'w{n} AS ({part})' for n, (part, _params) in enumerate(first))} "
                       if first else "", last_sql])
        params = [param for _sql, part_params in first for param in part_params] + list(last_params)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if self.query is not None else []

    def _insert_sql(self, model: type[Model], objs: list[Model], ignore_conflicts: bool) -> tuple[str, list]:
        opts = model._meta
        fields = [f for f in opts.concrete_fields if not f.generated and f is not opts.auto_field]
        query = InsertQuery(model, on_conflict=OnConflict.IGNORE if ignore_conflicts else None)
        query.insert_values(fields, objs)
        [(sql, params)] = query.get_compiler(using=self.using).as_sql()
        return sql, list(params)
