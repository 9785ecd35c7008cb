"""Rule tags: saving a rule (validated, versioned, no cycles), refreshing it set-based with
reasons that name the rule version, failures kept on the tag, and the admin around it."""
import datetime
import json

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from profiles import activity
from profiles.models import Profile, ProfileActivity, ProfileTag, Tag, TagCategory, TagKind
from profiles.services.tags import tag_assign, tag_delete, tag_merge, tag_remove, tags_expire
from segments.rule_tags import rule_tag_save, rule_tags_refresh
from segments.tasks import refresh_rule_tags
from tests.factories import ProfileFactory, TagFactory, order

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(datetime.datetime(2026, 11, 28, 10, 0))  # 2026-11-28 in Shanghai
FREQUENT_BUYER = {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}}
SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}
STAFF = Actor.system("test")


def rule_tag(name="高购买频率", slug="frequent-buyer", definition=None, category="behavioural") -> Tag:
    tag = Tag(name=name, slug=slug, kind=TagKind.RULE, category=TagCategory.objects.get(code=category))
    return rule_tag_save(tag=tag, definition=FREQUENT_BUYER if definition is None else definition)


def rows(tag) -> dict[str, tuple[str, str]]:
    """Holder name → (source, reason)."""
    return {row.profile.name: (row.source, row.reason)
            for row in ProfileTag.objects.filter(tag=tag).select_related("profile")}


def buyer(name, *order_days_ago, city="上海"):
    profile = ProfileFactory(name=name, city=city)
    for days in order_days_ago:
        order(profile, days_ago=days, amount="100", now=NOW)
    return profile


# --- refreshing ---------------------------------------------------------------------------

def test_refresh_adds_keeps_and_removes_the_tag_with_reasons_and_timeline_entries():
    tag = rule_tag()
    often = buyer("常客", 1, 5)
    once = buyer("偶尔", 3)
    buyer("很久以前", 40, 45)

    [first] = rule_tags_refresh(now=NOW)
    assert (first.added, first.removed, first.error) == (1, 0, "")
    assert rows(tag) == {"常客": ("rule", "rule v1 matched on 2026-11-28")}

    order(once, days_ago=-1.5, amount="50", now=NOW)  # a day and a half after NOW
    later = NOW + datetime.timedelta(days=2)
    rule_tags_refresh(now=later)
    assert rows(tag) == {"常客": ("rule", "rule v1 matched on 2026-11-28"),  # kept, reason unchanged
                         "偶尔": ("rule", "rule v1 matched on 2026-11-30")}

    month_later = NOW + datetime.timedelta(days=26)  # 常客's order 5 days before NOW leaves the window
    [last] = rule_tags_refresh(now=month_later)
    assert (last.added, last.removed) == (0, 1)
    assert rows(tag) == {"偶尔": ("rule", "rule v1 matched on 2026-11-30")}
    tag.refresh_from_db()
    assert (tag.profile_count, tag.rule_refreshed_at, tag.rule_error) == (1, month_later, "")

    timeline = ProfileActivity.objects.filter(profile=often).order_by("id")
    assert [(a.type, a.params["source"], a.params["reason"]) for a in timeline] == [
        ("tag_added", "rule", "rule v1 matched on 2026-11-28"),
        ("tag_removed", "rule", "rule v1 no longer matched on 2026-12-24"),
    ]
    assert "高购买频率" in timeline[0].summary
    assert activity.tag_reason_display("rule v1 matched on 2026-11-28") in timeline[0].summary


def test_a_changed_rule_bumps_the_version_and_renews_the_members_reasons():
    tag = rule_tag()
    buyer("常客", 1, 2)
    rule_tags_refresh(now=NOW)
    assert rule_tag_save(tag=tag, definition=FREQUENT_BUYER).rule_version == 1  # same rule, same version
    changed = rule_tag_save(tag=tag, definition={**FREQUENT_BUYER, "within": {"days": 60}})
    assert Tag.objects.get(pk=tag.pk).rule_version == changed.rule_version == 2

    later = NOW + datetime.timedelta(days=1)
    [result] = rule_tags_refresh(now=later)
    assert (result.added, result.removed, result.renewed) == (0, 0, 1)
    assert rows(tag) == {"常客": ("rule", "rule v2 matched on 2026-11-29")}
    [again] = rule_tags_refresh(now=later + datetime.timedelta(days=1))
    assert again.renewed == 0 and rows(tag) == {"常客": ("rule", "rule v2 matched on 2026-11-29")}


def test_only_rule_given_tags_are_removed_and_only_active_customers_get_one():
    tag = TagFactory(name="老客", slug="old-hands", kind=TagKind.MANUAL)
    kept = ProfileFactory(name="手工", city="北京")
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk=kept.pk), source="manual", actor=STAFF, reason="门店推荐")
    tag.kind = TagKind.RULE
    rule_tag_save(tag=tag, definition=SHANGHAI)
    ProfileFactory(name="上海客户", city="上海")
    ProfileFactory(name="已删除", city="上海", status="erased")
    rule_tags_refresh(now=NOW)
    assert rows(tag) == {"手工": ("manual", "门店推荐"), "上海客户": ("rule", "rule v1 matched on 2026-11-28")}
    assert Tag.objects.get(pk=tag.pk).profile_count == 2


def test_rule_tags_built_on_rule_tags_refresh_after_them():
    # 上海常客 is created first (lower id) but depends on 高购买频率.
    shanghai_regular = rule_tag(name="上海常客", slug="shanghai-regular", definition=SHANGHAI)
    frequent = rule_tag()
    rule_tag_save(tag=shanghai_regular, definition={"all": [SHANGHAI, {"tag": "frequent-buyer", "op": "has"}]})
    buyer("上海常客甲", 1, 2)
    buyer("北京常客", 1, 2, city="北京")
    buyer("上海偶尔", 3)

    results = rule_tags_refresh(now=NOW)
    assert [r.tag_id for r in results] == [frequent.pk, shanghai_regular.pk]
    assert set(rows(shanghai_regular)) == {"上海常客甲"}

    # Refreshing one tag also refreshes the tags built on it.
    buyer("上海常客乙", 1, 2)
    assert [r.tag_id for r in rule_tags_refresh(tag_ids=[frequent.pk], now=NOW)] == [frequent.pk, shanghai_regular.pk]
    assert set(rows(shanghai_regular)) == {"上海常客甲", "上海常客乙"}


def test_a_failing_rule_is_recorded_on_its_tag_and_the_others_still_refresh():
    broken = rule_tag(name="坏规则", slug="broken", definition=SHANGHAI)
    fine = rule_tag()
    buyer("常客", 1, 2)
    Tag.objects.filter(pk=broken.pk).update(rule_definition={"field": "no_such_field", "op": "eq", "value": 1})

    results = {r.tag_id: r for r in rule_tags_refresh(now=NOW)}
    assert "no_such_field" in results[broken.pk].error and not results[fine.pk].error
    broken.refresh_from_db()
    assert "no_such_field" in broken.rule_error and broken.rule_refreshed_at is None
    assert set(rows(fine)) == {"常客"}

    Tag.objects.filter(pk=broken.pk).update(rule_definition=SHANGHAI)
    rule_tags_refresh(tag_ids=[broken.pk], now=NOW)
    broken.refresh_from_db()
    assert broken.rule_error == "" and broken.rule_refreshed_at == NOW


def test_retired_and_non_rule_tags_are_not_refreshed():
    retired = rule_tag(definition=SHANGHAI)
    Tag.objects.filter(pk=retired.pk).update(is_active=False)
    ProfileFactory(city="上海")
    assert rule_tags_refresh(now=NOW) == []
    assert not ProfileTag.objects.exists()


@pytest.mark.parametrize("customers", [3, 30])
def test_refresh_is_set_based_whatever_the_number_of_customers(customers, django_assert_max_num_queries):
    tag = rule_tag()
    leaving = [buyer(f"老客{i}", 1, 2) for i in range(customers)]
    rule_tags_refresh(now=NOW)
    for i in range(customers):
        buyer(f"新客{i}", 1, 2)
    Profile.objects.filter(pk__in=[p.pk for p in leaving]).update(city="北京")
    rule_tag_save(tag=tag, definition={"all": [FREQUENT_BUYER, SHANGHAI]})  # v2: every kept reason is renewed
    with django_assert_max_num_queries(25):
        [result] = rule_tags_refresh(now=NOW)
    assert (result.added, result.removed) == (customers, customers)


# --- saving -------------------------------------------------------------------------------

def test_an_invalid_rule_is_refused_naming_the_bad_node():
    with pytest.raises(ValidationError) as error:
        rule_tag(definition={"all": [SHANGHAI, {"event": "order", "count": {"op": "gte", "value": -1}}]})
    assert "all[1].count.value" in error.value.messages[0]
    assert not Tag.objects.exists()


def test_only_rule_tags_have_a_rule():
    tag = TagFactory(kind=TagKind.MANUAL)
    with pytest.raises(ValidationError) as error:
        rule_tag_save(tag=tag, definition=SHANGHAI)
    assert error.value.code == "not_a_rule_tag"


def test_a_rule_cannot_refer_to_its_own_tag_directly_or_through_other_rule_tags():
    frequent = rule_tag()
    with pytest.raises(ValidationError) as direct:
        rule_tag_save(tag=frequent, definition={"tag": "frequent-buyer", "op": "has"})
    assert direct.value.code == "rule_cycle" and "高购买频率 → 高购买频率" in direct.value.messages[0]

    regular = rule_tag(name="上海常客", slug="shanghai-regular", definition={"tag": "frequent-buyer", "op": "has"})
    with pytest.raises(ValidationError) as indirect:
        rule_tag_save(tag=frequent, definition={"tags": ["shanghai-regular"], "op": "has_any"})
    assert "高购买频率 → 上海常客 → 高购买频率" in indirect.value.messages[0]

    # "Has any tag in a category" that holds the rule tag itself is a cycle too.
    with pytest.raises(ValidationError):
        rule_tag_save(tag=regular, definition={"tag_category": "behavioural", "op": "has_any"})
    assert rule_tag_save(tag=regular, definition={"tag_category": "interest", "op": "has_any"}).rule_version == 2
    assert Tag.objects.get(pk=frequent.pk).rule_definition == FREQUENT_BUYER


def test_a_tag_used_by_a_rule_cannot_be_deleted():
    vip = TagFactory(name="VIP", slug="vip")
    rule_tag(definition={"all": [FREQUENT_BUYER, {"tag": "vip", "op": "has_not"}]})
    with pytest.raises(ValidationError) as error:
        tag_delete(tag=vip)
    assert "高购买频率" in error.value.messages[0]


# --- by hand ------------------------------------------------------------------------------

def test_rule_tags_cannot_be_given_removed_or_merged_by_hand():
    tag = rule_tag(definition=SHANGHAI)
    profile = ProfileFactory(city="上海")
    one = Profile.objects.filter(pk=profile.pk)
    for source in ("manual", "import", "api"):
        with pytest.raises(ValidationError) as error:
            tag_assign(tag=tag, profiles=one, source=source, actor=STAFF)
        assert error.value.code == "rule_tag_by_hand" and "高购买频率" in error.value.messages[0]
    rule_tags_refresh(now=NOW)
    with pytest.raises(ValidationError):
        tag_remove(tag=tag, profiles=one, source="manual", actor=STAFF)
    with pytest.raises(ValidationError) as merge:
        tag_merge(source=TagFactory(), target=tag, actor=STAFF)
    assert merge.value.code == "rule_tag_merge"
    assert rows(tag) == {profile.name: ("rule", "rule v1 matched on 2026-11-28")}


def test_the_profile_page_refuses_to_tag_by_hand_with_a_message(client, staff_user):
    tag = rule_tag(definition=SHANGHAI)
    profile = ProfileFactory(city="北京")
    client.force_login(staff_user)
    response = client.post(reverse("admin:profiles_profile_tag", args=[profile.pk]), {"tag": tag.pk}, follow=True)
    assert [m.level_tag for m in response.context["messages"] if "高购买频率" in m.message] == ["error"]
    assert not ProfileTag.objects.exists()


def test_expiry_still_applies_to_a_rule_tags_older_manual_rows():
    tag = TagFactory(kind=TagKind.MANUAL)
    profile = ProfileFactory(city="北京")
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk=profile.pk), source="manual", actor=STAFF,
               expires_at=timezone.now() - datetime.timedelta(days=1))
    tag.kind = TagKind.RULE
    rule_tag_save(tag=tag, definition=SHANGHAI)
    assert tags_expire() == 1 and not ProfileTag.objects.exists()


# --- display ------------------------------------------------------------------------------

def test_rule_reasons_are_stored_in_english_and_shown_in_the_readers_language(monkeypatch):
    stored = activity.rule_reason(version=3, date="2026-11-28")
    assert stored == "rule v3 matched on 2026-11-28"
    catalogue = {activity.RULE_MATCHED: "规则 v%(version)s 于 %(date)s 命中"}
    monkeypatch.setattr(activity, "gettext", lambda text: catalogue.get(text, text))
    assert activity.tag_reason_display(stored) == "规则 v3 于 2026-11-28 命中"
    assert activity.tag_reason_display("门店推荐") == "门店推荐"  # typed by staff: as typed


# --- admin --------------------------------------------------------------------------------

def tag_form(**overrides):
    return {"name": "高购买频率", "slug": "frequent-buyer", "category": TagCategory.objects.get(code="behavioural").pk,
            "kind": "rule", "description": "", "colour": "#ff0000", "is_active": "on", "rule_definition": "", **overrides}


def test_admin_saves_a_rule_tag_and_refreshes_it_on_commit(client, staff_user, django_capture_on_commit_callbacks):
    client.force_login(staff_user)
    buyer("常客", 1, 2)
    url = reverse("admin:profiles_tag_add")
    bad = client.post(url, tag_form(rule_definition='{"event": "order", "count": {"op": "most", "value": 2}}'))
    assert bad.status_code == 200 and "count" in bad.context["adminform"].form.errors["rule_definition"][0]
    assert not Tag.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        good = client.post(url, tag_form(rule_definition='{"event": "order", "count": {"op": "gte", "value": 2}, '
                                                         '"within": {"days": 30}}'))
    assert good.status_code == 302
    tag = Tag.objects.get()
    assert (tag.rule_version, tag.profile_count, tag.owner) == (1, 1, staff_user) and tag.rule_refreshed_at
    assert set(rows(tag)) == {"常客"}

    page = client.get(reverse("admin:profiles_tag_change", args=[tag.pk])).text
    assert all(f"field-{name}" in page for name in ("rule_definition", "rule_version", "rule_refreshed_at", "rule_problem"))
    assert "&quot;event&quot;: &quot;order&quot;" in page  # the rule, as readable JSON
    listing = client.get(reverse("admin:profiles_tag_changelist")).text
    assert "v1 · " in listing


def test_admin_refuses_a_cycle_and_ignores_the_rule_field_of_other_kinds(client, staff_user):
    client.force_login(staff_user)
    frequent = rule_tag()
    change = reverse("admin:profiles_tag_change", args=[frequent.pk])
    response = client.post(change, tag_form(rule_definition='{"tag": "frequent-buyer", "op": "has"}'))
    assert response.status_code == 200 and "高购买频率 → 高购买频率" in response.text
    assert Tag.objects.get(pk=frequent.pk).rule_version == 1

    add = reverse("admin:profiles_tag_add")
    manual = tag_form(name="手工", slug="by-hand", kind="manual")
    with_rule = client.post(add, {**manual, "rule_definition": '{"field": "city", "op": "eq", "value": "上海"}'})
    assert with_rule.status_code == 200 and "rule_definition" in with_rule.context["adminform"].form.errors
    assert client.post(add, {**manual, "rule_definition": "{}"}).status_code == 302
    assert Tag.objects.get(slug="by-hand").rule_definition == {}

    # A rule tag turned manual keeps its rule (ignored) for when it turns back.
    assert client.post(change, tag_form(kind="manual", rule_definition=json.dumps(FREQUENT_BUYER))).status_code == 302
    assert Tag.objects.get(pk=frequent.pk).rule_definition == FREQUENT_BUYER


def test_admin_shows_a_failed_refresh_and_refreshes_on_demand(client, staff_user, django_capture_on_commit_callbacks):
    client.force_login(staff_user)
    tag = rule_tag(definition=SHANGHAI)
    ProfileFactory(city="上海")
    Tag.objects.filter(pk=tag.pk).update(rule_error="FieldError: something broke")
    changelist = reverse("admin:profiles_tag_changelist")
    assert "something broke" in client.get(changelist).text
    assert "something broke" in client.get(reverse("admin:profiles_tag_change", args=[tag.pk])).text

    other = TagFactory(kind=TagKind.MANUAL)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist, {"action": "refresh_rules_now", "_selected_action": [tag.pk, other.pk]},
                               follow=True)
    assert response.status_code == 200
    tag.refresh_from_db()
    assert tag.rule_error == "" and tag.profile_count == 1
    nothing = client.post(changelist, {"action": "refresh_rules_now", "_selected_action": [other.pk]}, follow=True)
    assert [m.level_tag for m in nothing.context["messages"]] == ["warning"]


# --- task ---------------------------------------------------------------------------------

def test_the_scheduled_task_refreshes_every_active_rule_tag():
    assert settings.CELERY_BEAT_SCHEDULE["refresh-rule-tags"]["task"] == "segments.tasks.refresh_rule_tags"
    tag = rule_tag(definition=SHANGHAI)
    broken = rule_tag(name="坏规则", slug="broken", definition=SHANGHAI)
    Tag.objects.filter(pk=broken.pk).update(rule_definition={"field": "nope", "op": "eq", "value": 1})
    ProfileFactory(city="上海")
    assert refresh_rule_tags.delay().get() == {"refreshed": 1, "failed": [broken.pk]}
    assert Tag.objects.get(pk=tag.pk).profile_count == 1


def test_a_rule_on_part_of_an_email_is_refused_without_the_permission_to_see_personal_data(client, django_user_model):
    from django.contrib.auth.models import Permission

    # given staff who may manage tags but see emails masked
    user = django_user_model.objects.create_user("tagger", password="pw-for-tests", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_tag", "change_tag", "view_tag"]))
    client.force_login(user)
    # when they save a rule tag matching emails by their start (its customer count would tell)
    response = client.post(reverse("admin:profiles_tag_add"), tag_form(
        rule_definition='{"field": "email", "op": "starts_with", "value": "wang"}'))
    # then the rule is refused and no tag is made; a whole email is fine
    assert response.status_code == 200 and "完整" in response.context["adminform"].form.errors["rule_definition"][0]
    assert not Tag.objects.exists()
    assert client.post(reverse("admin:profiles_tag_add"), tag_form(
        rule_definition='{"field": "email", "op": "eq", "value": "wang@example.com"}')).status_code == 302


def test_a_rule_nested_beyond_reading_is_a_form_error(client, staff_user):
    client.force_login(staff_user)
    deep = '{"all": [' * 3000 + '{"field": "city", "op": "eq", "value": "上海"}' + "]}" * 3000
    response = client.post(reverse("admin:profiles_tag_add"), tag_form(rule_definition=deep))
    assert response.status_code == 200 and "rule_definition" in response.context["adminform"].form.errors
    assert not Tag.objects.exists()
