"""Partner webhook: JSON batches POSTed to the partner's URL, signed.

Signature: `X-CDP-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with
the destination's secret>`. Receivers should refuse a timestamp more than
SIGNATURE_TOLERANCE seconds from their clock, and de-duplicate messages by `key` (a
retried batch repeats its messages' keys). The response may carry receipts
(`{"receipts": [{"key": …, "status": "delivered"}]}`), and later ones are POSTed to our
receipt URL signed the same way.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import requests
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from . import (
    FAILED,
    SENT,
    Adapter,
    DestinationError,
    OutgoingMessage,
    ReceiptInput,
    ReceiptRefused,
    SendResult,
)

SIGNATURE_HEADER = "X-CDP-Signature"
SIGNATURE_TOLERANCE = 300  # seconds
TIMEOUT = (3.05, 10)  # connect, read
_sessions = threading.local()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, now: float | None = None) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > SIGNATURE_TOLERANCE:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def session() -> requests.Session:
    """One keep-alive session per worker thread."""
    if not hasattr(_sessions, "session"):
        _sessions.session = requests.Session()
    return _sessions.session


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def post(url: str, body: bytes, headers: dict) -> requests.Response:
    """POST, turning what went wrong into a DestinationError that says whether to retry."""
    try:
        response = session().post(url, data=body, headers=headers, timeout=TIMEOUT)
    except requests.Timeout:
        raise DestinationError(_("The destination did not answer in time."), retryable=True) from None
    except requests.RequestException as error:
        raise DestinationError(_("The destination cannot be reached: %(error)s") % {"error": type(error).__name__},
                               retryable=True) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise DestinationError(_("The destination answered %(status)s.") % {"status": response.status_code},
                               retryable=True, retry_after=retry_after(response))
    if response.status_code >= 400:
        raise DestinationError(_("The destination refused the request (%(status)s): %(text)s")
                               % {"status": response.status_code, "text": response.text[:200]}, retryable=False)
    return response


class WebhookAdapter(Adapter):
    def _post(self, payload: dict) -> requests.Response:
        url = self.config.get("url", "")
        if not url:
            raise DestinationError(_("The webhook has no URL."), retryable=False)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.destination.secret, body)}
        return post(url, body, headers)

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        payload = {"messages": [{
            "key": m.key, "customer": m.customer, "address": m.address, "campaign": m.campaign,
            "variant": m.variant, "subject": m.subject, "text": m.text, "tokens": m.tokens, "link": m.link,
        } for m in messages]}
        try:
            response = self._post(payload)
        except DestinationError as error:
            return self.all_failed(messages, error)
        rejected = {}
        try:
            answer = response.json() if response.content else {}
            rejected = {item["key"]: str(item.get("error", ""))[:500] for item in answer.get("rejected", [])}
            self.answered_receipts = _receipts(answer)
        except (ValueError, AttributeError, KeyError, TypeError):
            pass
        return [SendResult(m.delivery_id, FAILED, error=rejected[m.key]) if m.key in rejected
                else SendResult(m.delivery_id, SENT) for m in messages]

    def parse_receipts(self, request: HttpRequest) -> list[ReceiptInput]:
        if not verify(self.destination.secret, request.body, request.headers.get(SIGNATURE_HEADER, "")):
            raise ReceiptRefused(_("The signature is missing, wrong or too old."))
        try:
            return _receipts(json.loads(request.body))
        except (ValueError, TypeError, AttributeError) as error:
            raise ReceiptRefused(_("The body is not receipts JSON: %(error)s") % {"error": error}) from None

    def test_connection(self) -> str:
        response = self._post({"test": True, "messages": []})
        return _("The webhook answered %(status)s.") % {"status": response.status_code}


def _receipts(data: dict) -> list[ReceiptInput]:
    items = data.get("receipts", [])
    if not isinstance(items, list):
        raise TypeError("receipts must be a list")
    return [ReceiptInput(key=str(item.get("key", "")), kind=str(item.get("status", "")),
                         occurred_at=parse_datetime(str(item.get("occurred_at") or "")) if item.get("occurred_at")
                         else None, detail=str(item.get("detail", ""))[:300])
            for item in items if isinstance(item, dict)]
