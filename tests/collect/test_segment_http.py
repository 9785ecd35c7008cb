"""The Segment-compatible tracking API (profiles.collect.segment) with hand-made requests:
what the SDKs send, and the bad input they should never send — each answered with the
status the SDKs expect, nothing stored half-way."""
import base64
import datetime
import gzip
import json
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from profiles.models import (
    CollectLog,
    Event,
    EventDefinition,
    Identity,
    Profile,
    ProfileStatus,
)
from profiles.services.sources import source_create, source_key_rotate
from tests.factories import IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db
SHOP = "https://shop.example.cn"


@pytest.fixture
def shop():
    """(source, write key) of a website that allows its shop's pages."""
    return source_create(name="官网商城", code="shop-web", allowed_origins=[SHOP])


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def send(client, endpoint: str, body, key: str | None = None, *, raw: bytes | None = None, **headers):
    data = raw if raw is not None else json.dumps(body).encode()
    extra = {"HTTP_AUTHORIZATION": basic(key)} if key is not None else {}
    extra.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    return client.post(f"/collect/v1/{endpoint}", data=data, content_type="application/json", **extra)


def iso(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def track(event="Product Viewed", **fields) -> dict:
    return {"type": "track", "event": event, "anonymousId": "anon-1", "messageId": str(uuid.uuid4()),
            "timestamp": iso(timezone.now() - datetime.timedelta(minutes=1)), **fields}


def stored(source="sdk-shop-web"):
    return Event.objects.filter(source=source)


# --- what the SDKs send -------------------------------------------------------------------

def test_a_track_call_with_the_key_as_basic_user_is_stored(client, shop):
    source, key = shop
    body = track(properties={"product_id": "SKU-1", "category": "shoes", "price": 399},
                 context={"library": {"name": "analytics-python", "version": "2.4.0"}})

    response = send(client, "track", body, key)

    assert response.status_code == 200 and response.json()["success"] is True
    event = stored().get()
    assert (event.name, event.properties["product_id"], event.properties["category"]) == (
        "product_view", "SKU-1", "shoes")
    assert event.external_id == body["messageId"]
    log = CollectLog.objects.get(source=source)
    assert (log.outcome, log.library, log.protocol) == ("accepted", "analytics-python 2.4.0", "segment")


def test_analytics_js_posts_text_plain_with_the_key_in_the_body_to_the_short_paths(client, shop):
    _source, key = shop
    page = {"type": "page", "name": "Sneakers", "category": "Shop", "anonymousId": "anon-js", "writeKey": key,
            "messageId": "ajs-next-1", "properties": {"path": "/p/sneakers", "url": f"{SHOP}/p/sneakers"},
            "timestamp": iso(timezone.now()), "sentAt": iso(timezone.now())}
    batch = {"writeKey": key, "sentAt": iso(timezone.now()),
             "batch": [track(anonymousId="anon-js", writeKey=key), track("Product Added", anonymousId="anon-js")]}

    first = client.post("/collect/v1/p", data=json.dumps(page), content_type="text/plain", HTTP_ORIGIN=SHOP)
    second = client.post("/collect/v1/b", data=json.dumps(batch), content_type="text/plain", HTTP_ORIGIN=SHOP)

    assert (first.status_code, second.status_code) == (200, 200)
    assert first["Access-Control-Allow-Origin"] == SHOP
    assert not any("writeKey" in log.payload for log in CollectLog.objects.all())  # the debugger never shows the key
    assert sorted(stored().values_list("name", flat=True)) == ["add_to_cart", "page_view", "product_view"]
    assert stored().get(name="page_view").properties["page"] == "/p/sneakers"


def test_every_endpoint_and_alias_is_routed(client, shop):
    _source, key = shop
    for endpoint in ("identify", "track", "page", "screen", "group", "alias", "i", "t", "p", "s", "g", "a"):
        body = {"anonymousId": "anon-2", "userId": "U1", "previousId": "anon-2", "event": "Clicked", "groupId": "G1",
                "name": "Home", "messageId": f"m-{endpoint}"}
        assert send(client, endpoint, body, key).status_code == 200, endpoint
    assert set(stored().values_list("name", flat=True)) == {"clicked", "page_view", "group"}
    assert stored().count() == 8  # track, page, screen, group on both paths


def test_a_retried_message_is_stored_once_also_without_a_message_id(client, shop):
    _source, key = shop
    without_id = {"type": "track", "event": "Coupon Claimed", "anonymousId": "anon-3",
                  "timestamp": "2026-01-02T03:04:05Z", "sentAt": iso(timezone.now())}
    with_id = track()

    for attempt in (1, 2):
        retry = {**without_id, "sentAt": iso(timezone.now()), "_metadata": {"retryCount": attempt}}
        assert send(client, "batch", {"batch": [retry, with_id]}, key).status_code == 200

    assert stored().count() == 2
    assert stored().get(name="coupon_claimed").external_id.startswith("h-")
    assert EventDefinition.objects.get(name="coupon_claimed").review_pending is True


def test_an_anonymous_visitor_who_identifies_moves_to_the_known_customer(client, shop):
    _source, key = shop
    customer = ProfileFactory(name="")
    IdentityFactory(profile=customer, kind_id="crm_id", value="U100")
    send(client, "batch", {"batch": [track(anonymousId="anon-4"), track("Product Added", anonymousId="anon-4")]}, key)
    visitor = Identity.objects.get(kind_id="anonymous_id", value="anon-4").profile

    response = send(client, "identify", {"userId": "U100", "anonymousId": "anon-4", "traits": {"name": "王芳"}}, key)

    assert response.status_code == 200
    visitor.refresh_from_db()
    assert visitor.status == ProfileStatus.MERGED and visitor.merged_into_id == customer.pk
    assert stored().filter(profile=customer).count() == 2
    customer.refresh_from_db()
    assert customer.name == "王芳"


def test_alias_links_the_previous_id_to_the_user_id(client, shop):
    _source, key = shop
    customer = ProfileFactory()
    IdentityFactory(profile=customer, kind_id="crm_id", value="U7")
    send(client, "track", track(anonymousId="anon-5"), key)

    send(client, "alias", {"previousId": "anon-5", "userId": "U7"}, key)

    assert Identity.objects.get(kind_id="anonymous_id", value="anon-5").profile_id == customer.pk
    assert stored().get().profile_id == customer.pk


def test_segment_ecommerce_names_become_the_platforms_events(client, shop):
    _source, key = shop
    order = track("Order Completed", properties={
        "order_id": "O-1", "total": 458.5, "revenue": 400, "currency": "CNY",
        "products": [{"product_id": "SKU-9", "category": "shoes", "price": 229.25, "quantity": 2}]})
    batch = [order, track("Product Added", properties={"product_id": "SKU-9", "quantity": 1}),
             {"type": "screen", "name": "购物车", "anonymousId": "anon-1"},
             track("Product Shared", properties={"share_via": "wechat"}), track("Email Link Clicked",
                                                                                properties={"campaign_name": "双11"})]

    assert send(client, "batch", {"batch": batch}, key).status_code == 200

    events = {event.name: event for event in stored()}
    assert set(events) == {"order", "add_to_cart", "page_view", "share", "campaign_click"}
    assert events["order"].amount == Decimal("458.50")
    assert (events["order"].properties["category"], events["order"].properties["product_id"]) == ("shoes", "SKU-9")
    assert events["page_view"].properties["page"] == "购物车"
    assert events["share"].properties["channel"] == "wechat"
    assert events["campaign_click"].properties["campaign"] == "双11"


def test_the_senders_clock_is_corrected_by_sent_at(client, shop):
    _source, key = shop
    now = timezone.now()
    behind = datetime.timedelta(hours=2)  # the phone's clock is two hours slow
    skewed = track(timestamp=iso(now - behind - datetime.timedelta(minutes=10)), sentAt=iso(now - behind))
    history = track(timestamp="2025-03-01T08:00:00Z")  # a server's import of history: no sentAt, taken as sent

    send(client, "batch", {"batch": [skewed, history]}, key)

    occurred = {event.external_id: event.occurred_at for event in stored()}
    assert abs(occurred[skewed["messageId"]] - (now - datetime.timedelta(minutes=10))) < datetime.timedelta(minutes=1)
    assert occurred[history["messageId"]] == datetime.datetime(2025, 3, 1, 8, tzinfo=datetime.UTC)


def test_a_device_a_year_ahead_is_corrected_but_a_time_a_year_ahead_is_refused_with_the_reason(client, shop):
    source, key = shop
    now, year = timezone.now(), datetime.timedelta(days=365)
    device_ahead = track(timestamp=iso(now + year), sentAt=iso(now + year))  # its clock is wrong, consistently
    time_ahead = track(timestamp=iso(now + year), sentAt=iso(now))  # the event's time itself is a year off

    response = send(client, "batch", {"batch": [device_ahead, time_ahead]}, key)

    assert response.status_code == 200  # taken: the SDK must not resend it forever
    assert list(stored().values_list("external_id", flat=True)) == [device_ahead["messageId"]]
    assert abs(stored().get().occurred_at - now) < datetime.timedelta(minutes=1)
    rejected = CollectLog.objects.get(source=source, outcome="rejected")
    assert rejected.reason.startswith("out_of_range:") and "sentAt" in rejected.reason


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["wrong.key", "abcdefgh.not-the-secret", ""])
def test_a_wrong_write_key_is_401_and_nothing_is_stored(client, shop, key):
    response = send(client, "batch", {"batch": [track()]}, key)

    assert response.status_code == 401
    assert response.json()["success"] is False and response.json()["code"] in ("invalid_write_key", "missing_write_key")
    assert not Event.objects.exists() and not CollectLog.objects.exists()


def test_a_rotated_key_and_a_missing_key_are_401(client, shop):
    source, old = shop
    source_key_rotate(source=source)

    assert send(client, "track", track(), old).status_code == 401
    assert send(client, "track", track()).status_code == 401
    assert send(client, "track", track(writeKey="nonsense")).status_code == 401
    assert not Event.objects.exists()


def test_write_keys_open_nothing_but_collection(client, shop):
    _source, key = shop

    response = client.get("/api/v1/profiles/", HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert response.status_code in (401, 403)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b'{"batch": "x"}', b'{"n": NaN}', b"",
                                 b'{"batch": [], "context": {"library": {"name": "a\\u0000"}}}'])
def test_malformed_json_is_400_and_nothing_is_stored(client, shop, raw):
    _source, key = shop

    response = send(client, "batch", None, key, raw=raw)

    assert response.status_code == 400 and response.json()["success"] is False
    assert not Event.objects.exists()


def test_an_oversized_call_is_413_and_logged_with_the_reason(client, shop):
    source, key = shop
    big = track(properties={"blob": "x" * 33_000})

    response = send(client, "track", big, key)

    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert not Event.objects.exists()
    log = CollectLog.objects.get(source=source)
    assert log.outcome == "rejected" and "32 KB" in log.reason


def test_an_oversized_or_unstorable_message_in_a_batch_is_rejected_and_the_rest_stored(client, shop):
    source, key = shop
    good, big, nul = track(), track(properties={"blob": "x" * 33_000}), track(properties={"note": "a\u0000b"})

    response = send(client, "batch", {"batch": [good, big, nul, "not a message", {"type": "explode"}]}, key)

    assert response.status_code == 200
    assert response.json()["accepted"] == 1 and response.json()["rejected"] == 4
    assert list(stored().values_list("external_id", flat=True)) == [good["messageId"]]
    reasons = sorted(CollectLog.objects.filter(source=source, outcome="rejected").values_list("reason", flat=True))
    assert [reason.split(":")[0] for reason in reasons] == ["invalid", "invalid", "invalid_type", "too_large"]


def test_a_batch_over_500_kb_is_413_and_nothing_is_stored(client, shop):
    _source, key = shop
    batch = [track(properties={"blob": "x" * 30_000}) for _ in range(18)]  # each under 32 KB, together 540 KB

    response = send(client, "batch", {"batch": batch}, key)

    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    assert not Event.objects.exists()


def test_10000_events_in_one_request_are_refused_whole(client, shop):
    source, key = shop
    batch = [{"type": "track", "event": "e", "userId": str(n)} for n in range(10_000)]  # compact: under 500 KB
    raw = json.dumps({"batch": batch}, separators=(",", ":")).encode()
    assert len(raw) < 500 * 1024

    response = send(client, "batch", None, key, raw=raw)

    assert response.status_code == 413 and response.json()["code"] == "too_many_messages"
    assert not Event.objects.exists() and not Profile.objects.exists()
    assert CollectLog.objects.get(source=source).reason.startswith("too_many_messages:")


def test_a_gzipped_batch_is_read(client, shop):
    _source, key = shop
    body = gzip.compress(json.dumps({"batch": [track(), track()]}).encode())

    response = send(client, "batch", None, key, raw=body, content_encoding="gzip")

    assert response.status_code == 200 and stored().count() == 2


def test_a_gzip_bomb_stops_at_the_limit_with_413(client, shop):
    _source, key = shop
    prefix = b'{"batch": [' + json.dumps(track()).encode() + b', {"event": "'
    bomb = gzip.compress(prefix + b"A" * 200_000_000, compresslevel=9)  # 200 MB from about 200 KB
    assert len(bomb) < 500 * 1024

    response = send(client, "batch", None, key, raw=bomb, content_encoding="gzip")

    assert response.status_code == 413
    assert not Event.objects.exists()


@pytest.mark.parametrize("raw", [b"not gzip at all", gzip.compress(b'{"batch": []}')[:-12]])
def test_broken_gzip_is_400(client, shop, raw):
    _source, key = shop

    response = send(client, "batch", None, key, raw=raw, content_encoding="gzip")

    assert response.status_code == 400 and response.json()["code"] == "invalid_gzip"


# --- browsers -----------------------------------------------------------------------------

def test_a_page_from_a_disallowed_origin_is_403_and_nothing_is_stored(client, shop):
    source, key = shop

    response = send(client, "t", track(writeKey=key), origin="https://evil.example.com")

    assert response.status_code == 403 and "Access-Control-Allow-Origin" not in response
    assert not Event.objects.exists() and not Identity.objects.exists()
    assert CollectLog.objects.get(source=source).reason.startswith("origin_not_allowed:")


def test_a_server_source_without_origins_takes_server_calls_but_no_browser_ones(client):
    _source, key = source_create(name="订单服务", code="orders")

    assert send(client, "track", track(), key).status_code == 200
    assert send(client, "track", track(), key, origin=SHOP).status_code == 403
    assert stored("sdk-orders").count() == 1


def test_preflight_answers_only_origins_some_source_allows(client, shop):
    allowed = client.options("/collect/v1/b", HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                             HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type")
    refused = client.options("/collect/v1/b", HTTP_ORIGIN="https://evil.example.com",
                             HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")

    assert allowed.status_code == 204 and allowed["Access-Control-Allow-Origin"] == SHOP
    assert "Authorization" in allowed["Access-Control-Allow-Headers"]
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused


def test_other_methods_are_405(client, shop):
    assert client.get("/collect/v1/track").status_code == 405


def test_errors_are_in_chinese_by_default_with_a_stable_code(client, shop):
    response = send(client, "track", track(), "wrong.key")

    assert response.json() == {"success": False, "code": "invalid_write_key", "message": "写入密钥未知或已停用。"}


@pytest.mark.parametrize("size", [5, 100])
def test_a_batch_takes_a_bounded_number_of_queries(client, shop, django_assert_max_num_queries, size):
    _source, key = shop
    send(client, "track", track(), key)  # the key is cached, the event names known
    batch = [track(anonymousId=f"anon-{n}", properties={"product_id": f"SKU-{n}"}) for n in range(size)]

    with django_assert_max_num_queries(15):  # 12 today, whatever the size
        assert send(client, "batch", {"batch": batch}, key).status_code == 200

    assert stored().count() == size + 1


@pytest.mark.parametrize("message", [
    {"type": "track", "event": {"a": 1}, "anonymousId": "x"},
    {"type": "track", "event": "e", "anonymousId": ["x"]},
    {"type": "track", "event": "e", "anonymousId": "x", "properties": [1, 2], "context": "nope"},
    {"type": "track", "event": "e", "anonymousId": "x", "timestamp": 1733400000},
    {"type": "track", "event": "e", "anonymousId": "x", "timestamp": "yesterday", "sentAt": "now"},
    {"type": "track", "event": "e", "anonymousId": "x", "timestamp": "0001-01-01T00:00:00Z",
     "sentAt": "9999-12-31T23:59:59Z"},
    {"type": "track", "event": "e", "userId": "u" * 5000},
    {"type": "track", "event": "e" * 5000, "userId": 42, "messageId": 7},
    {"type": "identify", "userId": "U1", "traits": {"birthday": "not a date", "phone": "12", "email": "nope"}},
    {"type": "track", "event": "Order Completed", "userId": "U1", "properties": {"total": "lots"}},
    {"type": "track", "event": "Order Completed", "userId": "U1", "properties": {"total": 1e15}},
    {"type": "track", "event": "Order Completed", "userId": "U1", "properties": {"total": True, "products": "x"}},
    {"type": "alias", "previousId": None, "userId": None},
    {"type": "group", "anonymousId": "x", "groupId": {"id": 1}},
    {"type": "page", "anonymousId": "x", "properties": {"path": ["/"]}, "name": 3},
    {"type": "track", "event": "领取优惠券", "anonymousId": "访客", "properties": {"n": 10 ** 30}},
    {"type": "track", "event": "e", "anonymousId": "x", "properties": {"x": "\ud800"}},
])
def test_odd_messages_are_taken_or_rejected_never_a_server_error(client, shop, message):
    _source, key = shop

    response = send(client, "batch", {"batch": [message]}, key)

    assert response.status_code == 200
    assert CollectLog.objects.count() == 1


def test_infinite_numbers_are_400(client, shop):
    _source, key = shop

    response = send(client, "batch", None, key, raw=b'{"batch": [{"type": "track", "properties": {"n": 1e400}}]}')

    assert response.status_code == 400
