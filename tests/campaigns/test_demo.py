"""The demo's draft campaigns are ready to launch, and the segment one sends its audience
to a CSV file in a local folder: the whole loop of `make run` without a vendor account."""
import csv

import pytest

from campaigns.demo import demo_campaigns
from campaigns.models import Campaign, Delivery
from campaigns.services.lifecycle import campaign_launch, campaign_run_due
from campaigns.services.runs import campaign_check
from campaigns.services.sending import destination_drain

from .conftest import consenting, segment_of

pytestmark = pytest.mark.django_db


def test_the_demo_campaigns_launch_and_write_their_audience_file(settings, tmp_path, staff_user):
    settings.VAR_DIR, settings.CAMPAIGN_QUIET_HOURS = tmp_path, {}
    people = consenting(n=3, city="上海")
    segment_of(people, slug="shanghai-sneaker-women")

    campaigns = demo_campaigns()
    assert demo_campaigns() == []  # idempotent
    assert [campaign_check(c) for c in campaigns] == [[], []]

    sms = Campaign.objects.get(audience_kind=Campaign.AudienceKind.SEGMENT)
    assert sms.holdout_percent == 10
    sms.holdout_percent = 0  # which of three customers a 10 % holdout keeps back depends on their ids
    sms.save()
    campaign_launch(campaign=sms, user=staff_user)
    assert campaign_run_due(campaign_id=sms.pk)
    destination_drain(destination_id=sms.destination_id, budget_seconds=10)

    assert Delivery.objects.filter(campaign=sms, status=Delivery.Status.SENT).count() == 3
    (part,) = (tmp_path / "audiences").rglob("*.csv")
    with open(part, encoding="utf-8") as file:
        phones = {row["phone"] for row in csv.DictReader(file)}
    assert phones == {p.phone for p in people}
