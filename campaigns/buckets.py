"""Deterministic buckets 0–9999 from a customer's public id and a salt: the holdout, the
global control group and the variant split are chosen "at random" but stably, so a
re-run of the same campaign puts every customer in the same group.

The bucket is the first 32 bits of MD5("<salt>:<uuid hex>") modulo 10,000, computed by
the database (set-based) and, identically, by `bucket()` for one customer.
"""
import hashlib
import uuid

from django.db.backends.signals import connection_created
from django.db.models import CharField, F, Func, IntegerField, Value
from django.db.models.functions import Concat

BUCKETS = 10_000


def bucket(salt: str, public_id: uuid.UUID) -> int:
    return int(hashlib.md5(f"{salt}:{public_id.hex}".encode()).hexdigest()[:8], 16) % BUCKETS


def _sqlite_bucket(text):
    return None if text is None else int(hashlib.md5(text.encode()).hexdigest()[:8], 16) % BUCKETS


def _register(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("cdp_bucket", 1, _sqlite_bucket, deterministic=True)


def register_sqlite_functions() -> None:
    connection_created.connect(_register, dispatch_uid="campaigns.buckets")


class _Md5Bucket(Func):
    output_field = IntegerField()
    function = "cdp_bucket"

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection,
                           template="(('x' || substr(md5(%(expressions)s), 1, 8))::bit(32)::bigint %%%% 10000)",
                           **extra_context)


class _UuidHex(Func):
    """The public id as 32 lowercase hex digits, as SQLite stores it and uuid.hex says."""

    output_field = CharField()
    template = "%(expressions)s"

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="replace(%(expressions)s::text, '-', '')", **extra_context)


def Bucket(salt: str, uuid_field: str = "uuid") -> Func:  # noqa: N802 — reads like the expression it is
    """The bucket of each row's customer, as a query expression."""
    return _Md5Bucket(Concat(Value(f"{salt}:"), _UuidHex(F(uuid_field)), output_field=CharField()))


def holdout_salt(campaign_id: int) -> str:
    return f"holdout:{campaign_id}"


def variant_salt(campaign_id: int) -> str:
    return f"variant:{campaign_id}"


GLOBAL_CONTROL_SALT = "global-control"
