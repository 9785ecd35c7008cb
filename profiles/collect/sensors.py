"""Sensors Data (神策)-compatible collection endpoint: what sa-sdk-javascript, the app
SDKs (Android, iOS), the mini-program SDKs and the server SDKs (sa-sdk-python, Java…)
send to their `server_url`, turned into profiles.services.collect.Message.

URL: `/collect/sa` (and `/collect/sa.gif`, where the web SDK sends image beacons), with
the source's write key as `token` in the query string, as Sensors' own server_url carries
it: `https://cdp.example.cn/collect/sa?project=default&token=<write key>` (`project` is
ignored). Wire format, as the SDKs build it:

- `data` (one event) or `data_list` (a JSON array), in a POST form body (the Python, Java
  and app SDKs, the web SDK's ajax and batch senders; sendBeacon posts the same as
  text/plain) or in the query string (the web SDK's image beacon:
  `sa.gif?token=…&data=…&ext=crc%3D…`);
- the value is base64 (standard or URL-safe, padding optional, line breaks and a `+`
  turned into a space by a sloppy encoder tolerated) of UTF-8 JSON, gzipped when the SDK
  says `gzip=1` (server and app SDKs) — a gzip stream is recognised by its magic bytes
  whatever the flag says; `gzip=9` / `13` are the app SDKs' encrypted data
  (`{"ekey", "pkv", "payloads"}` envelopes), which cannot be read without Sensors'
  private key: each envelope is rejected with the reason in the debugger;
- `crc` (app SDKs) or `ext=crc=…` (web SDK) is the Java-style hash of the value; a
  mismatch means the value was cut in transit and the request is refused.

A request is all or nothing at the parse stage (bad base64, bad gzip, a gzip bomb, not
JSON, too large, too many events: refused, nothing stored); each event is then mapped on
its own and one that is malformed is rejected with its reason (logged, not stored) while
the others are stored. Statuses follow what the SDKs do with them: 200 stored (the Android
SDK deletes its copy, the Python SDK returns), 400/401/413 the data can never be accepted
(the Android SDK deletes it rather than retrying forever), 5xx a fault of ours (retried).
GET answers a 1×1 GIF, as the web SDK's image beacon expects.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import hashlib
import json
import re
import urllib.parse
import zlib

from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from ..models import CollectSource
from ..services.collect import Message, collect_ingest
from ..services.sources import source_for_key

PROTOCOL = "sensors"
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # the encoded request (form body or query string)
MAX_DECODED_BYTES = 8 * 1024 * 1024  # JSON after base64 and gunzip: the gzip-bomb cap
MAX_EVENTS = 1_000  # per request; the SDKs send 50 (app, Python batch) to 100 (Python async)
MAX_EVENT_BYTES = 64 * 1024  # one event's JSON; a larger one is rejected on its own
MAX_DEPTH = 20  # lists and objects within each other: [ {event {properties {…}}}] is 3
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")

# Sensors' event names → the platform's (profiles/migrations/0002_seed_builtins.py). The
# e-commerce scheme's SubmitOrder (提交订单) is the order and PayOrder (支付订单) its
# payment, kept apart so that an order tracked at both steps is counted once.
EVENTS = {
    "$pageview": "page_view", "$MPViewScreen": "page_view", "$AppViewScreen": "page_view",
    "ViewProduct": "product_view", "AddToShoppingCart": "add_to_cart", "AddCart": "add_to_cart",
    "SubmitOrder": "order", "PayOrder": "payment", "$MPShare": "share",
}
SCREENS = {"$MPViewScreen", "$AppViewScreen"}
# Preset properties → ours. Other `$` presets (timezone offset, viewport, traffic-source
# guesses, $ip, $device_id, latitude/longitude…) are not stored with the event.
PRESETS = {
    "$url": "url", "$url_path": "page", "$title": "title", "$referrer": "referrer", "$referrer_host": "referrer_host",
    "$screen_name": "screen", "$os": "os", "$os_version": "os_version", "$browser": "browser",
    "$browser_version": "browser_version", "$model": "device_model", "$manufacturer": "manufacturer",
    "$brand": "brand", "$screen_width": "screen_width", "$screen_height": "screen_height",
    "$city": "city", "$province": "province", "$country": "country", "$app_version": "app_version",
    "$app_name": "app_name", "$network_type": "network", "$carrier": "carrier", "$scene": "scene",
    "$utm_source": "utm_source", "$utm_medium": "utm_medium", "$utm_campaign": "utm_campaign",
    "$utm_content": "utm_content", "$utm_term": "utm_term", "$is_first_day": "is_first_day",
    "$is_first_time": "is_first_time", "$element_content": "element_content",
}
# Sensors' e-commerce property names (and the demo's CamelCase ones) → the built-in events'.
ALIASES = {
    "product_id": ("commodity_id", "commodityID", "commodity_sku", "ProductId", "productId"),
    "category": ("first_commodity", "commodity_category", "ProductCatalog", "productCatalog"),
    "price": ("present_price", "price_per_commodity", "original_price", "ProductPrice", "productPrice"),
    "quantity": ("commodity_quantity", "commodity_number", "commodity_num", "ProductQuantity"),
    "order_id": ("orderID", "orderId", "OrderId"),
    "method": ("pay_method", "payment_method", "payMethod"),
}
AMOUNTS = ("order_actual_amount", "order_amount", "$order_amount", "orderAmount", "OrderAmount", "pay_amount",
           "payment_amount", "total_price", "totalPrice", "OrderTotalPrice", "amount")
AMOUNT_LIMIT = 10**12
# identities{} keys of the newer SDKs (用户标识 3.0) that name the device or browser.
DEVICE_IDENTITIES = ("$identity_cookie_id", "$identity_anonymous_id", "$identity_android_uuid",
                     "$identity_android_id", "$identity_idfv", "$identity_idfa", "$identity_distinct_id")
UNSUPPORTED = {"profile_increment", "profile_append", "profile_unset", "profile_delete", "track_id_unbind",
               "item_set", "item_delete"}


class Refused(Exception):
    """The request as a whole cannot be read: (status, code, message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@csrf_exempt
def collect(request: HttpRequest) -> HttpResponse:
    return _collect(request, debug=False)


@csrf_exempt
def collect_debug(request: HttpRequest) -> HttpResponse:
    """Sensors' debug mode (sa-sdk-python's DebugConsumer, the app SDKs' DEBUG_ONLY /
    DEBUG_AND_TRACK) sends the same request to `<server_url's directory>/debug`: the answer
    is 400 with the reasons when an event is rejected, and with `Dry-Run: true` the events
    are only checked (by this face's rules, not the identity and time checks of the core),
    never stored."""
    return _collect(request, debug=True)


def _collect(request: HttpRequest, *, debug: bool) -> HttpResponse:
    if request.method == "OPTIONS":  # the web SDK's sends are simple requests; a preflight is answered anyway
        return _cors(request, HttpResponse(status=204), preflight=True)
    if request.method not in ("GET", "POST"):
        return _error(405, "method_not_allowed", _("Send the data with GET or POST."))
    source = source_for_key(request.GET.get("token", ""))  # server_url's ?token=<write key>
    if source is None:
        return _error(401, "invalid_token", _(
            "Unknown or inactive write key: put the tracking source's key in server_url as ?token=<write key>."))
    now = timezone.now()
    origin = page_origin(request)
    if origin and not origin_allowed(source, origin):
        _log_refused(source, request, now, "origin_not_allowed", _(
            "The page's origin %(origin)s is not among the source's allowed origins.") % {"origin": origin[:100]})
        return _error(403, "origin_not_allowed", _("This page's origin is not among the source's allowed origins."))
    try:
        records = read_request(request)
    except Refused as refused:
        _log_refused(source, request, now, refused.code, refused.message)
        return _cors(request, _error(refused.status, refused.code, refused.message))
    messages = [message_of(record, now) for record in records]
    if debug and request.headers.get("Dry-Run", "").lower() == "true":
        wrong = [m for m in messages if m.error]
        if wrong:
            return _cors(request, _error(400, wrong[0].error[0], "; ".join(m.error[1] for m in wrong)[:2000]))
        return _cors(request, JsonResponse({"code": 0, "checked": len(messages)}))
    result = collect_ingest(source=source, messages=messages, now=now)
    if debug and result.rejected:
        return _cors(request, _error(400, "rejected", "; ".join(
            m.reason for m in messages if m.outcome == "rejected")[:2000]))
    if request.method == "GET":
        response = HttpResponse(GIF, content_type="image/gif")
    else:
        response = JsonResponse({"code": 0, "accepted": result.accepted, "duplicates": result.duplicates,
                                 "dropped": result.dropped, "rejected": result.rejected})
    response["Cache-Control"] = "no-store"
    return _cors(request, response)


def _log_refused(source: CollectSource, request: HttpRequest, now: datetime.datetime, code: str, text: str) -> None:
    """A refused request of a known source shows in its debugger, with the reason (nothing else is stored)."""
    collect_ingest(source=source, now=now, messages=[Message(
        protocol=PROTOCOL, type="request", message_id="", occurred_at=None, error=(code, text),
        raw={"path": request.path, "method": request.method,
             "content_length": request.META.get("CONTENT_LENGTH", "")})])


# --- the request ------------------------------------------------------------------------

def read_request(request: HttpRequest) -> list:
    """The events of a request, decoded; Refused when the request cannot be read."""
    length = request.META.get("CONTENT_LENGTH", "")
    length = int(length) if length.isdigit() else 0
    if length > MAX_REQUEST_BYTES or len(request.META.get("QUERY_STRING", "")) > MAX_REQUEST_BYTES:
        raise Refused(413, "too_large", _("The request is larger than %(size)s MB.") % {
            "size": MAX_REQUEST_BYTES // (1024 * 1024)})
    fields = QueryDict(mutable=True)
    fields.update(request.GET)
    if request.method == "POST":
        body = request.body  # form posts, and sendBeacon's text/plain body of the same shape
        try:
            fields.update(QueryDict(body, encoding="utf-8"))
        except (UnicodeDecodeError, ValueError, TooManyFieldsSent):
            raise Refused(400, "malformed", _("The request body is not form data (data=… or data_list=…).")) from None
    name = "data_list" if fields.get("data_list") else "data" if fields.get("data") else ""
    if not name:
        raise Refused(400, "no_data", _("The request carries neither data nor data_list."))
    value = fields[name]
    crc = fields.get("crc") or dict(urllib.parse.parse_qsl(fields.get("ext", ""))).get("crc")
    parsed = decode_value(value, fields.get("gzip", ""), crc)
    records = parsed if isinstance(parsed, list) else [parsed]
    if len(records) > MAX_EVENTS:
        raise Refused(413, "too_many", _("At most %(n)s events per request; this one has %(count)s.") % {
            "n": MAX_EVENTS, "count": len(records)})
    return records


def decode_value(value: str, gzip_flag: str = "", crc: str | None = None):
    """`data` / `data_list` as the SDKs encode it → the JSON inside (see the module's docstring)."""
    text = value.strip()
    plain = text[:1] in ("[", "{")  # the app SDKs' encrypted data (gzip=9, 13) travels as plain JSON
    if not plain:
        text = re.sub(r"[\r\n\t]", "", text).replace(" ", "+")  # a "+" an encoder left unescaped
    if crc and _crc_mismatch(text, crc):
        raise Refused(400, "crc_mismatch", _("The data was cut or altered in transit (crc does not match)."))
    payload = text.encode("utf-8") if plain else _base64(text)
    if payload[:2] == b"\x1f\x8b":
        payload = _gunzip(payload)
    elif gzip_flag.strip() == "1":
        raise Refused(400, "bad_gzip", _("gzip=1 but the data is not gzip."))
    if len(payload) > MAX_DECODED_BYTES:
        raise Refused(413, "too_large", _("The data is larger than %(size)s MB once decoded.") % {
            "size": MAX_DECODED_BYTES // (1024 * 1024)})
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(400, "bad_json", _("The decoded data is not JSON in UTF-8.")) from None
    if _depth(value) > MAX_DEPTH:
        raise Refused(400, "too_deep", _("The data is nested more than %(n)s levels deep.") % {"n": MAX_DEPTH})
    return value


def _depth(value) -> int:
    """How deeply lists and objects nest (iteratively: a hostile payload cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _base64(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    if not BASE64.fullmatch(text):
        raise Refused(400, "bad_base64", _("The data is not base64."))
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise Refused(400, "bad_base64", _("The data is not base64."))
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, "bad_base64", _("The data is not base64.")) from None


def _gunzip(payload: bytes) -> bytes:
    """Gunzip at most MAX_DECODED_BYTES (a gzip bomb stops there)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(payload, MAX_DECODED_BYTES + 1)
    except zlib.error:
        raise Refused(400, "bad_gzip", _("The data is not a valid gzip stream.")) from None
    if len(out) > MAX_DECODED_BYTES or inflater.unconsumed_tail:
        raise Refused(413, "too_large", _("The data is larger than %(size)s MB once decoded.") % {
            "size": MAX_DECODED_BYTES // (1024 * 1024)})
    if not inflater.eof:
        raise Refused(400, "bad_gzip", _("The data is not a valid gzip stream.")) from None
    return out


def java_hash(text: str) -> int:
    """Java's String.hashCode (and the web SDK's copy of it): 32-bit, over UTF-16 units."""
    h = 0
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _crc_mismatch(text: str, crc: str) -> bool:
    try:
        return java_hash(text) != int(str(crc).strip())
    except ValueError:
        return False  # not a number: nothing to check against


def page_origin(request: HttpRequest) -> str:
    """The sending page's origin: its Origin header, or for an image beacon (which carries
    none) its Referer's. Empty for servers and apps."""
    origin = request.headers.get("Origin", "")
    if not origin and request.method == "GET" and request.headers.get("Referer"):
        parts = urllib.parse.urlsplit(request.headers["Referer"])
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return origin


def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


def origin_allowed(source: CollectSource, origin: str) -> bool:
    return _origin(origin) in {_origin(o) for o in source.allowed_origins or [] if isinstance(o, str)}


def _cors(request: HttpRequest, response: HttpResponse, preflight: bool = False) -> HttpResponse:
    """Called once the source allows the page (or for a preflight, which has no key to check:
    the request that follows is checked itself)."""
    origin = request.headers.get("Origin")
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"  # sendBeacon sends with credentials
        response["Vary"] = "Origin"
        if preflight:
            response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", "Content-Type")[:200]
            response["Access-Control-Max-Age"] = "86400"
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                response["Access-Control-Allow-Private-Network"] = "true"  # Chrome: a public page, a CDP on an intranet
    return response


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": status, "error": code, "message": message}, status=status)


# --- one event --------------------------------------------------------------------------

def message_of(record, now: datetime.datetime) -> Message:
    """One Sensors record → a Message; a malformed one carries `.error` (logged, not stored)."""
    if not isinstance(record, dict):
        return _bad(record, "invalid", _("An event must be a JSON object."))
    kind = str(record.get("type") or "")
    if "ekey" in record and "payloads" in record:
        return _bad(record, "encrypted", _(
            "Encrypted data (the SDK's enableEncrypt / transport encryption) cannot be read here: turn it off."))
    if len(json.dumps(record, ensure_ascii=False).encode("utf-8")) > MAX_EVENT_BYTES:
        return _bad(record, "too_large", _("An event may be at most %(size)s KB.") % {"size": MAX_EVENT_BYTES // 1024},
                    kind)
    if kind in UNSUPPORTED:
        return _bad(record, "unsupported", _("“%(type)s” is not supported; the message was left out.") % {
            "type": kind}, kind)
    if kind not in ("track", "track_signup", "track_id_bind", "profile_set", "profile_set_once"):
        return _bad(record, "invalid_type", _("Unknown type “%(type)s”.") % {"type": kind[:40]}, kind)
    properties = record.get("properties") or {}
    if not isinstance(properties, dict):
        return _bad(record, "invalid", _("properties must be a JSON object."), kind)
    occurred_at = _occurred_at(record, now)
    if occurred_at is None:
        return _bad(record, "invalid_time", _("time must be milliseconds since 1970."), kind)
    user_id, anonymous_id, contacts = _who(record, properties)
    lib = record.get("lib") if isinstance(record.get("lib"), dict) else {}
    message = Message(
        protocol=PROTOCOL, type="track", message_id=message_id_of(record), occurred_at=occurred_at,
        user_id=user_id, anonymous_id=anonymous_id, traits=contacts, raw=record,
        library=" ".join(str(lib.get(k) or "") for k in ("$lib", "$lib_version")).strip()[:100],
    )
    if kind in ("profile_set", "profile_set_once", "track_id_bind"):
        message.type = "identify"
        message.event = "$BindID" if kind == "track_id_bind" else ""
        if kind != "track_id_bind":
            message.traits = {**traits_of(properties), **contacts}
        return message
    sensors_name = "$SignUp" if kind == "track_signup" and not record.get("event") else str(record.get("event") or "")
    message.event = EVENTS.get(sensors_name, sensors_name)
    message.type = "screen" if sensors_name in SCREENS else "page" if sensors_name == "$pageview" else "track"
    message.properties = properties_of(sensors_name, properties)
    if message.event in ("order", "payment"):
        try:
            message.amount = amount_of(properties)
        except ValueError:
            message.error = ("invalid_amount", _("The order amount must be a number below 10^12."))
    return message


def _bad(record, code: str, text: str, kind: str = "") -> Message:
    raw = record if isinstance(record, dict) else {"value": str(record)[:200]}
    name = str(raw.get("event") or "")[:200] if isinstance(record, dict) else ""
    return Message(protocol=PROTOCOL, type=(kind or "invalid")[:16], message_id="", occurred_at=None, event=name,
                   raw=raw, error=(code, text))


def _occurred_at(record: dict, now: datetime.datetime) -> datetime.datetime | None:
    """`time` corrected for the device's clock: the SDK stamps `_flush_time` when it sends, so
    the event happened `_flush_time - time` before we received it."""
    sent = record.get("time")
    if sent is None:
        return now
    if isinstance(sent, bool) or not isinstance(sent, (int, float)) or not 0 < sent < 1e14:
        return None
    flushed = record.get("_flush_time")
    if isinstance(flushed, (int, float)) and not isinstance(flushed, bool) and 0 < flushed < 1e14:
        return now - datetime.timedelta(milliseconds=max(flushed - sent, 0))
    return datetime.datetime.fromtimestamp(sent / 1000, tz=datetime.UTC)


def message_id_of(record: dict) -> str:
    """The SDK's `_track_id` (random per event, 9 digits on the web, so not unique alone:
    with the user, time and name); without one (server SDKs) a hash of the whole record.
    `_flush_time` is left out: a retry restamps it."""
    if record.get("_track_id") not in (None, ""):
        key = [record.get("_track_id"), record.get("time"), record.get("distinct_id"), record.get("type"),
               record.get("event")]
        return "sa-" + hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:40]
    body = {k: v for k, v in record.items() if k != "_flush_time"}
    return "sa-h-" + hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:40]


def _text(value) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value).strip()[:255]


def _who(record: dict, properties: dict) -> tuple[str, str, dict]:
    """(login id, anonymous id, phone/e-mail identities) of a record, for each SDK generation:
    `login_id` / `anonymous_id` (web ≥ 1.14, app SDKs), `identities` (用户标识 3.0),
    `distinct_id` with `$is_login_id` (server SDKs), `original_id` of track_signup. An id
    written "<identity key>+<value>" (the web SDK's loginWithKey, sa-sdk-python's bind
    without a login id) counts as that identity."""
    identities = dict(record["identities"]) if isinstance(record.get("identities"), dict) else {}
    ids = {}
    for name in ("login_id", "distinct_id", "anonymous_id", "original_id"):
        value = _text(record.get(name))
        key, plus, rest = value.partition("+")
        if value.startswith("$identity_") and plus and rest:
            identities.setdefault(key, rest)
            value = ""
        ids[name] = value
    login = ids["login_id"] or _text(identities.get("$identity_login_id"))
    if not login and (properties.get("$is_login_id") is True or record.get("type") == "track_signup"):
        login = ids["distinct_id"]
    anonymous = ids["anonymous_id"] or ids["original_id"]
    for key in DEVICE_IDENTITIES:
        anonymous = anonymous or _text(identities.get(key))
    if not anonymous and not login:
        anonymous = ids["distinct_id"]
    contacts = {trait: _text(identities.get(key)) for trait, key in (("phone", "$identity_mobile"),
                                                                     ("email", "$identity_email"))
                if _text(identities.get(key))}
    return login, (anonymous if anonymous != login else ""), contacts


def properties_of(sensors_name: str, properties: dict) -> dict:
    """The event's properties: custom ones as sent, presets under our names, the
    e-commerce scheme's names also under the built-in events' names."""
    result = {k: v for k, v in properties.items() if not str(k).startswith("$")}
    for preset, ours in PRESETS.items():
        if properties.get(preset) not in (None, "") and ours not in result:
            result[ours] = properties[preset]
    if sensors_name in ("$pageview", "$MPViewScreen", "$AppViewScreen") and not result.get("page"):
        page = result.get("screen") or urllib.parse.urlsplit(str(result.get("url") or "")).path or result.get("title")
        if page:
            result["page"] = page
    for ours, theirs in ALIASES.items():
        if ours not in result:
            for name in theirs:
                if properties.get(name) not in (None, ""):
                    result[ours] = properties[name]
                    break
    return result


def amount_of(properties: dict) -> decimal.Decimal | None:
    for name in AMOUNTS:
        value = properties.get(name)
        if value in (None, "") or isinstance(value, bool):
            continue
        try:
            amount = decimal.Decimal(str(value).strip())
        except decimal.InvalidOperation:
            raise ValueError(name) from None
        if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
            raise ValueError(name)
        return amount.quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_HALF_UP)
    return None


def traits_of(properties: dict) -> dict:
    """profile_set's properties as identify traits: `$name` → name, `$gender` → gender…
    (profiles.services.collect.TRAIT_FIELDS says which become customer fields)."""
    traits = {}
    for key, value in properties.items():
        name = str(key).lstrip("$")
        if name in ("is_login_id", "project", "token") or value in (None, "") or isinstance(value, (dict, list)):
            continue
        traits.setdefault(name, value)
    return traits


urlpatterns = [
    path("sa", collect, name="sensors"),
    path("sa.gif", collect, name="sensors-gif"),
    path("debug", collect_debug, name="sensors-debug"),
]
