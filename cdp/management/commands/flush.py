"""Django's flush, past the append-only guards.

On PostgreSQL the consent ledger and the audit log refuse TRUNCATE (a trigger), and flush
empties every table with TRUNCATE. Tests that commit (transactional tests, the browser
tests) flush after each test, so flush runs with session_replication_role = replica,
which skips ordinary triggers. Only a superuser may set that: for anyone else flush
fails on those tables, as it should outside a test database."""
from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections


class Command(FlushCommand):
    def handle(self, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(**options)
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            return super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")
