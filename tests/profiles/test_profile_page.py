import datetime
import random
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from cdp.models import AuditLog
from profiles import activity, services
from profiles.models import Profile, ProfileActivity
from profiles.services.tags import tag_assign
from profiles.timeline import PAGE_SIZE, Cursor, TimelineFilter, profile_timeline
from tests.factories import EventFactory, ProfileFactory, TagFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def marketer_client(client, django_user_model):
    """Staff who may view and edit customers but not see personal data unmasked."""
    user = django_user_model.objects.create_user("marketer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_profile", "change_profile"]))
    client.force_login(user)
    return client


def page_url(profile):
    return reverse("admin:profiles_profile_change", args=[profile.pk])


def customer(**fields):
    return services.profile_create(actor=Actor.system("t"), source="admin", **{
        "name": "王芳", "phone": "13800138000", "email": "zhang.wei@example.com", "city": "上海", **fields,
    })


def test_the_page_shows_who_the_customer_is(admin_client):
    profile = customer(identities=[("crm_id", "CRM-7")], birth_date="1990-01-01")
    EventFactory(profile=profile, name="order", amount=399, properties={"category": "sneakers"})
    text = admin_client.get(page_url(profile)).text
    for expected in ("王芳", "138****8000", "z***@example.com", "CRM-7", "上海", "下单", "运动鞋", "创建客户档案"):
        assert expected in text
    assert "zhang.wei@example.com" not in text  # masked even for staff allowed to reveal it


def populate(profile, events, tags):
    for i in range(events):
        EventFactory(profile=profile, name="order" if i % 3 else "product_view", amount=10,
                     occurred_at=NOW - datetime.timedelta(hours=i), properties={"category": "shoes"})
    for i in range(tags):
        tag_assign(tag=TagFactory(), profiles=Profile.objects.filter(pk=profile.pk), source="manual",
                   actor=Actor.system("t"), weight=0.5)


def test_the_page_runs_the_same_number_of_queries_however_much_history(admin_client):
    from consent.services import do_not_contact_add
    from profiles.models import Recommendation

    small, large = customer(), customer(phone="13900139000", email="b@example.com")
    populate(small, events=2, tags=1)
    populate(large, events=300, tags=12)
    # both with recommendations (labelled from the labels the page read already), the
    # large one with a do-not-contact block too (read once for the card and the consent rows)
    Recommendation.objects.bulk_create([Recommendation(profile=profile, rank=rank, category=category, score=1 / rank,
                                                       reason_code="viewed", reason_category="shoes")
                                        for profile in (small, large)
                                        for rank, category in enumerate(["shoes", "bags", "books"], 1)])
    do_not_contact_add(profile=large, channel="sms", reason="complaint", actor=Actor.system("t"))
    counts = []
    assert admin_client.get(page_url(small)).status_code == 200  # the registries' and popular lists' read, once a while
    for profile in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(page_url(profile)).status_code == 200
        counts.append(len(queries))
    # session, user, customer, timeline, tags, identities, recommendations and recent orders,
    # do-not-contact, consent per purpose, the ledger, segments
    assert counts[0] == counts[1] <= 12, counts


def test_personal_data_is_masked_and_only_permitted_staff_may_reveal_it(marketer_client, staff_user):
    profile = customer()
    text = marketer_client.get(page_url(profile)).text
    assert "138****8000" in text and "z***@example.com" in text
    assert "13800138000" not in text and "zhang.wei@example.com" not in text
    assert 'id="reveal-pii"' not in text
    privacy_officer = Client()
    privacy_officer.force_login(staff_user)
    assert 'id="reveal-pii"' in privacy_officer.get(page_url(profile)).text
    listing = marketer_client.get(reverse("admin:profiles_profile_changelist")).text
    assert "138****8000" in listing and "+8613800138000" not in listing


@pytest.mark.parametrize("fields, shown", [({"phone": "13800138000", "email": ""}, "138****8000"),
                                           ({"phone": "", "email": "zhang.wei@example.com"}, "z***@example.com")])
def test_a_customer_without_a_name_is_named_by_masked_contact_details(marketer_client, fields, shown):
    profile = customer(name="", **fields)
    assert str(profile) == shown
    pages = marketer_client.get(reverse("admin:profiles_profile_changelist")).text + marketer_client.get(page_url(profile)).text
    assert shown in pages and "13800138000" not in pages and "zhang.wei@example.com" not in pages


def test_the_edit_history_tells_a_phone_or_email_changed_without_showing_them(marketer_client):
    profile = customer()
    services.profile_update(profile=profile, actor=Actor.system("t"), phone="13900139000", email="li.na@example.com")
    text = marketer_client.get(page_url(profile)).text
    assert "138****8000 → 139****9000" in text and "z***@example.com → l***@example.com" in text
    assert not any(clear in text for clear in ("13800138000", "13900139000", "zhang.wei@", "li.na@"))


def test_history_recorded_before_masking_is_masked_by_a_migration():
    profile = customer()
    row = ProfileActivity.objects.create(profile=profile, type="edited", actor_kind="system", actor_label="t",
                                         params={"changes": {"phone": ["+8613800138000", "+8613900139000"],
                                                             "city": ["上海", "北京"]}})
    merge = ProfileActivity.objects.create(profile=profile, type="merged", actor_kind="system", actor_label="t",
                                           params={"merged_name": "+8613700137000", "survivor_name": "王芳"})
    import_module("profiles.migrations.0015_mask_edit_history").mask_edit_history(django_apps, None)
    row.refresh_from_db()
    merge.refresh_from_db()
    assert row.params["changes"] == {"phone": ["138****8000", "139****9000"], "city": ["上海", "北京"]}
    assert (merge.params["merged_name"], merge.params["survivor_name"]) == ("137****7000", "王芳")


def test_revealing_needs_the_permission(marketer_client):
    profile = customer()
    response = marketer_client.post(reverse("admin:profiles_profile_reveal", args=[profile.pk]))
    assert response.status_code == 403
    assert not AuditLog.objects.exists()


def test_revealing_is_audited(admin_client, staff_user):
    profile = customer()
    response = admin_client.post(reverse("admin:profiles_profile_reveal", args=[profile.pk]))
    assert response.json()["phone"] == "+8613800138000"
    entry = AuditLog.objects.get()
    assert (entry.action, entry.actor_user, entry.target) == ("reveal_personal_data", staff_user, str(profile.uuid))


def test_staff_add_notes_to_the_timeline(admin_client, staff_user):
    profile = customer()
    admin_client.post(reverse("admin:profiles_profile_note", args=[profile.pk]), {"text": "电话回访，客户满意"})
    note = profile.activities.get(type="note")
    assert note.actor_user == staff_user and "电话回访" in admin_client.get(page_url(profile)).text


def test_an_empty_note_is_refused_with_a_message(admin_client):
    profile = customer()
    response = admin_client.post(reverse("admin:profiles_profile_note", args=[profile.pk]), {"text": " "}, follow=True)
    assert "备注不能为空" in response.text
    assert not profile.activities.filter(type="note").exists()


def test_edit_opens_the_change_form(admin_client):
    profile = customer()
    response = admin_client.get(page_url(profile) + "?edit=1")
    assert response.status_code == 200 and 'id="profile_form"' in response.text


def test_a_merged_profile_redirects_to_its_survivor(admin_client):
    survivor, tombstone = customer(), ProfileFactory()
    Profile.objects.filter(pk=tombstone.pk).update(status="merged", merged_into=survivor)
    response = admin_client.get(page_url(tombstone))
    assert response.status_code == 302 and response["Location"] == page_url(survivor)


def test_timeline_filter_by_type_and_date(admin_client):
    profile = customer()
    EventFactory(profile=profile, name="order", amount=1, occurred_at=NOW - datetime.timedelta(days=1))
    EventFactory(profile=profile, name="page_view", occurred_at=NOW - datetime.timedelta(days=1))
    EventFactory(profile=profile, name="order", amount=2, occurred_at=NOW - datetime.timedelta(days=40))
    entries, _ = profile_timeline(profile, filters=TimelineFilter(types=["e:order"]))
    assert [e.type for e in entries] == ["order", "order"]
    since = NOW - datetime.timedelta(days=10)
    entries, _ = profile_timeline(profile, filters=TimelineFilter(types=["e:order"], since=since))
    assert [str(e.amount) for e in entries] == ["1.00"]
    response = admin_client.get(page_url(profile), {"type": "a:created"})
    assert [e.type for e in response.context["entries"]] == ["created"]


@pytest.mark.parametrize("day", ["2026-02-30", "2026-13-01", "yesterday"])
def test_an_impossible_date_in_the_timeline_filter_is_ignored(admin_client, day):
    profile = customer()
    for url in (page_url(profile), reverse("admin:profiles_profile_timeline", args=[profile.pk])):
        assert admin_client.get(url, {"since": day, "until": day}).status_code == 200


def test_timeline_pages_through_both_sources_in_order_without_gaps_or_repeats():
    profile = ProfileFactory()
    rng = random.Random(5)
    instants = [NOW - datetime.timedelta(minutes=rng.randint(0, 40)) for _ in range(30)]  # many ties
    for when in instants[:18]:
        EventFactory(profile=profile, occurred_at=when)
    for when in instants[18:]:
        activity.note_added(profile=profile, text="x", actor=Actor.system("t"))
        ProfileActivity.objects.filter(pk=profile.activities.latest("id").pk).update(occurred_at=when)
    seen, after = [], None
    while True:
        page, after = profile_timeline(profile, after=after, limit=7)
        seen += page
        if after is None:
            break
        after = Cursor.parse(str(after))  # as the browser sends it back
    keys = [(e.occurred_at, e.kind == "e", e.id) for e in seen]
    assert len(seen) == 30 and len(set((e.kind, e.id) for e in seen)) == 30
    assert keys == sorted(keys, reverse=True)


def test_load_more_returns_the_next_page(admin_client):
    profile = customer()
    for i in range(PAGE_SIZE + 10):
        EventFactory(profile=profile, occurred_at=NOW - datetime.timedelta(minutes=i))
    first = admin_client.get(page_url(profile))
    assert len(first.context["entries"]) == PAGE_SIZE
    more = admin_client.get(reverse("admin:profiles_profile_timeline", args=[profile.pk]),
                            {"after": str(first.context["next_cursor"])})
    assert len(more.context["entries"]) == 11  # the events and "created", less the first page
    assert more.context["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["", "garbage", "2026-01-01|x|1", "not-a-date|e|1", "2026-01-01T00:00:00|e|NaN"])
def test_a_malformed_cursor_shows_the_first_page(admin_client, cursor):
    profile = customer()
    response = admin_client.get(reverse("admin:profiles_profile_timeline", args=[profile.pk]), {"after": cursor})
    assert response.status_code == 200


def test_interest_radar_appears_with_weighted_interests(admin_client):
    profile = customer()
    tag = TagFactory(kind="interest", name="喜欢运动鞋")
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk=profile.pk), source="interest", actor=Actor.system("t"),
               weight=0.8)
    text = admin_client.get(page_url(profile)).text
    assert 'id="interest-radar"' in text and "喜欢运动鞋" in text


def test_staff_tag_and_untag_from_the_page(admin_client, staff_user):
    profile, tag = customer(), TagFactory(name="高价值")
    url = reverse("admin:profiles_profile_tag", args=[profile.pk])
    admin_client.post(url, {"tag": tag.pk, "reason": "年消费超过 5000 元"})
    row = profile.profile_tags.get()
    assert (row.tag, row.assigned_by, row.reason) == (tag, staff_user, "年消费超过 5000 元")
    assert "年消费超过 5000 元" in admin_client.get(page_url(profile)).text
    admin_client.post(url, {"tag": tag.pk, "remove": "1"})
    assert not profile.profile_tags.exists()
    assert list(profile.activities.filter(type__startswith="tag").values_list("type", flat=True).order_by("id")) == [
        "tag_added", "tag_removed",
    ]


@pytest.mark.parametrize("tag", ["", "x", "-1", "99999999999999999999"])
def test_tagging_from_the_page_without_a_tag_says_so(admin_client, tag):
    profile = customer()
    response = admin_client.post(reverse("admin:profiles_profile_tag", args=[profile.pk]), {"tag": tag}, follow=True)
    assert "请先选择一个标签" in response.text


def test_marketers_without_change_permission_cannot_tag(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_profile"))
    client.force_login(viewer)
    profile, tag = customer(), TagFactory()
    response = client.post(reverse("admin:profiles_profile_tag", args=[profile.pk]), {"tag": tag.pk})
    assert response.status_code == 403 and not profile.profile_tags.exists()


def test_higher_apps_plug_sections_into_the_page(admin_client, monkeypatch, tmp_path, settings):
    from profiles.selectors import ProfileSection

    (tmp_path / "section.html").write_text('<section class="card" id="segments">{{ section.title }}</section>')
    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [*engine["DIRS"], tmp_path]}]
    monkeypatch.setattr("profiles.selectors.PROFILE_SECTIONS", [lambda profile, request: ProfileSection(
        "section.html", {"title": f"人群：{profile.name}"})])
    assert "人群：王芳" in admin_client.get(page_url(customer())).text


def test_the_edit_form_masks_personal_data_for_staff_without_the_permission(marketer_client):
    profile = customer()
    response = marketer_client.get(page_url(profile) + "?edit=1")
    assert "138****8000" in response.text and "13800138000" not in response.text
    # and saving the rest of the form leaves the phone alone
    data = {"name": "王芳芳", "gender": "unknown", "country": "CN", "province": "", "city": "上海", "occupation": "",
            "traits": "{}", "birth_date": "", "identities-TOTAL_FORMS": "0", "identities-INITIAL_FORMS": "0",
            "profile_tags-TOTAL_FORMS": "0", "profile_tags-INITIAL_FORMS": "0"}
    assert marketer_client.post(page_url(profile) + "?edit=1", data).status_code == 302
    profile.refresh_from_db()
    assert (profile.name, profile.phone) == ("王芳芳", "+8613800138000")


def test_opening_the_edit_form_with_the_permission_is_audited(admin_client):
    profile = customer()
    admin_client.get(page_url(profile) + "?edit=1")
    assert AuditLog.objects.get().details["via"] == "edit form"


def erased_customer():
    profile = customer()
    Profile.objects.filter(pk=profile.pk).update(status="erased", name="", phone="", email="")
    profile.refresh_from_db()
    return profile


def test_an_erased_customer_shows_a_banner_and_offers_no_changes(admin_client):
    # given an erased customer
    profile = erased_customer()
    # when staff open the page
    text = admin_client.get(page_url(profile)).text
    # then a banner says so, and nothing offers to edit, tag, note or record consent
    assert 'id="profile-status-banner"' in text and "已删除" in text
    for offered in ('id="edit-profile"', 'id="add-tag-form"', 'id="note-form"', "consent-grant", "consent-withdraw",
                    "记录同意"):
        assert offered not in text, offered


def test_writes_on_an_erased_customer_say_they_failed_and_write_nothing(admin_client):
    # given an erased customer and a tag
    profile, tag = erased_customer(), TagFactory(name="高价值")
    # when staff post a tag and a note to it (an old tab, a crafted request)
    tagged = admin_client.post(reverse("admin:profiles_profile_tag", args=[profile.pk]), {"tag": tag.pk}, follow=True)
    noted = admin_client.post(reverse("admin:profiles_profile_note", args=[profile.pk]), {"text": "回访"}, follow=True)
    # then neither claims success, both say why, and nothing is written
    for response in (tagged, noted):
        text = response.text
        assert "已添加" not in text and "该客户已删除" in text
    assert not profile.profile_tags.exists()
    assert not ProfileActivity.objects.filter(profile=profile, type="note").exists()


def test_the_edit_form_of_an_erased_customer_is_read_only(admin_client):
    profile = erased_customer()
    response = admin_client.get(page_url(profile) + "?edit=1")
    assert response.status_code == 200 and 'name="_save"' not in response.text
    response = admin_client.post(page_url(profile), {"name": "复活"})
    assert response.status_code == 403 and Profile.objects.get(pk=profile.pk).name == ""


def test_a_merged_customer_redirects_to_its_survivor_saying_so(admin_client):
    survivor, tombstone = customer(), ProfileFactory(name="李四")
    Profile.objects.filter(pk=tombstone.pk).update(status="merged", merged_into=survivor)
    text = admin_client.get(page_url(tombstone), follow=True).text
    assert "李四" in text and "已合并" in text


def test_money_is_grouped_by_thousands_on_the_page_and_the_timeline(admin_client):
    # given a customer who spent ¥24,934 with one large order
    profile = customer()
    Profile.objects.filter(pk=profile.pk).update(total_spent=24934, order_count=3)
    EventFactory(profile=profile, name="order", amount=12345.5)
    # when staff open the page (in Chinese, where Django itself groups nothing)
    text = admin_client.get(page_url(profile)).text
    # then both amounts read with thousands separators
    assert "¥24,934.00" in text and "¥12,345.50" in text
    assert "¥24934" not in text and "¥12345" not in text


def test_the_withdraw_button_opens_a_form_titled_withdraw_not_record(admin_client):
    # given a customer; when staff follow "withdraw" for e-mail marketing
    profile = customer()
    url = reverse("admin:consent_consentrecord_record", args=[profile.uuid])
    text = admin_client.get(url, {"purpose": "email_marketing", "status": "withdrawn"}).text
    # then the page and its button say "withdraw", not "record consent"
    assert "撤回 王芳 的同意" in text and 'value="撤回同意"' in text
    assert "记录同意" not in text.split("<title>")[1].split("</title>")[0]
    # and a grant still reads as recording consent
    assert "为 王芳 记录同意" in admin_client.get(url, {"status": "granted"}).text


def test_consent_forms_of_an_erased_customer_say_why_instead_of_opening(admin_client):
    profile = erased_customer()
    for name in ("admin:consent_consentrecord_record", "admin:consent_donotcontact_add_for"):
        response = admin_client.get(reverse(name, args=[profile.uuid]), follow=True)
        assert "该客户已删除" in response.text and 'id="consent-form"' not in response.text


def test_the_radar_has_every_interest_axis_of_the_taxonomy_with_the_customers_weights(admin_client):
    # given four interests in the taxonomy (one retired, one manual tag that is no interest)
    # and a customer who holds one of them, weighted 0.8
    profile = customer()
    sneakers = TagFactory(kind="interest", name="喜欢运动鞋")
    TagFactory(kind="interest", name="护肤控")
    TagFactory(kind="interest", name="日本旅行爱好者")
    TagFactory(kind="interest", name="已停用兴趣", is_active=False)
    TagFactory(kind="manual", name="高价值")
    tag_assign(tag=sneakers, profiles=Profile.objects.filter(pk=profile.pk), source="interest",
               actor=Actor.system("t"), weight=0.8)
    # when staff open the page
    response = admin_client.get(page_url(profile))
    # then the radar has the three active interest axes with the customer's weight on each
    axes = dict(zip(response.context["interests"]["names"], response.context["interests"]["weights"]))
    assert axes == {"喜欢运动鞋": 0.8, "护肤控": 0, "日本旅行爱好者": 0}
    # and the weights are written out beside it
    assert '<td class="weight">0.80</td>' in response.text and '<td class="weight">0.00</td>' in response.text


def test_the_radar_shows_for_a_customer_without_interests_when_the_taxonomy_has_some(admin_client):
    profile = customer()
    TagFactory(kind="interest", name="喜欢运动鞋")
    response = admin_client.get(page_url(profile))
    assert 'id="interest-radar"' in response.text and response.context["interests"]["weights"] == [0]


def test_the_edit_form_of_a_merged_customer_is_read_only_and_links_to_the_survivor(admin_client):
    survivor, tombstone = customer(), ProfileFactory(name="李四")
    Profile.objects.filter(pk=tombstone.pk).update(status="merged", merged_into=survivor)
    text = admin_client.get(page_url(tombstone) + "?edit=1").text
    assert 'id="profile-status-banner"' in text and "已合并" in text and f'href="{page_url(survivor)}"' in text
    assert 'name="_save"' not in text
