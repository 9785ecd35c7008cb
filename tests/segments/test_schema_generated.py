"""Definitions generated from the language's JSON Schema (hypothesis-jsonschema), compiled
and run on the test database (SQLite, and PostgreSQL with DATABASE_URL), must name the
same customers as the reference evaluator (tests/segments/evaluator.py) on a small fixed
dataset: the examples' nine customers, their tags, events and segments, and three
campaigns' messages.

The schema the definitions are drawn from is the real one (schema.KINDS, one shape per
kind) with each value narrowed to what the dataset holds — known event names, tags,
cities, campaigns, small numbers — so that the conditions select someone; every drawn
definition is checked against the real schema too, so the narrowing cannot drift outside
it."""
import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as cu
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from campaigns.models import Campaign, CampaignRun, Delivery, Destination
from consent.models import Purpose
from profiles.models import Profile
from segments.conditions import compile_condition, parse, schema
from segments.conditions.campaigns import ACTIONS, WITHOUT_ACTIONS
from segments.conditions.registry import AMOUNT_OPERATORS, COUNT_OPERATORS

from .evaluator import Evaluation, World
from .test_examples import NOW, world  # noqa: F401  (the dataset's fixture)

pytestmark = pytest.mark.django_db


def _more(self) -> bool:
    """hypothesis-jsonschema 0.23.1 (the newest release) draws an object's keys with
    `while many.more():`, which Hypothesis 6.1xx replaced by `with many(...) as elements:
    for _ in elements:`; this is that loop one step at a time, so the library runs on the
    Hypothesis the project pins."""
    if self._depth is None:
        self.__enter__()
        self._steps = iter(self)
    if next(self._steps, StopIteration) is StopIteration:
        self.__exit__(None)
        return False
    return True


if not hasattr(cu.many, "more"):
    cu.many.more = _more
DEPTH = 2  # groups and "not" inside groups and "not"


def enum(*values):
    return {"enum": list(values)}


def obj(required: dict, optional: dict | None = None) -> dict:
    return {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required),
            "additionalProperties": False}


def one_of(*shapes):
    return {"anyOf": list(shapes)}


SMALL_COUNT = {"type": "integer", "minimum": 0, "maximum": 4}
COUNTED = one_of(obj({"op": enum(*sorted(COUNT_OPERATORS - {"between"})), "value": SMALL_COUNT}),
                 obj({"op": enum("between"), "value": enum([0, 0], [0, 1], [1, 2], [2, 5])}))
WINDOW = one_of(obj({"days": enum(1, 7, 30, 90, 180, 365)}), obj({"hours": enum(6, 48)}),
                obj({"weeks": enum(2, 20)}), obj({"months": enum(1, 3, 12)}),
                obj({"period": enum("today", "yesterday", "this_week", "last_week", "this_month", "last_month",
                                    "this_year")}),
                obj({"between": enum(["2026-01-01", "2026-06-01"], ["2025-06-01", "2026-06-15"])}))
FILTER = one_of(
    obj({"property": enum("category"), "op": enum("eq", "ne"),
         "value": enum("sneakers", "lipstick", "japan_travel", "digital", "gift")}),
    obj({"property": enum("category", "channel"), "op": enum("in", "not_in"),
         "value": enum(["sneakers"], ["lipstick", "japan_travel"], ["app", "live"])}),
    obj({"property": enum("price"), "op": enum("gt", "gte", "lt", "lte", "eq"), "value": enum(150, 200, 500, 1200)}),
    obj({"property": enum("occupation", "category"), "op": enum("contains"), "value": enum("ker", "travel")}),
)
EVENT_NAMES = enum("order", "product_view", "page_view", "payment", "account_open_start", "account_open_complete")
TIME_OF_DAY = obj({"from": enum("08:00", "12:00", "20:00", "22:00"), "to": enum("06:00", "18:00", "24:00", "00:00")})
DAYS_OF_WEEK = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}, "minItems": 1,
                "maxItems": 3, "uniqueItems": True}
STEP = {"where": {"type": "array", "items": FILTER, "maxItems": 2},
        "amount": obj({"op": enum(*sorted(AMOUNT_OPERATORS)), "value": enum(0, 200, 500, 1000)}),
        "time_of_day": TIME_OF_DAY, "days_of_week": DAYS_OF_WEEK}
MEASURE = obj({"op": enum(*sorted(AMOUNT_OPERATORS)), "value": enum(0, 200, 500, 1000, 6000)},
              {"of": enum("price")})


def event_shapes() -> list[dict]:
    """One shape per measure (the language takes one measure per event condition)."""
    plain = {"event": EVENT_NAMES}
    return [
        obj(plain, {**STEP, "within": WINDOW, "count": COUNTED}),
        *(obj({**plain, measure: MEASURE}, {**STEP, "within": WINDOW}) for measure in ("sum", "avg", "min", "max")),
        obj({**plain, "distinct": obj({"of": enum("category", "price"), "op": enum("gte", "eq", "lt"),
                                       "value": SMALL_COUNT})}, {**STEP, "within": WINDOW}),
        obj({**plain, "share": obj({"op": enum("gt", "gte", "lt"), "value": enum(0, 0.5, 1)}),
             "time_of_day": TIME_OF_DAY}, {"within": WINDOW, "where": STEP["where"]}),
        obj({**plain, "first_within_days": enum(7, 30, 365)}, {"where": STEP["where"]}),
        obj({**plain, "last_more_than_days_ago": enum(7, 30, 365)}, {"where": STEP["where"]}),
    ]


def sequence_shape() -> dict:
    first = obj({"event": EVENT_NAMES}, {**STEP, "within": WINDOW})
    later = obj({"event": EVENT_NAMES, "within_days": enum(1, 2, 7, 30)}, STEP)

    def steps(least: int) -> dict:
        return {"type": "array", "items": [first], "additionalItems": later, "minItems": least, "maxItems": 4}

    between = obj({"event": EVENT_NAMES}, {"where": STEP["where"]})
    # A drop-off of two steps has nothing in between (the language refuses "not_between" there).
    return one_of(obj({"sequence": steps(2)}, {"op": enum("then"), "not_between": between}),
                  obj({"sequence": steps(2), "op": enum("not_then")}),
                  obj({"sequence": steps(3), "op": enum("not_then"), "not_between": between}))


def field_shapes() -> list[dict]:
    return [
        obj({"field": enum("city"), "op": enum("eq", "ne"), "value": enum("上海", "上海市", "Shanghai", "北京", "杭州")}),
        obj({"field": enum("city", "province"), "op": enum("in", "not_in"), "value": enum(["上海"], ["北京", "广东"])}),
        obj({"field": enum("gender"), "op": enum("eq", "ne"), "value": enum("female", "male", "女", "F")}),
        obj({"field": enum("total_spent", "order_count", "rfm_recency"),
             "op": enum("eq", "ne", "gt", "gte", "lt", "lte"), "value": enum(0, 2, 4, 3500, 5200, 6000)}),
        obj({"field": enum("birth_year"), "op": enum("eq", "ne", "gt", "gte", "lt", "lte"),
             "value": enum(1980, 1996, 2008)}),
        obj({"field": enum("birth_year"), "op": enum("between"), "value": enum([1990, 2000], [1996, 1996])}),
        obj({"field": enum("total_spent"), "op": enum("between"), "value": enum([0, 5000], [3500, 6000])}),
        obj({"field": enum("age"), "op": enum("between"), "value": enum([18, 30], [0, 150])}),
        obj({"field": enum("age"), "op": enum("gte", "lte"), "value": enum(18, 25, 30)}),
        obj({"field": enum("last_order_at", "last_seen_at", "created_at", "birth_date"),
             "op": enum("within_last_days", "more_than_days_ago"), "value": enum(1, 7, 30, 90, 365)}),
        obj({"field": enum("birth_date", "first_seen_at"), "op": enum("before", "after", "on_or_before", "on_or_after"),
             "value": enum("1996-03-03", "2026-03-17", "2025-08-19T10:30:00")}),
        obj({"field": enum("birth_date"), "op": enum("anniversary_within_days"), "value": enum(3, 30)}),
        obj({"field": enum("occupation", "email", "name"), "op": enum("contains", "starts_with"),
             "value": enum("design", "学", "wei", "芳")}),
        obj({"field": enum("email", "occupation", "phone", "birth_date", "lifecycle_stage", "traits.score"),
             "op": enum("is_set", "is_empty")}),
        obj({"field": enum("lifecycle_stage"), "op": enum("eq", "ne"), "value": enum("active", "dormant", "new")}),
        obj({"field": enum("traits.member_level"), "op": enum("eq", "ne"), "value": enum("金卡", "银卡")}),
        obj({"field": enum("traits.score"), "op": enum("gt", "lte"), "value": enum(12.5, 88, 300)}),
        obj({"field": enum("traits.vip"), "op": enum("eq", "ne"), "value": enum(True, False)}),
    ]


def tag_shapes() -> list[dict]:
    slugs = enum("sneaker-lover", "lipstick-fan", "marathon", "vip", "unused", "喜欢运动鞋")
    return [
        obj({"tag": slugs, "op": enum("has", "has_not")}),
        obj({"tag": enum("sneaker-lover", "lipstick-fan"), "op": enum("weight_gte"), "value": enum(0, 0.5, 0.8)}),
        obj({"tags": {"type": "array", "items": slugs, "minItems": 1, "maxItems": 3}, "op": enum("has_any", "has_all")}),
        obj({"tag_category": enum("interest", "value", "basic"), "op": enum("has_any")}),
    ]


def campaign_shapes(campaigns: list) -> list[dict]:
    refs = enum("any", *campaigns)
    with_later = [action for action in ACTIONS if WITHOUT_ACTIONS[action]]
    common = {"within": WINDOW, "count": COUNTED}
    shapes = [obj({"campaign": refs, "action": enum(*ACTIONS)}, common),
              obj({"campaign": enum("any"), "action": enum(*ACTIONS), "channel": enum("sms", "email")}, common)]
    for action in with_later:
        shapes.append(obj({"campaign": refs, "action": enum(action), "without": enum(*WITHOUT_ACTIONS[action])}, common))
    return shapes


def leaf_schema(campaigns: list) -> dict:
    """The narrowed schema of the conditions that are not groups."""
    return one_of(*field_shapes(), *tag_shapes(), *event_shapes(), *sequence_shape()["anyOf"],
                  *campaign_shapes(campaigns),
                  obj({"segment": enum("shanghai-women", "shoe-buyers", "campaign-list")}, {"op": enum("in", "not_in")}))


def definitions(campaigns: list):
    """Leaves drawn from the narrowed schema; groups ({"all"/"any": [1–3 conditions]},
    {"not": …}) around them as the schema's group shapes nest them, up to DEPTH levels.
    (hypothesis-jsonschema does not follow the schema's recursive reference, and
    canonicalising an unrolled one is slow: the nesting is drawn here instead.)"""
    nodes = from_schema(leaf_schema(campaigns))
    for _level in range(DEPTH):
        children = st.lists(nodes, min_size=1, max_size=3)
        nodes = st.one_of(nodes, st.builds(lambda c: {"all": c}, children), st.builds(lambda c: {"any": c}, children),
                          st.builds(lambda c: {"not": c}, nodes))
    return nodes


@pytest.fixture
def dataset(world):  # noqa: F811
    """The examples' customers, and three campaigns' messages to some of them."""
    people = {p.name: p for p in Profile.objects.filter(status="active")}
    destination = Destination.objects.create(name="短信", kind="webhook", config={"url": "http://127.0.0.1:9/"})

    def campaign(name, purpose, goal=""):
        return Campaign.objects.create(name=name, purpose=Purpose.objects.get(code=purpose), destination=destination,
                                       audience_kind="trigger_event", trigger_event="order", goal_event=goal,
                                       goal_where=[{"property": "category", "op": "eq", "value": "sneakers"}] if goal
                                       else [], attribution_days=7, status="finished")

    def message(campaign, name, days, status="delivered", clicked=None, opened=None):
        at = NOW - datetime.timedelta(days=days)
        Delivery.objects.create(run=CampaignRun.objects.create(campaign=campaign, started_at=at), campaign=campaign,
                                destination=destination, profile=people[name], channel=campaign.purpose.channel,
                                status=status, created_at=at, sent_at=None if status == "holdout" else at,
                                delivered_at=at if status == "delivered" else None,
                                opened_at=None if opened is None else at + datetime.timedelta(hours=opened),
                                clicked_at=None if clicked is None else at + datetime.timedelta(hours=clicked))

    shoes = campaign("运动鞋短信", "sms_marketing", goal="order")
    news = campaign("月度邮件", "email_marketing")
    message(shoes, "芳", 12, clicked=2)  # her order 10 days ago converts
    message(shoes, "敏", 5, status="sent")  # orders 1 and 2 days ago convert
    message(shoes, "燕", 25, status="holdout")
    message(shoes, "伟", 6, clicked=1)  # his order 4 days ago converts
    message(news, "芳", 40, opened=3)
    message(news, "静", 40, opened=1, clicked=2)
    message(news, "雷", 2, status="failed")
    return {"definitions": definitions([shoes.pk, news.pk, str(news.pk), "运动鞋短信"]), "world": World.load()}


REAL_SCHEMA = Draft202012Validator(schema.definition_schema())


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_definitions_generated_from_the_schema_select_what_the_evaluator_selects(dataset, data):
    definition = data.draw(dataset["definitions"], label="definition")
    assert not list(REAL_SCHEMA.iter_errors(definition)), definition  # the narrowing stays inside the real schema

    matched = set(Profile.objects.filter(compile_condition(parse(definition), NOW), status="active")
                  .values_list("pk", flat=True))

    world = dataset["world"]
    evaluation = Evaluation(world, NOW)
    assert matched == {c.pk for c in world.customers if evaluation.meets(definition, c)}, definition
