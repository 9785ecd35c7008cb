import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cdp.actors import Actor
from profiles.models import (
    InterestMapping,
    Profile,
    ProfileActivity,
    ProfileTag,
    TagCategory,
    TagKind,
)
from profiles.selectors import TAG_USAGE_FINDERS, TagUsage, tag_tree
from profiles.services.tags import (
    tag_assign,
    tag_delete,
    tag_merge,
    tag_remove,
    tag_retire,
    tags_expire,
)
from tests.factories import ProfileFactory, TagFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def tags_of(profile):
    return set(ProfileTag.objects.filter(profile=profile).values_list("tag__slug", flat=True))


def timeline(profile):
    return list(ProfileActivity.objects.filter(profile=profile).order_by("id").values_list("type", "params__tag"))


def test_the_four_roots_are_seeded():
    roots = TagCategory.objects.filter(parent=None, code__isnull=False)
    assert sorted(roots.values_list("code", flat=True)) == ["basic", "behavioural", "interest", "value"]


def test_assign_to_a_filtered_selection_is_one_set_based_statement(django_assert_max_num_queries):
    tag = TagFactory(slug="sneaker-lover")
    shanghai = ProfileFactory.create_batch(30, city="上海")
    beijing = ProfileFactory(city="北京")
    with django_assert_max_num_queries(8):  # however many customers match
        added = tag_assign(tag=tag, profiles=Profile.objects.filter(city="上海"), source="manual", actor=SYSTEM,
                           reason="campaign list")
    assert added == 30
    assert all(tags_of(p) == {"sneaker-lover"} for p in shanghai) and tags_of(beijing) == set()
    assert timeline(shanghai[0]) == [("tag_added", "sneaker-lover")]
    tag.refresh_from_db()
    assert tag.profile_count == 30


def test_assigning_again_changes_nothing_and_writes_no_history():
    tag, profile = TagFactory(), ProfileFactory()
    tag_assign(tag=tag, profiles=Profile.objects.all(), source="manual", actor=SYSTEM)
    assert tag_assign(tag=tag, profiles=Profile.objects.all(), source="manual", actor=SYSTEM) == 0
    assert len(timeline(profile)) == 1


def test_assignment_keeps_who_when_source_weight_and_reason(staff_user):
    tag, profile = TagFactory(), ProfileFactory()
    tag_assign(tag=tag, profiles=Profile.objects.all(), source="import", actor=Actor.staff(staff_user),
               reason="会员等级=金卡", weight=0.8)
    row = ProfileTag.objects.get()
    assert (row.source, row.assigned_by, row.weight, row.reason) == ("import", staff_user, 0.8, "会员等级=金卡")
    entry = profile.activities.get()
    assert entry.actor_user == staff_user and "会员等级=金卡" in entry.summary


def test_merged_and_erased_customers_are_not_tagged():
    tag = TagFactory()
    ProfileFactory(status="erased")
    assert tag_assign(tag=tag, profiles=Profile.objects.all(), source="manual", actor=SYSTEM) == 0


def test_remove_takes_the_tag_off_and_says_so_on_the_timeline():
    tag = TagFactory(slug="vip")
    keep, drop = ProfileFactory(city="北京"), ProfileFactory(city="上海")
    tag_assign(tag=tag, profiles=Profile.objects.all(), source="manual", actor=SYSTEM)
    assert tag_remove(tag=tag, profiles=Profile.objects.filter(city="上海"), source="manual", actor=SYSTEM) == 1
    assert tags_of(keep) == {"vip"} and tags_of(drop) == set()
    assert timeline(drop) == [("tag_added", "vip"), ("tag_removed", "vip")]
    assert timeline(keep) == [("tag_added", "vip")]


def test_a_retired_tag_cannot_be_assigned_but_keeps_its_customers():
    tag, profile = TagFactory(), ProfileFactory()
    tag_assign(tag=tag, profiles=Profile.objects.all(), source="manual", actor=SYSTEM)
    tag_retire(tag=tag)
    assert tags_of(profile) == {tag.slug}
    with pytest.raises(ValidationError) as error:
        tag_assign(tag=tag, profiles=Profile.objects.all(), source="manual", actor=SYSTEM)
    assert error.value.code == "tag_retired"


def test_merge_leaves_each_customer_with_one_tag_and_history_says_so():
    duplicate, canonical = TagFactory(slug="sneakers"), TagFactory(slug="sneaker-lover")
    only_dup, both, only_canon = ProfileFactory(), ProfileFactory(), ProfileFactory()
    tag_assign(tag=duplicate, profiles=Profile.objects.filter(pk__in=[only_dup.pk, both.pk]), source="manual", actor=SYSTEM)
    tag_assign(tag=canonical, profiles=Profile.objects.filter(pk__in=[both.pk, only_canon.pk]), source="manual", actor=SYSTEM)

    moved = tag_merge(source=duplicate, target=canonical, actor=SYSTEM)

    assert moved == 1
    assert tags_of(only_dup) == tags_of(both) == tags_of(only_canon) == {"sneaker-lover"}
    assert timeline(only_dup)[-2:] == [("tag_removed", "sneakers"), ("tag_added", "sneaker-lover")]
    assert timeline(both)[-1] == ("tag_removed", "sneakers")
    duplicate.refresh_from_db(), canonical.refresh_from_db()
    assert (duplicate.is_active, duplicate.merged_into, duplicate.profile_count) == (False, canonical, 0)
    assert canonical.profile_count == 3


def test_merge_into_itself_is_refused():
    tag = TagFactory()
    with pytest.raises(ValidationError):
        tag_merge(source=tag, target=tag, actor=SYSTEM)


def test_deleting_a_tag_in_use_is_refused_with_where_it_is_used():
    tag = TagFactory(kind=TagKind.INTEREST, name="喜欢运动鞋")
    InterestMapping.objects.create(tag=tag, event_weights={"product_view": 1}, property_values=["sneakers"])
    with pytest.raises(ValidationError) as error:
        tag_delete(tag=tag)
    assert error.value.code == "tag_in_use" and "product_view" in error.value.messages[0]


def test_usages_registered_by_higher_apps_block_deletion(monkeypatch):
    tag = TagFactory()
    monkeypatch.setattr("profiles.selectors.TAG_USAGE_FINDERS", [lambda t: [TagUsage("人群", "上海女性")]])
    with pytest.raises(ValidationError) as error:
        tag_delete(tag=tag)
    assert "上海女性" in error.value.messages[0]
    assert not any(f.__name__ == "<lambda>" for f in TAG_USAGE_FINDERS)  # the real registry is untouched


def test_an_unused_tag_can_be_deleted():
    tag = TagFactory()
    tag_delete(tag=tag)
    assert not type(tag).objects.filter(pk=tag.pk).exists()


def test_expired_assignments_are_removed():
    import datetime

    from django.utils import timezone

    tag, profile = TagFactory(), ProfileFactory()
    tag_assign(tag=tag, profiles=Profile.objects.all(), source="manual", actor=SYSTEM,
               expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert tags_expire() == 1
    assert tags_of(profile) == set()


def test_categories_form_a_tree_without_cycles():
    interest = TagCategory.objects.get(code="interest")
    sports = TagCategory.objects.create(name="运动", parent=interest)
    shoes = TagCategory.objects.create(name="鞋类", parent=sports)
    assert str(shoes).endswith("运动 › 鞋类")
    sports.parent = shoes
    with pytest.raises(ValidationError):
        sports.full_clean()
    interest.parent = sports
    with pytest.raises(ValidationError):
        interest.full_clean()


def test_sibling_categories_have_distinct_names():
    interest = TagCategory.objects.get(code="interest")
    TagCategory.objects.create(name="运动", parent=interest)
    with pytest.raises(IntegrityError), transaction.atomic():
        TagCategory.objects.create(name="运动", parent=interest)


def test_tree_lists_roots_first_with_children_and_tag_counts():
    interest = TagCategory.objects.get(code="interest")
    sports = TagCategory.objects.create(name="运动", parent=interest)
    TagFactory(category=sports)
    tree = tag_tree()
    assert [n["category"].code for n in tree if n["depth"] == 0] == ["basic", "behavioural", "interest", "value"]
    node = next(n for n in tree if n["category"] == sports)
    assert (node["depth"], node["tag_count"]) == (1, 1)


def test_deleting_a_customer_or_a_tag_takes_their_tag_rows_and_timeline_with_it():
    """Tag and activity rows carry no database foreign key (bulk speed): the ORM cascades."""
    tag, kept_tag = TagFactory(), TagFactory()
    gone, kept = ProfileFactory(), ProfileFactory()
    for t in (tag, kept_tag):
        tag_assign(tag=t, profiles=Profile.objects.all(), source="manual", actor=SYSTEM)
    gone.delete()
    assert not ProfileTag.objects.filter(profile_id=gone.pk).exists()
    assert not ProfileActivity.objects.filter(profile_id=gone.pk).exists()
    tag_delete(tag=tag)
    assert list(ProfileTag.objects.values_list("profile_id", "tag_id")) == [(kept.pk, kept_tag.pk)]


@pytest.mark.parametrize("status", ["erased", "merged"])
def test_tagging_one_erased_or_merged_customer_is_refused_not_silently_skipped(status):
    # given a customer who was erased, or merged into another
    from profiles.services.tags import profile_tag_add

    survivor, gone = ProfileFactory(), ProfileFactory()
    gone.status, gone.merged_into = status, survivor if status == "merged" else None
    gone.save()
    # when staff give them a tag, then it is refused with a code and no tag is written
    with pytest.raises(ValidationError) as error:
        profile_tag_add(profile=gone, tag=TagFactory(), source="manual", actor=SYSTEM)
    assert error.value.code == "profile_not_active"
    assert not ProfileTag.objects.filter(profile=gone).exists()
