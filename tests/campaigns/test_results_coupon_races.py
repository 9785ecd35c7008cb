"""Coupon codes are never reused, even when two campaigns on different channels (so not
serialised by the channel lock) draw from one pool at the same time (PostgreSQL, two
connections)."""
import threading
import time

import pytest
from django.db import connection, transaction

from campaigns.models import Campaign, Coupon, CouponPool, Delivery
from campaigns.services.runs import run_decide

from .conftest import campaign_for, consenting, segment_of
from .test_races import in_thread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_campaigns_drawing_from_one_pool_at_once_never_share_a_code(seeded_transactional_db, webhook, settings):
    settings.CAMPAIGN_QUIET_HOURS = {}
    pool = CouponPool.objects.create(name="满100减20")
    Coupon.objects.bulk_create([Coupon(pool=pool, code=f"CODE{i:03}") for i in range(40)])
    campaigns = []
    for purpose, slug in (("sms_marketing", "sms-people"), ("email_marketing", "email-people")):
        people = consenting(purpose, n=15)
        campaign = campaign_for(segment_of(people, slug=slug), webhook, purpose=purpose, name=slug,
                                body="{{ coupon }}")
        campaign.variants.update(coupon_pool=pool)
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
        campaigns.append(Campaign.objects.get(pk=campaign.pk))
    # (a table whose statistics know many rows: no ANALYZE, whose lock would serialise the two)
    other = campaign_for(segment_of([], slug="others"), webhook, name="others")
    run = other.runs.create()
    Delivery.objects.bulk_create([Delivery(run=run, campaign=other, destination=webhook, profile_id=100_000 + i,
                                           channel="sms", status="holdout") for i in range(500)])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Delivery._meta.db_table}")
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
    queued = Delivery.objects.filter(status=Delivery.Status.QUEUED, campaign__in=campaigns)
    assert queued.count() == 30
    assert Coupon.objects.filter(delivery__isnull=False).count() == 30
    assert queued.filter(coupon__isnull=True).count() == 0
