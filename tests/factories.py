"""Factories for tests: valid rows with realistic values; override what a test is about."""
import datetime
import decimal

import factory
from django.utils import timezone

from profiles.models import Event, Identity, Profile, Tag, TagCategory


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile

    name = factory.Sequence(lambda n: f"客户{n}")
    gender = "female"
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    city = "上海"
    province = "上海"


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    profile = factory.SubFactory(ProfileFactory)
    kind_id = "crm_id"
    value = factory.Sequence(lambda n: f"CRM{n:06d}")
    source = "test"


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    profile = factory.SubFactory(ProfileFactory)
    name = "page_view"
    occurred_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(days=1))
    properties = factory.LazyFunction(dict)
    source = "app"


def order(profile, *, days_ago: float, amount: str, now=None, **properties) -> Event:
    now = now or timezone.now()
    return EventFactory(
        profile=profile, name="order", amount=decimal.Decimal(amount),
        occurred_at=now - datetime.timedelta(days=days_ago), properties=properties, source="shop",
    )


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"标签{n}")
    slug = factory.Sequence(lambda n: f"tag-{n}")
    category = factory.LazyFunction(lambda: TagCategory.objects.get(code="interest"))


def tag_on(profile, tag, *, weight=None, source="manual"):
    """Put `tag` on `profile` directly (the tag services are tested on their own)."""
    from profiles.models import ProfileTag

    return ProfileTag.objects.create(profile=profile, tag=tag, weight=weight, source=source)


class TagCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TagCategory

    name = factory.Sequence(lambda n: f"分类{n}")
    parent = factory.LazyFunction(lambda: TagCategory.objects.get(code="interest"))
