"""Coupon codes are never reused, even when two campaigns on different channels (so not
serialised by the channel lock) draw from one pool at the same time, uploaded or generated,
nor when staff top a generated pool up meanwhile; two top-ups of one pool at once add
exactly what each asked for (PostgreSQL, two connections)."""
import threading
import time

import pytest
from django.db import connection, transaction

from campaigns.models import Campaign, Coupon, CouponPool, Delivery
from campaigns.services.coupons import coupons_generate
from campaigns.services.runs import run_decide

from .conftest import campaign_for, consenting, segment_of
from .test_races import in_thread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def uploaded_pool(n):
    pool = CouponPool.objects.create(name="满100减20")
    Coupon.objects.bulk_create([Coupon(pool=pool, code=f"CODE{i:03}") for i in range(n)])
    return pool


def generated_pool(n):
    pool = CouponPool.objects.create(name="双十一", source=CouponPool.Source.GENERATE, prefix="D11-", code_length=8)
    coupons_generate(pool=pool, count=n)
    return pool


def two_campaigns_on(pool, webhook):
    """Two sending campaigns of 15 customers each, on different channels, handing out
    codes of `pool`; and a table whose statistics know many rows (no ANALYZE, whose lock
    would serialise the two decisions)."""
    campaigns = []
    for purpose, slug in (("sms_marketing", "sms-people"), ("email_marketing", "email-people")):
        people = consenting(purpose, n=15)
        campaign = campaign_for(segment_of(people, slug=slug), webhook, purpose=purpose, name=slug,
                                body="{{ coupon }}")
        campaign.variants.update(coupon_pool=pool)
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
        campaigns.append(Campaign.objects.get(pk=campaign.pk))
    other = campaign_for(segment_of([], slug="others"), webhook, name="others")
    run = other.runs.create()
    Delivery.objects.bulk_create([Delivery(run=run, campaign=other, destination=webhook, profile_id=100_000 + i,
                                           channel="sms", status="holdout") for i in range(500)])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Delivery._meta.db_table}")
    return campaigns


def assert_one_code_each(campaigns, pool):
    queued = Delivery.objects.filter(status=Delivery.Status.QUEUED, campaign__in=campaigns)
    assert queued.count() == 30
    assert Coupon.objects.filter(pool=pool, delivery__isnull=False).count() == 30
    assert queued.filter(coupon__isnull=True).count() == 0
    for campaign in campaigns:  # one code per customer of each campaign
        per_customer = Coupon.objects.filter(delivery__campaign=campaign).values_list("delivery__profile_id", flat=True)
        assert len(per_customer) == len(set(per_customer)) == 15


@pytest.mark.parametrize("make_pool", [uploaded_pool, generated_pool], ids=["uploaded", "generated"])
def test_two_campaigns_drawing_from_one_pool_at_once_never_share_a_code(seeded_transactional_db, webhook, settings,
                                                                        make_pool):
    settings.CAMPAIGN_QUIET_HOURS = {}
    pool = make_pool(40)
    campaigns = two_campaigns_on(pool, webhook)
    # given one decision holding its transaction open after taking its codes
    decided = threading.Event()

    def slow_decision():
        with transaction.atomic():
            run_decide(campaign=campaigns[0])
            decided.set()
            time.sleep(1.0)

    first = in_thread(slow_decision)
    assert decided.wait(10)
    # when the other campaign decides meanwhile
    run_decide(campaign=campaigns[1])
    first.join(10)
    # then every queued delivery has its own code, and no code went to two deliveries
    assert_one_code_each(campaigns, pool)


def test_a_top_up_while_campaigns_draw_from_the_pool_adds_codes_and_reuses_none(seeded_transactional_db, webhook,
                                                                               settings):
    settings.CAMPAIGN_QUIET_HOURS = {}
    # given a generated pool with 20 codes, too few for two campaigns of 15
    pool = generated_pool(20)
    campaigns = two_campaigns_on(pool, webhook)
    # and the first campaign's decision holding its transaction open after taking 15
    decided, topped_up, waited = threading.Event(), threading.Event(), []

    def slow_decision():
        with transaction.atomic():
            run_decide(campaign=campaigns[0])
            decided.set()
            waited.append(topped_up.wait(10))  # staff top up while the codes are taken but not committed
            time.sleep(0.5)

    first = in_thread(slow_decision)
    assert decided.wait(10)
    # when staff generate 20 more meanwhile (not held up by the decision), then the second
    # campaign decides
    assert coupons_generate(pool=pool, count=20) == 20
    topped_up.set()
    run_decide(campaign=campaigns[1])
    first.join(10)
    assert waited == [True]
    # then 40 distinct codes, 30 handed out, one per delivery, none twice
    codes = list(Coupon.objects.filter(pool=pool).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 40
    assert_one_code_each(campaigns, pool)


def test_two_top_ups_of_one_pool_at_once_each_add_what_they_asked_for(seeded_transactional_db):
    pool = generated_pool(100)
    added = []
    inside = threading.Event()

    def slow_top_up():
        with transaction.atomic():
            added.append(coupons_generate(pool=pool, count=300))
            inside.set()
            time.sleep(0.5)

    first = in_thread(slow_top_up)
    assert inside.wait(10)
    added.append(coupons_generate(pool=pool, count=200))  # waits for the first's lock on the pool
    first.join(10)
    assert sorted(added) == [200, 300]
    codes = list(Coupon.objects.filter(pool=pool).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 600
