"""An analyst reads a finished campaign's result in Chinese and turns "clicked but did
not convert" into a segment in one click."""
import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model

from campaigns.models import Delivery
from profiles.models import Event
from segments.models import Segment, SegmentMembership
from tests.campaigns.test_results import SEND, a_campaign
from tests.e2e.conftest import log_in
from tests.factories import ProfileFactory


def test_the_result_page_in_chinese_and_a_segment_of_those_who_clicked_but_did_not_buy(page, live_server):
    # given a finished campaign: 6 customers sent (4 clicked, 1 of them bought), 6 held out (none bought)
    campaign = a_campaign(cost="0.10")
    run = campaign.runs.create(started_at=SEND)
    variant = campaign.variants.get()
    sent, held = ProfileFactory.create_batch(6), ProfileFactory.create_batch(6)
    Delivery.objects.bulk_create(
        [Delivery(run=run, campaign=campaign, variant=variant, destination=campaign.destination, profile_id=p.pk,
                  channel="sms", status="delivered", created_at=SEND, sent_at=SEND, delivered_at=SEND,
                  clicked_at=SEND if i < 4 else None) for i, p in enumerate(sent)]
        + [Delivery(run=run, campaign=campaign, variant=variant, destination=campaign.destination, profile_id=p.pk,
                    channel="sms", status="holdout", created_at=SEND) for p in held])
    Event.objects.create(profile=sent[0], name="order", occurred_at=SEND + datetime.timedelta(days=2),
                         amount=Decimal("199.00"))
    get_user_model().objects.create_superuser("staff", "staff@example.com", "browser-test-pw-1")
    log_in(page, live_server, "staff", "browser-test-pw-1")

    # when the analyst opens the campaign page and follows the link to its result
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    page.click("#open-result")
    # then the comparison reads in Chinese, says the groups are too small to tell, and draws both charts
    comparison = page.locator("#result-comparison")
    assert "转化率" in comparison.inner_text() and "差异不显著" in comparison.inner_text()
    assert "16.67%" in comparison.inner_text()  # 1 of 6
    assert "归因窗口已结束" in page.locator("#result-state").inner_text() or "归因窗口尚未结束" in page.locator(
        "#result-state").inner_text()
    page.wait_for_function("document.querySelectorAll('#chart-cumulative canvas, #chart-funnel canvas').length == 2")

    # when they make the segment of those who clicked but did not convert
    page.click("#segment-clicked-not-converted")
    page.wait_for_url("**/admin/segments/segment/*/change/")
    # then it holds the three who clicked and did not buy
    segment = Segment.objects.get(kind=Segment.Kind.STATIC)
    assert set(SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)) == {
        p.pk for p in sent[1:4]}
    assert "点击未转化" in segment.name
    assert "已生成分群" in page.locator(".messagelist").inner_text()
