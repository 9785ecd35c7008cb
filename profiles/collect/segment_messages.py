"""Segment's messages (the Tracking API spec: identify, track, page, screen, group, alias)
as profiles.services.collect.Message: who (userId, anonymousId, traits), when (clock-skew
corrected as Segment does it), what (Segment's e-commerce spec names mapped to the
platform's events), and the per-message limits. Nothing here stores anything."""
from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import re

from django.utils.translation import gettext as _

from cdp.api.parsers import check_storable

from ..services.collect import Message, event_name_of
from ..services.ingest import AMOUNT_LIMIT, EARLIEST, MAX_FUTURE

PROTOCOL = "segment"
TYPES = ("identify", "track", "page", "screen", "group", "alias")
MAX_MESSAGE_BYTES = 32 * 1024  # Segment: 32 KB per call
# Keys an SDK changes when it retries the same message: left out of the generated messageId.
VOLATILE_KEYS = {"sentAt", "writeKey", "_metadata", "receivedAt", "messageId"}
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # no database column takes these (cdp.api.parsers)

# Segment's spec names (as event_name_of slugs them: "Product Viewed" -> product_viewed)
# that are one of the platform's built-in events.
SPEC_EVENTS = {
    "product_viewed": "product_view",
    "product_added": "add_to_cart",
    "order_completed": "order",
    "product_shared": "share",
    "cart_shared": "share",
    "email_opened": "campaign_open",
    "email_link_clicked": "campaign_click",
}
ORDER_AMOUNT_KEYS = ("total", "revenue", "value")  # total: what the customer paid (after discounts, with tax/shipping)


class Refused(ValueError):
    """A message the face cannot take: (code, translated message)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def message_size(raw) -> int:
    return len(json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8", "surrogatepass"))


def message_build(raw, *, type_: str | None, received_at: datetime.datetime, batch_sent_at=None,
                  batch_context: dict | None = None) -> Message:
    """One Message from one Segment message; a message the face refuses carries `.error`
    (the core logs it as rejected and stores nothing of it)."""
    if not isinstance(raw, dict):
        message = Message(protocol=PROTOCOL, type=str(type_ or "unknown"), message_id="", occurred_at=None,
                          raw={"message": storable(str(raw)[:200])})
        message.error = ("invalid", _("A message must be a JSON object."))
        return message
    kind = (type_ or str(raw.get("type") or "")).lower()
    message = Message(protocol=PROTOCOL, type=kind[:16] or "unknown", message_id=_text(raw.get("messageId"))[:128],
                      occurred_at=None, raw={k: v for k, v in raw.items() if k != "writeKey"})  # the debugger shows it
    try:
        _fill(message, raw, kind, received_at, batch_sent_at, batch_context or {})
    except Refused as refused:
        message.error = (refused.code, refused.message)
        message.raw, message.event = storable(message.raw), storable(message.event)  # the debugger keeps it
    return message


def storable(value):
    """A copy the database can keep: NUL and lone surrogates in strings and keys become U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(k) if isinstance(k, str) else k: storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def _fill(message: Message, raw: dict, kind: str, received_at, batch_sent_at, batch_context: dict) -> None:
    if kind not in TYPES:
        raise Refused("invalid_type", _("Unknown message type “%(type)s”; expected one of %(types)s.")
                      % {"type": kind[:40], "types": ", ".join(TYPES)})
    size = message_size(raw)
    if size > MAX_MESSAGE_BYTES:
        raise Refused("too_large", _("The message has %(size)s bytes; at most %(limit)s (32 KB) are accepted.")
                      % {"size": size, "limit": MAX_MESSAGE_BYTES})
    try:
        check_storable(raw)
    except ValueError as error:
        raise Refused("invalid", getattr(error, "message", str(error))) from None
    context = {**batch_context, **_dict(raw, "context")}
    message.message_id = message.message_id or generated_id(kind, raw)
    message.library = _library(context)
    if kind == "alias":  # previousId (the visitor's anonymous id or former user id) -> userId
        message.anonymous_id = _identifier(raw, "previousId")
        message.user_id = _identifier(raw, "userId")
    else:
        message.user_id = _identifier(raw, "userId")
        message.anonymous_id = _identifier(raw, "anonymousId")
    message.traits = {**_dict(context, "traits"), **(_dict(raw, "traits") if kind == "identify" else {})}
    message.occurred_at = occurred_at(raw, received_at, batch_sent_at)
    if kind in ("track", "page", "screen", "group"):
        if not EARLIEST <= message.occurred_at <= received_at + MAX_FUTURE:
            raise Refused("out_of_range", _(
                "The event's time %(time)s (UTC, after correcting the sender's clock by sentAt) is before "
                "2000-01-01 or in the future; the message was not stored. Check the device's clock and its "
                "timestamp and sentAt.") % {"time": message.occurred_at.strftime("%Y-%m-%d %H:%M:%S")})
        message.event, message.properties, message.amount = _what(raw, kind)


def generated_id(kind: str, raw: dict) -> str:
    """A messageId for a message sent without one, the same on every retry of it."""
    stable = {k: v for k, v in raw.items() if k not in VOLATILE_KEYS}
    digest = hashlib.sha256(json.dumps([kind, stable], sort_keys=True, ensure_ascii=False, default=str).encode())
    return "h-" + digest.hexdigest()[:40]


def occurred_at(raw: dict, received_at: datetime.datetime, batch_sent_at=None) -> datetime.datetime:
    """When it happened, as Segment computes `timestamp`: the device's time corrected by the
    difference between its clock and ours, receivedAt - (sentAt - originalTimestamp).
    Without sentAt the device's time is taken as it is (a server's import of history);
    without any time, when we received it."""
    device = _time(raw, "originalTimestamp") or _time(raw, "timestamp")
    if device is None:
        return received_at
    sent = _time(raw, "sentAt") or _parse_time(batch_sent_at, "sentAt")
    if sent is None:
        return device
    try:
        return received_at - (sent - device)
    except OverflowError:
        raise Refused("out_of_range", _("timestamp and sentAt are too far apart to correct the clock.")) from None


def _what(raw: dict, kind: str) -> tuple[str, dict, decimal.Decimal | None]:
    """(platform event name or the SDK's, properties, amount)."""
    properties = dict(_dict(raw, "properties"))
    if kind == "page":
        name, category = _text(raw.get("name")), _text(raw.get("category"))
        page = _text(properties.get("path")) or _text(properties.get("url")) or name
        properties.update({k: v for k, v in (("page", page), ("name", name), ("category", category)) if v})
        return "page_view", properties, None
    if kind == "screen":
        name = _text(raw.get("name")) or _text(properties.get("name"))
        properties.update({"page": name, "screen": name} if name else {})
        return "page_view", properties, None
    if kind == "group":
        traits = _dict(raw, "traits")
        return "group", {**traits, "group_id": _identifier(raw, "groupId")}, None
    name = _text(raw.get("event"))
    platform = SPEC_EVENTS.get(event_name_of(name))
    if platform is None:
        return name, properties, None
    products = properties.get("products")
    first = products[0] if isinstance(products, list) and products and isinstance(products[0], dict) else {}
    for key in ("product_id", "category"):
        if properties.get(key) in (None, ""):
            value = first.get(key) or (first.get("id") or properties.get("id") if key == "product_id" else None)
            if value not in (None, ""):
                properties[key] = value
    if platform == "share" and properties.get("share_via") and "channel" not in properties:
        properties["channel"] = properties["share_via"]
    if platform.startswith("campaign_") and "campaign" not in properties:
        campaign = properties.get("campaign_name") or properties.get("campaign_id")
        if campaign:
            properties["campaign"] = campaign
    amount = _amount(properties) if platform == "order" else None
    return platform, properties, amount


def _amount(properties: dict) -> decimal.Decimal | None:
    for key in ORDER_AMOUNT_KEYS:
        value = properties.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, (bool, dict, list)):
            value = "not-a-number"
        try:
            amount = decimal.Decimal(str(value)).quantize(decimal.Decimal("0.01"))
        except (decimal.InvalidOperation, ValueError):
            raise Refused("invalid_amount", _("properties.%(key)s is not a number: “%(value)s”.")
                          % {"key": key, "value": str(value)[:40]}) from None
        if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
            raise Refused("invalid_amount", _("properties.%(key)s is out of range (at most 12 digits before the "
                                              "point).") % {"key": key})
        return amount
    return None


def _library(context: dict) -> str:
    library = context.get("library")
    if not isinstance(library, dict):
        return ""
    return f"{_text(library.get('name'))} {_text(library.get('version'))}".strip()[:100]


def _dict(raw: dict, key: str) -> dict:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value).strip()


def _identifier(raw: dict, key: str) -> str:
    value = raw.get(key)
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Refused("invalid", _("%(field)s must be a string.") % {"field": key})
    value = str(value).strip()
    if len(value) > 200:
        raise Refused("invalid", _("%(field)s is longer than 200 characters.") % {"field": key})
    return value


def _time(raw: dict, key: str) -> datetime.datetime | None:
    return _parse_time(raw.get(key), key)


def _parse_time(value, key: str) -> datetime.datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.strip()) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise Refused("invalid_timestamp", _("%(field)s is not an ISO 8601 time: “%(value)s”.")
                      % {"field": key, "value": str(value)[:40]}) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)
