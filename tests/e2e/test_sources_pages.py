"""A tracking source in the browser, in Chinese: made in the admin with its key shown once,
then its page's live debugger shows a message the moment it is collected (no reload), its
payload masked and expandable; the rotate page asks before it rotates."""
import datetime
import os
import re
import uuid

from django.utils import timezone

from profiles.models import CollectSource
from profiles.services.collect import Message, collect_ingest
from profiles.services.sources import source_for_key
from tests.e2e.conftest import log_in

SCREENSHOTS = os.environ.get("CDP_E2E_SCREENSHOTS")  # a folder, to look at the pages while working on them


def shot(page, name):
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"source-{name}.png"), full_page=True)


def test_a_source_is_made_and_its_debugger_shows_a_collected_message(page, live_server, admin_login):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, *admin_login)

    # given a source made in the admin
    page.goto(f"{live_server.url}/admin/profiles/collectsource/add/")
    assert "增加 埋点数据源" in page.content() or "埋点数据源" in page.title()
    page.fill("#id_name", "官网商城")
    page.fill("#id_allowed_origins", "https://shop.example.cn")
    page.click("input[name=_save]")
    key = page.locator("#write-key").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9]{8}\.[A-Za-z0-9]+", key)
    assert "不会再显示" in page.content() and f"token={key}" in page.locator("#snippet-sensors").inner_text()
    shot(page, "key")
    source = CollectSource.objects.get()
    assert source_for_key(key) == source

    # when its page is open and a message arrives
    page.click("#to-source")
    page.wait_for_selector("#debugger")
    assert "实时调试" in page.inner_text("#debugger") and "尚未收到消息" in page.inner_text("#debugger")
    collect_ingest(source=source, messages=[Message(
        protocol="segment", type="track", message_id=str(uuid.uuid4()), event="add_to_cart", user_id="U100",
        occurred_at=timezone.now() - datetime.timedelta(seconds=5), library="analytics.js 1.84.3",
        properties={"sku": "SKU-9", "phone": "13800138000"},
        raw={"type": "track", "event": "Product Added", "userId": "U100",
             "properties": {"sku": "SKU-9", "phone": "13800138000"}})])

    # then the debugger shows it without a reload, its payload masked
    row = page.wait_for_selector("#debugger-messages tr.log-row", timeout=20_000)
    assert "add_to_cart" in row.inner_text() and "已接受" in row.inner_text() and "analytics.js" in row.inner_text()
    page.click("#debugger-messages tr.log-row summary")
    payload = page.inner_text("#debugger-messages .log-payload")
    assert "SKU-9" in payload and "138****8000" in payload and "13800138000" not in payload
    page.wait_for_function("document.querySelector('[data-total=\"accepted\"]').textContent.trim() === '1'")
    assert page.locator("#traffic-chart canvas").count() >= 1
    shot(page, "page")

    # and rotating asks first
    page.click("#rotate-key")
    assert "立即失效" in page.content()
    page.click("#confirm-rotate")
    new_key = page.locator("#write-key").inner_text().strip()
    assert new_key != key and source_for_key(key) is None
    assert errors == []
