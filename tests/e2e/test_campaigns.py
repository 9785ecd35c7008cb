"""A marketer's campaign in the browser, in Chinese: build it for a segment with a partner
webhook (a local HTTP receiver), read the funnel and the customers a step removed, preview,
test-send, launch, watch progress and read the results."""
import os

import pytest
from django.contrib.auth import get_user_model

from campaigns.models import Campaign, Destination
from campaigns.services.sending import campaigns_finish, destination_drain
from consent.models import Purpose
from tests.campaigns.conftest import SECRET, Receiver, consenting, segment_of
from tests.e2e.conftest import log_in
from tests.factories import ProfileFactory

SCREENSHOTS = os.environ.get("CDP_E2E_SCREENSHOTS")  # a folder, to look at the pages while working on them


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def shot(page, name):
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"campaign-{name}.png"), full_page=True)


def test_a_marketer_builds_previews_test_sends_launches_and_reads_the_results(page, live_server, receiver):
    # given four customers who agreed to SMS marketing and one who did not, in a static segment
    people = consenting(n=4, city="上海")
    people[0].name = "王小明"
    people[0].save()
    stranger = ProfileFactory(name="没同意", phone="+8613911112222")
    segment_of([*people, stranger], slug="shanghai-vip").__class__.objects.filter(slug="shanghai-vip").update(
        name="上海会员")
    Destination.objects.create(name="合作方推送", kind="webhook", config={"url": receiver.url}, secret=SECRET)
    get_user_model().objects.create_superuser("staff", "staff@example.com", "browser-test-pw-1",
                                              first_name="李小红")
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, "staff", "browser-test-pw-1")

    # when the marketer drafts an SMS campaign for the segment, typing the message
    page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    page.fill("#id_name", "春季新品短信")
    page.select_option("#id_purpose", str(Purpose.objects.get(code="sms_marketing").pk))
    page.select_option("#id_destination", label="合作方推送")
    page.click("#id_segment + .select2")
    page.fill(".select2-search__field", "上海")
    page.click(".select2-results__option:has-text('上海会员')")
    page.fill("#id_variants-0-sms_sign_name", "品牌")
    page.fill("#id_variants-0-body", "{{ name }}，{{ city }}门店春季新品到店，凭短信享9折")
    # then the live preview shows the SMS as the phone will, with its length
    preview = page.locator(".campaign-live-preview")
    page.wait_for_selector(".campaign-live-preview .preview-text:has-text('门店春季新品')")
    page.wait_for_selector(".campaign-live-preview .preview-text:has-text('王小明')")  # the audience's first
    assert "【品牌】王小明，上海门店" in preview.inner_text() and "拒收请回复R" in preview.inner_text()
    assert "条短信" in preview.locator(".sms-counter").inner_text()
    # and a wrong token is named with its line before saving
    page.fill("#id_variants-0-body", "您好\n{{ phone }}")
    page.wait_for_selector(".campaign-live-preview .errornote")
    assert "第 2 行" in preview.inner_text() and "phone" in preview.inner_text()
    page.fill("#id_variants-0-body", "{{ name }}，{{ city }}门店春季新品到店，凭短信享9折")
    page.fill("#id_holdout_percent", "0")
    page.check("#id_ignore_quiet_hours")
    page.wait_for_selector(".campaign-live-preview .sms-counter")
    shot(page, "form")
    page.click("input[name=_continue]")

    # then the campaign page shows the funnel: 5 in the segment, consent removes 1, 4 to send
    page.wait_for_selector("#funnel")
    counts = {row.get_attribute("data-code") or row.locator("td").first.inner_text():
              row.locator(".funnel-count").inner_text() for row in page.locator(".funnel-step").all()}
    assert counts["受众人数"] == "5" and counts["consent"] == "4" and counts["将发送"] == "4"
    # and the preview is rendered for a customer of the audience
    assert "门店春季新品到店" in page.inner_text("#previews")
    shot(page, "draft")

    # when they open the customers consent removed: the one who did not agree, masked
    page.click("tr[data-code=consent] a.funnel-removed")
    assert "没同意" in page.inner_text("#funnel-customers")
    assert "139****2222" in page.inner_text("#funnel-customers")
    page.go_back()

    # when they send a test to their own mobile
    page.fill("#test-send input[name=address]", "13800138999")
    page.click("#test-send-button")
    assert "测试消息已通过“合作方推送”发送到 138****8999" in page.inner_text(".messagelist")
    assert receiver.messages[-1]["address"] == "+8613800138999"
    assert receiver.messages[-1]["text"].startswith("【品牌】李小红")

    # when they launch: the confirmation says how many will go
    page.click("#launch")
    assert page.inner_text("#launch-size") == "4"
    shot(page, "launch")
    page.click("#confirm-launch")
    assert "已启动" in page.inner_text(".messagelist")

    # then the worker (eager here) decided and sent; the drain finishes what is due
    destination_drain(destination_id=Destination.objects.get().pk, budget_seconds=10)
    campaigns_finish()
    assert sorted(m["address"] for m in receiver.messages[1:]) == sorted(p.phone for p in people)
    # and the page follows: progress and results, per variant
    page.wait_for_selector("#campaign-status:has-text('已完成')", timeout=10_000)
    assert page.inner_text("[data-status-count=sent]") == "4"
    assert page.inner_text("#result-total [data-result=recipients]") == "4"
    assert "A" in page.inner_text(".result-variant")
    assert not page.locator("#launch").count() and Campaign.objects.get().status == Campaign.Status.FINISHED
    shot(page, "results")
    # and the list shows it finished, all four sent
    page.goto(f"{live_server.url}/admin/campaigns/campaign/")
    assert "已完成" in page.inner_text("#result_list") and "4 / 4" in page.inner_text("#result_list")
    shot(page, "list")


def test_the_administrator_sets_up_a_webhook_destination_and_tests_its_connection(page, live_server, receiver,
                                                                                  admin_login):
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, *admin_login)
    # when the administrator adds a destination and picks the webhook kind
    page.goto(f"{live_server.url}/admin/campaigns/destination/add/")
    page.fill("#id_name", "合作方推送")
    page.select_option("#id_kind", "webhook")
    # then only the webhook's settings are shown
    assert page.is_visible("#id_config_webhook_url") and not page.is_visible("#id_config_email_host")
    page.fill("#id_config_webhook_url", receiver.url)
    page.fill("#id_new_secret", "whsec-typed-once")
    page.click("input[name=_continue]")
    # and the secret is never shown again
    page.wait_for_selector("#test-connection")
    assert page.input_value("#id_new_secret") == "" and "whsec-typed-once" not in page.content()
    # when they test the connection, the partner's answer is shown and recorded
    page.click("#test-connection")
    assert "成功：Webhook 返回 200" in page.inner_text(".messagelist")
    assert "成功：Webhook 返回 200" in page.inner_text("#last-test")
    assert Destination.objects.get().last_test_at is not None
    shot(page, "destination")
    page.goto(f"{live_server.url}/admin/campaigns/destination/")
    assert "合作方推送" in page.inner_text("#result_list")


def test_a_marketer_uploads_coupon_codes_from_a_gb18030_file(page, live_server, admin_login, tmp_path):
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, *admin_login)
    page.goto(f"{live_server.url}/admin/campaigns/couponpool/add/")
    page.fill("#id_name", "满100减20")
    page.click("input[name=_save]")
    # when a file with a repeated code is uploaded
    codes = tmp_path / "券码.txt"
    codes.write_bytes("SPRING01\nSPRING02\nSPRING02\n".encode("gb18030"))
    page.set_input_files("#id_file", str(codes))
    page.click("#coupon-upload input[type=submit]")
    # then two are added and one refused, and the pool counts them
    assert "已添加 2 个券码；拒收 1 个（重复 1 个" in page.inner_text(".messagelist")
    assert "可用 2" in page.inner_text("#coupon-counts")
    shot(page, "coupons")
