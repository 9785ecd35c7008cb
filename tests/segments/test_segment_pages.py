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


# --- customers are masked on every page that lists them; reveals are audited --------------------

def test_members_page_masks_phones_for_superusers_too_and_offers_the_audited_reveal(client, staff_user, segment):
    # given a superuser, who may see personal data
    client.force_login(staff_user)
    # when they open the members page
    html = client.get(reverse("admin:segments_segment_members", args=[segment.pk])).text
    # then every phone is masked and each row has a reveal button posting to the audited reveal
    assert "+86138001380" not in html and "13800138000" not in html and "138****80" in html
    assert html.count('class="button reveal-pii"') == MEMBERS_PAGE
    some = SegmentMembership.objects.filter(segment=segment).order_by("-pk").first().profile_id
    assert reverse("admin:profiles_profile_reveal", args=[some]) in html


def test_members_page_offers_no_reveal_without_the_permission(client, django_user_model, segment):
    from django.contrib.auth.models import Group

    analyst = django_user_model.objects.create_user("analyst", password="pw-for-tests", is_staff=True)
    analyst.groups.add(Group.objects.get(name="分析师 analyst"))
    client.force_login(analyst)
    html = client.get(reverse("admin:segments_segment_members", args=[segment.pk])).text
    assert "138****80" in html and "reveal-pii" not in html


def test_the_why_page_shows_the_customers_phone_masked(client, staff_user):
    # given a segment on a whole phone number and a customer who does not have it
    ProfileFactory(name="李雷", phone="+8613800138111", email="li.lei@example.com")
    segment = segment_save(segment=Segment(name="某号码", slug="one-phone"), definition={"any": [
        {"field": "phone", "op": "eq", "value": "+8613900000000"},
        {"field": "email", "op": "eq", "value": "someone@example.com"},
    ]})
    client.force_login(staff_user)
    # when staff ask why he is not a member
    html = client.get(reverse("admin:segments_segment_why", args=[segment.pk]), {"profile": "李雷"}).text
    # then his own phone and email are shown masked, as everywhere
    assert "+8613800138111" not in html and "li.lei@example.com" not in html
    assert "138****8111" in html and "l***@example.com" in html


ADD_FORM = {"description": "", "kind": "dynamic", "refresh_every_minutes": "",
            "definition": '{"field": "city", "op": "eq", "value": "上海"}',
            "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0"}


def test_a_segment_named_in_chinese_gets_a_pinyin_slug_it_may_change(client, staff_user):
    client.force_login(staff_user)
    url = reverse("admin:segments_segment_add")
    # given the add form: the slug is optional and says it is made from the name
    form = client.get(url).text
    assert '<label for="id_slug">' in form and "拼音" in form
    # when two segments named in Chinese are saved without a slug, and one with its own
    for slug in ("", "", "my-own"):
        assert client.post(url, {**ADD_FORM, "name": "上海女性运动鞋", "slug": slug}).status_code == 302
    # then each gets a unique slug in pinyin, and the typed one is kept
    assert sorted(Segment.objects.values_list("slug", flat=True)) == [
        "my-own", "shang-hai-nv-xing-yun-dong-xie", "shang-hai-nv-xing-yun-dong-xie-2"]
    # and the form suggests the next one as the name is typed
    suggestion = client.get(reverse("admin:segments_segment_slug"), {"name": "上海女性运动鞋"}).json()
    assert suggestion == {"slug": "shang-hai-nv-xing-yun-dong-xie-3"}


def test_a_name_with_nothing_to_spell_gets_a_short_id(client, staff_user):
    client.force_login(staff_user)
    assert client.post(reverse("admin:segments_segment_add"), {**ADD_FORM, "name": "🎯", "slug": ""}).status_code == 302
    assert Segment.objects.get().slug.startswith("segment-")


def test_a_list_segment_gets_a_slug_from_its_name(client, staff_user):
    ProfileFactory(phone="+8613800138000")
    client.force_login(staff_user)
    client.post(reverse("admin:segments_segment_from_list"), {"name": "门店会员", "slug": "", "lines": "13800138000"})
    assert Segment.objects.get().slug == "men-dian-hui-yuan"


def test_a_segment_still_calculating_says_so_instead_of_showing_zero(client, staff_user):
    # given a segment saved a moment ago whose calculation the worker has not finished
    for i in range(3):
        ProfileFactory(city="上海", phone=f"+861380013810{i}")
    segment = segment_save(segment=Segment(name="上海客户", slug="sh"), definition={"field": "city", "op": "eq", "value": "上海"})
    client.force_login(staff_user)
    # when staff look at it and at the list
    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).text
    listed = client.get(reverse("admin:segments_segment_changelist")).text
    status = client.get(reverse("admin:segments_segment_status", args=[segment.pk])).json()
    # then both say it is being calculated, the page with its progress, not "0"
    assert 'id="segment-calculating"' in page and "计算中" in page and "<progress" in page
    assert "计算中…" in listed and 'class="field-members_listed">0<' not in listed
    assert status["calculating"] is True and 0 <= status["progress"] <= 0.95
    # when the worker is done, the count shows
    segment_recompute(segment_id=segment.pk)
    assert client.get(reverse("admin:segments_segment_status", args=[segment.pk])).json()["calculating"] is False
    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).text
    assert 'id="segment-calculating"' not in page
    assert 'class="field-members_listed">3<' in client.get(reverse("admin:segments_segment_changelist")).text
