"""Eligibility is decided per customer at send time: consent now, not blocked, an address,
under the frequency cap, outside the global control group; then the holdout."""
import datetime

import pytest
from django.utils import timezone

from campaigns.buckets import bucket, holdout_salt
from campaigns.eligibility import funnel, removed_at
from campaigns.models import Delivery
from campaigns.services.runs import run_decide
from cdp.actors import Actor
from consent.services import consent_record, do_not_contact_add
from profiles.models import Identity, ProfileStatus
from tests.factories import ProfileFactory

from .conftest import campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db


def counts(campaign, now=None):
    result = funnel(campaign, now)
    return {"in_audience": result.in_audience, **{row.code: row.count for row in result.steps},
            "holdout": result.holdout, "to_send": result.to_send}


def test_each_step_removes_the_customers_it_names_and_the_outbox_holds_the_rest(webhook):
    # given six customers in the segment, each missing one thing, and two who have everything
    ok = consenting(n=2)
    no_consent = ProfileFactory()
    withdrew = consenting()[0]
    consent_record(profile=withdrew, purpose_code="sms_marketing", status="withdrawn", source="admin",
                   actor=Actor.system("test"))
    blocked = consenting()[0]
    do_not_contact_add(profile=blocked, channel="sms", reason="unsubscribed", actor=Actor.system("test"))
    landline = consenting(phone="+862161234567")[0]
    no_phone = consenting(phone="")[0]
    erased = consenting()[0]
    erased.status = ProfileStatus.ERASED
    erased.save()
    campaign = campaign_for(segment_of([*ok, no_consent, withdrew, blocked, landline, no_phone, erased]), webhook)

    # when the funnel is read and the run decided
    assert counts(campaign) == {"in_audience": 7, "consent": 5, "contactable": 4, "address": 2, "under_cap": 2,
                                "not_global_control": 2, "holdout": 0, "to_send": 2}
    assert set(removed_at(campaign, "consent")) == {no_consent, withdrew}
    assert set(removed_at(campaign, "contactable")) == {blocked}
    assert set(removed_at(campaign, "address")) == {landline, no_phone}
    run = run_decide(campaign=campaign)

    # then exactly the two get a queued delivery to their mobile number
    deliveries = Delivery.objects.filter(run=run)
    assert {(d.profile_id, d.address, d.status) for d in deliveries} == {
        (p.pk, p.phone, Delivery.Status.QUEUED) for p in ok}
    assert run.funnel["to_send"] == 2


def test_the_frequency_cap_allows_exactly_n_messages_in_the_window(webhook, settings):
    settings.CAMPAIGN_FREQUENCY_CAP = (3, 7)
    person = consenting()[0]
    segment = segment_of([person])
    now = timezone.now()
    # given two messages this week and one eight days ago
    for days_ago in (1, 6, 8):
        run_decide(campaign=campaign_for(segment, webhook), now=now - datetime.timedelta(days=days_ago))
    # when a third campaign decides: two in the window, so the third still goes
    assert counts(campaign_for(segment, webhook), now)["under_cap"] == 1
    run_decide(campaign=campaign_for(segment, webhook), now=now)
    # then a fourth in the same week is over the cap (3 of 3 used)
    campaign = campaign_for(segment, webhook)
    assert counts(campaign, now)["under_cap"] == 0
    assert list(removed_at(campaign, "under_cap", now)) == [person]
    # and a campaign may be stricter: at most 1 per 30 days
    strict = campaign_for(segment, webhook, cap_messages=1, cap_days=30)
    assert counts(strict, now)["under_cap"] == 0


def test_the_holdout_is_stable_across_reruns_and_never_queued(webhook):
    people = consenting(n=60)
    campaign = campaign_for(segment_of(people), webhook, holdout=30)
    expected = {p.pk for p in people if bucket(holdout_salt(campaign.pk), p.uuid) < 3000}
    assert 5 < len(expected) < 35  # about 30 %
    first = run_decide(campaign=campaign)
    second = run_decide(campaign=campaign)
    for run in (first, second):
        held = set(Delivery.objects.filter(run=run, status=Delivery.Status.HOLDOUT).values_list("profile_id", flat=True))
        assert held == expected
        assert run.funnel["holdout"] == len(expected) and run.funnel["to_send"] == 60 - len(expected)


def test_the_global_control_group_is_never_messaged(webhook, settings):
    settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT = 50
    people = consenting(n=40)
    campaign = campaign_for(segment_of(people), webhook)
    controlled = {p.pk for p in people if bucket("global-control", p.uuid) < 5000}
    run = run_decide(campaign=campaign)
    assert not Delivery.objects.filter(run=run, profile_id__in=controlled).exists()
    assert run.funnel["not_global_control"] == 40 - len(controlled)


def test_a_minor_counts_only_with_a_guardians_consent(webhook):
    today = timezone.localdate()
    # a grant recorded before the birth date was known: the customer turns out to be 10
    child = consenting()[0]
    child.birth_date = today.replace(year=today.year - 10)
    child.save()
    guarded = ProfileFactory(birth_date=today.replace(year=today.year - 10))
    consent_record(profile=guarded, purpose_code="sms_marketing", status="granted", source="paper",
                   actor=Actor.system("test"), guardian_consent=True)
    campaign = campaign_for(segment_of([child, guarded]), webhook)
    assert set(removed_at(campaign, "consent")) == {child}


def test_a_merged_member_is_reached_once_as_the_survivor(webhook):
    survivor, merged = consenting(n=2)
    merged.status, merged.merged_into = ProfileStatus.MERGED, survivor
    merged.save()
    run = run_decide(campaign=campaign_for(segment_of([survivor, merged]), webhook))
    assert list(Delivery.objects.filter(run=run).values_list("profile_id", flat=True)) == [survivor.pk]


def test_wechat_needs_an_openid_and_uses_it_as_the_address(webhook):
    with_openid, without = consenting("wechat_marketing", n=2)
    Identity.objects.create(profile=with_openid, kind_id="wechat_openid", value="oABC123")
    run = run_decide(campaign=campaign_for(segment_of([with_openid, without]), webhook, purpose="wechat_marketing"))
    assert list(Delivery.objects.filter(run=run).values_list("address", flat=True)) == ["oABC123"]
    assert run.funnel["address"] == 1
