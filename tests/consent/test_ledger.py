import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from cdp.models import AuditLog
from consent.models import ConsentRecord, ConsentState, DoNotContact, LedgerIsAppendOnly, Purpose
from consent.selectors import consent_states, consenting_profiles, is_minor
from consent.services import consent_record, do_not_contact_add, do_not_contact_lift, notice_publish
from profiles.models import Profile, ProfileActivity
from profiles.services.merge import profiles_merge, profiles_unmerge
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
NOW = timezone.now()


def record(profile, status="granted", purpose="email_marketing", **kwargs):
    return consent_record(profile=profile, purpose_code=purpose, status=status, source="admin", actor=SYSTEM, **kwargs)


def allowed(purpose="email_marketing", now=None):
    return set(consenting_profiles(Profile.objects.all(), purpose, now=now).values_list("pk", flat=True))


def test_seeded_purposes_have_a_first_notice():
    purposes = {p.code: p for p in Purpose.objects.prefetch_related("notices")}
    assert {"email_marketing", "sms_marketing", "wechat_marketing", "analytics", "cross_border_eu"} <= set(purposes)
    assert all(p.notices.filter(version=1).exists() for p in purposes.values())
    assert purposes["cross_border_eu"].recipient and purposes["cross_border_eu"].recipient_country == "DE"


def test_grant_then_withdraw_writes_ledger_state_timeline_and_audit():
    profile = ProfileFactory()
    record(profile, evidence={"channel": "email", "reference": "web-form-7"})
    assert allowed() == {profile.pk}
    record(profile, "withdrawn")
    assert allowed() == set()
    assert list(ConsentRecord.objects.filter(profile=profile).order_by("id").values_list("status", flat=True)) == [
        "granted", "withdrawn"]
    state = ConsentState.objects.get(profile=profile)
    assert state.status == "withdrawn" and state.notice_version == 1
    assert ProfileActivity.objects.filter(profile=profile, type="consent_changed").count() == 2
    assert AuditLog.objects.filter(action="consent_recorded", target=str(profile.uuid)).count() == 2


def test_unknown_means_not_granted_but_legitimate_interest_counts_until_objection():
    profile = ProfileFactory()
    assert allowed() == set()
    assert allowed("analytics") == {profile.pk}
    record(profile, "denied", purpose="analytics")
    assert allowed("analytics") == set()


def test_a_backfilled_older_entry_joins_history_without_overriding_the_state():
    profile = ProfileFactory()
    record(profile, "granted", captured_at=NOW - datetime.timedelta(days=1))
    record(profile, "withdrawn", captured_at=NOW - datetime.timedelta(days=30))
    assert ConsentState.objects.get(profile=profile).status == "granted" and allowed() == {profile.pk}


def test_many_entries_are_recorded_together_each_valid_one_and_the_errors_kept_apart(
        django_assert_max_num_queries):
    from consent.services import ConsentEntry, consent_record_many

    ann, bo, merged = ProfileFactory(), ProfileFactory(), ProfileFactory(status="merged", merged_into=ProfileFactory())
    day = datetime.timedelta(days=1)
    entries = [
        ConsentEntry(profile=ann, purpose_code="email_marketing", status="granted", source="import",
                     captured_at=NOW - 3 * day),
        ConsentEntry(profile=ann, purpose_code="email_marketing", status="withdrawn", source="import",
                     captured_at=NOW - day),
        # back-filled: older than the withdrawal, so it joins the history only
        ConsentEntry(profile=ann, purpose_code="email_marketing", status="granted", source="import",
                     captured_at=NOW - 10 * day),
        ConsentEntry(profile=bo, purpose_code="nonsense", status="granted", source="import"),
        ConsentEntry(profile=bo, purpose_code="sms_marketing", status="granted", source="import", notice_version=99),
        ConsentEntry(profile=merged, purpose_code="sms_marketing", status="granted", source="import"),
        ConsentEntry(profile=bo, purpose_code="sms_marketing", status="granted", source="import"),
    ]
    with django_assert_max_num_queries(12):  # a fixed number of statements, however many entries
        results = consent_record_many(entries, actor=SYSTEM)
    assert [r.code if isinstance(r, ValidationError) else r.status for r in results] == [
        "granted", "withdrawn", "granted", "unknown_purpose", "unknown_notice", "profile_not_active", "granted"]
    assert ConsentState.objects.get(profile=ann).status == "withdrawn"
    assert ConsentState.objects.get(profile=ann).record == results[1]
    assert ConsentState.objects.get(profile=bo).status == "granted" and allowed("sms_marketing") == {bo.pk}
    assert ProfileActivity.objects.filter(type="consent_changed").count() == 4
    assert AuditLog.objects.filter(action="consent_recorded").count() == 4
    # Later entries still go through the same state rule.
    record(ann, "granted", captured_at=NOW - 2 * day)  # older than the withdrawal
    assert ConsentState.objects.get(profile=ann).status == "withdrawn"


def test_an_import_sized_batch_of_entries_is_recorded_in_one_call():
    from consent.services import ConsentEntry, consent_record_many

    profiles = Profile.objects.bulk_create([Profile(name=f"客户{n}") for n in range(1500)])
    entries = [ConsentEntry(profile=p, purpose_code="email_marketing", status="granted", source="import")
               for p in profiles]
    results = consent_record_many(entries, actor=SYSTEM)
    assert all(isinstance(r, ConsentRecord) for r in results)
    assert ConsentState.objects.filter(status="granted").count() == 1500
    consent_record_many([ConsentEntry(profile=p, purpose_code="email_marketing", status="withdrawn",
                                      source="import") for p in profiles], actor=SYSTEM)
    assert ConsentState.objects.filter(status="withdrawn").count() == 1500 and allowed() == set()


def test_expiry_is_honoured_at_query_time():
    profile = ProfileFactory()
    record(profile, expires_at=NOW + datetime.timedelta(days=10))
    assert allowed(now=NOW) == {profile.pk}
    assert allowed(now=NOW + datetime.timedelta(days=11)) == set()


def test_a_notice_requiring_reconsent_voids_older_grants():
    old, new = ProfileFactory(), ProfileFactory()
    record(old)
    purpose = Purpose.objects.get(code="email_marketing")
    notice_publish(purpose=purpose, text_zh="新的说明", requires_reconsent=True, actor=SYSTEM)
    record(new)
    assert allowed() == {new.pk}
    row = next(r for r in consent_states(old) if r.purpose.code == "email_marketing")
    assert not row.allowed and "v2" in row.reason


def test_a_notice_without_reconsent_keeps_older_grants():
    profile = ProfileFactory()
    record(profile)
    notice_publish(purpose=Purpose.objects.get(code="email_marketing"), text_zh="措辞调整", actor=SYSTEM)
    assert allowed() == {profile.pk}


def test_do_not_contact_beats_a_grant_on_its_channel_only():
    profile = ProfileFactory()
    record(profile)
    record(profile, purpose="sms_marketing")
    entry = do_not_contact_add(profile=profile, channel="email", reason="unsubscribed", actor=SYSTEM)
    assert allowed() == set() and allowed("sms_marketing") == {profile.pk}
    # an import or the API cannot lift it; staff can, with a reason
    with pytest.raises(ValidationError):
        do_not_contact_lift(entry=entry, actor=SYSTEM, reason="re-import")
    with pytest.raises(ValidationError):
        do_not_contact_lift(entry=entry, actor=Actor(kind="staff", label="li"), reason=" ")
    do_not_contact_lift(entry=entry, actor=Actor(kind="staff", label="li"), reason="subscribed again")
    assert allowed() == {profile.pk}
    assert DoNotContact.objects.filter(profile=profile).count() == 1  # kept as history


def test_adding_an_active_block_twice_keeps_the_first():
    profile = ProfileFactory()
    first = do_not_contact_add(profile=profile, channel="sms", reason="complaint", actor=SYSTEM)
    again = do_not_contact_add(profile=profile, channel="sms", reason="manual", actor=SYSTEM)
    assert again.pk == first.pk and again.reason == "complaint"


@pytest.mark.parametrize("birth, today, minor", [
    (datetime.date(2010, 6, 1), datetime.date(2024, 5, 31), True),
    (datetime.date(2010, 6, 1), datetime.date(2024, 6, 1), False),  # the 14th birthday itself
    (datetime.date(2008, 2, 29), datetime.date(2022, 2, 28), True),  # leap-day born: not yet in a common year
    (datetime.date(2008, 2, 29), datetime.date(2022, 3, 1), False),
    (datetime.date(2008, 2, 29), datetime.date(2024, 2, 29), False),
    (None, datetime.date(2024, 1, 1), False),
])
def test_minor_boundary_is_the_exact_14th_birthday(birth, today, minor):
    assert is_minor(Profile(birth_date=birth), today) is minor


def test_a_minor_needs_a_guardian_grant():
    today = timezone.localdate()
    child = ProfileFactory(birth_date=today.replace(year=today.year - 10))
    with pytest.raises(ValidationError) as caught:
        record(child)
    assert caught.value.code == "guardian_required"
    record(child, guardian_consent=True)
    assert allowed() == {child.pk}


def test_bad_input_is_a_coded_validation_error():
    profile = ProfileFactory()
    for kwargs, code in [
        ({"purpose": "nope"}, "unknown_purpose"),
        ({"status": "maybe"}, "invalid_status"),
        ({"notice_version": 9}, "unknown_notice"),
        ({"captured_at": NOW + datetime.timedelta(days=1)}, "captured_in_future"),
        ({"expires_at": NOW - datetime.timedelta(days=1)}, "expiry_before_capture"),
        ({"evidence": {"colour": "red"}}, "invalid_evidence"),
    ]:
        with pytest.raises(ValidationError) as caught:
            record(profile, **kwargs)
        assert caught.value.code == code
    assert not ConsentRecord.objects.exists()


def test_the_application_refuses_to_change_or_delete_ledger_rows():
    entry = record(ProfileFactory())
    entry.status = "withdrawn"
    with pytest.raises(LedgerIsAppendOnly):
        entry.save()
    with pytest.raises(LedgerIsAppendOnly):
        entry.delete()
    with pytest.raises(LedgerIsAppendOnly):
        ConsentRecord.objects.filter(pk=entry.pk).update(status="withdrawn")
    with pytest.raises(LedgerIsAppendOnly):
        ConsentRecord.objects.all().delete()


@pytest.mark.postgres
def test_the_database_refuses_to_change_or_delete_ledger_rows():
    entry = record(ProfileFactory())
    for sql in ("UPDATE consent_consentrecord SET status = 'withdrawn' WHERE id = %s",
                "DELETE FROM consent_consentrecord WHERE id = %s"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])


def test_merge_derives_the_survivors_state_from_both_ledgers_and_unmerge_restores():
    older, newer = ProfileFactory(), ProfileFactory()
    record(older, "withdrawn", captured_at=NOW - datetime.timedelta(days=5))
    record(newer, "granted", captured_at=NOW - datetime.timedelta(days=1))
    do_not_contact_add(profile=newer, channel="sms", reason="bounced", actor=SYSTEM)
    merge = profiles_merge(survivor=older, merged=newer, actor=SYSTEM)
    assert allowed() == {older.pk}
    assert DoNotContact.objects.get().profile_id == older.pk
    assert ConsentRecord.objects.filter(profile=newer).count() == 1  # the ledger never moves
    profiles_unmerge(merge=merge, actor=SYSTEM)
    assert allowed() == {newer.pk}
    assert DoNotContact.objects.get().profile_id == newer.pk


def test_profile_page_shows_consent_and_staff_record_and_withdraw(client, staff_user):
    profile = ProfileFactory()
    client.force_login(staff_user)
    page = client.get(reverse("admin:profiles_profile_change", args=[profile.pk]))
    assert page.status_code == 200 and 'id="consent"' in page.content.decode()
    url = reverse("admin:consent_consentrecord_record", args=[profile.uuid])
    response = client.post(url, {"purpose": "email_marketing", "status": "granted", "source": "paper",
                                 "evidence_reference": "纸质表 0042"})
    assert response.status_code == 302
    assert ConsentRecord.objects.get().evidence_reference == "纸质表 0042"
    assert client.get(url + "?purpose=email_marketing&status=withdrawn").status_code == 200
    client.post(url, {"purpose": "email_marketing", "status": "withdrawn", "source": "admin"})
    assert allowed() == set()
    page = client.get(reverse("admin:profiles_profile_change", args=[profile.pk])).content.decode()
    assert "纸质表 0042" in page


def test_recording_for_a_minor_without_guardian_shows_the_error_in_the_form(client, staff_user):
    today = timezone.localdate()
    child = ProfileFactory(birth_date=today.replace(year=today.year - 9))
    client.force_login(staff_user)
    response = client.post(reverse("admin:consent_consentrecord_record", args=[child.uuid]),
                           {"purpose": "email_marketing", "status": "granted", "source": "admin"})
    assert response.status_code == 200 and "guardian" in response.content.decode().lower() or "监护人" in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_do_not_contact_and_lift_from_the_admin(client, staff_user):
    profile = ProfileFactory()
    client.force_login(staff_user)
    client.post(reverse("admin:consent_donotcontact_add_for", args=[profile.uuid]),
                {"channel": "sms", "reason": "complaint", "note": "打电话投诉"})
    entry = DoNotContact.objects.get()
    response = client.post(reverse("admin:consent_donotcontact_lift", args=[entry.pk]), {"lift_reason": "重新订阅"})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.lifted_at and entry.lifted_by == staff_user.username


def test_ledger_admin_is_read_only(client, staff_user):
    record(ProfileFactory())
    client.force_login(staff_user)
    assert client.get(reverse("admin:consent_consentrecord_changelist")).status_code == 200
    assert client.get(reverse("admin:consent_consentrecord_add")).status_code == 403
