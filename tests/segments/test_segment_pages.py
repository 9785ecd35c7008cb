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
