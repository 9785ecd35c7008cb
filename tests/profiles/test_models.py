import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from profiles.models import AttributeDefinition, Event, Profile, age_on
from tests.factories import EventFactory, IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db


def refused(**changes):
    """Applying `changes` to a fresh profile with a queryset update violates a constraint."""
    profile = ProfileFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Profile.objects.filter(pk=profile.pk).update(**changes)


def test_identity_kind_and_value_identify_one_profile():
    IdentityFactory(kind_id="crm_id", value="CRM-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        IdentityFactory(kind_id="crm_id", value="CRM-1")
    IdentityFactory(kind_id="wechat_openid", value="CRM-1")  # another kind may share the text


def test_identity_value_cannot_be_blank():
    with pytest.raises(IntegrityError), transaction.atomic():
        IdentityFactory(value="")


@pytest.mark.parametrize(
    "changes",
    [
        {"gender": "robot"},
        {"status": "deleted"},
        {"lifecycle_stage": "zombie"},
        {"rfm_recency": 0},
        {"rfm_frequency": 6},
        {"total_spent": -1},
        {"status": "merged"},  # a merged profile must point at its survivor
    ],
)
def test_database_refuses_invalid_profile_rows(changes):
    refused(**changes)


def test_only_a_merged_profile_points_at_a_survivor():
    survivor = ProfileFactory()
    refused(merged_into=survivor)  # still active
    tombstone = ProfileFactory()
    Profile.objects.filter(pk=tombstone.pk).update(status="merged", merged_into=survivor)


def test_event_external_id_is_unique_per_source():
    profile = ProfileFactory()
    EventFactory(profile=profile, source="shop", external_id="o-1")
    EventFactory(profile=profile, source="pos", external_id="o-1")
    EventFactory(profile=profile, source="shop", external_id=None)
    EventFactory(profile=profile, source="shop", external_id=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        EventFactory(profile=profile, source="shop", external_id="o-1")


def test_traits_are_coerced_to_their_registered_type():
    AttributeDefinition.objects.create(key="member_level", label="会员等级", type="choice", choices=["金卡", "银卡"])
    AttributeDefinition.objects.create(key="points", label="积分", type="number")
    AttributeDefinition.objects.create(key="vip", label="VIP", type="boolean")
    AttributeDefinition.objects.create(key="joined", label="入会日期", type="date")
    profile = ProfileFactory.build(traits={"member_level": "金卡", "points": "1200", "vip": "是", "joined": "2020年1月2日"})
    profile.full_clean(exclude=["uuid"])
    assert profile.traits == {"member_level": "金卡", "points": 1200, "vip": True, "joined": "2020-01-02"}


@pytest.mark.parametrize(
    "traits, message",
    [
        ({"shoe_size": 42}, "shoe_size"),
        ({"points": "many"}, "many"),
        ({"member_level": "铂金"}, "铂金"),
    ],
)
def test_invalid_traits_are_refused_with_what_to_fix(traits, message):
    AttributeDefinition.objects.create(key="member_level", label="会员等级", type="choice", choices=["金卡"])
    AttributeDefinition.objects.create(key="points", label="积分", type="number")
    profile = ProfileFactory.build(traits=traits)
    with pytest.raises(ValidationError) as error:
        profile.full_clean(exclude=["uuid"])
    assert message in str(error.value)


def test_birth_date_in_the_future_is_refused():
    profile = ProfileFactory.build(birth_date=datetime.date.today() + datetime.timedelta(days=2))
    with pytest.raises(ValidationError):
        profile.full_clean(exclude=["uuid"])


@pytest.mark.parametrize(
    "born, day, age",
    [
        (datetime.date(2000, 5, 10), datetime.date(2014, 5, 9), 13),
        (datetime.date(2000, 5, 10), datetime.date(2014, 5, 10), 14),
        (datetime.date(2008, 2, 29), datetime.date(2022, 2, 28), 13),
        (datetime.date(2008, 2, 29), datetime.date(2022, 3, 1), 14),
        (datetime.date(2008, 2, 29), datetime.date(2024, 2, 29), 16),
    ],
)
def test_age_counts_completed_years(born, day, age):
    assert age_on(born, day) == age


def test_public_ids_are_unique_uuids():
    a, b = ProfileFactory(), ProfileFactory()
    assert a.uuid != b.uuid
    with pytest.raises(IntegrityError), transaction.atomic():
        Profile.objects.filter(pk=b.pk).update(uuid=a.uuid)


def test_the_event_category_column_follows_its_properties():
    event = EventFactory(name="product_view", properties={"category": "lipstick", "sku": "A1"})
    other = EventFactory(name="page_view", properties={})
    assert Event.objects.get(pk=event.pk).category == "lipstick"
    assert Event.objects.get(pk=other.pk).category is None
    Event.objects.filter(pk=event.pk).update(properties={"category": "sneakers"})
    assert Event.objects.get(pk=event.pk).category == "sneakers"
