"""/ready/ with every check, timed through gunicorn as a load balancer would ask it.

    .venv/bin/python bench/bench_ready.py [--database-url postgres://…/cdp_h7] [--requests 300]
        [--port 8172] [--brokers filesystem,redis,rabbitmq] [--cache-url redis://127.0.0.1:6379/3]

For each broker: starts `gunicorn -c python:cdp.gunicorn_conf cdp.wsgi` (one worker) on the
database (migrated first), asks /ready/ once to warm up, then --requests times one after
another on a kept-alive connection, and prints p50 / p95 / max of the whole answer (client
side) next to the slowest check's own time from the body and the CPU time gunicorn's worker
spent per request (which, unlike the latency, does not depend on what else the machine is
doing). Target: p95 ≤ 50 ms. Exit status 1
if a target fails or a check does not pass.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BROKERS = {
    "filesystem": "filesystem://",
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
TARGET_MS = 50


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def cpu_seconds_of_children(parent: int) -> float:
    """User + system CPU of `parent`'s child processes (gunicorn's workers), from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == parent:  # fields after the name: state, ppid, …, utime (12), stime (13)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def bench(broker: str, args, var_dir: Path) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "cdp.settings", "DATABASE_URL": args.database_url,
                "CELERY_BROKER_URL": BROKERS[broker], "CDP_VAR_DIR": str(var_dir), "DEBUG": "false",
                "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING"})
    if args.cache_url:
        env["CACHE_URL"] = args.cache_url
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    log = var_dir / f"gunicorn-{broker}.log"
    with open(log, "wb") as out:
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:cdp.gunicorn_conf", "cdp.wsgi",
                                "-b", f"127.0.0.1:{args.port}", "-w", "1", "--access-logfile", "/dev/null"],
                               cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{args.port}/ready/"
    session = requests.Session()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                first = session.get(url, timeout=60)  # the worker may still be loading Django
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or web.poll() is not None:
                    sys.exit(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        if first.status_code != 200:
            print(f"{broker}: /ready/ answered {first.status_code}: {first.text}")
            return False
        totals, slowest = [], []
        cpu_before = cpu_seconds_of_children(web.pid)
        for _ in range(args.requests):
            started = time.perf_counter()
            response = session.get(url, timeout=5)
            totals.append((time.perf_counter() - started) * 1000)
            body = response.json()
            if response.status_code != 200:
                print(f"{broker}: /ready/ answered {response.status_code}: {body}")
                return False
            slowest.append(max(check["ms"] for check in body["checks"].values()))
        cpu_ms = (cpu_seconds_of_children(web.pid) - cpu_before) * 1000 / len(totals)
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)
    p95 = percentile(totals, 0.95)
    ok = p95 <= TARGET_MS
    print(f"{broker:<10} checks={','.join(body['checks'])}  n={len(totals)}  "
          f"p50={statistics.median(totals):.1f} ms  p95={p95:.1f} ms  max={max(totals):.1f} ms  "
          f"slowest check p95={percentile(slowest, 0.95):.1f} ms  worker CPU {cpu_ms:.1f} ms/request  "
          f"load {os.getloadavg()[0]:.1f}  target p95 ≤ {TARGET_MS} ms: "
          f"{'pass' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL",
                                                                 "postgres://postgres@127.0.0.1:5432/cdp_h7"))
    parser.add_argument("--cache-url", default="", help="e.g. redis://127.0.0.1:6379/3 (default: local memory)")
    parser.add_argument("--brokers", default="filesystem,redis,rabbitmq")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--port", type=int, default=8172)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ready-") as var:
        results = [bench(broker, args, Path(var)) for broker in args.brokers.split(",")]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
