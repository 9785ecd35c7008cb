import pytest
from django.urls import reverse

from segments.models import Segment, SegmentMembership
from segments.services import segment_recompute, segment_save
from segments.admin_pages import MEMBERS_PAGE
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment():
    for i in range(MEMBERS_PAGE + 5):
        ProfileFactory(name=f"客户{i}", city="上海", phone=f"+86138001380{i:02d}")
    segment = segment_save(segment=Segment(name="上海客户", slug="sh"), definition={"field": "city", "op": "eq", "value": "上海"})
    segment_recompute(segment_id=segment.pk)
    return segment


def test_members_are_keyset_paginated_with_masked_phones(client, staff_user, segment, django_assert_max_num_queries):
    client.force_login(staff_user)
    url = reverse("admin:segments_segment_members", args=[segment.pk])
    with django_assert_max_num_queries(12):
        first = client.get(url)
    html = first.content.decode()
    assert html.count('class="member"') == MEMBERS_PAGE and 'href="?before=' in html
    newest = SegmentMembership.objects.filter(segment=segment).order_by("-pk")
    cursor = newest[MEMBERS_PAGE - 1].pk
    second = client.get(url, {"before": cursor}).content.decode()
    assert second.count('class="member"') == 5 and 'href="?before=' not in second


def test_segment_page_shows_size_history_chart_data(client, staff_user, segment):
    segment_recompute(segment_id=segment.pk)
    client.force_login(staff_user)
    html = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert 'id="size-history"' in html and 'id="size-history-data"' in html


def test_the_why_page_speaks_in_labels_and_shows_the_customers_own_values(client, staff_user):
    # given a segment of women who like sneakers and bought outdoor gear by Alipay, and a man
    # who bought twice, shoes with WeChat Pay
    from profiles.models import ProfileTag
    from tests.factories import EventFactory, TagFactory

    tag = TagFactory(name="喜欢运动鞋", slug="sneaker-lover")
    man = ProfileFactory(name="李雷", gender="male", phone="+8613800138111")
    ProfileTag.objects.create(profile=man, tag=TagFactory(name="数码控"), source="manual")
    for _ in range(2):
        EventFactory(profile=man, name="payment", properties={"method": "wechat_pay"})
    segment = segment_save(segment=Segment(name="女性运动鞋", slug="women-sneakers"), definition={"all": [
        {"field": "gender", "op": "eq", "value": "female"},
        {"tag": tag.slug, "op": "has"},
        {"event": "payment", "count": {"op": "gte", "value": 3}, "within": {"days": 30},
         "where": [{"property": "method", "op": "eq", "value": "wechat_pay"}]},
    ]})
    client.force_login(staff_user)
    # when staff ask why he is not a member
    html = client.get(reverse("admin:segments_segment_why", args=[segment.pk]), {"profile": "13800138111"}).text
    # then conditions name labels, not codes, each with his own value
    for expected in ("性别 = 女", "（此客户：男）", "有标签 喜欢运动鞋", "（此客户没有这些标签）",
                     "[支付方式 = 微信支付]", "（此客户：2 次）"):
        assert expected in html
    for raw in ("= female", "sneaker-lover", "wechat_pay"):
        assert raw not in html
