"""The {{ recommended }} token: the name of the customer's top recommended product (or the label of
their top category where their events name no product), in
the messages' language; empty for a customer with no recommendations."""
import datetime
from types import SimpleNamespace

import pytest
from django.utils import timezone

from campaigns.content import template_compile, template_render
from campaigns.personalise import tokens_for
from profiles.services.recommendations import recommendations_compute
from tests.factories import EventFactory, ProfileFactory

pytestmark = pytest.mark.django_db


def delivery(pk, profile):
    return SimpleNamespace(pk=pk, profile_id=profile.pk, variant=None, coupon_code="")


def test_the_recommended_token_is_the_top_category_label_in_chinese():
    fan, quiet = ProfileFactory(), ProfileFactory()
    EventFactory(profile=fan, name="add_to_cart", properties={"category": "skincare"},
                 occurred_at=timezone.now() - datetime.timedelta(days=1))
    recommendations_compute(profile_ids=[fan.pk, quiet.pk])
    tokens = tokens_for([delivery(1, fan), delivery(2, quiet)])
    template = template_compile("{% if recommended %}为您推荐：{{ recommended }}{% else %}新品上市{% endif %}")
    assert template_render(template, tokens[1]) == "为您推荐：护肤"
    assert template_render(template, tokens[2]) == "新品上市"


def test_the_recommended_token_is_the_top_product_name_where_events_name_products():
    from profiles.demo import demo_catalogue

    demo_catalogue()  # names the demo catalogue's products
    fan = ProfileFactory()
    EventFactory(profile=fan, name="add_to_cart", properties={"category": "sneakers", "product_id": "SNK00007"},
                 occurred_at=timezone.now() - datetime.timedelta(days=1))
    recommendations_compute(profile_ids=[fan.pk])
    tokens = tokens_for([delivery(1, fan)])
    assert template_render(template_compile("为您推荐：{{ recommended }}"), tokens[1]) == "为您推荐：专业竞速跑鞋·黑色"
