#!/usr/bin/env python
"""Benchmarks on a big demo dataset: never part of the test suite.

    python bench/run.py [--database-url postgres://postgres@127.0.0.1:5432/cdp_bench]
                        [--profiles 1000000] [--events-per-profile 10] [--seed 1]
                        [--reuse] [--json bench/results/latest.json]

Creates the database if missing, migrates it, builds the dataset with generate_demo (the
tables are emptied first) unless --reuse finds one of that size and seed already there,
runs every function in benchmarks() and prints their figures, also written as JSON.

A benchmark is a function taking the `Context` and returning a list of `Row`s (see
bench/common.py); add it to `benchmarks()`. What was built is recorded in bench/results/datasets.json (git-ignored).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common import Context, Row, at_least, at_most

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATASETS = RESULTS / "datasets.json"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cdp_bench"
# The target: 1M profiles with 10M events, metrics included, in under 5 minutes.
LOAD_TARGET_SECONDS, LOAD_TARGET_PROFILES, LOAD_TARGET_EVENTS = 300, 1_000_000, 10_000_000


# --- benchmarks ---------------------------------------------------------------------------

def bench_demo_load(ctx: Context) -> list[Row]:
    """How fast generate_demo built the dataset (figures recorded at build time if --reuse)."""
    built = ctx.dataset["stats"]
    seconds = built["seconds"]
    # The target scales with the size; never below 10 s for small runs.
    scale = max(built["profiles"] / LOAD_TARGET_PROFILES, built["events"] / LOAD_TARGET_EVENTS)
    prefix = "demo_load (recorded)" if ctx.reused else "demo_load"
    rows = [
        Row(f"{prefix} profiles", built["profiles"], "rows"),
        Row(f"{prefix} identities", built["identities"], "rows"),
        Row(f"{prefix} events", built["events"], "rows"),
        at_most(f"{prefix} total", seconds, "s", max(10, LOAD_TARGET_SECONDS * scale)),
        at_least(f"{prefix} profiles rate", built["profiles"] / seconds, "profiles/s",
                 LOAD_TARGET_PROFILES / LOAD_TARGET_SECONDS),
        at_least(f"{prefix} events rate", built["events"] / seconds, "events/s",
                 LOAD_TARGET_EVENTS / LOAD_TARGET_SECONDS),
        Row(f"{prefix} identities rate", built["identities"] / seconds, "identities/s"),
    ]
    rows += [Row(f"{prefix} phase: {phase}", phase_seconds, "s") for phase, phase_seconds in built["phases"].items()]
    return rows


def benchmarks() -> list:
    """Every benchmark, in the order they run. Imported after django.setup(): the other
    modules use the models."""
    import bench_api
    import bench_analytics
    import bench_campaign_results
    import bench_campaigns
    import bench_collect
    import bench_consent
    import bench_import
    import bench_profiles
    import bench_recommendations
    import bench_segments
    import bench_tags

    return [
        bench_demo_load,
        bench_tags.bench_tag_assign,
        bench_tags.bench_interest_recompute,
        bench_profiles.bench_profile_page,
        bench_profiles.bench_search,
        bench_profiles.bench_merge,
        bench_segments.bench_segment_preview,
        bench_segments.bench_segment_recompute,
        bench_import.bench_import_profiles,
        bench_consent.bench_consent_import,  # the dataset's customers' consent: import, plain COPY, re-import
        bench_api.bench_partner_api,  # its own database (BENCH_API_DATABASE_URL), gunicorn over HTTP
        bench_collect.bench_collect,  # its own database (BENCH_COLLECT_DATABASE_URL), the SDKs against gunicorn
        bench_analytics.bench_analytics,
        bench_campaigns.bench_campaign_eligibility,
        bench_campaigns.bench_campaign_delivery,  # a real Celery worker on Redis, a local webhook receiver
        bench_campaigns.bench_campaign_trigger_latency,  # gunicorn, the worker with beat
        bench_campaign_results.bench_campaign_results,
        bench_recommendations.bench_recommendations_nightly,
        bench_recommendations.bench_recommendations_evaluation,
    ]


# --- plumbing -----------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events-per-profile", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep the dataset if one of this size and seed is there")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json", help="where to write the figures")
    parser.add_argument("--import-rows", type=int, default=1_000_000, help="rows of the CRM file bench_import imports")
    parser.add_argument("--import-events", type=int, default=0,
                        help="rows of the events file bench_import imports (0: skip; the target is set for 10M)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only the benchmarks whose function name contains NAME (repeatable)")
    return parser.parse_args(argv)


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return
    import psycopg
    from psycopg import sql

    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"Created database {name}.")


def load_datasets() -> dict:
    try:
        return json.loads(DATASETS.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def ensure_dataset(args) -> tuple[dict, bool]:
    """(the dataset record, whether it was reused)."""
    from django.core.management.color import no_style
    from django.db import connection
    from django.utils import timezone

    from profiles.demo import demo_generate
    from profiles.models import Event, Identity, Profile, ProfileActivity, ProfileMerge, ProfileTag

    key = redacted(args.database_url)
    datasets = load_datasets()
    wanted = {"profiles": args.profiles, "events_per_profile": args.events_per_profile, "seed": args.seed}
    recorded = datasets.get(key)
    if (
        args.reuse and recorded and all(recorded.get(k) == v for k, v in wanted.items())
        and Profile.objects.count() == recorded["stats"]["profiles"]
        and Event.objects.count() == recorded["stats"]["events"]
    ):
        print(f"Reusing the dataset built {recorded['built_at']}.")
        return recorded, True

    print("Emptying the customer tables…")
    # Tag and activity rows have no foreign-key constraint, so TRUNCATE … CASCADE would
    # not reach them: name them.
    tables = [model._meta.db_table for model in (Profile, Identity, Event, ProfileTag, ProfileActivity, ProfileMerge)]
    with connection.cursor() as cursor:
        # The cascade reaches the append-only consent ledger, whose guard refuses TRUNCATE;
        # the bench database is disposable, so pass the guards as flush does in tests.
        cursor.execute("SET session_replication_role = replica")
        for statement in connection.ops.sql_flush(no_style(), tables, reset_sequences=True, allow_cascade=True):
            cursor.execute(statement)
        cursor.execute("SET session_replication_role = DEFAULT")
    datasets.pop(key, None)
    RESULTS.mkdir(parents=True, exist_ok=True)
    DATASETS.write_text(json.dumps(datasets, indent=2))  # forget it until the new one is complete

    anchor = timezone.localdate()  # the history runs up to today
    stats = demo_generate(
        profiles=args.profiles, events_per_profile=args.events_per_profile, seed=args.seed, anchor_date=anchor,
        stdout=Printer(),
    )
    record = {
        **wanted,
        "anchor_date": anchor.isoformat(),
        "built_at": timezone.now().astimezone().isoformat(timespec="seconds"),
        "stats": {
            "profiles": stats.profiles, "identities": stats.identities, "events": stats.events,
            "seconds": round(stats.seconds, 2), "phases": {k: round(v, 2) for k, v in stats.phases.items()},
            "bulk_schema": stats.bulk_schema,
        },
    }
    datasets[key] = record
    DATASETS.write_text(json.dumps(datasets, indent=2))
    return record, False


class Printer:
    """The `stdout` demo_generate writes progress to."""

    def write(self, message: str) -> None:
        print(message, flush=True)


def fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.2f}"


def run_selected(benchmarks, ctx: Context, only: list[str] | None) -> list[Row]:
    """Run the benchmarks whose name contains one of `only` (all without it), timing each;
    print their rows as a table and return them."""
    rows: list[Row] = []
    for benchmark in benchmarks:
        if only and not any(name in benchmark.__name__ for name in only):
            continue
        t0 = time.monotonic()
        rows += benchmark(ctx)
        print(f"{benchmark.__name__}: {time.monotonic() - t0:.1f} s")
    print_table(rows)
    return rows


def print_table(rows: list[Row]) -> None:
    header = ("benchmark", "value", "unit", "target", "result")
    lines = [(r.name, fmt(r.value), r.unit, r.target, "" if r.passed is None else ("pass" if r.passed else "FAIL"))
             for r in rows]
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]  # no rows: --only matched nothing
    print()
    for line in (header, *lines):
        print("  ".join(cell.rjust(w) if i == 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "cdp.settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "false"  # measure what production runs: no query log, cached templates
    sys.path.insert(0, str(ROOT))
    ensure_database(args.database_url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    started = datetime.datetime.now().astimezone()
    dataset, reused = ensure_dataset(args)
    ctx = Context(args=args, dataset=dataset, reused=reused)
    rows = run_selected(benchmarks(), ctx, args.only)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "started_at": started.isoformat(timespec="seconds"),
        "database": redacted(args.database_url),
        "dataset": dataset,
        "reused": reused,
        "results": [asdict(r) for r in rows],
    }, indent=2, ensure_ascii=False))
    print(f"\nWrote {args.json}")
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
