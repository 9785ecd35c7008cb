"""WeChat official account (微信公众号) template messages through wechatpy.

Config: appid; api_base (default https://api.weixin.qq.com/cgi-bin/, a local server in
tests); fields (optional: template keyword → token name or "text", e.g.
{"thing1": "name", "thing2": "coupon"}; by default every token is a keyword of its own
name and the rendered message is "text"); server_token (the token of the account's
server configuration, for receipts). The AppSecret is the destination's secret.

The access token comes from /cgi-bin/stable_token (the AppSecret travels in the POST
body, never in a URL that proxies or debug logs could keep; and unlike /cgi-bin/token,
fetching one does not invalidate the token other processes hold) and is shared by all
workers through Django's cache until a few minutes before WeChat's `expires_in`. An
answer 40001/42001/40014 (token invalid or expired) fetches a fresh one (forced, if
WeChat hands back the same) and sends the message once more.

WeChat has no batch call: one message/template/send per message, linking to our
click redirect. 45009 (the day's quota) and -1 (busy), 5xx and timeouts are retried
(the rest of the batch with them); 43004 (not following), 40003 (bad OpenID), a
refused template or data, and a wrong AppID/AppSecret fail. WeChat cannot
de-duplicate: not idempotent.

Receipts: the TEMPLATESENDJOBFINISH event WeChat pushes to the account's server URL
(plaintext mode), signed with the server token (signature=sha1 of the sorted token,
timestamp and nonce). Forward those events to /campaigns/receipts/<destination id>/
with their query string; the message is found again by its msgid and OpenID.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac

import requests
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext as _
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.parser import parse_message
from wechatpy.session import SessionStorage

from profiles.models import Identity

from ..models import Delivery, Receipt
from . import (
    FAILED,
    SENT,
    Adapter,
    DestinationError,
    OutgoingMessage,
    ReceiptInput,
    ReceiptRefused,
    SendResult,
    delivery_key,
)

DEFAULT_API_BASE = "https://api.weixin.qq.com/cgi-bin/"
TOKEN_MARGIN = 300  # seconds before WeChat's expiry when the cached token is dropped
TIMEOUT = (3.05, 10)
TOKEN_ERRORS = {40001, 40014, 42001}
# busy, the day's quota, too frequent; a token refused even after a refresh
RETRY_ERRORS = {-1, 45009, 45011, *TOKEN_ERRORS}
# invalid AppID, invalid AppSecret, our IP not on the account's whitelist, AppID or AppSecret missing
CREDENTIAL_ERRORS = {40013, 40125, 40164, 41002, 41004}
SIGNATURE_TOLERANCE = 300


class CacheStorage(SessionStorage):
    """wechatpy's session storage over Django's cache, shared by all workers."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def get(self, key, default=None):
        return cache.get(self.prefix + key, default)

    def set(self, key, value, ttl=None):
        cache.set(self.prefix + key, value, timeout=max(1, int(ttl) - TOKEN_MARGIN) if ttl else None)

    def delete(self, key):
        cache.delete(self.prefix + key)


class Client(WeChatClient):
    """wechatpy's client, its access token from stable_token at a configurable base."""

    def __init__(self, appid, secret, *, api_base: str, session: SessionStorage):
        super().__init__(appid, secret, session=session, timeout=TIMEOUT, auto_retry=False)
        self.API_BASE_URL = api_base

    def fetch_access_token(self, force_refresh: bool = False):
        response = self._http.post(self.API_BASE_URL + "stable_token", timeout=TIMEOUT, json={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
            "force_refresh": force_refresh})
        return self._handle_token(response)

    def _handle_token(self, response):
        if response.status_code >= 400:
            raise WeChatClientException(None, None, client=self, response=response)
        result = response.json()
        if result.get("errcode"):
            raise WeChatClientException(int(result["errcode"]), result.get("errmsg", ""), client=self,
                                        response=response)
        self.session.set(self.access_token_key, result["access_token"], int(result.get("expires_in", 7200)))
        self.expires_at = int(datetime.datetime.now().timestamp()) + int(result.get("expires_in", 7200))
        return result


class WechatAdapter(Adapter):
    idempotent = False  # WeChat sends a repeated template message again

    def _client(self) -> Client:
        appid = self.config.get("appid", "")
        if not appid or not self.destination.secret:
            raise DestinationError(_("The WeChat destination needs an AppID and AppSecret."), retryable=False)
        api_base = self.config.get("api_base") or DEFAULT_API_BASE
        return Client(appid, self.destination.secret, api_base=api_base.rstrip("/") + "/",
                      session=CacheStorage(f"campaigns:wechat:{self.destination.pk}:"))

    def _data(self, message: OutgoingMessage) -> dict:
        values = {**{k: v for k, v in message.tokens.items() if k not in ("unsubscribe", "link")}, "text": message.text}
        fields = self.config.get("fields") or {name: name for name in values}
        return {keyword: {"value": values.get(token, "")} for keyword, token in fields.items()}

    def _refresh(self, client: Client, stale: str) -> None:
        """A token for `stale`, the one WeChat refused: another worker's newer one from
        the cache, else a fresh fetch, forced only when WeChat hands back the same."""
        if client.session.get(client.access_token_key) not in (None, stale):
            return
        client.session.delete(client.access_token_key)
        client.fetch_access_token()
        if client.session.get(client.access_token_key) == stale:
            client.fetch_access_token(force_refresh=True)

    def _send(self, client: Client, message: OutgoingMessage) -> dict:
        def send():
            return client.message.send_template(message.address, message.wechat_template_id, self._data(message),
                                                url=message.link or None)
        used = client.access_token
        try:
            return send()
        except WeChatClientException as error:
            if error.errcode not in TOKEN_ERRORS:
                raise
            self._refresh(client, used)
            return send()  # refused again: retried later, with the rest of the batch

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        try:
            client = self._client()
        except DestinationError as error:
            return self.all_failed(messages, error)
        results = []
        for index, message in enumerate(messages):
            if not message.wechat_template_id:
                results.append(SendResult(message.delivery_id, FAILED,
                                          error=_("The variant has no WeChat template id.")))
                continue
            try:
                answer = self._send(client, message)
            except (WeChatClientException, requests.RequestException, ValueError) as raw:
                error = _error(raw)
                # quota, busy or unreachable: the rest of the batch waits too; a wrong
                # AppID or AppSecret: nothing of it will go
                if error.retryable or getattr(raw, "errcode", None) in CREDENTIAL_ERRORS:
                    return results + self.all_failed(messages[index:], error)
                results.append(SendResult(message.delivery_id, FAILED, error=str(error)[:500]))
            else:
                results.append(SendResult(message.delivery_id, SENT, vendor_id=str(answer.get("msgid", ""))))
        return results

    def test_connection(self) -> str:
        client = self._client()
        try:
            client.fetch_access_token()
        except (WeChatClientException, requests.RequestException, ValueError) as error:
            raise _error(error) from None
        return _("WeChat issued an access token to the official account %(appid)s.") % {"appid": client.appid}

    def _check_signature(self, request: HttpRequest) -> None:
        token = str(self.config.get("server_token") or "")
        timestamp, nonce = request.GET.get("timestamp", ""), request.GET.get("nonce", "")
        expected = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
        if not token or not timestamp.isdigit() or not hmac.compare_digest(expected, request.GET.get("signature", "")) \
                or abs(datetime.datetime.now().timestamp() - int(timestamp)) > SIGNATURE_TOLERANCE:
            raise ReceiptRefused(_("The signature is missing, wrong or too old."))

    def verify_url(self, request: HttpRequest) -> str:
        """WeChat checks the server URL once, when it is saved in the official account's
        console: a signed GET whose `echostr` must come back as the body."""
        self._check_signature(request)
        return request.GET.get("echostr", "")

    def parse_receipts(self, request: HttpRequest) -> list[ReceiptInput]:
        self._check_signature(request)
        try:
            event = parse_message(request.body)
        except Exception as error:  # xmltodict/expat errors of several kinds
            raise ReceiptRefused(_("The body is not a WeChat event: %(error)s") % {"error": type(error).__name__}) \
                from None
        if getattr(event, "event", "") != "templatesendjobfinish":
            return []
        status = str(event._data.get("Status", ""))
        deliveries = Delivery.objects.filter(
            destination=self.destination, channel="wechat", vendor_id=str(event.id),
            profile_id__in=Identity.objects.filter(kind_id="wechat_openid", value=event.source).values("profile_id"))
        kind = Receipt.Kind.DELIVERED if status == "success" else Receipt.Kind.FAILED
        return [ReceiptInput(delivery_key(pk), kind, event.create_time, "" if status == "success" else status[:300])
                for pk in deliveries.values_list("pk", flat=True)]


def _error(error: Exception) -> DestinationError:
    """What went wrong, translated, retryable or not; never the request's URL or body."""
    if isinstance(error, WeChatClientException) and error.errcode is not None:
        return DestinationError(_("WeChat refused the message: %(code)s %(message)s")
                                % {"code": error.errcode, "message": str(error.errmsg or "")[:200]},
                                retryable=error.errcode in RETRY_ERRORS)
    if isinstance(error, WeChatClientException) and error.response is not None:
        status = error.response.status_code
        return DestinationError(_("WeChat answered %(status)s.") % {"status": status},
                                retryable=status >= 500 or status == 429)
    return DestinationError(_("WeChat cannot be reached: %(error)s") % {"error": type(error).__name__},
                            retryable=True)

