"""Behaviour triggers: the abandoned cart (add_to_cart, no order within an hour) and
"entered a segment", evaluated from a cursor, at most once per customer per window."""
import datetime

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.services.triggers import trigger_evaluate
from segments.models import SegmentMembership
from tests.factories import EventFactory

from .conftest import campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def daytime(settings):
    settings.CAMPAIGN_QUIET_HOURS = {}


def abandoned_cart(webhook, launched_at, **fields):
    campaign = campaign_for(None, webhook, audience_kind=Campaign.AudienceKind.TRIGGER_EVENT,
                            trigger_event="add_to_cart", trigger_where=[{"property": "category", "op": "eq",
                                                                          "value": "sneakers"}],
                            trigger_unless_event="order", trigger_within_minutes=60, **fields)
    campaign.status, campaign.launched_at, campaign.trigger_evaluated_until = (
        Campaign.Status.SENDING, launched_at, launched_at)
    campaign.save()
    return campaign


def cart(person, at, category="sneakers"):
    return EventFactory(profile=person, name="add_to_cart", occurred_at=at, properties={"category": category})


def test_the_abandoned_cart_reaches_those_who_did_not_order_within_the_hour(webhook):
    now = timezone.now()
    abandoned, ordered, too_recent, other_category, ordered_late = consenting(n=5)
    campaign = abandoned_cart(webhook, launched_at=now - datetime.timedelta(hours=3))
    cart(abandoned, now - datetime.timedelta(hours=2))
    cart(ordered, now - datetime.timedelta(hours=2))
    EventFactory(profile=ordered, name="order", occurred_at=now - datetime.timedelta(hours=1, minutes=30))
    cart(too_recent, now - datetime.timedelta(minutes=20))  # its hour is not over yet
    cart(other_category, now - datetime.timedelta(hours=2), category="books")
    cart(ordered_late, now - datetime.timedelta(hours=3, minutes=-30))
    EventFactory(profile=ordered_late, name="order", occurred_at=now - datetime.timedelta(minutes=10))

    assert trigger_evaluate(campaign_id=campaign.pk, now=now) == 2
    assert set(Delivery.objects.values_list("profile_id", flat=True)) == {abandoned.pk, ordered_late.pk}

    # later ticks: the recent cart's hour ends without an order; nobody is messaged twice
    later = now + datetime.timedelta(minutes=45)
    assert trigger_evaluate(campaign_id=campaign.pk, now=later) == 1
    assert Delivery.objects.filter(profile=too_recent).count() == 1
    cart(abandoned, later - datetime.timedelta(minutes=61))  # a second cart the same day
    assert trigger_evaluate(campaign_id=campaign.pk, now=later + datetime.timedelta(minutes=5)) == 0
    assert Delivery.objects.count() == 3


def test_a_trigger_waits_its_delay_and_respects_consent(webhook):
    now = timezone.now()
    person, no_consent = consenting(n=1)[0], consenting("email_marketing")[0]
    campaign = abandoned_cart(webhook, launched_at=now - datetime.timedelta(hours=3), delay_minutes=30)
    cart(person, now - datetime.timedelta(hours=2))
    cart(no_consent, now - datetime.timedelta(hours=2))
    trigger_evaluate(campaign_id=campaign.pk, now=now)
    delivery = Delivery.objects.get()
    assert delivery.profile_id == person.pk
    assert abs(delivery.not_before - (now + datetime.timedelta(minutes=30))) < datetime.timedelta(seconds=1)
    assert delivery.run.funnel["in_audience"] == 2 and delivery.run.funnel["consent"] == 1


def test_entering_a_segment_starts_the_campaign_once(webhook):
    now = timezone.now()
    old_member, newcomer = consenting(n=2)
    segment = segment_of([old_member])
    SegmentMembership.objects.filter(profile=old_member).update(entered_at=now - datetime.timedelta(days=3))
    campaign = campaign_for(segment, webhook, audience_kind=Campaign.AudienceKind.TRIGGER_SEGMENT)
    campaign.status = Campaign.Status.SENDING
    campaign.launched_at = campaign.trigger_evaluated_until = now - datetime.timedelta(minutes=5)
    campaign.save()
    SegmentMembership.objects.create(segment=segment, profile=newcomer, entered_at=now - datetime.timedelta(minutes=1))

    assert trigger_evaluate(campaign_id=campaign.pk, now=now) == 1
    assert trigger_evaluate(campaign_id=campaign.pk, now=now + datetime.timedelta(seconds=10)) == 0
    assert list(Delivery.objects.values_list("profile_id", flat=True)) == [newcomer.pk]


def test_a_paused_trigger_campaign_is_not_evaluated(webhook):
    now = timezone.now()
    campaign = abandoned_cart(webhook, launched_at=now - datetime.timedelta(hours=3))
    campaign.status = Campaign.Status.PAUSED
    campaign.save()
    cart(consenting()[0], now - datetime.timedelta(hours=2))
    assert trigger_evaluate(campaign_id=campaign.pk, now=now) == 0


def test_a_trigger_that_can_no_longer_be_evaluated_pauses_and_says_why(webhook):
    from campaigns.services.triggers import triggers_evaluate
    from cdp.models import AuditLog

    now = timezone.now()
    campaign = abandoned_cart(webhook, launched_at=now - datetime.timedelta(hours=3))
    healthy = abandoned_cart(webhook, launched_at=now - datetime.timedelta(hours=3))
    Campaign.objects.filter(pk=campaign.pk).update(trigger_event="no_such_event")
    cart(consenting()[0], now - datetime.timedelta(hours=2))

    assert triggers_evaluate(now=now) == 1  # the healthy one still runs
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED and "no_such_event" in campaign.last_error
    assert AuditLog.objects.filter(action="campaign_paused", target=f"campaign:{campaign.pk}").exists()
    assert Delivery.objects.get().campaign_id == healthy.pk
