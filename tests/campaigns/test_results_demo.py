"""The demo's finished campaigns: one with a real lift, one without."""
import pytest

from campaigns.demo import RESULT_DEMOS, demo_results
from campaigns.models import Campaign, CampaignResult
from profiles.models import Profile
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def test_the_demo_has_a_campaign_with_a_real_lift_and_one_without(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    # given 1,000 customers
    Profile.objects.bulk_create(ProfileFactory.build_batch(1000))
    # when the demo results are made (500 customers each)
    made = demo_results(customers=500)
    assert demo_results(customers=500) == []  # idempotent
    # then both campaigns are finished with a holdout, their results final
    assert [c.name for c in made] == [name for name, *_ in RESULT_DEMOS]
    lifted, flat = (CampaignResult.objects.get(campaign=c) for c in made)
    assert lifted.is_final and flat.is_final
    assert all(c.status == Campaign.Status.FINISHED for c in made)
    assert lifted.data["holdout"]["n"] == 50 and lifted.data["treated"]["n"] == 450
    # and the first has a significant positive lift, the second none to speak of
    assert lifted.data["overall"]["significant"] is True and lifted.data["overall"]["lift"] > 0.04
    assert flat.data["overall"]["significant"] is False
    assert lifted.data["treated"]["clicked"] > 0
