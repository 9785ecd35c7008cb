#!/usr/bin/env python
"""The events table plain and partitioned, on one dataset: the conversion timed both ways,
and the event benchmarks run on each (docs/partitioning.md; figures in bench/README.md).

    python bench/partitions.py --database-url postgres://postgres@127.0.0.1:5432/cdp_bench
                               --state plain|partitioned [--only NAME …]

Needs a dataset built by run.py on that database (`run.py … --only demo_load`). Converts the
events table to `--state` if it is not already (printing how long that took: the migration's
work), then runs the benchmarks reading events — the profile page (timeline), segment
preview and recompute, analytics, metrics — without migrating, so that "plain" stays plain.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, load_datasets, redacted, run_selected  # noqa: E402

from common import Context  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--state", choices=["plain", "partitioned"], required=True)
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    os.environ["DJANGO_SETTINGS_MODULE"] = "cdp.settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "false"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection, transaction

    from profiles import partitions

    dataset = load_datasets().get(redacted(args.database_url))
    if not dataset:
        sys.exit("No dataset recorded for this database: build one with run.py --only demo_load first.")
    if partitions.is_partitioned() != (args.state == "partitioned"):
        started = time.monotonic()
        with transaction.atomic(), connection.cursor() as cursor:
            (partitions.convert_to_partitioned if args.state == "partitioned" else partitions.convert_to_plain)(cursor)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE profiles_event")
        print(f"Converted to {args.state} in {time.monotonic() - started:.1f} s (VACUUM ANALYZE included)")

    import bench_analytics
    import bench_profiles
    import bench_segments

    from profiles.metrics import metrics_recompute

    def bench_metrics(ctx):
        from common import Row

        started = time.monotonic()
        metrics_recompute()
        return [Row("metrics recompute, every customer", round(time.monotonic() - started, 2), "s", "", None)]

    ctx = Context(args=argparse.Namespace(**{**vars(args), "profiles": dataset["profiles"],
                                             "events_per_profile": dataset["events_per_profile"],
                                             "seed": dataset["seed"]}), dataset=dataset, reused=True)
    run_selected((bench_profiles.bench_profile_page, bench_segments.bench_segment_preview,
                  bench_segments.bench_segment_recompute, bench_analytics.bench_analytics, bench_metrics),
                 ctx, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
