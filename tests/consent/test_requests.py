"""Data subject requests: deadlines, extension, answering, the access export and its admin."""
import datetime
import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from cdp.models import AuditLog, Partner
from consent.models import DataSubjectRequest
from consent.requests import (
    EXPORT_FORMAT,
    PROFILE_COLUMNS,
    data_request_complete,
    data_request_create,
    data_request_export,
    data_request_extend,
    data_request_refuse,
    export_csv_zip,
    export_record_count,
    profile_data_export,
)
from consent.services import consent_record, do_not_contact_add
from profiles.importing.mapping import PROFILE_FIELDS
from profiles.models import AttributeDefinition, ImportBatch, ImportChange, ImportJob, ProfileActivity
from segments.models import Segment, SegmentMembership
from tests.factories import EventFactory, IdentityFactory, ProfileFactory, TagFactory, order, tag_on

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
DSR = DataSubjectRequest


def new_request(kind="access", profile=None, days_ago=0, **kwargs):
    received = timezone.now() - datetime.timedelta(days=days_ago)
    return data_request_create(kind=kind, requester="张伟 (by email)", profile=profile, received_at=received,
                               actor=SYSTEM, **kwargs)


# --- deadlines and answering -------------------------------------------------------------------

def test_a_request_is_due_30_days_after_receipt_and_recorded_on_timeline_and_audit():
    profile = ProfileFactory()
    request = new_request(profile=profile, days_ago=3)
    assert request.due_at == request.received_at + datetime.timedelta(days=30)
    assert request.deadline == request.due_at and request.status == DSR.Status.RECEIVED
    entry = ProfileActivity.objects.get(profile=profile, type="dsar")
    assert entry.params == {"request": request.pk, "kind": "access", "status": "received"}
    assert AuditLog.objects.filter(action="data_request_received", target=str(profile.uuid)).exists()


def test_a_request_needs_a_known_kind_and_a_requester():
    with pytest.raises(ValidationError) as error:
        data_request_create(kind="delete-everything", requester="x", actor=SYSTEM)
    assert error.value.code == "invalid_request_kind"
    with pytest.raises(ValidationError) as error:
        data_request_create(kind="access", requester="  ", actor=SYSTEM)
    assert error.value.code == "requester_required"


def test_an_extension_needs_a_reason_a_later_date_and_at_most_two_more_months():
    request = new_request()
    later = request.due_at + datetime.timedelta(days=30)
    with pytest.raises(ValidationError) as error:
        data_request_extend(request=request, until=later, reason=" ", actor=SYSTEM)
    assert error.value.code == "extension_reason_required"
    with pytest.raises(ValidationError) as error:
        data_request_extend(request=request, until=request.due_at - datetime.timedelta(days=1), reason="complex",
                            actor=SYSTEM)
    assert error.value.code == "extension_not_later"
    with pytest.raises(ValidationError) as error:
        data_request_extend(request=request, until=request.due_at + datetime.timedelta(days=61), reason="complex",
                            actor=SYSTEM)
    assert error.value.code == "extension_too_long"

    extended = data_request_extend(request=request, until=later, reason="complex request", actor=SYSTEM)
    assert extended.deadline == later and extended.extension_reason == "complex request"
    assert extended.status == DSR.Status.IN_PROGRESS
    assert AuditLog.objects.get(action="data_request_extended").details == {
        "request": request.pk, "kind": "access", "until": later.isoformat()}


def test_completing_and_refusing_close_the_request_once():
    request = new_request()
    with pytest.raises(ValidationError):
        data_request_complete(request=request, outcome="", actor=SYSTEM)
    done = data_request_complete(request=request, outcome="export sent", actor=SYSTEM)
    assert done.status == DSR.Status.COMPLETED and done.completed_at and done.outcome == "export sent"
    with pytest.raises(ValidationError) as error:
        data_request_refuse(request=done, reason="too late", actor=SYSTEM)
    assert error.value.code == "request_closed"
    other = new_request(kind="rectification")
    with pytest.raises(ValidationError) as error:
        data_request_refuse(request=other, reason="", actor=SYSTEM)
    assert error.value.code == "refusal_reason_required"
    assert data_request_refuse(request=other, reason="identity not verified", actor=SYSTEM).status == "refused"


def test_the_admin_lists_overdue_then_due_soon_then_later_then_closed(client, staff_user,
                                                                      django_assert_max_num_queries):
    later = new_request(days_ago=0)
    closed = data_request_complete(request=new_request(days_ago=40), outcome="done", actor=SYSTEM)
    overdue = new_request(days_ago=35)
    soon = new_request(days_ago=27)
    # Extended: its own due date passed, the extension has not; it sorts by the extension.
    extended = new_request(days_ago=32)
    data_request_extend(request=extended, until=timezone.now() + datetime.timedelta(days=10), reason="complex",
                        actor=SYSTEM)
    client.force_login(staff_user)
    url = reverse("admin:consent_datasubjectrequest_changelist")
    with django_assert_max_num_queries(12):
        response = client.get(url)
    assert response.status_code == 200
    order_shown = [r.pk for r in response.context["cl"].result_list]
    assert order_shown == [overdue.pk, soon.pk, extended.pk, later.pk, closed.pk]
    assert "#cf1322" in response.text and "#d46b08" in response.text  # overdue and due-soon badges

    overdue_only = client.get(url, {"deadline": "overdue"})
    assert [r.pk for r in overdue_only.context["cl"].result_list] == [overdue.pk]
    soon_only = client.get(url, {"deadline": "soon"})
    assert [r.pk for r in soon_only.context["cl"].result_list] == [soon.pk]


def test_the_admin_records_a_request_through_the_service(client, staff_user):
    profile = ProfileFactory()
    client.force_login(staff_user)
    response = client.post(reverse("admin:consent_datasubjectrequest_add"), {
        "kind": "access", "profile": profile.pk, "requester": "李娜，电话来访", "contact": "", "details": "",
        "received_at_0": "2026-03-01", "received_at_1": "10:00:00",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    request = DSR.objects.get()
    assert request.profile == profile and request.due_at == request.received_at + datetime.timedelta(days=30)
    assert ProfileActivity.objects.filter(profile=profile, type="dsar").count() == 1


def test_the_admin_extends_completes_and_refuses_with_forms(client, staff_user):
    request = new_request()
    client.force_login(staff_user)
    extend = reverse("admin:consent_datasubjectrequest_extend", args=[request.pk])
    assert client.get(extend).status_code == 200
    day = timezone.localtime(request.due_at).date() + datetime.timedelta(days=20)
    missing_reason = client.post(extend, {"until": day.isoformat(), "reason": ""})
    assert missing_reason.status_code == 200 and missing_reason.context["form"].errors
    assert client.post(extend, {"until": day.isoformat(), "reason": "需要核实身份"}).status_code == 302
    request.refresh_from_db()
    assert timezone.localtime(request.extended_until).date() == day
    complete = reverse("admin:consent_datasubjectrequest_complete", args=[request.pk])
    assert client.post(complete, {"outcome": "已发送"}).status_code == 302
    request.refresh_from_db()
    assert request.status == DSR.Status.COMPLETED
    refuse = client.post(reverse("admin:consent_datasubjectrequest_refuse", args=[request.pk]), {"reason": "x"})
    assert refuse.status_code == 200 and "request_closed" not in refuse.text and refuse.context["form"].errors


def test_handling_requests_needs_the_change_permission(client, django_user_model):
    viewer = django_user_model.objects.create_user(username="viewer", password="pw", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_datasubjectrequest"))
    request = new_request(profile=ProfileFactory())
    client.force_login(viewer)
    change = client.get(reverse("admin:consent_datasubjectrequest_change", args=[request.pk]))
    assert change.status_code == 200 and "export-json" not in change.text
    assert client.post(reverse("admin:consent_datasubjectrequest_export", args=[request.pk, "json"])).status_code == 403
    assert client.get(reverse("admin:consent_datasubjectrequest_extend", args=[request.pk])).status_code == 403


# --- access: the export ------------------------------------------------------------------------

@pytest.fixture
def known_customer():
    """A customer with something in every section of the export."""
    AttributeDefinition.objects.create(key="shoe_size", label="鞋码", type="number")
    profile = ProfileFactory(name="=HYPERLINK(\"http://x\")王芳", phone="+8613800138000", email="wang.fang@example.com",
                             birth_date=datetime.date(1990, 5, 17), occupation="设计师", traits={"shoe_size": 38})
    IdentityFactory(profile=profile, kind_id="crm_id", value="CRM-0042")
    IdentityFactory(profile=profile, kind_id="wechat_openid", value="oWx_wangfang")
    order(profile, days_ago=3, amount="399.00", category="shoes")
    EventFactory(profile=profile, name="page_view", properties={"page": "/sneakers"})
    tag_on(profile, TagFactory(name="喜欢运动鞋"))
    segment = Segment.objects.create(name="上海女性", slug="shanghai-women")
    SegmentMembership.objects.create(segment=segment, profile=profile)
    consent_record(profile=profile, purpose_code="email_marketing", status="granted", source="web_form",
                   actor=SYSTEM, evidence={"ip": "203.0.113.9", "user_agent": "Mozilla/5.0", "reference": "form-7"})
    do_not_contact_add(profile=profile, channel="sms", reason="unsubscribed", actor=SYSTEM)
    job = ImportJob.objects.create(file_name="crm-2026-03.csv", source="crm", actor_label="operator")
    ImportBatch.objects.create(job=job, number=1, profile_ids=[[profile.pk, profile.pk]])
    ImportChange.objects.create(job=job, profile_id=profile.pk, before={"city": "杭州"})
    partner = Partner.objects.create(name="星河商城", code="xinghe")
    AuditLog.objects.create(action="api_call", actor_kind="partner", partner=partner, actor_label=partner.name,
                            target=str(profile.uuid), details={"method": "GET", "route": "api/v1/profiles/<uuid>/"})
    return profile


def test_the_export_holds_everything_about_the_person_and_survives_json(known_customer):
    profile = known_customer
    new_request(profile=profile)
    export = json.loads(json.dumps(profile_data_export(profile)))

    assert export["format"] == EXPORT_FORMAT and export["version"] == 1 and export["customer"] == str(profile.uuid)
    person = export["profile"]
    assert {**{k: person[k] for k in ("name", "phone", "email", "birth_date", "occupation", "city")}} == {
        "name": profile.name, "phone": "+8613800138000", "email": "wang.fang@example.com",
        "birth_date": "1990-05-17", "occupation": "设计师", "city": "上海"}
    assert person["crm_id"] == "CRM-0042" and person["wechat_openid"] == "oWx_wangfang"
    assert person["traits"] == {"shoe_size": 38} and person["tags"] == "喜欢运动鞋"
    assert {"order_count", "total_spent", "lifecycle_stage"} <= set(person["metrics"])
    assert {i["value"] for i in export["identities"]} == {"CRM-0042", "oWx_wangfang"}
    assert [(e["event_name"], e["amount"]) for e in export["events"]] == [("order", "399.00"), ("page_view", None)]
    assert export["events"][0]["properties"] == {"category": "shoes"}
    assert export["tags"][0]["tag_name"] == "喜欢运动鞋" and export["tags"][0]["source"] == "manual"
    assert export["segment_memberships"][0]["segment"] == "上海女性"
    history = export["consent_history"][0]
    assert (history["purpose"], history["consent_status"], history["evidence_ip"]) == (
        "email_marketing", "granted", "203.0.113.9")
    assert export["do_not_contact"][0]["channel"] == "sms"
    assert export["data_requests"][0]["kind"] == "access"
    assert {a["type"] for a in export["activity"]} >= {"consent_changed", "dsar"}
    assert export["imports"][0]["file_name"] == "crm-2026-03.csv"
    assert set(export["imports"][0]["what"]) == {"created", "updated"}
    assert export["imports"][0]["values_before"] == [{"city": "杭州"}]
    assert export["partner_disclosures"][0]["partner"] == "星河商城"


def test_our_importer_reads_an_export_back(known_customer, tmp_path):
    from profiles.importing.jobs import import_job_create
    from profiles.importing.pipeline import import_run
    from profiles.models import Event, Profile

    profile = known_customer
    path = tmp_path / "subject.json"
    path.write_text(json.dumps(profile_data_export(profile), ensure_ascii=False), encoding="utf-8")
    # given the customer's details and behaviour were lost since the export
    Profile.objects.filter(pk=profile.pk).update(city="", occupation="", birth_date=None, traits={})
    Event.objects.filter(profile=profile).delete()

    def read_back(kind):
        job, _table = import_job_create(path=str(path), name="subject.json", kind=kind, actor=SYSTEM)
        return import_run(job)

    # when the export is imported as customers, then as events
    customers = read_back("profiles")
    events = read_back("events")
    # then the same person is found (by phone, email, CRM id) and restored
    assert (customers.updated, customers.created, customers.failed) == (1, 0, 0)
    profile.refresh_from_db()
    assert (profile.city, profile.occupation, profile.birth_date, profile.traits) == (
        "上海", "设计师", datetime.date(1990, 5, 17), {"shoe_size": 38})
    assert (events.created, events.failed) == (2, 0)
    assert sorted(Event.objects.filter(profile=profile).values_list("name", flat=True)) == ["order", "page_view"]
    # and reading it back again adds nothing (events are idempotent)
    assert read_back("events").created == 0


def test_the_profile_part_uses_the_import_column_names():
    assert tuple(PROFILE_COLUMNS) == tuple(PROFILE_FIELDS)


def test_the_csv_zip_has_a_file_per_section_and_is_formula_safe(known_customer):
    archive = zipfile.ZipFile(io.BytesIO(export_csv_zip(profile_data_export(known_customer))))
    names = set(archive.namelist())
    assert {"export.json", "profile.csv", "identities.csv", "events.csv", "tags.csv", "consent_history.csv",
            "segment_memberships.csv", "partner_disclosures.csv", "imports.csv"} <= names
    profile_csv = archive.read("profile.csv").decode("utf-8-sig")
    assert "'=HYPERLINK" in profile_csv and "trait:shoe_size" in profile_csv
    assert json.loads(archive.read("export.json"))["format"] == EXPORT_FORMAT


def test_an_export_follows_a_merged_profile_to_its_survivor(known_customer):
    from profiles.services.merge import profiles_merge

    newer = ProfileFactory(name="王芳（旧号）")
    profiles_merge(survivor=known_customer, merged=newer, actor=SYSTEM)
    newer.refresh_from_db()
    assert profile_data_export(newer)["customer"] == str(known_customer.uuid)


def test_downloading_an_export_is_audited_with_the_record_count(client, staff_user, known_customer):
    request = new_request(profile=known_customer)
    client.force_login(staff_user)
    url = reverse("admin:consent_datasubjectrequest_export", args=[request.pk, "json"])
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    export = json.loads(response.content)
    audit = AuditLog.objects.get(action="subject_data_exported")
    assert audit.actor_user == staff_user and audit.target == str(known_customer.uuid)
    assert audit.count == export_record_count(export) > 10
    zipped = client.post(reverse("admin:consent_datasubjectrequest_export", args=[request.pk, "csv"]))
    assert zipped["Content-Type"] == "application/zip" and zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    request.refresh_from_db()
    assert request.status == DSR.Status.IN_PROGRESS
    assert ProfileActivity.objects.filter(profile=known_customer, type="dsar", params__status="exported").count() == 2


def test_an_export_needs_a_customer():
    request = new_request(profile=None)
    with pytest.raises(ValidationError) as error:
        data_request_export(request=request, file_format="json", actor=SYSTEM)
    assert error.value.code == "request_without_customer"


def test_the_admin_searches_by_requester_and_public_id(client, staff_user):
    profile = ProfileFactory()
    mine = new_request(profile=profile)
    new_request(profile=None)
    client.force_login(staff_user)
    url = reverse("admin:consent_datasubjectrequest_changelist")
    assert len(client.get(url, {"q": "张伟"}).context["cl"].result_list) == 2
    assert [r.pk for r in client.get(url, {"q": str(profile.uuid)}).context["cl"].result_list] == [mine.pk]


def test_the_requesters_contact_is_masked_on_the_request_and_revealed_with_an_audited_click(client, staff_user):
    # given a request whose contact for the answer is a phone, and a superuser
    profile = ProfileFactory(name="王芳")
    dsr = new_request(profile=profile, contact="139 1234 5678")
    client.force_login(staff_user)
    # when they open the request
    html = client.get(reverse("admin:consent_datasubjectrequest_change", args=[dsr.pk])).text
    # then the contact is masked, with the reveal button
    assert "139 1234 5678" not in html and "139****5678" in html and 'id="reveal-contact"' in html
    assert not AuditLog.objects.filter(action="reveal_personal_data").exists()
    # when they reveal it, they read it and the reveal is in the audit log
    answer = client.post(reverse("admin:consent_datasubjectrequest_reveal_contact", args=[dsr.pk])).json()
    assert answer["contact"] == "139 1234 5678"
    entry = AuditLog.objects.get(action="reveal_personal_data")
    assert (entry.actor_user, entry.target, entry.details["fields"]) == (staff_user, str(profile.uuid), ["contact"])


def test_revealing_a_requesters_contact_needs_the_personal_data_permission(client, django_user_model):
    from django.contrib.auth.models import Permission

    dsr = new_request(profile=ProfileFactory(), contact="someone@example.com")
    user = django_user_model.objects.create_user("handler", password="pw-for-tests", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_datasubjectrequest",
                                                                       "change_datasubjectrequest"]))
    client.force_login(user)
    html = client.get(reverse("admin:consent_datasubjectrequest_change", args=[dsr.pk])).text
    assert "someone@example.com" not in html and "s***@example.com" in html and "reveal-contact" not in html
    assert client.post(reverse("admin:consent_datasubjectrequest_reveal_contact", args=[dsr.pk])).status_code == 403
