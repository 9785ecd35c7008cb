"""The customer list and the profile page in a real browser, in Chinese (the admin's
default language; the browser itself asks for English)."""
from cdp.actors import Actor
from profiles import services
from profiles.models import Profile, ProfileActivity, ProfileTag
from profiles.services.tags import tag_assign
from tests.e2e.conftest import log_in
from tests.factories import EventFactory, ProfileFactory, TagFactory


def customer(**fields):
    return services.profile_create(actor=Actor.system("e2e"), source="admin", **{
        "name": "王芳", "phone": "13800138000", "city": "上海", "province": "上海", **fields,
    })


def test_select_all_beyond_the_list_cap_counts_exactly_then_tags_with_a_reason(page, live_server, admin_login,
                                                                                  settings):
    # given a list that counts only up to 20, 30 women in Shanghai (2 already tagged, 1 erased)
    settings.CDP_ADMIN_COUNT_CAP = 20
    tag = TagFactory(name="高价值")
    women = ProfileFactory.create_batch(30, gender="female", city="上海")
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk__in=[w.pk for w in women[:2]]), source="manual",
               actor=Actor.system("e2e"))
    Profile.objects.filter(pk=women[2].pk).update(status="erased")
    log_in(page, live_server, *admin_login)

    # when staff filter to them and tick the page, the list says "more than 20", not "20"
    page.goto(f"{live_server.url}/admin/profiles/profile/?gender__exact=female")
    page.check("#action-toggle")
    question = page.inner_text(".actions .question")
    assert "超过 20 个" in question and "执行前会统计确切数量" in question
    # and they select all, add the tag with a reason
    page.click(".actions .question a")
    page.select_option("select[name=action]", "add_tag")
    page.select_option("select[name=tag]", label="高价值")
    page.fill(".actions input[name=reason]", "双十一 VIP 回访")
    page.click("button[name=index]")
    # then the confirmation page states the exact numbers before anything is written
    assert "将为 27 位客户添加标签“高价值”" in page.inner_text("#bulk-tag-will-change")
    assert "共选中 30 位客户" in page.inner_text("#bulk-tag-selected")
    assert "2 位已有此标签" in page.inner_text("#bulk-tag-already")
    assert "1 位已删除或已合并" in page.inner_text("#bulk-tag-inactive")
    assert page.input_value("#bulk-tag-reason") == "双十一 VIP 回访"
    assert ProfileTag.objects.filter(tag=tag).count() == 2
    # when they confirm, then the report says what happened to all 30, and the reason is kept
    page.click("#bulk-tag-confirm")
    page.wait_for_selector("text=已为 27 位客户添加标签“高价值”。")
    assert "2 位已有此标签" in page.inner_text(".messagelist") and "1 位已删除或已合并的客户未处理" in page.inner_text(
        ".messagelist")
    assert set(ProfileTag.objects.filter(tag=tag).exclude(profile__in=women[:2]).values_list("reason", flat=True)) == {
        "双十一 VIP 回访"}
    # and the customer's timeline shows the reason
    page.goto(f"{live_server.url}/admin/profiles/profile/{women[5].pk}/change/")
    assert "双十一 VIP 回访" in page.inner_text("#timeline-entries")


def test_the_list_filters_by_city_and_consent_and_search_finds_a_city(page, live_server, admin_login):
    # given customers in Shanghai, Shenzhen and Beijing, one Shenzhen customer consenting to SMS
    from consent.services import consent_record

    ProfileFactory(name="上海客户", city="上海", province="上海")
    sms = ProfileFactory(name="深圳短信客户", city="深圳", province="广东")
    ProfileFactory(name="深圳客户", city="深圳", province="广东")
    ProfileFactory(name="北京客户", city="北京", province="北京")
    consent_record(profile=sms, purpose_code="sms_marketing", status="granted", source="admin",
                   actor=Actor.system("e2e"))
    log_in(page, live_server, *admin_login)

    # when staff search for 上海市, then they find the Shanghai customer
    page.goto(f"{live_server.url}/admin/profiles/profile/")
    page.fill("#searchbar", "上海市")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("text=1 条结果")
    assert [row.split("\t")[1] for row in page.locator("#result_list tbody tr").all_inner_texts()] == ["上海客户"]

    # when they pick 广东 in the province filter, then its cities are the city choices and both Shenzhen customers show
    page.goto(f"{live_server.url}/admin/profiles/profile/")
    filters = page.locator("#changelist-filter")
    assert "以 城市" in filters.inner_text() and "以 同意用途" in filters.inner_text()
    page.locator("#changelist-filter details", has_text="以 省份").get_by_role("link", name="广东", exact=True).click()
    page.wait_for_url("**province=*")
    names = {row.split("\t")[1] for row in page.locator("#result_list tbody tr").all_inner_texts()}
    assert names == {"深圳短信客户", "深圳客户"}
    # and narrowing to SMS consent leaves the one who agreed
    page.locator("#changelist-filter details", has_text="以 同意用途").get_by_role("link", name="短信营销").click()
    page.wait_for_url("**consent=sms_marketing*")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "深圳短信客户" in page.inner_text("#result_list")


def test_an_erased_customer_is_read_only_with_a_banner(page, live_server, admin_login):
    # given an erased customer
    profile = customer()
    Profile.objects.filter(pk=profile.pk).update(status="erased", name="", phone="")
    log_in(page, live_server, *admin_login)
    # when staff open the page
    page.goto(f"{live_server.url}/admin/profiles/profile/{profile.pk}/change/")
    # then a banner says 已删除, and nothing offers to edit, tag, add a note or record consent
    assert "已删除" in page.inner_text("#profile-status-banner")
    for selector in ("#edit-profile", "#add-tag-form", "#note-form", ".consent-grant", ".consent-withdraw"):
        assert page.locator(selector).count() == 0, selector
    assert "记录同意" not in page.inner_text("#consent")
    assert not ProfileActivity.objects.filter(profile=profile, type="note").exists()


def test_the_profile_page_groups_money_and_its_consent_buttons_fit(page, live_server, admin_login):
    # given a big spender with an order and an e-mail consent
    from consent.services import consent_record

    profile = customer()
    Profile.objects.filter(pk=profile.pk).update(total_spent=24934, order_count=3)
    EventFactory(profile=profile, name="order", amount=12345.5)
    consent_record(profile=profile, purpose_code="email_marketing", status="granted", source="admin",
                   actor=Actor.system("e2e"))
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, *admin_login)
    # when staff open the page
    page.goto(f"{live_server.url}/admin/profiles/profile/{profile.pk}/change/")
    # then money reads with thousands separators
    assert "¥24,934.00" in page.inner_text("#profile-header")
    assert "¥12,345.50" in page.inner_text("#timeline-entries")
    # and every consent button is fully inside the consent card
    card = page.locator("#consent").bounding_box()
    for button in page.locator("#consent .consent-states a.button").all():
        box = button.bounding_box()
        assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"] + 0.5
    # when they click withdraw for e-mail marketing, then the form says 撤回同意, not 记录同意
    page.locator("tr[data-purpose=email_marketing] a.consent-withdraw").click()
    assert page.inner_text("#content h1") == "撤回 王芳 的同意"
    assert page.input_value("#consent-form input[type=submit]") == "撤回同意"
    page.click("#consent-form input[type=submit]")
    page.wait_for_selector("#consent")
    assert "已撤回" in page.inner_text("tr[data-purpose=email_marketing]")


def test_the_radar_shows_every_interest_axis_with_the_customers_weights(page, live_server, admin_login):
    # given three interests in the taxonomy, and a customer who holds one of them at 0.8
    profile = customer()
    sneakers = TagFactory(kind="interest", name="喜欢运动鞋")
    TagFactory(kind="interest", name="护肤控")
    TagFactory(kind="interest", name="日本旅行爱好者")
    tag_assign(tag=sneakers, profiles=Profile.objects.filter(pk=profile.pk), source="interest",
               actor=Actor.system("e2e"), weight=0.8)
    log_in(page, live_server, *admin_login)
    # when staff open the page
    page.goto(f"{live_server.url}/admin/profiles/profile/{profile.pk}/change/")
    # then the radar is drawn with the three axes, and the weights are listed
    page.wait_for_selector("#interest-radar canvas")
    rows = page.locator(".interest-weights tbody tr").all_inner_texts()
    assert [row.replace("\t", " ") for row in rows] == ["喜欢运动鞋 0.80", "护肤控 0.00", "日本旅行爱好者 0.00"]
    indicator = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('interest-radar')).getOption().radar[0].indicator"
        ".map((axis) => axis.name)")
    assert indicator == ["喜欢运动鞋 0.80", "护肤控 0.00", "日本旅行爱好者 0.00"]
