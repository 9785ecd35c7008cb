"""The quick audience box in the browser: one line typed in Chinese fills the segment
builder, which counts it; saved, the segment holds that definition. On the customer list
the same line filters the list, and what was not understood is highlighted."""
from cdp.actors import Actor
from profiles.models import Profile, Tag, TagCategory, TagKind
from profiles.services.tags import tag_assign
from segments.models import Segment
from segments.rule_tags import rule_tags_refresh
from tests.e2e.conftest import log_in
from tests.e2e.test_segment_builder import wait_for_count
from tests.factories import ProfileFactory, TagFactory, order

FREQUENT_RULE = {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}}


def customer(name, *, city="上海", gender="female", sneakers=True, orders=2):
    profile = ProfileFactory(name=name, city=city, gender=gender)
    if sneakers:
        tag_assign(tag=Tag.objects.get(slug="sneaker-lover"), profiles=Profile.objects.filter(pk=profile.pk),
                   source="manual", actor=Actor.system("e2e"))
    for day in range(orders):
        order(profile, days_ago=3 + day * 5, amount="399")
    return profile


def world():
    """喜欢运动鞋 (interest tag), 高购买频率 (a rule tag: 2 orders in 30 days), and customers
    who meet some or all of 上海 + 女性 + 喜欢运动鞋 + 高购买频率."""
    TagFactory(name="喜欢运动鞋", slug="sneaker-lover", category=TagCategory.objects.get(code="interest"))
    Tag.objects.create(name="高购买频率", slug="frequent-buyer", kind=TagKind.RULE, rule_definition=FREQUENT_RULE,
                       rule_version=1, category=TagCategory.objects.get(code="behavioural"))
    customer("甲")
    customer("乙")
    customer("一单", orders=1)
    customer("先生", gender="male")
    customer("北京", city="北京")
    customer("无标签", sneakers=False)
    rule_tags_refresh()


def test_staff_type_one_line_see_the_count_and_save_the_segment(page, live_server, admin_login):
    world()
    log_in(page, live_server, *admin_login)

    # when staff open a new segment and type the audience as they would say it
    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.fill("#quick-audience-builder", "上海+女性+喜欢运动鞋+高购买频率")

    # then the builder holds the four conditions and counts the two customers who meet them all
    wait_for_count(page, 2)
    page.wait_for_selector(".quick-audience[data-state=understood]")
    assert page.locator(".quick-audience .qa-line .qa-known").count() == 4
    assert page.locator(".quick-audience .qa-line .qa-unknown").count() == 0
    assert page.inner_text("[data-path='all[2].'] .cb-picker-button") == "喜欢运动鞋"
    sample = page.inner_text(".cb-sample tbody")
    assert "甲" in sample and "乙" in sample and "先生" not in sample
    # and the name is the line, until staff type their own
    assert page.input_value("#id_name") == "上海+女性+喜欢运动鞋+高购买频率"

    # when they save, the segment holds the definition the box made
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/segments/segment/")
    segment = Segment.objects.get(name="上海+女性+喜欢运动鞋+高购买频率")
    assert segment.definition == {"all": [
        {"field": "city", "op": "eq", "value": "上海"},
        {"field": "gender", "op": "eq", "value": "female"},
        {"tag": "sneaker-lover", "op": "has"},
        {"tag": "frequent-buyer", "op": "has"},
    ]}
    assert segment.member_count == 2


def test_a_misspelling_is_highlighted_and_fixed_with_a_click_on_the_customer_list(page, live_server, admin_login):
    world()
    log_in(page, live_server, *admin_login)

    page.goto(f"{live_server.url}/admin/profiles/profile/")
    page.fill("#quick-audience-list", "上海+女姓+喜欢运动鞋")

    # the word not understood is marked, with what it may have meant
    page.wait_for_selector(".qa-line .qa-unknown")
    assert page.inner_text(".qa-line .qa-unknown") == "女姓"
    page.click(".qa-suggestion .qa-chip")  # 您是不是要找 女性？

    page.wait_for_function("document.querySelector('.qa-input').value === '上海+女性+喜欢运动鞋'")
    page.wait_for_selector(".qa-number[data-count='3']")
    assert page.locator(".qa-line .qa-unknown").count() == 0

    # and "show these customers" filters the list by the definition
    page.click(".qa-show")
    page.wait_for_url("**/admin/profiles/profile/?audience=*")
    names = page.inner_text("#result_list tbody")
    assert "甲" in names and "一单" in names and "先生" not in names and "北京" not in names


def test_the_campaign_audience_step_makes_a_segment_from_the_line_and_chooses_it(page, live_server, admin_login):
    world()
    log_in(page, live_server, *admin_login)

    page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    # the box sits in the audience fieldset, just above the segment choice
    assert page.locator("fieldset .quick-audience + .form-row.field-segment, "
                        "fieldset .quick-audience ~ .field-segment").count() == 1
    page.fill("#quick-audience-campaign", "上海+女性+喜欢运动鞋")
    page.wait_for_selector(".quick-audience .qa-number[data-count='3']")

    page.click(".qa-create")
    page.wait_for_selector(".qa-created")

    segment = Segment.objects.get(name="上海+女性+喜欢运动鞋")
    assert segment.definition == {"all": [{"field": "city", "op": "eq", "value": "上海"},
                                          {"field": "gender", "op": "eq", "value": "female"},
                                          {"tag": "sneaker-lover", "op": "has"}]}
    assert page.input_value("#id_segment") == str(segment.pk)
    assert "上海+女性+喜欢运动鞋" in page.inner_text("#id_segment + .select2")
