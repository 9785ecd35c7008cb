"""Campaign behaviour in the condition language: sent, received, opened, clicked,
converted, unsubscribed and held out, for one campaign or any (of a channel), in windows,
counted per message, with "… but not …" on the same message — compiled SQL against
hand-worked members and the reference evaluator, refusals with their paths, the why page."""
import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from campaigns.models import Campaign, CampaignRun, Delivery, Destination
from consent.models import Purpose
from profiles.models import Profile
from segments.builder import builder_options
from segments.conditions import compile_condition, describe, explain, parse
from tests.factories import EventFactory, ProfileFactory

from .evaluator import World

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2026, 6, 15, 4, 0, tzinfo=datetime.timezone.utc)  # 12:00 in Shanghai


def ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


def a_campaign(name, purpose="sms_marketing", goal="", where=None, days=7):
    destination = Destination.objects.create(name=f"{name} 通道", kind="webhook", config={"url": "http://127.0.0.1:9/"})
    return Campaign.objects.create(name=name, purpose=Purpose.objects.get(code=purpose), destination=destination,
                                   audience_kind="trigger_event", trigger_event="order", goal_event=goal,
                                   goal_where=where or [], attribution_days=days, status="finished")


def message(campaign, profile, *, status="delivered", days=None, delivered=None, opened=None, clicked=None,
            unsubscribed=None):
    """One delivery, `days` ago (sent then unless held out or failed before sending)."""
    run = CampaignRun.objects.create(campaign=campaign, started_at=ago(days))
    channel = campaign.purpose.channel
    sent = ago(days) if status in ("sent", "delivered", "failed") else None
    return Delivery.objects.create(
        run=run, campaign=campaign, destination=campaign.destination, profile=profile, channel=channel, status=status,
        created_at=ago(days), sent_at=sent, delivered_at=None if delivered is None else ago(delivered),
        opened_at=None if opened is None else ago(opened), clicked_at=None if clicked is None else ago(clicked),
        unsubscribed_at=None if unsubscribed is None else ago(unsubscribed))


def order(profile, days, category):
    EventFactory(profile=profile, name="order", occurred_at=ago(days), amount=Decimal("100"),
                 properties={"category": category})


@pytest.fixture
def shop():
    """Three campaigns and seven customers; see each line for what happened."""
    fang, lei, mei, jun, yan, jing, qiang, min_ = (ProfileFactory(name=name) for name in "芳雷梅军燕静强敏")
    shoes = a_campaign("双十一短信", goal="order", where=[{"property": "category", "op": "eq", "value": "sneakers"}])
    news = a_campaign("月度邮件", purpose="email_marketing")  # no goal: nobody converts
    flash = a_campaign("闪购短信", goal="order", days=3)
    message(shoes, fang, days=3, delivered=3, clicked=2.9)
    order(fang, 2, "sneakers")  # converted, inside the last 7 days
    message(shoes, lei, days=3, delivered=3)
    order(lei, 1, "digital")  # not the goal's category
    message(shoes, mei, status="holdout", days=3)
    order(mei, 1, "sneakers")  # held out: not a conversion
    message(shoes, jun, status="sent", days=3)  # no receipt: sent, not received
    message(news, jun, days=40, delivered=40, opened=39, unsubscribed=39)
    message(shoes, yan, status="failed", days=3)
    message(news, yan, days=10, delivered=10)
    message(news, yan, days=2, delivered=2, opened=1.5, clicked=1.5)
    message(shoes, qiang, days=20, delivered=20)
    order(qiang, 15, "sneakers")  # converted 15 days ago
    message(flash, min_, status="sent", days=5)
    order(min_, 4, "gift")  # any order converts for the flash sale
    # 静 never had a message
    return {"shoes": shoes.pk, "news": news.pk, "flash": flash.pk}


def members(definition) -> set[str]:
    return set(Profile.objects.filter(compile_condition(parse(definition), NOW)).values_list("name", flat=True))


def cases(ids):
    shoes, news = ids["shoes"], ids["news"]
    return [
        ({"campaign": shoes, "action": "sent"}, {"芳", "雷", "军", "强"}),
        ({"campaign": shoes, "action": "received"}, {"芳", "雷", "强"}),
        ({"campaign": shoes, "action": "received", "without": "clicked"}, {"雷", "强"}),
        ({"all": [{"campaign": shoes, "action": "received"}, {"not": {"campaign": shoes, "action": "clicked"}}]},
         {"雷", "强"}),
        ({"campaign": shoes, "action": "converted"}, {"芳", "强"}),
        ({"campaign": shoes, "action": "converted", "within": {"days": 7}}, {"芳"}),
        ({"campaign": shoes, "action": "clicked", "without": "converted"}, set()),
        ({"campaign": shoes, "action": "received", "without": "converted"}, {"雷"}),
        ({"campaign": shoes, "action": "held_out"}, {"梅"}),
        ({"campaign": "双十一短信", "action": "clicked"}, {"芳"}),
        ({"campaign": str(news), "action": "opened", "without": "unsubscribed"}, {"燕"}),
        ({"campaign": "any", "action": "clicked"}, {"芳", "燕"}),
        ({"campaign": "any", "action": "converted"}, {"芳", "强", "敏"}),
        ({"campaign": "any", "action": "unsubscribed", "within": {"months": 2}}, {"军"}),
        ({"campaign": "any", "channel": "email", "action": "received", "count": {"op": "gte", "value": 2}}, {"燕"}),
        ({"campaign": "any", "channel": "sms", "action": "sent", "within": {"period": "this_month"}},
         {"芳", "雷", "军", "敏"}),
        ({"campaign": "any", "channel": "sms", "action": "sent", "within": {"period": "last_month"}}, {"强"}),
        ({"campaign": "any", "action": "received", "within": {"days": 14}, "count": {"op": "eq", "value": 0}},
         {"梅", "军", "静", "强", "敏"}),
        ({"campaign": "any", "action": "received", "count": {"op": "between", "value": [1, 1]}}, {"芳", "雷", "军", "强"}),
        ({"campaign": "any", "action": "received", "count": {"op": "ne", "value": 1}}, {"梅", "燕", "静", "敏"}),
        ({"campaign": "any", "action": "sent", "count": {"op": "lt", "value": 1}}, {"梅", "静"}),
    ]


def test_campaign_behaviour_selects_the_hand_worked_customers(shop):
    for definition, expected in cases(shop):
        assert members(definition) == expected, definition


def test_campaign_behaviour_agrees_with_the_reference_evaluator(shop):
    world = World.load()
    for definition, _expected in cases(shop):
        assert members(definition) == world.members(definition, NOW), definition


def test_the_why_page_names_the_campaign_and_counts_the_customers_messages(shop):
    node = parse({"campaign": shop["shoes"], "action": "received", "without": "clicked", "within": {"days": 30}})
    lei, fang = Profile.objects.get(name="雷"), Profile.objects.get(name="芳")
    with translation.override("zh-hans"):
        text = describe(node)
        assert "双十一短信" in text and "送达" in text and "点击" in text and "30" in text
        why = explain(node, lei, NOW)
        assert why.matched and "1" in why.actual
    assert not explain(node, fang, NOW).matched
    with translation.override("en"):
        assert describe(parse({"campaign": "any", "action": "clicked"})) == "any campaign: clicked, ≥ 1 messages"
        assert describe(parse({"campaign": "any", "channel": "sms", "action": "sent", "count": {
            "op": "between", "value": [2, 3]}})) == "any SMS campaign: sent, 2–3 messages"


@pytest.mark.parametrize("definition, path", [
    ({"campaign": 999999, "action": "sent"}, "campaign"),
    ({"campaign": "没有这个活动", "action": "sent"}, "campaign"),
    ({"campaign": "any", "action": "bought"}, "action"),
    ({"campaign": "any"}, "action"),
    ({"campaign": "any", "action": "sent", "channel": "fax"}, "channel"),
    ({"campaign": "any", "action": "clicked", "without": "sent"}, "without"),
    ({"campaign": "any", "action": "held_out", "without": "clicked"}, "without"),
    ({"campaign": "any", "action": "sent", "count": {"op": "about", "value": 1}}, "count.op"),
    ({"campaign": "any", "action": "sent", "count": {"op": "gte", "value": -1}}, "count.value"),
    ({"campaign": "any", "action": "sent", "within": {"dayz": 3}}, "within.dayz"),
    ({"campaign": "any", "action": "sent", "clicked": True}, "clicked"),
    ({"campaign": ["any"], "action": "sent"}, "campaign"),
    ({"all": [{"campaign": "any", "action": "sent", "event": "order"}]}, "all[0].campaign"),
])
def test_bad_campaign_conditions_name_their_node(shop, definition, path):
    with pytest.raises(ValidationError) as error:
        parse(definition)
    assert any(message.startswith(path) for message in error.value.messages), error.value.messages


def test_a_campaign_named_by_its_id_refuses_a_channel_and_a_shared_name_is_refused_with_the_ids(shop):
    with pytest.raises(ValidationError) as error:
        parse({"campaign": shop["shoes"], "channel": "sms", "action": "sent"})
    assert error.value.messages[0].startswith("channel")
    twin = a_campaign("双十一短信")
    with pytest.raises(ValidationError) as error:
        parse({"campaign": "双十一短信", "action": "sent"})
    assert str(twin.pk) in error.value.messages[0] and str(shop["shoes"]) in error.value.messages[0]


def test_the_builder_offers_campaigns_actions_and_channels_in_chinese(shop):
    with translation.override("zh-hans"):
        options = builder_options()
    assert {item["label"] for item in options["campaigns"]} == {"双十一短信", "月度邮件", "闪购短信"}
    assert dict(options["campaign_actions"])["clicked"] == "点击"
    assert "clicked" in options["campaign_without"]["received"]
    assert options["text"]["kind_campaign"] == "营销活动"


def test_a_campaign_whose_conversion_event_was_unregistered_converts_nobody(shop):
    from profiles.models import EventDefinition

    Campaign.objects.filter(pk=shop["flash"]).update(goal_event="retired_event")
    assert not EventDefinition.objects.filter(name="retired_event").exists()
    assert members({"campaign": "any", "action": "converted"}) == {"芳", "强"}
