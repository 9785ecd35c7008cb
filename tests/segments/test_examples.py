"""The condition language against an independent evaluation: a small hand-built dataset,
the issue's five example segments with their expected members, every operator of every
node type, and random definitions from the grammar — compiled SQL and the Python
evaluator (tests/segments/evaluator.py) must name the same customers."""
import datetime
import random
from decimal import Decimal

import pytest

from profiles.models import AttributeDefinition, Profile, TagCategory
from segments.conditions import compile_condition, parse
from segments.models import Segment, SegmentMembership
from tests.factories import EventFactory, ProfileFactory, TagCategoryFactory, TagFactory, tag_on

from .evaluator import World

pytestmark = pytest.mark.django_db
# A fixed moment (12:00 in Shanghai) so that dates, windows and anniversaries are stable.
NOW = datetime.datetime(2026, 6, 15, 4, 0, tzinfo=datetime.timezone.utc)
NAMES = ("芳", "雷", "梅", "军", "燕", "静", "强", "敏", "伟")


def ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


def event(profile, name, days, amount=None, **properties):
    return EventFactory(profile=profile, name=name, occurred_at=ago(days), properties=properties,
                        amount=None if amount is None else Decimal(amount))


@pytest.fixture
def world():
    """Nine customers, their tags and behaviour; then the same, loaded into memory."""
    AttributeDefinition.objects.create(key="member_level", label="会员等级", type="choice", choices=["金卡", "银卡"])
    AttributeDefinition.objects.create(key="nickname", label="昵称", type="string")
    AttributeDefinition.objects.create(key="score", label="积分", type="number")
    AttributeDefinition.objects.create(key="vip", label="贵宾", type="boolean")
    AttributeDefinition.objects.create(key="joined", label="入会日期", type="date")

    def person(name, **fields):
        fields.setdefault("created_at", ago(400))
        return ProfileFactory(name=name, **fields)

    fang = person("芳", city="上海", gender="female", birth_date=datetime.date(1998, 5, 1), total_spent=Decimal("6000"),
                  order_count=5, lifecycle_stage="active", rfm_recency=5, rfm_frequency=4, rfm_monetary=5,
                  first_seen_at=ago(300), last_seen_at=ago(3), last_order_at=ago(3), occupation="Designer",
                  traits={"member_level": "金卡", "nickname": "Fang Fang", "score": 88, "vip": True, "joined": "2024-03-01"})
    lei = person("雷", city="北京", province="北京", gender="male", birth_date=datetime.date(1980, 1, 1),
                 total_spent=Decimal("3500"), order_count=3, lifecycle_stage="dormant", rfm_recency=2,
                 first_seen_at=ago(320), last_seen_at=ago(100), last_order_at=ago(100), occupation="工程师",
                 traits={"member_level": "银卡", "score": 12.5, "vip": False, "joined": "2019-06-20"})
    mei = person("梅", city="上海", gender="female", birth_date=datetime.date(1996, 6, 18), total_spent=Decimal("17100"),
                 order_count=2, email="", first_seen_at=ago(260), last_seen_at=ago(24.5), created_at=ago(265),
                 traits={"nickname": "plum"})
    jun = person("军", city="深圳", province="广东", gender="unknown", birth_date=None, phone="", created_at=ago(5))
    yan = person("燕", city="上海", gender="female", birth_date=datetime.date(2001, 2, 3), total_spent=Decimal("200"),
                 order_count=1, lifecycle_stage="new", first_seen_at=ago(25), last_seen_at=ago(20), last_order_at=ago(20),
                 created_at=ago(25), traits={"score": 300})
    jing = person("静", city="杭州", province="浙江", gender="female", birth_date=datetime.date(1995, 7, 7),
                  total_spent=Decimal("5200"), order_count=2, occupation="designer assistant",
                  first_seen_at=ago(400), last_seen_at=ago(40), traits={"vip": True, "joined": "2026-06-10"})
    qiang = person("强", city="广州", province="广东", gender="male", birth_date=datetime.date(1990, 12, 31),
                   total_spent=Decimal("4000"), order_count=4, lifecycle_stage="dormant", rfm_monetary=4,
                   first_seen_at=ago(300), last_seen_at=ago(70), last_order_at=ago(70))
    min_ = person("敏", city="上海", gender="female", birth_date=datetime.date(1996, 3, 3), total_spent=Decimal("5500"),
                  order_count=2, lifecycle_stage="active", first_seen_at=ago(100), last_seen_at=ago(1),
                  last_order_at=ago(1), traits={"member_level": "金卡"})
    wei = person("伟", city="上海", gender="male", birth_date=datetime.date(2008, 6, 15), occupation="学生",
                 country="", email="WEI@example.com")
    ProfileFactory(name="影", city="上海", status="erased")  # never a member of anything

    interest = TagCategory.objects.get(code="interest")
    sport = TagCategoryFactory(name="运动", parent=interest)
    running = TagCategoryFactory(name="跑步", parent=sport)
    sneakers = TagFactory(slug="sneaker-lover", name="喜欢运动鞋", kind="interest", category=sport)
    lipstick = TagFactory(slug="lipstick-fan", name="口红达人", kind="interest", category=interest)
    marathon = TagFactory(slug="marathon", name="马拉松", category=running)
    vip = TagFactory(slug="vip", name="贵宾", category=TagCategory.objects.get(code="value"))
    TagFactory(slug="unused", name="没人有")
    tag_on(fang, sneakers, weight=0.8)
    tag_on(min_, sneakers, weight=0.6)
    tag_on(yan, sneakers, weight=0.3)
    tag_on(wei, sneakers)  # no weight
    tag_on(fang, lipstick, weight=0.5)
    tag_on(jing, lipstick, weight=0.9)
    tag_on(qiang, marathon)
    tag_on(fang, vip)
    tag_on(lei, vip)

    shoes, lip, japan, digital = "sneakers", "lipstick", "japan_travel", "digital"
    for days in (3, 10):
        event(fang, "order", days, "500", category=shoes, price=500)
    event(fang, "product_view", 5, category=lip, price=199)
    event(fang, "product_view", 6, category=shoes, price=899)
    for days in (100, 200, 300):
        event(lei, "order", days, "1200", category=digital)
    event(lei, "payment", 100, "1200", method="alipay")
    for days in (40, 100, 170):
        event(mei, "product_view", days, category=japan, price=8000)
    event(mei, "order", 200, "8000", category=japan)
    event(mei, "order", 250, "9100", category=japan, coupon="SAKURA")
    event(mei, "account_open_start", 25, channel="app")
    event(mei, "account_open_complete", 24.5, channel="app")
    event(jun, "account_open_start", 2, channel="web")
    event(jun, "page_view", 1, page="home")
    event(yan, "order", 20, "200", category=shoes, price=200)
    event(yan, "product_view", 80, category=lip, price=150)
    event(yan, "account_open_start", 20, channel="app")
    for days in (60, 61):
        event(jing, "product_view", days, category=lip, price=250)
    for days in (10, 30, 150):
        event(jing, "product_view", days, category=japan)
    event(jing, "order", 45, "6000", category=japan)
    event(jing, "order", 44, None, category="gift")  # a free gift: no amount
    event(jing, "account_open_start", 40, channel="web")
    event(jing, "account_open_submit", 39.9, channel="web")
    event(jing, "account_open_complete", 30, channel="web")  # 10 days later: too late
    for days in (70, 90, 150, 300):
        event(qiang, "order", days, "1000", category="outdoor")
    event(qiang, "product_view", 400, category="outdoor", price=1500.5)
    for days in (1, 2):
        event(min_, "order", days, "400", category=shoes, price=400)
    event(min_, "product_view", 100, category=lip, price=180)
    event(min_, "product_view", 2, category=shoes)
    event(wei, "page_view", 3, page="home")
    event(wei, "product_view", 3, category=shoes, price=1200, channel="live")
    event(wei, "order", 4, "0", category=shoes)  # paid with points
    Segment.objects.create(name="上海女性", slug="shanghai-women", definition={"all": [SHANGHAI, FEMALE]})
    Segment.objects.create(name="买过鞋", slug="shoe-buyers", definition={
        "all": [{"event": "order", "where": [prop("category", "eq", "sneakers")]}, {"segment": "shanghai-women"}]})
    frozen = Segment.objects.create(name="活动名单", slug="campaign-list", kind="static")
    for customer in (lei, yan, wei):
        SegmentMembership.objects.create(segment=frozen, profile=customer)
    return World.load()


def sql_members(definition) -> set[str]:
    matching = Profile.objects.filter(compile_condition(parse(definition), NOW), status="active")
    return set(matching.values_list("name", flat=True))


SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}
FEMALE = {"field": "gender", "op": "eq", "value": "female"}
JAPAN = [{"property": "category", "op": "eq", "value": "japan_travel"}]

EXAMPLES = [
    # 1. 上海 + female + 喜欢运动鞋 + at least 2 orders in the last 30 days
    ({"all": [SHANGHAI, FEMALE, {"tag": "sneaker-lover", "op": "has"},
              {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}}]}, {"芳", "敏"}),
    # 2. born 1995 or later + female + total spent ≥ 5,000 + viewed lipstick in the last 90 days
    ({"all": [{"field": "birth_year", "op": "gte", "value": 1995}, FEMALE,
              {"field": "total_spent", "op": "gte", "value": 5000},
              {"event": "product_view", "within": {"days": 90},
               "where": [{"property": "category", "op": "eq", "value": "lipstick"}]}]}, {"芳", "静"}),
    # 3. at least 3 orders in the last 365 days + no order in the last 60 days + spent ≥ 3,000
    ({"all": [{"event": "order", "count": {"op": "gte", "value": 3}, "within": {"days": 365}},
              {"not": {"event": "order", "within": {"days": 60}}},
              {"field": "total_spent", "op": "gte", "value": 3000}]}, {"雷", "强"}),
    # 4. viewed Japan travel at least 3 times in the last 180 days + at least 2 travel orders
    ({"all": [{"event": "product_view", "count": {"op": "gte", "value": 3}, "within": {"days": 180}, "where": JAPAN},
              {"event": "order", "count": {"op": "gte", "value": 2}, "where": JAPAN}]}, {"梅"}),
    # 5. started account opening in the last 30 days but did not complete it within 7 days
    ({"sequence": [{"event": "account_open_start", "within": {"days": 30}}, {"event": "account_open_complete"}],
      "within_days": 7, "op": "not_then"}, {"燕"}),
]


@pytest.mark.parametrize("definition, expected", EXAMPLES, ids=[f"example-{i + 1}" for i in range(len(EXAMPLES))])
def test_the_five_example_segments(world, definition, expected):
    assert world.members(definition, NOW) == expected
    assert sql_members(definition) == expected


def f(field, op, value=None):
    return {"field": field, "op": op, **({} if value is None else {"value": value})}


def views(**spec):
    return {"event": "product_view", **spec}


def orders(**spec):
    return {"event": "order", **spec}


def prop(name, op, value):
    return {"property": name, "op": op, "value": value}


# Every operator of every node type; each must pick some customers and leave out others.
OPERATORS = [
    # text
    f("city", "eq", "上海"), f("city", "ne", "上海"), f("city", "in", ["北京", "深圳"]), f("city", "not_in", ["上海"]),
    f("occupation", "contains", "design"), f("occupation", "starts_with", "DESIGNER"), f("email", "contains", "wei@"),
    f("occupation", "is_set"), f("occupation", "is_empty"), f("email", "is_empty"), f("phone", "is_set"),
    f("country", "is_empty"), f("province", "ne", "广东"), f("name", "eq", "芳"),
    # choices
    f("gender", "eq", "male"), f("gender", "ne", "female"), f("gender", "in", ["male", "unknown"]),
    f("gender", "not_in", ["female"]), f("gender", "is_empty"), f("gender", "is_set"),
    f("lifecycle_stage", "eq", "dormant"), f("lifecycle_stage", "ne", "prospect"), f("lifecycle_stage", "is_set"),
    # numbers and money
    f("total_spent", "eq", 5200), f("total_spent", "ne", 0), f("total_spent", "gt", 5200), f("total_spent", "gte", 5200),
    f("total_spent", "lt", 3500), f("total_spent", "lte", 3500), f("total_spent", "between", [3500, 5500]),
    f("order_count", "between", [2, 3]), f("rfm_recency", "is_empty"), f("rfm_monetary", "is_set"),
    f("rfm_recency", "ne", 5), f("rfm_monetary", "lt", 5), f("rfm_frequency", "gte", 4),
    # dates and datetimes
    f("birth_date", "before", "1995-07-07"), f("birth_date", "after", "1995-07-07"),
    f("birth_date", "between", ["1995-07-07", "1998-05-01"]), f("birth_date", "within_last_days", 365 * 20),
    f("birth_date", "more_than_days_ago", 365 * 30), f("birth_date", "anniversary_within_days", 3),
    f("birth_date", "anniversary_within_days", 0), f("birth_date", "is_empty"), f("birth_date", "is_set"),
    f("last_seen_at", "before", "2026-05-01"), f("last_seen_at", "after", "2026-06-12T10:00:00"),
    f("last_seen_at", "between", ["2026-03-01", "2026-05-26T12:00:00+08:00"]),
    f("last_seen_at", "within_last_days", 20), f("last_seen_at", "more_than_days_ago", 60),
    f("last_order_at", "is_empty"), f("first_seen_at", "is_set"), f("created_at", "within_last_days", 30),
    f("created_at", "more_than_days_ago", 300),
    # age and birth year
    f("age", "between", [29, 30]), f("age", "gte", 30), f("age", "lte", 18), f("age", "is_empty"), f("age", "is_set"),
    f("birth_year", "gte", 1996), f("birth_year", "lt", 1996), f("birth_year", "eq", 1996),
    f("birth_year", "ne", 1996), f("birth_year", "between", [1990, 1996]), f("birth_year", "is_empty"),
    # custom traits of each type
    f("traits.member_level", "eq", "金卡"), f("traits.member_level", "ne", "金卡"),
    f("traits.member_level", "in", ["银卡"]), f("traits.member_level", "not_in", ["金卡"]),
    f("traits.member_level", "is_set"), f("traits.member_level", "is_empty"),
    f("traits.nickname", "eq", "plum"), f("traits.nickname", "contains", "fang"),
    f("traits.nickname", "starts_with", "fa"), f("traits.nickname", "ne", "plum"),
    f("traits.score", "gte", 88), f("traits.score", "lt", 88), f("traits.score", "eq", 12.5),
    f("traits.score", "between", [12, 100]), f("traits.score", "ne", 300), f("traits.score", "is_empty"),
    f("traits.vip", "eq", True), f("traits.vip", "eq", False), f("traits.vip", "ne", True), f("traits.vip", "is_set"),
    f("traits.joined", "before", "2024-01-01"), f("traits.joined", "after", "2024-01-01"),
    f("traits.joined", "between", ["2019-01-01", "2024-03-01"]), f("traits.joined", "within_last_days", 30),
    f("traits.joined", "more_than_days_ago", 365), f("traits.joined", "anniversary_within_days", 10),
    f("traits.joined", "is_empty"),
    # tags
    {"tag": "sneaker-lover", "op": "has"}, {"tag": "sneaker-lover", "op": "has_not"},
    {"tags": ["lipstick-fan", "vip"], "op": "has_any"}, {"tags": ["sneaker-lover", "lipstick-fan"], "op": "has_all"},
    {"tag_category": "interest", "op": "has_any"}, {"tag_category": "value", "op": "has_any"},
    {"tag": "sneaker-lover", "op": "weight_gte", "value": 0.6}, {"tag": "sneaker-lover", "op": "weight_gte", "value": 0},
    {"not": {"tag": "unused", "op": "has"}},
    # behaviour: counts, windows, property filters, amounts, measures
    orders(), orders(count={"op": "eq", "value": 0}), orders(count={"op": "lte", "value": 2}),
    orders(count={"op": "eq", "value": 4}), orders(count={"op": "gte", "value": 2}, within={"days": 30}),
    orders(within={"between": ["2026-03-01", "2026-05-01"]}),
    orders(within={"between": ["2026-06-05T12:00:00+08:00", "2026-06-12"]}),
    views(where=[prop("category", "eq", "lipstick")]), views(where=[prop("category", "ne", "lipstick")]),
    views(where=[prop("category", "in", ["lipstick", "japan_travel"])]),
    views(where=[prop("category", "not_in", ["sneakers", "japan_travel"])]),
    views(where=[prop("category", "contains", "TRAVEL")]),
    views(where=[prop("price", "gt", 899)]), views(where=[prop("price", "gte", 899)]),
    views(where=[prop("price", "lt", 199)]), views(where=[prop("price", "lte", 199)]),
    views(where=[prop("price", "eq", 1500.5)]), views(where=[prop("channel", "ne", "live")]),
    orders(where=[prop("coupon", "not_in", ["SAKURA"])], count={"op": "gte", "value": 2}),
    orders(where=[prop("category", "eq", "sneakers"), prop("price", "gte", 400)]),
    orders(amount={"op": "eq", "value": 1200}), orders(amount={"op": "ne", "value": 1000}),
    orders(amount={"op": "gt", "value": 1000}), orders(amount={"op": "gte", "value": 1000}),
    orders(amount={"op": "lt", "value": 400}), orders(amount={"op": "lte", "value": 400}),
    orders(sum={"op": "gte", "value": 3600}), orders(sum={"op": "lt", "value": 500}),
    orders(sum={"op": "eq", "value": 0}), orders(sum={"op": "ne", "value": 0}),
    orders(sum={"op": "gt", "value": 1000}, within={"days": 100}), orders(sum={"op": "lte", "value": 1000}),
    views(sum={"op": "eq", "value": 0}), views(sum={"op": "lt", "value": 1}),
    orders(avg={"op": "gte", "value": 1000}), orders(avg={"op": "lt", "value": 1000}),
    orders(avg={"op": "eq", "value": 6000}), orders(avg={"op": "ne", "value": 1200}),
    orders(avg={"op": "gt", "value": 400}, where=[prop("category", "eq", "sneakers")]),
    orders(avg={"op": "lte", "value": 400}),
    orders(first_within_days=30), orders(first_within_days=300), views(first_within_days=10),
    orders(last_more_than_days_ago=60), orders(last_more_than_days_ago=5),
    views(last_more_than_days_ago=50, where=[prop("category", "eq", "lipstick")]),
    # sequences
    {"sequence": [{"event": "account_open_start", "within": {"days": 30}}, {"event": "account_open_complete"}],
     "within_days": 7, "op": "then"},
    {"sequence": [{"event": "account_open_start"}, {"event": "account_open_complete"}], "within_days": 15},
    {"sequence": [{"event": "account_open_start"}, {"event": "account_open_complete"}], "within_days": 7,
     "op": "not_then"},
    {"sequence": [{"event": "product_view", "where": [prop("category", "eq", "sneakers")]},
                  {"event": "order", "amount": {"op": "gt", "value": 0}}], "within_days": 3},
    {"sequence": [{"event": "order", "where": [prop("category", "eq", "japan_travel")]}, {"event": "order"}],
     "within_days": 60, "op": "not_then"},
    # other segments: dynamic ones by their definition (nested too), static ones by their list
    {"segment": "shanghai-women"}, {"segment": "shanghai-women", "op": "not_in"}, {"segment": "shoe-buyers"},
    {"segment": "campaign-list"}, {"segment": "campaign-list", "op": "not_in"},
    {"not": {"segment": "shoe-buyers", "op": "not_in"}},
    # groups and negation, nested
    {"all": [SHANGHAI, {"any": [FEMALE, {"tag": "sneaker-lover", "op": "has"}]}]},
    {"any": [{"not": SHANGHAI}, {"all": [{"not": FEMALE}, f("age", "lte", 18)]}]},
    {"not": {"any": [SHANGHAI, f("traits.score", "gt", 50)]}},
    {"not": f("traits.member_level", "eq", "金卡")}, {"not": f("traits.score", "gte", 88)},
    {"not": f("traits.joined", "before", "2024-01-01")}, {"not": f("traits.nickname", "contains", "fang")},
    {"not": f("birth_date", "before", "1995-07-07")}, {"not": f("birth_year", "gte", 1996)},
    {"not": f("rfm_recency", "lt", 5)}, {"not": orders(sum={"op": "lt", "value": 500})},
    {"not": views(where=[prop("price", "gt", 899)])}, {"all": [{"all": [{"all": [FEMALE]}]}]},
]


@pytest.mark.parametrize("definition", OPERATORS, ids=[str(i) for i in range(len(OPERATORS))])
def test_every_operator_agrees_with_the_evaluator(world, definition):
    assert sql_members(definition) == world.members(definition, NOW)


def test_the_operator_cases_tell_customers_apart(world):
    """A case matching everyone or no one would prove little."""
    trivial = [d for d in OPERATORS if len(world.members(d, NOW)) in (0, len(NAMES))]
    assert len(trivial) <= len(OPERATORS) // 10, trivial


# --- random definitions from the grammar ------------------------------------------------

FIELD_VALUES = {
    "city": ["上海", "北京", "杭州"], "occupation": ["designer", "学生", "工程师"], "email": ["WEI@example.com", "fang@example.com"],
    "gender": ["female", "male", "unknown"], "lifecycle_stage": ["active", "dormant", "new", "prospect"],
    "total_spent": [0, 200, 3500, 5200, 6000], "order_count": [0, 1, 2, 3, 5], "rfm_recency": [2, 5],
    "birth_date": ["1990-12-31", "1996-06-18", "2001-02-03"], "last_seen_at": ["2026-05-01", "2026-06-12T10:00:00"],
    "age": [18, 29, 30, 46], "birth_year": [1980, 1995, 1996, 2008],
    "traits.member_level": ["金卡", "银卡"], "traits.score": [12.5, 88, 300], "traits.vip": [True, False],
    "traits.nickname": ["plum", "Fang"], "traits.joined": ["2019-06-20", "2024-03-01", "2026-06-10"],
}
FIELD_OPERATORS = {
    "text": ["eq", "ne", "in", "not_in", "contains", "starts_with", "is_set", "is_empty"],
    "choice": ["eq", "ne", "in", "not_in", "is_set", "is_empty"],
    "number": ["eq", "ne", "gt", "gte", "lt", "lte", "between", "is_set", "is_empty"],
    "date": ["before", "after", "on_or_before", "on_or_after", "between", "within_last_days", "more_than_days_ago", "anniversary_within_days",
             "is_set", "is_empty"],
    "datetime": ["before", "after", "on_or_before", "on_or_after", "between", "within_last_days", "more_than_days_ago", "is_set", "is_empty"],
}
FIELD_KINDS = {
    "city": "text", "occupation": "text", "email": "text", "traits.nickname": "text",
    "gender": "choice", "lifecycle_stage": "choice", "traits.member_level": "choice", "traits.vip": "choice",
    "total_spent": "number", "order_count": "number", "rfm_recency": "number", "birth_year": "number",
    "traits.score": "number", "birth_date": "date", "traits.joined": "date", "last_seen_at": "datetime",
}
EVENT_PROPERTIES = {"category": ["sneakers", "lipstick", "japan_travel", "digital"], "price": [150, 400, 899, 1200],
                    "coupon": ["SAKURA"], "channel": ["app", "live"]}


def random_field(rng: random.Random) -> dict:
    if rng.random() < 0.1:
        return random_age(rng)
    name = rng.choice(sorted(FIELD_KINDS))
    kind, values = FIELD_KINDS[name], FIELD_VALUES[name]
    op = rng.choice(FIELD_OPERATORS[kind])
    if op in ("is_set", "is_empty"):
        return f(name, op)
    if op in ("within_last_days", "more_than_days_ago", "anniversary_within_days"):
        return f(name, op, rng.choice([0, 3, 30, 400, 365 * 30]))
    if op in ("in", "not_in"):
        return f(name, op, rng.sample(values, rng.randint(1, len(values))))
    if op == "between":
        low, high = sorted(rng.sample(values, 2))
        return f(name, op, [low, high])
    return f(name, op, rng.choice(values))


def random_age(rng: random.Random) -> dict:
    op = rng.choice(["between", "gte", "lte", "is_set", "is_empty"])
    if op in ("is_set", "is_empty"):
        return f("age", op)
    if op == "between":
        return f("age", op, sorted(rng.sample(FIELD_VALUES["age"], 2)))
    return f("age", op, rng.choice(FIELD_VALUES["age"]))


def random_tag(rng: random.Random) -> dict:
    slugs = ["sneaker-lover", "lipstick-fan", "marathon", "vip", "unused"]
    op = rng.choice(["has", "has_not", "weight_gte", "has_any", "has_all", "in_category"])
    if op == "in_category":
        return {"tag_category": rng.choice(["interest", "value", "basic"]), "op": "has_any"}
    if op in ("has_any", "has_all"):
        return {"tags": rng.sample(slugs, rng.randint(1, 3)), "op": op}
    if op == "weight_gte":
        return {"tag": rng.choice(slugs), "op": op, "value": rng.choice([0, 0.3, 0.55, 0.8, 1])}
    return {"tag": rng.choice(slugs), "op": op}


def random_filters(rng: random.Random) -> list[dict]:
    filters = []
    for _ in range(rng.choice([0, 0, 1, 2])):
        name = rng.choice(sorted(EVENT_PROPERTIES))
        values = EVENT_PROPERTIES[name]
        ops = ["eq", "ne", "in", "not_in"] + (["gt", "gte", "lt", "lte"] if name == "price" else ["contains"])
        op = rng.choice(ops)
        value = rng.sample(values, rng.randint(1, len(values))) if op in ("in", "not_in") else rng.choice(values)
        filters.append(prop(name, op, value[:4] if op == "contains" else value))
    return filters


def random_step(rng: random.Random, window: bool = True) -> dict:
    step = {"event": rng.choice(["order", "product_view", "account_open_start", "account_open_complete", "page_view"])}
    if window and rng.random() < 0.5:
        step["within"] = rng.choice([{"days": 7}, {"days": 30}, {"days": 90}, {"days": 365},
                                     {"between": ["2026-01-01", "2026-05-20T08:00:00"]},
                                     {"minutes": 90}, {"hours": 36}, {"weeks": 2}, {"months": 1}, {"months": 7},
                                     {"period": rng.choice(["today", "yesterday", "this_week", "last_week",
                                                            "this_month", "last_month", "this_year"])}])
    if where := random_filters(rng):
        step["where"] = where
    if rng.random() < 0.2:
        step["amount"] = {"op": rng.choice(["eq", "ne", "gt", "gte", "lt", "lte"]), "value": rng.choice([0, 400, 1000, 1200])}
    if rng.random() < 0.2:
        step["time_of_day"] = rng.choice([{"from": "20:00", "to": "24:00"}, {"from": "22:00", "to": "06:00"},
                                          {"from": "09:00", "to": "12:30"}])
    if rng.random() < 0.15:
        step["days_of_week"] = rng.choice([[6, 7], [1, 2, 3, 4, 5], [3]])
    return step


def random_event(rng: random.Random) -> dict:
    measure = rng.choice(["count", "count", "sum", "avg", "min", "max", "distinct", "share", "first_within_days",
                          "last_more_than_days_ago"])
    if measure in ("first_within_days", "last_more_than_days_ago"):
        return {**random_step(rng, window=False), measure: rng.choice([1, 5, 30, 100, 365])}
    node = random_step(rng)
    if measure == "count":
        op = rng.choice(["gte", "gt", "lte", "lt", "eq", "ne", "between"])
        value = sorted(rng.sample([0, 1, 2, 3], 2)) if op == "between" else rng.choice([0, 1, 2, 3])
        node["count"] = {"op": op, "value": value}
    elif measure == "share":
        node.setdefault("time_of_day", {"from": "20:00", "to": "24:00"})
        node["share"] = {"op": rng.choice(["gte", "gt", "lt"]), "value": rng.choice([0, 0.5, 0.75, 1])}
    elif measure == "distinct":
        node["distinct"] = {"of": rng.choice(["category", "channel", "price"]), "op": rng.choice(["gte", "eq", "lt"]),
                            "value": rng.choice([0, 1, 2, 3])}
    else:
        node[measure] = {"op": rng.choice(["eq", "ne", "gt", "gte", "lt", "lte"]),
                         "value": rng.choice([0, 400, 1000, 1200, 3600])}
        if rng.random() < 0.4:
            node[measure]["of"] = "price"
    return node


def random_sequence(rng: random.Random) -> dict:
    steps = [random_step(rng)] + [random_step(rng, window=False) for _ in range(rng.choice([1, 1, 2, 3, 4]))]
    for step in steps[1:]:
        if rng.random() < 0.3:
            step["within_days"] = rng.choice([1, 7, 30, 200])
    node = {"sequence": steps, "within_days": rng.choice([1, 7, 30, 200]), "op": rng.choice(["then", "not_then"])}
    if rng.random() < 0.25 and not (node["op"] == "not_then" and len(steps) == 2):
        node["not_between"] = random_step(rng, window=False)
    return node


def random_definition(rng: random.Random, depth: int = 0) -> dict:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return {rng.choice(["all", "any"]): [random_definition(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 3 and roll < 0.35:
        return {"not": random_definition(rng, depth + 1)}
    return rng.choice([random_field, random_tag, random_event, random_event, random_sequence, random_segment])(rng)


def random_segment(rng: random.Random) -> dict:
    return {"segment": rng.choice(["shanghai-women", "shoe-buyers", "campaign-list"]), "op": rng.choice(["in", "not_in"])}


def test_random_definitions_agree_with_the_evaluator(world):
    rng = random.Random(20261128)
    disagreements = []
    for _ in range(400):
        definition = random_definition(rng)
        expected, compiled = world.members(definition, NOW), sql_members(definition)
        if expected != compiled:
            disagreements.append((definition, sorted(expected), sorted(compiled)))
    assert not disagreements, "\n".join(map(str, disagreements[:10]))
