"""The condition language: definitions → members on a small hand-built dataset."""
import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from cdp.actors import Actor
from profiles.models import AttributeDefinition, Profile, Tag, TagCategory
from profiles.services.tags import tag_assign
from segments.conditions import compile_condition, describe, explain, parse
from tests.factories import EventFactory, ProfileFactory, TagFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


@pytest.fixture
def people():
    """Five customers with what the definitions below ask about."""
    AttributeDefinition.objects.create(key="member_level", label="会员等级", type="choice", choices=["金卡", "银卡"])
    today = timezone.localdate(NOW)
    fang = ProfileFactory(name="芳", city="上海", gender="female", birth_date=datetime.date(1998, 5, 1),
                          total_spent=Decimal("6000"), order_count=5, lifecycle_stage="active", rfm_recency=5,
                          traits={"member_level": "金卡"})
    lei = ProfileFactory(name="雷", city="北京", gender="male", birth_date=datetime.date(1980, 1, 1),
                         total_spent=Decimal("3500"), order_count=3, lifecycle_stage="dormant",
                         traits={"member_level": "银卡"})
    thirty_years_ago = today.replace(year=today.year - 30, day=min(today.day, 28))
    mei = ProfileFactory(name="梅", city="上海", gender="female", birth_date=thirty_years_ago + datetime.timedelta(days=3),
                         total_spent=Decimal("100"), order_count=0, email="")
    jun = ProfileFactory(name="军", city="深圳", gender="unknown", birth_date=None, phone="")
    yan = ProfileFactory(name="燕", city="上海", gender="female", birth_date=datetime.date(2001, 2, 3))
    sneakers = TagFactory(slug="sneaker-lover", kind="interest", category=TagCategory.objects.get(code="interest"))
    vip = TagFactory(slug="vip", category=TagCategory.objects.get(code="value"))
    one = lambda p: Profile.objects.filter(pk=p.pk)  # noqa: E731
    tag_assign(tag=sneakers, profiles=one(fang), source="interest", actor=Actor.system("t"), weight=0.8)
    tag_assign(tag=sneakers, profiles=one(yan), source="interest", actor=Actor.system("t"), weight=0.3)
    tag_assign(tag=vip, profiles=one(fang), source="manual", actor=Actor.system("t"))
    tag_assign(tag=vip, profiles=one(lei), source="manual", actor=Actor.system("t"))
    shoes = {"category": "sneakers"}
    for days in (3, 10):
        EventFactory(profile=fang, name="order", amount=Decimal("500"), occurred_at=ago(days), properties=shoes)
    EventFactory(profile=fang, name="product_view", occurred_at=ago(5), properties={"category": "lipstick"})
    for days in (100, 200, 300):
        EventFactory(profile=lei, name="order", amount=Decimal("1200"), occurred_at=ago(days), properties={"category": "digital"})
    EventFactory(profile=yan, name="order", amount=Decimal("200"), occurred_at=ago(20), properties=shoes)
    for days in (40, 100, 170):
        EventFactory(profile=mei, name="product_view", occurred_at=ago(days), properties={"category": "japan_travel"})
    # account opening: 梅 finished within a day, 燕 started 20 days ago and never finished,
    # 军 started 2 days ago (still inside the 7 days)
    EventFactory(profile=mei, name="account_open_start", occurred_at=ago(25))
    EventFactory(profile=mei, name="account_open_complete", occurred_at=ago(24.5))
    EventFactory(profile=yan, name="account_open_start", occurred_at=ago(20))
    EventFactory(profile=jun, name="account_open_start", occurred_at=ago(2))
    return {"芳": fang, "雷": lei, "梅": mei, "军": jun, "燕": yan}


def members(definition) -> set[str]:
    q = compile_condition(parse(definition), NOW)
    return set(Profile.objects.filter(q).values_list("name", flat=True))


CASES = [
    # the users' own example: 上海 + 女性 + 喜欢运动鞋 + 高购买频率
    ({"all": [{"field": "city", "op": "eq", "value": "上海"}, {"field": "gender", "op": "eq", "value": "female"},
              {"tag": "sneaker-lover", "op": "has"},
              {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}}]}, {"芳"}),
    ({"any": [{"field": "city", "op": "eq", "value": "北京"}, {"field": "city", "op": "eq", "value": "深圳"}]}, {"雷", "军"}),
    ({"not": {"field": "city", "op": "eq", "value": "上海"}}, {"雷", "军"}),
    ({"field": "city", "op": "ne", "value": "上海"}, {"雷", "军"}),
    ({"field": "city", "op": "in", "value": ["上海", "深圳"]}, {"芳", "梅", "军", "燕"}),
    ({"field": "city", "op": "not_in", "value": ["上海"]}, {"雷", "军"}),
    ({"field": "name", "op": "contains", "value": "芳"}, {"芳"}),
    ({"field": "city", "op": "starts_with", "value": "上"}, {"芳", "梅", "燕"}),
    ({"field": "birth_date", "op": "is_empty"}, {"军"}),
    ({"field": "phone", "op": "is_empty"}, {"军"}),
    ({"field": "email", "op": "is_set"}, {"芳", "雷", "军", "燕"}),
    ({"field": "gender", "op": "is_empty"}, {"军"}),
    ({"field": "total_spent", "op": "gte", "value": 5000}, {"芳"}),
    ({"field": "total_spent", "op": "between", "value": [100, 3500]}, {"雷", "梅"}),
    ({"field": "order_count", "op": "lt", "value": 3}, {"梅", "军", "燕"}),
    ({"field": "rfm_recency", "op": "eq", "value": 5}, {"芳"}),
    ({"field": "lifecycle_stage", "op": "in", "value": ["active", "dormant"]}, {"芳", "雷"}),
    ({"field": "birth_date", "op": "before", "value": "1990-01-01"}, {"雷"}),
    ({"field": "birth_year", "op": "gte", "value": 1995}, {"芳", "梅", "燕"}),  # 梅 was born 30 years ago
    ({"field": "birth_year", "op": "between", "value": [1990, 1997]}, {"梅"}),
    ({"field": "age", "op": "between", "value": [29, 30]}, {"梅"}),
    ({"field": "age", "op": "gte", "value": 40}, {"雷"}),
    ({"field": "birth_date", "op": "anniversary_within_days", "value": 7}, {"梅"}),
    ({"field": "traits.member_level", "op": "eq", "value": "金卡"}, {"芳"}),
    ({"tag": "sneaker-lover", "op": "has_not"}, {"雷", "梅", "军"}),
    ({"tags": ["sneaker-lover", "vip"], "op": "has_all"}, {"芳"}),
    ({"tags": ["sneaker-lover", "vip"], "op": "has_any"}, {"芳", "雷", "燕"}),
    ({"tag_category": "value", "op": "has_any"}, {"芳", "雷"}),
    ({"tag": "sneaker-lover", "op": "weight_gte", "value": 0.5}, {"芳"}),
    ({"event": "order"}, {"芳", "雷", "燕"}),
    ({"event": "order", "count": {"op": "eq", "value": 0}}, {"梅", "军"}),
    ({"event": "order", "count": {"op": "lte", "value": 1}}, {"梅", "军", "燕"}),
    ({"event": "order", "count": {"op": "eq", "value": 3}}, {"雷"}),
    ({"event": "order", "count": {"op": "between", "value": [2, 3]}}, {"芳", "雷"}),
    ({"event": "order", "count": {"op": "between", "value": [0, 1]}}, {"梅", "军", "燕"}),
    ({"event": "order", "count": {"op": "gt", "value": 1}}, {"芳", "雷"}),
    ({"event": "order", "count": {"op": "gt", "value": 0}}, {"芳", "雷", "燕"}),
    ({"event": "order", "count": {"op": "lt", "value": 1}}, {"梅", "军"}),
    ({"event": "order", "count": {"op": "ne", "value": 1}}, {"芳", "雷", "梅", "军"}),
    ({"event": "order", "within": {"weeks": 2}}, {"芳"}),
    ({"event": "order", "within": {"hours": 100}}, {"芳"}),
    ({"event": "order", "within": {"months": 1}}, {"芳", "燕"}),
    ({"event": "order", "within": {"minutes": 60}}, set()),
    ({"field": "birth_date", "op": "on_or_before", "value": "1980-01-01"}, {"雷"}),
    ({"field": "birth_date", "op": "before", "value": "1980-01-01"}, set()),
    ({"field": "birth_date", "op": "on_or_after", "value": "2001-02-03"}, {"燕"}),
    ({"event": "order", "where": [{"property": "category", "op": "eq", "value": "sneakers"}]}, {"芳", "燕"}),
    # The category is read from its own column: the same answers as the JSON, an event
    # without one being "not equal" to any value.
    ({"event": "product_view", "where": [{"property": "category", "op": "ne", "value": "japan_travel"}]}, {"芳"}),
    ({"event": "order", "where": [{"property": "category", "op": "not_in", "value": ["sneakers"]}]}, {"雷"}),
    ({"event": "order", "where": [{"property": "category", "op": "in", "value": ["sneakers", "digital"]}]},
     {"芳", "雷", "燕"}),
    ({"event": "product_view", "where": [{"property": "category", "op": "contains", "value": "JAPAN"}]}, {"梅"}),
    ({"event": "account_open_start", "where": [{"property": "category", "op": "ne", "value": "x"}]},
     {"梅", "燕", "军"}),
    ({"event": "order", "amount": {"op": "gte", "value": 300}}, {"芳", "雷"}),
    ({"event": "order", "sum": {"op": "gte", "value": 1000}, "within": {"days": 365}}, {"芳", "雷"}),
    ({"event": "order", "sum": {"op": "lt", "value": 500}}, {"梅", "军", "燕"}),
    ({"event": "order", "avg": {"op": "gte", "value": 1000}}, {"雷"}),
    ({"event": "order", "within": {"between": [ago(15).isoformat(), ago(1).isoformat()]}}, {"芳"}),
    ({"event": "order", "first_within_days": 30}, {"芳", "燕"}),
    ({"event": "order", "last_more_than_days_ago": 60}, {"雷"}),
    ({"event": "product_view", "count": {"op": "gte", "value": 3}, "within": {"days": 180},
      "where": [{"property": "category", "op": "eq", "value": "japan_travel"}]}, {"梅"}),
    # high value at risk: ≥3 orders in a year, none in the last 60 days, spent ≥ 3000
    ({"all": [{"event": "order", "count": {"op": "gte", "value": 3}, "within": {"days": 365}},
              {"not": {"event": "order", "within": {"days": 60}}},
              {"field": "total_spent", "op": "gte", "value": 3000}]}, {"雷"}),
    # Events aggregates inside an AND with a total-spent condition count only the orders
    # of the customers it finds: the answers stay those of the unrestricted aggregate,
    # under NOT, OR and a count that 0 meets too.
    ({"all": [{"field": "total_spent", "op": "gte", "value": 3000},
              {"not": {"event": "order", "count": {"op": "gte", "value": 3}}}]}, {"芳"}),
    ({"all": [{"field": "total_spent", "op": "gte", "value": 3000},
              {"event": "order", "count": {"op": "lte", "value": 2}}]}, {"芳"}),
    ({"all": [{"field": "total_spent", "op": "gte", "value": 3000},
              {"any": [{"event": "order", "count": {"op": "gte", "value": 3}, "within": {"days": 365}},
                       {"field": "city", "op": "eq", "value": "上海"}]}]}, {"芳", "雷"}),
    ({"all": [{"field": "total_spent", "op": "lt", "value": 3000}, {"event": "order", "first_within_days": 30}]},
     {"燕"}),
    ({"sequence": [{"event": "account_open_start", "within": {"days": 30}}, {"event": "account_open_complete"}],
      "within_days": 7, "op": "then"}, {"梅"}),
    # started in the last 30 days, did not finish within 7 (军 is still inside his 7 days)
    ({"sequence": [{"event": "account_open_start", "within": {"days": 30}}, {"event": "account_open_complete"}],
      "within_days": 7, "op": "not_then"}, {"燕"}),
    ({"all": [{"any": [{"not": {"all": [{"field": "city", "op": "eq", "value": "上海"}]}}]}]}, {"雷", "军"}),
]


@pytest.mark.parametrize("definition, expected", CASES, ids=[str(i) for i in range(len(CASES))])
def test_definitions_select_exactly_the_expected_customers(people, definition, expected):
    assert members(definition) == expected


@pytest.mark.parametrize(
    "definition, path",
    [
        ({}, "$"),
        ([], "$"),
        ({"all": []}, "all"),
        ({"field": "password", "op": "eq", "value": "x"}, "field"),
        ({"field": "city", "op": "gt", "value": "x"}, "op"),
        ({"field": "total_spent", "op": "gte", "value": "lots"}, "value"),
        ({"field": "gender", "op": "eq", "value": "robot"}, "value"),
        ({"field": "birth_date", "op": "before", "value": "yesterday"}, "value"),
        ({"field": "birth_date", "op": "before", "value": "2026-02-30"}, "value"),
        ({"field": "last_seen_at", "op": "after", "value": "2026-02-28T25:00"}, "value"),
        ({"field": "total_spent", "op": "between", "value": [1]}, "value"),
        ({"tag": "no-such-tag", "op": "has"}, "tag"),
        ({"event": "teleport"}, "event"),
        ({"event": "order", "count": {"op": "gte", "value": -1}}, "count.value"),
        ({"event": "order", "within": {"days": 0}}, "within.days"),
        ({"event": "order", "within": {"days": 10**30}}, "within.days"),
        ({"event": "order", "count": {"op": "gte", "value": 10**30}}, "count.value"),
        ({"field": "last_seen_at", "op": "within_last_days", "value": 10**30}, "value"),
        ({"event": "order", "where": True}, "where"),
        ({"event": "order", "where": {"property": "category"}}, "where"),
        ({"event": "order", "count": {"op": "gte", "value": 1}, "sum": {"op": "gte", "value": 1}}, "$"),
        ({"sequence": [{"event": "order"}], "within_days": 7}, "sequence"),
        ({"all": [{"field": "city", "op": "eq", "value": "上海"}, {"bogus": 1}]}, "all[1]."),
        ({"all": [{"not": {"field": "nope", "op": "eq", "value": 1}}]}, "all[0].not.field"),
        # Nothing wrong is silent: misspelled keys, kinds sharing a node, wrong types, steps' own windows.
        ({"event": "order", "withn": {"days": 30}}, "withn"),
        ({"all": [{"event": "order", "count": {"op": "gte", "value": 1, "vale": 2}}]}, "all[0].count.vale"),
        ({"all": [{"field": "city", "op": "eq", "value": "上海"}], "any": [{"tag": "vip", "op": "has"}]}, "any"),
        ({"field": "city", "op": "eq", "value": "上海", "event": "order"}, "event"),
        ({"event": "order", "where": [{"property": "category", "op": "eq", "value": "x", "extra": 1}]},
         "where[0].extra"),
        ({"event": 7}, "event"),
        ({"sequence": [{"event": "order"}, {"event": "order", "within": {"days": 1}}], "within_days": 7},
         "sequence[1].within"),
        ({"sequence": [{"event": "order", "count": {"op": "gte", "value": 2}}, {"event": "order"}],
          "within_days": 7}, "sequence[0].count"),
        ({"field": "phone", "op": "eq", "value": "12345"}, "value"),
        ({"field": "email", "op": "in", "value": ["wei@example.com", "not-an-email"]}, "value[1]"),
        ({"tags": ["vip", "nope"], "op": "has_any"}, "tags[1]"),
        # An age far beyond a life counted back from today is no date (found by the generated definitions).
        ({"field": "age", "op": "between", "value": [0, 5000]}, "value[1]"),
        ({"field": "age", "op": "gte", "value": 18.5}, "value"),
        ({"field": "birth_year", "op": "eq", "value": 0}, "value"),
        ({"field": "birth_year", "op": "between", "value": [1990, 1995.5]}, "value[1]"),
    ],
)
def test_invalid_definitions_name_the_bad_node(people, definition, path):
    with pytest.raises(ValidationError) as error:
        parse(definition)
    assert any(message.startswith(path) for message in error.value.messages), error.value.messages


def test_every_problem_is_reported_at_once(people):
    with pytest.raises(ValidationError) as error:
        parse({"all": [{"field": "nope", "op": "eq", "value": 1}, {"event": "teleport"}]})
    assert len(error.value.messages) == 2


def flatten(explanation, depth=0):
    yield depth, explanation.label, explanation.matched
    for child in explanation.children:
        yield from flatten(child, depth + 1)


def test_explain_says_which_conditions_a_customer_meets_and_misses(people):
    definition = parse(CASES[0][0])  # 上海 + 女性 + 喜欢运动鞋 + ≥2 orders in 30 days
    fang = list(flatten(explain(definition, people["芳"], NOW)))
    yan = list(flatten(explain(definition, people["燕"], NOW)))
    assert all(matched for _depth, _label, matched in fang)
    assert [matched for _depth, _label, matched in yan] == [False, True, True, True, False]
    labels = [label for _depth, label, _matched in yan]
    assert labels[0] == "满足以下全部条件"
    assert labels[1] == "城市 = 上海"
    assert labels[3] == f"有标签 {Tag.objects.get(slug='sneaker-lover').name}"
    assert labels[4] == "下单 ≥ 2 次 最近 30 天内"


@pytest.mark.parametrize("definition, expected", CASES, ids=[str(i) for i in range(len(CASES))])
def test_explain_agrees_with_membership_for_every_case(people, definition, expected):
    node = parse(definition)
    for name, profile in people.items():
        assert explain(node, profile, NOW).matched == (name in expected)
        assert describe(node)


def test_a_misspelled_key_says_which_key_was_meant(people):
    with pytest.raises(ValidationError) as error:
        parse({"event": "order", "withn": {"days": 30}})
    assert any("within" in message for message in error.value.messages), error.value.messages


@pytest.mark.parametrize("city", ["上海", "上海市", "Shanghai", " shanghai "])
def test_city_values_mean_what_the_importer_stores(people, city):
    assert members({"field": "city", "op": "eq", "value": city}) == {"芳", "梅", "燕"}
    assert members({"field": "city", "op": "in", "value": [city, "北京市"]}) == {"芳", "梅", "燕", "雷"}


@pytest.mark.parametrize("gender", ["female", "女", "女士", "F"])
def test_gender_words_mean_the_stored_gender(people, gender):
    assert members({"field": "gender", "op": "eq", "value": gender}) == {"芳", "梅", "燕"}


def test_phone_and_dates_in_any_accepted_form(people):
    people["芳"].phone = "+8613800138000"
    people["芳"].save()
    assert members({"field": "phone", "op": "eq", "value": "138-0013-8000"}) == {"芳"}
    assert members({"field": "birth_date", "op": "before", "value": "1990/1/2"}) == {"雷"}
    assert members({"field": "birth_date", "op": "before", "value": "1990年1月2日"}) == {"雷"}


def test_tags_are_named_by_slug_or_by_name(people):
    Tag.objects.filter(slug="sneaker-lover").update(name="喜欢运动鞋")
    assert members({"tag": "喜欢运动鞋", "op": "has"}) == members({"tag": "sneaker-lover", "op": "has"}) == {"芳", "燕"}
    assert members({"tags": ["喜欢运动鞋", "vip"], "op": "has_all"}) == {"芳"}


def test_a_tag_name_several_tags_share_is_refused_with_their_slugs(people):
    TagFactory(slug="vip-2", name="贵宾", category=TagCategory.objects.get(code="interest"))
    Tag.objects.filter(slug="vip").update(name="贵宾")
    with pytest.raises(ValidationError) as error:
        parse({"tag": "贵宾", "op": "has"})
    assert any("vip, vip-2" in message for message in error.value.messages), error.value.messages


@pytest.mark.parametrize("period, expected", [
    ("today", {"today"}), ("yesterday", {"late last night"}), ("this_week", {"today", "late last night", "monday"}),
    ("last_week", {"last sunday"}), ("this_month", {"today", "late last night", "monday"}),
    ("last_month", {"last sunday", "november"}), ("this_year", {"today", "late last night", "monday", "last sunday", "november"}),
])
def test_calendar_periods_begin_at_midnight_in_shanghai(period, expected):
    """Now: Saturday 2026-12-05 10:00 in Shanghai (02:00 UTC). The order "late last night"
    is on Friday 23:30 Shanghai time: yesterday there, though today in UTC."""
    shanghai = datetime.timezone(datetime.timedelta(hours=8))
    now = datetime.datetime(2026, 12, 5, 10, 0, tzinfo=shanghai)
    times = {"today": (5, 0, 30), "late last night": (4, 23, 30), "monday": (1, 9, 0), "last sunday": (29, 12, 0),
             "november": (2, 12, 0), "last year": (31, 12, 0)}
    for name, (day, hour, minute) in times.items():
        month = 12 if name not in ("last sunday", "november") else 11
        year = 2025 if name == "last year" else 2026
        EventFactory(profile=ProfileFactory(name=name), name="order",
                     occurred_at=datetime.datetime(year, month, day, hour, minute, tzinfo=shanghai))
    q = compile_condition(parse({"event": "order", "within": {"period": period}}), now)
    assert set(Profile.objects.filter(q).values_list("name", flat=True)) == expected


@pytest.mark.parametrize("condition, expected", [
    ({"time_of_day": {"from": "20:00", "to": "24:00"}}, {"night owl", "late saturday"}),
    ({"time_of_day": {"from": "22:00", "to": "06:00"}}, {"late saturday", "early bird"}),
    ({"time_of_day": {"from": "09:00", "to": "12:00"}}, {"office"}),
    ({"days_of_week": [6, 7]}, {"late saturday"}),
    ({"days_of_week": [2], "time_of_day": {"from": "20:00", "to": "24:00"}}, {"night owl"}),
])
def test_time_of_day_and_day_of_week_are_on_the_shanghai_clock(condition, expected):
    """Orders placed after 20:00 (喜欢在晚上8点后下单): 23:30 on Saturday in Beijing is 15:30
    UTC, but it is evening and Saturday where the customer is."""
    shanghai = datetime.timezone(datetime.timedelta(hours=8))
    times = {"night owl": (1, 21, 0), "late saturday": (5, 23, 30), "early bird": (2, 5, 59), "office": (3, 9, 0)}
    for name, (day, hour, minute) in times.items():  # 2026-12-01 is a Tuesday
        EventFactory(profile=ProfileFactory(name=name), name="order",
                     occurred_at=datetime.datetime(2026, 12, day, hour, minute, tzinfo=shanghai))
    now = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=shanghai)
    q = compile_condition(parse({"event": "order", **condition}), now)
    assert set(Profile.objects.filter(q).values_list("name", flat=True)) == expected


@pytest.mark.parametrize("condition, path", [
    ({"time_of_day": {"from": "20:00", "to": "25:00"}}, "time_of_day.to"),
    ({"time_of_day": {"from": "8pm", "to": "24:00"}}, "time_of_day.from"),
    ({"time_of_day": {"from": "20:00"}}, "time_of_day.to"),
    ({"time_of_day": {"from": "20:00", "to": "20:00"}}, "time_of_day"),
    ({"days_of_week": [0]}, "days_of_week[0]"),
    ({"days_of_week": ["sat"]}, "days_of_week[0]"),
])
def test_bad_times_and_days_name_their_node(people, condition, path):
    with pytest.raises(ValidationError) as error:
        parse({"event": "order", **condition})
    assert any(message.startswith(path) for message in error.value.messages), error.value.messages


def test_aggregates_of_any_numeric_property_and_distinct_counts():
    """Orders in at least 3 distinct categories; the most expensive item; items bought."""
    buyer, narrow, none = ProfileFactory(name="buyer"), ProfileFactory(name="narrow"), ProfileFactory(name="none")
    for category, price, quantity in (("lipstick", 199, 2), ("sneakers", 899, 1), ("digital", 3999, 1),
                                      ("lipstick", 99, 3)):
        EventFactory(profile=buyer, name="order", occurred_at=ago(5),
                     properties={"category": category, "price": price, "quantity": quantity})
    EventFactory(profile=narrow, name="order", occurred_at=ago(5), properties={"category": "lipstick", "price": "abc"})
    EventFactory(profile=narrow, name="order", occurred_at=ago(6), properties={"category": "lipstick", "price": 50})

    def who(measure, spec):
        q = compile_condition(parse({"event": "order", measure: spec}), NOW)
        return set(Profile.objects.filter(q, name__in=["buyer", "narrow", "none"]).values_list("name", flat=True))

    assert who("distinct", {"of": "category", "op": "gte", "value": 3}) == {"buyer"}
    assert who("distinct", {"of": "category", "op": "eq", "value": 1}) == {"narrow"}
    assert who("distinct", {"of": "category", "op": "lt", "value": 1}) == {"none"}
    assert who("max", {"of": "price", "op": "gte", "value": 1000}) == {"buyer"}
    assert who("min", {"of": "price", "op": "lte", "value": 50}) == {"narrow"}  # "abc" is no number
    assert who("sum", {"of": "quantity", "op": "gte", "value": 7}) == {"buyer"}
    assert who("sum", {"of": "quantity", "op": "lt", "value": 1}) == {"narrow", "none"}
    assert who("avg", {"of": "price", "op": "gt", "value": 1000}) == {"buyer"}
    assert "品类" in describe(parse({"event": "order", "distinct": {"of": "category", "op": "gte", "value": 3}}))


@pytest.mark.parametrize("definition, path", [
    ({"event": "order", "distinct": {"op": "gte", "value": 3}}, "distinct.of"),
    ({"event": "order", "max": {"of": "price", "op": "between", "value": [1, 2]}}, "max"),
    ({"event": "order", "sum": {"of": "price-x", "op": "gte", "value": 1}}, "sum.of"),
    ({"event": "order", "count": {"of": "price", "op": "gte", "value": 1}}, "count.of"),
])
def test_bad_aggregates_name_their_node(people, definition, path):
    with pytest.raises(ValidationError) as error:
        parse(definition)
    assert any(message.startswith(path) for message in error.value.messages), error.value.messages


def test_sequences_of_up_to_five_steps_with_gaps_and_nothing_in_between():
    """Viewed, carted and ordered (浏览 → 加购 → 下单), each within its gap; and the same
    without leaving the funnel for a support chat in between."""
    def journey(name, *steps):
        person = ProfileFactory(name=name)
        for event, days in steps:
            EventFactory(profile=person, name=event, occurred_at=ago(days))

    journey("straight", ("product_view", 10), ("add_to_cart", 9), ("order", 8.5))
    journey("slow", ("product_view", 10), ("add_to_cart", 9), ("order", 2))  # ordered 7 days after the cart
    journey("asked", ("product_view", 10), ("support_chat", 9.5), ("add_to_cart", 9), ("order", 8.5))
    journey("carted", ("product_view", 10), ("add_to_cart", 9))
    journey("reversed", ("order", 10), ("add_to_cart", 9), ("product_view", 8))
    funnel = [{"event": "product_view"}, {"event": "add_to_cart", "within_days": 2}, {"event": "order"}]

    def who(**node):
        q = compile_condition(parse({"sequence": funnel, "within_days": 3, **node}), NOW)
        return set(Profile.objects.filter(q).values_list("name", flat=True))

    assert who(op="then") == {"straight", "asked"}
    assert who(op="then", not_between={"event": "support_chat"}) == {"straight"}
    assert who(op="not_then") == {"slow", "carted"}
    five = [{"event": "product_view"}, {"event": "support_chat"}, {"event": "add_to_cart"}, {"event": "order"},
            {"event": "order"}]
    assert parse({"sequence": five, "within_days": 1})
    described = describe(parse({"sequence": funnel, "within_days": 3, "not_between": {"event": "support_chat"}}))
    assert described.count("天内") == 2, described


@pytest.mark.parametrize("definition, path", [
    ({"sequence": [{"event": "order"}] * 6, "within_days": 1}, "sequence"),
    ({"sequence": [{"event": "order"}, {"event": "order"}]}, "sequence[1]"),
    ({"sequence": [{"event": "order", "within_days": 2}, {"event": "order"}], "within_days": 1},
     "sequence[0].within_days"),
    ({"sequence": [{"event": "order"}, {"event": "order"}], "within_days": 1, "op": "not_then",
      "not_between": {"event": "order"}}, "not_between"),
    ({"sequence": [{"event": "order"}, {"event": "order"}, {"event": "order"}], "within_days": 1,
      "not_between": {"event": "order", "within": {"days": 3}}}, "not_between"),
])
def test_bad_sequences_name_their_node(people, definition, path):
    with pytest.raises(ValidationError) as error:
        parse(definition)
    assert any(message.startswith(path) for message in error.value.messages), error.value.messages


def test_a_customers_usual_time_most_orders_after_20_00():
    """The share of a customer's orders placed at the time: "mostly orders after 20:00"."""
    shanghai = datetime.timezone(datetime.timedelta(hours=8))
    hours = {"mostly evening": [21, 22, 10], "sometimes evening": [21, 10, 11], "never": [9]}
    for name, times in hours.items():
        person = ProfileFactory(name=name)
        for day, hour in enumerate(times, start=1):
            EventFactory(profile=person, name="order", occurred_at=datetime.datetime(2026, 12, day, hour, tzinfo=shanghai))
    now = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=shanghai)
    evening = {"from": "20:00", "to": "24:00"}

    def who(op, value):
        q = compile_condition(parse({"event": "order", "time_of_day": evening, "share": {"op": op, "value": value}}), now)
        return set(Profile.objects.filter(q).values_list("name", flat=True))

    assert who("gt", 0.5) == {"mostly evening"}
    assert who("gte", 0.3) == {"mostly evening", "sometimes evening"}
    assert who("lt", 0.1) == {"never"}
    assert "%" in describe(parse({"event": "order", "time_of_day": evening, "share": {"op": "gt", "value": 0.5}}))
    with pytest.raises(ValidationError):
        parse({"event": "order", "share": {"op": "gt", "value": 0.5}})
    with pytest.raises(ValidationError):
        parse({"event": "order", "time_of_day": evening, "share": {"op": "gt", "value": 2}})
