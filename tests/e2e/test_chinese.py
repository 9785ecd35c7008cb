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
