"""The staff face of campaigns: destinations with write-only secrets and a connection
test, the campaign form in steps with its checks, the campaign page (funnel, preview,
test send, launch and the other buttons, progress, dead letters, results), coupon
uploads, and who may do what."""
import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.urls import reverse

from campaigns.models import Campaign, Coupon, CouponPool, Delivery, Destination
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain
from cdp.models import AuditLog
from cdp.roles import ROLES
from consent.models import Purpose
from tests.factories import ProfileFactory

from .conftest import campaign_for, consenting, segment_of

pytestmark = pytest.mark.django_db
MARKETER, ANALYST, PRIVACY, ADMIN = ROLES


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.CAMPAIGN_QUIET_HOURS = {}  # quiet hours have their own tests


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def staff_with(django_user_model, role, username="staff", **fields):
    user = django_user_model.objects.create_user(username=username, password="x", is_staff=True, **fields)
    user.groups.add(Group.objects.get(name=role))
    return user


def text(response) -> str:
    return response.content.decode()


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# -- destinations -------------------------------------------------------------------------

def test_the_secret_is_write_only_kept_when_left_blank_and_never_in_the_history(admin_client, receiver):
    # given a webhook destination created through the form with its secret
    add = reverse("admin:campaigns_destination_add")
    form = {"name": "合作方推送", "kind": "webhook", "is_active": "on", "config_webhook_url": receiver.url,
            "new_secret": "s3cr3t-value-9", "rate_per_second": 100, "batch_size": 100, "max_attempts": 5,
            "cost_per_message": "0.05", "config_audience_file_storage": "folder"}
    response = admin_client.post(add, form)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    destination = Destination.objects.get(name="合作方推送")
    assert destination.secret == "s3cr3t-value-9" and destination.config == {"url": receiver.url}

    # when its page is read and it is saved again with the secret left blank
    change = reverse("admin:campaigns_destination_change", args=[destination.pk])
    page = text(admin_client.get(change))
    response = admin_client.post(change, {**form, "name": "合作方推送 2", "new_secret": ""})

    # then the secret is never rendered, is kept, and the history names no value
    assert "s3cr3t-value-9" not in page and "已保存密钥" in page
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.secret == "s3cr3t-value-9" and destination.name == "合作方推送 2"
    assert not any("s3cr3t" in entry.change_message for entry in LogEntry.objects.all())


def test_the_connection_test_calls_the_destination_and_records_what_it_said(admin_client, webhook, receiver):
    url = reverse("admin:campaigns_destination_test", args=[webhook.pk])
    # when the partner answers, then the result is recorded in Chinese
    response = admin_client.post(url, follow=True)
    webhook.refresh_from_db()
    assert webhook.last_test_at is not None and webhook.last_test_result.startswith("成功")
    assert "200" in webhook.last_test_result and any("200" in m for m in page_messages(response))
    assert json.loads(receiver.requests[-1]["body"])["test"] is True
    # and when it refuses, the failure and its reason are recorded
    receiver.answer(401, body={"error": "bad signature"})
    admin_client.post(url)
    webhook.refresh_from_db()
    assert webhook.last_test_result.startswith("失败") and "401" in webhook.last_test_result


# -- the campaign form --------------------------------------------------------------------

def campaign_form(segment, destination, **overrides):
    purpose = Purpose.objects.get(code="sms_marketing")
    data = {"name": "春季上新", "purpose": purpose.pk, "destination": destination.pk, "audience_kind": "segment",
            "segment": segment.pk, "trigger_where": "[]", "trigger_within_minutes": 0, "delay_minutes": 0,
            "trigger_once_per_days": 1, "schedule": "now", "holdout_percent": 10, "cap_messages": "",
            "cap_days": "",
            "variants-TOTAL_FORMS": 1, "variants-INITIAL_FORMS": 0, "variants-MIN_NUM_FORMS": 1,
            "variants-MAX_NUM_FORMS": 4, "variants-0-label": "A", "variants-0-weight": 100,
            "variants-0-body": "{{ name }}，春季新品到店", "variants-0-sms_sign_name": "品牌"}
    data.update(overrides)
    return data


def test_a_template_with_an_unknown_token_or_a_syntax_error_is_refused_with_its_line(admin_client, webhook):
    segment = segment_of(consenting(n=1))
    add = reverse("admin:campaigns_campaign_add")
    # when the message uses {{ phone }} on its second line
    response = admin_client.post(add, campaign_form(segment, webhook, **{"variants-0-body": "您好\n{{ phone }}"}))
    # then nothing is saved and the error names the line and the token
    assert response.status_code == 200 and not Campaign.objects.exists()
    errors = str(response.context["inline_admin_formsets"][0].formset.errors)
    assert "第 2 行" in errors and "phone" in errors
    # and an unclosed tag is refused the same way
    response = admin_client.post(add, campaign_form(segment, webhook, **{"variants-0-body": "{% if city %}上海"}))
    assert "第 1 行" in str(response.context["inline_admin_formsets"][0].formset.errors)
    # while a good template saves, owned by whoever made it
    response = admin_client.post(add, campaign_form(segment, webhook))
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.owner.username == "operator" and campaign.variants.get().label == "A"


def test_a_cap_looser_than_the_default_needs_the_permission(client, django_user_model, webhook, settings):
    settings.CAMPAIGN_FREQUENCY_CAP = (3, 7)
    segment = segment_of(consenting(n=1))
    marketer = staff_with(django_user_model, MARKETER)
    client.force_login(marketer)
    add = reverse("admin:campaigns_campaign_add")
    # when a marketer asks for 5 per 7 days
    response = client.post(add, campaign_form(segment, webhook, cap_messages=5, cap_days=7))
    # then it is refused, naming the default
    assert response.status_code == 200 and not Campaign.objects.exists()
    assert "3" in str(response.context["adminform"].form.errors["cap_messages"])
    # but stricter is fine
    assert client.post(add, campaign_form(segment, webhook, cap_messages=1, cap_days=30)).status_code == 302


def test_variant_shares_must_add_up_to_100(admin_client, webhook):
    segment = segment_of(consenting(n=1))
    response = admin_client.post(reverse("admin:campaigns_campaign_add"), campaign_form(
        segment, webhook, **{"variants-TOTAL_FORMS": 2, "variants-0-weight": 50, "variants-1-label": "B",
                             "variants-1-weight": 30, "variants-1-body": "B 版"}))
    assert response.status_code == 200 and "80" in str(response.context["inline_admin_formsets"][0].formset.non_form_errors())


def test_a_launched_campaign_is_read_only(admin_client, webhook):
    campaign = campaign_for(segment_of(consenting(n=1)), webhook, status=Campaign.Status.SENDING)
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    response = admin_client.get(change)
    assert response.context["has_change_permission"] is False
    admin_client.post(change, {"name": "改名"})
    campaign.refresh_from_db()
    assert campaign.name == "春季促销"


# -- the campaign page ----------------------------------------------------------------------

def test_the_funnel_shows_each_step_and_links_to_the_masked_customers_it_removed(admin_client, webhook):
    # given two customers who may get the message and one without consent
    ok = consenting(n=2, phone="+8613800138001")
    no_consent = ProfileFactory(phone="+8613911112222", email="li.na@example.com", name="李娜")
    campaign = campaign_for(segment_of([*ok, no_consent]), webhook)
    # when the campaign's page is read
    response = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    rows = {row["code"]: row for row in response.context["funnel"] if row["code"]}
    # then the consent step removed one, and its link lists that customer masked
    assert response.context["funnel"][0]["count"] == 3 and rows["consent"]["removed"] == 1
    assert response.context["funnel"][-1]["count"] == 2
    link = reverse("admin:campaigns_campaign_funnel", args=[campaign.pk, "consent"])
    assert link in text(response)
    listed = text(admin_client.get(link))
    assert "李娜" in listed and "139****2222" in listed and "l***@example.com" in listed
    assert "13911112222" not in listed and "li.na@" not in listed
    assert admin_client.get(reverse("admin:campaigns_campaign_funnel", args=[campaign.pk, "nope"])).status_code == 404


def test_the_live_preview_renders_for_a_sample_customer_with_the_sms_length(client, django_user_model, webhook):
    person = consenting(n=1, name="王小明", city="上海")[0]
    campaign = campaign_for(segment_of([person]), webhook)
    marketer = staff_with(django_user_model, MARKETER)
    client.force_login(marketer)
    url = reverse("admin:campaigns_campaign_preview")
    # when a marketer (who may not see personal data) types a message
    answer = client.post(url, {"campaign": campaign.pk, "body": "{{ name }}，{{ city }}门店新品 " + "好" * 60,
                               "sms_sign_name": "品牌"}).json()
    # then it is rendered for the sample customer with the name masked, signature and opt-out counted
    assert answer["text"].startswith("【品牌】王*，上海门店新品") and answer["text"].endswith("拒收请回复R")
    assert answer["length"] == len(answer["text"]) and answer["parts"] == 2
    assert "王小明" not in json.dumps(answer, ensure_ascii=False)
    # and an unknown token is named with its line
    answer = client.post(url, {"campaign": campaign.pk, "body": "{{ phone }}"}).json()
    assert "phone" in answer["error"] and answer["error_field"] == "body"


def test_a_test_send_goes_to_my_own_number_through_the_destination_and_is_audited(admin_client, webhook, receiver):
    campaign = campaign_for(segment_of(consenting(n=1)), webhook)
    variant = campaign.variants.get()
    url = reverse("admin:campaigns_campaign_test_send", args=[campaign.pk])
    # when I send a test to my own mobile
    response = admin_client.post(url, {"variant": variant.pk, "address": "138 0013 8999"}, follow=True)
    # then the partner got one message to that number, with my name, and no delivery was written
    assert [m["address"] for m in receiver.messages] == ["+8613800138999"]
    assert receiver.messages[0]["text"].startswith("【测试】operator")
    assert not Delivery.objects.exists()
    assert AuditLog.objects.filter(action="campaign_test_sent", target=f"campaign:{campaign.pk}").count() == 1
    assert any("138****8999" in m for m in page_messages(response))
    # and the number is remembered for the next test
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert page.context["test_send_form"]["address"].value() == "+8613800138999"
    # a refused test says why
    receiver.answer(400, body={"error": "bad"})
    response = admin_client.post(url, {"variant": variant.pk, "address": "13800138999"}, follow=True)
    assert any("400" in m for m in page_messages(response))
    # and a number that is not one is refused before anything is sent
    response = admin_client.post(url, {"variant": variant.pk, "address": "abc"}, follow=True)
    assert len(receiver.requests) == 2


def test_launch_confirms_the_number_then_queues_the_run_which_the_worker_sends(
        admin_client, webhook, receiver, django_capture_on_commit_callbacks):
    people = consenting(n=3)
    campaign = campaign_for(segment_of(people), webhook)
    launch = reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
    # when the launch page is read, then it says how many messages will go
    page = admin_client.get(launch)
    assert page.context["size"] == 3 and not page.context["needs_approval"]
    # when launched, the run is queued after commit (eager in tests) and decided at once
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(launch, follow=True)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING and campaign.launched_by.username == "operator"
    assert Delivery.objects.filter(campaign=campaign).count() == 3
    assert AuditLog.objects.filter(action="campaign_launched").count() == 1
    assert any("几秒" in m or "seconds" in m for m in page_messages(response))
    # and the page then shows progress and the result section
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert page.context["progress"].counts["sent"] == 3 and page.context["results"].total.recipients == 3
    progress = admin_client.get(reverse("admin:campaigns_campaign_progress", args=[campaign.pk])).json()
    assert progress["counts"]["sent"] == 3 and progress["results"]["recipients"] == 3


def test_pause_resume_cancel_and_a_second_launch_say_what_happened(admin_client, webhook):
    campaign = campaign_for(segment_of(consenting(n=1)), webhook, status=Campaign.Status.SENDING)

    def press(name):
        return page_messages(admin_client.post(reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk]),
                                               follow=True))

    press("pause")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    press("resume")
    press("cancel")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    # an action that does not apply is refused with the service's reason, not a server error
    said = press("launch")
    assert said and campaign.get_status_display() in said[0]
    assert admin_client.get(reverse("admin:campaigns_campaign_pause", args=[campaign.pk])).status_code == 405


def test_large_launches_wait_for_another_persons_approval(client, django_user_model, webhook, settings,
                                                          django_capture_on_commit_callbacks):
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 1
    campaign = campaign_for(segment_of(consenting(n=2)), webhook)
    marketer = staff_with(django_user_model, MARKETER)
    administrator = staff_with(django_user_model, ADMIN, username="boss")
    # when a marketer launches two messages over a threshold of one
    client.force_login(marketer)
    launch = reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
    assert client.get(launch).context["needs_approval"] is True
    client.post(launch)
    campaign.refresh_from_db()
    # then it waits; the marketer cannot approve it
    assert campaign.status == Campaign.Status.AWAITING_APPROVAL
    page = text(client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])))
    assert "等待管理员审批" in page and 'id="approve"' not in page
    approve = reverse("admin:campaigns_campaign_approve", args=[campaign.pk])
    client.post(approve)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.AWAITING_APPROVAL
    # and the administrator's approval sends it
    client.force_login(administrator)
    assert 'id="approve"' in text(client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(approve)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING and campaign.approved_by == administrator
    assert Delivery.objects.filter(campaign=campaign).count() == 2


def test_dead_letters_are_listed_with_their_error_and_resent(admin_client, client, django_user_model, webhook,
                                                            receiver):
    campaign = campaign_for(segment_of(consenting(n=2)), webhook, status=Campaign.Status.SENDING)
    run_decide(campaign=campaign)
    receiver.answer(400, body={"error": "unknown partner"})
    destination_drain(destination_id=webhook.pk, budget_seconds=10)
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = admin_client.get(change)
    # then both dead letters show the destination's refusal, addresses masked (for everyone, as on the
    # members page: the customer's page has the audited reveal)
    assert page.context["dead_count"] == 2 and "unknown partner" in text(page)
    assert all("****" in row["address"] for row in page.context["dead"])
    marketer = django_user_model.objects.create_user(username="m", password="x", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETER))
    client.force_login(marketer)
    dead = client.get(change).context["dead"]
    assert len(dead) == 2 and all("****" in row["address"] for row in dead)
    # when re-sent, they are queued again and audited
    admin_client.post(reverse("admin:campaigns_campaign_resend", args=[campaign.pk]))
    assert Delivery.objects.filter(campaign=campaign, status=Delivery.Status.QUEUED).count() == 2
    assert AuditLog.objects.filter(action="campaign_resent").exists()


# -- coupon pools -----------------------------------------------------------------------------

def test_coupon_codes_upload_from_gb18030_or_a_code_column_deduplicated(admin_client):
    pool = CouponPool.objects.create(name="满100减20")
    Coupon.objects.create(pool=pool, code="OLD1")
    url = reverse("admin:campaigns_couponpool_upload", args=[pool.pk])
    from django.core.files.uploadedfile import SimpleUploadedFile

    # when a GB18030 file with a repeat, a code already there and a blank line is uploaded
    data = "券码A1\nB2\n\nB2\nOLD1\n".encode("gb18030")
    response = admin_client.post(url, {"file": SimpleUploadedFile("codes.txt", data)}, follow=True)
    # then the new codes are added and the refused ones counted
    assert set(Coupon.objects.filter(pool=pool).values_list("code", flat=True)) == {"OLD1", "券码A1", "B2"}
    assert any("2" in m and "2" in m for m in page_messages(response))
    # and a CSV's code column is read, other columns ignored
    csv = "name,code\n甲,C3\n乙,C4 \n".encode()
    admin_client.post(url, {"file": SimpleUploadedFile("codes.csv", csv)})
    assert Coupon.objects.filter(pool=pool, code__in=["C3", "C4"]).count() == 2
    assert "5" in text(admin_client.get(reverse("admin:campaigns_couponpool_changelist")))


# -- who may do what, and what it costs -------------------------------------------------------

@pytest.fixture
def role_objects(webhook):
    campaign = campaign_for(segment_of(consenting(n=1)), webhook)
    sending = campaign_for(segment_of(consenting(n=1), slug="b"), webhook, name="已发送", status=Campaign.Status.SENDING)
    return {"campaign": campaign, "sending": sending, "webhook": webhook}


ROLE_ACTIONS = {
    "draft a campaign": ("get", "admin:campaigns_campaign_add", lambda o: [], {MARKETER, ADMIN}),
    "read a campaign": ("get", "admin:campaigns_campaign_change", lambda o: [o["campaign"].pk],
                        {MARKETER, ANALYST, ADMIN}),
    "preview": ("post", "admin:campaigns_campaign_preview", lambda o: [], {MARKETER, ADMIN}),
    "test-send": ("post", "admin:campaigns_campaign_test_send", lambda o: [o["campaign"].pk], {MARKETER, ADMIN}),
    "launch": ("get", "admin:campaigns_campaign_launch", lambda o: [o["campaign"].pk], {MARKETER, ADMIN}),
    "pause": ("post", "admin:campaigns_campaign_pause", lambda o: [o["sending"].pk], {MARKETER, ADMIN}),
    "read progress and results": ("get", "admin:campaigns_campaign_progress", lambda o: [o["sending"].pk],
                                  {MARKETER, ANALYST, ADMIN}),
    "manage destinations": ("get", "admin:campaigns_destination_add", lambda o: [], {ADMIN}),
    "test a destination": ("post", "admin:campaigns_destination_test", lambda o: [o["webhook"].pk], {ADMIN}),
    "upload coupon codes": ("get", "admin:campaigns_couponpool_upload", lambda o: [CouponPool.objects.create(
        name="p").pk], {MARKETER, ADMIN}),
}


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("action", list(ROLE_ACTIONS))
def test_each_role_does_exactly_its_campaign_actions(client, django_user_model, role_objects, role, action):
    method, name, arguments, allowed = ROLE_ACTIONS[action]
    client.force_login(staff_with(django_user_model, role))
    response = getattr(client, method)(reverse(name, args=arguments(role_objects)))
    if role in allowed:
        assert response.status_code in (200, 302), (role, action, response.status_code)
    else:
        assert response.status_code in (403, 302) and not (
            response.status_code == 302 and "login" not in response.url and role_objects["sending"].status
            != Campaign.objects.get(pk=role_objects["sending"].pk).status), (role, action)
        if response.status_code == 302:
            assert "/login/" in response.url, (role, action)


def test_the_analyst_reads_results_but_sees_no_buttons_preview_or_test_send(client, django_user_model, webhook):
    campaign = campaign_for(segment_of(consenting(n=1)), webhook, status=Campaign.Status.SENDING)
    client.force_login(staff_with(django_user_model, ANALYST))
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "results" in page.context and "progress" in page.context
    assert "test_send_form" not in page.context and 'id="pause"' not in text(page)


def test_the_list_and_the_page_cost_a_bounded_number_of_queries(admin_client, webhook, django_assert_max_num_queries):
    segment = segment_of(consenting(n=3))
    for n in range(12):
        campaign = campaign_for(segment, webhook, name=f"活动{n}")
        run_decide(campaign=campaign)
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("admin:campaigns_campaign_changelist")).status_code == 200
    draft = campaign_for(segment, webhook, name="草稿")
    with django_assert_max_num_queries(30):
        assert admin_client.get(reverse("admin:campaigns_campaign_change", args=[draft.pk])).status_code == 200
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    with django_assert_max_num_queries(30):
        assert admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).status_code == 200


def test_staff_who_may_only_read_destinations_see_their_settings_by_label_never_the_secret(
        client, django_user_model, webhook):
    client.force_login(staff_with(django_user_model, MARKETER))
    page = client.get(reverse("admin:campaigns_destination_change", args=[webhook.pk]))
    assert page.status_code == 200 and webhook.config["url"] in text(page) and "Webhook 地址" in text(page)
    assert webhook.secret not in text(page) and 'id="test-connection"' not in text(page)


def test_an_email_test_send_goes_to_my_accounts_address(admin_client, staff_user, webhook, receiver):
    staff_user.email = "me@brand.cn"
    staff_user.save()
    campaign = campaign_for(segment_of(consenting("email_marketing", n=1)), webhook, purpose="email_marketing")
    variant = campaign.variants.get()
    variant.subject = "{{ name }}，春季新品"
    variant.save()
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert page.context["test_send_form"]["address"].value() == "me@brand.cn"
    # whatever is typed in the (disabled) field, the test goes to the account's address
    admin_client.post(reverse("admin:campaigns_campaign_test_send", args=[campaign.pk]),
                      {"variant": variant.pk, "address": "someone@else.cn"})
    assert [(m["address"], m["subject"]) for m in receiver.messages] == [("me@brand.cn", "operator，春季新品")]


def destination_form(kind, **config):
    data = {"name": "目的地", "kind": kind, "is_active": "on", "rate_per_second": 100, "batch_size": 100,
            "max_attempts": 5, "cost_per_message": "0", "config_audience_file_storage": "folder"}
    data.update({f"config_{kind}_{key}": value for key, value in config.items()})
    return data


def test_each_kind_keeps_the_settings_its_adapter_reads(admin_client):
    add = reverse("admin:campaigns_destination_add")
    # an SMS destination gets a receipt token, and its page shows the report URL carrying it
    response = admin_client.post(add, {**destination_form("aliyun_sms", access_key_id="LTAI5t", params='["name"]'),
                                       "new_secret": "ak-secret"})
    assert response.status_code == 302
    sms = Destination.objects.get(kind="aliyun_sms")
    assert sms.config["access_key_id"] == "LTAI5t" and sms.config["params"] == ["name"]
    assert len(sms.config["receipt_token"]) >= 24
    page = text(admin_client.get(reverse("admin:campaigns_destination_change", args=[sms.pk])))
    assert f"/campaigns/receipts/{sms.pk}/?token={sms.config['receipt_token']}" in page
    # e-mail needs its SMTP server unless it goes through the system's settings
    response = admin_client.post(add, destination_form("email", from_address="news@brand.cn"))
    assert "config_email_host" in response.context["adminform"].form.errors
    assert admin_client.post(add, destination_form("email", backend="settings")).status_code == 302
    # WeChat takes its AppID and template keywords
    admin_client.post(add, {**destination_form("wechat", appid="wx123", fields='{"thing1": "name"}'),
                            "new_secret": "app-secret"})
    assert Destination.objects.get(kind="wechat").config == {"appid": "wx123", "fields": {"thing1": "name"}}


def test_the_page_previews_every_variant_for_one_sample_customer_with_its_link(admin_client, webhook):
    campaign = campaign_for(segment_of(consenting(n=2, name="赵六")), webhook)
    campaign.variants.update(weight=50, body="{{ name }} A {{ link }}", link_url="https://brand.cn/spring")
    campaign.variants.create(label="B", weight=50, body="{{ name }} B {{ link }}", sms_sign_name="测试")
    previews = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).context["previews"]
    texts = [item["preview"].text for item in previews]
    assert texts[0].startswith("【测试】赵六 A http") and "/r/" in texts[0]
    assert texts[1].startswith("【测试】赵六 B") and "/r/" not in texts[1]  # B has no link


def test_a_campaign_for_a_later_time_is_scheduled_not_run(admin_client, webhook, django_capture_on_commit_callbacks):
    from django.utils import timezone

    at = timezone.now() + timezone.timedelta(days=1)
    campaign = campaign_for(segment_of(consenting(n=1)), webhook, schedule=Campaign.Schedule.AT, scheduled_at=at)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(reverse("admin:campaigns_campaign_launch", args=[campaign.pk]), follow=True)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED and campaign.next_run_at == at and not callbacks
    assert not Delivery.objects.exists()
    assert any(timezone.localtime(at).strftime("%Y-%m-%d %H:%M") in m for m in page_messages(response))


def test_a_sent_campaign_is_copied_as_a_new_draft_with_its_variants(client, django_user_model, webhook):
    campaign = campaign_for(segment_of(consenting(n=1)), webhook, status=Campaign.Status.FINISHED, cap_messages=1,
                            cap_days=30)
    campaign.variants.create(label="B", weight=50, body="B 版")
    marketer = staff_with(django_user_model, MARKETER)
    client.force_login(marketer)
    client.post(reverse("admin:campaigns_campaign_changelist"),
                {"action": "copy_as_draft", "_selected_action": [campaign.pk]})
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert copy.name == "春季促销（副本）" and copy.status == Campaign.Status.DRAFT and copy.owner == marketer
    assert (copy.segment_id, copy.cap_messages, copy.cap_days, copy.launched_at) == (campaign.segment_id, 1, 30, None)
    assert sorted(copy.variants.values_list("label", "body")) == [("A", "{{ name }}，您好"), ("B", "B 版")]


def test_campaigns_are_not_deleted_in_bulk_and_only_drafts_one_by_one(admin_client, webhook):
    sent = campaign_for(segment_of(consenting(n=1)), webhook, status=Campaign.Status.FINISHED)
    draft = campaign_for(sent.segment, webhook, name="草稿")
    response = admin_client.get(reverse("admin:campaigns_campaign_changelist"))
    assert "delete_selected" not in text(response)
    assert admin_client.get(reverse("admin:campaigns_campaign_delete", args=[sent.pk])).status_code == 403
    admin_client.post(reverse("admin:campaigns_campaign_delete", args=[draft.pk]), {"post": "yes"})
    assert list(Campaign.objects.all()) == [sent]


def test_a_trigger_campaigns_page_has_no_funnel_but_previews_for_an_example_customer(admin_client, webhook):
    from consent.models import Purpose as PurposeModel

    campaign = Campaign.objects.create(name="弃购提醒", purpose=PurposeModel.objects.get(code="sms_marketing"),
                                       destination=webhook, audience_kind=Campaign.AudienceKind.TRIGGER_EVENT,
                                       trigger_event="add_to_cart", trigger_unless_event="order",
                                       trigger_within_minutes=60)
    campaign.variants.create(label="A", weight=100, body="{{ name }}，购物车里的商品还在", sms_sign_name="品牌")
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert page.status_code == 200 and "funnel" not in page.context
    preview = page.context["previews"][0]["preview"]
    assert preview.text.startswith("【品牌】尊敬的会员，购物车") and "示例客户" in preview.customer
    launch = admin_client.get(reverse("admin:campaigns_campaign_launch", args=[campaign.pk]))
    assert "监听触发条件" in text(launch)
