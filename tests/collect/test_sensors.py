"""The Sensors Data-compatible endpoint (profiles.collect.sensors) with requests encoded
as the SDKs encode them, each encoder rebuilt here from the SDK's source:

- sa-sdk-javascript 1.27 (`encodeTrackData`): base64 of the UTF-8 JSON (`btoa` over
  `encodeURIComponent`'s bytes), sent as `data=<encodeURIComponent(b64)>&ext=<encodeURIComponent("crc=" + hash)>`,
  the hash being Java's String.hashCode over the base64; an image beacon GETs
  `…/sa.gif?<server_url's query>&data=…&ext=…`, the ajax sender POSTs the same form; the
  batch sender POSTs `data_list=<encodeURIComponent(b64 of the JSON array)>`;
- sa-sdk-python 1.11 (DefaultConsumer / BatchConsumer): form `data` or `data_list` =
  `base64.b64encode(gzip.compress(json))`, `gzip=1`;
- sa-sdk-android (AnalyticsMessages.sendHttpRequest): form `crc=<data.hashCode()>`,
  `gzip=1`, `data_list=<base64 of gzip>`; with encryption on, `gzip=9` and the JSON
  envelopes sent as they are.
"""
import base64
import datetime
import gzip
import json
import urllib.parse
from decimal import Decimal

import pytest
from django.utils import timezone

from profiles.collect.sensors import MAX_EVENTS, decode_value, java_hash, message_id_of
from profiles.models import (
    CollectHourlyCount,
    CollectLog,
    Event,
    EventDefinition,
    Identity,
    Profile,
    ProfileStatus,
)
from profiles.services.sources import source_create
from tests.factories import IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db
URL = "/collect/sa"


@pytest.fixture
def shop():
    source, key = source_create(name="官网商城", code="shop-web", allowed_origins=["https://shop.example.cn"])
    return source, key


def now_ms(delta_seconds: float = 0) -> int:
    return int((timezone.now().timestamp() + delta_seconds) * 1000)


def uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent."""
    return urllib.parse.quote(text, safe="-_.!~*'()")


def web_b64(value) -> str:
    """The web SDK's `$()`: btoa over the UTF-8 bytes of the JSON."""
    return base64.b64encode(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")).decode()


def web_track_data(record: dict) -> str:
    """The web SDK's encodeTrackData (one event, image beacon and ajax)."""
    b64 = web_b64(record)
    return f"data={uri_component(b64)}&ext={uri_component('crc=' + str(java_hash(b64)))}"


def python_form(records: list[dict], batch: bool = True) -> str:
    """sa-sdk-python's consumers: urlencode({'data_list' | 'data': b64(gzip(json)), 'gzip': 1})."""
    if batch:
        raw = "[" + ",".join(json.dumps(r) for r in records) + "]"
        return urllib.parse.urlencode({"data_list": base64.b64encode(gzip.compress(raw.encode())), "gzip": 1})
    return urllib.parse.urlencode({"data": base64.b64encode(gzip.compress(json.dumps(records[0]).encode())),
                                   "gzip": 1})


def android_form(records: list[dict]) -> str:
    data = base64.b64encode(gzip.compress(json.dumps(records).encode())).decode()
    return urllib.parse.urlencode({"crc": java_hash(data), "gzip": "1", "data_list": data})


def post(client, key, body: str, **headers):
    return client.post(f"{URL}?project=default&token={key}", data=body,
                       content_type="application/x-www-form-urlencoded", **headers)


def web_event(event="$pageview", properties=None, **fields) -> dict:
    """What sa-sdk-javascript 1.27 builds for a visitor who has not logged in."""
    record = {
        "identities": {"$identity_cookie_id": "18c0a1b2c3d4e5-0f1e2d"}, "distinct_id": "18c0a1b2c3d4e5-0f1e2d",
        "anonymous_id": "18c0a1b2c3d4e5-0f1e2d", "type": "track", "event": event,
        "lib": {"$lib": "js", "$lib_method": "code", "$lib_version": "1.27.10"},
        "properties": {"$timezone_offset": -480, "$screen_height": 1080, "$screen_width": 1920, "$lib": "js",
                       "$lib_version": "1.27.10", "$latest_traffic_source_type": "直接流量",
                       "$url": "https://shop.example.cn/p/123?from=home", "$url_path": "/p/123",
                       "$title": "跑鞋 Air 123", "$referrer": "", "$is_first_day": True, "$ip": "203.0.113.7",
                       **(properties or {})},
        "_track_id": 384951234, "time": now_ms(-5), "_flush_time": now_ms(-5),
    }
    record.update(fields)
    return record


# --- the web SDK ---------------------------------------------------------------------------

def test_an_image_beacon_from_the_web_sdk_stores_the_page_view_and_answers_a_gif(client, shop):
    _source, key = shop

    response = client.get(f"/collect/sa.gif?project=default&token={key}&{web_track_data(web_event())}",
                          HTTP_REFERER="https://shop.example.cn/p/123?from=home")

    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    event = Event.objects.get()
    assert (event.name, event.source) == ("page_view", "sdk-shop-web")
    assert event.properties["page"] == "/p/123" and event.properties["url"].startswith("https://shop.example.cn/p/")
    assert event.properties["title"] == "跑鞋 Air 123" and event.properties["screen_width"] == 1920
    assert not any(key.startswith("$") for key in event.properties)
    assert "203.0.113.7" not in json.dumps(event.properties)  # $ip is not kept
    assert Identity.objects.get(kind_id="anonymous_id").value == "18c0a1b2c3d4e5-0f1e2d"
    log = CollectLog.objects.get()
    assert (log.protocol, log.outcome, log.library) == ("sensors", "accepted", "js 1.27.10")
    assert "203.0.113.7" not in json.dumps(log.payload)


def test_the_ajax_sender_posts_the_same_form_and_gets_cors_headers_for_an_allowed_origin(client, shop):
    _source, key = shop

    response = post(client, key, web_track_data(web_event("ViewProduct", {"commodity_id": "SKU-9", "present_price": 399})),
                    HTTP_ORIGIN="https://shop.example.cn")

    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.cn"
    event = Event.objects.get()
    assert event.name == "product_view"
    assert (event.properties["product_id"], event.properties["price"]) == ("SKU-9", 399)


def test_send_beacon_posts_the_form_as_text_plain(client, shop):
    _source, key = shop

    response = client.post(f"{URL}?token={key}", data=web_track_data(web_event()),
                           content_type="text/plain;charset=UTF-8", HTTP_ORIGIN="https://shop.example.cn")

    assert response.status_code == 200 and Event.objects.count() == 1


def test_a_page_from_an_origin_the_source_does_not_allow_is_refused(client, shop):
    source, key = shop

    response = post(client, key, web_track_data(web_event()), HTTP_ORIGIN="https://evil.example.com")
    beacon = client.get(f"/collect/sa.gif?token={key}&{web_track_data(web_event())}",
                        HTTP_REFERER="https://evil.example.com/x")

    assert (response.status_code, beacon.status_code) == (403, 403)
    assert "Access-Control-Allow-Origin" not in response
    assert not Event.objects.exists() and not Identity.objects.exists()
    reasons = CollectLog.objects.filter(source=source).values_list("reason", flat=True)
    assert len(reasons) == 2 and all("evil.example.com" in r for r in reasons)


def test_a_wrong_key_gets_no_cors_header(client, shop):
    response = post(client, "AAAAAAAA.nope", web_track_data(web_event()), HTTP_ORIGIN="https://shop.example.cn")

    assert response.status_code == 401 and "Access-Control-Allow-Origin" not in response


def test_the_preflight_is_answered(client, shop):
    response = client.options(URL, HTTP_ORIGIN="https://shop.example.cn",
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")

    assert response.status_code == 204 and "POST" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Private-Network" not in response
    intranet = client.options(URL, HTTP_ORIGIN="https://shop.example.cn", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                              HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK="true")
    assert intranet["Access-Control-Allow-Private-Network"] == "true"


def test_the_batch_sender_posts_a_data_list_of_several_events(client, shop):
    _source, key = shop
    events = [web_event(properties={"$url_path": f"/p/{n}"}, _track_id=100000000 + n) for n in range(3)]
    body = "data_list=" + uri_component(web_b64(events))

    response = post(client, key, body, HTTP_ORIGIN="https://shop.example.cn")

    assert response.status_code == 200 and response.json()["accepted"] == 3
    assert sorted(Event.objects.values_list("properties__page", flat=True)) == ["/p/0", "/p/1", "/p/2"]


def test_a_retry_of_the_same_event_is_a_duplicate_even_with_a_new_flush_time(client, shop):
    _source, key = shop
    event = web_event()
    post(client, key, web_track_data(event))
    again = dict(event, _flush_time=event["_flush_time"] + 30_000)

    response = post(client, key, web_track_data(again))

    assert response.json()["duplicates"] == 1 and Event.objects.count() == 1


def test_two_events_sharing_a_nine_digit_track_id_are_both_kept(client, shop):
    _source, key = shop
    first = web_event(_track_id=123456789)
    second = web_event(_track_id=123456789, distinct_id="other-visitor", anonymous_id="other-visitor",
                       identities={"$identity_cookie_id": "other-visitor"})

    post(client, key, web_track_data(first))
    post(client, key, web_track_data(second))

    assert Event.objects.count() == 2


def test_chinese_custom_events_and_properties_survive_the_encoding(client, shop):
    _source, key = shop
    record = web_event("领取优惠券", {"券名": "满199减30", "coupon_id": "C-1"})

    post(client, key, web_track_data(record))

    event = Event.objects.get()
    assert event.name == "ling_qu_you_hui_quan" and event.properties["券名"] == "满199减30"
    assert EventDefinition.objects.get(name="ling_qu_you_hui_quan").review_pending


# --- identities ----------------------------------------------------------------------------

def test_login_links_the_cookie_visitor_to_the_known_customer(client, shop):
    """The web SDK's login(): a track_signup ($SignUp) with the login id as distinct_id and
    the cookie id as original_id, then events carry login_id and anonymous_id."""
    _source, key = shop
    customer = ProfileFactory()
    IdentityFactory(profile=customer, kind_id="crm_id", value="U100")
    post(client, key, web_track_data(web_event()))
    visitor = Identity.objects.get(kind_id="anonymous_id").profile
    signup = {"identities": {"$identity_cookie_id": "18c0a1b2c3d4e5-0f1e2d", "$identity_login_id": "U100"},
              "distinct_id": "U100", "original_id": "18c0a1b2c3d4e5-0f1e2d", "type": "track_signup",
              "event": "$SignUp", "login_id": "U100", "anonymous_id": "18c0a1b2c3d4e5-0f1e2d",
              "lib": {"$lib": "js", "$lib_version": "1.27.10"}, "properties": {"$is_first_day": True},
              "_track_id": 555000111, "time": now_ms(-1), "_flush_time": now_ms(-1)}

    response = post(client, key, web_track_data(signup))

    assert response.json()["accepted"] == 1
    visitor.refresh_from_db()
    assert visitor.status == ProfileStatus.MERGED and visitor.merged_into_id == customer.pk
    assert set(Event.objects.values_list("profile_id", "name")) == {(customer.pk, "page_view"), (customer.pk, "sign_up")}
    logged_in = web_event("AddToShoppingCart", {"commodity_id": "SKU-1", "commodity_quantity": 2},
                          login_id="U100", distinct_id="U100", _track_id=777)
    post(client, key, web_track_data(logged_in))
    cart = Event.objects.get(name="add_to_cart")
    assert cart.profile_id == customer.pk and cart.properties["quantity"] == 2


def test_a_server_sdks_distinct_id_is_the_login_id_when_is_login_id_says_so(client, shop):
    _source, key = shop
    record = {"type": "track", "event": "SubmitOrder", "distinct_id": "U300", "time": now_ms(-2),
              "lib": {"$lib": "python", "$lib_version": "1.11.0"},
              "properties": {"$is_login_id": True, "order_id": "SO-1", "order_amount": "299.5"}}
    anonymous = dict(record, distinct_id="device-7", properties={"order_id": "SO-2", "order_amount": 10})

    post(client, key, python_form([record, anonymous]))

    order = Event.objects.get(properties__order_id="SO-1")
    assert (order.name, order.amount) == ("order", Decimal("299.50"))
    assert Identity.objects.get(kind_id="crm_id").profile_id == order.profile_id
    other = Event.objects.get(properties__order_id="SO-2")
    assert Identity.objects.get(kind_id="anonymous_id").profile_id == other.profile_id != order.profile_id


def test_pay_order_is_the_payment_of_the_submitted_order(client, shop):
    _source, key = shop
    base = {"type": "track", "distinct_id": "U1", "time": now_ms(-2), "properties": {"$is_login_id": True}}
    submit = {**base, "event": "SubmitOrder",
              "properties": {"$is_login_id": True, "order_id": "SO-9", "order_actual_amount": 88}}
    pay = {**base, "event": "PayOrder",
           "properties": {"$is_login_id": True, "order_id": "SO-9", "pay_amount": 88, "pay_method": "wechat"}}

    post(client, key, python_form([submit, pay]))

    assert dict(Event.objects.values_list("name", "amount")) == {"order": Decimal("88.00"), "payment": Decimal("88.00")}
    assert Event.objects.get(name="payment").properties["method"] == "wechat"


def test_identities_of_the_newer_sdks_carry_login_cookie_phone_and_email(client, shop):
    _source, key = shop
    bind = {"type": "track_id_bind", "event": "$BindID", "distinct_id": "U500", "time": now_ms(-1),
            "identities": {"$identity_login_id": "U500", "$identity_cookie_id": "ck-5",
                           "$identity_mobile": "13800138000", "$identity_email": "Wang@Example.com"},
            "properties": {}, "_track_id": 42}

    post(client, key, web_track_data(bind))

    kinds = dict(Identity.objects.values_list("kind_id", "value"))
    assert kinds == {"crm_id": "U500", "anonymous_id": "ck-5", "phone": "+8613800138000",
                     "email": "wang@example.com"}
    assert Profile.objects.count() == 1 and not Event.objects.exists()


def test_profile_set_fills_the_customers_fields(client, shop):
    _source, key = shop
    record = {"type": "profile_set", "distinct_id": "U600", "time": now_ms(-1),
              "lib": {"$lib": "python", "$lib_version": "1.11.0"},
              "properties": {"$is_login_id": True, "$name": "王芳", "gender": "女", "$city": "上海",
                             "$province": "上海", "mobile": "13900139000", "email": "fang@example.cn",
                             "birthday": "1990-05-01", "会员等级": "金卡"}}

    response = post(client, key, python_form([record], batch=False))

    assert response.status_code == 200 and response.json()["accepted"] == 1
    profile = Identity.objects.get(kind_id="crm_id", value="U600").profile
    assert (profile.name, profile.gender, profile.city, profile.province) == ("王芳", "female", "上海", "上海")
    assert (profile.phone, profile.email, str(profile.birth_date)) == ("+8613900139000", "fang@example.cn",
                                                                       "1990-05-01")
    assert not Event.objects.exists()


def test_a_visitor_with_a_location_keeps_it_on_the_event(client, shop):
    _source, key = shop

    post(client, key, web_track_data(web_event(properties={"$city": "杭州", "$province": "浙江",
                                                           "$country": "中国", "$os": "iOS", "$os_version": "17.2"})))

    props = Event.objects.get().properties
    assert (props["city"], props["province"], props["country"], props["os"], props["os_version"]) == (
        "杭州", "浙江", "中国", "iOS", "17.2")


# --- the app SDKs ----------------------------------------------------------------------------

def test_the_android_sdks_batch_with_crc_and_gzip_flag_is_stored(client, shop):
    _source, key = shop
    record = {"_track_id": -1740012233, "time": now_ms(-60), "type": "track", "event": "$AppViewScreen",
              "distinct_id": "a1b2c3d4e5f60718", "anonymous_id": "a1b2c3d4e5f60718",
              "identities": {"$identity_android_id": "a1b2c3d4e5f60718"},
              "lib": {"$lib": "Android", "$lib_version": "6.8.0", "$lib_method": "code"},
              "properties": {"$screen_name": "com.shop.ProductActivity", "$title": "商品详情", "$os": "Android",
                             "$model": "M2012K11AC", "$manufacturer": "Xiaomi", "$network_type": "WIFI",
                             "$device_id": "a1b2c3d4e5f60718"},
              "_flush_time": now_ms(-60)}

    response = post(client, key, android_form([record]))

    assert response.status_code == 200
    event = Event.objects.get()
    assert (event.name, event.properties["page"], event.properties["device_model"]) == (
        "page_view", "com.shop.ProductActivity", "M2012K11AC")
    assert "a1b2c3d4e5f60718" not in json.dumps(event.properties)


def test_the_app_sdks_encrypted_batches_are_rejected_with_the_reason_in_the_debugger(client, shop):
    source, key = shop
    envelopes = [{"ekey": "RSA-ENCRYPTED-KEY", "pkv": 3, "payloads": ["aGVsbG8="], "flush_time": now_ms()}]
    data = json.dumps(envelopes)
    body = urllib.parse.urlencode({"crc": java_hash(data), "gzip": "9", "data_list": data})

    response = post(client, key, body)

    assert response.status_code == 200 and response.json()["rejected"] == 1
    assert not Event.objects.exists()
    assert "encrypted" in CollectLog.objects.get(source=source).reason


def test_an_app_whose_clock_is_a_year_behind_gets_the_time_corrected_by_flush_time(client, shop):
    _source, key = shop
    year = 365 * 86400
    record = {"type": "track", "event": "AppStart", "distinct_id": "dev-1", "_track_id": 9,
              "time": now_ms(-year - 120), "_flush_time": now_ms(-year), "properties": {}}

    post(client, key, android_form([record]))

    occurred = Event.objects.get().occurred_at
    expected = timezone.now() - datetime.timedelta(seconds=120)
    assert abs((occurred - expected).total_seconds()) < 60


def test_a_server_event_a_year_in_the_future_is_rejected_and_the_others_kept(client, shop):
    _source, key = shop
    good = {"type": "track", "event": "Login", "distinct_id": "d1", "time": now_ms(-1), "properties": {}}
    future = dict(good, time=now_ms(365 * 86400))

    response = post(client, key, python_form([good, future]))

    assert response.status_code == 200 and (response.json()["accepted"], response.json()["rejected"]) == (1, 1)
    assert Event.objects.count() == 1
    assert "out_of_range" in CollectLog.objects.get(outcome="rejected").reason


# --- bad input ------------------------------------------------------------------------------

def test_a_wrong_or_missing_token_is_401_and_nothing_is_stored(client, shop):
    _source, key = shop

    wrong = post(client, key + "x", web_track_data(web_event()))
    missing = client.post(URL, data=web_track_data(web_event()), content_type="application/x-www-form-urlencoded")

    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.json()["error"] == "invalid_token"
    assert not Event.objects.exists() and not CollectLog.objects.exists()


def test_the_refusal_is_in_the_readers_language(client, shop):
    response = client.post(f"{URL}?token=nope", data="data=x", content_type="application/x-www-form-urlencoded",
                           HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 401 and "写入密钥" in response.json()["message"]


@pytest.mark.parametrize("body, code", [
    ("data=%%%not-base64!!", "bad_base64"),
    ("data=" + base64.b64encode(b"not json at all").decode(), "bad_json"),
    ("gzip=1&data=" + base64.b64encode(b'{"type": "track"}').decode(), "bad_gzip"),
    ("gzip=1&data=" + uri_component(base64.b64encode(gzip.compress(b'{"type":"track"}')[:-12]).decode()), "bad_gzip"),
    ("data=" + base64.b64encode("{\"type\": \"track\", \"event\": \"\xe9\"}".encode("latin-1")).decode(), "bad_json"),
    ("project=default", "no_data"),
    ("data=" + base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode(), "bad_json"),  # beyond the parser's stack
    ("data=" + base64.b64encode(b'{"a":' * 50 + b"1" + b"}" * 50).decode(), "too_deep"),
])
def test_unreadable_requests_are_400_logged_for_the_source_and_store_nothing(client, shop, body, code):
    source, key = shop

    response = post(client, key, body)

    assert response.status_code == 400 and response.json()["error"] == code
    assert not Event.objects.exists() and not Identity.objects.exists()
    assert CollectLog.objects.get(source=source).reason.startswith(code)
    assert CollectHourlyCount.objects.get(source=source).rejected == 1


def test_a_beacon_cut_in_transit_fails_its_crc(client, shop):
    _source, key = shop
    data = web_track_data(web_event())
    b64, ext = data.split("&")
    cut = b64[:-8] + "&" + ext  # still base64, no longer the data the crc was computed on

    response = client.get(f"/collect/sa.gif?token={key}&{cut}")

    assert response.status_code == 400 and response.json()["error"] == "crc_mismatch"
    assert not Event.objects.exists()


def test_base64_may_be_url_safe_unpadded_or_have_its_plus_turned_into_a_space(client, shop):
    _source, key = shop
    record = web_event(properties={"note": "ÿÿÿ>>>???"})  # bytes whose base64 has + and /
    standard = web_b64(record)
    assert "+" in standard or "/" in standard
    url_safe = standard.replace("+", "-").replace("/", "_").rstrip("=")

    first = post(client, key, "data=" + url_safe)
    second = post(client, key, "data=" + standard.replace("+", " ").replace("/", "%2F"))  # "+" left unescaped

    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["accepted"], second.json()["duplicates"]) == (1, 1)


def test_a_gzip_bomb_is_refused_without_inflating_it_whole(client, shop):
    _source, key = shop
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")  # 64 MB of JSON whitespace in ~64 KB

    response = post(client, key, urllib.parse.urlencode({"gzip": 1, "data_list": base64.b64encode(bomb)}))

    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert not Event.objects.exists()


def test_ten_thousand_events_in_one_request_are_refused_whole(client, shop):
    _source, key = shop
    records = [{"type": "track", "event": "Tick", "distinct_id": "d", "time": now_ms(-1), "properties": {"n": n}}
               for n in range(10_000)]

    response = post(client, key, python_form(records))

    assert response.status_code == 413 and str(MAX_EVENTS) in response.json()["message"]
    assert not Event.objects.exists() and not Identity.objects.exists()


def test_an_oversized_request_body_is_413(client, shop):
    _source, key = shop

    response = post(client, key, "data=" + "A" * (3 * 1024 * 1024))

    assert response.status_code == 413 and not Event.objects.exists()


def test_an_oversized_event_is_rejected_alone(client, shop):
    _source, key = shop
    big = {"type": "track", "event": "Big", "distinct_id": "d", "time": now_ms(-1), "properties": {"x": "y" * 70_000}}
    small = {"type": "track", "event": "Small", "distinct_id": "d", "time": now_ms(-1), "properties": {}}

    response = post(client, key, python_form([big, small]))

    assert (response.json()["accepted"], response.json()["rejected"]) == (1, 1)
    assert list(Event.objects.values_list("name", flat=True)) == ["small"]


def test_malformed_events_in_a_batch_are_rejected_one_by_one(client, shop):
    source, key = shop
    records = [
        "not an object",
        {"type": "track", "event": "Ok", "distinct_id": "d", "time": now_ms(-1), "properties": {}},
        {"type": "track", "event": "BadTime", "distinct_id": "d", "time": "yesterday", "properties": {}},
        {"type": "profile_increment", "distinct_id": "d", "time": now_ms(-1), "properties": {"points": 5}},
        {"type": "nonsense", "distinct_id": "d"},
        {"type": "track", "event": "NoOne", "time": now_ms(-1), "properties": {}},
        {"type": "track", "event": "SubmitOrder", "distinct_id": "d", "time": now_ms(-1),
         "properties": {"order_amount": "lots"}},
    ]

    response = post(client, key, python_form(records))

    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected"]) == (1, 6)
    assert list(Event.objects.values_list("name", flat=True)) == ["ok"]
    reasons = sorted(r.split(":")[0] for r in CollectLog.objects.filter(source=source, outcome="rejected")
                     .values_list("reason", flat=True))
    assert reasons == ["invalid", "invalid_amount", "invalid_time", "invalid_type", "no_identity", "unsupported"]


def test_only_get_post_and_options(client, shop):
    _source, key = shop

    assert client.put(f"{URL}?token={key}").status_code == 405


# --- the encodings themselves ---------------------------------------------------------------

def test_java_hash_matches_java_string_hash_code():
    assert java_hash("") == 0
    assert java_hash("hello") == 99162322
    assert java_hash("eyJ0eXBlIjoidHJhY2sifQ==") == java_hash("eyJ0eXBlIjoidHJhY2sifQ==")
    assert java_hash("The quick brown fox jumps over the lazy dog") == -609428141  # wraps around 2^32


def test_decode_value_reads_every_encoding_the_sdks_use():
    value = {"type": "track", "event": "中文"}
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert decode_value(base64.b64encode(raw).decode()) == value
    assert decode_value(base64.b64encode(gzip.compress(raw)).decode(), "1") == value
    assert decode_value(base64.urlsafe_b64encode(gzip.compress(raw)).decode().rstrip("="), "9") == value
    assert decode_value(json.dumps([value])) == [value]


def test_a_message_id_is_stable_across_retries_and_distinct_per_event():
    event = web_event()
    assert message_id_of(event) == message_id_of(dict(event, _flush_time=1))
    assert message_id_of(event) != message_id_of(dict(event, time=event["time"] + 1))
    server = {"type": "track", "event": "A", "distinct_id": "d", "time": 1}
    assert message_id_of(server) == message_id_of(dict(server, _flush_time=5)) != message_id_of(dict(server, time=2))


def test_an_id_written_with_its_identity_key_counts_as_that_identity(client, shop):
    """The web SDK's loginWithKey("$identity_mobile", …) sends login_id "$identity_mobile+<phone>"."""
    _source, key = shop
    record = web_event(login_id="$identity_mobile+13700137000", distinct_id="$identity_mobile+13700137000")

    post(client, key, web_track_data(record))

    assert dict(Identity.objects.values_list("kind_id", "value")) == {
        "phone": "+8613700137000", "anonymous_id": "18c0a1b2c3d4e5-0f1e2d"}
    assert not Identity.objects.filter(kind_id="crm_id").exists()
