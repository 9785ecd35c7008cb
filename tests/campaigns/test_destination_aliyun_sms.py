"""Alibaba Cloud SMS through its official SDK against a local server that answers like
Dysmsapi (and checks the SDK's ACS3-HMAC-SHA256 signature with the access key secret):
SendBatchSms per template, 100 numbers a call, throttling retried, illegal numbers
failed without failing the rest, and the status reports pushed back behind a token."""
import datetime
import hashlib
import hmac
import json
from urllib.parse import quote

import pytest

from campaigns.destinations import FAILED, RETRY, SENT, DestinationError, OutgoingMessage, adapter_for
from campaigns.destinations.aliyun_sms import vendor_number
from campaigns.models import Campaign, Delivery, Destination, Receipt
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain

from .conftest import campaign_for, consenting, segment_of
from .local_http import LocalServer

pytestmark = pytest.mark.django_db
KEY_ID, KEY_SECRET, RECEIPT_TOKEN = "LTAI5tTestKeyId", "ak-secret-for-tests", "rcpt-0123456789abcdef"


def signature_valid(request, secret: str) -> bool:
    """Alibaba Cloud's ACS3-HMAC-SHA256 over the canonical request, as Dysmsapi checks it."""
    _algorithm, rest = request.headers["authorization"].split(" ", 1)
    parts = dict(item.split("=", 1) for item in rest.split(","))
    query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(request.query.items()))
    headers = "".join(f"{name}:{request.headers[name].strip()}\n" for name in parts["SignedHeaders"].split(";"))
    payload = hashlib.sha256(request.body).hexdigest()
    canonical = f"{request.method}\n{request.path}\n{query}\n{headers}\n{parts['SignedHeaders']}\n{payload}"
    to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return payload == request.headers["x-acs-content-sha256"] and hmac.compare_digest(expected, parts["Signature"])


class Dysmsapi:
    """Answers SendBatchSms and QuerySmsSignList; `forced` answers come first; numbers in
    `illegal` make a call fail with isv.MOBILE_NUMBER_ILLEGAL, as Dysmsapi does."""

    def __init__(self):
        self.forced, self.illegal, self.calls = [], set(), 0
        self.http = LocalServer(self.answer)

    def answer(self, request):
        if request.headers.get("authorization", "").split("Credential=")[-1].split(",")[0] != KEY_ID:
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found.",
                         "RequestId": "r0"}
        if not signature_valid(request, KEY_SECRET):
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched.",
                         "RequestId": "r0"}
        if self.forced:
            return self.forced.pop(0)
        if request.headers["x-acs-action"] == "QuerySmsSignList":
            return 200, {"Code": "OK", "TotalCount": 2, "RequestId": "r1", "SmsSignList": []}
        self.calls += 1
        if set(json.loads(request.form["PhoneNumberJson"])) & self.illegal:
            return 200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": "r2"}
        return 200, {"Code": "OK", "Message": "OK", "BizId": f"9{self.calls:05d}^0", "RequestId": "r3"}

    @property
    def sends(self):
        return [r for r in self.http.requests if r.headers.get("x-acs-action") == "SendBatchSms"]


@pytest.fixture
def dysmsapi():
    server = Dysmsapi()
    yield server
    server.http.close()


@pytest.fixture
def destination(dysmsapi):
    return Destination.objects.create(name="阿里云短信", kind="aliyun_sms", secret=KEY_SECRET, rate_per_second=10_000,
                                      config={"access_key_id": KEY_ID, "endpoint": dysmsapi.http.url,
                                              "receipt_token": RECEIPT_TOKEN, "timeout": 2})


def message(n, phone="+8613800138000", template="SMS_100", **tokens):
    return OutgoingMessage(delivery_id=n, key=f"cdp-{n}", address=phone, customer=f"c{n}", campaign="双十一",
                           variant="A", subject="", text="【星河】您好", sms_template_code=template,
                           sms_sign_name="星河", tokens={"name": "李女士", "unsubscribe": "https://x/u/1", **tokens})


def test_a_batch_is_one_signed_call_per_template_with_numbers_signatures_and_parameters(destination, dysmsapi):
    results = adapter_for(destination).send_batch([
        message(1, "+8613800138000", coupon="A1"), message(2, "+85261234567", template="SMS_200"),
        message(3, "+8613900139000", coupon="B2")])

    assert [(r.delivery_id, r.outcome) for r in results] == [(1, SENT), (2, SENT), (3, SENT)]
    first, second = dysmsapi.sends
    assert first.query["TemplateCode"] == "SMS_100" and first.query["OutId"] == "1-3"
    assert json.loads(first.form["PhoneNumberJson"]) == ["13800138000", "13900139000"]
    assert json.loads(first.form["SignNameJson"]) == ["星河", "星河"]
    assert json.loads(first.form["TemplateParamJson"]) == [{"name": "李女士", "coupon": "A1"},
                                                           {"name": "李女士", "coupon": "B2"}]
    assert json.loads(second.form["PhoneNumberJson"]) == ["85261234567"] and second.query["TemplateCode"] == "SMS_200"
    assert results[0].vendor_id == results[2].vendor_id == "900001^0" and results[1].vendor_id == "900002^0"


def test_a_call_carries_at_most_100_numbers(destination, dysmsapi):
    results = adapter_for(destination).send_batch([message(n, f"+86138{n:08d}") for n in range(1, 151)])

    assert {r.outcome for r in results} == {SENT}
    assert [len(json.loads(r.form["PhoneNumberJson"])) for r in dysmsapi.sends] == [100, 50]


@pytest.mark.parametrize("answer", [
    (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控", "RequestId": "r"}),
    (400, {"Code": "Throttling.User", "Message": "Request was denied due to user flow control.", "RequestId": "r"}),
    (503, {"Code": "ServiceUnavailable", "Message": "The request has failed due to a temporary failure.",
           "RequestId": "r"}),
])
def test_throttling_and_vendor_trouble_are_retried(destination, dysmsapi, answer):
    dysmsapi.forced.append(answer)

    results = adapter_for(destination).send_batch([message(1), message(2, "+8613900139000")])

    assert {r.outcome for r in results} == {RETRY} and answer[1]["Code"] in results[0].error


def test_an_unreachable_endpoint_is_retried(destination, dysmsapi):
    dysmsapi.http.close()
    assert adapter_for(destination).send_batch([message(1)])[0].outcome == RETRY


def test_an_illegal_number_fails_alone_and_the_rest_of_its_call_is_sent(destination, dysmsapi):
    dysmsapi.illegal = {"13900139000"}

    results = adapter_for(destination).send_batch([
        message(1), message(2, "+8613900139000"), message(3, "+8613700137000"),
        message(4, "+86123"), message(5, template="")])

    assert [r.outcome for r in results] == [SENT, FAILED, SENT, FAILED, FAILED]
    assert "isv.MOBILE_NUMBER_ILLEGAL" in results[1].error
    # the batch call, then one call per number; the impossible number and the variant
    # without a template never left
    assert [json.loads(r.form["PhoneNumberJson"]) for r in dysmsapi.sends] == [
        ["13800138000", "13900139000", "13700137000"], ["13800138000"], ["13900139000"], ["13700137000"]]


def test_a_wrong_secret_fails_for_good_and_the_connection_test_names_the_refusal(destination, dysmsapi):
    assert "2" in adapter_for(destination).test_connection()
    destination.secret = "not-the-secret"

    assert adapter_for(destination).send_batch([message(1)])[0].outcome == FAILED
    with pytest.raises(DestinationError) as refused:
        adapter_for(destination).test_connection()
    assert "SignatureDoesNotMatch" in str(refused.value) and not refused.value.retryable


@pytest.mark.parametrize("address,number", [("+8613800138000", "13800138000"), ("13800138000", "13800138000"),
                                            ("+85261234567", "85261234567"), ("+862161234567", None),
                                            ("hello", None)])
def test_numbers_are_written_as_dysmsapi_takes_them(address, number):
    assert vendor_number(address) == number


@pytest.fixture
def sent_campaign(destination, dysmsapi, settings):
    settings.CAMPAIGN_QUIET_HOURS = {}
    people = consenting("sms_marketing", n=3)
    campaign = campaign_for(segment_of(people), destination, body="{{ name }}，您好")
    campaign.variants.update(sms_template_code="SMS_100")
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    run_decide(campaign=campaign)
    assert destination_drain(destination_id=destination.pk, budget_seconds=10).sent == 3
    return people


def reports(people, out_id, biz_id, overrides=None):
    return [{"phone_number": vendor_number(p.phone), "send_time": "2026-12-05 10:00:00",
             "report_time": "2026-12-05 10:00:08", "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功",
             "sms_size": "1", "biz_id": biz_id, "out_id": out_id, **(overrides or {}).get(p.pk, {})} for p in people]


def test_status_reports_mark_deliveries_delivered_or_failed_once(destination, sent_campaign, client):
    people = sent_campaign
    sent = list(Delivery.objects.order_by("pk"))
    out_id, biz_id = f"{sent[0].pk}-{sent[-1].pk}", sent[0].vendor_id
    body = json.dumps(reports(people, out_id, biz_id, {
        people[1].pk: {"success": False, "err_code": "MK:0001", "err_msg": "用户关机"}}))
    url = f"/campaigns/receipts/{destination.pk}/?token={RECEIPT_TOKEN}"

    response = client.post(url, body, content_type="application/json")
    again = client.post(url, body, content_type="application/json")

    assert response.status_code == 200 and response.json()["recorded"] == 3 and again.json()["recorded"] == 0
    assert response.json()["code"] == 0  # the acknowledgement Alibaba waits for, else it pushes again
    status = {d.profile_id: d for d in Delivery.objects.all()}
    assert status[people[0].pk].status == Delivery.Status.DELIVERED
    assert status[people[0].pk].delivered_at == datetime.datetime(2026, 12, 5, 2, 0, 8, tzinfo=datetime.timezone.utc)
    assert status[people[1].pk].status == Delivery.Status.FAILED and "MK:0001" in status[people[1].pk].error
    assert Receipt.objects.count() == 3


@pytest.mark.parametrize("query", ["", "?token=", "?token=rcpt-guess"])
def test_a_report_push_without_the_token_is_refused(destination, sent_campaign, client, query):
    sent = list(Delivery.objects.order_by("pk"))
    body = json.dumps(reports(sent_campaign, f"{sent[0].pk}-{sent[-1].pk}", sent[0].vendor_id))

    response = client.post(f"/campaigns/receipts/{destination.pk}/{query}", body, content_type="application/json")

    assert response.status_code == 400 and not Receipt.objects.exists()


def test_reports_of_messages_sent_by_other_systems_are_skipped_and_ours_recorded(destination, sent_campaign, client):
    sent = list(Delivery.objects.order_by("pk"))
    ours = reports(sent_campaign[:1], f"{sent[0].pk}-{sent[-1].pk}", sent[0].vendor_id)
    theirs = [{**ours[0], "out_id": "", "biz_id": "77777^0"}, {**ours[0], "out_id": "login-code"},
              {"phone_number": "13800138000", "success": True}]

    response = client.post(f"/campaigns/receipts/{destination.pk}/?token={RECEIPT_TOKEN}",
                           json.dumps(theirs + ours), content_type="application/json")

    assert response.status_code == 200 and response.json()["recorded"] == 1
    assert Delivery.objects.get(profile=sent_campaign[0]).status == Delivery.Status.DELIVERED


def test_a_report_push_that_is_not_reports_is_refused(destination, client):
    response = client.post(f"/campaigns/receipts/{destination.pk}/?token={RECEIPT_TOKEN}", '{"a": 1}',
                           content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "receipt_refused"
