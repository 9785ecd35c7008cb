import os

from cdp.actors import Actor
from consent.services import consent_record
from profiles.models import Profile, Tag, TagCategory
from profiles.services.tags import tag_assign
from segments.models import Segment
from tests.e2e.conftest import log_in
from tests.factories import ProfileFactory, TagFactory, order

SCREENSHOTS = os.environ.get("CDP_E2E_SCREENSHOTS")  # a folder, to look at the builder while working on it


def customer(name, *, city="上海", gender="female", sneakers=True, orders=2):
    profile = ProfileFactory(name=name, city=city, gender=gender)
    if sneakers:
        tag_assign(tag=Tag.objects.get(slug="sneaker-lover"), profiles=Profile.objects.filter(pk=profile.pk),
                   source="manual", actor=Actor.system("e2e"))
    for day in range(orders):
        order(profile, days_ago=3 + day * 5, amount="399")
    return profile


def count(page):
    return page.get_attribute(".cb-count", "data-count")


def wait_for_count(page, expected):
    page.wait_for_function(
        "n => { const c = document.querySelector('.cb-preview:not(.cb-busy) .cb-count');"
        " return c && c.dataset.count === n; }",
        arg=str(expected),
    )


def pick(page, text):
    """Type into the open searchable list and take the first match."""
    search = page.locator(".cb-picker-panel:visible input[type=search]")
    search.fill(text)
    search.press("Enter")


def test_staff_build_shanghai_women_sneakers_two_orders_and_save_it(page, live_server, admin_login):
    # given the tag 喜欢运动鞋 and customers who meet some or all of the conditions
    TagFactory(name="喜欢运动鞋", slug="sneaker-lover", category=TagCategory.objects.get(code="interest"))
    customer("甲")
    customer("乙")
    customer("一单", orders=1)
    customer("先生", gender="male")
    customer("北京", city="北京")
    customer("无标签", sneakers=False)
    log_in(page, live_server, *admin_login)

    # when staff open a new segment and add 城市 = 上海 with the builder
    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.fill("#id_name", "上海女性运动鞋高频")
    page.fill("#id_slug", "shanghai-women-sneakers")
    page.wait_for_selector(".cb-preview .cb-status")  # "add a first condition"
    page.click(".cb-tree [data-add=field]")
    pick(page, "城市")
    page.fill("[data-path='all[0].'] input[data-key=value]", "上海")
    # then the count follows, before saving
    wait_for_count(page, 5)

    # when they add 性别 = 女
    page.click("[data-path=''] > .cb-adders [data-add=field]")
    pick(page, "性别")
    page.select_option("[data-path='all[1].'] select[data-key=value]", label="女")
    wait_for_count(page, 4)

    # and the tag 喜欢运动鞋, searched by part of its name
    page.click("[data-path=''] > .cb-adders [data-add=tag]")
    pick(page, "运动鞋")
    assert page.inner_text("[data-path='all[2].'] .cb-picker-button") == "喜欢运动鞋"
    wait_for_count(page, 3)

    # and the behaviour: 下单 at least 2 times in the last 30 days
    page.click("[data-path=''] > .cb-adders [data-add=event]")
    pick(page, "下单")
    page.fill("[data-path='all[3].'] input[data-key=count]", "2")
    page.select_option("[data-path='all[3].'] select[data-key=within]", "rolling")
    wait_for_count(page, 2)
    assert page.input_value("[data-path='all[3].'] [data-key=within] input") == "30"
    sample = page.inner_text(".cb-sample tbody")
    assert "甲" in sample and "乙" in sample and "138****" in sample
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "segment-builder.png"), full_page=True)

    # a mistake is marked at its node: a count that is not a number
    page.fill("[data-path='all[3].'] input[data-key=count]", "")
    page.wait_for_selector("[data-path='all[3].'] > .cb-errors .errornote")
    assert page.locator("[data-path='all[3].'] input[data-key=count].cb-invalid").count() == 1
    page.fill("[data-path='all[3].'] input[data-key=count]", "2")
    wait_for_count(page, 2)
    assert page.locator(".cb-errors .errornote").count() == 0

    # when they save, the segment holds exactly the definition the builder showed
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/segments/segment/")
    segment = Segment.objects.get(slug="shanghai-women-sneakers")
    assert segment.definition == {"all": [
        {"field": "city", "op": "eq", "value": "上海"},
        {"field": "gender", "op": "eq", "value": "female"},
        {"tag": "sneaker-lover", "op": "has"},
        {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}},
    ]}
    assert segment.member_count == 2

    # and opening it again loads the same conditions into the builder; "edit as JSON"
    # shows the definition itself
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")
    wait_for_count(page, 2)
    assert page.inner_text("[data-path='all[2].'] .cb-picker-button") == "喜欢运动鞋"
    page.click(".cb-toggle-json")
    assert page.is_visible("#id_definition")

    # the page shows the size history and the breakdown; the members page lists both
    assert page.is_visible("#size-history canvas") and "上海" in page.inner_text("#breakdown")
    page.click("#segment-members")
    members = page.inner_text("#members")
    assert "甲" in members and "乙" in members  # (phones in full: this user may see personal data)

    # when only 甲 agreed to SMS marketing, an export for it holds only 甲
    consent_record(profile=Profile.objects.get(name="甲"), purpose_code="sms_marketing", status="granted",
                   source="admin", actor=Actor.system("e2e"))
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")
    page.click("#segment-export")
    page.select_option("#id_purpose", "sms_marketing")
    page.select_option("#id_file_format", "csv")
    with page.expect_download() as download:
        page.click("#export-form input[type=submit]")
    rows = open(download.value.path(), encoding="utf-8-sig").read().splitlines()
    assert len(rows) == 2 and "甲" in rows[1]


# Every shape the language has, to load into the builder and get back unchanged.
EVERY_SHAPE = {"all": [
    {"field": "name", "op": "contains", "value": "王"},
    {"field": "gender", "op": "in", "value": ["female", "unknown"]},
    {"field": "age", "op": "between", "value": [20, 35]},
    {"field": "birth_year", "op": "gte", "value": 1995},
    {"field": "birth_date", "op": "anniversary_within_days", "value": 7},
    {"field": "last_order_at", "op": "between", "value": ["2026-01-01", "2026-03-01T00:00:00+08:00"]},
    {"field": "total_spent", "op": "gte", "value": "5000.00"},
    {"field": "email", "op": "is_set"},
    {"field": "created_at", "op": "within_last_days", "value": 90},
    {"field": "traits.vip_level", "op": "eq", "value": "金"},
    {"field": "traits.newsletter", "op": "eq", "value": True},
    {"any": [
        {"tag": "sneaker-lover", "op": "weight_gte", "value": 0.6},
        {"tags": ["sneaker-lover", "runner"], "op": "has_all"},
        {"tags": ["runner"], "op": "has_any"},
        {"tag_category": "interest", "op": "has_any"},
        {"not": {"tag": "runner", "op": "has_not"}},
    ]},
    {"not": {"any": [{"field": "city", "op": "eq", "value": "北京"},
                     {"field": "city", "op": "starts_with", "value": "南"}]}},
    {"event": "product_view", "count": {"op": "gte", "value": 3}, "within": {"days": 180},
     "where": [{"property": "category", "op": "in", "value": ["japan_travel", "travel"]},
               {"property": "price", "op": "gte", "value": 1000}]},
    {"event": "order", "count": {"op": "eq", "value": 0}, "within": {"between": ["2026-01-01", "2026-02-01"]}},
    {"event": "order", "first_within_days": 30},
    {"event": "order", "last_more_than_days_ago": 60},
    {"event": "order", "sum": {"op": "gte", "value": 3000}, "within": {"days": 365},
     "amount": {"op": "gte", "value": 300}},
    {"event": "payment", "avg": {"op": "lt", "value": 100.5}},
    {"event": "page_view"},
    {"sequence": [{"event": "account_open_start", "within": {"days": 30}},
                  {"event": "account_open_complete", "where": [{"property": "channel", "op": "eq", "value": "app"}]}],
     "op": "not_then", "within_days": 7},
    {"sequence": [{"event": "add_to_cart"}, {"event": "order"}], "within_days": 1},
    {"any": [{"consent": "email_marketing", "op": "granted"}, {"not": {"segment": "shanghai", "op": "in"}},
             {"segment": "shanghai", "op": "not_in"}]},
    {"campaign": "any", "channel": "sms", "action": "received", "without": "clicked",
     "within": {"period": "this_month"}, "count": {"op": "between", "value": [1, 3]}},
]}


def textarea_definition(page):
    return page.evaluate("JSON.parse(document.querySelector('#id_definition').value)")


def test_every_shape_of_the_language_loads_and_saves_unchanged(page, live_server, admin_login):
    from profiles.models import AttributeDefinition, AttributeType
    from segments.conditions import parse

    # given a segment using every kind of condition (valid: the preview counts it)
    interest = TagCategory.objects.get(code="interest")
    TagFactory(name="喜欢运动鞋", slug="sneaker-lover", category=interest)
    TagFactory(name="跑步", slug="runner", category=interest)
    AttributeDefinition.objects.create(key="vip_level", label="会员等级", type=AttributeType.CHOICE, choices=["金", "银"])
    AttributeDefinition.objects.create(key="newsletter", label="订阅", type=AttributeType.BOOLEAN)
    Segment.objects.create(name="上海客户", slug="shanghai", definition={"field": "city", "op": "eq", "value": "上海"})
    parse(EVERY_SHAPE)
    segment = Segment.objects.create(name="全部形状", slug="every-shape", definition=EVERY_SHAPE)
    log_in(page, live_server, *admin_login)

    # when staff open it, every node is drawn by its own kind, and the count comes back
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")
    page.wait_for_selector(".cb-preview .cb-count")
    assert page.locator("[data-kind=unknown]").count() == 0
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "every-shape.png"), full_page=True)
    assert page.locator("[data-kind=sequence]").count() == 2 and page.locator("[data-kind=not]").count() == 3
    assert page.locator("[data-kind=consent]").count() == 1 and page.locator("[data-kind=segment]").count() == 2
    assert page.locator("[data-kind=campaign]").count() == 1
    assert page.inner_text("[data-path='all[11].any[1].'] .cb-chips").count("×") == 2
    # then redrawing (a condition added and removed) leaves the definition as it was
    page.click("[data-path=''] > .cb-adders [data-add=field]")
    page.keyboard.press("Escape")
    added = f"[data-path='all[{len(EVERY_SHAPE['all'])}].']"
    page.click(f"{added} .cb-remove")
    assert textarea_definition(page) == EVERY_SHAPE
    # and so does a trip through "edit as JSON"
    page.click(".cb-toggle-json")
    page.click(".cb-toggle-json")
    assert textarea_definition(page) == EVERY_SHAPE

    # consent and segment conditions are picked from their lists like the rest
    page.click("[data-path=''] > .cb-adders [data-add=consent]")
    pick(page, "邮件")
    page.select_option(f"{added} select[data-key=op]", "not_granted")
    page.click("[data-path=''] > .cb-adders [data-add=segment]")
    pick(page, "上海")
    assert textarea_definition(page)["all"][-2:] == [
        {"consent": "email_marketing", "op": "not_granted"}, {"segment": "shanghai", "op": "in"},
    ]
    page.click(f"[data-path='all[{len(EVERY_SHAPE['all']) + 1}].'] .cb-remove")
    page.click(f"{added} .cb-remove")

    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/segments/segment/")
    segment.refresh_from_db()
    assert segment.definition == EVERY_SHAPE


def test_staff_ask_for_orders_placed_after_20_00_on_the_beijing_clock(page, live_server, admin_login):
    """喜欢在晚上8点后下单: the time of day is read on the display time zone's clock."""
    import datetime

    from tests.factories import EventFactory

    shanghai = datetime.timezone(datetime.timedelta(hours=8))
    yesterday = (datetime.datetime.now(shanghai) - datetime.timedelta(days=1)).date()
    for name, hour in (("夜猫子", 21), ("深夜", 23), ("上班族", 10)):
        EventFactory(profile=ProfileFactory(name=name), name="order",
                     occurred_at=datetime.datetime.combine(yesterday, datetime.time(hour, 30), tzinfo=shanghai))
    log_in(page, live_server, *admin_login)

    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.fill("#id_name", "晚上8点后下单")
    page.fill("#id_slug", "evening-buyers")
    page.wait_for_selector(".cb-preview .cb-status")
    page.click(".cb-tree [data-add=event]")
    pick(page, "下单")
    wait_for_count(page, 3)
    page.click("[data-path='all[0].'] [data-add=time_of_day]")
    assert "时段" in page.inner_text("[data-path='all[0].'] [data-key=time_of_day]")
    wait_for_count(page, 2)  # 20:00 – 24:00 by default

    page.fill("[data-path='all[0].'] input[data-key='time_of_day.from']", "22:00")
    wait_for_count(page, 1)

    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/segments/segment/")
    definition = Segment.objects.get(slug="evening-buyers").definition
    assert definition["all"][0]["time_of_day"] == {"from": "22:00", "to": "00:00"}


def test_staff_build_a_three_step_funnel_ordering_after_20_00(page, live_server, admin_login):
    """浏览 → 加购 → 下单, the order placed after 20:00 Beijing time, with the live count."""
    import datetime

    from tests.factories import EventFactory

    shanghai = datetime.timezone(datetime.timedelta(hours=8))
    day = (datetime.datetime.now(shanghai) - datetime.timedelta(days=10)).date()

    def at(days_after, hour):
        return datetime.datetime.combine(day + datetime.timedelta(days=days_after), datetime.time(hour), tzinfo=shanghai)

    journeys = {"晚上下单": [("product_view", at(0, 12)), ("add_to_cart", at(0, 13)), ("order", at(1, 21))],
                "上午下单": [("product_view", at(0, 12)), ("add_to_cart", at(0, 13)), ("order", at(1, 10))],
                "只加购": [("product_view", at(0, 12)), ("add_to_cart", at(0, 13))],
                "直接下单": [("order", at(1, 22))]}
    for name, steps in journeys.items():
        person = ProfileFactory(name=name)
        for event, moment in steps:
            EventFactory(profile=person, name=event, occurred_at=moment)
    log_in(page, live_server, *admin_login)

    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.fill("#id_name", "浏览加购后晚上下单")
    page.fill("#id_slug", "evening-funnel")
    page.wait_for_selector(".cb-preview .cb-status")
    page.click(".cb-tree [data-add=sequence]")
    pick(page, "浏览商品")
    page.click("[data-path='all[0].sequence[1].'] .cb-picker-button")
    pick(page, "加入购物车")
    wait_for_count(page, 3)
    page.click("[data-add=step]")
    page.click("[data-path='all[0].sequence[2].'] .cb-picker-button")
    pick(page, "下单")
    wait_for_count(page, 2)
    page.click("[data-path='all[0].sequence[2].'] [data-add=time_of_day]")
    wait_for_count(page, 1)

    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/segments/segment/")
    (funnel,) = Segment.objects.get(slug="evening-funnel").definition["all"]
    assert [step["event"] for step in funnel["sequence"]] == ["product_view", "add_to_cart", "order"]
    assert funnel["sequence"][2]["time_of_day"] == {"from": "20:00", "to": "00:00"}


def test_staff_ask_for_customers_who_received_a_campaign_but_did_not_click_it(page, live_server, admin_login):
    """收到了“双十一短信”但没有点击: the campaign picker, the action and “but not”, in Chinese, with the live count."""
    import datetime

    from django.utils import timezone

    from campaigns.models import Campaign, CampaignRun, Delivery, Destination
    from consent.models import Purpose

    destination = Destination.objects.create(name="短信通道", kind="webhook", config={"url": "http://127.0.0.1:9/"})
    campaign = Campaign.objects.create(name="双十一短信", purpose=Purpose.objects.get(code="sms_marketing"),
                                       destination=destination, audience_kind="trigger_event", trigger_event="order",
                                       status="finished")
    sent = timezone.now() - datetime.timedelta(days=2)
    for name, clicked in (("收到未点", None), ("收到已点", sent + datetime.timedelta(hours=1))):
        Delivery.objects.create(run=CampaignRun.objects.create(campaign=campaign, started_at=sent), campaign=campaign,
                                destination=destination, profile=ProfileFactory(name=name), channel="sms",
                                status="delivered", created_at=sent, sent_at=sent, delivered_at=sent, clicked_at=clicked)
    ProfileFactory(name="没收到")
    log_in(page, live_server, *admin_login)

    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.fill("#id_name", "收到未点击")
    page.fill("#id_slug", "received-not-clicked")
    page.wait_for_selector(".cb-preview .cb-status")
    assert page.inner_text(".cb-tree [data-add=campaign]") == "+ 营销活动"
    page.click(".cb-tree [data-add=campaign]")
    pick(page, "双十一")
    wait_for_count(page, 2)  # received, by default
    node = "[data-path='all[0].']"
    assert "送达" in page.inner_text(f"{node} select[data-key=action]")
    page.select_option(f"{node} select[data-key=without]", label="点击")
    wait_for_count(page, 1)
    page.select_option(f"{node} select[data-key=count]", "eq")
    page.fill(f"{node} input[data-key=count]", "0")
    wait_for_count(page, 2)  # no such message: the one who clicked and the one never messaged

    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/segments/segment/")
    assert Segment.objects.get(slug="received-not-clicked").definition == {"all": [
        {"campaign": campaign.pk, "action": "received", "without": "clicked", "count": {"op": "eq", "value": 0}}]}
