import datetime

from django.utils import timezone

from cdp.actors import Actor
from cdp.models import AuditLog
from profiles import services
from profiles.models import Profile, ProfileMerge
from profiles.timeline import PAGE_SIZE
from tests.e2e.conftest import log_in
from tests.factories import EventFactory


def test_staff_find_read_annotate_reveal_merge_and_unmerge_a_customer(page, live_server, admin_login):
    # given a customer with 120 events (60 of them orders) and a probable duplicate of her
    fang = services.profile_create(
        actor=Actor.system("e2e"), source="admin", name="王芳", phone="13800138000", city="上海",
        identities=[("crm_id", "CRM-0001")],
    )
    Profile.objects.filter(pk=fang.pk).update(created_at=timezone.now() - datetime.timedelta(days=90))
    now = timezone.now()
    for i in range(120):
        EventFactory(profile=fang, name="order" if i % 2 else "page_view", amount=100 if i % 2 else None,
                     occurred_at=now - datetime.timedelta(hours=i + 1))
    duplicate = Profile.objects.create(name="王芳", city="上海", phone="+8613900138000")
    log_in(page, live_server, *admin_login)

    # when staff search for her phone typed with spaces, they find her and open the page
    page.goto(f"{live_server.url}/admin/profiles/profile/")
    page.fill("#searchbar", "138 0013 8000")
    page.press("#searchbar", "Enter")
    page.click("#result_list a:has-text('王芳')")
    page.wait_for_selector("#profile-header")
    assert "138****8000" in page.inner_text("#profile-header")  # masked until revealed
    assert "CRM-0001" in page.inner_text("#identities")

    # the timeline filtered to orders: a first page, then "load more" twice brings the rest
    page.select_option("#timeline-type", "e:order")
    page.click("#timeline-filters button[type=submit]")
    page.wait_for_selector("#timeline-entries .load-more")
    assert page.locator(".timeline-entry").count() == PAGE_SIZE
    while page.locator(".load-more").count():
        shown = page.locator(".timeline-entry").count()
        page.click(".load-more")
        page.wait_for_function(f"document.querySelectorAll('.timeline-entry').length > {shown}")
    assert page.locator(".timeline-entry").count() == 60
    assert page.locator(".timeline-entry:not([data-type=order])").count() == 0
    assert page.locator(".load-more").count() == 0

    # a note lands on the timeline
    page.fill("#note-form textarea", "客户来电，要求更换收货地址")
    page.click("#note-form button")
    page.wait_for_selector("text=已添加备注。")
    assert "客户来电" in page.inner_text("#timeline-entries")

    # revealing the phone is a deliberate, audited click
    page.click("#reveal-pii")
    page.wait_for_selector("#pii-phone:has-text('+8613800138000')")
    assert AuditLog.objects.filter(action="reveal_personal_data", target=str(fang.uuid)).count() == 1

    # review the duplicate pair and merge it
    page.goto(f"{live_server.url}/admin/profiles/profile/duplicates/")
    page.click("#duplicate-groups .compare-link")
    page.wait_for_selector("#compare-table")
    page.click("#merge-button")
    page.wait_for_selector("text=撤销此次合并")
    assert Profile.objects.get(pk=duplicate.pk).merged_into_id == fang.pk

    # and undo it
    page.click("text=撤销此次合并")
    page.click("#unmerge-button")
    page.wait_for_selector("text=已取消合并")
    assert Profile.objects.get(pk=duplicate.pk).status == "active"
    assert ProfileMerge.objects.get().undone_at is not None


def test_language_switch_shows_the_admin_in_english(page, live_server, admin_login):
    log_in(page, live_server, *admin_login)
    assert "客户数据平台" in page.content()  # Chinese, though the browser asks for English
    page.select_option("#language-switch", "en")
    page.wait_for_selector("text=Customer Data Platform")
    assert "Customers" in page.content()
