"""Every kind of destination has its adapter, and what each says about de-duplication
decides what happens to a batch whose worker died: sent again with the same key, or
dead-lettered for staff to decide (the vendor would deliver it twice)."""
import datetime

import pytest
from django.utils import timezone

from campaigns.destinations import ADAPTERS, Adapter, adapter_class
from campaigns.models import Campaign, Delivery, Destination
from campaigns.services.runs import run_decide
from campaigns.services.sending import deliveries_claim, deliveries_reclaim
from profiles.models import Identity

from .conftest import campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db
EXPECTED_IDEMPOTENT = {"webhook": True, "email": False, "aliyun_sms": False, "wechat": False, "audience_file": True}


def test_every_kind_of_destination_has_an_adapter_that_says_whether_it_deduplicates():
    assert set(ADAPTERS) == set(Destination.Kind.values)
    for kind in Destination.Kind.values:
        cls = adapter_class(kind)
        assert issubclass(cls, Adapter) and cls.send_batch is not Adapter.send_batch
        assert cls.test_connection is not Adapter.test_connection
        assert cls.idempotent is EXPECTED_IDEMPOTENT[kind], kind


@pytest.mark.parametrize("kind,after", [("email", Delivery.Status.DEAD), ("aliyun_sms", Delivery.Status.DEAD),
                                        ("wechat", Delivery.Status.DEAD), ("audience_file", Delivery.Status.QUEUED)])
def test_a_batch_left_sending_by_a_dead_worker_is_requeued_only_where_the_vendor_cannot_send_it_twice(kind, after,
                                                                                                     settings):
    settings.CAMPAIGN_QUIET_HOURS = {}
    purpose = {"email": "email_marketing", "wechat": "wechat_marketing"}.get(kind, "sms_marketing")
    destination = Destination.objects.create(name=kind, kind=kind, config={})
    people = consenting(purpose)
    Identity.objects.create(profile=people[0], kind_id="wechat_openid", value="o_follower")
    campaign = campaign_for(segment_of(people), destination, purpose=purpose, holdout=0)
    campaign.variants.update(sms_template_code="SMS_1", wechat_template_id="TPL_1")
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    run_decide(campaign=campaign)
    assert deliveries_claim(destination_id=destination.pk, limit=10)  # the worker dies here

    later = timezone.now() + datetime.timedelta(seconds=settings.CAMPAIGN_SENDING_STALE_SECONDS + 1)
    assert deliveries_reclaim(now=later) == 1
    assert Delivery.objects.get().status == after
