import csv
import io
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from openpyxl import load_workbook

from cdp.actors import Actor
from cdp.models import AuditLog
from consent.services import consent_record, do_not_contact_add
from segments.export import segment_export
from segments.models import Segment
from segments.services import segment_recompute, segment_save
from tests.factories import ProfileFactory

SYSTEM = Actor.system("test")
SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}


def grant(profile, purpose="sms_marketing", status="granted"):
    consent_record(profile=profile, purpose_code=purpose, status=status, source="admin", actor=SYSTEM)


def shanghai_segment():
    segment = segment_save(segment=Segment(name="上海客户", slug="shanghai"), definition=SHANGHAI)
    segment_recompute(segment_id=segment.pk)
    segment.refresh_from_db()
    return segment


def exported_names(export):
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    return {row[1] for row in rows[1:]}


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
    export = segment_export(segment=shanghai_segment(), purpose_code="sms_marketing", columns=["uuid", "name", "phone"],
                            file_format="csv", actor=SYSTEM, unmasked=False)
    assert exported_names(export) == {"同意"} and export.count == 1
    entry = AuditLog.objects.get(action="segment_exported")
    assert entry.count == 1 and entry.details["purpose"] == "sms_marketing" and entry.actor_label == "test"


@pytest.mark.django_db
def test_export_masks_phones_unless_allowed_and_escapes_formulas():
    profile = ProfileFactory(name="=HYPERLINK(\"http://evil\")", city="上海", phone="+8613800138000")
    grant(profile)
    segment = shanghai_segment()
    masked = segment_export(segment=segment, purpose_code="sms_marketing", columns=["name", "phone"],
                            file_format="csv", actor=SYSTEM, unmasked=False)
    row = list(csv.reader(io.StringIO(masked.content.decode("utf-8-sig"))))[1]
    assert row == ["'=HYPERLINK(\"http://evil\")", "138****8000"]
    clear = segment_export(segment=segment, purpose_code="sms_marketing", columns=["name", "phone"],
                           file_format="xlsx", actor=SYSTEM, unmasked=True)
    sheet = load_workbook(io.BytesIO(clear.content)).active
    # E.164 phones start with "+": escaped too, so that Excel keeps them as text
    assert [cell.value for cell in sheet[2]] == ["'=HYPERLINK(\"http://evil\")", "'+8613800138000"]


@pytest.mark.django_db
def test_export_requires_a_purpose_and_known_columns():
    segment = shanghai_segment()
    for kwargs in ({"purpose_code": ""}, {"columns": ["password"]}, {"file_format": "pdf"}):
        arguments = {"purpose_code": "sms_marketing", "columns": ["uuid"], "file_format": "csv", **kwargs}
        with pytest.raises(ValidationError):
            segment_export(segment=segment, actor=SYSTEM, unmasked=False, **arguments)


@pytest.mark.django_db
def test_export_page_downloads_for_a_purpose_and_is_forbidden_without_the_permission(client, staff_user,
                                                                                     django_user_model):
    grant(ProfileFactory(name="同意", city="上海"))
    segment = shanghai_segment()
    url = reverse("admin:segments_segment_export", args=[segment.pk])
    client.force_login(staff_user)
    assert client.get(url).status_code == 200
    response = client.post(url, {"purpose": "sms_marketing", "columns": ["uuid", "name"], "file_format": "csv"})
    assert response.status_code == 200 and response["X-Exported-Count"] == "1"
    assert "同意" in response.content.decode("utf-8-sig")
    missing = client.post(url, {"columns": ["uuid"], "file_format": "csv"})
    assert missing.status_code == 200 and "export-form" in missing.content.decode()
    plain = django_user_model.objects.create_user(username="viewer", password="x", is_staff=True)
    client.force_login(plain)
    assert client.get(url).status_code == 403


@pytest.mark.postgres
def test_a_withdrawal_committed_while_an_export_waits_is_honoured(seeded_transactional_db):
    """A withdrawal in progress holds the purpose; an export started meanwhile waits for
    it and then leaves the person out."""
    profile = ProfileFactory(name="同意", city="上海")
    grant(profile)
    segment = shanghai_segment()
    result = {}

    def export():
        try:
            result["export"] = segment_export(segment=segment, purpose_code="sms_marketing", columns=["uuid", "name"],
                                              file_format="csv", actor=SYSTEM, unmasked=False)
        finally:
            connection.close()

    with transaction.atomic():
        grant(profile, status="withdrawn")
        exporter = threading.Thread(target=export)
        exporter.start()
        time.sleep(0.5)
        assert exporter.is_alive()  # waiting for the withdrawal's transaction
    exporter.join(10)
    assert result["export"].count == 0


@pytest.mark.postgres
def test_a_withdrawal_made_during_an_export_waits_and_is_recorded_after_it(seeded_transactional_db):
    profile = ProfileFactory(name="同意", city="上海")
    grant(profile)
    segment = shanghai_segment()
    done = {}

    def withdraw():
        try:
            done["record"] = consent_record(profile=profile, purpose_code="sms_marketing", status="withdrawn",
                                            source="api", actor=SYSTEM)
        finally:
            connection.close()

    from consent.models import Purpose
    from consent.services import purpose_lock

    with transaction.atomic():
        purpose_lock(Purpose.objects.get(code="sms_marketing"), shared=True)  # an export in progress
        withdrawing = threading.Thread(target=withdraw)
        withdrawing.start()
        time.sleep(0.5)
        assert withdrawing.is_alive()
        export_finished = __import__("django.utils.timezone").utils.timezone.now()
    withdrawing.join(10)
    assert done["record"].recorded_at >= export_finished
