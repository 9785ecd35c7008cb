import pytest
from django.urls import reverse

from cdp.actors import Actor
from profiles.models import (
    InterestMapping,
    Profile,
    ProfileTag,
    Tag,
    TagCategory,
    TagKind,
)
from profiles.services.tags import tag_assign
from tests.factories import ProfileFactory, TagFactory
from tests.profiles.test_admin import profile_form

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:profiles_profile_changelist")


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def holders(tag):
    return set(ProfileTag.objects.filter(tag=tag).values_list("profile__name", flat=True))


def test_bulk_add_to_every_customer_matching_the_filter(admin_client):
    tag = TagFactory(name="上海女性")
    ProfileFactory.create_batch(3, city="上海", gender="female")
    ProfileFactory(city="上海", gender="male", name="男客户")
    # "Select all N customers" on a filtered list posts select_across with the filter in the URL
    response = admin_client.post(f"{CHANGELIST}?gender__exact=female", {
        "action": "add_tag", "tag": tag.pk, "select_across": "1", "index": "0", "_selected_action": ["1"],
        "confirm": "yes",
    }, follow=True)
    assert "3" in response.text
    assert ProfileTag.objects.filter(tag=tag).count() == 3 and "男客户" not in holders(tag)


def test_bulk_remove_from_the_selected_customers(admin_client):
    tag = TagFactory()
    a = ProfileFactory(name="甲")
    ProfileFactory(name="乙")
    tag_assign(tag=tag, profiles=Profile.objects.all(), source="manual", actor=Actor.system("t"))
    admin_client.post(CHANGELIST, {"action": "remove_tag", "tag": tag.pk, "_selected_action": [a.pk], "confirm": "yes"})
    assert holders(tag) == {"乙"}


def test_bulk_action_without_a_tag_says_what_to_do(admin_client):
    profile = ProfileFactory()
    response = admin_client.post(CHANGELIST, {"action": "add_tag", "tag": "", "_selected_action": [profile.pk]}, follow=True)
    assert "请先在操作旁选择一个标签" in response.text


def test_tag_filter_combines_tags_with_and(admin_client):
    vip, sneakers = TagFactory(slug="vip"), TagFactory(slug="sneakers")
    both = ProfileFactory(name="两者")
    ProfileFactory(name="仅VIP")
    tag_assign(tag=vip, profiles=Profile.objects.all(), source="manual", actor=Actor.system("t"))
    tag_assign(tag=sneakers, profiles=Profile.objects.filter(pk=both.pk), source="manual", actor=Actor.system("t"))
    names = lambda response: {p.name for p in response.context["cl"].result_list}  # noqa: E731
    assert names(admin_client.get(CHANGELIST, {"tags": "vip"})) == {"两者", "仅VIP"}
    response = admin_client.get(CHANGELIST, {"tags": "vip,sneakers"})
    assert names(response) == {"两者"}
    assert "?tags=vip" in response.text  # clicking sneakers again takes it off the combination


def test_category_filter_includes_sub_categories(admin_client):
    sports = TagCategory.objects.create(name="运动", parent=TagCategory.objects.get(code="interest"))
    running = TagCategory.objects.create(name="跑步", parent=sports)
    tag = TagFactory(category=running)
    runner = ProfileFactory(name="跑者")
    ProfileFactory(name="其他")
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk=runner.pk), source="manual", actor=Actor.system("t"))
    response = admin_client.get(CHANGELIST, {"tag_category": sports.pk})
    assert [p.name for p in response.context["cl"].result_list] == ["跑者"]


@pytest.mark.parametrize("value", ["99999999999999999999", "-1", "abc"])
def test_an_unknown_category_in_the_address_matches_nobody(admin_client, value):
    ProfileFactory(name="其他")
    response = admin_client.get(CHANGELIST, {"tag_category": value})
    assert response.status_code == 200 and not response.context["cl"].result_list


def test_profile_page_adds_and_removes_a_tag_through_the_services(admin_client, staff_user):
    profile, tag = ProfileFactory(name="王芳"), TagFactory(name="高价值")
    url = reverse("admin:profiles_profile_change", args=[profile.pk])
    data = profile_form(name="王芳", city="上海", province="上海", phone=profile.phone, email=profile.email, gender="female")
    data |= {"profile_tags-TOTAL_FORMS": "1", "profile_tags-0-tag": tag.pk, "profile_tags-0-profile": profile.pk}
    assert admin_client.post(url, data).status_code == 302
    row = ProfileTag.objects.get(profile=profile)
    assert (row.tag, row.source, row.assigned_by) == (tag, "manual", staff_user)
    assert profile.activities.filter(type="tag_added").exists()

    data = profile_form(name="王芳", city="上海", province="上海", phone=profile.phone, email=profile.email, gender="female")
    data |= {
        "profile_tags-TOTAL_FORMS": "1", "profile_tags-INITIAL_FORMS": "1",
        "profile_tags-0-id": row.pk, "profile_tags-0-profile": profile.pk, "profile_tags-0-DELETE": "on",
    }
    assert admin_client.post(url, data).status_code == 302
    assert not ProfileTag.objects.filter(profile=profile).exists()
    assert profile.activities.filter(type="tag_removed").exists()


def test_taxonomy_tree_shows_categories_tags_and_customer_counts(admin_client, django_assert_max_num_queries):
    sports = TagCategory.objects.create(name="运动", parent=TagCategory.objects.get(code="interest"))
    tag = TagFactory(category=sports, name="喜欢运动鞋", slug="sneaker-lover")
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk__in=[ProfileFactory().pk, ProfileFactory().pk]),
               source="manual", actor=Actor.system("t"))
    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse("admin:profiles_tagcategory_changelist"))
    text = response.text
    for root in ("基础标签", "行为标签", "兴趣标签", "价值标签", "运动", "喜欢运动鞋"):
        assert root in text
    assert "?tags=sneaker-lover" in text and ">2</a>" in text


def test_new_tag_gets_a_slug_from_its_chinese_name_and_an_owner(admin_client, staff_user):
    response = admin_client.post(reverse("admin:profiles_tag_add"), {
        "name": "喜欢 运动鞋", "slug": "", "category": TagCategory.objects.get(code="interest").pk,
        "kind": "manual", "description": "", "colour": "#ff0000", "is_active": "on",
    })
    assert response.status_code == 302
    tag = Tag.objects.get()
    assert (tag.slug, tag.owner) == ("喜欢-运动鞋", staff_user)


def test_merge_action_moves_customers_into_the_chosen_tag(admin_client):
    dup, canonical = TagFactory(name="运动鞋爱好者"), TagFactory(name="喜欢运动鞋")
    tag_assign(tag=dup, profiles=Profile.objects.filter(pk=ProfileFactory().pk), source="manual", actor=Actor.system("t"))
    response = admin_client.post(reverse("admin:profiles_tag_changelist"), {
        "action": "merge_tags", "target": canonical.pk, "_selected_action": [dup.pk],
    }, follow=True)
    assert "喜欢运动鞋" in response.text
    dup.refresh_from_db()
    assert dup.merged_into == canonical and ProfileTag.objects.get().tag == canonical


def test_deleting_a_used_tag_is_refused_with_where_it_is_used(admin_client):
    tag = TagFactory(kind=TagKind.INTEREST, name="喜欢运动鞋")
    InterestMapping.objects.create(tag=tag, event_weights={"product_view": 1}, property_values=["sneakers"])
    page = admin_client.get(reverse("admin:profiles_tag_change", args=[tag.pk]))
    assert "product_view" in page.text  # the "where used" list
    response = admin_client.post(reverse("admin:profiles_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert response.status_code == 200  # the confirmation page lists what protects it
    assert Tag.objects.filter(pk=tag.pk).exists()
    assert "product_view" in response.text


def test_interest_mapping_recompute_action_runs_the_job(admin_client, django_capture_on_commit_callbacks):
    tag = TagFactory(kind=TagKind.INTEREST)
    mapping = InterestMapping.objects.create(tag=tag, event_weights={"product_view": 1}, property_values=["sneakers"])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:profiles_interestmapping_changelist"), {
            "action": "recompute_now", "_selected_action": [mapping.pk],
        })
    mapping.refresh_from_db()
    assert mapping.last_run_at is not None


def test_select_all_beyond_the_list_cap_is_counted_exactly_before_tagging(admin_client, settings):
    # given a list that counts only up to 3, and 5 women: one already tagged, one erased
    settings.CDP_ADMIN_COUNT_CAP = 3
    tag = TagFactory(name="高价值")
    women = ProfileFactory.create_batch(5, gender="female")
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk=women[0].pk), source="manual", actor=Actor.system("t"))
    Profile.objects.filter(pk=women[1].pk).update(status="erased")
    action = {"action": "add_tag", "tag": tag.pk, "reason": "双十一 VIP 回访", "select_across": "1", "index": "0",
              "_selected_action": [str(women[2].pk)]}
    url = f"{CHANGELIST}?gender__exact=female"
    # when staff pick "select all" and add the tag, the list says "more than 3", not "3"
    listed = admin_client.get(url).text
    assert "选中全部符合条件的客户（超过 3 个；执行前会统计确切数量）" in listed and "选中所有的 3 个" not in listed
    # then a confirmation page states the exact numbers, and nothing is written yet
    confirmation = admin_client.post(url, action)
    text = confirmation.content.decode()
    assert confirmation.status_code == 200 and 'id="bulk-tag-form"' in text
    assert 'value="双十一 VIP 回访"' in text
    assert f'name="_selected_action" value="{women[2].pk}"' in text  # the admin runs no action without one
    for expected in ('将为 <span class="count">3</span> 位客户添加标签“高价值”', '共选中 <span class="count">5</span> 位客户',
                     '<span class="count">1</span> 位已有此标签', '<span class="count">1</span> 位已删除或已合并'):
        assert expected in text, expected
    assert ProfileTag.objects.filter(tag=tag).count() == 1
    # when staff confirm, then the three are tagged with the reason, and the report says what happened to all five
    done = admin_client.post(url, {**action, "confirm": "yes"}, follow=True).content.decode()
    assert "已为 3 位客户添加标签“高价值”。 1 位已有此标签，未重复添加。 1 位已删除或已合并的客户未处理。" in done
    added = ProfileTag.objects.filter(tag=tag).exclude(profile=women[0])
    assert added.count() == 3 and set(added.values_list("reason", flat=True)) == {"双十一 VIP 回访"}
    # and each customer's timeline gives the reason
    entry = women[2].activities.get(type="tag_added")
    assert entry.params["reason"] == "双十一 VIP 回访" and "双十一 VIP 回访" in str(entry.summary)


def test_bulk_remove_is_confirmed_with_the_number_that_has_the_tag(admin_client):
    tag = TagFactory(name="流失风险")
    holders_, others = ProfileFactory.create_batch(2), ProfileFactory.create_batch(3)
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk__in=[p.pk for p in holders_]), source="manual",
               actor=Actor.system("t"))
    selection = {"action": "remove_tag", "tag": tag.pk, "index": "0",
                 "_selected_action": [p.pk for p in holders_ + others]}
    text = admin_client.post(CHANGELIST, selection).content.decode()
    assert '将从 <span class="count">2</span> 位客户移除标签“流失风险”' in text
    assert '<span class="count">3</span> 位没有此标签' in text and ProfileTag.objects.filter(tag=tag).count() == 2
    done = admin_client.post(CHANGELIST, {**selection, "confirm": "yes"}, follow=True).content.decode()
    assert "已从 2 位客户移除标签“流失风险”。 3 位原本没有此标签。" in done
    assert not ProfileTag.objects.filter(tag=tag).exists()


def test_the_action_bar_has_a_reason_field(admin_client):
    ProfileFactory()
    assert 'name="reason"' in admin_client.get(CHANGELIST).text
