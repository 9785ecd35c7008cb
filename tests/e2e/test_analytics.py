"""A marketer opens the dashboard, builds the account-opening funnel, sees where people
drop out, turns the drop-outs into a segment and checks their retention — in Chinese."""
import datetime

from django.contrib.auth.models import Group
from django.core.cache import cache
from django.utils import timezone

from profiles.metrics import metrics_recompute
from segments.models import Segment
from tests.e2e.conftest import log_in
from tests.factories import EventFactory, ProfileFactory


def account_openings():
    """Six customers start opening an account 20 days ago: four submit, two complete;
    the two who stop after starting come back a week later to look around."""
    now = timezone.now()
    started = now - datetime.timedelta(days=20)
    for i in range(6):
        profile = ProfileFactory(name=f"开户客户{i}")
        EventFactory(profile=profile, name="account_open_start", occurred_at=started + datetime.timedelta(hours=i))
        if i < 4:
            EventFactory(profile=profile, name="account_open_submit", occurred_at=started + datetime.timedelta(hours=i, minutes=30))
        if i < 2:
            EventFactory(profile=profile, name="account_open_complete", occurred_at=started + datetime.timedelta(days=1, hours=i))
        if i >= 4:
            EventFactory(profile=profile, name="page_view", occurred_at=started + datetime.timedelta(days=8))
    metrics_recompute(now=now)


def test_marketer_finds_the_account_opening_drop_off_and_checks_its_retention(page, live_server, django_user_model):
    # given the account-opening history and a marketer (and no dashboard figures cached
    # by an earlier test)
    cache.clear()
    account_openings()
    marketer = django_user_model.objects.create_user("marketer", password="marketer-pw-1", is_staff=True)
    marketer.groups.add(Group.objects.get(name="营销 marketer"))
    log_in(page, live_server, "marketer", "marketer-pw-1")

    # the dashboard (the admin index) shows the customers, in Chinese, with its charts
    assert page.inner_text("#figure-customers .value") == "6"
    assert "本周新增" in page.inner_text("#dashboard") and "数据更新于" in page.inner_text("#dashboard-age")
    page.wait_for_selector("#analysis-chart canvas")

    # when she opens the funnel (the account-opening steps are offered first) and runs it
    page.click("#dashboard-age a:has-text('漏斗分析')")
    page.select_option("#id_step_1", "account_open_start")
    page.select_option("#id_step_2", "account_open_submit")
    page.select_option("#id_step_3", "account_open_complete")
    page.click("#analyse")
    page.wait_for_selector("#analysis-chart canvas")

    # then she sees the drop-off per step
    rows = page.locator("#analysis-table tbody tr")
    assert [rows.nth(i).locator("td").nth(2).inner_text() for i in range(3)] == ["6", "4", "2"]
    assert "开始开户" in rows.nth(0).inner_text() and "66.7%" in rows.nth(1).inner_text()

    # and turns the two who stopped after starting into a segment in one click
    page.click(".drop-off-button[data-step='1']")
    page.wait_for_selector(".messagelist .success")
    assert "共 2 位客户" in page.inner_text(".messagelist")
    segment = Segment.objects.get(kind=Segment.Kind.STATIC)
    assert segment.member_count == 2

    # and checks their retention: the weekly cohort of the two, who came back the week after
    page.click("#nav-sidebar a:has-text('留存分析')") if page.locator("#nav-sidebar").is_visible() else \
        page.goto(f"{live_server.url}/admin/segments/savedanalysis/retention/")
    page.select_option("#id_segment", segment.slug)
    page.click("#analyse")
    page.wait_for_selector("#analysis-chart canvas")
    table = page.inner_text("#analysis-table")
    assert "同期群" in table and "第 1 周" in table
    sizes = [int(text) for text in page.locator("#analysis-table tbody tr td:nth-child(2)").all_inner_texts()]
    assert sum(sizes) == 2
    assert "100.0% (2)" in table
