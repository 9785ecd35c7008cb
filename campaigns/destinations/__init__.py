"""Destinations: one small adapter per channel or vendor behind one interface.

An adapter sends a batch of rendered messages and says, per message, whether it was
accepted, should be retried (timeouts, 5xx, 429) or failed for good (other 4xx); it
parses the receipts its vendor posts back, and tests its connection. Adapters never log
their secret or the messages' addresses.
"""
from __future__ import annotations

import datetime
import importlib
from dataclasses import dataclass, field

from django.http import HttpRequest
from django.utils.translation import gettext as _

SENT, RETRY, FAILED = "sent", "retry", "failed"


@dataclass(frozen=True)
class OutgoingMessage:
    delivery_id: int
    key: str  # idempotency key, the same on every attempt
    address: str
    customer: str  # public id
    campaign: str
    variant: str
    subject: str
    text: str
    tokens: dict[str, str] = field(default_factory=dict)
    sms_template_code: str = ""
    sms_sign_name: str = ""
    wechat_template_id: str = ""
    link: str = ""
    unsubscribe_url: str = ""


@dataclass(frozen=True)
class SendResult:
    delivery_id: int
    outcome: str  # SENT, RETRY or FAILED
    vendor_id: str = ""
    error: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class ReceiptInput:
    key: str  # the message's idempotency key ("cdp-<delivery id>")
    kind: str  # a campaigns.models.Receipt.Kind value
    occurred_at: datetime.datetime | None = None
    detail: str = ""


class DestinationError(Exception):
    """The destination refused or could not be reached; `retryable` says whether a later
    attempt may succeed, `retry_after` (seconds) when the vendor said."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable, self.retry_after = retryable, retry_after


class ReceiptRefused(Exception):
    """A receipt request that is not signed by the destination or cannot be read."""


class Adapter:
    # True when the vendor de-duplicates by the message key, so that a batch whose
    # worker died may be sent again without anyone receiving it twice.
    idempotent = True

    def __init__(self, destination):
        self.destination = destination
        self.config = destination.config or {}
        # receipts that came back in a send's response (a webhook may answer with them)
        self.answered_receipts: list[ReceiptInput] = []

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        raise NotImplementedError

    def parse_receipts(self, request: HttpRequest) -> list[ReceiptInput]:
        raise ReceiptRefused(_("This destination sends no receipts."))

    def test_connection(self) -> str:
        """A short, translated description of what answered; raises DestinationError."""
        raise NotImplementedError

    def all_failed(self, messages: list[OutgoingMessage], error: DestinationError) -> list[SendResult]:
        outcome = RETRY if error.retryable else FAILED
        return [SendResult(m.delivery_id, outcome, error=str(error)[:500], retry_after=error.retry_after)
                for m in messages]


ADAPTERS = {
    "webhook": "campaigns.destinations.webhook.WebhookAdapter",
    "email": "campaigns.destinations.email.EmailAdapter",
    "aliyun_sms": "campaigns.destinations.aliyun_sms.AliyunSmsAdapter",
    "wechat": "campaigns.destinations.wechat.WechatAdapter",
    "audience_file": "campaigns.destinations.audience_file.AudienceFileAdapter",
}


def adapter_class(kind: str) -> type[Adapter]:
    path = ADAPTERS.get(kind)
    if path is None:
        raise DestinationError(_("No adapter for destinations of kind “%(kind)s”.") % {"kind": kind},
                               retryable=False)
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def adapter_for(destination) -> Adapter:
    return adapter_class(destination.kind)(destination)


def delivery_key(delivery_id: int) -> str:
    return f"cdp-{delivery_id}"


def delivery_id_from_key(key: str) -> int | None:
    if isinstance(key, str) and key.startswith("cdp-") and key[4:].isdigit():
        return int(key[4:])
    return None
