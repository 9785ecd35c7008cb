#!/usr/bin/env python
"""Partner API benchmarks, end to end over HTTP against gunicorn (2 workers × 8 threads,
127.0.0.1):

* batch event ingest: 500 events per request, new and known customers mixed (target
  ≥ 10,000 events/s), printed next to the database's raw COPY rate for the same rows;
* single-customer upsert: one customer per request, new and known mixed (target
  ≥ 1,000 requests/s);
* for scale, the same setup's ceiling: a DRF view that does nothing, and one that only
  checks the partner's key, scope and rate limit and writes the audit row; the upsert's
  ratio to the latter (target ≥ 0.5) comes from the two taking turns on one server
  (`--rounds`), as the machine's load may change during a run.

Runs in its own database (BENCH_API_DATABASE_URL, default cdp_bench_api), never in the
demo dataset's:

    .venv/bin/python bench/bench_api.py [--database-url …] [--batches 120] [--upserts 3000] [--threads 8]

`bench/run.py` runs it too (`--only partner_api`).
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, at_least  # noqa: E402

DEFAULT_DATABASE_URL = os.environ.get("BENCH_API_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench_api")
PORT = int(os.environ.get("BENCH_API_PORT", "8765"))  # --port; any free one
EVENTS_PER_REQUEST = 500
INGEST_TARGET, UPSERT_TARGET = 10_000, 1_000
# A single upsert against the partner plumbing alone (key, scope, rate limit, audit row) in
# the same run: this machine's ceiling, not an absolute rate, is what the upsert is held to.
UPSERT_PLUMBING_RATIO = 0.5


# --- plumbing ---------------------------------------------------------------------------

def env_for(database_url: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "cdp.settings", "DEBUG": "false",
            "CDP_API_REQUESTS_PER_MINUTE": "100000000", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}


def manage(database_url: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env_for(database_url),
                            capture_output=True, text=True, check=True, cwd=ROOT)
    return result.stdout


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def start_gunicorn(database_url: str, threads: int, env: dict | None = None, port: int | None = None) -> subprocess.Popen:
    port = port or PORT
    # Threads let a worker run Python while another request of it waits on PostgreSQL; as
    # many as there are clients, because connections do not spread evenly over the workers.
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "cdp.wsgi", "--workers", "2", "--threads", str(threads),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        env=env or env_for(database_url), cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, _body = request("GET", "/api/schema/", None, None, port)
            if status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def request(method: str, path: str, body: bytes | None, key: str | None, port: int | None = None) -> tuple[int, bytes]:
    port = port or PORT
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Api-Key {key}"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def _send(args) -> tuple[int, int, float]:
    """A client process: send its request bodies; (requests ok, events accepted, seconds)."""
    path, key, bodies, port = args
    ok = accepted = 0
    started = time.monotonic()
    for body in bodies:
        status, data = request("POST", path, body, key, port)
        if status in (200, 201):
            ok += 1
            if path.endswith("batch/"):
                accepted += json.loads(data)["accepted"]
        else:
            print(f"  {status}: {data[:200]!r}", flush=True)
    return ok, accepted, time.monotonic() - started


def fire(path: str, key: str, bodies: list[bytes], clients: int, port: int | None = None) -> tuple[int, int, float]:
    """Send all bodies from `clients` processes at once; (ok, accepted, wall seconds)."""
    shares = [bodies[i::clients] for i in range(clients)]
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        started = time.monotonic()
        results = pool.map(_send, [(path, key, share, port or PORT) for share in shares])
        seconds = time.monotonic() - started
    return sum(r[0] for r in results), sum(r[1] for r in results), seconds


# --- payloads ---------------------------------------------------------------------------

def new_person(run: str, n: int) -> list[dict]:
    return [{"kind": "crm_id", "value": f"B{run}-{n}"}, {"kind": "email", "value": f"b{run}.{n}@bench.example.com"}]


def batch(run: str, batch_no: int, known: list[list[dict]], rng: random.Random) -> tuple[bytes, list[list[dict]]]:
    """500 events: about half by known customers, half by new ones (some new people twice)."""
    events, people = [], []
    for i in range(EVENTS_PER_REQUEST):
        if known and rng.random() < 0.5:
            who = rng.choice(known)
        else:
            who = new_person(run, batch_no * EVENTS_PER_REQUEST + (i // 2) * 2)
            people.append(who)
        events.append({
            "external_id": f"{run}-{batch_no}-{i}", "source": "bench",
            "name": rng.choice(["page_view", "product_view", "add_to_cart", "order"]),
            "occurred_at": f"2026-11-{rng.randint(1, 27):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+08:00",
            "identities": who, "properties": {"category": rng.choice(["sneakers", "lipstick", "coffee"])},
            "amount": f"{rng.randint(10, 900)}.00",
        })
    return json.dumps({"events": events}).encode(), people


def analyze(database_url: str) -> None:
    """Refresh the planner's statistics of the tables the API reads, as autovacuum does in
    production (this benchmark's database grows with every run, and a server may run with
    autovacuum off): with stale ones PostgreSQL may scan whole tables for a few keys."""
    import psycopg

    parts = urlsplit(database_url)
    with psycopg.connect(urlunsplit(parts._replace(scheme="postgresql")), autocommit=True) as conn:
        conn.execute("ANALYZE profiles_profile, profiles_identity, profiles_event, profiles_profileactivity, "
                     "profiles_profiletag, cdp_auditlog")


# A URLconf for the ceiling: the real routes plus two views that do (almost) nothing.
CEILING_URLS = """
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from cdp.api.views import PartnerAPIView
from cdp.models import Scope
from cdp.urls import urlpatterns as real


class Nothing(APIView):
    authentication_classes, permission_classes = [], []
    schema = None  # not in the OpenAPI schema

    def post(self, request):
        return Response({"ok": bool(request.data)})


class PartnerNothing(PartnerAPIView):
    required_scopes = {"POST": Scope.PROFILES_WRITE}
    schema = None

    def post(self, request):
        return Response({"ok": bool(request.data)})


urlpatterns = [path("ceiling/drf/", Nothing.as_view()), path("ceiling/partner/", PartnerNothing.as_view()), *real]
"""


def ceiling(database_url: str, key: str, bodies: list[bytes], clients: int, threads: int, rounds: int = 1) -> list[Row]:
    """Requests/s of the two do-nothing views on the same gunicorn setup and load, and of
    the upsert beside the partner view: this server serves the real routes too, and the
    two take turns in `rounds` (each sends its share of `bodies`), so that a change of
    the machine's load during the run weighs on both alike."""
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "bench_ceiling_urls.py").write_text(CEILING_URLS)
        Path(directory, "bench_ceiling_settings.py").write_text(
            "from cdp.settings import *  # noqa: F403\nROOT_URLCONF = 'bench_ceiling_urls'\n")
        env = {**env_for(database_url), "DJANGO_SETTINGS_MODULE": "bench_ceiling_settings",
               "PYTHONPATH": f"{directory}{os.pathsep}{ROOT}"}
        server = start_gunicorn(database_url, threads, env)
        try:
            fire("/ceiling/drf/", key, bodies[:clients * 10], clients)  # warm-up
            ok, _accepted, seconds = fire("/ceiling/drf/", key, bodies, clients)
            rows = [Row("ceiling: DRF view doing nothing", ok / seconds, "requests/s")]
            totals = {"/api/v1/profiles/": [0, 0.0], "/ceiling/partner/": [0, 0.0]}
            for path in totals:
                fire(path, key, bodies[-clients * 10:], clients)  # warm-up
            share = -(-len(bodies) // rounds)
            for start in range(0, len(bodies), share):
                for path, total in totals.items():
                    ok, _accepted, seconds = fire(path, key, bodies[start:start + share], clients)
                    total[0] += ok
                    total[1] += seconds
            ok, seconds = totals["/api/v1/profiles/"]
            rows.append(Row(f"api upsert: taking turns with the partner view ({rounds} rounds)", ok / seconds,
                            "requests/s"))
            ok, seconds = totals["/ceiling/partner/"]
            rows.append(Row("ceiling: partner view doing nothing (key, scope, rate, audit)", ok / seconds,
                            "requests/s"))
            return rows
        finally:
            server.terminate()
            server.wait(timeout=30)


def copy_rate(database_url: str, rows: int) -> float:
    """Rows/s of a plain COPY of comparable event rows into a copy of the events table
    (same columns, defaults and indexes; no foreign key): what the database does alone."""
    import psycopg

    parts = urlsplit(database_url)
    with psycopg.connect(urlunsplit(parts._replace(scheme="postgresql")), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_event")
        conn.execute("CREATE TABLE bench_copy_event (LIKE profiles_event INCLUDING DEFAULTS INCLUDING INDEXES)")
        profile_id = conn.execute("SELECT min(id) FROM profiles_profile").fetchone()[0] or 1
        buffer = io.StringIO()
        for i in range(rows):
            buffer.write(f"{i + 1}\t{profile_id}\tpage_view\t2026-11-27 12:00:00+00\t{{\"category\": \"sneakers\"}}\t"
                         f"199.00\tbench\tcopy-{i}\t2026-11-28 00:00:00+00\n")
        text = buffer.getvalue()
        started = time.monotonic()
        with conn.cursor() as cursor, cursor.copy(
            "COPY bench_copy_event (id, profile_id, name, occurred_at, properties, amount, source, external_id, "
            "received_at) FROM STDIN"
        ) as copy:
            copy.write(text)
        seconds = time.monotonic() - started
        conn.execute("DROP TABLE bench_copy_event")
    return rows / seconds


# --- the benchmark ----------------------------------------------------------------------

def ingest_warm_up(database_url: str, key: str, clients: int, rng: random.Random, run_id: str,
                   port: int | None = None) -> list[list[dict]]:
    """Not timed: 10 batches of new customers (returned, the known ones of the mix), warm
    caches and connections, then fresh planner statistics."""
    known: list[list[dict]] = []
    warm = []
    for b in range(10):
        body, people = batch(run_id + "w", b, [], rng)
        warm.append(body)
        known.extend(people)
    fire("/api/v1/events/batch/", key, warm, clients, port)
    analyze(database_url)
    return known


def ingest_measure(key: str, clients: int, batches: int, known: list[list[dict]], rng: random.Random, run_id: str,
                   port: int | None = None) -> tuple[int, int, float, int]:
    """`batches` of 500 events from `clients` processes: (requests ok, events accepted,
    wall seconds, events sent)."""
    bodies = [batch(run_id, b, known, rng)[0] for b in range(batches)]
    ok, accepted, seconds = fire("/api/v1/events/batch/", key, bodies, clients, port)
    return ok, accepted, seconds, len(bodies) * EVENTS_PER_REQUEST


def run(database_url: str = DEFAULT_DATABASE_URL, batches: int = 120, upserts: int = 3000, clients: int = 4,
        threads: int = 8, rounds: int = 6) -> list[Row]:
    ensure_database(database_url)
    manage(database_url, "migrate", "--noinput", "--verbosity", "0")
    key = manage(database_url, "create_partner", "Bench", "--code", f"bench-{uuid.uuid4().hex[:6]}",
                 "--scopes", "all").strip()
    rng = random.Random(1)
    run_id = uuid.uuid4().hex[:8]
    server = start_gunicorn(database_url, threads)
    try:
        known = ingest_warm_up(database_url, key, clients, rng, run_id)
        ok, accepted, seconds, sent = ingest_measure(key, clients, batches, known, rng, run_id)
        rows = [
            Row("api ingest: events sent", sent, "events"),
            Row("api ingest: events accepted", accepted, "events"),
            Row("api ingest: requests", ok, "requests"),
            Row("gunicorn: 2 workers × threads", threads, "threads"),
            at_least("api ingest: rate (500 events/request, 2 gunicorn workers)", accepted / seconds, "events/s",
                     INGEST_TARGET),
            Row("api ingest: latency per request (mean)", seconds / max(ok, 1) * clients * 1000, "ms"),
            Row("database raw COPY rate (same rows, no FK)", copy_rate(database_url, sent), "events/s"),
        ]

        upsert_bodies = []
        for i in range(upserts):
            if i % 2:
                identities = rng.choice(known)
            else:
                identities = new_person(run_id + "u", i)
            upsert_bodies.append(json.dumps({"identities": identities, "city": rng.choice(["上海", "北京"])}).encode())
        ok, _accepted, seconds = fire("/api/v1/profiles/", key, upsert_bodies, clients * 2)
        upsert_rate = ok / seconds
        rows += [
            Row("api upsert: requests ok", ok, "requests"),
            at_least("api upsert: single customer per request", upsert_rate, "requests/s", UPSERT_TARGET),
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The ratio: new bodies (half new customers, half known) for the upsert taking turns with
    # the partner view on one server.
    turns = []
    for i in range(upserts):
        identities = rng.choice(known) if i % 2 else new_person(run_id + "t", i)
        turns.append(json.dumps({"identities": identities, "city": rng.choice(["上海", "北京"])}).encode())
    rows += ceiling(database_url, key, turns, clients * 2, threads, rounds)
    ratio = rows[-2].value / rows[-1].value  # the upsert ÷ the partner view doing nothing, taking turns
    return rows + [Row("api upsert ÷ partner plumbing alone (taking turns)", ratio, "×", f">= {UPSERT_PLUMBING_RATIO:.2f}",
                       ratio >= UPSERT_PLUMBING_RATIO)]


def bench_partner_api(ctx) -> list[Row]:
    """For bench/run.py: runs in its own database, not the demo dataset's."""
    return run()


def main(argv=None) -> int:
    global PORT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--batches", type=int, default=120)
    parser.add_argument("--upserts", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (1: sync workers)")
    parser.add_argument("--port", type=int, default=PORT, help="gunicorn's port on 127.0.0.1 (BENCH_API_PORT)")
    parser.add_argument("--rounds", type=int, default=6,
                        help="turns the upsert and the partner view take for their ratio")
    args = parser.parse_args(argv)
    PORT = args.port
    rows = run(args.database_url, args.batches, args.upserts, args.clients, args.threads, args.rounds)
    for row in rows:
        verdict = "" if row.passed is None else ("pass" if row.passed else "FAIL")
        value = f"{row.value:>12,.2f}" if row.unit == "×" else f"{row.value:>12,.0f}"
        print(f"{row.name:<62} {value} {row.unit:<10} {row.target:<10} {verdict}")
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
