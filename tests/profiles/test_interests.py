"""Interest scores: the decay arithmetic, and the set-based recompute against Python."""
import datetime
import random

import pytest
from django.utils import timezone

from cdp.actors import Actor
from profiles.models import InterestMapping, Profile, ProfileTag, TagKind
from profiles.services.interests import interest_weight, interests_recompute
from profiles.services.tags import tag_assign
from tests.factories import EventFactory, ProfileFactory, TagFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def sneakers():
    tag = TagFactory(kind=TagKind.INTEREST, slug="sneaker-lover", name="喜欢运动鞋")
    return InterestMapping.objects.create(
        tag=tag, event_weights={"product_view": 1, "order": 3}, property_name="category",
        property_values=["sneakers"], half_life_days=30, saturation=3, threshold=0.3,
    )


def viewed(profile, days_ago, name="product_view", category="sneakers"):
    EventFactory(profile=profile, name=name, properties={"category": category},
                 occurred_at=NOW - datetime.timedelta(days=days_ago))


def weight_of(profile, mapping):
    row = ProfileTag.objects.filter(profile=profile, tag=mapping.tag).first()
    return row.weight if row else None


@pytest.mark.parametrize(
    "score, saturation, weight",
    [(0, 3, 0.0), (3, 3, 0.5), (9, 3, 0.75), (1, 1, 0.5)],
)
def test_weight_is_score_over_score_plus_saturation(score, saturation, weight):
    assert interest_weight(score, saturation) == pytest.approx(weight)


def test_decay_halves_an_event_every_half_life(sneakers):
    today, one_half_life, two_half_lives = ProfileFactory(), ProfileFactory(), ProfileFactory()
    for _ in range(3):
        viewed(today, 0)
        viewed(one_half_life, 30)
        viewed(two_half_lives, 60)
    interests_recompute(now=NOW)
    assert weight_of(today, sneakers) == pytest.approx(3 / 6)          # score 3
    assert weight_of(one_half_life, sneakers) == pytest.approx(1.5 / 4.5)  # score 1.5
    assert weight_of(two_half_lives, sneakers) is None                 # 0.75/3.75 = 0.2 < 0.3


def test_event_weights_and_property_values_decide_what_counts(sneakers):
    buyer, lipstick_fan = ProfileFactory(), ProfileFactory()
    viewed(buyer, 0, name="order")  # an order counts 3 → 3/6
    for _ in range(10):
        viewed(lipstick_fan, 0, category="lipstick")
        viewed(lipstick_fan, 0, name="page_view")
    interests_recompute(now=NOW)
    assert weight_of(buyer, sneakers) == pytest.approx(0.5)
    assert weight_of(lipstick_fan, sneakers) is None


def test_recompute_adds_updates_and_removes_with_reasons_on_the_timeline(sneakers):
    fading = ProfileFactory()
    for _ in range(3):
        viewed(fading, 0)
    interests_recompute(now=NOW)
    assert weight_of(fading, sneakers) == pytest.approx(0.5)
    added = fading.activities.get(type="tag_added")
    assert "喜欢运动鞋" in added.summary and added.params["source"] == "interest"

    # 20 days later the same views weigh less, but still above the threshold
    interests_recompute(now=NOW + datetime.timedelta(days=20))
    assert weight_of(fading, sneakers) == pytest.approx(interest_weight(3 * 0.5 ** (20 / 30), 3))
    # 120 days later they are below it: the tag goes, and the timeline says why
    interests_recompute(now=NOW + datetime.timedelta(days=120))
    assert weight_of(fading, sneakers) is None
    assert fading.activities.filter(type="tag_removed").count() == 1


def test_a_manual_assignment_of_an_interest_tag_is_left_alone(sneakers):
    profile = ProfileFactory()
    tag_assign(tag=sneakers.tag, profiles=Profile.objects.filter(pk=profile.pk), source="manual", actor=Actor.system("t"))
    interests_recompute(now=NOW)
    assert ProfileTag.objects.get(profile=profile).source == "manual"


def test_set_based_weights_agree_with_python_on_random_histories(sneakers):
    rng = random.Random(3)
    expected = {}
    for _ in range(40):
        profile = ProfileFactory()
        score = 0.0
        for _ in range(rng.randint(0, 8)):
            name = rng.choice(["product_view", "order", "page_view"])
            category = rng.choice(["sneakers", "sneakers", "lipstick"])
            days = rng.randint(0, 200) + rng.random()
            viewed(profile, days, name=name, category=category)
            if category == "sneakers" and name in sneakers.event_weights:
                score += sneakers.event_weights[name] * 0.5 ** (days / 30)
        weight = interest_weight(score, 3) if score else 0
        if weight >= 0.3:
            expected[profile.pk] = weight
    result = interests_recompute(now=NOW)
    actual = dict(ProfileTag.objects.filter(tag=sneakers.tag).values_list("profile_id", "weight"))
    assert actual.keys() == expected.keys()
    for pk, weight in expected.items():
        assert actual[pk] == pytest.approx(weight, rel=1e-6)
    assert result == {"sneaker-lover": {"gained": len(expected), "kept": 0, "lost": 0}}
