"""Receipts close the loop, once each: delivered / opened / clicked / unsubscribed /
complained; tracked links and the unsubscribe page carry no personal data."""
import json

import pytest
from django.urls import reverse

from campaigns.destinations.webhook import SIGNATURE_HEADER, sign
from campaigns.links import click_url, token_make, token_read, unsubscribe_url
from campaigns.models import Campaign, Delivery, Receipt
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain
from consent.models import DoNotContact
from profiles.models import Event

from .conftest import SECRET, campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(webhook, settings):
    settings.CAMPAIGN_QUIET_HOURS = {}
    person = consenting()[0]
    campaign = campaign_for(segment_of([person]), webhook, name="618 大促")
    campaign.variants.update(link_url="https://shop.example.com/618", body="{{ name }} {{ link }}")
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    run_decide(campaign=campaign)
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    return Delivery.objects.get()


def post_receipts(client, destination, items, secret=SECRET):
    body = json.dumps({"receipts": items}).encode()
    return client.post(reverse("campaigns:receipts", args=[destination.pk]), body, content_type="application/json",
                       headers={SIGNATURE_HEADER: sign(secret, body)})


def test_signed_receipts_are_recorded_once_however_often_they_come(client, sent, webhook):
    items = [{"key": f"cdp-{sent.pk}", "status": "delivered"}, {"key": f"cdp-{sent.pk}", "status": "opened"}]
    assert post_receipts(client, webhook, items).json()["recorded"] == 2
    assert post_receipts(client, webhook, items).json()["recorded"] == 0
    sent.refresh_from_db()
    assert sent.status == Delivery.Status.DELIVERED and sent.opened_at and sent.delivered_at
    assert Receipt.objects.count() == 2
    assert set(Event.objects.filter(source="campaigns").values_list("name", flat=True)) == {
        "campaign_sent", "campaign_delivered", "campaign_open"}


def test_receipts_with_a_wrong_signature_or_body_are_refused(client, sent, webhook):
    items = [{"key": f"cdp-{sent.pk}", "status": "delivered"}]
    response = post_receipts(client, webhook, items, secret="not the secret")
    assert response.status_code == 400 and response.json()["code"] == "receipt_refused"
    body = b"not json"
    response = client.post(reverse("campaigns:receipts", args=[webhook.pk]), body, content_type="application/json",
                           headers={SIGNATURE_HEADER: sign(SECRET, body)})
    assert response.status_code == 400
    assert not Receipt.objects.exists()


def test_unknown_keys_and_kinds_are_ignored(client, sent, webhook):
    items = [{"key": "cdp-999999", "status": "delivered"}, {"key": f"cdp-{sent.pk}", "status": "exploded"},
             {"key": "nonsense", "status": "opened"}]
    assert post_receipts(client, webhook, items).json()["recorded"] == 0


@pytest.mark.parametrize("kind,reason", [("unsubscribed", "unsubscribed"), ("complained", "complaint")])
def test_unsubscribe_and_complaint_block_the_channel_at_once(client, sent, webhook, kind, reason):
    post_receipts(client, webhook, [{"key": f"cdp-{sent.pk}", "status": kind}])
    entry = DoNotContact.objects.get(profile_id=sent.profile_id)
    assert (entry.channel, entry.reason, entry.lifted_at) == ("sms", reason, None)


def test_a_click_is_recorded_and_redirected_without_personal_data_in_the_url(client, sent):
    url = click_url(sent.pk)
    profile = sent.profile
    assert all(value not in url for value in (profile.phone, profile.email, str(profile.uuid), profile.uuid.hex))
    response = client.get(url.split("127.0.0.1:8000")[1])
    assert response.status_code == 302 and response["Location"] == "https://shop.example.com/618"
    client.get(url.split("127.0.0.1:8000")[1])
    assert Receipt.objects.filter(delivery=sent, kind="clicked").count() == 1
    click = Event.objects.get(name="campaign_click")
    assert click.properties["campaign"] == "618 大促"


def test_the_message_carries_the_tracked_link(sent, receiver):
    assert receiver.messages[0]["text"].endswith(click_url(sent.pk) + " 拒收请回复R")
    assert len(click_url(sent.pk).rsplit("/", 1)[1]) <= 14  # short enough for an SMS


def test_forged_or_foreign_tokens_are_not_found(client, sent):
    genuine = token_make("r", sent.pk)
    assert token_read("r", genuine) == sent.pk
    assert token_read("u", genuine) is None  # a click token does not unsubscribe
    forged = genuine[:-1] + ("A" if genuine[-1] != "A" else "B")
    assert client.get(f"/r/{forged}").status_code == 404
    assert client.get("/r/%00%FF").status_code in (400, 404)


def test_the_unsubscribe_page_asks_first_then_blocks_the_channel(client, sent):
    path = unsubscribe_url(sent.pk).split("127.0.0.1:8000")[1]
    page = client.get(path)
    assert page.status_code == 200 and "退订" in page.content.decode()
    assert not DoNotContact.objects.exists()  # a link scanner's GET changes nothing
    done = client.post(path)
    assert "不会再" in done.content.decode() or "You are unsubscribed" in done.content.decode()
    assert DoNotContact.objects.get(profile_id=sent.profile_id).channel == "sms"
    assert Event.objects.filter(name="campaign_unsubscribe", profile_id=sent.profile_id).count() == 1
