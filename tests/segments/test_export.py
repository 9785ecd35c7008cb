import csv
import io
import threading
import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from openpyxl import load_workbook

from cdp.actors import Actor
from cdp.models import AuditLog
from cdp.roles import ROLES
from consent.services import consent_record, do_not_contact_add
from segments.export import segment_export
from segments.models import Segment
from segments.services import segment_recompute, segment_save
from tests.factories import ProfileFactory

SYSTEM = Actor.system("test")
SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}
MARKETER, ANALYST, PRIVACY, ADMIN = ROLES


def grant(profile, purpose="sms_marketing", status="granted"):
    consent_record(profile=profile, purpose_code=purpose, status=status, source="admin", actor=SYSTEM)


def shanghai_segment():
    segment = segment_save(segment=Segment(name="上海客户", slug="shanghai"), definition=SHANGHAI)
    segment_recompute(segment_id=segment.pk)
    segment.refresh_from_db()
    return segment


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def exported_names(export):
    return {row[1] for row in csv_rows(export.read())[1:]}


def export(segment, purpose="sms_marketing", columns=("uuid", "name"), file_format="csv", contact_allowed=False):
    return segment_export(segment=segment, purpose_code=purpose, columns=list(columns), file_format=file_format,
                          actor=SYSTEM, contact_allowed=contact_allowed)


def exporter(django_user_model, *permissions, username="exporter"):
    user = django_user_model.objects.create_user(username=username, password="x", is_staff=True)
    for name in ("export_segment", "view_segment", *permissions):
        user.user_permissions.add(Permission.objects.get(codename=name))
    return user


@pytest.mark.django_db
def test_only_members_whose_consent_counts_and_who_are_contactable_are_exported():
    granted = ProfileFactory(name="同意", city="上海")
    withdrawn = ProfileFactory(name="撤回", city="上海")
    blocked = ProfileFactory(name="拉黑", city="上海")
    ProfileFactory(name="未知", city="上海")
    outsider = ProfileFactory(name="北京", city="北京")
    for profile in (granted, withdrawn, blocked, outsider):
        grant(profile)
    grant(withdrawn, status="withdrawn")
    do_not_contact_add(profile=blocked, channel="sms", reason="complaint", actor=SYSTEM)
    result = export(shanghai_segment(), columns=["uuid", "name", "phone"])
    assert exported_names(result) == {"同意"} and result.count == 1
    entry = AuditLog.objects.get(action="segment_exported")
    assert entry.count == 1 and entry.details["purpose"] == "sms_marketing" and entry.actor_label == "test"


@pytest.mark.django_db
def test_phones_stay_phones_and_formulas_are_escaped_in_csv_and_plain_text_in_xlsx():
    # given a member with a formula for a name and an E.164 phone, consenting to SMS
    grant(ProfileFactory(name="=HYPERLINK(\"http://evil\")", city="上海", phone="+8613800138000"))
    segment = shanghai_segment()
    # when it is exported with the phone, as CSV and as XLSX
    text = export(segment, columns=["name", "phone"], contact_allowed=True).read()
    sheet = load_workbook(io.BytesIO(export(segment, columns=["name", "phone"], file_format="xlsx",
                                            contact_allowed=True).read())).active
    # then the CSV escapes the formula but not the phone
    assert csv_rows(text)[1] == ["'=HYPERLINK(\"http://evil\")", "+8613800138000"]
    # and the XLSX holds both exactly, as typed strings, so neither is a formula
    assert [cell.value for cell in sheet[2]] == ["=HYPERLINK(\"http://evil\")", "+8613800138000"]
    assert [cell.data_type for cell in sheet[2]] == ["s", "s"]


@pytest.mark.django_db
def test_only_the_purpose_channels_contact_is_unmasked_and_only_with_the_permission():
    # given a member with a phone and an email who consents to SMS and to email marketing
    profile = ProfileFactory(name="张伟", city="上海", phone="+8613800138000", email="zhang.wei@example.com")
    grant(profile)
    grant(profile, "email_marketing")
    segment = shanghai_segment()
    columns = ["name", "phone", "email"]
    # when exported for SMS with the permission, without it, and for email with it
    sms = csv_rows(export(segment, "sms_marketing", columns, contact_allowed=True).read())[1]
    refused = csv_rows(export(segment, "sms_marketing", columns, contact_allowed=False).read())[1]
    mail = csv_rows(export(segment, "email_marketing", columns, contact_allowed=True).read())[1]
    # then each shows in clear only the contact its channel needs, and only with the permission
    assert sms == ["张伟", "+8613800138000", "z***@example.com"]
    assert refused == ["张伟", "138****8000", "z***@example.com"]
    assert mail == ["张伟", "138****8000", "zhang.wei@example.com"]
    # and the audit log says which column went out unmasked
    assert [e.details["unmasked"] for e in AuditLog.objects.filter(action="segment_exported").order_by("pk")] == [
        ["phone"], [], ["email"]]


@pytest.mark.django_db
def test_an_export_with_nobody_to_export_is_refused_with_a_reason_and_not_audited():
    ProfileFactory(name="未知", city="上海")
    with pytest.raises(ValidationError) as error:
        export(shanghai_segment())
    assert error.value.code == "nothing_to_export"
    assert not AuditLog.objects.filter(action="segment_exported").exists()


@pytest.mark.django_db
def test_export_requires_a_purpose_and_known_columns():
    segment = shanghai_segment()
    for kwargs in ({"purpose_code": ""}, {"columns": ["password"]}, {"file_format": "pdf"}):
        arguments = {"purpose_code": "sms_marketing", "columns": ["uuid"], "file_format": "csv", **kwargs}
        with pytest.raises(ValidationError):
            segment_export(segment=segment, actor=SYSTEM, contact_allowed=False, **arguments)


@pytest.mark.django_db
def test_the_roles_that_may_export_contact_data():
    holders = {name for name in ROLES
               if Group.objects.get(name=name).permissions.filter(codename="export_contact_data").exists()}
    assert holders == {PRIVACY, ADMIN}


@pytest.mark.django_db
def test_export_page_streams_the_download_and_is_forbidden_without_the_permission(client, staff_user,
                                                                                 django_user_model):
    grant(ProfileFactory(name="同意", city="上海"))
    segment = shanghai_segment()
    url = reverse("admin:segments_segment_export", args=[segment.pk])
    client.force_login(staff_user)
    assert client.get(url).status_code == 200
    for file_format in ("csv", "xlsx"):
        response = client.post(url, {"purpose": "sms_marketing", "columns": ["uuid", "name"],
                                     "file_format": file_format})
        assert response.status_code == 200 and response.streaming and response["X-Exported-Count"] == "1"
        assert response["Content-Disposition"].startswith("attachment;")
        content = b"".join(response.streaming_content)
        assert "同意" in content.decode("utf-8-sig") if file_format == "csv" else content.startswith(b"PK")
    missing = client.post(url, {"columns": ["uuid"], "file_format": "csv"})
    assert missing.status_code == 200 and "export-form" in missing.content.decode()
    client.force_login(django_user_model.objects.create_user(username="viewer", password="x", is_staff=True))
    assert client.get(url).status_code == 403
    assert client.get(reverse("admin:segments_segment_export_count", args=[segment.pk])).status_code == 403


@pytest.mark.django_db
def test_the_page_says_how_many_will_be_exported_and_refuses_an_empty_file(client, django_user_model,
                                                                          django_assert_max_num_queries):
    # given a segment with one SMS-consenting member and one without consent
    grant(ProfileFactory(name="同意", city="上海"))
    ProfileFactory(name="未知", city="上海")
    segment = shanghai_segment()
    client.force_login(exporter(django_user_model))
    count_url = reverse("admin:segments_segment_export_count", args=[segment.pk])
    # when the form asks for the count per purpose
    with django_assert_max_num_queries(8):  # session, user, permissions, segment, purpose, count
        sms = client.get(count_url, {"purpose": "sms_marketing"}).json()
    mail = client.get(count_url, {"purpose": "email_marketing"}).json()
    bad = client.get(count_url, {"purpose": "nope"})
    # then it says so in Chinese, and nobody for email marketing
    assert sms["count"] == 1 and sms["message"] == "将导出 1 位客户。" and sms["contact"] == "phone"
    assert not sms["contact_unmasked"] and "掩码" in sms["contact_note"]
    assert mail["count"] == 0 and "不能导出" in mail["message"]
    assert bad.status_code == 400 and bad.json()["code"] == "purpose_required"
    # and downloading for email marketing gives the reason on the form, not an empty file
    response = client.post(reverse("admin:segments_segment_export", args=[segment.pk]),
                           {"purpose": "email_marketing", "columns": ["uuid"], "file_format": "csv"})
    assert not response.streaming and "Content-Disposition" not in response
    assert "不能导出" in response.content.decode()


@pytest.mark.django_db
def test_a_chosen_purpose_ticks_its_channels_contact_column(client, django_user_model):
    grant(ProfileFactory(name="同意", city="上海"), "email_marketing")
    segment = shanghai_segment()
    client.force_login(exporter(django_user_model, "export_contact_data"))
    page = client.get(reverse("admin:segments_segment_export", args=[segment.pk]), {"purpose": "email_marketing"})
    html = page.content.decode()
    assert 'value="email" id="id_columns_3" checked' in html or 'value="email" checked' in html
    assert "将导出 1 位客户" in html and "不做掩码" in html


@pytest.mark.django_db
def test_seeing_personal_data_alone_no_longer_unmasks_an_export(client, django_user_model):
    grant(ProfileFactory(name="同意", city="上海", phone="+8613800138000"))
    segment = shanghai_segment()
    url = reverse("admin:segments_segment_export", args=[segment.pk])
    form = {"purpose": "sms_marketing", "columns": ["name", "phone"], "file_format": "csv"}
    client.force_login(exporter(django_user_model, "view_personal_data"))
    masked = b"".join(client.post(url, form).streaming_content)
    client.force_login(exporter(django_user_model, "export_contact_data", username="sms-sender"))
    clear = b"".join(client.post(url, form).streaming_content)
    assert csv_rows(masked)[1] == ["同意", "138****8000"] and csv_rows(clear)[1] == ["同意", "+8613800138000"]


@pytest.mark.postgres
def test_a_withdrawal_committed_while_an_export_waits_is_honoured(seeded_transactional_db):
    """A withdrawal in progress holds the purpose; an export started meanwhile waits for
    it and then leaves the person out."""
    profile = ProfileFactory(name="同意", city="上海")
    grant(profile)
    grant(ProfileFactory(name="另一位", city="上海"))
    segment = shanghai_segment()
    result = {}

    def run():
        try:
            result["names"] = exported_names(export(segment))
        finally:
            connection.close()

    with transaction.atomic():
        grant(profile, status="withdrawn")
        exporting = threading.Thread(target=run)
        exporting.start()
        time.sleep(0.5)
        assert exporting.is_alive()  # waiting for the withdrawal's transaction
    exporting.join(10)
    assert result["names"] == {"另一位"}


@pytest.mark.postgres
def test_a_withdrawal_committed_before_an_export_starts_is_never_exported(seeded_transactional_db):
    profile = ProfileFactory(name="撤回", city="上海")
    grant(profile)
    grant(ProfileFactory(name="同意", city="上海"))
    segment = shanghai_segment()
    grant(profile, status="withdrawn")  # committed (autocommit) before the export
    for file_format in ("csv", "xlsx"):
        result = export(segment, file_format=file_format)
        content = result.read()
        names = exported_names_of(content, file_format)
        assert names == {"同意"} and result.count == 1


def exported_names_of(content: bytes, file_format: str) -> set[str]:
    if file_format == "csv":
        return {row[1] for row in csv_rows(content)[1:]}
    return {row[1] for row in load_workbook(io.BytesIO(content)).active.iter_rows(min_row=2, values_only=True)}


@pytest.mark.postgres
def test_a_withdrawal_made_during_an_export_does_not_wait_for_it(seeded_transactional_db, monkeypatch):
    """The export holds the purpose only while it takes its snapshot: a withdrawal while
    the file is being written goes through at once, and the file is the snapshot's."""
    monkeypatch.setattr("segments.export.PAGE", 1)
    monkeypatch.setattr("segments.export.CHUNK", 1)  # a chunk per row: the export is mid-way after the first
    profiles = [ProfileFactory(name=f"客户{i}", city="上海") for i in range(3)]
    for profile in profiles:
        grant(profile)
    segment = shanghai_segment()
    done = {}

    def withdraw():
        try:
            done["record"] = consent_record(profile=profiles[-1], purpose_code="sms_marketing", status="withdrawn",
                                            source="api", actor=SYSTEM)
        finally:
            connection.close()

    result = export(segment)
    chunks = iter(result.chunks)
    first = next(chunks) + next(chunks) + next(chunks)  # the BOM, the header, the first customer
    withdrawing = threading.Thread(target=withdraw)
    started = time.monotonic()
    withdrawing.start()
    withdrawing.join(5)
    assert not withdrawing.is_alive() and time.monotonic() - started < 2  # it did not wait for the export
    rest = first + b"".join(chunks)
    assert {row[1] for row in csv_rows(rest)[1:]} == {"客户0", "客户1", "客户2"}  # the snapshot's members
    with connection.cursor() as cursor:  # and the snapshot is gone
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'segment_export_%%'")
        assert cursor.fetchone()[0] == 0
