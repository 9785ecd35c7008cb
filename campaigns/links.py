"""Short signed tokens for the links in messages: `/r/<token>` (a click, then the
campaign's link) and `/u/<token>` (unsubscribe). A token names the delivery and nothing
personal; it is short enough for an SMS (a dozen characters) and cannot be forged
without SECRET_KEY (a 60-bit HMAC: guessing one is far more work than it is worth).
"""
import functools
import hashlib
import hmac
import string

from django.conf import settings
from django.urls import reverse

ALPHABET = string.digits + string.ascii_letters
MAC_LENGTH = 10


def _b62(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 62)
        digits = ALPHABET[rest] + digits
        if not number:
            return digits


def _mac(kind: str, body: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"campaigns.{kind}:{body}".encode(), hashlib.sha256).digest()
    return _b62(int.from_bytes(digest[:8], "big"))[-MAC_LENGTH:].rjust(MAC_LENGTH, "0")


def token_make(kind: str, delivery_id: int) -> str:
    body = _b62(delivery_id)
    return body + _mac(kind, body)


def token_read(kind: str, token: str) -> int | None:
    """The delivery id of a genuine token of this kind, or None."""
    if not isinstance(token, str) or len(token) <= MAC_LENGTH or len(token) > 40 or \
            any(c not in ALPHABET for c in token):
        return None
    body, mac = token[:-MAC_LENGTH], token[-MAC_LENGTH:]
    if not hmac.compare_digest(mac, _mac(kind, body)):
        return None
    number = 0
    for c in body:
        number = number * 62 + ALPHABET.index(c)
    return number


def public_url(path: str) -> str:
    return settings.CDP_PUBLIC_URL.rstrip("/") + path


def url_maker(kind: str):
    """A function delivery id → the public URL of its link of this kind ("r": the click
    redirect, "u": unsubscribe), with the URL pattern resolved once."""
    prefix = _prefix(kind, settings.CDP_PUBLIC_URL)
    return lambda delivery_id: prefix + token_make(kind, delivery_id)


@functools.lru_cache(maxsize=8)
def _prefix(kind: str, public: str) -> str:
    name = {"r": "campaigns:click", "u": "campaigns:unsubscribe"}[kind]
    return public.rstrip("/") + reverse(name, args=["TOKEN"]).removesuffix("TOKEN")


def click_url(delivery_id: int) -> str:
    return url_maker("r")(delivery_id)


def unsubscribe_url(delivery_id: int) -> str:
    return url_maker("u")(delivery_id)
