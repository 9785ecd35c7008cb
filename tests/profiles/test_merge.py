import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from profiles import services
from profiles.models import Event, Identity, Profile, ProfileActivity, ProfileMerge, ProfileTag
from profiles.services import merge as merge_module
from profiles.services.merge import (
    MergeHook,
    identities_resolve,
    profiles_merge,
    profiles_unmerge,
    survivor_of,
)
from profiles.services.tags import tag_assign
from tests.factories import EventFactory, TagFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def customer(days_old=0, **fields):
    profile = services.profile_create(actor=SYSTEM, source="admin", **fields)
    Profile.objects.filter(pk=profile.pk).update(created_at=timezone.now() - datetime.timedelta(days=days_old))
    profile.refresh_from_db()
    return profile


def snapshot(*profiles):
    """Everything that belongs to each profile, to compare before and after."""
    return {
        p.pk: {
            "events": set(Event.objects.filter(profile=p).values_list("pk", flat=True)),
            "identities": set(Identity.objects.filter(profile=p).values_list("kind", "value")),
            "tags": set(ProfileTag.objects.filter(profile=p).values_list("tag__slug", "source", "reason")),
            "activities": set(ProfileActivity.objects.filter(profile=p).exclude(type__in=["merged", "unmerged"]).values_list("pk", flat=True)),
            "fields": Profile.objects.filter(pk=p.pk).values(*merge_module.NON_EMPTY_FIELDS, *merge_module.MOST_RECENT_FIELDS, "gender", "traits", "status", "merged_into").get(),
        }
        for p in profiles
    }


@pytest.fixture
def pair():
    old = customer(days_old=30, name="王芳", phone="13800138000", city="北京", identities=[("crm_id", "C-1")])
    new = customer(days_old=1, name="", email="wang@example.com", city="上海", gender="female",
                   identities=[("wechat_openid", "oAbc")])
    shared, only_new = TagFactory(slug="vip"), TagFactory(slug="sneakers")
    tag_assign(tag=shared, profiles=Profile.objects.filter(pk__in=[old.pk, new.pk]), source="manual", actor=SYSTEM)
    tag_assign(tag=only_new, profiles=Profile.objects.filter(pk=new.pk), source="manual", actor=SYSTEM, reason="r")
    EventFactory.create_batch(3, profile=old)
    EventFactory.create_batch(4, profile=new, name="order", amount=100)
    return old, new


def test_the_older_profile_survives(pair):
    old, new = pair
    assert survivor_of(new, old) == (old, new)


def test_merge_moves_everything_and_loses_nothing(pair):
    old, new = pair
    before = snapshot(old, new)
    profiles_merge(survivor=old, merged=new, actor=SYSTEM)
    after = snapshot(old, new)
    for kind in ("events", "identities", "activities"):
        assert after[old.pk][kind] == before[old.pk][kind] | before[new.pk][kind]
        assert after[new.pk][kind] == set()
    assert {slug for slug, *_ in after[old.pk]["tags"]} == {"vip", "sneakers"}
    old.refresh_from_db()
    assert old.order_count == 4  # metrics recomputed from the moved events


def test_fields_follow_the_survivorship_rules(pair):
    old, new = pair
    profiles_merge(survivor=old, merged=new, actor=SYSTEM)
    old.refresh_from_db(), new.refresh_from_db()
    assert (old.name, old.phone, old.email) == ("王芳", "+8613800138000", "wang@example.com")  # non-empty
    assert old.city == "上海"  # the more recently updated profile's
    assert old.gender == "female"  # the survivor's was unknown
    assert (new.status, new.merged_into) == ("merged", old)


def test_merge_is_on_both_timelines(pair):
    old, new = pair
    profiles_merge(survivor=old, merged=new, actor=SYSTEM)
    assert ProfileActivity.objects.filter(type="merged", profile__in=[old, new]).count() == 2
    entry = ProfileActivity.objects.get(type="merged", profile=old)
    assert "王芳" in entry.summary and entry.params["events"] == 4


def test_unmerge_restores_both_profiles_exactly(pair):
    old, new = pair
    before = snapshot(old, new)
    record = profiles_merge(survivor=old, merged=new, actor=SYSTEM)
    profiles_unmerge(merge=record, actor=SYSTEM)
    assert snapshot(old, new) == before
    assert ProfileActivity.objects.filter(type="unmerged").count() == 2
    with pytest.raises(ValidationError):
        profiles_unmerge(merge=record, actor=SYSTEM)


def test_merging_into_itself_or_a_tombstone_is_refused(pair):
    old, new = pair
    with pytest.raises(ValidationError):
        profiles_merge(survivor=old, merged=old, actor=SYSTEM)
    profiles_merge(survivor=old, merged=new, actor=SYSTEM)
    with pytest.raises(ValidationError):
        profiles_merge(survivor=new, merged=old, actor=SYSTEM)


def test_chains_are_flattened_and_unmerge_puts_them_back():
    a, b, c = customer(days_old=3, name="甲"), customer(days_old=2, name="乙"), customer(days_old=1, name="丙")
    first = profiles_merge(survivor=b, merged=c, actor=SYSTEM)
    second = profiles_merge(survivor=a, merged=b, actor=SYSTEM)
    assert Profile.objects.get(pk=c.pk).merged_into_id == a.pk
    with pytest.raises(ValidationError):
        profiles_unmerge(merge=first, actor=SYSTEM)  # c now hangs off a: undo the later merge first
    profiles_unmerge(merge=second, actor=SYSTEM)
    assert Profile.objects.get(pk=c.pk).merged_into_id == b.pk
    profiles_unmerge(merge=first, actor=SYSTEM)
    assert Profile.objects.filter(status="active").count() == 3


def test_higher_apps_move_their_rows_through_hooks(pair, monkeypatch):
    old, new = pair
    calls = []
    hook = MergeHook("consent", move=lambda s, m: calls.append(("move", s.pk, m.pk)) or [1, 2],
                     restore=lambda s, m, data: calls.append(("restore", data)))
    monkeypatch.setattr(merge_module, "MERGE_HOOKS", [hook])
    record = profiles_merge(survivor=old, merged=new, actor=SYSTEM)
    profiles_unmerge(merge=record, actor=SYSTEM)
    assert calls == [("move", old.pk, new.pk), ("restore", [1, 2])]


def test_resolution_finds_the_one_owner():
    owner = customer(phone="13800138000")
    resolution = identities_resolve([("phone", "138 0013 8000"), ("email", "new@example.com")], actor=SYSTEM)
    assert resolution.profile == owner and resolution.unknown == [("email", "new@example.com")]


def test_resolution_reports_two_owners_as_a_conflict_unless_merging_is_allowed():
    a = customer(days_old=5, phone="13800138000")
    b = customer(days_old=1, email="b@example.com")
    keys = [("phone", "13800138000"), ("email", "b@example.com")]
    conflict = identities_resolve(keys, actor=SYSTEM)
    assert (conflict.profile, conflict.others) == (a, [b])
    assert not ProfileMerge.objects.exists()
    resolved = identities_resolve(keys, actor=SYSTEM, merge=True)
    assert resolved.profile == a and len(resolved.merges) == 1
    assert Profile.objects.get(pk=b.pk).merged_into_id == a.pk


def test_a_shared_device_id_never_links_two_people():
    family_tablet = customer(identities=[("device_id", "ipad-1")])
    # a new person on the same tablet, with their own phone
    resolution = identities_resolve([("device_id", "ipad-1"), ("phone", "13900139000")], actor=SYSTEM, merge=True)
    assert resolution.profile is None and not ProfileMerge.objects.exists()
    # the device alone still finds whoever uses it
    assert identities_resolve([("device_id", "IPAD-1")], actor=SYSTEM).profile == family_tablet


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_duplicate_candidates_page_lists_likely_pairs(admin_client):
    a = customer(name="李雷", city="上海", phone="13800138000")
    Profile.objects.create(name="李雷", city="上海", phone="+8613900138000")  # same name, city, last four digits
    customer(name="韩梅梅", city="上海", phone="13700137000")
    response = admin_client.get(reverse("admin:profiles_profile_duplicates"))
    groups = response.context["groups"]
    assert len(groups) == 1 and a in groups[0].profiles and "8000" in groups[0].reason


def test_compare_then_merge_then_undo_in_the_admin(admin_client, pair):
    old, new = pair
    url = reverse("admin:profiles_profile_compare")
    page = admin_client.get(url, {"a": new.pk, "b": old.pk})
    assert page.context["suggested_survivor"] == old.pk and "王芳" in page.text
    response = admin_client.post(url, {"a": new.pk, "b": old.pk, "survivor": old.pk, "reason": "同一人"})
    assert response["Location"] == reverse("admin:profiles_profile_change", args=[old.pk])
    record = ProfileMerge.objects.get()
    assert (record.reason, record.actor_user.username) == ("同一人", "operator")
    # the tombstone redirects to the survivor
    assert admin_client.get(reverse("admin:profiles_profile_change", args=[new.pk]))["Location"].endswith(f"/{old.pk}/change/")
    admin_client.post(reverse("admin:profiles_profilemerge_change", args=[record.pk]), {"_unmerge": "1"})
    assert Profile.objects.get(pk=new.pk).status == "active"


@pytest.mark.parametrize("params", [{}, {"a": "1"}, {"a": "x", "b": "2"}, {"a": "3", "b": "3"}])
def test_compare_without_two_customers_says_what_to_do(admin_client, params):
    response = admin_client.get(reverse("admin:profiles_profile_compare"), params, follow=True)
    assert response.status_code == 200 and "请选择两位不同的客户进行比较" in response.text


def test_the_merge_record_says_what_moved_in_the_readers_language(admin_client, pair):
    old, new = pair
    record = profiles_merge(survivor=old, merged=new, actor=SYSTEM)
    page = admin_client.get(reverse("admin:profiles_profilemerge_change", args=[record.pk])).text
    assert "事件: 4" in page and "双方共有的标签: 1" in page
