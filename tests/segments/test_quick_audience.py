"""The quick audience box's parser: one line → the definition, what was not understood,
ambiguities and suggestions (segments/quick/). A table of lines with the definitions staff
would have built by hand, and, on the demo data, the same members for both."""
import datetime

import pytest
from django.core.cache import cache
from django.utils import timezone

from profiles.demo import demo_taxonomy
from profiles.models import Profile, ProfileStatus, Tag, TagCategory, TagKind
from segments.conditions import compile_condition, parse
from segments.models import NamedThreshold, Segment
from segments.quick.lexicon import VERSION_KEY
from segments.quick.parse import quick_parse
from segments.services import segment_save

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_lexicon(monkeypatch):
    """The lexicon is cached per process: each test builds its own from its own rows, and
    reads the tables' fingerprint on every line (changes made without signals included)."""
    monkeypatch.setattr("segments.quick.lexicon.FINGERPRINT_EVERY_SECONDS", 0)
    cache.delete(VERSION_KEY)
    yield
    cache.delete(VERSION_KEY)


@pytest.fixture
def taxonomy():
    """The demo taxonomy (喜欢运动鞋, 口红达人, 高价值, 流失风险, the rule tag 高购买频率…) and
    two saved segments."""
    demo_taxonomy()
    segment_save(segment=Segment(slug="vip", name="VIP客户"), definition={"field": "total_spent", "op": "gte",
                                                                        "value": 10000})
    segment_save(segment=Segment(slug="shanghai-white-collar", name="上海白领女性"),
                 definition={"all": [{"field": "city", "op": "eq", "value": "上海"},
                                     {"field": "gender", "op": "eq", "value": "female"}]})


def city(name, op="eq"):
    return {"field": "city", "op": op, "value": name}


def cities(*names):
    return {"field": "city", "op": "in", "value": list(names)}


def province(name):
    return {"field": "province", "op": "eq", "value": name}


def gender(value, op="eq"):
    return {"field": "gender", "op": op, "value": value}


FEMALE, MALE = gender("female"), gender("male")


def tag(slug, op="has"):
    return {"tag": slug, "op": op}


def stage(value, op="eq"):
    return {"field": "lifecycle_stage", "op": op, "value": value}


def born(first, last):
    return {"field": "birth_year", "op": "between", "value": [first, last]}


def age(op, value):
    return {"field": "age", "op": op, "value": value}


def field(name, op, value):
    return {"field": name, "op": op, "value": value}


def event(name, *, category=None, count=None, days=None, **extra):
    condition = {"event": name, **extra}
    if category:
        condition["where"] = [{"property": "category", "op": "in" if isinstance(category, list) else "eq",
                               "value": category}]
    if count:
        condition["count"] = {"op": count[0], "value": count[1]}
    if days:
        condition["within"] = {"days": days}
    return condition


def rfm(recency, frequency):
    return {"all": [{"field": "rfm_recency", "op": "eq", "value": recency} if isinstance(recency, int)
                    else {"field": "rfm_recency", "op": "between", "value": recency},
                    {"field": "rfm_frequency", "op": "eq", "value": frequency} if isinstance(frequency, int)
                    else {"field": "rfm_frequency", "op": "between", "value": frequency}]}


def consent(code, op="granted"):
    return {"consent": code, "op": op}


HIGH_SPEND = field("total_spent", "gte", 3000)  # the seeded 高消费
HIGH_VALUE_TAG = tag("high-value")  # the demo's value tag 高价值 (also a named threshold: an ambiguity)
FREQUENT = tag("frequent-buyer")  # the rule tag 高购买频率 wins over the threshold of that name
SNEAKERS = tag("sneaker-lover")
LIPSTICK = tag("lipstick-fan")

# (line, expected conditions under "all", words not understood, ambiguous words)
CHINESE = [
    ("上海+女性+喜欢运动鞋+高购买频率", [city("上海"), FEMALE, SNEAKERS, FREQUENT], [], []),
    ("95后女性、高消费、偏好口红", [born(1995, 1999), FEMALE, HIGH_SPEND, LIPSTICK], [], []),
    ("上海", [city("上海")], [], []),
    ("上海市", [city("上海")], [], []),
    ("沪", [city("上海")], [], []),
    ("魔都女生", [city("上海"), FEMALE], [], []),
    ("北京市男士", [city("北京"), MALE], [], []),
    ("广东省", [province("广东")], [], []),
    ("浙江、江苏", [{"field": "province", "op": "in", "value": ["浙江", "江苏"]}], [], []),
    ("深圳+女", [city("深圳"), FEMALE], [], []),
    ("上海或北京女性", [cities("上海", "北京"), FEMALE], [], []),
    ("上海、北京、广州", [cities("上海", "北京", "广州")], [], []),
    ("女性上海或杭州", [FEMALE, cities("上海", "杭州")], [], []),
    ("非上海", [city("上海", "ne")], [], []),
    ("不在上海的男性", [city("上海", "ne"), MALE], [], []),
    ("女士", [FEMALE], [], []),
    ("男生", [MALE], [], []),
    ("95后", [born(1995, 1999)], [], []),
    ("00后", [born(2000, 2009)], [], []),
    ("80后男士", [born(1980, 1989), MALE], [], []),
    ("90后", [born(1990, 1999)], [], []),
    ("25-35岁", [age("between", [25, 35])], [], []),
    ("25到35岁女性", [age("between", [25, 35]), FEMALE], [], []),
    ("30岁以上", [age("gte", 30)], [], []),
    ("18岁以下", [age("lte", 18)], [], []),
    ("超过40岁", [age("gte", 41)], [], []),
    ("喜欢运动鞋", [SNEAKERS], [], []),
    ("不喜欢运动鞋", [tag("sneaker-lover", "has_not")], [], []),
    ("口红达人", [LIPSTICK], [], []),
    ("偏好护肤", [tag("skincare-fan")], [], []),
    ("运动鞋爱好者", [SNEAKERS], [], []),
    ("美妆", [{"tag_category": str(0), "op": "has_any"}], [], []),  # id filled in below
    ("兴趣标签", [{"tag_category": "interest", "op": "has_any"}], [], []),
    ("新客", [stage("new")], [], []),
    ("活跃", [stage("active")], [], []),
    ("沉睡客户", [stage("dormant")], [], []),
    ("流失", [stage("churned")], [], []),
    ("回流用户", [stage("returning")], [], []),
    ("非流失客户", [stage("churned", "ne")], [], []),
    ("冠军客户", [rfm(5, [4, 5])], [], []),
    ("休眠客户", [rfm([1, 2], [1, 2])], [], []),
    ("高消费", [HIGH_SPEND], [], []),
    ("低消费", [field("total_spent", "lt", 300)], [], []),
    ("高频", [FREQUENT], [], []),  # a synonym of the threshold the rule tag wins over
    ("高购买频率", [FREQUENT], [], []),
    ("消费超过5000", [field("total_spent", "gt", 5000)], [], []),
    ("累计消费5000元以上", [field("total_spent", "gte", 5000)], [], []),
    ("消费不少于1万", [field("total_spent", "gte", 10000)], [], []),
    ("近30天消费超过1000", [event("order", days=30, sum={"op": "gt", "value": 1000})], [], []),
    ("近30天下单2次以上", [event("order", count=("gte", 2), days=30)], [], []),
    ("30天内没下单", [{"not": event("order", days=30)}], [], []),
    ("近90天没有下单", [{"not": event("order", days=90)}], [], []),
    ("最近一个月买过运动鞋", [event("order", category="sneakers") | {"within": {"months": 1}}], [], []),
    ("浏览过口红", [event("product_view", category="lipstick")], [], []),
    ("近7天浏览过口红", [event("product_view", category="lipstick", days=7)], [], []),
    ("买过运动鞋", [event("order", category="sneakers")], [], []),
    ("下单超过3次", [event("order", count=("gt", 3))], [], []),
    ("加购过护肤", [event("add_to_cart", category="skincare")], [], []),
    ("没买过口红", [{"not": event("order", category="lipstick")}], [], []),
    ("可短信触达", [consent("sms_marketing")], [], []),
    ("同意邮件营销", [consent("email_marketing")], [], []),
    ("可微信触达的活跃客户", [consent("wechat_marketing"), stage("active")], [], []),
    ("不可短信触达", [consent("sms_marketing", "not_granted")], [], []),
    ("VIP客户", [{"segment": "vip", "op": "in"}], [], []),
    ("不在VIP客户", [{"segment": "vip", "op": "not_in"}], [], []),
    ("上海女性+近30天下单2次以上", [city("上海"), FEMALE, event("order", count=("gte", 2), days=30)], [], []),
    ("女性且喜欢运动鞋或口红达人", [FEMALE, {"any": [SNEAKERS, LIPSTICK]}], [], []),
    ("上海＋女性，高消费", [city("上海"), FEMALE, HIGH_SPEND], [], []),  # full-width connectors
    # misspellings, unknown words: shown, never dropped silently
    ("上海+女姓", [city("上海")], ["女姓"], []),
    ("上海+浏览过口虹", [city("上海"), event("product_view")], ["口虹"], []),
    ("火星人+上海", [city("上海")], ["火星"], []),
    ("上海+打篮球", [city("上海")], ["打篮球"], []),
    # ambiguity: a tag and a threshold, a tag and an RFM group, a lifecycle stage and an RFM group
    ("高价值", [HIGH_VALUE_TAG], [], ["高价值"]),
    ("流失风险", [tag("churn-risk")], [], ["流失风险"]),
    ("新客户", [stage("new")], [], ["新客户"]),
]

ENGLISH = [
    ("women in Shanghai who like sneakers, high spend", [FEMALE, city("上海"), SNEAKERS, HIGH_SPEND], [], []),
    ("Shanghai", [city("上海")], [], []),
    ("women", [FEMALE], [], []),
    ("men in Beijing", [MALE, city("北京")], [], []),
    ("Guangdong", [province("广东")], [], []),
    ("Shanghai or Hangzhou", [cities("上海", "杭州")], [], []),
    ("aged 25-35", [age("between", [25, 35])], [], []),
    ("30 years old or more", [age("gte", 30)], [], []),
    ("post-95 women", [born(1995, 1999), FEMALE], [], []),
    ("sneaker lovers", [SNEAKERS], [], []),
    ("likes lipstick", [LIPSTICK], [], []),
    ("high spend", [HIGH_SPEND], [], []),
    ("big spenders", [HIGH_SPEND], [], []),
    ("spent over 5,000", [field("total_spent", "gt", 5000)], [], []),
    ("ordered at least 2 times in the last 30 days", [event("order", count=("gte", 2), days=30)], [], []),
    ("haven't ordered in 30 days", [{"not": event("order", days=30)}], [], []),
    ("bought sneakers", [event("order", category="sneakers")], [], []),
    ("viewed lipstick in the last 7 days", [event("product_view", category="lipstick", days=7)], [], []),
    ("dormant customers", [stage("dormant")], [], []),
    ("not in Shanghai", [city("上海", "ne")], [], []),
    ("reachable by SMS", [consent("sms_marketing")], [], []),
    ("opted in to email marketing", [consent("email_marketing")], [], []),
    ("champions", [rfm(5, [4, 5])], [], []),
    # misspellings and unknown words
    ("Shangai women", [FEMALE], ["Shangai"], []),
    ("women who like sneekers", [FEMALE], ["like sneekers"], []),
    ("women from Mars", [FEMALE], ["Mars"], []),
    ("high value", [HIGH_VALUE_TAG], [], ["high value"]),
]


def _expected(conditions):
    category = TagCategory.objects.get(name="美妆")
    return {"all": [{"tag_category": str(category.pk), "op": "has_any"}
                    if c == {"tag_category": "0", "op": "has_any"} else c for c in conditions]}


@pytest.mark.parametrize("line, conditions, unknown, ambiguous", CHINESE + ENGLISH,
                         ids=[row[0] for row in CHINESE + ENGLISH])
def test_a_line_reads_as_the_definition_staff_would_build(taxonomy, line, conditions, unknown, ambiguous):
    result = quick_parse(line)

    assert result.definition == _expected(conditions)
    assert [u["text"] for u in result.unknown] == unknown
    assert [a["text"] for a in result.ambiguities] == ambiguous
    assert result.errors == []
    parse(result.definition)  # valid in the condition language


def test_the_table_is_as_large_as_promised():
    assert len(CHINESE) >= 60 and len(ENGLISH) >= 20


def test_a_misspelling_comes_with_did_you_mean(taxonomy):
    result = quick_parse("上海+女姓+喜欢运动鞋")

    assert result.unknown == [{"start": 3, "end": 5, "text": "女姓", "suggestions": ["女性"]}]
    assert result.suggestions == [{"start": 3, "end": 5, "text": "女姓", "replacement": "女性"}]
    assert quick_parse("Shangai").unknown[0]["suggestions"][0] == "Shanghai"
    assert quick_parse("上海+喜欢运动衣").suggestions[0]["replacement"] == "喜欢运动鞋"


def test_unknown_pieces_keep_their_place_in_the_line(taxonomy):
    line = "上海 + 火星人 + 女性 + 会飞"
    result = quick_parse(line)

    assert [line[u["start"]:u["end"]] for u in result.unknown] == ["火星", "会飞"]
    assert result.definition == {"all": [city("上海"), FEMALE]}


def test_a_tag_named_like_a_city_asks_which_one_and_takes_the_choice(taxonomy):
    Tag.objects.create(name="北京", slug="beijing-fans", category=TagCategory.objects.get(code="interest"))

    result = quick_parse("北京+女性")

    assert result.ambiguities == [{
        "start": 0, "end": 2, "text": "北京", "chosen": "city:北京",
        "choices": [{"key": "city:北京", "label": "城市：北京"}, {"key": "tag:beijing-fans", "label": "标签：北京"}],
    }]
    assert result.definition == {"all": [city("北京"), FEMALE]}
    assert quick_parse("北京+女性", choose=["tag:beijing-fans"]).definition == {"all": [tag("beijing-fans"), FEMALE]}


def test_a_rule_tag_wins_over_the_threshold_of_its_name(taxonomy):
    assert quick_parse("高购买频率").definition == {"all": [FREQUENT]}
    Tag.objects.filter(slug="frequent-buyer").update(kind=TagKind.MANUAL, name="常买")  # no rule tag of that name

    assert quick_parse("高购买频率").definition == {"all": [field("order_count", "gte", 5)]}


def test_thresholds_follow_their_settings_page(taxonomy):
    threshold = NamedThreshold.objects.get(name="高消费")
    threshold.value, threshold.synonyms = 8000, "土豪"
    threshold.save()

    assert quick_parse("土豪").definition == {"all": [field("total_spent", "gte", 8000)]}


def test_new_tags_and_segments_are_understood_at_once(taxonomy):
    assert quick_parse("夜猫子").unknown
    Tag.objects.create(name="夜猫子", slug="night-owl", category=TagCategory.objects.get(code="behavioural"))
    segment_save(segment=Segment(slug="double-11", name="双11大促人群"), definition={"field": "order_count", "op": "gte",
                                                                                "value": 1})

    assert quick_parse("夜猫子+双11大促人群").definition == {"all": [tag("night-owl"),
                                                                   {"segment": "double-11", "op": "in"}]}


def test_a_tag_is_understood_by_its_other_names_too(taxonomy, admin_client):
    """Other names entered on the tag's page (跑鞋, sneakers) mean the tag in the box."""
    night_owl = Tag.objects.create(name="夜猫子", slug="night-owl", category=TagCategory.objects.get(code="behavioural"))
    assert quick_parse("上海+熬夜党").unknown

    response = admin_client.post(f"/admin/profiles/tag/{night_owl.pk}/change/", {
        "name": "夜猫子", "synonyms": "熬夜党，night owls、深夜购物", "slug": "night-owl",
        "category": night_owl.category_id, "kind": "manual", "colour": "#1677ff", "is_active": "on",
        "rule_definition": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors

    for line in ("上海+熬夜党", "上海+深夜购物", "上海+night owls"):
        result = quick_parse(line)
        assert result.definition == {"all": [city("上海"), tag("night-owl")]} and not result.unknown, line


def test_retired_tags_are_not_offered(taxonomy):
    Tag.objects.filter(slug="high-value").update(is_active=False)

    result = quick_parse("高价值")

    assert result.definition == {"all": [field("rfm_monetary", "gte", 4)]}  # the threshold alone
    assert result.ambiguities == []


def test_nothing_understood_gives_no_definition(taxonomy):
    result = quick_parse("随便看看")

    assert result.definition is None
    assert result.unknown[0]["text"] == "随便看看"
    assert quick_parse("").definition is None
    assert quick_parse("   ").unknown == []


def test_a_very_long_line_is_cut_not_refused(taxonomy):
    result = quick_parse("上海+" * 500)

    assert result.definition == {"all": [city("上海")]}
    assert len(result.query) == 300


# --- the same members as the hand-built definitions, on the demo data ---------------------

EQUIVALENT = [
    ("上海+女性+喜欢运动鞋+高购买频率",
     {"all": [city("上海"), FEMALE, SNEAKERS, {"event": "order", "count": {"op": "gte", "value": 2},
                                                "within": {"days": 30}}]}),
    ("95后女性、高消费、偏好口红",
     {"all": [field("birth_year", "gte", 1995), field("birth_year", "lte", 1999), FEMALE,
              field("total_spent", "gte", 3000), LIPSTICK]}),
    ("近30天下单2次以上", {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}}),
    ("30天内没下单", {"event": "order", "count": {"op": "eq", "value": 0}, "within": {"days": 30}}),
    ("买过运动鞋", {"event": "order", "where": [{"property": "category", "op": "eq", "value": "sneakers"}]}),
    ("浏览过口红", {"event": "product_view", "where": [{"property": "category", "op": "eq", "value": "lipstick"}]}),
    ("25-35岁男性", {"all": [field("age", "gte", 25), field("age", "lte", 35), MALE]}),
    ("上海或北京", {"any": [city("上海"), city("北京")]}),
    ("非上海的新客", {"all": [{"not": city("上海")}, stage("new")]}),
    ("沉睡客户", stage("dormant")),
    ("可短信触达", consent("sms_marketing")),
    ("消费超过5000", field("total_spent", "gt", 5000)),
    ("高价值", HIGH_VALUE_TAG),
    ("流失风险+同意邮件营销", {"all": [tag("churn-risk"), consent("email_marketing")]}),
    ("women in Shanghai who like sneakers, high spend",
     {"all": [FEMALE, city("上海"), SNEAKERS, field("total_spent", "gte", 3000)]}),
    ("haven't ordered in 30 days", {"not": {"event": "order", "within": {"days": 30}}}),
    ("冠军客户", {"all": [field("rfm_recency", "eq", 5), field("rfm_frequency", "gte", 4)]}),
]


def members(definition) -> set[int]:
    now = timezone.now()
    return set(Profile.objects.filter(compile_condition(parse(definition), now), status=ProfileStatus.ACTIVE)
               .values_list("pk", flat=True))


def test_parsed_lines_find_the_same_customers_as_hand_built_definitions_on_the_demo_data():
    from consent.demo import demo_consent
    from profiles.demo import demo_generate
    from segments.rule_tags import rule_tags_refresh

    demo_generate(profiles=400, events_per_profile=12, seed=25, anchor_date=timezone.localdate()
                  + datetime.timedelta(days=1))
    demo_taxonomy()
    rule_tags_refresh()
    demo_consent(seed=25)

    nobody = []
    for line, hand_built in EQUIVALENT:
        result = quick_parse(line)
        assert not result.unknown, line
        wanted = members(hand_built)
        assert members(result.definition) == wanted, line
        if not wanted:
            nobody.append(line)
    # The demo data gives most lines somebody to find (the narrowest combinations may find nobody in 400).
    assert len(nobody) <= 4, nobody


# --- the partner API ----------------------------------------------------------------------

def test_partners_parse_a_line_with_segments_read(taxonomy):
    from cdp.models import Partner, Scope
    from tests.cdp.test_api_fixtures import assert_error, client_with, key_for

    partner = Partner.objects.create(name="Shop", code="shop")
    Segment.objects.get(slug="vip").shared_with.add(partner)
    api = client_with(key_for(partner, scopes=[Scope.SEGMENTS_READ]))

    response = api.get("/api/v1/segments/parse/", {"q": "上海+女性+VIP客户+上海白领女性+火星人"})

    assert response.status_code == 200
    body = response.json()
    assert body["definition"] == {"all": [city("上海"), FEMALE, {"segment": "vip", "op": "in"}]}
    # a segment not shared with the partner is a word it does not know
    assert [u["text"] for u in body["unknown"]] == ["白领", "火星"]
    assert body["understood"][0] == {"start": 0, "end": 2, "text": "上海", "label": "city：上海"}
    assert api.get("/api/v1/segments/parse/", {"q": "北京", "choose": ["x"]}).json()["definition"] == {
        "all": [city("北京")]}
    assert_error(api.get("/api/v1/segments/parse/"), 400, "q_required")
    assert_error(api.get("/api/v1/segments/parse/", {"q": "x" * 1001}), 400, "invalid")
    assert_error(client_with(key_for(partner, scopes=[Scope.PROFILES_READ])).get(
        "/api/v1/segments/parse/", {"q": "上海"}), 403, "missing_scope")


def test_the_parse_route_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/segments/parse/"]["get"]
    assert operation["operationId"] == "segments_parse"
    assert {p["name"] for p in operation["parameters"]} >= {"q", "choose"}


# --- the admin ------------------------------------------------------------------------------

def test_the_box_parses_for_staff_in_a_few_queries(taxonomy, client, staff_user, django_assert_max_num_queries):
    client.force_login(staff_user)
    quick_parse("预热")  # the lexicon, built once per process

    with django_assert_max_num_queries(12):
        answer = client.get("/admin/segments/namedthreshold/parse/", {"q": "上海+女性+喜欢运动鞋+高购买频率"}).json()

    assert answer["definition"] == {"all": [city("上海"), FEMALE, SNEAKERS, FREQUENT]}
    assert [u["label"] for u in answer["understood"]][:2] == ["城市：上海", "性别：女"]


def test_the_box_answers_in_english_for_an_english_admin(taxonomy, client, staff_user, settings):
    client.force_login(staff_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    answer = client.get("/admin/segments/namedthreshold/parse/", {"q": "上海"}).json()

    assert answer["understood"][0]["label"] == "city：上海"


def test_the_box_is_on_the_builder_the_customer_list_and_the_campaign_form(taxonomy, client, staff_user):
    client.force_login(staff_user)

    for url in ("/admin/segments/segment/add/", "/admin/profiles/profile/", "/admin/campaigns/campaign/add/"):
        page = client.get(url).content.decode()
        assert 'class="quick-audience"' in page, url
        assert "quick-audience.js" in page


def test_staff_without_segment_rights_cannot_use_the_box_endpoints(taxonomy, client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)

    assert client.get("/admin/segments/namedthreshold/parse/", {"q": "上海"}).status_code == 403
    assert client.post("/admin/segments/namedthreshold/create-segment/", {"q": "上海"}).status_code == 403


def test_a_segment_is_created_from_a_line_for_the_campaign_audience(taxonomy, client, staff_user):
    client.force_login(staff_user)

    answer = client.post("/admin/segments/namedthreshold/create-segment/", {"q": "上海+女性+喜欢运动鞋"}).json()

    segment = Segment.objects.get(pk=answer["id"])
    assert segment.name == "上海+女性+喜欢运动鞋" and segment.kind == Segment.Kind.DYNAMIC
    assert segment.definition == {"all": [city("上海"), FEMALE, SNEAKERS]}
    again = client.post("/admin/segments/namedthreshold/create-segment/", {"q": "上海+女性+喜欢运动鞋"}).json()
    assert again["name"] == "上海+女性+喜欢运动鞋 (2)"
    refused = client.post("/admin/segments/namedthreshold/create-segment/", {"q": "火星人"})
    assert refused.status_code == 400 and refused.json()["errors"]
    assert client.get("/admin/segments/namedthreshold/create-segment/").status_code == 405


def test_the_customer_list_filters_by_the_parsed_definition(taxonomy, client, staff_user):
    import json

    from tests.factories import ProfileFactory

    ProfileFactory(name="上海的她", city="上海", gender="female")
    ProfileFactory(name="北京的他", city="北京", gender="male")
    client.force_login(staff_user)
    definition = quick_parse("上海女性").definition

    page = client.get("/admin/profiles/profile/", {"audience": json.dumps(definition)}).content.decode()

    assert "上海的她" in page and "北京的他" not in page
    broken = client.get("/admin/profiles/profile/", {"audience": "{not json"}, follow=True).content.decode()
    assert "上海的她" not in broken and "不是有效的条件定义" in broken


def test_thresholds_have_a_settings_page_seeded_from_the_rfm_rules(client, staff_user):
    client.force_login(staff_user)

    page = client.get("/admin/segments/namedthreshold/").content.decode()

    assert "高消费" in page and "高购买频率" in page and "高价值" in page
    assert NamedThreshold.objects.get(name="高消费").condition() == field("total_spent", "gte", 3000)
    assert NamedThreshold.objects.get(name="高价值").condition() == field("rfm_monetary", "gte", 4)
    response = client.post("/admin/segments/namedthreshold/add/", {
        "name": "近期大额", "synonyms": "", "measure": "spend_within", "op": "gte", "value": "2000", "window_days": ""})
    assert response.status_code == 200 and "需要窗口天数" in response.content.decode()
