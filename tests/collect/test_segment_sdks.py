"""The official Segment SDKs — segment-analytics-python and @segment/analytics-node —
against a live test server: their events land, their retries are duplicates, and an
anonymous visitor who identifies moves to the known customer."""
import json
import shutil
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from segment.analytics import request as segment_request
from segment.analytics.client import Client
from segment.analytics.version import VERSION as PYTHON_SDK_VERSION

from profiles.models import CollectLog, Event, Identity, ProfileStatus
from profiles.services.sources import source_create
from tests.factories import IdentityFactory, ProfileFactory

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture
def world(seeded_transactional_db, live_server):
    """A server source, its write key, and a known customer (CRM id U100)."""
    source, key = source_create(name="商城后端", code="shop-server", kind="server")
    customer = ProfileFactory(name="", email="")
    IdentityFactory(profile=customer, kind_id="crm_id", value="U100")
    return source, key, customer, live_server.url


def scenario(anonymous_id: str, repeated_id: str) -> list[dict]:
    """The calls both SDKs make: browsing anonymously (one call sent twice), signing in, buying."""
    viewed = {"anonymousId": anonymous_id, "event": "Product Viewed", "messageId": repeated_id,
              "properties": {"product_id": "SKU-1", "category": "shoes", "price": 399}}
    return [
        {"call": "track", "params": viewed},
        {"call": "page", "params": {"anonymousId": anonymous_id, "name": "Sneakers",
                                    "properties": {"path": "/p/sku-1", "url": "https://shop.example.cn/p/sku-1"}}},
        {"call": "track", "params": {"anonymousId": anonymous_id, "event": "Product Added",
                                     "properties": {"product_id": "SKU-1", "quantity": 1}}},
        {"call": "flush"},
        {"call": "track", "params": viewed},  # sent again: a retry
        {"call": "flush"},
        {"call": "identify", "params": {"userId": "U100", "anonymousId": anonymous_id,
                                        "traits": {"name": "王芳", "email": "wang.fang@example.cn"}}},
        {"call": "flush"},
        {"call": "track", "params": {"userId": "U100", "event": "Order Completed",
                                     "properties": {"order_id": "O-1", "total": 399, "products": [
                                         {"product_id": "SKU-1", "category": "shoes", "quantity": 1}]}}},
    ]


def check_database(source, customer, anonymous_id: str, library: str) -> None:
    events = Event.objects.filter(source=source.event_source)
    assert sorted(events.values_list("name", flat=True)) == ["add_to_cart", "order", "page_view", "product_view"]
    assert set(events.values_list("profile_id", flat=True)) == {customer.pk}  # the visitor's events moved to them
    visitor = Identity.objects.get(kind_id="anonymous_id", value=anonymous_id)
    assert visitor.profile_id == customer.pk
    assert events.get(name="order").amount == Decimal("399.00")
    assert events.get(name="page_view").properties["page"] == "/p/sku-1"
    customer.refresh_from_db()
    assert (customer.name, customer.email, customer.status) == ("王芳", "wang.fang@example.cn", ProfileStatus.ACTIVE)
    log = CollectLog.objects.filter(source=source)
    assert log.filter(outcome="duplicate").count() == 1
    assert not log.filter(outcome="rejected").exists()
    assert set(log.values_list("library", flat=True)) == {library}


@pytest.mark.parametrize("gzip", [False, True])
def test_analytics_python(world, gzip):
    source, key, customer, url = world
    errors = []
    client = Client(key, host=f"{url}/collect", gzip=gzip, max_retries=0, upload_interval=0.05,
                    on_error=lambda error, batch: errors.append(error))
    anonymous_id = f"py-{uuid.uuid4()}"
    calls = {"track": client.track, "page": client.page, "identify": client.identify}
    names = {"anonymousId": "anonymous_id", "userId": "user_id", "messageId": "message_id"}
    try:
        for step in scenario(anonymous_id, str(uuid.uuid4())):
            if step["call"] == "flush":
                client.flush()
                continue
            calls[step["call"]](**{names.get(name, name): value for name, value in step["params"].items()})
        client.flush()
    finally:
        client.shutdown()
        segment_request._session.close()  # the SDK's keep-alive connection would hold a server thread (and its database connection) open

    assert errors == []
    check_database(source, customer, anonymous_id, f"analytics-python {PYTHON_SDK_VERSION}")


def node_modules() -> None:
    """Install the pinned SDK (package-lock.json) if it is not there; failing to, the test fails."""
    if (NODE_DIR / "node_modules" / "@segment" / "analytics-node").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to install @segment/analytics-node (tests/collect/node)")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode:
        pytest.fail(f"npm ci failed in {NODE_DIR}:\n{done.stderr[-2000:]}")


def test_analytics_node(world):
    source, key, customer, url = world
    node_modules()
    anonymous_id = f"node-{uuid.uuid4()}"

    done = subprocess.run(["node", "send.mjs", url, "/collect/v1/batch", key], cwd=NODE_DIR, capture_output=True,
                          text=True, timeout=120, check=False,
                          input=json.dumps(scenario(anonymous_id, str(uuid.uuid4()))))

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["errors"] == [] and set(report["responses"]) == {200}
    version = json.loads((NODE_DIR / "node_modules/@segment/analytics-node/package.json").read_text())["version"]
    check_database(source, customer, anonymous_id, f"@segment/analytics-node {version}")
