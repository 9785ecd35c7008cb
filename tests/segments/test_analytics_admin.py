"""The behaviour analysis pages and the dashboard: who may see them, what they show,
their CSV downloads (formula-safe), saving and reopening, and results into segments."""
import datetime
import json
import sys
from collections import Counter

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from profiles.metrics import metrics_recompute
from profiles.models import Event
from segments.models import SavedAnalysis, Segment
from tests.factories import EventFactory, ProfileFactory, order

pytestmark = pytest.mark.django_db
FUNNEL = {"run": "1", "step_1": "account_open_start", "step_2": "account_open_submit", "step_3": "account_open_complete",
          "window_days": "7", "days": "30"}


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()


def staff_in(django_user_model, role, username="member"):
    user = django_user_model.objects.create_user(username=username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def openings():
    """Five customers start opening an account, three submit, one completes; one of the
    starters lives in a city whose name would run as a spreadsheet formula."""
    now = timezone.now()
    cities = ["上海", "上海", "北京", "=HYPERLINK(\"http://x\")", "广州"]
    for i, city in enumerate(cities):
        profile = ProfileFactory(city=city)
        start = now - datetime.timedelta(days=10, hours=i)
        EventFactory(profile=profile, name="account_open_start", occurred_at=start)
        if i < 3:
            EventFactory(profile=profile, name="account_open_submit", occurred_at=start + datetime.timedelta(hours=2))
        if i < 1:
            EventFactory(profile=profile, name="account_open_complete", occurred_at=start + datetime.timedelta(days=1))
            order(profile, days_ago=5, amount="999")
    metrics_recompute()


@pytest.mark.parametrize("role", ["营销 marketer", "分析师 analyst"])
def test_marketers_and_analysts_see_the_funnel_and_the_dashboard(client, django_user_model, openings, role):
    client.force_login(staff_in(django_user_model, role))
    response = client.get(reverse("admin:segments_savedanalysis_funnel"), FUNNEL)
    assert response.status_code == 200
    assert [s.count for s in response.context["result"].steps] == [5, 3, 1]
    assert client.get(reverse("admin:index")).context["dashboard"]["customers"] == 5


def test_staff_without_the_permission_are_refused(client, django_user_model, openings):
    client.force_login(django_user_model.objects.create_user(username="plain", password="pw", is_staff=True))
    for kind in ("funnel", "retention", "paths", "lifecycle", "rfm"):
        assert client.get(reverse(f"admin:segments_savedanalysis_{kind}"), {"run": "1"}).status_code == 403


@pytest.mark.parametrize("kind, query", [
    ("funnel", {**FUNNEL, "breakdown": "city"}),
    ("retention", {"run": "1", "period": "week", "periods": "8", "cohort": "first_seen"}),
    ("paths", {"run": "1", "event": "account_open_start", "direction": "after", "steps": "3", "within_days": "7",
               "days": "30"}),
    ("lifecycle", {"run": "1", "weeks": "8"}),
    ("rfm", {"run": "1"}),
])
def test_each_page_draws_its_chart_in_bounded_queries_and_downloads_it_formula_safe(
        admin_client, openings, django_assert_max_num_queries, kind, query):
    with django_assert_max_num_queries(20):
        response = admin_client.get(reverse(f"admin:segments_savedanalysis_{kind}"), query)
    assert response.status_code == 200 and response.context["chart"]["kind"] == kind
    assert b'id="analysis-chart"' in response.content and b"echarts-5.6.0.min.js" in response.content
    download = admin_client.get(reverse(f"admin:segments_savedanalysis_{kind}"), {**query, "format": "csv"})
    assert download["Content-Type"].startswith("text/csv")
    assert download.content.decode("utf-8-sig").count("\n") >= 2


def test_the_paths_chart_shows_where_customers_stop(admin_client, openings):
    response = admin_client.get(reverse("admin:segments_savedanalysis_paths"), {
        "run": "1", "event": "account_open_start", "direction": "after", "steps": "3", "within_days": "7", "days": "30"})
    chart, customers = response.context["chart"], response.context["result"].customers
    grey = [n["name"] for n in chart["nodes"] if n.get("itemStyle")]
    assert grey and all(name.endswith("·没有后续事件") for name in grey)
    into, out_of = Counter(), Counter()
    for link in chart["links"]:
        into[link["target"]] += link["value"]
        out_of[link["source"]] += link["value"]
    assert out_of["0·开始开户"] == customers  # everyone who started goes on or stops
    assert all(out_of[node] == n for node, n in into.items() if node in out_of)
    assert any(row[2] == "没有后续事件" for row in response.context["table"][1:])


def test_estimated_paths_say_so_with_their_margins_and_link_to_the_exact_count(admin_client, monkeypatch):
    """After a frequent event the page answers from a fixed sample of one customer in
    ten, says so with each count's margin, and links to the exact count."""
    monkeypatch.setattr(sys.modules["segments.analytics.paths"], "EXACT_BELOW", 0)  # the package exports the function of that name
    now = timezone.now()
    for _i in range(30):
        profile = ProfileFactory()
        EventFactory(profile=profile, name="account_open_start", occurred_at=now - datetime.timedelta(days=3))
        EventFactory(profile=profile, name="account_open_submit", occurred_at=now - datetime.timedelta(days=2))
    query = {"run": "1", "event": "account_open_start", "direction": "after", "steps": "2", "within_days": "7",
             "days": "30"}
    response = admin_client.get(reverse("admin:segments_savedanalysis_paths"), query)
    page = response.content.decode()
    assert response.context["result"].sample_every == 10
    assert "估算值：基于固定的 10 分之一客户样本" in page and 'id="paths-exact"' in page
    header, *rows = response.context["table"]
    assert header[3:] == ["客户数（估算）", "±（95%）"] and all(row[4] == round(1.96 * (row[3] * 9) ** 0.5) for row in rows)

    exact = admin_client.get(reverse("admin:segments_savedanalysis_paths") + response.context["exact_url"])
    assert exact.context["result"].sample_every == 1 and exact.context["result"].customers == 30
    assert 'id="paths-sampled"' not in exact.content.decode() and len(exact.context["table"][0]) == 4


def test_a_city_that_looks_like_a_formula_is_escaped_in_the_breakdown_csv(admin_client, openings):
    download = admin_client.get(reverse("admin:segments_savedanalysis_funnel"),
                                {**FUNNEL, "breakdown": "city", "format": "csv", "part": "breakdown"})
    text = download.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_a_bad_request_shows_the_problem_instead_of_failing(admin_client, openings):
    response = admin_client.get(reverse("admin:segments_savedanalysis_funnel"),
                                {"run": "1", "step_1": "account_open_start", "window_days": "7", "days": "30"})
    assert response.status_code == 200 and response.context["result"] is None
    assert b"analysis-errors" in response.content


def test_drop_outs_after_a_step_become_a_static_segment_in_one_click(client, django_user_model, openings):
    client.force_login(staff_in(django_user_model, "营销 marketer"))
    page = client.get(reverse("admin:segments_savedanalysis_funnel"), FUNNEL)
    response = client.post(reverse("admin:segments_savedanalysis_drop_off"),
                           {"parameters": page.context["parameters_json"], "step": "2"})
    segment = Segment.objects.get()
    assert response.status_code == 302 and response.url == reverse("admin:segments_segment_change", args=[segment.pk])
    assert segment.kind == Segment.Kind.STATIC and segment.member_count == 2


def test_analysts_cannot_make_segments_from_results(client, django_user_model, openings):
    user = staff_in(django_user_model, "分析师 analyst")
    user.groups.first().permissions.remove(*user.groups.first().permissions.filter(codename="add_segment"))
    client.force_login(user)
    response = client.post(reverse("admin:segments_savedanalysis_drop_off"),
                           {"parameters": json.dumps({"steps": [{"event": "order"}, {"event": "payment"}]}), "step": "1"})
    assert response.status_code == 403 and not Segment.objects.exists()


def test_an_rfm_cell_and_a_group_open_as_dynamic_segments(admin_client, openings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:segments_savedanalysis_rfm_segment"), {"cell": "5,1"})
        admin_client.post(reverse("admin:segments_savedanalysis_rfm_segment"), {"group": "hibernating"})
    cell, group = Segment.objects.order_by("pk")
    assert cell.kind == Segment.Kind.DYNAMIC and cell.member_count == 1  # the one customer with an order 5 days ago
    assert group.member_count == 0 and "any" in group.definition


def test_an_analysis_is_saved_with_a_name_and_reopens_on_fresh_data(admin_client, openings):
    page = admin_client.get(reverse("admin:segments_savedanalysis_funnel"), FUNNEL)
    response = admin_client.post(reverse("admin:segments_savedanalysis_funnel_save"),
                                 {"name": "开户漏斗", "parameters": page.context["save_form"]["parameters"].value()})
    saved = SavedAnalysis.objects.get()
    assert saved.kind == "funnel" and saved.parameters["days"] == 30 and saved.owner.username == "admin"
    assert response.url.endswith(f"?saved={saved.pk}")

    profile = ProfileFactory()  # a new starter arrives after saving
    EventFactory(profile=profile, name="account_open_start", occurred_at=timezone.now() - datetime.timedelta(hours=1))
    reopened = admin_client.get(reverse("admin:segments_savedanalysis_open", args=[saved.pk]), follow=True)
    assert [s.count for s in reopened.context["result"].steps] == [6, 3, 1]
    assert reopened.context["form"]["step_1"].value() == "account_open_start"


@pytest.mark.parametrize("parameters", ["", "[]", "null", "not json", '{"days": 1e400, "steps": [{"event": "order"}, {"event": "payment"}]}'])
def test_unreadable_parameters_posted_back_are_refused_with_a_message(admin_client, openings, parameters):
    saving = admin_client.post(reverse("admin:segments_savedanalysis_funnel_save"), {"name": "漏斗", "parameters": parameters})
    dropping = admin_client.post(reverse("admin:segments_savedanalysis_drop_off"), {"parameters": parameters, "step": "1"})
    for response in (saving, dropping):
        assert response.status_code == 302 and response.url == reverse("admin:segments_savedanalysis_funnel")
    assert not SavedAnalysis.objects.exists() and not Segment.objects.exists()


def test_saved_parameters_are_plain_json(admin_client):
    """RFM ignores an unknown setting, but an infinite one could not be stored."""
    response = admin_client.post(reverse("admin:segments_savedanalysis_rfm_save"), {"name": "RFM", "parameters": '{"weeks": 1e400}'})
    assert response.url == reverse("admin:segments_savedanalysis_rfm") and not SavedAnalysis.objects.exists()


def test_a_drop_off_step_that_is_not_a_number_gets_the_funnels_range(admin_client, openings):
    response = admin_client.post(reverse("admin:segments_savedanalysis_drop_off"), follow=True, data={
        "parameters": json.dumps({"steps": [{"event": "order"}, {"event": "payment"}]}), "step": "x"})
    assert "只能选择第 1 到第 1 步之后流失的客户。" in response.text
    assert not Segment.objects.exists()


def test_a_saved_analysis_that_is_not_a_number_is_not_found(admin_client):
    assert admin_client.get(reverse("admin:segments_savedanalysis_funnel"), {"saved": "x"}).status_code == 404


def test_the_dashboard_links_each_number_to_its_list_and_is_cached(admin_client, openings, django_assert_max_num_queries):
    response = admin_client.get(reverse("admin:index"))
    dashboard = response.context["dashboard"]
    assert (dashboard["customers"], dashboard["new_this_week"], dashboard["active_30_days"]) == (5, 5, 5)
    assert {p["code"] for p in dashboard["consent"]} >= {"email_marketing", "sms_marketing"}
    assert sum(dashboard["chart"]["events"]) == Event.objects.count()
    for url in (dashboard["customers_url"], dashboard["new_url"], dashboard["active_url"], dashboard["lifecycle"][1][2]):
        assert admin_client.get(url).status_code == 200, url
    ProfileFactory()
    with django_assert_max_num_queries(12):
        cached = admin_client.get(reverse("admin:index"))
    assert cached.context["dashboard"]["customers"] == 5  # a few minutes old, and it says so
    assert b"dashboard-age" in cached.content
    assert admin_client.get(reverse("admin:index"), {"refresh": "1"}).context["dashboard"]["customers"] == 6
    for chart in ("events", "lifecycle", "consent", "segments"):
        assert admin_client.get(reverse("admin:segments_savedanalysis_dashboard_csv", args=[chart])).status_code == 200
    assert admin_client.get(reverse("admin:segments_savedanalysis_dashboard_csv", args=["imports"])).status_code == 404


def test_the_app_list_has_a_behaviour_analysis_section(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert any(app["app_label"] == "analytics" and len(app["models"]) == 5 for app in response.context["app_list"])


def test_a_drop_off_segment_is_named_after_its_funnel_and_shown_as_a_list(admin_client, openings):
    # given the account-opening funnel; when staff save who submitted but did not complete
    page = admin_client.get(reverse("admin:segments_savedanalysis_funnel"), FUNNEL)
    admin_client.post(reverse("admin:segments_savedanalysis_drop_off"),
                      {"parameters": page.context["parameters_json"], "step": "2"})
    # then the segment says what it holds, from the funnel's steps
    segment = Segment.objects.get()
    assert segment.name == (f"完成“提交开户”后未“完成开户”（漏斗 开始开户 → 提交开户 → 完成开户，"
                            f"{timezone.localtime():%m-%d}）")
    # and its page shows the list, without a builder, a schedule or calculations
    html = admin_client.get(reverse("admin:segments_segment_change", args=[segment.pk])).text
    assert 'id="static-members"' in html and "固定名单，共 2 位客户" in html
    for absent in ('name="definition"', 'name="refresh_every_minutes"', "condition-builder", 'name="kind"'):
        assert absent not in html
    # and staff can still rename it
    response = admin_client.post(reverse("admin:segments_segment_change", args=[segment.pk]), {
        "name": "开户未完成回访", "slug": segment.slug, "description": "",
        "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "开户未完成回访" and segment.kind == Segment.Kind.STATIC and segment.member_count == 2


@pytest.mark.parametrize("chart, permission", [("events", "view_savedanalysis"), ("lifecycle", "view_profile"),
                                               ("consent", "view_profile"), ("segments", "view_segment")])
def test_each_dashboard_csv_needs_the_permission_for_its_data(client, django_user_model, chart, permission):
    from django.contrib.auth.models import Permission

    # given staff with no permission on customers, segments or analyses (e.g. a partner manager)
    user = django_user_model.objects.create_user("bare", password="pw-for-tests", is_staff=True)
    client.force_login(user)
    url = reverse("admin:segments_savedanalysis_dashboard_csv", args=[chart])
    # when they download a dashboard CSV, then it is refused
    assert client.get(url).status_code == 403
    # and once given the permission for that data, it downloads
    user.user_permissions.add(Permission.objects.get(codename=permission))
    client.force_login(django_user_model.objects.get(pk=user.pk))
    assert client.get(url).status_code == 200


def test_the_dashboard_is_shown_to_staff_who_may_view_customers_only(client, django_user_model):
    user = django_user_model.objects.create_user("bare", password="pw-for-tests", is_staff=True)
    client.force_login(user)
    assert "dashboard" not in client.get(reverse("admin:index")).context


def test_each_lifecycle_stage_has_the_same_colour_on_the_dashboard_and_the_lifecycle_chart(admin_client, openings):
    # given customers in several stages; when staff open the dashboard and the lifecycle chart
    for stage in ("dormant", "churned"):
        ProfileFactory(lifecycle_stage=stage)
    pie = admin_client.get(reverse("admin:index")).context["dashboard"]["chart"]["lifecycle"]
    bars = admin_client.get(reverse("admin:segments_savedanalysis_lifecycle"), {"run": "1", "weeks": "4"}).context["chart"]
    # then every stage is drawn in one colour, whichever stages happen to have customers
    pie_colours = {item["name"]: item["itemStyle"]["color"] for item in pie}
    bar_colours = {series["name"]: series["color"] for series in bars["series"]}
    assert len(pie_colours) >= 2 and all(colour.startswith("#") for colour in bar_colours.values())
    assert all(bar_colours[name] == colour for name, colour in pie_colours.items())
    assert len(set(bar_colours.values())) == len(bar_colours)
