"""Alibaba Cloud SMS (阿里云短信服务, Dysmsapi) through its official SDK, SendBatchSms.

Config: access_key_id; endpoint (default dysmsapi.aliyuncs.com; "http://host:port"
for a local server), params (optional: the token names the templates use, default
all tokens but the unsubscribe link), receipt_token (see receipts below). The access
key secret is the destination's secret.

One SendBatchSms call per variant (all numbers of a call share its approved template
code) and up to 100 numbers: PhoneNumberJson, SignNameJson (the variant's 签名),
TemplateParamJson (the message's tokens), OutId "<first delivery id>-<last delivery
id>" of the call; the BizId it answers is each message's vendor id. Mainland numbers
go as their 11 digits, others as country code and number, as Dysmsapi wants them.

Outcomes: "OK" sent; throttling and Alibaba's own errors (isv.BUSINESS_LIMIT_CONTROL,
isv.DAY_LIMIT_CONTROL, isv.AMOUNT_NOT_ENOUGH, Throttling.*, isp.*, HTTP 5xx/429,
timeouts) retried; anything else (isv.MOBILE_NUMBER_ILLEGAL, a template or signature
refused, a wrong key) failed for good. A call refused for one illegal number is sent
again one number at a time, so the other 99 still go. Alibaba does not de-duplicate, so
the adapter is not idempotent.

Receipts (短信发送状态报告, "SmsReport" pushed by HTTP): Alibaba does not sign its
pushes, so the callback URL carries a shared token: configure
`<CDP_PUBLIC_URL>/campaigns/receipts/<destination id>/?token=<receipt_token>` in the
console and put the same long random receipt_token in the destination's config. A
push without it, or with another, is refused (compared in constant time). Each report
({phone_number, success, err_code, err_msg, biz_id, out_id, report_time}) is found
again by its call (out_id, biz_id) and number.
"""
from __future__ import annotations

import datetime
import hmac
import json
import re
import zoneinfo
from collections import defaultdict

import phonenumbers
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as openapi_models
from darabonba.runtime import RuntimeOptions
from django.http import HttpRequest
from django.utils.translation import gettext as _

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
from .settings_values import config_number

DEFAULT_ENDPOINT = "dysmsapi.aliyuncs.com"
NUMBERS_PER_CALL = 100
RETRY_CODES = {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH",
               "isv.OUT_OF_SERVICE", "ServiceUnavailable", "InternalError"}
ILLEGAL_NUMBER = "isv.MOBILE_NUMBER_ILLEGAL"
OUT_ID = re.compile(r"(\d{1,18})-(\d{1,18})")
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def vendor_number(address: str) -> str | None:
    """The number as Dysmsapi takes it: 11 digits in mainland China, else country code
    and number without "+"; None for what is not a possible mobile number."""
    try:
        number = phonenumbers.parse(address, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in (
            phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None
    national = phonenumbers.national_significant_number(number)
    return national if number.country_code == 86 else f"{number.country_code}{national}"


def retryable(code: str, status: int | None = None) -> bool:
    if status is not None and (status >= 500 or status == 429):
        return True
    return code in RETRY_CODES or code.startswith(("Throttling", "isp."))


class AliyunSmsAdapter(Adapter):
    idempotent = False  # Dysmsapi sends a repeated call again

    def _client(self) -> Client:
        key_id = self.config.get("access_key_id", "")
        if not key_id or not self.destination.secret:
            raise DestinationError(_("The Alibaba Cloud SMS destination needs an AccessKey ID and secret."),
                                   retryable=False)
        endpoint, protocol = self.config.get("endpoint") or DEFAULT_ENDPOINT, "https"
        if "://" in endpoint:
            protocol, endpoint = endpoint.split("://", 1)
        return Client(openapi_models.Config(
            access_key_id=key_id, access_key_secret=self.destination.secret, endpoint=endpoint.rstrip("/"),
            protocol=protocol, connect_timeout=3050, read_timeout=int(config_number(self.config, "timeout", 10) * 1000)))

    def _call(self, call):
        """Run an SDK call, turning what went wrong into a DestinationError."""
        try:
            return call()
        except Exception as error:  # the SDK raises Tea/Darabonba exceptions of several trees
            data = getattr(error, "data", None)
            status = data.get("statusCode") if isinstance(data, dict) else None
            status = status or getattr(error, "status_code", None)
            code = getattr(error, "code", None)
            if code and status:
                raise DestinationError(_("Alibaba Cloud SMS refused the request: %(code)s %(message)s")
                                       % {"code": code, "message": str(getattr(error, "message", ""))[:200]},
                                       retryable=retryable(str(code), int(status))) from None
            raise DestinationError(_("Alibaba Cloud SMS cannot be reached: %(error)s")
                                   % {"error": type(error).__name__}, retryable=True) from None

    def _params(self, message: OutgoingMessage) -> dict:
        names = self.config.get("params")
        if names:
            return {name: message.tokens.get(name, "") for name in names}
        return {name: value for name, value in message.tokens.items() if name != "unsubscribe"}

    def send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results: dict[int, SendResult] = {}
        groups: dict[str, list[tuple[OutgoingMessage, str]]] = defaultdict(list)
        for message in messages:
            number = vendor_number(message.address)
            if not message.sms_template_code or not message.sms_sign_name:
                results[message.delivery_id] = SendResult(message.delivery_id, FAILED, error=_(
                    "The variant has no SMS template code or signature."))
            elif number is None:
                results[message.delivery_id] = SendResult(message.delivery_id, FAILED,
                                                          error=_("Not a valid mobile number."))
            else:
                groups[message.sms_template_code].append((message, number))
        try:
            client = self._client()
        except DestinationError as error:
            return self.all_failed(messages, error)
        for template_code, group in groups.items():
            for start in range(0, len(group), NUMBERS_PER_CALL):
                for result in self._send_call(client, template_code, group[start:start + NUMBERS_PER_CALL]):
                    results[result.delivery_id] = result
        return [results[m.delivery_id] for m in messages]

    def _send_call(self, client: Client, template_code: str, group) -> list[SendResult]:
        ids = [m.delivery_id for m, _n in group]
        request = sms_models.SendBatchSmsRequest(
            phone_number_json=json.dumps([number for _m, number in group]),
            sign_name_json=json.dumps([m.sms_sign_name for m, _n in group], ensure_ascii=False),
            template_code=template_code,
            template_param_json=json.dumps([self._params(m) for m, _n in group], ensure_ascii=False),
            out_id=f"{min(ids)}-{max(ids)}")
        try:
            body = self._call(lambda: client.send_batch_sms_with_options(request, RuntimeOptions())).body
        except DestinationError as error:
            return self.all_failed([m for m, _n in group], error)
        if body.code == "OK":
            return [SendResult(m.delivery_id, SENT, vendor_id=body.biz_id or "") for m, _n in group]
        if body.code == ILLEGAL_NUMBER and len(group) > 1:
            # one bad number refuses the whole call: find it by sending one at a time
            return [result for item in group for result in self._send_call(client, template_code, [item])]
        error = DestinationError(_("Alibaba Cloud SMS refused the request: %(code)s %(message)s")
                                 % {"code": body.code, "message": (body.message or "")[:200]},
                                 retryable=retryable(body.code or ""))
        return self.all_failed([m for m, _n in group], error)

    def test_connection(self) -> str:
        client = self._client()
        request = sms_models.QuerySmsSignListRequest(page_index=1, page_size=10)
        body = self._call(lambda: client.query_sms_sign_list_with_options(request, RuntimeOptions())).body
        if body.code != "OK":
            raise DestinationError(_("Alibaba Cloud SMS refused the request: %(code)s %(message)s")
                                   % {"code": body.code, "message": (body.message or "")[:200]},
                                   retryable=retryable(body.code or ""))
        return _("Alibaba Cloud SMS accepted the key; the account has %(count)s signatures.") % {
            "count": body.total_count or 0}

    def parse_receipts(self, request: HttpRequest) -> list[ReceiptInput]:
        expected = str(self.config.get("receipt_token") or "")
        given = request.GET.get("token", "")
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            raise ReceiptRefused(_("The receipt token in the URL is missing or wrong."))
        try:
            reports = json.loads(request.body)
            if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
                raise ValueError("a JSON list of reports")
        except ValueError as error:
            raise ReceiptRefused(_("The body is not Alibaba Cloud SMS reports: %(error)s") % {"error": error}) from None
        calls = defaultdict(list)
        for report in reports:
            # the account may also send for other systems (log-in codes, say): their
            # reports carry no OutId of ours and are skipped, not refused with ours
            match = OUT_ID.fullmatch(str(report.get("out_id") or ""))
            if match and report.get("biz_id"):
                calls[(int(match[1]), int(match[2]), str(report["biz_id"]))].append(report)
        receipts = []
        for (first, last, biz_id), items in calls.items():
            by_number = defaultdict(list)
            for pk, address in Delivery.objects.filter(destination=self.destination, pk__gte=first, pk__lte=last,
                                                       vendor_id=biz_id).values_list("pk", "address"):
                by_number[vendor_number(address)].append(pk)
            for report in items:
                success = report.get("success") in (True, "true", "True", 1)
                detail = "" if success else f"{report.get('err_code', '')} {report.get('err_msg', '')}".strip()
                for pk in by_number.get(str(report.get("phone_number", "")), []):
                    receipts.append(ReceiptInput(delivery_key(pk), Receipt.Kind.DELIVERED if success
                                                 else Receipt.Kind.FAILED, _report_time(report), detail[:300]))
        return receipts


def _report_time(report: dict) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(report.get("report_time")), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        return None
