"""Campaign results: treated against holdout, checked against numbers worked out by hand."""
import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignResult, CampaignRun, Coupon, CouponPool, Delivery, Destination, Variant
from campaigns.results import compare, result_compute, result_refresh, results_due
from consent.models import Purpose
from profiles.models import Event

pytestmark = pytest.mark.django_db

SEND = timezone.make_aware(datetime.datetime(2026, 11, 2, 10, 0))


def a_campaign(*, cost="0.05", goal="order", where=None, days=7, labels=("A",), status="finished"):
    destination = Destination.objects.create(name="短信", kind="webhook", config={"url": "http://127.0.0.1:9/"},
                                             cost_per_message=Decimal(cost))
    campaign = Campaign.objects.create(name="双十一", purpose=Purpose.objects.get(code="sms_marketing"),
                                       destination=destination, audience_kind="trigger_event", trigger_event="order",
                                       goal_event=goal, goal_where=where or [], attribution_days=days,
                                       status=status, launched_at=SEND, finished_at=SEND)
    for label in labels:
        Variant.objects.create(campaign=campaign, label=label, weight=100 // len(labels), body="您好")
    return campaign


def deliver(campaign, *, treated: int, holdout: int, first_profile=1, variant="A", clicked=0, status="sent"):
    """`treated` sent and `holdout` kept-back deliveries to customers numbered from `first_profile`."""
    run = CampaignRun.objects.create(campaign=campaign, started_at=SEND)
    variant = campaign.variants.get(label=variant)
    rows = [Delivery(run=run, campaign=campaign, variant=variant, destination=campaign.destination,
                     profile_id=first_profile + i, channel="sms", status=status, created_at=SEND, sent_at=SEND,
                     clicked_at=SEND if i < clicked else None) for i in range(treated)]
    rows += [Delivery(run=run, campaign=campaign, variant=variant, destination=campaign.destination,
                      profile_id=first_profile + treated + i, channel="sms", status="holdout", created_at=SEND)
             for i in range(holdout)]
    Delivery.objects.bulk_create(rows)
    return list(range(first_profile, first_profile + treated)), list(range(first_profile + treated,
                                                                           first_profile + treated + holdout))


def orders(profile_ids, *, after=datetime.timedelta(days=1), amount="100.00", name="order", **properties):
    Event.objects.bulk_create([Event(profile_id=pk, name=name, occurred_at=SEND + after, amount=Decimal(amount),
                                     properties=properties) for pk in profile_ids])


# --- the statistics, by hand ---------------------------------------------------------------

def group(n, converted, revenue=0.0, squares=0.0):
    return {"n": n, "converted": converted, "revenue": revenue, "revenue_squares": squares}


def test_lift_interval_and_p_value_match_the_hand_computed_two_proportion_test():
    # given 60 of 1000 treated and 40 of 1000 held out converted
    # when compared
    out = compare(group(1000, 60), group(1000, 40))
    # then lift .02; pooled z = .02 / sqrt(.05·.95·2/1000) = 2.0520 → p = 0.04016;
    # Wald interval .02 ± 1.96·sqrt(.06·.94/1000 + .04·.96/1000) = (0.000917, 0.039083)
    assert out["lift"] == pytest.approx(0.02)
    assert out["p_value"] == pytest.approx(0.04016, abs=2e-5)
    assert (out["lift_low"], out["lift_high"]) == (pytest.approx(0.000917, abs=2e-6), pytest.approx(0.039083, abs=2e-6))
    assert out["significant"] is True
    assert out["relative_lift"] == pytest.approx(0.5)
    # log-ratio interval: 1.5 · exp(±1.96·sqrt(1/60 − 1/1000 + 1/40 − 1/1000)) − 1
    assert out["relative_lift_low"] == pytest.approx(1.5 * 2.718281828 ** (-1.959964 * 0.1991649) - 1, abs=1e-4)


def test_a_small_sample_is_not_significant_and_says_how_many_customers_are_needed():
    # given 30 of 500 against 20 of 500: z = .02 / sqrt(.05·.95·2/500) = 1.4510 → p = 0.1468
    out = compare(group(500, 30), group(500, 20))
    assert out["p_value"] == pytest.approx(0.1468, abs=1e-4)
    assert out["significant"] is False
    # then at 80 % power, Cohen's h = 2·asin(√.06) − 2·asin(√.04) = 0.09223 needs
    # (1.95996 + 0.84162)² · 2 / h² = 1845.5 → 1846 per group
    assert out["customers_needed"] == 2 * 1846
    assert out["customers_more"] == 2 * 1846 - 1000


def test_zero_conversions_give_no_lift_and_no_division_by_zero():
    out = compare(group(100, 0), group(100, 0))
    assert out["lift"] == 0 and out["p_value"] == 1.0 and out["significant"] is False
    assert "relative_lift" not in out and "customers_needed" not in out
    # and treated converting against a holdout that never did has no relative lift, but a test
    one_sided = compare(group(100, 5), group(100, 0))
    assert one_sided["p_value"] == pytest.approx(0.02354, abs=1e-5)  # z = .05/sqrt(.025·.975·.02) = 2.2646
    assert "relative_lift" not in one_sided


def test_no_holdout_says_there_is_no_control_group():
    out = compare(group(100, 7), group(0, 0))
    assert out == {"treated_rate": 0.07, "control_rate": None, "has_control": False, "significant": False}


def test_revenue_per_customer_and_incremental_revenue_interval():
    # given treated: 4 customers spent 100, 0, 0, 0; holdout: 4 spent 0
    out = compare(group(4, 1, 100.0, 10_000.0), group(4, 0, 0.0, 0.0))
    # then 25 per treated customer, 0 per held-out one, 100 incremental;
    # sd of treated = sqrt((10000 − 4·25²)/3) = 50, se = 50/2 = 25 → ±1.96·25·4
    assert out["revenue_per_treated"] == 25 and out["revenue_per_control"] == 0
    assert out["incremental_revenue"] == 100
    assert out["incremental_revenue_low"] == pytest.approx(100 - 1.959964 * 100, abs=1e-3)
    assert out["incremental_revenue_high"] == pytest.approx(100 + 1.959964 * 100, abs=1e-3)


# --- computed from deliveries and events ----------------------------------------------------

def test_result_counts_conversions_revenue_cost_and_roi_from_the_database():
    # given 100 treated (12 converted, 100 each) and 100 held out (4 converted, 100 each)
    campaign = a_campaign(cost="0.50")
    treated, holdout = deliver(campaign, treated=100, holdout=100, clicked=20)
    orders(treated[:12])
    orders(holdout[:4])
    # when computed
    data = result_compute(campaign, SEND + datetime.timedelta(days=8))
    # then
    assert data["treated"]["n"] == 100 and data["treated"]["converted"] == 12
    assert data["holdout"]["n"] == 100 and data["holdout"]["converted"] == 4
    assert data["treated"]["clicked"] == 20 and data["treated"]["clicked_not_converted"] == 8
    overall = data["overall"]
    assert overall["lift"] == pytest.approx(0.08)
    assert overall["revenue_per_treated"] == 12 and overall["revenue_per_control"] == 4
    assert overall["incremental_revenue"] == pytest.approx(800)
    assert overall["cost"] == pytest.approx(50)
    assert overall["roi"] == pytest.approx((800 - 50) / 50)
    assert data["variants"][0]["label"] == "A" and data["variants"][0]["vs_holdout"]["lift"] == pytest.approx(0.08)
    assert sum(day["n"] for day in data["daily"] if day["treated"]) == 12


def test_attribution_window_edges_count_after_the_send_up_to_the_last_second():
    campaign = a_campaign(days=7)
    treated, _holdout = deliver(campaign, treated=5, holdout=0)
    orders([treated[0]], after=datetime.timedelta(0))  # at the send itself: before the message could work
    orders([treated[1]], after=datetime.timedelta(seconds=1))
    orders([treated[2]], after=datetime.timedelta(days=7))  # the last moment of the window
    orders([treated[3]], after=datetime.timedelta(days=7, seconds=1))  # too late
    orders([treated[4]], after=-datetime.timedelta(hours=1))  # before
    data = result_compute(campaign, SEND + datetime.timedelta(days=9))
    assert data["treated"]["converted"] == 2


def test_holdout_window_starts_at_its_would_be_send_time_and_property_filters_apply():
    campaign = a_campaign(where=[{"property": "category", "op": "eq", "value": "口红"}])
    _treated, holdout = deliver(campaign, treated=0, holdout=3)
    orders([holdout[0]], category="口红")
    orders([holdout[1]], category="面霜")  # another category: not the goal
    orders([holdout[2]], name="product_view", category="口红")  # another event
    data = result_compute(campaign, SEND + datetime.timedelta(days=9))
    assert data["holdout"]["converted"] == 1


def test_a_late_event_inside_the_window_updates_the_result_until_it_is_frozen():
    campaign = a_campaign(days=7)
    treated, _holdout = deliver(campaign, treated=10, holdout=10)
    closes = SEND + datetime.timedelta(days=7)
    first = result_refresh(campaign_id=campaign.pk, now=closes + datetime.timedelta(hours=1))
    assert first.data["treated"]["converted"] == 0 and first.is_final is False
    assert first.window_closes_at == closes
    # when an order of day 6 arrives after the window closed, but within the late hours
    orders([treated[0]], after=datetime.timedelta(days=6))
    second = result_refresh(campaign_id=campaign.pk, now=closes + datetime.timedelta(hours=2))
    # then it counts
    assert second.data["treated"]["converted"] == 1 and second.is_final is False
    # and once the late hours are over the result is frozen: later arrivals change nothing
    frozen = result_refresh(campaign_id=campaign.pk, now=closes + datetime.timedelta(hours=25))
    assert frozen.is_final is True
    orders([treated[1]], after=datetime.timedelta(days=5))
    again = result_refresh(campaign_id=campaign.pk, now=closes + datetime.timedelta(hours=30))
    assert again.data["treated"]["converted"] == 1


def test_results_stay_open_while_the_campaign_may_still_send():
    campaign = a_campaign(status="sending")
    deliver(campaign, treated=2, holdout=2)
    result = result_refresh(campaign_id=campaign.pk, now=SEND + datetime.timedelta(days=60))
    assert result.is_final is False and result.window_closes_at is None


def test_the_tick_refreshes_open_results_at_most_every_ten_minutes():
    campaign = a_campaign()
    deliver(campaign, treated=2, holdout=2)
    now = SEND + datetime.timedelta(days=1)
    assert results_due(now) == 1
    assert results_due(now + datetime.timedelta(minutes=5)) == 0
    assert results_due(now + datetime.timedelta(minutes=11)) == 1
    assert CampaignResult.objects.get(campaign=campaign).computed_at == now + datetime.timedelta(minutes=11)


def test_a_zero_percent_holdout_reports_no_control_group():
    campaign = a_campaign()
    treated, _ = deliver(campaign, treated=10, holdout=0)
    orders(treated[:3])
    overall = result_compute(campaign, SEND + datetime.timedelta(days=9))["overall"]
    assert overall["has_control"] is False and overall["treated_rate"] == pytest.approx(0.3)
    assert overall["roi"] is None


def test_variants_are_compared_with_the_holdout_and_with_the_first_variant():
    campaign = a_campaign(labels=("A", "B"))
    a_treated, holdout = deliver(campaign, treated=50, holdout=50, variant="A")
    b_treated, _ = deliver(campaign, treated=50, holdout=0, variant="B", first_profile=1000)
    orders(a_treated[:5])
    orders(b_treated[:10])
    orders(holdout[:2])
    variants = {entry["label"]: entry for entry in result_compute(campaign, SEND)["variants"]}
    assert variants["A"]["vs_holdout"]["lift"] == pytest.approx(0.06)
    assert variants["B"]["vs_holdout"]["lift"] == pytest.approx(0.16)
    assert variants["B"]["vs_first"]["lift"] == pytest.approx(0.10)


def test_coupon_redemptions_are_recorded_from_orders_carrying_the_code():
    campaign = a_campaign()
    treated, _ = deliver(campaign, treated=3, holdout=0)
    pool = CouponPool.objects.create(name="满100减20")
    deliveries = list(Delivery.objects.filter(campaign=campaign).order_by("profile_id"))
    Coupon.objects.bulk_create([Coupon(pool=pool, code=f"C{i}", delivery=d) for i, d in enumerate(deliveries)])
    orders([treated[0]], coupon="C0")
    orders([treated[1]], coupon="C0")  # someone else's code: not a redemption of C1
    result = result_refresh(campaign_id=campaign.pk, now=SEND + datetime.timedelta(days=2))
    assert result.data["coupons"] == {"issued": 3, "redeemed": 1}
    assert Coupon.objects.get(code="C0").redeemed_at == SEND + datetime.timedelta(days=1)
