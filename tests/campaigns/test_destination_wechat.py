"""WeChat official account template messages through wechatpy against a local server
that implements /cgi-bin/stable_token and /cgi-bin/message/template/send: the access
token cached and refreshed, quota retried, unfollowed and bad OpenIDs failed, and the
TEMPLATESENDJOBFINISH receipts verified by the server token's signature."""
import hashlib
import time
import uuid

import pytest

from campaigns.destinations import FAILED, RETRY, SENT, DestinationError, OutgoingMessage, adapter_for
from campaigns.models import Campaign, Delivery, Destination, Receipt
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain
from profiles.models import Identity

from .conftest import campaign_for, consenting, segment_of
from .local_http import LocalServer

pytestmark = pytest.mark.django_db
APP_SECRET, SERVER_TOKEN = "wx-app-secret-for-tests", "srv-token-for-tests"


class WechatApi:
    """An official account's API: tokens from stable_token (a new one when forced or
    expired), template messages to followers; `forced` answers come first."""

    def __init__(self, appid):
        self.appid, self.token, self.issued, self.expires_in = appid, "", 0, 7200
        self.forced, self.sent, self.next_msgid, self.refuse_tokens = [], [], 1000, False
        self.http = LocalServer(self.answer)

    def expire(self):
        self.token = ""

    def answer(self, request):
        if request.path == "/cgi-bin/stable_token":
            body = request.json()
            if body["appid"] != self.appid or body["secret"] != APP_SECRET:
                return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
            if not self.token or body.get("force_refresh"):
                self.issued += 1
                self.token = f"ACCESS_TOKEN_{self.issued}"
            return 200, {"access_token": self.token, "expires_in": self.expires_in}
        if request.path == "/cgi-bin/message/template/send":
            if not self.token or request.query.get("access_token") != self.token or self.refuse_tokens:
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            if self.forced:
                return self.forced.pop(0)
            message = request.json()
            if message["touser"].startswith("o_unfollowed"):
                return 200, {"errcode": 43004, "errmsg": "require subscribe"}
            if not message["touser"].startswith("o"):
                return 200, {"errcode": 40003, "errmsg": "invalid openid"}
            self.sent.append(message)
            self.next_msgid += 1
            return 200, {"errcode": 0, "errmsg": "ok", "msgid": self.next_msgid}
        return 404, {}

    @property
    def token_requests(self):
        return [r for r in self.http.requests if r.path.endswith("stable_token")]


@pytest.fixture
def wechat():
    server = WechatApi(f"wx{uuid.uuid4().hex[:16]}")  # a fresh AppID: tokens cached by other tests do not apply
    yield server
    server.http.close()


@pytest.fixture
def destination(wechat):
    return Destination.objects.create(name="公众号", kind="wechat", secret=APP_SECRET, rate_per_second=10_000, config={
        "appid": wechat.appid, "api_base": f"{wechat.http.url}/cgi-bin/", "server_token": SERVER_TOKEN})


def message(n, openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M", **fields):
    return OutgoingMessage(delivery_id=n, key=f"cdp-{n}", address=openid, customer=f"c{n}", campaign="双十一",
                           variant="A", subject="", text="李女士，您的优惠券已到账",
                           wechat_template_id=fields.pop("wechat_template_id", "TPL_1"),
                           tokens={"name": "李女士", "coupon": "A1", "link": "https://cdp.example/r/x",
                                   "unsubscribe": "https://cdp.example/u/x"},
                           link="https://cdp.example/r/x", **fields)


def test_a_batch_sends_one_template_message_each_after_one_token_fetch_with_the_secret_in_the_body(destination,
                                                                                                   wechat):
    results = adapter_for(destination).send_batch([message(1), message(2, "o_second")])

    assert [(r.delivery_id, r.outcome, r.vendor_id) for r in results] == [(1, SENT, "1001"), (2, SENT, "1002")]
    (fetch,) = wechat.token_requests
    assert fetch.method == "POST" and fetch.json()["secret"] == APP_SECRET and APP_SECRET not in fetch.path + str(
        fetch.query)
    first = wechat.sent[0]
    assert first["touser"] == "o6_bmjrPTlm6_2sgVt7hMZOPfL2M" and first["template_id"] == "TPL_1"
    assert first["url"] == "https://cdp.example/r/x"
    assert first["data"] == {"name": {"value": "李女士"}, "coupon": {"value": "A1"},
                             "text": {"value": "李女士，您的优惠券已到账"}}


def test_template_keywords_can_be_mapped_to_tokens(destination, wechat):
    destination.config["fields"] = {"thing1": "name", "character_string2": "coupon", "thing3": "text"}
    adapter_for(destination).send_batch([message(1)])
    assert wechat.sent[0]["data"] == {"thing1": {"value": "李女士"}, "character_string2": {"value": "A1"},
                                      "thing3": {"value": "李女士，您的优惠券已到账"}}


def test_the_token_is_shared_through_the_cache_until_shortly_before_it_expires(destination, wechat):
    adapter_for(destination).send_batch([message(1)])
    adapter_for(destination).send_batch([message(2)])  # another worker, another client
    assert len(wechat.token_requests) == 1

    wechat.expires_in = 301  # cached for one second: 300 s before WeChat's expiry
    wechat.token = ""
    adapter_for(destination).send_batch([message(3)])
    time.sleep(1.2)
    adapter_for(destination).send_batch([message(4)])
    assert len(wechat.token_requests) == 3 and len(wechat.sent) == 4


def test_an_expired_token_is_refreshed_and_the_message_sent_once(destination, wechat):
    adapter_for(destination).send_batch([message(1)])
    wechat.expire()  # WeChat answers 42001 to the cached token

    results = adapter_for(destination).send_batch([message(2), message(3)])

    assert [r.outcome for r in results] == [SENT, SENT] and len(wechat.sent) == 3
    assert len(wechat.token_requests) == 2


def test_a_token_refused_even_after_a_forced_refresh_retries_the_batch_later(destination, wechat):
    wechat.refuse_tokens = True

    results = adapter_for(destination).send_batch([message(1), message(2), message(3)])

    assert [r.outcome for r in results] == [RETRY, RETRY, RETRY] and "42001" in results[0].error
    # the first fetch, the refresh (the same token back), one forced refresh: no more,
    # WeChat allows few forced refreshes a day
    assert [r.json()["force_refresh"] for r in wechat.token_requests] == [False, False, True]


def test_the_days_quota_retries_the_message_and_the_rest_of_the_batch(destination, wechat):
    wechat.forced.append((200, {"errcode": 45009, "errmsg": "reach max api daily quota limit"}))

    results = adapter_for(destination).send_batch([message(1), message(2), message(3)])

    assert [r.outcome for r in results] == [RETRY, RETRY, RETRY] and "45009" in results[0].error
    assert wechat.sent == []  # nothing more was tried after the quota answer


def test_an_unfollowed_or_bad_openid_fails_alone(destination, wechat):
    results = adapter_for(destination).send_batch([
        message(1, "o_unfollowed"), message(2, "not-an-openid"), message(3), message(4, wechat_template_id="")])

    assert [r.outcome for r in results] == [FAILED, FAILED, SENT, FAILED]
    assert "43004" in results[0].error and "40003" in results[1].error


def test_the_connection_test_fetches_a_token(destination, wechat):
    assert wechat.appid in adapter_for(destination).test_connection()
    assert len(wechat.token_requests) == 1


def test_a_wrong_app_secret_fails_the_batch_and_the_connection_test(destination, wechat):
    destination.secret = "wrong-secret"

    results = adapter_for(destination).send_batch([message(1), message(2)])

    assert [r.outcome for r in results] == [FAILED, FAILED] and "40125" in results[0].error
    assert len(wechat.token_requests) == 1  # the second message was not tried
    with pytest.raises(DestinationError) as refused:
        adapter_for(destination).test_connection()
    assert not refused.value.retryable and "wrong-secret" not in str(refused.value)


def test_an_unreachable_api_is_retried(destination, wechat):
    wechat.http.close()
    assert {r.outcome for r in adapter_for(destination).send_batch([message(1), message(2)])} == {RETRY}


def event(openid, msgid, status="success"):
    return (f"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{msgid}</MsgID>"
            f"<Status><![CDATA[{status}]]></Status></xml>")


def signed(token=SERVER_TOKEN, timestamp=None):
    timestamp, nonce = str(timestamp or int(time.time())), "1405130578"
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return f"?signature={signature}&timestamp={timestamp}&nonce={nonce}"


@pytest.fixture
def sent(destination, wechat, settings):
    settings.CAMPAIGN_QUIET_HOURS = {}
    people = consenting("wechat_marketing", n=2)
    for n, person in enumerate(people):
        Identity.objects.create(profile=person, kind_id="wechat_openid", value=f"o_follower_{n}")
    campaign = campaign_for(segment_of(people), destination, purpose="wechat_marketing")
    campaign.variants.update(wechat_template_id="TPL_1")
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    run_decide(campaign=campaign)
    assert destination_drain(destination_id=destination.pk, budget_seconds=10).sent == 2
    return {d.address: d for d in Delivery.objects.all()}


def test_job_finished_events_mark_deliveries_delivered_or_failed(destination, sent, client):
    url = f"/campaigns/receipts/{destination.pk}/"
    ok, blocked = sent["o_follower_0"], sent["o_follower_1"]

    first = client.post(url + signed(), event("o_follower_0", ok.vendor_id), content_type="text/xml")
    second = client.post(url + signed(), event("o_follower_1", blocked.vendor_id, "failed:user block"),
                         content_type="text/xml")
    other = client.post(url + signed(), event("o_follower_0", blocked.vendor_id), content_type="text/xml")

    assert [r.json()["recorded"] for r in (first, second, other)] == [1, 1, 0]
    ok.refresh_from_db(), blocked.refresh_from_db()
    assert ok.status == Delivery.Status.DELIVERED
    assert blocked.status == Delivery.Status.FAILED and blocked.error == "failed:user block"


@pytest.mark.parametrize("query", ["", signed(token="another"), signed(timestamp=int(time.time()) - 3600)])
def test_an_event_without_a_valid_recent_signature_is_refused(destination, sent, client, query):
    response = client.post(f"/campaigns/receipts/{destination.pk}/{query}",
                           event("o_follower_0", sent["o_follower_0"].vendor_id), content_type="text/xml")
    assert response.status_code == 400 and not Receipt.objects.exists()


def test_the_server_url_check_echoes_echostr_only_when_signed(destination, client):
    url = f"/campaigns/receipts/{destination.pk}/"

    ok = client.get(url + signed() + "&echostr=5838479218127813673")
    forged = client.get(url + signed(token="another") + "&echostr=5838479218127813673")

    assert (ok.status_code, ok.content) == (200, b"5838479218127813673")
    assert forged.status_code == 400 and b"5838479218127813673" not in forged.content


def test_destinations_that_sign_nothing_refuse_a_get(client):
    webhook = Destination.objects.create(name="hook", kind="webhook", config={"url": "http://127.0.0.1:9/"})
    assert client.get(f"/campaigns/receipts/{webhook.pk}/").status_code == 405
