"""Event retention: events of a name with a policy (EventRetention) are deleted once older
than the policy keeps them. Names without a policy are kept.

* On PostgreSQL, a month's partition whose every event has expired is dropped whole
  (no row-by-row delete, no bloat left behind).
* Otherwise the expired events are deleted in batches of CDP_EVENT_RETENTION_BATCH, one
  transaction each, oldest first, so that no lock is held for long and an interrupted
  run resumes where it stopped.
* Before they go, the expired events are added into per-customer rollups (EventRollup),
  in the same transaction: the metrics computed from events (orders, total spent, first
  and last seen, RFM, lifecycle) come out the same afterwards (profiles.metrics).
* Each policy applied and each partition dropped is one audit log row.
"""
import datetime
import logging
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cdp.actors import Actor
from cdp.audit import audit_record
from cdp.models import AuditLog

from . import partitions
from .models import Event, EventRetention, EventRollup

log = logging.getLogger("cdp.retention")

ROLLUP_UPSERT = """
    INSERT INTO {rollup} (profile_id, name, events, amount_total, first_at, last_at)
    SELECT profile_id, name, count(*), COALESCE(sum(amount), 0), min(occurred_at), max(occurred_at)
    FROM ({source}) AS expired WHERE true GROUP BY profile_id, name
    ON CONFLICT (profile_id, name) DO UPDATE SET
        events = {rollup}.events + excluded.events,
        amount_total = {rollup}.amount_total + excluded.amount_total,
        first_at = CASE WHEN excluded.first_at < {rollup}.first_at THEN excluded.first_at ELSE {rollup}.first_at END,
        last_at = CASE WHEN excluded.last_at > {rollup}.last_at THEN excluded.last_at ELSE {rollup}.last_at END
"""


def _rollup_from(cursor, source: str, params: list) -> None:
    cursor.execute(ROLLUP_UPSERT.format(rollup=EventRollup._meta.db_table, source=source), params)


def retention_apply(*, now: datetime.datetime | None = None, actor: Actor | None = None,
                    batch: int | None = None) -> dict:
    """Apply every active policy; returns {"deleted": {name: n}, "partitions_dropped": [...]}."""
    now = now or timezone.now()
    actor = actor or Actor.system("retention")
    batch = batch or settings.CDP_EVENT_RETENTION_BATCH
    cutoffs = {p.event_name: now - datetime.timedelta(days=p.keep_days)
               for p in EventRetention.objects.filter(is_active=True)}
    result = {"deleted": {}, "partitions_dropped": []}
    if not cutoffs:
        return result
    if partitions.is_partitioned():
        result["partitions_dropped"] = _drop_expired_partitions(cutoffs, actor, result["deleted"])
    for name, cutoff in sorted(cutoffs.items()):
        deleted = _delete_in_batches(name, cutoff, batch)
        total = deleted + result["deleted"].get(name, 0)
        result["deleted"][name] = total
        EventRetention.objects.filter(event_name=name).update(last_applied_at=now, last_deleted=total)
        if deleted:
            audit_record(actor=actor, action=AuditLog.Action.EVENTS_EXPIRED, target=name[:100], count=deleted,
                         details={"event": name, "before": cutoff.isoformat(), "deleted": deleted, "how": "batches"})
    log.info("event retention applied", extra={"deleted": result["deleted"],
                                               "partitions_dropped": result["partitions_dropped"]})
    return result


def _drop_expired_partitions(cutoffs: dict[str, datetime.datetime], actor: Actor, deleted: dict) -> list[str]:
    """Drop each month's partition holding only expired events: every event in it has a
    name whose cutoff is past the partition's end. Empty partitions are left alone."""
    quote = connection.ops.quote_name
    dropped = []
    for partition in partitions.partitions_list():
        if partition["default"]:
            continue
        until = datetime.datetime.combine(partition["until"], datetime.time(), tzinfo=datetime.UTC)
        expired = sorted(name for name, cutoff in cutoffs.items() if cutoff >= until)
        if not expired:
            continue
        table = quote(partition["name"])
        with transaction.atomic(), connection.cursor() as cursor:
            # Writers wait until the partition is gone (a late event of that month then
            # lands in the default partition, and is expired by the batches).
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table}), "
                           f"EXISTS (SELECT 1 FROM {table} WHERE name <> ALL(%s))", [expired])
            has_rows, has_kept = cursor.fetchone()
            if not has_rows or has_kept:
                continue
            cursor.execute(f"SELECT name, count(*) FROM {table} GROUP BY name")
            counts = dict(cursor.fetchall())
            _rollup_from(cursor, f"SELECT profile_id, name, amount, occurred_at FROM {table}", [])
            partitions.partition_drop(partition["name"])
            audit_record(actor=actor, action=AuditLog.Action.EVENTS_EXPIRED, target=partition["name"][:100],
                         count=sum(counts.values()),
                         details={"partition": partition["name"], "month": partition["month"].isoformat(),
                                  "deleted": counts, "how": "partition dropped"})
        for name, count in counts.items():
            deleted[name] = deleted.get(name, 0) + count
        dropped.append(partition["name"])
    return dropped


def _delete_in_batches(name: str, cutoff: datetime.datetime, batch: int) -> int:
    """Delete the events of `name` before `cutoff`, oldest first, `batch` per transaction,
    rolling each batch up first."""
    deleted = 0
    while True:
        with transaction.atomic():
            rows = list(Event.objects.filter(name=name, occurred_at__lt=cutoff).order_by("occurred_at")
                        .values_list("id", "occurred_at")[:batch])
            if not rows:
                return deleted
            ids = [pk for pk, _at in rows]
            # The batch's time span lets PostgreSQL read only the partitions it covers.
            span = [rows[0][1], rows[-1][1]]
            doomed = Event.objects.filter(pk__in=ids, occurred_at__gte=span[0], occurred_at__lte=span[1])
            sql, params = doomed.values("profile_id", "name", "amount", "occurred_at").query.sql_with_params()
            with connection.cursor() as cursor:
                _rollup_from(cursor, sql, list(params))
            count = doomed._raw_delete(doomed.db)
            deleted += count
            if len(rows) < batch:
                return deleted


# --- merges: a customer's rollups follow their events ----------------------------------

def _rollup_rows(profile) -> list[dict]:
    return [{"name": r.name, "events": r.events, "amount_total": str(r.amount_total),
             "first_at": r.first_at.isoformat(), "last_at": r.last_at.isoformat()}
            for r in EventRollup.objects.filter(profile=profile)]


def rollups_merge_move(survivor, merged) -> dict:
    """Add the merged customer's rollups into the survivor's (MergeHook.move); returns
    both sides as they were, for the unmerge. One row per event name: a handful."""
    data = {"merged": _rollup_rows(merged), "survivor": _rollup_rows(survivor)}
    mine = {r.name: r for r in EventRollup.objects.filter(profile=survivor)}
    for row in EventRollup.objects.filter(profile=merged):
        current = mine.get(row.name)
        if current is None:
            EventRollup.objects.filter(pk=row.pk).update(profile=survivor)
            continue
        current.events += row.events
        current.amount_total += row.amount_total
        current.first_at, current.last_at = min(current.first_at, row.first_at), max(current.last_at, row.last_at)
        current.save(update_fields=["events", "amount_total", "first_at", "last_at"])
        row.delete()
    return data


def rollups_merge_restore(survivor, merged, data: dict) -> None:
    """Give the merged customer its rollups back and take their part out of the
    survivor's (MergeHook.restore)."""
    parse = datetime.datetime.fromisoformat
    before = {b["name"]: b for b in data.get("survivor", [])}
    for row in data.get("merged", []):
        current = EventRollup.objects.filter(profile=survivor, name=row["name"]).first()
        if current is not None:
            current.events -= row["events"]
            current.amount_total -= Decimal(row["amount_total"])
            if current.events <= 0:
                current.delete()
            else:
                old = before.get(row["name"])
                if old and current.first_at == parse(row["first_at"]):
                    current.first_at = parse(old["first_at"])
                if old and current.last_at == parse(row["last_at"]):
                    current.last_at = parse(old["last_at"])
                current.save(update_fields=["events", "amount_total", "first_at", "last_at"])
        EventRollup.objects.update_or_create(profile=merged, name=row["name"], defaults={
            "events": row["events"], "amount_total": Decimal(row["amount_total"]),
            "first_at": parse(row["first_at"]), "last_at": parse(row["last_at"])})
