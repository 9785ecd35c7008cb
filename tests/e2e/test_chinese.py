"""What a Chinese marketer trips over, in the browser, in Chinese: a condition just added
is not an error yet; labels instead of codes; a segment still calculating says so; the
analyses' colours. Screenshots (1440 px) go to CDP_E2E_SCREENSHOTS when it is set."""
import os

import pytest

from tests.e2e.conftest import log_in

SCREENSHOTS = os.environ.get("CDP_E2E_SCREENSHOTS")


@pytest.fixture
def wide_page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shot(page, name):
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def test_a_condition_just_added_is_not_shown_as_an_error(wide_page, live_server, admin_login):
    page = wide_page
    log_in(page, live_server, *admin_login)
    # given a new segment's builder
    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.wait_for_selector(".cb-preview .cb-status")
    # when staff add a condition and have not chosen anything in it yet
    page.click(".cb-tree [data-add=field]")
    page.keyboard.press("Escape")
    page.wait_for_selector(".cb-preview .cb-incomplete")
    # then nothing is red: the preview says to finish the condition
    assert page.locator(".cb-tree .cb-error").count() == 0
    assert page.locator(".cb-invalid").count() == 0
    assert "选好新条件" in page.inner_text(".cb-preview")
    # the same for a new group
    page.click("[data-path=''] > .cb-adders [data-add=group]")
    page.wait_for_function("() => document.querySelectorAll('[data-kind=group]').length === 2")
    page.wait_for_selector(".cb-preview:not(.cb-busy) .cb-incomplete")
    assert page.locator(".cb-tree .cb-error").count() == 0
    shot(page, "builder-new-condition")
    # when they choose the field but leave its value out, the problem shows where it is
    page.click("[data-path='all[0].'] .cb-picker-button")
    search = page.locator(".cb-picker-panel:visible input[type=search]")
    search.fill("城市")
    search.press("Enter")
    page.wait_for_selector("[data-path='all[0].'] > .cb-errors .errornote")


def test_the_slug_follows_a_chinese_name_until_staff_type_their_own(wide_page, live_server, admin_login):
    page = wide_page
    log_in(page, live_server, *admin_login)
    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    # when staff type a Chinese name, the slug is filled in pinyin
    page.fill("#id_name", "上海女性运动鞋")
    page.wait_for_function("() => document.querySelector('#id_slug').value === 'shang-hai-nv-xing-yun-dong-xie'")
    assert "required" not in (page.get_attribute("label[for=id_slug]", "class") or "")
    shot(page, "segment-slug")
    # when they type their own, a change of name leaves it alone
    page.fill("#id_slug", "sh-women")
    page.fill("#id_name", "上海女性")
    page.wait_for_timeout(600)
    assert page.input_value("#id_slug") == "sh-women"


def test_a_segment_being_calculated_shows_progress_then_its_count(wide_page, live_server, admin_login):
    from segments.models import Segment
    from segments.services import segment_recompute, segment_save
    from tests.factories import ProfileFactory

    page = wide_page
    for i in range(3):
        ProfileFactory(city="上海", phone=f"+861380013810{i}")
    segment = segment_save(segment=Segment(name="上海客户", slug="sh"),
                           definition={"field": "city", "op": "eq", "value": "上海"})
    log_in(page, live_server, *admin_login)
    # given a segment the worker has not calculated yet
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")
    # then its page says so, with a progress bar, not "0"
    assert "计算中" in page.inner_text("#segment-calculating")
    assert page.locator("#segment-calculating progress").count() == 1
    shot(page, "segment-calculating")
    # when the worker finishes, the page shows the count by itself
    segment_recompute(segment_id=segment.pk)
    page.wait_for_selector(".field-members .readonly:has-text('3')")
    assert page.locator("#segment-calculating").count() == 0


def test_a_funnel_drop_off_becomes_a_named_list(wide_page, live_server, admin_login):
    import datetime

    from django.utils import timezone

    from tests.factories import EventFactory, ProfileFactory

    now = timezone.now()
    for i in range(3):  # three start opening an account, one submits
        profile = ProfileFactory(name=f"客户{i}", phone=f"+861380013820{i}")
        EventFactory(profile=profile, name="account_open_start", occurred_at=now - datetime.timedelta(days=3, hours=i))
        if i == 0:
            EventFactory(profile=profile, name="account_open_submit", occurred_at=now - datetime.timedelta(days=2))
    page = wide_page
    log_in(page, live_server, *admin_login)
    page.goto(f"{live_server.url}/admin/segments/savedanalysis/funnel/?run=1&step_1=account_open_start"
              "&step_2=account_open_submit&step_3=account_open_complete&window_days=7&days=30")
    page.click(".drop-off-button[data-step='1']")
    page.wait_for_selector("#static-members")
    assert "完成“开始开户”后未“提交开户”" in page.inner_text("#content")
    assert "固定名单，共 2 位客户" in page.inner_text("#static-members")
    assert page.locator(".condition-builder").count() == 0 and page.locator("#id_refresh_every_minutes").count() == 0
    shot(page, "static-segment")


def test_the_rfm_heat_map_colours_its_cells_and_lifecycle_colours_match(wide_page, live_server, admin_login):
    from profiles.metrics import metrics_recompute
    from tests.factories import ProfileFactory, order

    for i in range(12):  # customers spread over the R×F grid
        profile = ProfileFactory(name=f"客户{i}")
        for k in range(1 + i % 5):
            order(profile, days_ago=3 + (i * 17) % 300 + k, amount=str(100 * (i + 1)))
    metrics_recompute()
    page = wide_page
    log_in(page, live_server, *admin_login)
    page.goto(f"{live_server.url}/admin/segments/savedanalysis/rfm/?run=1")
    page.wait_for_selector("#analysis-chart canvas")
    page.wait_for_timeout(800)  # the chart's entry animation
    # then a cell with customers is painted, not left white
    colours = page.evaluate("""() => {
        const el = document.getElementById("analysis-chart");
        const chart = echarts.getInstanceByDom(el);
        const cells = JSON.parse(document.getElementById("analysis-data").textContent).cells;
        const canvas = el.querySelector("canvas");
        const context = canvas.getContext("2d");
        const ratio = canvas.width / canvas.clientWidth;
        return cells.filter((c) => c[2] > 0).map((c) => {
            const [x, y] = chart.convertToPixel({seriesIndex: 0}, [c[0], c[1]]);
            // a little off the centre, away from the label
            return Array.from(context.getImageData(Math.round((x + 12) * ratio), Math.round((y + 12) * ratio), 1, 1).data);
        });
    }""")
    assert colours and all(max(rgba[:3]) - min(rgba[:3]) > 20 and rgba[3] > 0 for rgba in colours), colours
    shot(page, "rfm")
    page.goto(f"{live_server.url}/admin/segments/savedanalysis/lifecycle/?run=1&weeks=8")
    page.wait_for_selector("#analysis-chart canvas")
    shot(page, "lifecycle")
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_selector("#lifecycle-chart canvas")
    page.wait_for_timeout(1200)  # the pie's entry animation
    shot(page, "dashboard")


def test_the_access_summary_downloads_in_chinese(wide_page, live_server, admin_login):
    import datetime

    from cdp.actors import Actor
    from consent.requests import data_request_create
    from consent.services import consent_record
    from tests.factories import EventFactory, ProfileFactory

    profile = ProfileFactory(name="王芳", gender="female", country="CN", city="上海")
    paid = datetime.datetime(2026, 3, 1, 0, 30, tzinfo=datetime.timezone.utc)
    EventFactory(profile=profile, name="payment", occurred_at=paid, properties={"method": "alipay"})
    EventFactory(profile=profile, name="order", occurred_at=paid, properties={"category": "lipstick"}, amount=299)
    consent_record(profile=profile, purpose_code="sms_marketing", status="granted", source="web_form",
                   actor=Actor.system("e2e"), captured_at=paid)
    request = data_request_create(kind="access", requester="王芳（邮件）", profile=profile, actor=Actor.system("e2e"))
    page = wide_page
    log_in(page, live_server, *admin_login)
    page.goto(f"{live_server.url}/admin/consent/datasubjectrequest/{request.pk}/change/")
    with page.expect_download() as download:
        page.click("#export-summary-zh")
    html = open(download.value.path(), encoding="utf-8").read()
    assert "支付方式: 支付宝" in html and "2026-03-01 08:30" in html and "口红" in html
    page.set_content(html)
    shot(page, "access-summary")


def test_labels_instead_of_codes_on_the_timeline_the_why_page_and_the_taxonomy(wide_page, live_server, admin_login):
    from cdp.actors import Actor
    from profiles import activity
    from profiles.models import Profile
    from segments.models import Segment
    from segments.services import segment_save
    from tests.factories import EventFactory, ProfileFactory, TagFactory

    tag = TagFactory(name="喜欢运动鞋", slug="sneaker-lover")
    profile = ProfileFactory(name="李雷", gender="male", phone="+8613800138111")
    EventFactory(profile=profile, name="payment", properties={"method": "alipay"}, source="mini_program")
    EventFactory(profile=profile, name="order", properties={"category": "outdoor", "channel": "app"}, amount=899)
    activity.tag_added(profiles=Profile.objects.filter(pk=profile.pk), tag=tag, source="rule", reason="",
                       actor=Actor.system("rule tags"))
    segment = segment_save(segment=Segment(name="女性运动鞋", slug="women-sneakers"), definition={"all": [
        {"field": "gender", "op": "eq", "value": "female"}, {"tag": "sneaker-lover", "op": "has"},
        {"event": "payment", "where": [{"property": "method", "op": "eq", "value": "alipay"}]}]})
    page = wide_page
    log_in(page, live_server, *admin_login)
    # the timeline: property names and values, sources and the system's jobs in Chinese
    page.goto(f"{live_server.url}/admin/profiles/profile/{profile.pk}/change/")
    timeline = page.inner_text("#content")
    for expected in ("支付方式: 支付宝", "品类: 户外用品", "小程序", "规则标签刷新"):
        assert expected in timeline, expected
    assert "alipay" not in timeline and "rule tags" not in timeline
    shot(page, "timeline")
    # the why page: labels and his own values
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/why/?profile=13800138111")
    tree = page.inner_text("#why-tree")
    for expected in ("性别 = 女", "此客户：男", "有标签 喜欢运动鞋", "[支付方式 = 支付宝]", "此客户：1 次"):
        assert expected in tree, expected
    shot(page, "why")
    # the taxonomy: searching 行为 finds the seeded root
    page.goto(f"{live_server.url}/admin/profiles/tagcategory/?q=行为")
    assert "行为标签" in page.inner_text("#result_list")


def test_event_property_values_are_chosen_by_their_labels(wide_page, live_server, admin_login):
    from tests.factories import EventFactory, ProfileFactory

    for method in ("alipay", "wechat_pay", "wechat_pay"):
        EventFactory(profile=ProfileFactory(), name="payment", properties={"method": method})
    page = wide_page
    log_in(page, live_server, *admin_login)
    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    page.wait_for_selector(".cb-preview .cb-status")
    # given a behaviour condition on 支付
    page.click(".cb-tree [data-add=event]")
    search = page.locator(".cb-picker-panel:visible input[type=search]")
    search.fill("支付")
    search.press("Enter")
    page.wait_for_selector(".cb-preview:not(.cb-busy) .cb-count")
    # when staff add a property filter: nothing is red before they choose its value
    page.click("[data-path='all[0].'] [data-add=where]")
    value = page.locator("[data-path='all[0].'] .cb-where select[data-key=value]")
    page.wait_for_selector(".cb-preview:not(.cb-busy)")
    page.wait_for_timeout(700)
    assert page.locator(".cb-tree .cb-error").count() == 0
    # then the known values are offered by their labels, and choosing one stores its code
    options = value.locator("option").all_inner_texts()
    assert "支付宝" in options and "微信支付" in options and "alipay" not in options
    value.select_option(label="微信支付")
    page.wait_for_function("() => document.querySelector('.cb-preview:not(.cb-busy) .cb-count') && "
                           "document.querySelector('.cb-preview:not(.cb-busy) .cb-count').dataset.count === '2'")
    assert '"wechat_pay"' in page.input_value("#id_definition")
    shot(page, "builder-property-values")
    # and a value the definitions do not know can still be typed
    value.select_option(label="其他值…")
    typed = page.locator("[data-path='all[0].'] .cb-where input[data-key=value]")
    typed.fill("card")
    page.wait_for_function("() => document.querySelector('.cb-preview:not(.cb-busy) .cb-count') && "
                           "document.querySelector('.cb-preview:not(.cb-busy) .cb-count').dataset.count === '0'")
