"""Campaign benchmarks on the demo dataset (run by bench/run.py: `--only campaign`):

* eligibility and outbox for a 500,000-customer segment, frequency caps and a 10 %
  holdout included (target ≤ 30 s), and its eligibility funnel (target ≤ 5 s);
* delivery to a local webhook receiver, 100 messages per request, by a real Celery
  worker with 2 processes on Redis (target ≥ 5,000 messages/s), printed beside the
  receiver's own ceiling measured in the same run;
* trigger latency: events posted to the partner API (gunicorn) at 1,000 events/s, a
  trigger campaign on one of them, the worker's tick every 5 s; p95 from the API's
  acceptance of the triggering event to its delivery row (target ≤ 30 s).

The fixture (once, then reused): a static segment of every second customer, SMS consent
for 80 % of them through the consent service, and three recent deliveries for 5 % of
them (over the default cap of 3 per 7 days).
"""
from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from common import Row, at_least, at_most

ROOT = Path(__file__).resolve().parent.parent
SEGMENT_SLUG = "bench-campaign-half"
RECEIVER_PORT, API_PORT = 8791, 8792
BROKER_URL, CACHE_URL = "redis://127.0.0.1:6379/11", "redis://127.0.0.1:6379/12"


# --- fixture ------------------------------------------------------------------------------

def fixture() -> tuple[object, int]:
    """(the segment, how many members) — built once."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, CampaignRun, Destination
    from cdp.actors import Actor
    from consent.models import ConsentState, Purpose
    from consent.services import ConsentEntry, consent_record_many
    from profiles.models import Profile
    from segments.models import Segment, SegmentMembership

    segment, created = Segment.objects.get_or_create(slug=SEGMENT_SLUG, defaults={
        "name": "Bench: every second customer", "kind": Segment.Kind.STATIC})
    if created or not SegmentMembership.objects.filter(segment=segment).exists():
        with connection.cursor() as cursor:
            cursor.execute("""INSERT INTO segments_segmentmembership (segment_id, profile_id, entered_at)
                              SELECT %s, id, now() FROM profiles_profile WHERE id %% 2 = 0 AND status = 'active'""",
                           [segment.pk])
    members = SegmentMembership.objects.filter(segment=segment).count()
    purpose = Purpose.objects.get(code="sms_marketing")
    have = set(ConsentState.objects.filter(purpose=purpose).values_list("profile_id", flat=True))
    wanted = [pk for pk in SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
              if pk % 10 < 8 and pk not in have]
    captured = timezone.now() - datetime.timedelta(days=30)
    for start in range(0, len(wanted), 5000):
        consent_record_many([ConsentEntry(profile=Profile(pk=pk), purpose_code="sms_marketing", status="granted",
                                          source="import", captured_at=captured)
                             for pk in wanted[start:start + 5000]], actor=Actor.system("demo"))
        print(f"  consent fixture: {start + 5000:,} of {len(wanted):,}", flush=True)
    cap_campaign = Campaign.objects.filter(name="bench: earlier messages").first()
    if cap_campaign is None:
        destination = Destination.objects.create(name="bench: earlier", kind="webhook", config={"url": "http://x"})
        cap_campaign = Campaign.objects.create(name="bench: earlier messages", purpose=purpose, segment=segment,
                                               destination=destination, status=Campaign.Status.FINISHED)
        for days_ago in (1, 2, 3):
            run = CampaignRun.objects.create(campaign=cap_campaign)
            with connection.cursor() as cursor:
                cursor.execute("""
                    INSERT INTO campaigns_delivery (run_id, campaign_id, destination_id, profile_id, channel, address,
                        status, created_at, not_before, attempts, vendor_id, error)
                    SELECT %s, %s, %s, profile_id, 'sms', '', 'sent', now() - %s * interval '1 day', now(), 1, '', ''
                    FROM segments_segmentmembership WHERE segment_id = %s AND profile_id %% 20 = 0""",
                               [run.pk, cap_campaign.pk, destination.pk, days_ago, segment.pk])
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE campaigns_delivery")
    return segment, members


def campaign(segment, destination, name: str, **fields):
    from campaigns.models import Campaign, Variant
    from consent.models import Purpose

    created = Campaign.objects.create(name=name, purpose=Purpose.objects.get(code="sms_marketing"),
                                      destination=destination, segment=segment, holdout_percent=10,
                                      ignore_quiet_hours=True, **fields)
    Variant.objects.create(campaign=created, label="A", weight=100, body="{{ name }}，双十一会员专享 {{ link }}",
                           link_url="https://shop.example.com/1111", sms_sign_name="星河商城")
    return created


def forget(campaign) -> None:
    """Remove a measured campaign's rows, so the next run starts from the same state."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM campaigns_delivery WHERE campaign_id = %s", [campaign.pk])
        cursor.execute("DELETE FROM profiles_event WHERE source = 'campaigns' AND (properties->>'campaign_id')::int = %s",
                       [campaign.pk])
    campaign.runs.all().delete()
    campaign.variants.all().delete()
    campaign.delete()


# --- eligibility --------------------------------------------------------------------------

def bench_campaign_eligibility(ctx) -> list[Row]:
    from campaigns.eligibility import funnel
    from campaigns.models import Destination
    from campaigns.services.runs import run_decide

    segment, members = fixture()
    destination, _ = Destination.objects.get_or_create(name="bench: receiver", kind="webhook", defaults={
        "config": {"url": f"http://127.0.0.1:{RECEIVER_PORT}/hook"}, "secret": "bench", "rate_per_second": 100_000})
    measured = campaign(segment, destination, f"bench eligibility {uuid.uuid4().hex[:6]}")
    try:
        started = time.monotonic()
        counts = funnel(measured)
        funnel_seconds = time.monotonic() - started
        started = time.monotonic()
        run = run_decide(campaign=measured)
        decide_seconds = time.monotonic() - started
    finally:
        forget(measured)
    return [
        Row("campaign: segment members", members, "customers"),
        Row("campaign: consenting / under the cap / to send", counts.to_send, "customers"),
        Row("campaign: holdout", counts.holdout, "customers"),
        at_most("campaign: eligibility funnel", funnel_seconds, "s", 5),
        at_most("campaign: eligibility and outbox (run_decide)", decide_seconds, "s", 30),
        Row("campaign: outbox rows per second", (run.funnel["to_send"] + run.funnel["holdout"]) / decide_seconds,
            "rows/s"),
    ]


# --- delivery -----------------------------------------------------------------------------

class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.messages.value += body.count(b'"key":')
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _serve(counter) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", RECEIVER_PORT), _Receiver)
    server.daemon_threads = True
    server.messages = counter
    server.serve_forever()


def _blast(args) -> int:
    body, seconds = args
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", RECEIVER_PORT)
    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.request("POST", "/hook", body=body, headers={"Content-Type": "application/json"})
        connection.getresponse().read()
        sent += 100
    return sent


def receiver_ceiling(seconds: float = 5) -> float:
    """Messages/s the receiver takes from 2 client processes posting 100-message batches
    as the webhook adapter does (no database, no rendering)."""
    body = json.dumps({"messages": [{"key": f"cdp-{i}", "customer": str(uuid.uuid4()), "address": "+8613800000000",
                                     "campaign": "bench", "variant": "A", "subject": "", "link": "",
                                     "text": "【星河商城】王芳，双十一会员专享 https://cdp.example/r/abcdefghijk 拒收请回复R",
                                     "tokens": {"name": "王芳", "city": "上海"}} for i in range(100)]},
                      ensure_ascii=False).encode()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        started = time.monotonic()
        sent = sum(pool.map(_blast, [(body, seconds)] * 2))
        return sent / (time.monotonic() - started)


def worker_env() -> dict:
    from django.conf import settings

    database = settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": BROKER_URL, "CACHE_URL": CACHE_URL,
            "DJANGO_SETTINGS_MODULE": "cdp.settings", "PYTHONPATH": str(ROOT), "CDP_CAMPAIGN_TICK_SECONDS": "5",
            "CDP_PUBLIC_URL": "https://cdp.example", "CDP_API_REQUESTS_PER_MINUTE": "100000000"}


def start_worker(*, beat: bool = False) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "celery"), "-A", "cdp", "worker", "--concurrency", "2",
               "--loglevel", "warning", "--without-gossip", "--without-mingle", "--pool", "prefork"]
    if beat:
        command += ["--beat", "--schedule", f"/tmp/bench-beat-{os.getpid()}"]
    worker = subprocess.Popen(command, env=worker_env(), cwd=ROOT)
    time.sleep(6)  # connected and forked
    return worker


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def bench_campaign_delivery(ctx, messages: int = 100_000) -> list[Row]:
    from celery import Celery
    from django.db import connection

    from campaigns.models import Campaign, Delivery, Destination
    from campaigns.services.runs import run_decide
    from segments.models import Segment, SegmentMembership

    segment, _members = fixture()
    counter = multiprocessing.get_context("fork").Value("q", 0, lock=False)
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(counter,), daemon=True)
    server.start()
    time.sleep(0.5)
    ceiling = receiver_ceiling()
    subset, _ = Segment.objects.get_or_create(slug="bench-campaign-delivery", defaults={
        "name": "Bench: delivery", "kind": Segment.Kind.STATIC})
    if not SegmentMembership.objects.filter(segment=subset).exists():
        with connection.cursor() as cursor:
            cursor.execute("""INSERT INTO segments_segmentmembership (segment_id, profile_id, entered_at)
                              SELECT %s, profile_id, now() FROM segments_segmentmembership
                              WHERE segment_id = %s AND profile_id %% 10 < 8 AND profile_id %% 20 <> 0
                              ORDER BY profile_id LIMIT %s""", [subset.pk, segment.pk, int(messages / 0.9)])
    destination, _ = Destination.objects.get_or_create(name="bench: receiver", kind="webhook", defaults={
        "config": {"url": f"http://127.0.0.1:{RECEIVER_PORT}/hook"}, "secret": "bench", "rate_per_second": 100_000})
    measured = campaign(subset, destination, f"bench delivery {uuid.uuid4().hex[:6]}", cap_messages=100, cap_days=1)
    worker = start_worker()
    try:
        run_decide(campaign=measured)
        queued = Delivery.objects.filter(campaign=measured, status=Delivery.Status.QUEUED).count()
        Campaign.objects.filter(pk=measured.pk).update(status=Campaign.Status.SENDING)
        app = Celery(broker=BROKER_URL)
        started = time.monotonic()
        for slot in range(2):
            app.send_task("campaigns.tasks.drain", args=[destination.pk, slot])
        while Delivery.objects.filter(campaign=measured, status__in=["queued", "sending"]).exists():
            if time.monotonic() - started > 600:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - started
        sent = Delivery.objects.filter(campaign=measured, status=Delivery.Status.SENT).count()
    finally:
        stop(worker)
        server.terminate()
        forget(measured)
    return [
        Row("delivery: messages queued", queued, "messages"),
        Row("delivery: messages sent", sent, "messages"),
        Row("delivery: receiver ceiling (2 clients, 100/request, no database)", ceiling, "messages/s"),
        at_least("delivery: webhook, 100/request, worker with 2 processes", sent / seconds, "messages/s", 5000),
        Row("delivery: share of the receiver's ceiling", sent / seconds / ceiling * 100, "%"),
    ]


# --- trigger latency ---------------------------------------------------------------------

def _post_events(args) -> list[tuple[str, float]]:
    """A client: post its batches, one every `interval` seconds, each event stamped with
    the moment its batch leaves."""
    key, bodies, interval = args
    import http.client

    sent, next_at = [], time.monotonic()
    for body in bodies:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        stamp = json.dumps(datetime.datetime.now(datetime.timezone.utc).isoformat())
        connection = http.client.HTTPConnection("127.0.0.1", API_PORT, timeout=60)
        connection.request("POST", "/api/v1/events/batch/", body=body.replace('"__NOW__"', stamp),
                           headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"})
        response = connection.getresponse()
        response.read()
        connection.close()
        sent.append((str(response.status), time.time()))
    return sent


def bench_campaign_trigger_latency(ctx, seconds: int = 60, rate: int = 1000) -> list[Row]:
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, Delivery, Destination
    from profiles.models import Event, Profile

    segment, _members = fixture()
    destination, _ = Destination.objects.get_or_create(name="bench: receiver", kind="webhook", defaults={
        "config": {"url": f"http://127.0.0.1:{RECEIVER_PORT}/hook"}, "secret": "bench", "rate_per_second": 100_000})
    measured = campaign(None, destination, f"bench trigger {uuid.uuid4().hex[:6]}",
                        audience_kind=Campaign.AudienceKind.TRIGGER_EVENT, trigger_event="add_to_cart",
                        trigger_where=[{"property": "category", "op": "eq", "value": "bench"}],
                        cap_messages=100, cap_days=1)
    now = timezone.now()
    Campaign.objects.filter(pk=measured.pk).update(status=Campaign.Status.SENDING, launched_at=now,
                                                   trigger_evaluated_until=now)
    # customers who consent (phone identities, as a shop would send them)
    phones = list(Profile.objects.filter(consent_states__purpose__code="sms_marketing", consent_states__status="granted")
                  .exclude(phone="").values_list("phone", flat=True)[:seconds * rate // 10])
    key = subprocess.run([sys.executable, str(ROOT / "manage.py"), "create_partner", "Bench shop", "--code",
                          f"bench-{uuid.uuid4().hex[:6]}", "--scopes", "events:write"], env=worker_env(),
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip().splitlines()[-1]
    run_id = uuid.uuid4().hex[:8]
    batch_size, clients = 100, 4
    batches = []
    for b in range(seconds * rate // batch_size):
        events = []
        for i in range(batch_size):
            n = b * batch_size + i
            trigger = n % 10 == 0  # one event in ten starts the campaign
            events.append({"external_id": f"{run_id}-{n}", "source": "bench-shop",
                           "name": "add_to_cart" if trigger else "page_view",
                           "occurred_at": "__NOW__", "identities": [{"kind": "phone", "value": phones[n // 10 % len(phones)]}],
                           "properties": {"category": "bench"} if trigger else {"page": "home"}})
        batches.append(events)
    worker = start_worker(beat=True)
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "cdp.wsgi", "--workers", "2",
                               "--threads", "8", "--bind", f"127.0.0.1:{API_PORT}", "--log-level", "warning"],
                              env=worker_env(), cwd=ROOT)
    time.sleep(5)
    try:
        interval = batch_size * clients / rate
        shares = [(key, [json.dumps({"events": batch}) for batch in batches[c::clients]], interval)
                  for c in range(clients)]
        with multiprocessing.get_context("fork").Pool(clients) as pool:
            results = pool.map(_post_events, shares)
        deadline = time.monotonic() + 90
        triggered = Event.objects.filter(name="add_to_cart", external_id__startswith=f"{run_id}-")
        while time.monotonic() < deadline:
            if Delivery.objects.filter(campaign=measured).count() >= triggered.values("profile_id").distinct().count():
                break
            time.sleep(2)
        with connection.cursor() as cursor:
            cursor.execute("""
                SELECT EXTRACT(EPOCH FROM d.created_at - MIN(e.received_at))
                FROM campaigns_delivery d JOIN profiles_event e
                  ON e.profile_id = d.profile_id AND e.name = 'add_to_cart' AND e.external_id LIKE %s
                WHERE d.campaign_id = %s GROUP BY d.id, d.created_at""", [f"{run_id}-%", measured.pk])
            latencies = sorted(float(row[0]) for row in cursor.fetchall())
    finally:
        stop(server)
        stop(worker)
        forget(measured)
        with connection.cursor() as cursor:  # the dataset stays as built (bench/run.py --reuse counts it)
            cursor.execute("DELETE FROM profiles_event WHERE source = 'bench-shop'")
    ok = sum(1 for client in results for status, _t in client if status in ("200", "201"))
    p95 = latencies[int(len(latencies) * 0.95) - 1] if latencies else float("inf")
    return [
        Row("trigger: API requests accepted", ok, "requests"),
        Row("trigger: deliveries written", len(latencies), "deliveries"),
        Row("trigger: median latency", statistics.median(latencies) if latencies else float("inf"), "s"),
        at_most("trigger: p95 from API acceptance to delivery row (1,000 events/s)", p95, "s", 30),
    ]
