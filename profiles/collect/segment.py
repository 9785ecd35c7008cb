"""Segment-compatible HTTP tracking API under /collect/v1/: identify, track, page, screen,
group, alias, batch (and import), plus the one-letter paths analytics.js posts to when
configured with an apiHost (/i /t /p /s /g /a, and /b for its batching mode).

Authentication is the source's write key, as the SDKs send it: HTTP Basic with the key
as the user name (analytics-python, analytics-node, analytics.js), or `writeKey` in the
JSON body (analytics.js, with Content-Type text/plain). Bodies may be gzipped.

Answers as the SDKs expect them, since they retry on 5xx and 429 only: 200
{"success": true} once the request is taken, even when some of its messages were
rejected (each rejected one is in the source's debugger with the reason); 400 for a body
that is not a JSON object; 401 for an unknown or inactive key; 403 for a browser page
whose origin the source does not allow; 413 for a body over 500 KB (decompressed), a
single call over 32 KB or more than MAX_BATCH_MESSAGES messages. A refused request
stores nothing: one request is one transaction (profiles.services.collect)."""
from __future__ import annotations

import base64
import binascii
import json
import math
import zlib

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import re_path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from cdp.api.parsers import check_storable

from ..models import CollectSource
from ..services.collect import Message, collect_ingest
from ..services.sources import source_for_key
from .segment_messages import MAX_MESSAGE_BYTES, PROTOCOL, message_build, storable

MAX_BATCH_BYTES = 500 * 1024  # Segment: 500 KB per batch request (decompressed)
MAX_BATCH_MESSAGES = 2_500  # an SDK sends 10 to 100; more is refused whole, not stored in part
ENDPOINTS = {  # path -> message type (None: a batch)
    "identify": "identify", "track": "track", "page": "page", "screen": "screen", "group": "group",
    "alias": "alias", "batch": None, "import": None,
    "i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias", "b": None,
}
ALLOWED_HEADERS = "Content-Type, Authorization, Content-Encoding, X-Retry-Count"
ORIGINS_CACHE_KEY, ORIGINS_CACHE_SECONDS = "cdp-collect-origins", 5


class Failure(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@csrf_exempt
def tracking_api(request: HttpRequest, endpoint: str):
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS":
        return _preflight(origin)
    if request.method != "POST":
        response = _error(405, "method_not_allowed", _("Send the messages with POST."))
        response["Allow"] = "POST, OPTIONS"
        return response
    received_at = timezone.now()
    source = None
    try:
        header_key = _basic_user(request)
        if header_key is not None:
            source = _source(header_key)
        body = _body(request)
        if source is None:
            source = _source(body.get("writeKey"))
        if origin and not origin_allowed(source, origin):
            _ingest_refused(source, body, endpoint, received_at, "origin_not_allowed",
                            _("The page's origin %(origin)s is not among the source's allowed origins.")
                            % {"origin": origin[:100]})
            raise Failure(403, "origin_not_allowed", _("This origin may not send with this write key."))
        result = _ingest(source, body, endpoint, received_at)
    except Failure as failure:
        response = _error(failure.status, failure.code, failure.message)
    else:
        response = JsonResponse({"success": True, "accepted": result.accepted, "duplicates": result.duplicates,
                                 "dropped": result.dropped, "rejected": result.rejected})
    if origin and source is not None and origin_allowed(source, origin):
        response["Access-Control-Allow-Origin"] = origin
    if origin:
        response["Vary"] = "Origin"
    return response


def _ingest(source: CollectSource, body: dict, endpoint: str, received_at):
    type_ = ENDPOINTS[endpoint]
    if type_ is None:
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise Failure(400, "invalid_batch", _("A batch request needs “batch”: a list of messages."))
        if len(batch) > MAX_BATCH_MESSAGES:
            _ingest_refused(source, body, endpoint, received_at, "too_many_messages", _too_many(len(batch)))
            raise Failure(413, "too_many_messages", _too_many(len(batch)))
        try:  # what the batch's messages share; each message is checked on its own
            check_storable({k: v for k, v in body.items() if k != "batch"})
        except ValueError as error:
            raise Failure(400, "invalid_json", getattr(error, "message", str(error))) from None
        context = body.get("context") if isinstance(body.get("context"), dict) else {}
        messages = [message_build(raw, type_=None, received_at=received_at, batch_sent_at=body.get("sentAt"),
                                  batch_context=context) for raw in batch]
    else:
        messages = [message_build(body, type_=type_, received_at=received_at)]
        if messages[0].error and messages[0].error[0] == "too_large":
            collect_ingest(source=source, messages=messages, now=received_at)
            raise Failure(413, "too_large", messages[0].error[1])
    return collect_ingest(source=source, messages=messages, now=received_at)


def _too_many(count: int) -> str:
    return _("The batch holds %(count)s messages; at most %(limit)s are accepted in one request. Nothing was stored.") \
        % {"count": count, "limit": MAX_BATCH_MESSAGES}


def _ingest_refused(source, body, endpoint, received_at, code: str, message: str) -> None:
    """A request refused whole: one row in the source's debugger says why; nothing is stored."""
    if source is None:
        return
    raw = {k: v for k, v in body.items() if k not in ("batch", "writeKey")}
    if isinstance(body.get("batch"), list):
        raw["batch"] = f"{len(body['batch'])} messages"
    event = body.get("event") if isinstance(body.get("event"), str) else ""
    refused = Message(protocol=PROTOCOL, type=(ENDPOINTS.get(endpoint) or "batch"), message_id="", occurred_at=None,
                      event=storable(event[:200]), raw=storable(raw), error=(code, message))
    collect_ingest(source=source, messages=[refused], now=received_at)


def _basic_user(request: HttpRequest) -> str | None:
    """The write key from `Authorization: Basic base64(key:)`, or None without that header."""
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(token.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _source(key) -> CollectSource:
    source = source_for_key(key) if isinstance(key, str) and key else None
    if source is None:
        if not key:
            raise Failure(401, "missing_write_key", _("Send the source's write key (HTTP Basic user name or writeKey)."))
        raise Failure(401, "invalid_write_key", _("Unknown or inactive write key."))
    return source


def _body(request: HttpRequest) -> dict:
    """The JSON object sent, gunzipped, within MAX_BATCH_BYTES."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Failure(400, "invalid_content_length", _("The Content-Length header is not a number.")) from None
    limit = MAX_BATCH_BYTES
    too_large = Failure(413, "body_too_large", _("The request body is larger than %(limit)s bytes (500 KB); "
                                                 "nothing was stored.") % {"limit": limit})
    if declared > limit:
        raise too_large
    data = request.read(limit + 1)
    if len(data) > limit:
        raise too_large
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding == "gzip":
        data = _gunzip(data, limit, too_large)
    elif encoding not in ("", "identity"):
        raise Failure(400, "unsupported_encoding", _("Content-Encoding “%(encoding)s” is not supported; send gzip "
                                                     "or plain JSON.") % {"encoding": encoding[:20]})
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Failure(400, "invalid_json", _("The body is not valid JSON: %(error)s") % {"error": str(error)[:200]}) \
            from None
    if not isinstance(body, dict):
        raise Failure(400, "invalid_json", _("The body must be a JSON object."))
    return body


def _gunzip(data: bytes, limit: int, too_large: Failure) -> bytes:
    """Decompress at most `limit` bytes: a gzip bomb stops there (413)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise too_large
        if not inflater.eof:
            raise Failure(400, "invalid_gzip", _("The gzip body is truncated."))
    except zlib.error:
        raise Failure(400, "invalid_gzip", _("The body is not valid gzip.")) from None
    return out


def _refuse_constant(name: str):
    raise ValueError(_("%(value)s is not a number JSON allows.") % {"value": name})


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: no database stores infinity
        _refuse_constant(text[:40])
    return value


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"success": False, "code": code, "message": message}, status=status,
                        json_dumps_params={"ensure_ascii": False})


# --- browsers ---------------------------------------------------------------------------

def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


def origin_allowed(source: CollectSource, origin: str) -> bool:
    return _origin(origin) in {_origin(o) for o in source.allowed_origins or [] if isinstance(o, str)}


def _preflight(origin: str):
    """The browser asks before posting (analytics.js sends an Authorization header). The key
    is not known yet: any origin some active source allows gets the CORS answer, and the
    POST itself is checked against its own source's origins."""
    allowed = cache.get(ORIGINS_CACHE_KEY)
    if allowed is None:
        allowed = {_origin(o) for origins in CollectSource.objects.filter(is_active=True)
                   .values_list("allowed_origins", flat=True) for o in origins or [] if isinstance(o, str)}
        cache.set(ORIGINS_CACHE_KEY, allowed, ORIGINS_CACHE_SECONDS)
    if not origin or _origin(origin) not in allowed:
        return _error(403, "origin_not_allowed", _("This origin may not send to the collection endpoints."))
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = "86400"
    response["Vary"] = "Origin"
    return response


urlpatterns = [
    re_path(rf"^v1/(?P<endpoint>{'|'.join(ENDPOINTS)})/?$", tracking_api, name="segment"),
]
__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_MESSAGES", "MAX_MESSAGE_BYTES", "urlpatterns"]
