"""Recommendations: the similarity, the scoring with recency and interests, the exclusion of
recent purchases, the reasons in Chinese, and the nightly/on-demand entry points."""
import datetime

import pytest
from django.test import override_settings
from django.utils import timezone, translation

from profiles.models import CategorySimilarity, InterestMapping, Profile, Recommendation, TagKind, TagSource
from profiles.recommendations import profile_recommendations, top_recommended_label
from profiles.services.recommendations import (
    recommendations_compute,
    recommendations_refresh_all,
    recommendations_refresh_one,
    similarity_recompute,
)
from profiles.services.tags import tag_assign
from cdp.actors import Actor
from tests.concurrency import run_together
from tests.factories import EventFactory, ProfileFactory, TagFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def did(profile, category, name="product_view", days_ago=1):
    EventFactory(profile=profile, name=name, properties={"category": category},
                 occurred_at=NOW - datetime.timedelta(days=days_ago))


def listed(profile):
    return list(Recommendation.objects.filter(profile=profile).order_by("rank").values_list("category", flat=True))


@pytest.fixture
def shoppers():
    """Given lipstick buyers who also buy skincare, and sneaker buyers who also buy outdoor gear."""
    for _ in range(4):
        p = ProfileFactory()
        did(p, "lipstick", "order", 60)
        did(p, "skincare", "order", 50)
    for _ in range(4):
        p = ProfileFactory()
        did(p, "sneakers", "order", 60)
        did(p, "outdoor", "product_view", 50)


def test_similarity_is_the_cosine_of_the_customer_sets(shoppers):
    similarity_recompute(now=NOW)
    score = dict(((s.source, s.target), s.score) for s in CategorySimilarity.objects.all())
    assert score[("lipstick", "skincare")] == pytest.approx(1.0)
    assert score[("lipstick", "lipstick")] == 4  # with itself: its popularity, 4 customers
    assert ("lipstick", "sneakers") not in score


def test_a_customer_is_offered_what_similar_customers_bought_with_the_reason(shoppers):
    # given a customer who only viewed lipstick
    fan = ProfileFactory()
    did(fan, "lipstick", "product_view", 2)
    # when the nightly run computes everyone
    recommendations_refresh_all(now=NOW)
    # then lipstick and skincare are offered, not sneakers, each because they viewed lipstick
    assert listed(fan) == ["lipstick", "skincare"]
    with translation.override("zh-hans"):
        recs = profile_recommendations(fan)
    assert recs[1].reason == "因为您浏览了口红"
    assert recs[1].label == "护肤"


def test_recent_purchases_are_left_out_and_older_ones_are_not(shoppers):
    recent, older = ProfileFactory(), ProfileFactory()
    did(recent, "sneakers", "order", 5)
    did(older, "sneakers", "order", 40)
    recommendations_refresh_all(now=NOW)
    assert listed(recent) == ["outdoor"]
    assert listed(older) == ["sneakers", "outdoor"]
    with translation.override("zh-hans"):
        assert profile_recommendations(recent)[0].reason == "因为您购买了运动鞋"


@override_settings(CDP_RECOMMENDATION_HALF_LIFE_DAYS=10)
def test_recent_behaviour_outweighs_older_behaviour(shoppers):
    p = ProfileFactory()
    did(p, "sneakers", "product_view", 60)
    did(p, "sneakers", "product_view", 60)
    did(p, "lipstick", "product_view", 1)
    recommendations_refresh_all(now=NOW)
    assert listed(p)[0] == "lipstick"


def test_interest_weights_add_their_mapped_categories(shoppers):
    tag = TagFactory(kind=TagKind.INTEREST, slug="travel-lover", name="爱旅行")
    InterestMapping.objects.create(tag=tag, event_weights={"product_view": 1}, property_name="category",
                                   property_values=["japan_travel"])
    p = ProfileFactory()
    did(p, "books", "product_view", 1)
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk=p.pk), source=TagSource.INTEREST,
               actor=Actor.system("test"), weight=0.9)
    recommendations_refresh_all(now=NOW)
    assert listed(p) == ["books", "japan_travel"]
    rec = Recommendation.objects.get(profile=p, category="japan_travel")
    assert (rec.reason_code, rec.reason_category) == ("interest", "japan_travel")


def test_at_most_ten_are_kept():
    p = ProfileFactory()
    for i in range(12):
        did(p, f"c{i:02d}", "product_view", 1 + i)
    recommendations_refresh_all(now=NOW)
    assert len(listed(p)) == 10
    assert listed(p)[:2] == ["c00", "c01"]  # every pair equally similar: equal scores, by name


def test_on_demand_for_one_replaces_only_theirs(shoppers):
    p, other = ProfileFactory(), ProfileFactory()
    did(p, "books")
    did(other, "books")
    recommendations_refresh_all(now=NOW)
    did(p, "snacks", "add_to_cart", 0)
    did(other, "snacks", "add_to_cart", 0)
    recommendations_refresh_one(profile=p, now=NOW)
    assert listed(p) == ["snacks", "books"]
    assert listed(other) == ["books"]


def test_the_campaign_token_label_is_the_best_category(shoppers):
    p = ProfileFactory()
    did(p, "lipstick")
    recommendations_compute(profile_ids=[p.pk], now=NOW)  # no similarity yet: only what they did
    with translation.override("zh-hans"):
        assert top_recommended_label(p.pk) == "口红"
    assert top_recommended_label(ProfileFactory().pk) == ""


def test_the_profile_page_shows_the_recommendations_with_their_reason_in_chinese(admin_client, shoppers):
    p = ProfileFactory()
    did(p, "lipstick")
    page = f"/admin/profiles/profile/{p.pk}/change/"
    assert "暂无推荐" in admin_client.get(page).text
    recommendations_refresh_all(now=NOW)
    text = admin_client.get(page).text
    assert "猜你喜欢" in text and "护肤" in text and "因为您浏览了口红" in text


def test_the_nightly_task_is_scheduled_and_computes_everyone(settings, shoppers):
    from profiles.tasks import recompute_recommendations

    assert settings.CELERY_BEAT_SCHEDULE["recompute-recommendations"]["task"] == recompute_recommendations.name
    p = ProfileFactory()
    did(p, "sneakers")
    result = recompute_recommendations.apply().get()
    assert result["rows"] >= 2 and listed(p) == ["sneakers", "outdoor"]


def test_a_short_list_is_filled_up_with_popular_categories_not_bought_recently(shoppers):
    # given a customer with no history but a lipstick order last week, outside the window's events
    newcomer = ProfileFactory()
    recommendations_refresh_all(now=NOW)
    did(newcomer, "lipstick", "order", 3)  # after the nightly run: read-time exclusion applies
    with translation.override("zh-hans"):
        recs = profile_recommendations(newcomer)
    # then the popular categories (4 customers each, by name), lipstick left out, reason 热销品类
    assert [r.category for r in recs] == ["outdoor", "skincare", "sneakers"]
    assert {(r.reason_code, r.reason) for r in recs} == {("popular", "热销品类")}
    assert [r.rank for r in recs] == [1, 2, 3]
    assert profile_recommendations(newcomer, fill=False) == []


@pytest.mark.postgres
def test_the_nightly_run_and_an_on_demand_one_at_once_both_succeed(seeded_transactional_db):
    # given customers with history, computed at the same moment by two runs (nightly and on demand)
    customers = [ProfileFactory() for _ in range(30)]
    for p in customers:
        did(p, "lipstick")
        did(p, "skincare", "add_to_cart")
    errors = []

    def run(profile_ids):
        try:
            for _ in range(5):
                recommendations_compute(profile_ids=profile_ids, now=NOW)
        except Exception as error:  # noqa: BLE001 - the assertion below names it
            errors.append(error)

    run_together(run, [None, [p.pk for p in customers]])
    # then neither failed and each customer has the one list
    assert errors == []
    assert all(listed(p) == ["skincare", "lipstick"] for p in customers)


def test_the_demo_comes_with_recommendations():
    import io

    from django.core.management import call_command

    call_command("generate_demo", profiles=200, events_per_profile=20, seed=3, stdout=io.StringIO())
    assert Recommendation.objects.values("profile").distinct().count() > 50
    assert set(Recommendation.objects.values_list("reason_code", flat=True)) >= {"viewed", "bought"}


@pytest.mark.postgres
def test_ranges_computed_on_several_connections_give_the_lists_of_one(seeded_transactional_db, shoppers):
    # given customers in several ranges, computed one range at a time
    customers = list(Profile.objects.order_by("pk"))
    recommendations_refresh_all(now=NOW)
    one_at_a_time = {p.pk: listed(p) for p in customers}
    Recommendation.objects.all().delete()
    # when ranges of two customers are computed two at a time, each on its own connection
    written = recommendations_compute(now=NOW, chunk=2, workers=2)
    # then every customer has the same list, and the rows written are counted
    assert {p.pk: listed(p) for p in customers} == one_at_a_time
    assert written == Recommendation.objects.count() > 0
