"""manage.py campaign_send ID [--dry-run]: the funnel, then the same services as the workers."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from tests.factories import ProfileFactory

from .conftest import campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.CAMPAIGN_QUIET_HOURS = {}


def run(*args) -> str:
    out = StringIO()
    call_command("campaign_send", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def test_dry_run_prints_the_funnel_and_sends_nothing(webhook, receiver):
    campaign = campaign_for(segment_of([*consenting(n=2), ProfileFactory()]), webhook)
    out = run(campaign.pk, "--dry-run")
    lines = out.splitlines()
    assert "春季促销" in lines[0]
    assert any(line.startswith("受众人数") and line.split()[1] == "3" for line in lines)
    assert any(line.startswith("同意有效") and "(−1)" in line for line in lines)
    assert any(line.startswith("将发送") and line.split()[1] == "2" for line in lines)
    assert not Delivery.objects.exists() and not receiver.requests


def test_a_draft_is_not_sent_from_the_command_line(webhook, receiver):
    campaign = campaign_for(segment_of(consenting(n=1)), webhook)
    with pytest.raises(CommandError, match="草稿"):
        run(campaign.pk)
    assert not Delivery.objects.exists()
    with pytest.raises(CommandError):
        run(999_999)


def test_a_launched_campaign_is_decided_sent_and_finished(webhook, receiver):
    people = consenting(n=3)
    campaign = campaign_for(segment_of(people), webhook, status=Campaign.Status.SCHEDULED,
                            next_run_at=timezone.now())
    out = run(campaign.pk)
    # then every eligible customer got one message through the destination
    assert sorted(m["address"] for m in receiver.messages) == sorted(p.phone for p in people)
    assert "已发送 3" in out and "状态：已完成" in out
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
    # and running it again sends nothing more
    with pytest.raises(CommandError):
        run(campaign.pk)
    assert len(receiver.messages) == 3


def test_retries_are_left_for_later_and_said(webhook, receiver):
    campaign = campaign_for(segment_of(consenting(n=1)), webhook, status=Campaign.Status.SCHEDULED,
                            next_run_at=timezone.now())
    receiver.answer(503)
    out = run(campaign.pk)
    assert "稍后重试 1" in out
    assert Delivery.objects.get().status == Delivery.Status.QUEUED
