"""Campaign fixtures: seeded purposes, a segment with members, a webhook destination
pointed at a local HTTP receiver that the tests start (never a mock of our code)."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Destination, Variant
from cdp.actors import Actor
from consent.services import consent_record
from segments.models import Segment, SegmentMembership
from tests.factories import ProfileFactory

SECRET = "whsec-test-secret"


class Receiver:
    """A partner's webhook: records each batch; answers with the queued statuses first
    (e.g. [503, 200]), then 200. De-duplicates messages by key, as a receiver must."""

    def __init__(self):
        self.requests, self.answers, self.keys_seen, self.duplicates = [], [], set(), 0
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds to wait before answering (after the request is recorded)
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers), "body": body})
                    status, headers, answer = receiver.answers.pop(0) if receiver.answers else (200, {}, {})
                    if status == 200:
                        for message in json.loads(body).get("messages", []):
                            if message["key"] in receiver.keys_seen:
                                receiver.duplicates += 1
                            receiver.keys_seen.add(message["key"])
                receiver.received.set()
                time.sleep(receiver.delay)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, headers: dict | None = None, body: dict | None = None):
        self.answers.append((status, headers or {}, body or {}))

    @property
    def messages(self) -> list[dict]:
        return [m for r in self.requests for m in json.loads(r["body"]).get("messages", [])]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def webhook(receiver):
    return Destination.objects.create(name="Partner push", kind="webhook", config={"url": receiver.url},
                                      secret=SECRET, batch_size=100, rate_per_second=10_000)


def consenting(purpose_code="sms_marketing", n=1, **fields):
    """`n` customers who granted `purpose_code` (captured a day ago)."""
    people = ProfileFactory.create_batch(n, **fields)
    for person in people:
        consent_record(profile=person, purpose_code=purpose_code, status="granted", source="admin",
                       actor=Actor.system("test"), captured_at=timezone.now() - timezone.timedelta(days=1))
    return people


def segment_of(profiles, slug="audience") -> Segment:
    segment = Segment.objects.create(name=slug, slug=slug, kind=Segment.Kind.STATIC)
    SegmentMembership.objects.bulk_create([SegmentMembership(segment=segment, profile=p) for p in profiles])
    return segment


def campaign_for(segment, destination, *, purpose="sms_marketing", body="{{ name }}，您好", holdout=0, **fields):
    from consent.models import Purpose

    campaign = Campaign.objects.create(name=fields.pop("name", "春季促销"), purpose=Purpose.objects.get(code=purpose),
                                       destination=destination, segment=segment, holdout_percent=holdout, **fields)
    Variant.objects.create(campaign=campaign, label="A", weight=100, body=body, sms_sign_name="测试")
    return campaign
