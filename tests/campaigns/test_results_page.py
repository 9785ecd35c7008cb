"""The result page: the comparison in Chinese, the CSV, and segments made from a result."""
import datetime

import pytest
from django.urls import reverse

from campaigns.models import CampaignResult
from cdp.models import AuditLog
from segments.models import Segment, SegmentMembership

from .test_results import SEND, a_campaign, deliver, orders

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    client.cookies["django_language"] = "zh-hans"
    return client


@pytest.fixture
def finished():
    """100 treated (20 clicked, 12 converted of which 8 clicked) against 100 held out (4 converted)."""
    campaign = a_campaign(cost="0.50")
    treated, holdout = deliver(campaign, treated=100, holdout=100, clicked=20)
    orders(treated[:8] + treated[50:54])
    orders(holdout[:4])
    return campaign


def test_the_result_page_shows_lift_interval_p_value_and_roi_in_chinese(admin_client, finished):
    response = admin_client.get(reverse("admin:campaigns_campaign_result", args=[finished.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "相对提升" in page and "差异显著" in page and "p 值" in page
    assert "8.00%" in page  # the lift: 12 % − 4 %
    assert "¥800.00" in page  # incremental revenue
    assert "1500.0%" in page  # ROI (800 − 50) / 50
    assert "echarts" in page and "result-chart-data" in page
    assert CampaignResult.objects.filter(campaign=finished).exists()


def test_a_zero_percent_holdout_says_there_is_no_control_group(admin_client):
    campaign = a_campaign()
    deliver(campaign, treated=10, holdout=0)
    page = admin_client.get(reverse("admin:campaigns_campaign_result", args=[campaign.pk])).content.decode()
    assert "无对照组" in page


def test_a_small_difference_says_it_is_not_significant_and_how_many_more_are_needed(admin_client):
    campaign = a_campaign()
    treated, holdout = deliver(campaign, treated=50, holdout=50)
    orders(treated[:3])
    orders(holdout[:2])
    page = admin_client.get(reverse("admin:campaigns_campaign_result", args=[campaign.pk])).content.decode()
    assert "差异不显著" in page and "80% 功效" in page


def test_the_csv_is_formula_safe(admin_client):
    # given variant B converting less than the holdout: its lift starts with "-"
    campaign = a_campaign(labels=("A", "B"))
    a_treated, holdout = deliver(campaign, treated=20, holdout=20)
    deliver(campaign, treated=20, holdout=0, variant="B", first_profile=500)
    orders(holdout[:5])
    response = admin_client.get(reverse("admin:campaigns_campaign_result", args=[campaign.pk]) + "?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode("utf-8-sig")
    assert "'-25.00%" in body and ",-25.00%" not in body


def test_clicked_but_not_converted_becomes_a_static_segment_in_one_click(admin_client, finished):
    response = admin_client.post(reverse("admin:campaigns_campaign_result_segment", args=[finished.pk]),
                                 {"group": "clicked_not_converted"})
    segment = Segment.objects.get(kind=Segment.Kind.STATIC)
    assert response.status_code == 302 and response["Location"].endswith(f"/{segment.pk}/change/")
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)) == set(
        range(9, 21))
    assert segment.member_count == 12
    assert AuditLog.objects.filter(action="campaign.segment_from_result").exists()


def test_an_unknown_group_is_a_clear_error_not_a_500(admin_client, finished):
    response = admin_client.post(reverse("admin:campaigns_campaign_result_segment", args=[finished.pk]),
                                 {"group": "everyone"}, follow=True)
    assert response.status_code == 200
    assert not Segment.objects.exists()


def test_a_campaign_not_launched_has_no_result_page(admin_client):
    campaign = a_campaign()
    campaign.launched_at = None
    campaign.save()
    assert admin_client.get(reverse("admin:campaigns_campaign_result", args=[campaign.pk])).status_code == 404


def test_the_campaign_page_links_to_its_result(admin_client, finished):
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[finished.pk])).content.decode()
    assert reverse("admin:campaigns_campaign_result", args=[finished.pk]) in page
    # and once computed, its headline: 12 % against 4 %, 8 points, significant
    from campaigns.results import result_refresh

    result_refresh(campaign_id=finished.pk, now=SEND + datetime.timedelta(days=9))
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[finished.pk])).content.decode()
    assert "转化率 12.00%，对照组 4.00%：提升 8.00%（差异显著）" in page


def test_the_form_keeps_the_goal_and_refuses_an_unknown_conversion_event(admin_client, webhook):
    from campaigns.models import Campaign

    from .conftest import consenting, segment_of
    from .test_admin import campaign_form

    segment = segment_of(consenting(n=1))
    add = reverse("admin:campaigns_campaign_add")
    response = admin_client.post(add, campaign_form(segment, webhook, goal_event="no_such_event"))
    assert response.status_code == 200 and not Campaign.objects.exists()
    assert response.context["adminform"].form.errors["goal_event"]
    response = admin_client.post(add, campaign_form(
        segment, webhook, goal_event="order", attribution_days=3,
        goal_where='[{"property": "category", "op": "eq", "value": "口红"}]'))
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.goal_event, campaign.attribution_days) == ("order", 3)
    assert campaign.goal_where == [{"property": "category", "op": "eq", "value": "口红"}]


def test_the_overview_lists_spend_recipients_lift_and_roi_and_filters_by_channel_and_period(admin_client, finished):
    from campaigns.results import result_refresh

    result_refresh(campaign_id=finished.pk, now=SEND + datetime.timedelta(days=9))
    overview = reverse("admin:campaigns_campaign_overview")
    page = admin_client.get(overview).content.decode()
    assert "双十一" in page and "¥50.00" in page and "8.00%" in page and "1500.0%" in page
    assert "双十一" not in admin_client.get(overview, {"channel": "email"}).content.decode()
    assert "双十一" not in admin_client.get(overview, {"since": "2026-11-03"}).content.decode()
    assert "双十一" in admin_client.get(overview, {"since": "2026-11-01", "until": "2026-11-02"}).content.decode()
    # a bad date is a clear message, not a 500
    bad = admin_client.get(overview, {"since": "昨天"})
    assert bad.status_code == 200 and "不是日期" in bad.content.decode()
    csv = admin_client.get(overview, {"format": "csv"}).content.decode("utf-8-sig")
    assert "双十一" in csv and "1500.0%" in csv
    assert reverse("admin:campaigns_campaign_overview") in admin_client.get(
        reverse("admin:campaigns_campaign_changelist")).content.decode()


def test_the_overview_shows_the_global_control_groups_lift_over_all_campaigns(admin_client, settings):
    from campaigns.buckets import GLOBAL_CONTROL_SALT, bucket
    from profiles.models import Event
    from tests.factories import ProfileFactory

    # given a 20 % global control group and 60 customers, each outside it ordering, none inside it
    settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT = 20
    people = ProfileFactory.create_batch(60)
    inside = [p for p in people if bucket(GLOBAL_CONTROL_SALT, p.uuid) < 2000]
    outside = [p for p in people if p not in inside]
    assert inside and outside
    Event.objects.bulk_create([Event(profile=p, name="order", occurred_at=SEND + datetime.timedelta(days=1),
                                     amount=1) for p in outside])
    # when the overview is read for that period
    page = admin_client.get(reverse("admin:campaigns_campaign_overview"),
                            {"since": "2026-11-01", "until": "2026-11-30"}).content.decode()
    # then its lift is everyone outside converting against nobody inside: 100 percentage points
    assert "全局对照组" in page and "100.00%" in page
    assert f'<td class="num">{len(inside)}</td>' in page


def test_without_a_global_control_group_the_overview_says_nothing_of_it(admin_client, settings):
    settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT = 0
    page = admin_client.get(reverse("admin:campaigns_campaign_overview")).content.decode()
    assert "全局对照组：" not in page
