"""Draining the outbox to a partner's webhook (a local HTTP server the test starts):
signed batches, retries with backoff on 5xx / 429 / timeouts, none on other 4xx, dead
letters and their re-send, the last-moment consent check, pause and cancel."""
import datetime
import json

import pytest
from django.utils import timezone

from campaigns.destinations.webhook import SIGNATURE_HEADER, verify
from campaigns.models import Campaign, Delivery, Receipt
from campaigns.services.runs import run_decide
from campaigns.services.sending import (
    backoff_seconds,
    batch_send,
    dead_letters_resend,
    deliveries_claim,
    deliveries_reclaim,
    destination_drain,
)
from cdp.actors import Actor
from cdp.models import AuditLog
from consent.services import consent_record, do_not_contact_add
from profiles.models import Event

from .conftest import SECRET, campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def daytime(settings):
    settings.CAMPAIGN_QUIET_HOURS = {}  # quiet hours have their own tests


def launched(campaign):
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    return run_decide(campaign=campaign)


def test_a_batch_is_signed_personalised_and_marked_sent_with_a_timeline_event(webhook, receiver):
    people = consenting(n=3, city="上海")
    campaign = campaign_for(segment_of(people), webhook, body="{{ name }}，{{ city }}的会员专享", name="双十一")
    launched(campaign)

    outcome = destination_drain(destination_id=webhook.pk, budget_seconds=10)

    assert outcome.sent == 3 and len(receiver.requests) == 1
    request = receiver.requests[0]
    assert verify(SECRET, request["body"], request["headers"][SIGNATURE_HEADER])
    assert not verify("another secret", request["body"], request["headers"][SIGNATURE_HEADER])
    texts = {m["customer"]: m["text"] for m in receiver.messages}
    assert texts[str(people[0].uuid)] == f"【测试】{people[0].name}，上海的会员专享 拒收请回复R"
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    sent = Event.objects.filter(name="campaign_sent", profile=people[0]).get()
    assert sent.properties["campaign"] == "双十一" and sent.source == "campaigns"


def test_a_signature_older_than_the_tolerance_is_refused():
    body = b'{"receipts": []}'
    from campaigns.destinations.webhook import sign

    old = sign(SECRET, body, timestamp=int(timezone.now().timestamp()) - 301)
    assert not verify(SECRET, body, old)


@pytest.mark.parametrize("status,headers", [(503, {}), (429, {"Retry-After": "120"})])
def test_5xx_and_429_are_retried_later_with_backoff_and_honour_retry_after(webhook, receiver, status, headers):
    launched(campaign_for(segment_of(consenting()), webhook))
    receiver.answer(status, headers)
    before = timezone.now()

    outcome = destination_drain(destination_id=webhook.pk, budget_seconds=10)

    delivery = Delivery.objects.get()
    assert outcome.retried == 1 and delivery.status == Delivery.Status.QUEUED and delivery.attempts == 1
    wait = (delivery.not_before - before).total_seconds()
    assert wait >= (120 if headers else 15)  # first backoff: 15–30 s, or what the vendor asked
    # when it is due again, the second attempt goes through with the same key
    Delivery.objects.update(not_before=timezone.now())
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    assert Delivery.objects.get().status == Delivery.Status.SENT
    # both attempts carried the same key; the receiver accepted it once
    assert [m["key"] for m in receiver.messages] == [f"cdp-{delivery.pk}"] * 2
    assert receiver.keys_seen == {f"cdp-{delivery.pk}"} and receiver.duplicates == 0


def test_other_4xx_are_not_retried_they_are_dead_letters_that_staff_can_resend(webhook, receiver, staff_user):
    campaign = campaign_for(segment_of(consenting(n=2)), webhook)
    launched(campaign)
    receiver.answer(400, body={"error": "unknown template"})

    outcome = destination_drain(destination_id=webhook.pk, budget_seconds=10)

    assert outcome.dead == 2 and len(receiver.requests) == 1
    assert all("400" in d.error for d in Delivery.objects.all())
    assert dead_letters_resend(campaign=campaign, actor=Actor.staff(staff_user)) == 2
    assert AuditLog.objects.filter(action="campaign_resent", count=2).exists()
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_after_the_last_attempt_a_delivery_is_dead_with_its_error(webhook, receiver):
    webhook.max_attempts = 2
    webhook.save()
    launched(campaign_for(segment_of(consenting()), webhook))
    for _attempt in range(2):
        receiver.answer(502)
        destination_drain(destination_id=webhook.pk, budget_seconds=10)
        Delivery.objects.filter(status=Delivery.Status.QUEUED).update(not_before=timezone.now())
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DEAD and delivery.attempts == 2 and "502" in delivery.error


def test_an_unreachable_destination_is_retried(webhook, receiver):
    receiver.close()
    launched(campaign_for(segment_of(consenting()), webhook))
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    assert Delivery.objects.get().status == Delivery.Status.QUEUED


def test_backoff_grows_exponentially_with_jitter_up_to_the_ceiling(settings):
    settings.CAMPAIGN_RETRY_BASE_SECONDS, settings.CAMPAIGN_RETRY_MAX_SECONDS = 30, 3600
    for attempt, (low, high) in {1: (15, 30), 2: (30, 60), 3: (60, 120), 10: (1800, 3600)}.items():
        delays = {backoff_seconds(attempt) for _ in range(20)}
        assert all(low <= d <= high for d in delays) and len(delays) > 1
    assert backoff_seconds(1, retry_after=600) == 600


def test_a_withdrawal_or_do_not_contact_after_the_decision_stops_the_message(webhook, receiver):
    withdrew, blocked, stays = consenting(n=3)
    launched(campaign_for(segment_of([withdrew, blocked, stays]), webhook))
    consent_record(profile=withdrew, purpose_code="sms_marketing", status="withdrawn", source="admin",
                   actor=Actor.system("test"))
    do_not_contact_add(profile=blocked, channel="sms", reason="manual", actor=Actor.system("test"))

    outcome = destination_drain(destination_id=webhook.pk, budget_seconds=10)

    assert outcome.sent == 1 and outcome.stopped == 2
    assert [m["customer"] for m in receiver.messages] == [str(stays.uuid)]
    assert set(Delivery.objects.filter(status=Delivery.Status.STOPPED).values_list("profile_id", flat=True)) == {
        withdrew.pk, blocked.pk}


def test_pause_holds_the_queue_and_cancel_stops_it(webhook, receiver, staff_user):
    from campaigns.services.lifecycle import campaign_cancel, campaign_pause, campaign_resume

    campaign = campaign_for(segment_of(consenting(n=2)), webhook)
    launched(campaign)
    campaign_pause(campaign=campaign, user=staff_user)
    assert destination_drain(destination_id=webhook.pk, budget_seconds=5).sent == 0
    campaign_resume(campaign=campaign, user=staff_user)
    # a batch claimed just before a cancel is stopped, not sent
    ids = deliveries_claim(destination_id=webhook.pk, limit=1)
    campaign_cancel(campaign=campaign, user=staff_user)
    assert batch_send(ids=ids).stopped == 1
    assert not receiver.requests
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.STOPPED}
    assert AuditLog.objects.filter(action__in=["campaign_paused", "campaign_resumed", "campaign_cancelled"]).count() == 3


def test_a_batch_left_sending_by_a_dead_worker_goes_again_with_the_same_keys(webhook, receiver, settings):
    launched(campaign_for(segment_of(consenting(n=2)), webhook))
    ids = deliveries_claim(destination_id=webhook.pk, limit=10)  # the worker dies after claiming
    assert deliveries_reclaim() == 0  # not stale yet
    later = timezone.now() + datetime.timedelta(seconds=settings.CAMPAIGN_SENDING_STALE_SECONDS + 1)
    assert deliveries_reclaim(now=later) == 2
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    assert sorted(m["key"] for m in receiver.messages) == sorted(f"cdp-{i}" for i in ids)


def test_receipts_in_the_webhook_response_are_recorded(webhook, receiver):
    launched(campaign_for(segment_of(consenting()), webhook))
    key = f"cdp-{Delivery.objects.get().pk}"
    receiver.answer(200, body={"receipts": [{"key": key, "status": "delivered"}]})
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.delivered_at is not None
    assert Receipt.objects.filter(delivery=delivery, kind="delivered").count() == 1


def test_messages_the_partner_rejects_are_dead_the_rest_sent(webhook, receiver):
    first, second = consenting(n=2)
    launched(campaign_for(segment_of([first, second]), webhook))
    rejected = Delivery.objects.get(profile=first)
    receiver.answer(200, body={"rejected": [{"key": f"cdp-{rejected.pk}", "error": "no such user"}]})
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    assert dict(Delivery.objects.values_list("profile_id", "status")) == {
        first.pk: Delivery.Status.DEAD, second.pk: Delivery.Status.SENT}
    assert json.loads(receiver.requests[0]["body"])["messages"][0]["key"].startswith("cdp-")
