"""The tracking sources' admin (profiles/admin/sources.py): a source is made with its write
key shown once, the key rotated, the source's page shows the traffic (the debugger's masked
messages, the rejected ones, counts per hour); event names sent first by an SDK are
reviewed; the log is trimmed, erased with the person, and survives merges."""
import datetime
import json
import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from consent.requests import data_request_create, profile_erase
from profiles.models import (
    CollectHourlyCount,
    CollectLog,
    CollectSource,
    EventDefinition,
    Identity,
    Profile,
    ProfileMerge,
    ProfileStatus,
)
from profiles.services.collect import Message, collect_ingest
from profiles.services.merge import profiles_unmerge
from profiles.services.sources import source_create, source_for_key
from profiles.tasks import collect_housekeeping
from tests.consent.test_erasure import personal_data_left
from tests.factories import IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db
KEY = re.compile(r'id="write-key"[^>]*>([A-Za-z0-9]{8}\.[A-Za-z0-9]+)<')


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()  # source_for_key caches sources by key prefix


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def source():
    return source_create(name="官网商城", code="shop-web", allowed_origins=["https://shop.example.cn"])[0]


def msg(type_="track", event="product_view", **fields) -> Message:
    fields.setdefault("message_id", str(uuid.uuid4()))
    fields.setdefault("occurred_at", timezone.now() - datetime.timedelta(minutes=1))
    fields.setdefault("raw", {"type": type_, "event": event, "userId": fields.get("user_id", ""),
                              "anonymousId": fields.get("anonymous_id", ""),
                              "properties": fields.get("properties", {}), "traits": fields.get("traits", {})})
    return Message(protocol="segment", type=type_, event=event, library="analytics-python 2.3.3", **fields)


def add_form(**fields):
    return {"name": "小程序商城", "code": "", "kind": "mini_program", "allowed_origins": "", "user_id_kind": "crm_id",
            "consent_purpose": "", "is_active": "on"} | fields


def shown_key(response) -> str:
    found = KEY.search(response.content.decode())
    assert found, "the key page shows the key"
    return found.group(1)


# --- making a source, its key ---------------------------------------------------------------

def test_adding_a_source_shows_its_key_once_and_the_key_works(admin_client, settings):
    settings.CDP_PUBLIC_URL = "https://cdp.brand.cn"
    response = admin_client.post(reverse("admin:profiles_collectsource_add"), add_form(
        allowed_origins="https://Shop.Example.cn/\nhttp://localhost:8080\n\nhttps://shop.example.cn",
        consent_purpose="analytics"))

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    key = shown_key(response)
    source = CollectSource.objects.get()
    assert source.code == "xiao-cheng-xu-shang-cheng"  # made from the name
    assert source_for_key(key) == source
    assert source.allowed_origins == ["https://shop.example.cn", "http://localhost:8080"]
    assert source.consent_purpose == "analytics" and source.kind == "mini_program"
    assert key not in source.key_hash
    page = response.content.decode()
    assert 'apiHost: &quot;cdp.brand.cn/collect/v1&quot;, protocol: &quot;https&quot;' in page
    assert "https://cdp.brand.cn/collect/sa?project=default&amp;token=" + key in page
    assert 'analytics.host = &quot;https://cdp.brand.cn/collect&quot;' in page
    # analytics-node: new URL(path, host) would drop a prefix in the host
    assert "host: &quot;https://cdp.brand.cn&quot;, path: &quot;/collect/v1/batch&quot;" in page
    # Never again: the source's page and list show the prefix only.
    for url in (reverse("admin:profiles_collectsource_change", args=[source.pk]),
                reverse("admin:profiles_collectsource_changelist")):
        again = admin_client.get(url).content.decode()
        assert key not in again and source.key_prefix in again


def test_the_code_is_made_from_the_name_and_kept_unique(admin_client):
    source_create(name="Shop Web", code="shop-web")
    admin_client.post(reverse("admin:profiles_collectsource_add"), add_form(name="Shop Web"))
    assert sorted(CollectSource.objects.values_list("code", flat=True)) == ["shop-web", "shop-web-2"]


@pytest.mark.parametrize("origin", ["https://shop.example.cn/cart", "shop.example.cn", "ftp://shop.example.cn",
                                    "https://shop.example.cn?x=1", "https://*.example.cn", "https://a:b@shop.cn",
                                    "https://shop.example.cn:99999"])
def test_an_origin_that_is_not_scheme_host_and_port_is_refused(admin_client, origin):
    response = admin_client.post(reverse("admin:profiles_collectsource_add"), add_form(allowed_origins=origin))

    assert response.status_code == 200 and not CollectSource.objects.exists()
    errors = response.context["adminform"].form.errors["allowed_origins"]
    assert "不是一个来源" in errors[0] or "is not an origin" in errors[0]


def test_the_consent_purpose_is_a_choice_of_the_purposes(admin_client):
    response = admin_client.get(reverse("admin:profiles_collectsource_add"))
    choices = dict(response.context["adminform"].form.fields["consent_purpose"].choices)
    assert "analytics" in choices and "" in choices
    bad = admin_client.post(reverse("admin:profiles_collectsource_add"), add_form(consent_purpose="no-such"))
    assert "consent_purpose" in bad.context["adminform"].form.errors


def test_the_code_of_a_saved_source_cannot_change(admin_client, source):
    url = reverse("admin:profiles_collectsource_change", args=[source.pk])
    response = admin_client.post(url, add_form(name="官网", code="other", kind="web",
                                               allowed_origins="https://shop.example.cn"))
    assert response.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.code) == ("官网", "shop-web")


def test_rotating_shows_a_new_key_once_and_the_old_one_stops_working(admin_client):
    source, old_key = source_create(name="官网商城", code="shop-web")
    assert source_for_key(old_key) == source  # cached now
    url = reverse("admin:profiles_collectsource_rotate", args=[source.pk])

    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and source.key_prefix in confirm.content.decode()
    assert source_for_key(old_key) == source  # a GET changes nothing

    response = admin_client.post(url)

    new_key = shown_key(response)
    assert new_key != old_key
    assert source_for_key(old_key) is None
    assert source_for_key(new_key).pk == source.pk
    assert "token=" + new_key in response.content.decode()


def test_an_inactive_sources_key_stops_working(admin_client):
    source, key = source_create(name="官网商城", code="shop-web")
    admin_client.post(reverse("admin:profiles_collectsource_change", args=[source.pk]),
                      add_form(name="官网商城", kind="web", is_active=""))
    cache.clear()
    assert source_for_key(key) is None


def test_sources_are_not_deleted(admin_client, source):
    response = admin_client.get(reverse("admin:profiles_collectsource_delete", args=[source.pk]))
    assert response.status_code == 403


# --- permissions --------------------------------------------------------------------------------

@pytest.fixture
def viewer(client, django_user_model):
    user = django_user_model.objects.create_user(username="viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_collectsource"))
    client.force_login(user)
    return client


def test_staff_who_may_only_view_see_the_page_but_cannot_rotate(viewer, source):
    page = viewer.get(reverse("admin:profiles_collectsource_change", args=[source.pk]))
    assert page.status_code == 200 and "rotate-key" not in page.content.decode()
    assert viewer.get(reverse("admin:profiles_collectsource_debugger", args=[source.pk])).status_code == 200
    assert viewer.post(reverse("admin:profiles_collectsource_rotate", args=[source.pk])).status_code == 403
    assert viewer.get(reverse("admin:profiles_collectsource_add")).status_code == 403


def test_staff_without_the_models_permissions_see_nothing(client, django_user_model, source):
    user = django_user_model.objects.create_user(username="other", password="pw", is_staff=True)
    client.force_login(user)
    for name in ("change", "debugger", "rotate"):
        assert client.get(reverse(f"admin:profiles_collectsource_{name}", args=[source.pk])).status_code == 403
    client.logout()
    response = client.get(reverse("admin:profiles_collectsource_debugger", args=[source.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- the source's page ---------------------------------------------------------------------------

def test_the_debugger_shows_masked_messages_never_the_raw_phone(admin_client, source):
    collect_ingest(source=source, messages=[
        msg("identify", event="", user_id="U100", traits={"phone": "13800138000", "email": "wang.fang@example.com",
                                                          "name": "王芳芳芳"}),
        msg(event="add_to_cart", user_id="U100", properties={"mobile": "+86 138 0013 8000", "sku": "SKU-1"}),
    ])

    page = admin_client.get(reverse("admin:profiles_collectsource_change", args=[source.pk])).content.decode()
    answer = admin_client.get(reverse("admin:profiles_collectsource_debugger", args=[source.pk]),
                              {"format": "rows"}).json()
    html = admin_client.get(reverse("admin:profiles_collectsource_debugger", args=[source.pk])).json()

    for text in (page, json.dumps(answer, ensure_ascii=False), html["messages_html"]):
        assert "13800138000" not in text and "138 0013 8000" not in text
        assert "wang.fang@example.com" not in text and "王芳芳芳" not in text
        assert "138****8000" in text and "w***@example.com" in text and "SKU-1" in text
    assert [(m["type"], m["name"], m["outcome"]) for m in answer["messages"]] == [
        ("track", "add_to_cart", "accepted"), ("identify", "", "accepted")]
    customer = Identity.objects.get(kind_id="crm_id", value="U100").profile_id
    assert {m["customer_url"] for m in answer["messages"]} == {
        reverse("admin:profiles_profile_change", args=[customer])}
    assert answer["messages"][0]["library"] == "analytics-python 2.3.3"
    assert answer["totals"]["accepted"] == 2 and answer["rejected"] == []


def test_rejected_messages_are_listed_with_the_reason(admin_client, source):
    bad = msg(user_id="U1")
    bad.error = ("too_large", "The event is larger than 32 KB.")
    collect_ingest(source=source, messages=[bad, msg(user_id="U1"), msg(user_id="", anonymous_id="")])

    answer = admin_client.get(reverse("admin:profiles_collectsource_debugger", args=[source.pk]),
                              {"format": "rows"}).json()

    reasons = sorted(row["reason"] for row in answer["rejected"])
    assert len(reasons) == 2 and reasons[1] == "too_large: The event is larger than 32 KB."
    assert reasons[0].startswith("no_identity")
    assert answer["totals"] == {"accepted": 1, "duplicate": 0, "dropped": 0, "rejected": 2}
    page = admin_client.get(reverse("admin:profiles_collectsource_change", args=[source.pk]))
    assert "The event is larger than 32 KB." in page.content.decode()


def test_the_page_counts_per_hour_for_two_days(admin_client, source):
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    CollectHourlyCount.objects.create(source=source, hour=hour, accepted=7, rejected=1)
    CollectHourlyCount.objects.create(source=source, hour=hour - datetime.timedelta(hours=5), accepted=3, duplicate=2)
    CollectHourlyCount.objects.create(source=source, hour=hour - datetime.timedelta(hours=60), accepted=100)

    response = admin_client.get(reverse("admin:profiles_collectsource_change", args=[source.pk]))

    chart = response.context["chart"]
    assert len(chart["hours"]) == 48
    series = {s["code"]: s["data"] for s in chart["series"]}
    assert series["accepted"][-1] == 7 and series["accepted"][-6] == 3 and sum(series["accepted"]) == 10
    assert series["duplicate"][-6] == 2 and series["rejected"][-1] == 1 and sum(series["dropped"]) == 0
    assert response.context["totals"]["accepted"] == 110
    assert 'id="traffic-data"' in response.content.decode()


def test_the_page_links_to_the_events_of_the_source(admin_client, source):
    collect_ingest(source=source, messages=[msg(user_id="U1")])
    other = source_create(name="App", code="app")[0]
    collect_ingest(source=other, messages=[msg(user_id="U1")])

    response = admin_client.get(reverse("admin:profiles_collectsource_change", args=[source.pk]))
    events = admin_client.get(response.context["events_url"])

    assert events.status_code == 200
    assert [e.source for e in events.context["cl"].result_list] == ["sdk-shop-web"]


def test_the_source_pages_run_a_bounded_number_of_queries(admin_client, source, django_assert_max_num_queries):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    CollectHourlyCount.objects.bulk_create([CollectHourlyCount(source=source, hour=hour - datetime.timedelta(hours=n),
                                                               accepted=n) for n in range(60)])
    for _ in range(3):
        bad = msg(user_id="U1")
        bad.error = ("invalid", "bad")
        collect_ingest(source=source, messages=[msg(user_id=f"U{n}") for n in range(30)] + [bad])
    assert CollectLog.objects.count() > 50

    with django_assert_max_num_queries(11):  # 10 measured: session, user, source twice, 2 logs, 2 counts, 2 choices
        page = admin_client.get(reverse("admin:profiles_collectsource_change", args=[source.pk]))
    with django_assert_max_num_queries(7):
        answer = admin_client.get(reverse("admin:profiles_collectsource_debugger", args=[source.pk]))
    with django_assert_max_num_queries(6):
        listing = admin_client.get(reverse("admin:profiles_collectsource_changelist"))

    assert page.status_code == answer.status_code == listing.status_code == 200
    assert listing.context["cl"].result_list[0].last_received_at is not None
    assert len(page.context["debugger"]["messages"]) == 50 and len(page.context["debugger"]["rejected"]) == 3


def test_the_source_page_is_in_chinese(admin_client, source):
    collect_ingest(source=source, messages=[msg(user_id="U1")])
    page = admin_client.get(reverse("admin:profiles_collectsource_change", args=[source.pk]),
                            HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for text in ("实时调试", "被拒绝的消息", "轮换密钥", "此数据源的事件", "已接受"):
        assert text in page, text


# --- event names waiting for review ----------------------------------------------------------

def test_event_names_sent_first_by_an_sdk_wait_for_review_until_marked(admin_client, source):
    collect_ingest(source=source, messages=[msg(event="Coupon Claimed", user_id="U1"), msg(event="领取优惠券",
                                                                                         user_id="U1")])
    url = reverse("admin:profiles_eventdefinition_changelist")

    waiting = admin_client.get(url, {"review_pending__exact": "1"})
    names = sorted(d.name for d in waiting.context["cl"].result_list)
    assert names == ["coupon_claimed", "ling_qu_you_hui_quan"]

    pks = [d.pk for d in EventDefinition.objects.filter(name="coupon_claimed")]
    admin_client.post(url, {"action": "mark_reviewed", "_selected_action": pks})

    assert list(EventDefinition.objects.filter(review_pending=True).values_list("name", flat=True)) == [
        "ling_qu_you_hui_quan"]


# --- housekeeping, erasure and merges -------------------------------------------------------------

def test_housekeeping_trims_the_log_and_drops_counts_older_than_90_days(source):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    CollectHourlyCount.objects.create(source=source, hour=hour - datetime.timedelta(days=91), accepted=1)
    CollectHourlyCount.objects.create(source=source, hour=hour - datetime.timedelta(days=89), accepted=2)
    for _ in range(3):
        collect_ingest(source=source, messages=[msg(user_id=f"U{n}") for n in range(40)])
    assert CollectLog.objects.count() == 120

    result = collect_housekeeping()

    assert result == {"log_rows": 70, "hourly_counts": 1}
    assert CollectLog.objects.count() == 50
    assert CollectHourlyCount.objects.filter(accepted=1).count() == 0
    assert CollectHourlyCount.objects.filter(accepted=2).count() == 1


def test_erasure_deletes_the_persons_collected_messages(source, django_user_model):
    person = ProfileFactory(name="欧阳娜娜", phone="+8613912345678")
    IdentityFactory(profile=person, kind_id="crm_id", value="CRM-NANA-7")
    someone = ProfileFactory()
    IdentityFactory(profile=someone, kind_id="crm_id", value="CRM-OTHER-1")
    # As a visitor first (merged into the person on signing in), then known.
    collect_ingest(source=source, messages=[msg(anonymous_id="anon-nana", properties={"receiver": "欧阳娜娜"})])
    collect_ingest(source=source, messages=[
        msg("identify", event="", anonymous_id="anon-nana", user_id="CRM-NANA-7", traits={"receiver": "欧阳娜娜"}),
        msg(user_id="CRM-OTHER-1", properties={"receiver": "王芳"})])
    assert {table for table, _c, _n in personal_data_left({"欧阳娜娜"})} >= {"profiles_collectlog"}
    eraser = django_user_model.objects.create_user(username="privacy", is_superuser=True, is_staff=True)
    request = data_request_create(kind="erasure", requester="x", profile=person, actor=Actor.system("t"))

    profile_erase(profile=person, request=request, actor=Actor.staff(eraser))

    assert personal_data_left({"欧阳娜娜", "CRM-NANA-7", "anon-nana"}) == set()
    assert list(CollectLog.objects.values_list("profile_id", flat=True)) == [someone.pk]


def test_merge_and_unmerge_leave_the_log_as_it_was(source):
    customer = ProfileFactory()
    IdentityFactory(profile=customer, kind_id="crm_id", value="U100")
    collect_ingest(source=source, messages=[msg(anonymous_id="anon-1")])
    visitor = Identity.objects.get(value="anon-1").profile_id
    collect_ingest(source=source, messages=[msg("identify", event="", anonymous_id="anon-1", user_id="U100")])
    assert Profile.objects.get(pk=visitor).status == ProfileStatus.MERGED
    before = sorted(CollectLog.objects.values_list("pk", "profile_id"))

    profiles_unmerge(merge=ProfileMerge.objects.get(merged_id=visitor), actor=Actor.system("t"))
    collect_ingest(source=source, messages=[msg(anonymous_id="anon-1")])

    assert sorted(CollectLog.objects.values_list("pk", "profile_id"))[:2] == before
    assert Profile.objects.get(pk=visitor).status == ProfileStatus.ACTIVE
    assert CollectLog.objects.count() == 3
