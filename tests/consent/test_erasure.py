"""Erasure: nothing personal left anywhere, the ledger kept as proof, the person's
identifiers suppressed, partners notified, and only with the permission."""
import datetime
import json

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, models, transaction
from django.urls import reverse

from cdp.actors import Actor
from cdp.models import AuditLog, Partner
from consent.models import ConsentRecord, DataSubjectRequest, ErasureNotice
from consent.requests import data_request_create, erasure_preview, profile_erase
from consent.services import consent_record, do_not_contact_add
from profiles.models import (
    Event, Identity, ImportChange, ImportJob, ImportRowError, Profile, ProfileActivity, ProfileMerge, ProfileTag,
    Suppression,
)
from profiles.services.collect import Message, collect_ingest
from profiles.services.merge import profiles_merge
from profiles.services.profiles import note_add
from profiles.services.sources import source_create
from profiles.services.suppression import identifier_digest, identities_refuse_suppressed, suppressed_among
from segments.models import Segment, SegmentMembership
from tests.factories import EventFactory, IdentityFactory, ProfileFactory, TagFactory, order, tag_on

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField, models.GenericIPAddressField)


def personal_data_left(needles: set[str]) -> set[tuple[str, str, str]]:
    """(table, column, needle) for every text or JSON column of every table that still
    holds one of `needles`."""
    found = set()
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.proxy:
            continue
        columns = [f.attname for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        if not columns:
            continue
        for row in model._base_manager.values_list(*columns):
            for column, value in zip(columns, row, strict=True):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
                found |= {(model._meta.db_table, column, needle) for needle in needles if needle in text}
    return found


@pytest.fixture
def eraser(django_user_model):
    """A privacy officer: may handle requests and erase, nothing else."""
    user = django_user_model.objects.create_user(username="privacy", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=["erase_profile", "view_datasubjectrequest", "change_datasubjectrequest"]))
    return django_user_model.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def person(staff_user):
    """Someone with personal data in every corner: a survivor with a merged older
    record, identities, events, tags, a segment, consent with evidence, do-not-contact,
    notes, an import that changed them, the admin history, requests and partner reads."""
    profile = ProfileFactory(name="欧阳娜娜", phone="+8613912345678", email="nana.ouyang@example.com",
                             birth_date=datetime.date(1992, 2, 29), occupation="摄影师", city="杭州", province="浙江",
                             traits={})
    old = ProfileFactory(name="欧阳娜", phone="+8613787654321", email="nana.old@example.net")
    IdentityFactory(profile=profile, kind_id="crm_id", value="CRM-NANA-7")
    IdentityFactory(profile=profile, kind_id="phone", value="+8613912345678")
    IdentityFactory(profile=old, kind_id="wechat_openid", value="oWx_nana_openid")
    order(profile, days_ago=2, amount="1299.00", receiver="欧阳娜娜", receiver_phone="13912345678")
    EventFactory(profile=old, name="support_chat", properties={"said": "my email is nana.old@example.net"})
    tag_on(profile, TagFactory(name="高价值"))
    SegmentMembership.objects.create(segment=Segment.objects.create(name="VIP", slug="vip"), profile=profile)
    consent_record(profile=profile, purpose_code="email_marketing", status="granted", source="web_form",
                   actor=SYSTEM, evidence={"ip": "198.51.100.23", "user_agent": "NanaPhone/1.0 (nana-device)",
                                           "reference": "signup-nana-001", "text": "signed as 欧阳娜娜"})
    consent_record(profile=old, purpose_code="sms_marketing", status="withdrawn", source="paper", actor=SYSTEM,
                   evidence={"text": "paper form, phone 13787654321"})
    do_not_contact_add(profile=profile, channel="phone", reason="complaint", actor=SYSTEM,
                       note="complained from nana.ouyang@example.com")
    note_add(profile=profile, text="called from 13912345678", actor=SYSTEM)
    profiles_merge(survivor=profile, merged=old, actor=Actor.staff(staff_user), reason="same person: 欧阳娜")
    job = ImportJob.objects.create(file_name="crm.csv", source="crm")
    ImportChange.objects.create(job=job, profile_id=profile.pk, before={"name": "欧阳娜娜", "city": "上海"})
    # Failed rows name the person only in their cells, as the CRM wrote them.
    ImportRowError.objects.create(job=job, row_number=2, values=["欧阳娜娜", "13912345678", "1992/2/30"])
    ImportRowError.objects.create(job=job, row_number=3, values=["娜娜", "139-1234 5678", "1992-2-30"])
    ImportRowError.objects.create(job=job, row_number=4, values=["NANA", "Nana.Ouyang@Example.com ", "?"])
    ImportRowError.objects.create(job=job, row_number=5, values=["王芳", "13500000000", "1980/13/1"])
    LogEntry.objects.create(user=staff_user, content_type=ContentType.objects.get_for_model(Profile),
                            object_id=str(profile.pk), object_repr=str(profile), action_flag=CHANGE,
                            change_message="[]")
    data_request_create(kind="access", requester="欧阳娜娜 (email)", contact="nana.ouyang@example.com",
                        details="please send my data to nana.ouyang@example.com", profile=profile, actor=SYSTEM)
    # A tracking SDK's message, kept by the source's debugger (its payload masked, but not every value is).
    collect_ingest(source=source_create(name="官网", code="web")[0], messages=[Message(
        protocol="segment", type="identify", message_id="m-nana-1", occurred_at=None, user_id="CRM-NANA-7",
        traits={"receiver": "欧阳娜娜"}, raw={"type": "identify", "userId": "CRM-NANA-7", "traits": {"receiver": "欧阳娜娜"}})])
    partner = Partner.objects.create(name="星河商城", code="xinghe")
    for target in (profile, old):
        AuditLog.objects.create(action="api_call", actor_kind="partner", partner=partner, actor_label=partner.name,
                                target=str(target.uuid), details={"method": "GET", "route": "api/v1/profiles/"})
    profile.refresh_from_db()
    return profile


NEEDLES = {"欧阳娜", "13912345678", "13787654321", "nana.ouyang@example.com", "nana.old@example.net", "CRM-NANA-7",
           "oWx_nana_openid", "198.51.100.23", "NanaPhone", "signup-nana-001"}


def erasure_request(profile):
    return data_request_create(kind="erasure", requester="欧阳娜娜 by phone", contact="13912345678", profile=profile,
                               actor=SYSTEM)


def test_the_scan_finds_the_person_everywhere_before_erasure(person):
    tables = {table for table, _column, _needle in personal_data_left(NEEDLES)}
    assert {"profiles_profile", "profiles_identity", "profiles_event", "profiles_profileactivity",
            "profiles_profilemerge", "profiles_importchange", "consent_consentrecord", "consent_donotcontact",
            "consent_datasubjectrequest", "django_admin_log", "profiles_importrowerror", "profiles_collectlog"} <= tables


def test_erasure_leaves_no_personal_data_behind(person, eraser):
    request = erasure_request(person)
    uuid = person.uuid
    ledger_before = ConsentRecord.objects.count()

    result = profile_erase(profile=person, request=request, actor=Actor.staff(eraser))

    assert personal_data_left(NEEDLES) == set()
    person.refresh_from_db()
    assert person.uuid == uuid and person.status == "erased"
    assert (person.name, person.phone, person.email, person.birth_date, person.city, person.traits) == (
        "", "", "", None, "", {})
    assert person.order_count == 0 and person.total_spent == 0 and person.rfm_monetary is None
    ids = [person.pk, *Profile.objects.filter(merged_into=person).values_list("pk", flat=True)]
    for model in (Event, Identity, ProfileTag, SegmentMembership):
        assert not model.objects.filter(profile_id__in=ids).exists(), model
    timeline = ProfileActivity.objects.filter(profile_id__in=ids)
    assert [(a.type, a.params["kind"], a.params["status"]) for a in timeline] == [("dsar", "erasure", "completed")]
    request.refresh_from_db()
    assert request.status == "completed" and request.completed_at and request.handled_by == eraser
    assert result["suppressed"] == 6 and result["partners_notified"] == ["星河商城"]
    assert list(ImportRowError.objects.values_list("row_number", flat=True)) == [5]  # someone else's


def test_ledger_rows_are_kept_and_pseudonymised(person, eraser):
    ids = list(ConsentRecord.objects.order_by("pk").values_list("pk", "purpose__code", "status", "captured_at"))
    profile_erase(profile=person, request=erasure_request(person), actor=Actor.staff(eraser))
    kept = ConsentRecord.objects.order_by("pk")
    assert list(kept.values_list("pk", "purpose__code", "status", "captured_at")) == ids
    assert all(r.pseudonymised and r.evidence_ip is None and not r.evidence_user_agent and not r.evidence_reference
               and not r.evidence_text for r in kept)


def test_suppression_keeps_the_erased_identifiers_out(person, eraser):
    request = erasure_request(person)
    profile_erase(profile=person, request=request, actor=Actor.staff(eraser))
    expected = {("phone", "+8613912345678"), ("phone", "+8613787654321"), ("email", "nana.ouyang@example.com"),
                ("email", "nana.old@example.net"), ("crm_id", "CRM-NANA-7"), ("wechat_openid", "oWx_nana_openid")}
    assert set(Suppression.objects.values_list("digest", "request_id")) == {
        (identifier_digest(*p), request.pk) for p in expected}
    assert suppressed_among(sorted(expected) + [("crm_id", "SOMEONE-ELSE")]) == expected
    with pytest.raises(ValidationError) as error:  # raw input, normalised before the look-up
        identities_refuse_suppressed({"phone": "139 1234 5678", "email": "Nana.Old@Example.NET "},
                                     [("crm_id", "CRM-NANA-7")])
    assert {field: [e.code for e in errors] for field, errors in error.value.error_dict.items()} == {
        "phone": ["suppressed"], "email": ["suppressed"], "identities": ["suppressed"]}
    identities_refuse_suppressed({"phone": "13800138000", "email": "not an email"})  # nobody erased: no error


def test_the_suppressed_identifiers_page_lists_hashes_with_their_request(person, eraser, admin_client):
    request = erasure_request(person)
    profile_erase(profile=person, request=request, actor=Actor.staff(eraser))
    response = admin_client.get(reverse("admin:consent_suppression_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert identifier_digest("phone", "+8613912345678") in page and "+8613912345678" not in page
    assert reverse("admin:consent_datasubjectrequest_change", args=[request.pk]) in page
    DataSubjectRequest.objects.filter(pk=request.pk).delete()  # the hashes stay, with the request's id
    assert Suppression.objects.filter(request_id=request.pk).count() == 6
    assert f"#{request.pk}" in admin_client.get(reverse("admin:consent_suppression_changelist")).content.decode()


def test_each_partner_that_received_the_data_is_notified_once(person, eraser):
    request = erasure_request(person)
    profile_erase(profile=person, request=request, actor=Actor.staff(eraser))
    notice = ErasureNotice.objects.get()
    assert notice.recipient == "星河商城" and notice.request == request and notice.sent_at is None
    assert notice.subject_digest == identifier_digest("uuid", str(person.uuid))


def test_erasure_is_audited_without_personal_data(person, eraser):
    profile_erase(profile=person, request=erasure_request(person), actor=Actor.staff(eraser))
    audit = AuditLog.objects.get(action="profile_erased")
    assert audit.target == str(person.uuid) and audit.actor_user == eraser and audit.count > 5
    assert audit.details["ledger_pseudonymised"] == 2 and audit.details["deleted"]["profiles.Event"] == 2


def test_erasure_needs_the_permission(person, staff_user, django_user_model):
    handler = django_user_model.objects.create_user(username="handler", is_staff=True)
    handler.user_permissions.add(Permission.objects.get(codename="change_datasubjectrequest"))
    request = erasure_request(person)
    for actor in (Actor.staff(django_user_model.objects.get(pk=handler.pk)), SYSTEM):
        with pytest.raises(PermissionDenied):
            profile_erase(profile=person, request=request, actor=actor)
    assert Profile.objects.get(pk=person.pk).name == "欧阳娜娜"


def test_a_merged_tombstone_cannot_be_erased_on_its_own(person, eraser):
    tombstone = Profile.objects.get(merged_into=person)
    request = data_request_create(kind="erasure", requester="x", profile=tombstone, actor=SYSTEM)
    with pytest.raises(ValidationError) as error:
        profile_erase(profile=tombstone, request=request, actor=Actor.staff(eraser))
    assert error.value.code == "erase_merged_profile"
    # The survivor can be erased under the request naming the tombstone: the same person.
    profile_erase(profile=person, request=request, actor=Actor.staff(eraser))
    assert Profile.objects.get(pk=person.pk).status == "erased"


def test_erasure_needs_an_open_erasure_request_and_happens_once(person, eraser):
    access = data_request_create(kind="access", requester="x", profile=person, actor=SYSTEM)
    with pytest.raises(ValidationError) as error:
        profile_erase(profile=person, request=access, actor=Actor.staff(eraser))
    assert error.value.code == "erasure_request_required"
    profile_erase(profile=person, request=erasure_request(person), actor=Actor.staff(eraser))
    with pytest.raises(ValidationError) as error:
        profile_erase(profile=person, request=erasure_request(person), actor=Actor.staff(eraser))
    assert error.value.code == "already_erased"


def test_the_preview_counts_what_will_go(person):
    preview = erasure_preview(person)
    assert preview["profiles"] == 2 and preview["ledger_rows"] == 2 and preview["identifiers"] == 6
    assert preview["partners"] == ["星河商城"]
    assert sum(preview["deleted"].values()) >= 2 + 3 + 1 + 1  # events, identities, tag, membership …


def test_the_admin_confirms_with_the_name_before_erasing(client, person, eraser):
    request = erasure_request(person)
    url = reverse("admin:consent_datasubjectrequest_erase", args=[request.pk])
    client.force_login(eraser)
    change = client.get(reverse("admin:consent_datasubjectrequest_change", args=[request.pk]))
    assert url in change.text
    page = client.get(url)
    assert page.status_code == 200 and "erasure-preview" in page.text
    wrong = client.post(url, {"confirmation": "欧阳"})
    assert wrong.status_code == 200 and wrong.context["form"].errors
    assert Profile.objects.get(pk=person.pk).status == "active"
    assert client.post(url, {"confirmation": "欧阳娜娜"}).status_code == 302
    assert Profile.objects.get(pk=person.pk).status == "erased"


def test_the_admin_erase_page_needs_the_permission(client, person, django_user_model):
    handler = django_user_model.objects.create_user(username="handler", is_staff=True)
    handler.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_datasubjectrequest", "change_datasubjectrequest"]))
    request = erasure_request(person)
    client.force_login(handler)
    change = client.get(reverse("admin:consent_datasubjectrequest_change", args=[request.pk]))
    url = reverse("admin:consent_datasubjectrequest_erase", args=[request.pk])
    assert change.status_code == 200 and url not in change.text
    assert client.post(url, {"confirmation": str(person.uuid)}).status_code == 403
    assert Profile.objects.get(pk=person.pk).status == "active"


@pytest.mark.postgres
def test_the_database_lets_erasure_pseudonymise_but_refuses_any_other_change(person, eraser):
    profile_erase(profile=person, request=erasure_request(person), actor=Actor.staff(eraser))
    row = ConsentRecord.objects.order_by("pk").first()
    assert row.pseudonymised
    # Erasure switched cdp.erasure off again: the rest of the transaction is guarded.
    for statement in ("UPDATE consent_consentrecord SET status = 'granted' WHERE id = %s",
                      "DELETE FROM consent_consentrecord WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement, [row.pk])
    assert ConsentRecord.objects.filter(pk=row.pk, status=row.status).exists()
