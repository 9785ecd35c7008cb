"""Demo data: `profiles.demo.demo_generate` and `manage.py generate_demo`."""
import datetime
import io
import re
import uuid
import zoneinfo
from collections import Counter
from decimal import Decimal

import phonenumbers
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, Q

from profiles.demo import (
    MEMBER_LEVEL_KEY,
    MEMBER_LEVELS,
    WINDOW_DAYS,
    copy_escape,
    demo_generate,
)
from profiles.models import (
    AttributeDefinition,
    Event,
    EventDefinition,
    Identity,
    IdentityKind,
    Profile,
)

pytestmark = pytest.mark.django_db

ANCHOR = datetime.date(2025, 6, 30)
E164_CN_MOBILE = re.compile(r"^\+861[3-9]\d{9}$")
WECHAT_ID = re.compile(r"^o[A-Za-z0-9_-]{27}$")


def generate(profiles=50, events=10, seed=1, **kwargs):
    return demo_generate(profiles=profiles, events_per_profile=events, seed=seed, anchor_date=ANCHOR, **kwargs)


def snapshot():
    """Every generated value that must not depend on the run, in a comparable form."""
    profiles = [
        (p["uuid"], p["name"], p["gender"], p["birth_date"], p["phone"], p["email"], p["province"], p["city"],
         p["occupation"], sorted(p["traits"].items()), p["created_at"], p["order_count"], p["total_spent"])
        for p in Profile.objects.order_by("uuid").values()
    ]
    identities = sorted(Identity.objects.values_list("profile__uuid", "kind_id", "value", "source", "created_at"))
    events = sorted(
        (e["profile__uuid"], e["occurred_at"], e["name"], sorted(e["properties"].items()), e["amount"], e["source"],
         e["external_id"] or "")
        for e in Event.objects.values("profile__uuid", "occurred_at", "name", "properties", "amount", "source", "external_id")
    )
    return profiles, identities, events


def delete_all():
    Event.objects.all().delete()
    Identity.objects.all().delete()
    Profile.objects.all().delete()


def window():
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    start = datetime.datetime.combine(ANCHOR - datetime.timedelta(days=WINDOW_DAYS), datetime.time(), tz)
    return start, datetime.datetime.combine(ANCHOR, datetime.time(), tz)


def test_counts_match_the_stats_and_the_request():
    stats = generate(profiles=50, events=10)

    assert stats.profiles == Profile.objects.count() == 50
    assert stats.identities == Identity.objects.count()
    assert stats.events == Event.objects.count()
    assert 50 * 5 <= stats.events <= 50 * 15  # about 10 per profile on average
    # Every profile has a phone; the optional identities appear in roughly the documented shares.
    kinds = Counter(Identity.objects.values_list("kind_id", flat=True))
    assert kinds["phone"] == 50
    assert 0 < kinds["email"] < 50 and 0 < kinds["crm_id"] < 50 and 0 < kinds["wechat_openid"] < 50
    assert kinds["wechat_unionid"] <= kinds["wechat_openid"]
    # Ids are assigned in blocks: no gaps, so the next rows follow on.
    ids = list(Event.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_same_seed_gives_the_same_rows_and_another_seed_other_rows():
    generate(seed=7)
    first = snapshot()
    delete_all()
    generate(seed=7)
    assert snapshot() == first

    delete_all()
    generate(seed=8)
    other = snapshot()
    assert other[0] != first[0]
    assert {p[4] for p in other[0]} != {p[4] for p in first[0]}  # phones
    assert other[2] != first[2]


def test_profiles_look_like_chinese_customers():
    generate(profiles=200, events=2)
    profiles = list(Profile.objects.all())

    phones = [p.phone for p in profiles]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        assert E164_CN_MOBILE.match(phone), phone
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone)), phone
    emails = [p.email for p in profiles if p.email]
    assert len(set(emails)) == len(emails) and 0.4 < len(emails) / len(profiles) < 0.8
    assert all(e == e.lower() and re.fullmatch(r"[a-z0-9._]+@[a-z0-9.]+\.com", e) for e in emails), emails
    assert len({p.uuid for p in profiles}) == len(profiles)
    assert all(p.uuid.version == 4 and p.uuid.variant == uuid.RFC_4122 for p in profiles)

    genders = Counter(p.gender for p in profiles)
    assert genders["female"] > genders["male"] > genders["unknown"]
    assert all(2 <= len(p.name) <= 4 for p in profiles)
    assert all(p.country == "CN" and p.city and p.province for p in profiles)
    ages = [p.age for p in profiles if p.birth_date]
    assert min(ages) >= 18 and max(ages) <= 70  # 18–65 at the anchor date, a little older today
    assert all(p.traits[MEMBER_LEVEL_KEY] in MEMBER_LEVELS for p in profiles)
    start, end = window()
    assert all(start <= p.created_at < end for p in profiles)
    definition = AttributeDefinition.objects.get(key=MEMBER_LEVEL_KEY)
    assert definition.type == "choice" and definition.choices == list(MEMBER_LEVELS)


def test_every_identity_matches_its_profile():
    generate()
    kinds = set(IdentityKind.objects.values_list("code", flat=True))
    for identity in Identity.objects.select_related("profile"):
        profile = identity.profile
        assert identity.kind_id in kinds and identity.source == "demo"
        if identity.kind_id == "phone":
            assert identity.value == profile.phone
        elif identity.kind_id == "email":
            assert identity.value == profile.email
        elif identity.kind_id == "crm_id":
            assert identity.value == f"CRM{profile.pk:08d}"
        else:
            assert WECHAT_ID.match(identity.value), identity.value
    with_email = Profile.objects.exclude(email="").count()
    assert Identity.objects.filter(kind_id="email").count() == with_email


def test_events_use_seeded_names_and_orders_carry_amounts():
    generate(profiles=100, events=20)
    assert set(Event.objects.values_list("name", flat=True)) <= set(EventDefinition.objects.values_list("name", flat=True))
    start, end = window()
    assert not Event.objects.filter(Q(occurred_at__lt=start) | Q(occurred_at__gte=end)).exists()
    assert all(isinstance(p, dict) and p for p in Event.objects.values_list("properties", flat=True))

    orders = list(Event.objects.filter(name="order"))
    assert orders
    assert all(o.amount and o.amount > 0 and o.source == "shop" for o in orders)
    assert all(o.external_id == o.properties["order_id"] for o in orders)
    assert len({o.external_id for o in orders}) == len(orders)
    amounts = {o.external_id: o.amount for o in orders}
    payments = list(Event.objects.filter(name="payment"))
    assert payments and len(payments) <= len(orders)
    assert all(amounts[p.properties["order_id"]] == p.amount for p in payments)
    assert all(p.properties["method"] in {"alipay", "wechat_pay", "card", "unionpay"} for p in payments)
    # Category-dependent prices.
    for order in orders:
        low, high = {"lipstick": (150, 600), "sneakers": (400, 1500), "japan_travel": (3000, 15000)}.get(
            order.properties["category"], (1, 20000))
        assert Decimal(low) <= order.amount <= Decimal(high), order.properties
    views = Event.objects.filter(name="product_view")
    assert {"sneakers", "lipstick", "japan_travel"} <= {v.properties["category"] for v in views}


def test_metrics_are_recomputed():
    generate(profiles=100, events=20)
    buyers = Profile.objects.filter(order_count__gt=0)
    assert buyers.exists()
    assert not buyers.filter(Q(rfm_recency=None) | Q(rfm_frequency=None) | Q(rfm_monetary=None)).exists()
    assert not Profile.objects.filter(metrics_updated_at=None).exists()
    some = buyers.first()
    assert some.order_count == Event.objects.filter(profile=some, name="order").count()
    assert Profile.objects.exclude(lifecycle_stage="prospect").exists()


def test_a_second_run_adds_profiles_with_unique_keys():
    generate(profiles=30, seed=1)
    generate(profiles=30, seed=1)  # the same seed again: new ids, so new phones, emails, order ids…
    assert Profile.objects.count() == 60
    assert Profile.objects.values("phone").distinct().count() == 60
    assert not Identity.objects.values("kind", "value").annotate(n=Count("id")).filter(n__gt=1).exists()


def test_the_demo_stories_are_there():
    """The funnel and segment examples shown in demos find people (the `make run` data)."""
    generate(profiles=3000, events=30, seed=1)
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    now = datetime.datetime.combine(ANCHOR, datetime.time(), tz)
    last_30, last_90 = now - datetime.timedelta(days=30), now - datetime.timedelta(days=90)

    shanghai_women_sneakers = Profile.objects.filter(
        city="上海", gender="female",
        events__name="product_view", events__properties__category="sneakers",
    ).distinct()
    two_recent_orders = (
        Event.objects.filter(name="order", occurred_at__gte=last_30)
        .values("profile_id").annotate(n=Count("id")).filter(n__gte=2).values("profile_id")
    )
    assert shanghai_women_sneakers.filter(pk__in=two_recent_orders).exists()
    assert Event.objects.filter(name="product_view", properties__category="lipstick", occurred_at__gte=last_90).exists()
    assert Event.objects.filter(name="product_view", properties__category="japan_travel").exists()
    assert Event.objects.filter(name="order", properties__category="japan_travel").exists()
    started = set(Event.objects.filter(name="account_open_start", occurred_at__gte=last_30).values_list("profile_id", flat=True))
    completed = set(Event.objects.filter(name="account_open_complete").values_list("profile_id", flat=True))
    assert started - completed
    assert completed  # and some made it through


def test_command_generates_and_if_empty_skips_the_second_time():
    out = io.StringIO()
    args = ["--profiles", "20", "--events-per-profile", "5", "--seed", "3", "--anchor-date", "2025-06-30", "--if-empty"]
    call_command("generate_demo", *args, stdout=out)
    assert Profile.objects.count() == 20
    assert out.getvalue().strip()

    out = io.StringIO()
    call_command("generate_demo", *args, stdout=out)
    assert Profile.objects.count() == 20
    assert len(out.getvalue().strip().splitlines()) == 1  # one line saying nothing was done


def test_command_rejects_bad_input():
    with pytest.raises(CommandError):
        call_command("generate_demo", "--profiles", "-1")
    with pytest.raises(CommandError):
        call_command("generate_demo", "--anchor-date", "30/06/2025")


def test_copy_escape():
    assert copy_escape("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert copy_escape("王芳") == "王芳"


@pytest.mark.postgres
def test_postgresql_bulk_load_restores_the_schema_and_does_not_depend_on_workers():
    def schema():
        with connection.cursor() as cursor:
            return {
                table: {
                    name: (info["columns"], info["unique"], info["primary_key"], info["foreign_key"], info["index"])
                    for name, info in connection.introspection.get_constraints(cursor, table).items()
                }
                for table in (Profile._meta.db_table, Identity._meta.db_table, Event._meta.db_table)
            }

    before = schema()
    stats = generate(profiles=2500, events=3, workers=2, bulk_schema=True)  # two chunks, two processes
    assert stats.bulk_schema
    assert schema() == before
    parallel = snapshot()

    delete_all()
    stats = generate(profiles=2500, events=3, workers=1, bulk_schema=False)
    assert not stats.bulk_schema
    assert snapshot() == parallel


@pytest.mark.django_db
def test_the_demo_comes_with_a_taxonomy_of_tags_and_interests():
    from profiles.models import InterestMapping, ProfileTag, Tag

    call_command("generate_demo", profiles=200, events_per_profile=20, seed=3, stdout=io.StringIO())
    assert InterestMapping.objects.count() == 5
    assert ProfileTag.objects.filter(tag__slug="high-value").exists()
    assert ProfileTag.objects.filter(source="interest", weight__gt=0).exists()
    call_command("generate_demo", profiles=200, if_empty=True, stdout=io.StringIO())
    assert Tag.objects.filter(slug="sneaker-lover").count() == 1


@pytest.mark.django_db
def test_the_demo_comes_with_consent_and_calculated_segments():
    from consent.models import ConsentRecord, ConsentState
    from segments.demo import DEMO_SEGMENTS
    from segments.models import Segment, SegmentMembership

    call_command("generate_demo", profiles=300, events_per_profile=20, seed=3, stdout=io.StringIO())
    # Each current state is its customer's latest ledger entry for the purpose, as
    # consent_record keeps it; some grants were withdrawn later.
    states = {(s.profile_id, s.purpose_id): s for s in ConsentState.objects.all()}
    latest = {}
    for entry in ConsentRecord.objects.order_by("captured_at", "pk"):
        latest[(entry.profile_id, entry.purpose_id)] = entry
    assert states and set(states) == set(latest)
    assert all(states[key].record_id == entry.pk and states[key].status == entry.status
               for key, entry in latest.items())
    assert ConsentState.objects.filter(status="withdrawn").exists()
    assert ConsentState.objects.filter(purpose__code="wechat_marketing", status="granted").exists()
    # The example segments are saved, calculated, and their counts are their members.
    segments = Segment.objects.filter(slug__in=[slug for slug, *_rest in DEMO_SEGMENTS])
    assert segments.count() == len(DEMO_SEGMENTS)
    assert all(s.last_calculated_at and s.member_count == SegmentMembership.objects.filter(segment=s).count()
               for s in segments)
    assert segments.get(slug="wechat-reachable-active").member_count > 0
    # Run again, nothing is added twice.
    from consent.demo import demo_consent
    from segments.demo import demo_segments

    assert demo_consent(seed=3) == 0 and demo_segments() == []
