"""Time a few of bench_segments' cases alone, read-only, on a dataset bench/run.py built
(it never builds, empties or writes one): the product's count, its preview and the
hand-written query, taken in turn as bench_segment_preview takes them, so that the shared
machine's changing load weighs on all three alike.

    .venv/bin/python bench/segment_cases.py --case 8 --case 10 --runs 5

The full benchmark (`bench/run.py --reuse --only segment`) times all fifteen cases 21
times each; this is for working on one operator's SQL."""
import argparse
import datetime
import json
import os
import statistics
import sys
import time
import zoneinfo
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cdp_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DATABASE_URL))
    parser.add_argument("--case", action="append", required=True, help="the case's number (6–10, or 1–5)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(DJANGO_SETTINGS_MODULE="cdp.settings", DATABASE_URL=args.database_url, DEBUG="false")
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import django

    django.setup()
    from django.conf import settings
    from django.core.exceptions import ValidationError

    import bench_segments as bench
    from profiles.models import Profile
    from segments.conditions import compile_condition, parse
    from segments.selectors import segment_preview

    record = json.loads((ROOT / "bench" / "results" / "datasets.json").read_text())[args.database_url]
    now = datetime.datetime.combine(datetime.date.fromisoformat(record["anchor_date"]), datetime.time.min,
                                    tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))
    this_month = now.replace(day=1)
    params = {"tag": bench.SNEAKER_TAG, "this_month": this_month,
              "last_month": (this_month - datetime.timedelta(days=1)).replace(day=1),
              **{f"d{days}": now - datetime.timedelta(days=days) for days in (7, 30, 60, 90, 180, 365)}}
    for name, definition, template in bench.EXAMPLES + bench.NEW_OPERATORS:
        if name.split()[0] not in args.case:
            continue
        sql = bench.hand_sql(template)
        try:
            matching = Profile.objects.filter(compile_condition(parse(definition), now), status="active")
        except ValidationError as error:  # example 1's tag: only bench/run.py --only segment_preview makes it
            print(f"{name}: not on this dataset ({'; '.join(error.messages)})", flush=True)
            continue
        timed = {"count": lambda: bench.product_count(matching),
                 "preview": lambda: segment_preview(definition, now=now, timeout_ms=600_000).count,
                 "hand SQL": lambda: bench.hand_count(sql, params)}
        counts = {label: function() for label, function in timed.items()}  # also warms the cache
        taken = {label: [] for label in timed}
        for _ in range(args.runs):
            for label, function in timed.items():
                started = time.perf_counter()
                function()
                taken[label].append(time.perf_counter() - started)
        hand = statistics.median(taken["hand SQL"])
        print(f"{name}: {counts['hand SQL']:,} members (count {counts['count']:,}, preview {counts['preview']:,})")
        for label, seconds in taken.items():
            print(f"  {label:9} median {statistics.median(seconds):6.2f} s  max {max(seconds):6.2f} s"
                  f"  {statistics.median(seconds) / hand:.2f} × the hand-written query", flush=True)


if __name__ == "__main__":
    main()
