"""Product-level recommendations: the product similarity, products offered with the product
behind the reason, recent purchases left out, categories where events name no product,
popular products filling up a short list, the demo catalogue's names, and the offline
evaluation's metrics on hand-computed cases."""
import datetime
import io
import math

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone, translation

from profiles.demo import PRODUCTS_PER_CATEGORY, demo_catalogue, demo_products
from profiles.models import Event, EventDefinition, ProductSimilarity, Recommendation
from profiles.recommendations import (
    hit_rate,
    ndcg,
    profile_recommendations,
    top_recommended_label,
)
from profiles.services.recommendations import (
    product_similarity_recompute,
    recommendations_compute,
    recommendations_refresh_all,
    recommendations_refresh_one,
)
from tests.factories import EventFactory, ProfileFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
# Demo catalogue ids: lipstick, skincare, sneakers and outdoor products.
LIP, LIP2, SKN, SNK, OUT = "LIP00001", "LIP00002", "SKN00001", "SNK00001", "OUT00001"
CATEGORY = {"LIP": "lipstick", "SKN": "skincare", "SNK": "sneakers", "OUT": "outdoor"}


def did(profile, product, name="product_view", days_ago=1):
    EventFactory(profile=profile, name=name, properties={"category": CATEGORY[product[:3]], "product_id": product},
                 occurred_at=NOW - datetime.timedelta(days=days_ago))


def listed(profile):
    return list(Recommendation.objects.filter(profile=profile).order_by("rank").values_list("product_id", flat=True))


@pytest.fixture
def shoppers():
    """Given customers who buy a lipstick with a skincare product, and customers who look at a
    pair of sneakers and buy an outdoor product; the catalogue's names registered."""
    demo_catalogue()
    for _ in range(4):
        p = ProfileFactory()
        did(p, LIP, "order", 60)
        did(p, SKN, "order", 50)
    for _ in range(4):
        p = ProfileFactory()
        did(p, SNK, "product_view", 60)
        did(p, OUT, "order", 50)


def test_product_similarity_is_the_cosine_of_the_customer_sets_and_keeps_the_closest(shoppers):
    p = ProfileFactory()
    did(p, LIP, "product_view", 3)
    did(p, OUT, "product_view", 3)
    product_similarity_recompute(now=NOW)
    score = {(s.source, s.target): (s.score, s.target_category) for s in ProductSimilarity.objects.all()}
    assert score[(LIP, SKN)] == (pytest.approx(4 / math.sqrt(5 * 4)), "skincare")
    assert score[(LIP, OUT)] == (pytest.approx(1 / math.sqrt(5 * 5)), "outdoor")
    assert score[(LIP, LIP)] == (5, "lipstick")  # with itself: its popularity, 5 customers
    assert (LIP, SNK) not in score
    # with one neighbour kept, each product keeps only its closest
    product_similarity_recompute(now=NOW, neighbours=1)
    assert set(ProductSimilarity.objects.filter(source=LIP).values_list("target", flat=True)) == {LIP, SKN}


def test_a_customer_is_offered_the_products_bought_with_what_they_viewed_with_the_reason(shoppers):
    fan = ProfileFactory()
    did(fan, LIP, "product_view", 2)
    recommendations_refresh_all(now=NOW)
    assert listed(fan) == [LIP, SKN]
    rec = Recommendation.objects.get(profile=fan, product_id=SKN)
    assert (rec.category, rec.reason_code, rec.reason_product, rec.reason_category) == (
        "skincare", "viewed", LIP, "lipstick")
    with translation.override("zh-hans"):
        recs = profile_recommendations(fan, fill=False)
    assert [(r.label, r.category_label, r.reason) for r in recs] == [
        ("丝绒哑光唇膏·正红", "口红", "因为您浏览了丝绒哑光唇膏·正红"),
        ("玻尿酸补水·精华", "护肤", "因为您浏览了丝绒哑光唇膏·正红"),
    ]


def test_products_bought_recently_are_left_out_and_older_ones_are_not(shoppers):
    recent, older = ProfileFactory(), ProfileFactory()
    did(recent, SNK, "order", 5)
    did(older, SNK, "order", 40)
    recommendations_refresh_all(now=NOW)
    assert listed(recent) == [OUT]
    assert listed(older) == [SNK, OUT]
    with translation.override("zh-hans"):
        assert profile_recommendations(recent, fill=False)[0].reason == "因为您购买了经典复古跑鞋·白色"


@override_settings(CDP_RECOMMENDATION_HALF_LIFE_DAYS=10)
def test_recent_behaviour_outweighs_older_behaviour_and_carts_outweigh_views(shoppers):
    p = ProfileFactory()
    did(p, SNK, "product_view", 60)
    did(p, SNK, "product_view", 60)
    did(p, LIP, "product_view", 1)
    q = ProfileFactory()
    did(q, LIP2, "product_view", 2)
    did(q, SKN, "add_to_cart", 2)
    recommendations_refresh_all(now=NOW)
    assert listed(p)[0] == LIP
    assert listed(q)[0] == SKN
    assert Recommendation.objects.get(profile=q, rank=1).reason_code == "carted"


def test_customers_whose_events_name_no_product_get_categories(shoppers):
    # given a customer whose events carry only a category, beside product customers
    old_style = ProfileFactory()
    EventFactory(profile=old_style, name="product_view", properties={"category": "lipstick"},
                 occurred_at=NOW - datetime.timedelta(days=1))
    fan = ProfileFactory()
    did(fan, LIP, "product_view", 2)
    recommendations_refresh_all(now=NOW)
    # then the product customer gets products, the other categories learnt from everyone's events
    rows = list(Recommendation.objects.filter(profile=old_style).order_by("rank").values_list("product_id", "category"))
    assert rows == [("", "lipstick"), ("", "skincare")]
    assert listed(fan) == [LIP, SKN]
    with translation.override("zh-hans"):
        recs = profile_recommendations(old_style)
    assert [(r.label, r.reason) for r in recs[:2]] == [("口红", "因为您浏览了口红"), ("护肤", "因为您浏览了口红")]
    assert {r.product_id for r in recs} == {""}  # a category list is filled up with categories


def test_a_short_list_is_filled_up_with_popular_products_not_bought_recently(shoppers):
    newcomer = ProfileFactory()
    recommendations_refresh_all(now=NOW)
    did(newcomer, OUT, "order", 3)  # after the nightly run: read-time exclusion applies
    with translation.override("zh-hans"):
        recs = profile_recommendations(newcomer)
    # the products 4 customers engaged with, by id; the outdoor product they just bought left out
    assert [r.product_id for r in recs] == [LIP, SKN, SNK]
    assert {(r.reason_code, r.reason) for r in recs} == {("popular", "热销商品")}
    assert [r.rank for r in recs] == [1, 2, 3]


def test_on_demand_for_one_customer_and_the_campaign_token(shoppers):
    p, other = ProfileFactory(), ProfileFactory()
    did(p, SNK)
    did(other, SNK)
    recommendations_refresh_all(now=NOW)
    did(p, LIP, "add_to_cart", 0)
    recommendations_refresh_one(profile=p, now=NOW)
    # carted lipstick (weight 2) and skincare bought with it (similarity 1): equal, by category
    assert listed(p) == [LIP, SKN, SNK, OUT]
    assert listed(other) == [SNK, OUT]
    with translation.override("zh-hans"):
        assert top_recommended_label(p.pk) == "丝绒哑光唇膏·正红"


def test_an_unnamed_product_is_shown_by_its_id():
    p, q = ProfileFactory(), ProfileFactory()
    for customer in (p, q):
        EventFactory(profile=customer, name="order", properties={"category": "books", "product_id": "ISBN-1"},
                     occurred_at=NOW - datetime.timedelta(days=40))
    recommendations_refresh_all(now=NOW)
    assert top_recommended_label(p.pk) == "ISBN-1"


def test_the_profile_page_shows_the_products_with_their_category_and_reason(admin_client, shoppers):
    fan = ProfileFactory()
    did(fan, LIP)
    recommendations_refresh_all(now=NOW)
    text = admin_client.get(f"/admin/profiles/profile/{fan.pk}/change/").text
    assert "玻尿酸补水·精华" in text and "(护肤)" in text and "因为您浏览了丝绒哑光唇膏·正红" in text


def test_the_demo_catalogue_names_its_products_in_chinese():
    products = demo_products()
    assert len(products) == 8 * PRODUCTS_PER_CATEGORY
    assert products["LIP00001"] == ("lipstick", "丝绒哑光唇膏·正红")
    assert len(set(products.values())) == len(products)
    demo_catalogue()
    demo_catalogue()  # twice: the same labels
    for name in ("product_view", "add_to_cart", "order"):
        prop = next(p for p in EventDefinition.objects.get(name=name).properties if p["name"] == "product_id")
        assert prop["values"]["JPT00040"] == "九州·美食之旅"


def test_the_demo_orders_name_their_products_and_follow_the_customers_lines():
    call_command("generate_demo", profiles=300, events_per_profile=30, seed=5, bare=True, stdout=io.StringIO())
    products = demo_products()
    orders = list(Event.objects.filter(name="order"))
    assert orders and all(o.properties["product_id"] in products for o in orders)
    assert all(products[o.properties["product_id"]][0] == o.properties["category"] for o in orders)
    # most of a customer's product views in a category are of one line of five products
    lines: dict[tuple, dict] = {}
    for profile_id, props in Event.objects.filter(name="product_view").values_list("profile_id", "properties"):
        line = (int(props["product_id"][-5:]) - 1) // 5
        counts = lines.setdefault((profile_id, props["category"]), {})
        counts[line] = counts.get(line, 0) + 1
    busy = [c for c in lines.values() if sum(c.values()) >= 5]
    assert busy
    share = sum(max(c.values()) for c in busy) / sum(sum(c.values()) for c in busy)
    assert share > 0.6  # one line of eight would be 0.125 if customers picked at random


def test_hit_rate_and_ndcg_on_hand_computed_cases():
    # four customers: held-out item at rank 1, at rank 3, at rank 11 (outside the top 10), not listed
    ranks = [1, 3, 11]
    assert hit_rate(ranks, 4, 1) == 0.25
    assert hit_rate(ranks, 4, 3) == 0.5
    assert hit_rate(ranks, 4, 10) == 0.5
    assert hit_rate(ranks, 4, 20) == 0.75
    # NDCG@10: (1/log2(2) + 1/log2(4)) / 4 = (1 + 0.5) / 4
    assert ndcg(ranks, 4) == pytest.approx(0.375)
    assert ndcg([2], 1) == pytest.approx(1 / math.log2(3))
    assert ndcg([1], 1) == 1.0
    assert hit_rate([], 0) == 0.0 and ndcg([], 0) == 0.0


def test_recommendations_compute_writes_products_for_given_customers_only(shoppers):
    p, other = ProfileFactory(), ProfileFactory()
    did(p, LIP)
    did(other, LIP)
    recommendations_compute(profile_ids=[p.pk], now=NOW)  # no similarity yet: only what they did
    assert listed(p) == [LIP] and listed(other) == []
