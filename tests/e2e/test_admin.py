from cdp.actors import Actor
from profiles import services
from tests.e2e.conftest import log_in


def test_staff_logs_in_finds_a_customer_by_phone_and_opens_the_profile(page, live_server, admin_login):
    # given a customer known by phone and CRM id
    services.profile_create(
        actor=Actor.system("e2e"), source="admin", name="王芳", phone="13800138000", city="上海",
        identities=[("crm_id", "CRM-0001")],
    )
    # when staff log in (in Chinese, though the browser asks for English) …
    log_in(page, live_server, *admin_login)
    assert "客户数据平台" in page.content()
    # … search for the phone typed with spaces and open the result
    page.goto(f"{live_server.url}/admin/profiles/profile/")
    page.fill("#searchbar", "138 0013 8000")
    page.press("#searchbar", "Enter")
    page.click("#result_list a:has-text('王芳')")
    # then the profile page shows the person, their identities and timeline
    page.wait_for_selector("#profile-header")
    assert "+8613800138000" in page.inner_text("#profile-header")
    assert "CRM-0001" in page.inner_text("#identities")
    assert "创建客户档案" in page.inner_text("#timeline")


def test_language_switch_shows_the_admin_in_english(page, live_server, admin_login):
    log_in(page, live_server, *admin_login)
    page.select_option("#language-switch", "en")
    page.wait_for_selector("text=Customer Data Platform")
    assert "Customers" in page.content()
