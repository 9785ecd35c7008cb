#!/usr/bin/env python
"""A segment export against a withdrawal made while it runs (PostgreSQL; never part of the tests).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_export_bench .venv/bin/python bench/export_withdrawal.py [--members 40000]

Builds (once, then reuses) a segment of --members customers who all consent to SMS
marketing, then for CSV and XLSX: starts an export, records a withdrawal 0.2 s later from
another connection, and prints how long the export took, how long the withdrawal took
(it used to wait for the whole export), how many customers the file held and, with
--memory, the export's peak Python memory. The database is created and migrated if missing.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def build(members: int):
    from django.db import connection

    from cdp.actors import Actor
    from consent.services import ConsentEntry, consent_record_many
    from profiles.models import Profile
    from segments.models import Segment
    from segments.services import segment_recompute, segment_save

    slug = f"bench-export-{members}"
    segment = Segment.objects.filter(slug=slug).first()
    if segment is not None and segment.member_count == members:
        return segment
    actor = Actor.system("bench")
    city = f"导出{members}"
    existing = Profile.objects.filter(city=city).count()
    Profile.objects.bulk_create([
        Profile(name=f"客户{i}", city=city, phone=f"+86138{i:08d}", email=f"c{i}@example.com")
        for i in range(existing, members)], batch_size=5000)
    ids = list(Profile.objects.filter(city=city).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), 5000):
        consent_record_many([ConsentEntry(profile=Profile(pk=pk), purpose_code="sms_marketing", status="granted",
                                          source="import") for pk in ids[start:start + 5000]], actor=actor)
    segment = segment or Segment(name=slug, slug=slug)
    segment = segment_save(segment=segment, definition={"field": "city", "op": "eq", "value": city})
    segment_recompute(segment_id=segment.pk)
    segment.refresh_from_db()
    with connection.cursor() as cursor:  # as autovacuum would soon: plans on fresh statistics
        cursor.execute("ANALYZE")
    return segment


def measure(segment, file_format: str, *, memory: bool) -> dict:
    from django.db import connection

    from cdp.actors import Actor
    from consent.services import consent_record
    from profiles.models import Profile
    from segments import export as module

    someone = Profile.objects.filter(segment_memberships__segment=segment).order_by("-pk").first()
    actor = Actor.system("bench")
    timings = {}

    def withdraw():
        time.sleep(0.2)
        started = time.monotonic()
        consent_record(profile=someone, purpose_code="sms_marketing", status="withdrawn", source="api", actor=actor)
        timings["withdrawal"] = time.monotonic() - started
        connection.close()

    withdrawing = threading.Thread(target=withdraw)
    if memory:
        tracemalloc.start()
    started = time.monotonic()
    withdrawing.start()
    arguments = {"segment": segment, "purpose_code": "sms_marketing", "columns": ["uuid", "name", "phone", "city"],
                 "file_format": file_format, "actor": actor}
    if hasattr(module, "contact_column"):  # streamed
        result = module.segment_export(contact_allowed=True, **arguments)
        timings["snapshot"] = time.monotonic() - started  # the purpose lock is held this long
        size = sum(len(chunk) for chunk in result.chunks)
    else:  # the export before streaming: built in memory under the purpose lock
        result = module.segment_export(unmasked=True, **arguments)
        size = len(result.content)
    timings["export"] = time.monotonic() - started
    if memory:
        timings["peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    withdrawing.join()
    consent_record(profile=someone, purpose_code="sms_marketing", status="granted", source="api", actor=actor)
    started = time.monotonic()  # the same withdrawal with no export running, for comparison
    consent_record(profile=someone, purpose_code="sms_marketing", status="withdrawn", source="api", actor=actor)
    timings["withdrawal_alone"] = time.monotonic() - started
    consent_record(profile=someone, purpose_code="sms_marketing", status="granted", source="api", actor=actor)
    return {**timings, "rows": result.count, "bytes": size}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=40_000)
    parser.add_argument("--memory", action="store_true", help="trace Python memory too (slows the export)")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        print("set DATABASE_URL to a scratch PostgreSQL database", file=sys.stderr)
        return 2
    ensure_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    segment = build(args.members)
    for file_format in ("csv", "xlsx"):
        figures = measure(segment, file_format, memory=args.memory)
        memory = f", peak Python memory {figures['peak_mb']:.1f} MB" if args.memory else ""
        snapshot = f" (snapshot under the lock {figures['snapshot']:.2f} s)" if "snapshot" in figures else ""
        print(f"{file_format}: {figures['rows']:,} rows, {figures['bytes']:,} bytes, export {figures['export']:.2f} s"
              f"{snapshot}, a withdrawal during it {figures['withdrawal']:.2f} s "
              f"(alone {figures['withdrawal_alone']:.2f} s){memory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
