"""GET /api/v1/profiles/{id}/recommendations/: scope profiles:read, the partner's reach,
computed on demand for a customer who has none, reasons in the request's language."""
import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from cdp.models import PartnerCustomer, Scope
from profiles.models import Recommendation
from profiles.services.recommendations import similarity_recompute
from tests.factories import EventFactory, ProfileFactory

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error, client_with, key_for

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def url(profile):
    return reverse("api-profile-recommendations", args=[profile.uuid])


@pytest.fixture
def lipstick_fan(partner):
    """Given customers who buy lipstick with skincare, and one of the partner's customers who viewed lipstick."""
    for _ in range(3):
        p = ProfileFactory()
        for category in ("lipstick", "skincare"):
            EventFactory(profile=p, name="order", properties={"category": category},
                         occurred_at=NOW - datetime.timedelta(days=40))
    similarity_recompute()
    fan = ProfileFactory()
    EventFactory(profile=fan, name="product_view", properties={"category": "lipstick"},
                 occurred_at=NOW - datetime.timedelta(days=1))
    PartnerCustomer.objects.create(partner=partner, profile_uuid=fan.uuid)
    return fan


def test_a_partner_reads_its_customers_recommendations_computed_on_demand(partner, lipstick_fan):
    reader = client_with(key_for(partner, [Scope.PROFILES_READ]))
    assert not Recommendation.objects.filter(profile=lipstick_fan).exists()
    response = reader.get(url(lipstick_fan), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    body = response.json()
    assert [r["category"] for r in body] == ["lipstick", "skincare"]
    assert body[1] | {"score": None, "computed_at": None} == {
        "rank": 2, "product_id": "", "category": "skincare", "label": "护肤", "category_label": "护肤", "score": None,
        "reason_code": "viewed", "reason_product": "", "reason_category": "lipstick", "reason": "因为您浏览了口红",
        "computed_at": None,
    }
    assert Recommendation.objects.filter(profile=lipstick_fan).count() == 2  # stored for the next request
    english = client_with(key_for(partner, [Scope.PROFILES_READ])).get(url(lipstick_fan)).json()
    assert english[1]["reason"] == "Because you viewed Lipstick"


def test_customers_outside_the_reach_do_not_exist(partner, lipstick_fan):
    stranger = ProfileFactory()
    assert_error(client_with(key_for(partner, [Scope.PROFILES_READ])).get(url(stranger)), 404, "not_found")


def test_the_route_needs_profiles_read(partner, lipstick_fan):
    response = client_with(key_for(partner, [Scope.EVENTS_WRITE])).get(url(lipstick_fan))
    assert response.status_code == 403


def test_a_customer_with_nothing_to_go_on_gets_an_empty_list(partner):
    quiet = ProfileFactory()
    PartnerCustomer.objects.create(partner=partner, profile_uuid=quiet.uuid)
    response = client_with(key_for(partner, [Scope.PROFILES_READ])).get(url(quiet))
    assert response.status_code == 200 and response.json() == []


def test_a_customer_with_little_history_gets_popular_categories_filled_in(partner, lipstick_fan):
    newcomer = ProfileFactory()
    PartnerCustomer.objects.create(partner=partner, profile_uuid=newcomer.uuid)
    body = client_with(key_for(partner, [Scope.PROFILES_READ])).get(url(newcomer)).json()
    assert [(r["category"], r["reason_code"], r["reason_category"]) for r in body] == [
        ("lipstick", "popular", ""), ("skincare", "popular", "")]


def test_products_come_with_their_name_category_and_the_product_behind_the_reason(partner):
    from profiles.demo import demo_catalogue

    demo_catalogue()  # names the demo catalogue's products
    for _ in range(3):
        p = ProfileFactory()
        for product, category in (("LIP00001", "lipstick"), ("SKN00002", "skincare")):
            EventFactory(profile=p, name="order", properties={"category": category, "product_id": product},
                         occurred_at=NOW - datetime.timedelta(days=40))
    fan = ProfileFactory()
    EventFactory(profile=fan, name="product_view", properties={"category": "lipstick", "product_id": "LIP00001"},
                 occurred_at=NOW - datetime.timedelta(days=1))
    PartnerCustomer.objects.create(partner=partner, profile_uuid=fan.uuid)
    body = client_with(key_for(partner, [Scope.PROFILES_READ])).get(url(fan), HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert [r["product_id"] for r in body] == ["LIP00001", "SKN00002"]
    assert body[1] | {"score": None, "computed_at": None} == {
        "rank": 2, "product_id": "SKN00002", "category": "skincare", "label": "玻尿酸补水·面霜", "category_label": "护肤",
        "score": None, "reason_code": "viewed", "reason_product": "LIP00001", "reason_category": "lipstick",
        "reason": "因为您浏览了丝绒哑光唇膏·正红", "computed_at": None,
    }
