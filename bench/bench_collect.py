#!/usr/bin/env python
"""SDK collection benchmarks (issue 26), end to end over HTTP against gunicorn (2 workers ×
8 threads, 127.0.0.1:8770), in a database of their own (BENCH_COLLECT_DATABASE_URL, default
cdp_bench_collect, with a 20,000-customer demo dataset made once and then reused):

* batch ingestion from the official SDKs at their default batching, from 4 client
  processes each: `segment-analytics-python` (100 events per request, one upload thread
  per client) and `@segment/analytics-node` (15 events per request; bench/node/send.mjs),
  against the partner API's batch ingest (bench_api's measurement: 500 events per request,
  4 client processes) on the same server in the same run — target ≥ 0.5 × its rate. The
  mix is the partner API's: half the events by customers known from the warm-up, half by
  new ones (each new person twice);
* latency: single track calls from the Python SDK at its default flush settings (a batch
  leaves after 0.5 s or 100 events), 20 per second, and the same with the Node SDK; each
  event's row is polled for in the events table (what the profile timeline and the
  triggers read) — p50 / p95 / max from the SDK's call to the committed row, target p95
  ≤ 5 s; afterwards each event is looked for on its customer's timeline
  (profiles.timeline.profile_timeline).

    .venv/bin/python bench/bench_collect.py [--database-url …] [--events 30000] [--clients 4]
                                            [--rounds 2] [--latency-seconds 30] [--sdk python|node]

`bench/run.py` runs it too (`--only collect`).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import bench_api  # noqa: E402
from common import Row, at_least, at_most  # noqa: E402

DEFAULT_DATABASE_URL = os.environ.get("BENCH_COLLECT_DATABASE_URL",
                                      "postgres://postgres@127.0.0.1:5432/cdp_bench_collect")
PORT = 8770
NODE_DIR = BENCH / "node"
DATASET_PROFILES = 20_000
RATIO_TARGET, LATENCY_P95_TARGET = 0.5, 5.0
PYTHON_QUEUE_HIGH = 5_000  # the SDK drops what does not fit its queue (10,000): the producer waits below this
NODE_WINDOW = 60  # events awaiting delivery per Node client: 4 of its 15-event requests in flight
NAMES = ["Page Viewed", "Product Viewed", "Product Added", "Order Completed"]


# --- setup ------------------------------------------------------------------------------

def connect(database_url: str):
    import psycopg

    return psycopg.connect(urlunsplit(urlsplit(database_url)._replace(scheme="postgresql")), autocommit=True)


def ensure_dataset(database_url: str, profiles: int = DATASET_PROFILES) -> int:
    """A modest demo dataset, made once (the events the benchmark adds stay; they are few)."""
    bench_api.ensure_database(database_url)
    bench_api.manage(database_url, "migrate", "--noinput", "--verbosity", "0")
    with connect(database_url) as conn:
        have = conn.execute("SELECT count(*) FROM profiles_profile").fetchone()[0]
    if have < profiles:
        print(f"Generating the demo dataset ({profiles:,} customers)…", flush=True)
        bench_api.manage(database_url, "generate_demo", "--profiles", str(profiles - have),
                         "--events-per-profile", "10")
        have = profiles
    return have


SOURCE_SCRIPT = """
from profiles.services.sources import source_create
source, key = source_create(name="Bench SDK {code}", code="{code}")
print(source.event_source, key)
"""


def source_make(database_url: str) -> tuple[str, str]:
    """A new tracking source (its events are this run's): (event source, write key)."""
    code = f"bench-{uuid.uuid4().hex[:8]}"
    out = bench_api.manage(database_url, "shell", "-c", SOURCE_SCRIPT.format(code=code)).split()
    return out[-2], out[-1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(server_pid: int, database_url: str) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of the gunicorn workers and of the PostgreSQL backends serving
    this database: {pid: ("python" | "postgres", seconds)}. Measured per phase, CPU per
    event says what the machine's capacity would be, whatever else runs on it."""
    pids = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == server_pid:
                pids[int(stat.parent.name)] = "python"
        except (OSError, ValueError, IndexError):
            continue
    with connect(database_url) as conn:
        for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid()"):
            pids[pid] = "postgres"
    return {pid: (kind, _cpu_seconds(pid)) for pid, kind in pids.items()}


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per kind between two `server_cpu` snapshots (processes that ended in
    between are missed: the server keeps its connections, CONN_MAX_AGE)."""
    used = {"python": 0.0, "postgres": 0.0}
    for pid, (kind, seconds) in after.items():
        used[kind] += seconds - before.get(pid, (kind, 0.0))[1]
    return used


def stored(database_url: str, event_source: str, prefix: str) -> int:
    with connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM profiles_event WHERE source = %s AND external_id LIKE %s",
                            [event_source, prefix + "%"]).fetchone()[0]


# --- the SDKs' load ---------------------------------------------------------------------

def sdk_events(run_id: str, count: int, known: list[list[dict]], rng: random.Random) -> list[dict]:
    """The partner API's mix as track calls: the user id is the customer's CRM id (the
    source's user id kind); about half known customers, half new ones (each twice)."""
    known_ids = [next(i["value"] for i in who if i["kind"] == "crm_id") for who in known]
    events = []
    for i in range(count):
        user_id = rng.choice(known_ids) if known_ids and rng.random() < 0.5 else f"S{run_id}-{i // 2}"
        name = rng.choice(NAMES)
        properties = {"category": rng.choice(["sneakers", "lipstick", "coffee"])}
        if name == "Order Completed":
            properties.update(order_id=f"{run_id}-{i}", revenue=rng.randint(10, 900), currency="CNY")
        events.append({"message_id": f"{run_id}-{i}", "user_id": user_id, "event": name, "properties": properties})
    return events


def _python_client(job: tuple) -> dict:
    """One client process with segment-analytics-python at its defaults (100 events per
    request, a batch leaves after 0.5 s, one upload thread)."""
    port, key, events, mode, rate = job
    from segment.analytics.client import Client

    errors: list[str] = []
    client = Client(write_key=key, host=f"http://127.0.0.1:{port}/collect",
                    on_error=lambda error, _batch: errors.append(str(error)[:200]))
    dropped, sent_at = 0, {}
    started, cpu = time.time(), time.process_time()
    for i, event in enumerate(events):
        if mode == "paced":
            delay = started + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            sent_at[event["message_id"]] = time.time()
        else:
            while client.queue.qsize() >= PYTHON_QUEUE_HIGH:
                time.sleep(0.002)
        success, _message = client.track(user_id=event["user_id"], event=event["event"],
                                         properties=event["properties"], message_id=event["message_id"])
        dropped += not success
    client.flush()  # returns when every queued message was uploaded (or given up)
    finished = time.time()
    client.join()
    return {"started": started, "finished": finished, "dropped": dropped, "errors": errors[:5],
            "cpu": time.process_time() - cpu, "sent_at": sent_at}


def python_clients(port: int, key: str, events: list[dict], clients: int, mode: str = "burst",
                   rate: float = 0) -> list[dict]:
    shares = [events[i::clients] for i in range(clients)]
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        return pool.map(_python_client, [(port, key, share, mode, rate / clients) for share in shares])


def node_clients(port: int, key: str, events: list[dict], clients: int, mode: str = "burst",
                 rate: float = 0) -> list[dict]:
    node = shutil.which("node")
    if not node or not (NODE_DIR / "node_modules" / "@segment" / "analytics-node").exists():
        raise RuntimeError("the Node SDK is not installed: cd bench/node && npm ci")
    with tempfile.TemporaryDirectory() as directory:
        processes = []
        for n in range(clients):
            job, result = Path(directory, f"job{n}.json"), Path(directory, f"result{n}.json")
            job.write_text(json.dumps({"mode": mode, "window": NODE_WINDOW, "rate": rate / clients,
                                       "events": events[n::clients]}))
            processes.append((subprocess.Popen(
                [node, str(NODE_DIR / "send.mjs"), f"http://127.0.0.1:{port}", "/collect/v1/batch", key, str(job),
                 str(result)],
                cwd=NODE_DIR), result))
        results = []
        for process, result in processes:
            process.wait(timeout=1800)
            data = json.loads(result.read_text())
            data["started"], data["finished"] = data["started"] / 1000, data["finished"] / 1000
            data["sent_at"] = {k: v / 1000 for k, v in data["sent_at"].items()}
            data["dropped"] = data["failed"]
            results.append(data)
        return results


def throughput(name: str, send, database_url: str, port: int, key: str, event_source: str, events: list[dict],
               clients: int, run_id: str, server_pid: int) -> tuple[float, dict, list[Row]]:
    before = server_cpu(server_pid, database_url)
    results = send(port, key, events, clients)
    cpu = cpu_used(before, server_cpu(server_pid, database_url))
    seconds = max(r["finished"] for r in results) - min(r["started"] for r in results)
    accepted = stored(database_url, event_source, run_id + "-")
    errors = [e for r in results for e in r["errors"]]
    if errors:
        print(f"  {name} SDK errors: {errors[:3]}", flush=True)
    rows = [Row(f"collect {name}: events sent", len(events), "events"),
            Row(f"collect {name}: events stored", accepted, "events"),
            Row(f"collect {name}: events the SDK dropped or failed", sum(r["dropped"] for r in results), "events")]
    if "cpu" in results[0]:
        rows.append(Row(f"collect {name}: client CPU per 1,000 events", sum(r["cpu"] for r in results)
                        / len(events) * 1000 * 1000, "ms"))
    return accepted / seconds, {kind: seconds / accepted * 1e6 for kind, seconds in cpu.items()}, rows


# --- latency ----------------------------------------------------------------------------

def latency(name: str, send, database_url: str, port: int, key: str, event_source: str, events: list[dict],
            rate: float) -> tuple[list[float], int]:
    """Send `events` at `rate`/s from one client; poll the events table for each one's
    row every 50 ms. (seconds from the SDK call to the committed row, of each event found;
    how many were missing 30 s after the last send)."""
    pending = {e["message_id"] for e in events}
    seen: dict[str, float] = {}
    done = threading.Event()

    def poll():
        with connect(database_url) as conn:  # autocommit: each poll sees what has been committed
            while pending and not (done.is_set() and time.time() > done.deadline):
                rows = conn.execute(
                    "SELECT external_id FROM profiles_event WHERE source = %s AND external_id = ANY(%s)",
                    [event_source, list(pending)]).fetchall()
                now = time.time()
                for (message_id,) in rows:
                    seen[message_id] = now
                    pending.discard(message_id)
                time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    results = send(port, key, events, 1, "paced", rate)
    done.deadline = time.time() + 30
    done.set()
    poller.join()
    sent_at = results[0]["sent_at"]
    delays = sorted(seen[m] - sent_at[m] for m in seen if m in sent_at)
    return delays, len(pending)


TIMELINE_SCRIPT = """
import json, sys
from profiles.models import Event, Profile
from profiles.timeline import profile_timeline
ids = json.load(open({path!r}))
found = 0
events = Event.objects.filter(source={source!r}, external_id__in=ids).only("id", "profile_id")
by_profile = {{}}
for event in events:
    by_profile.setdefault(event.profile_id, set()).add(event.id)
for profile in Profile.objects.filter(pk__in=by_profile):
    page, _cursor = profile_timeline(profile, limit=500)
    found += len(by_profile[profile.pk] & {{e.id for e in page if e.kind == "e"}})
print(found)
"""


def on_timeline(database_url: str, event_source: str, message_ids: list[str]) -> int:
    """How many of these events the profile timeline selector shows on their customers' pages."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(message_ids, f)
    try:
        result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c",
                                 TIMELINE_SCRIPT.format(path=f.name, source=event_source)],
                                env=bench_api.env_for(database_url), capture_output=True, text=True, cwd=ROOT,
                                check=False)
        if result.returncode:
            print(result.stderr[-3000:], flush=True)
            return -1
        return int(result.stdout.split()[-1])
    finally:
        os.unlink(f.name)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


# --- the benchmark ----------------------------------------------------------------------

def api_small_batches(key: str, clients: int, events: int, size: int, known: list[list[dict]],
                      rng: random.Random, run_id: str, port: int) -> tuple[float, int]:
    """The partner API's mix sent `size` events per request, as the SDKs batch: (wall seconds, accepted)."""
    bodies = []
    for b in range(max(1, events // bench_api.EVENTS_PER_REQUEST)):
        sent = json.loads(bench_api.batch(run_id, b, known, rng)[0])["events"]
        bodies += [json.dumps({"events": sent[i:i + size]}).encode() for i in range(0, len(sent), size)]
    _ok, accepted, seconds = bench_api.fire("/api/v1/events/batch/", key, bodies, clients, port)
    return seconds, accepted


def run(database_url: str = DEFAULT_DATABASE_URL, events: int = 30_000, clients: int = 4, threads: int = 8,
        latency_seconds: int = 30, latency_rate: float = 20, rounds: int = 2, port: int = PORT,
        sdks: tuple[str, ...] = ("python", "node"), server_env: dict | None = None,
        api_sizes: tuple[int, ...] = (100, 15)) -> list[Row]:
    ensure_dataset(database_url)
    partner_key = bench_api.manage(database_url, "create_partner", "Bench collect", "--code",
                                   f"bench-{uuid.uuid4().hex[:6]}", "--scopes", "all").strip()
    event_source, write_key = source_make(database_url)
    senders = {"python": python_clients, "node": node_clients}
    rng = random.Random(1)
    run_id = uuid.uuid4().hex[:8]
    batches = events // bench_api.EVENTS_PER_REQUEST
    rows: list[Row] = [Row("gunicorn: 2 workers × threads", threads, "threads"),
                       Row("client processes (each SDK and the partner API)", clients, "processes")]
    rates: dict[str, list[float]] = {"api": [], **{sdk: [] for sdk in sdks}}
    cpus: dict[str, list[dict]] = {side: [] for side in rates}  # server CPU µs per event
    server = bench_api.start_gunicorn(database_url, threads, {**bench_api.env_for(database_url), **(server_env or {})},
                                      port)
    try:
        known = bench_api.ingest_warm_up(database_url, partner_key, clients, rng, run_id, port)
        for sdk in sdks:  # warm-up (not timed): the SDK path's code and caches, the new event names
            senders[sdk](port, write_key, sdk_events(f"{run_id}w{sdk}", 3000, known, rng), clients)
        for r in range(rounds):  # interleaved, so that a change of the machine's load hits every side
            before = server_cpu(server.pid, database_url)
            _ok, accepted, seconds, _sent = bench_api.ingest_measure(partner_key, clients, batches, known, rng,
                                                                    f"{run_id}r{r}", port)
            cpus["api"].append({kind: used / accepted * 1e6
                                for kind, used in cpu_used(before, server_cpu(server.pid, database_url)).items()})
            rates["api"].append(accepted / seconds)
            print(f"  round {r + 1}: partner API {accepted / seconds:,.0f} events/s", flush=True)
            for sdk in sdks:
                tag = f"{run_id}{sdk[0]}{r}"
                rate, cpu, detail = throughput(sdk, senders[sdk], database_url, port, write_key, event_source,
                                               sdk_events(tag, events, known, rng), clients, tag, server.pid)
                rates[sdk].append(rate)
                cpus[sdk].append(cpu)
                print(f"  round {r + 1}: {sdk} SDK {rate:,.0f} events/s", flush=True)
                if r == rounds - 1:
                    rows += detail
        for size in api_sizes:  # for the analysis: how much of the gap the batch size alone makes
            before = server_cpu(server.pid, database_url)
            seconds, accepted = api_small_batches(partner_key, clients, events, size, known, rng, f"{run_id}s{size}",
                                                  port)
            used = cpu_used(before, server_cpu(server.pid, database_url))
            print(f"  partner API at {size} events/request: {accepted / seconds:,.0f} events/s", flush=True)
            rows.append(Row(f"collect: partner API at {size} events/request (for comparison)", accepted / seconds,
                            "events/s"))
            rows += [Row(f"collect: server CPU per event, api at {size}/request: {kind}", used[kind] / accepted * 1e6,
                         "µs") for kind in ("python", "postgres")]
        api = statistics.median(rates["api"])
        rows.append(Row("collect: partner API batch ingest, 500 events/request (same run)", api, "events/s"))
        for sdk in sdks:
            rate = statistics.median(rates[sdk])
            batch = {"python": 100, "node": 15}[sdk]
            rows.append(Row(f"collect: {sdk} SDK batch ingest, {batch} events/request (default)", rate, "events/s"))
            rows.append(at_least(f"collect: {sdk} SDK / partner API", rate / api, "×", RATIO_TARGET))
            rows[-1].target = f">= {RATIO_TARGET}"
        for side in rates:
            for kind in ("python", "postgres"):
                rows.append(Row(f"collect: server CPU per event, {side}: {kind}",
                                statistics.median(c[kind] for c in cpus[side]), "µs"))

        for sdk in sdks if latency_seconds > 0 else ():
            tag = f"{run_id}l{sdk[0]}"
            probe = sdk_events(tag, int(latency_seconds * latency_rate), known, rng)
            delays, missing = latency(sdk, senders[sdk], database_url, port, write_key, event_source, probe,
                                      latency_rate)
            shown = on_timeline(database_url, event_source, [e["message_id"] for e in probe])
            rows += [
                Row(f"collect latency {sdk}: events sent, {latency_rate:g}/s", len(probe), "events"),
                Row(f"collect latency {sdk}: not stored 30 s after the last send", missing, "events"),
                Row(f"collect latency {sdk}: on their customer's timeline", shown, "events"),
                Row(f"collect latency {sdk}: SDK call → committed row, p50", percentile(delays, 50), "s"),
                at_most(f"collect latency {sdk}: SDK call → committed row, p95", percentile(delays, 95), "s",
                        LATENCY_P95_TARGET),
                Row(f"collect latency {sdk}: SDK call → committed row, max", delays[-1] if delays else float("nan"),
                    "s"),
            ]
            rows[-2].target = f"<= {LATENCY_P95_TARGET:g}"
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def bench_collect(ctx) -> list[Row]:
    """For bench/run.py: runs in its own database, not the demo dataset's."""
    return run()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--events", type=int, default=30_000, help="events per SDK and for the partner API, per round")
    parser.add_argument("--clients", type=int, default=4, help="client processes of each side")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the three (the median is kept)")
    parser.add_argument("--latency-seconds", type=int, default=30, help="how long each latency probe sends (0: none)")
    parser.add_argument("--latency-rate", type=float, default=20, help="track calls per second of the latency probe")
    parser.add_argument("--sdk", action="append", choices=["python", "node"], help="only this SDK (repeatable)")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--api-batch-size", type=int, action="append",
                        help="also send the partner API's mix this many events per request (default: 100 and 15, "
                             "the SDKs' batches; 0: none)")
    parser.add_argument("--settings", help="the server's DJANGO_SETTINGS_MODULE (e.g. one adding a profiler)")
    parser.add_argument("--pythonpath", help="a folder put before the project on the server's PYTHONPATH")
    args = parser.parse_args(argv)
    server_env = {}
    if args.settings:
        server_env["DJANGO_SETTINGS_MODULE"] = args.settings
    if args.pythonpath:
        server_env["PYTHONPATH"] = f"{args.pythonpath}{os.pathsep}{ROOT}"
    rows = run(args.database_url, args.events, args.clients, args.threads, args.latency_seconds, args.latency_rate,
               args.rounds, args.port, tuple(args.sdk or ("python", "node")), server_env,
               tuple(size for size in (args.api_batch_size or [100, 15]) if size > 0))
    for row in rows:
        verdict = "" if row.passed is None else ("pass" if row.passed else "FAIL")
        print(f"{row.name:<66} {row.value:>12,.2f} {row.unit:<10} {row.target:<10} {verdict}")
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
