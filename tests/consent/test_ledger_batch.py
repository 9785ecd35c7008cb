"""The set-based ledger write (consent.ledger_batch, taken by consent_record_many from
SET_BASED_FROM entries) records exactly what the ORM path records: the same ledger, the
same current states (a later entry wins only if it is newer, also against the states
already there), timeline and audit rows; and a re-import through it writes nothing twice."""
import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.actors import Actor
from cdp.models import AuditLog
from consent import services
from consent.models import ConsentRecord, ConsentState, Purpose
from consent.services import ConsentEntry, consent_record_many
from profiles.importing.jobs import import_job_create
from profiles.importing.pipeline import import_run
from profiles.models import Profile, ProfileActivity
from tests.factories import IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("batch test")
ANCHOR = timezone.now().replace(microsecond=0) - datetime.timedelta(days=400)
PURPOSES = ["email_marketing", "sms_marketing", "analytics"]

entry = st.tuples(
    st.integers(0, 2),  # which of the three customers
    st.sampled_from(PURPOSES),
    st.sampled_from(["granted", "denied", "withdrawn"]),
    st.integers(0, 60),  # capture day after the anchor: out of order, with ties
    st.one_of(st.none(), st.integers(1, 90)),  # expires that many days after capture
    st.booleans(),  # guardian
    st.sampled_from([{}, {"channel": "sms", "reference": "form 7"}, {"ip": "10.0.0.1", "text": "签字"}]),
)


def _entries(customers, drawn):
    return [ConsentEntry(profile=customers[who], purpose_code=purpose, status=status, source="import",
                         captured_at=ANCHOR + datetime.timedelta(days=day),
                         expires_at=ANCHOR + datetime.timedelta(days=day + expires) if expires else None,
                         guardian_consent=guardian, evidence=evidence)
            for who, purpose, status, day, expires, guardian, evidence in drawn]


def _recorded(customers, drawn, *, set_based: bool, monkeypatch):
    monkeypatch.setattr(services, "SET_BASED_FROM", 1 if set_based else 10**9)
    return consent_record_many(_entries(customers, drawn), actor=SYSTEM)


def _seen(customers):
    """Everything recorded about the customers, in terms of their position in the list."""
    position = {customer.pk: n for n, customer in enumerate(customers)}
    records = list(ConsentRecord.objects.filter(profile__in=customers).select_related("purpose").order_by("pk"))
    order = {record.pk: n for n, record in enumerate(records)}
    ledger = [(position[r.profile_id], r.purpose.code, r.status, r.captured_at, r.notice_version, r.expires_at,
               r.guardian_consent, r.source, r.evidence_channel, r.evidence_ip, r.evidence_reference, r.evidence_text,
               r.actor_kind, r.actor_label) for r in records]
    states = sorted((position[s.profile_id], s.purpose.code, s.status, s.captured_at, s.expires_at, s.notice_version,
                     s.guardian_consent, order[s.record_id])
                    for s in ConsentState.objects.filter(profile__in=customers).select_related("purpose"))
    timeline = sorted((position[a.profile_id], sorted(a.params.items()), a.actor_kind, a.actor_label)
                      for a in ProfileActivity.objects.filter(profile__in=customers, type="consent_changed"))
    uuids = {str(customer.uuid): n for n, customer in enumerate(customers)}
    audit = sorted((uuids[a.target], a.details["purpose"], a.details["status"], a.details["source"],
                    order[a.details["record"]], a.count)
                   for a in AuditLog.objects.filter(action="consent_recorded", target__in=uuids))
    return ledger, states, timeline, audit


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(earlier=st.lists(entry, max_size=8), batch=st.lists(entry, min_size=1, max_size=30),
       minor=st.booleans())
def test_the_set_based_path_records_what_the_row_path_records(monkeypatch, earlier, batch, minor):
    # given two triples of customers alike (one a minor when drawn so), with the same earlier entries
    birth = timezone.localdate() - datetime.timedelta(days=365 * (10 if minor else 30))
    by_rows = [ProfileFactory(birth_date=birth if n == 0 else None) for n in range(3)]
    set_based = [ProfileFactory(birth_date=birth if n == 0 else None) for n in range(3)]
    _recorded(by_rows, earlier, set_based=False, monkeypatch=monkeypatch)
    _recorded(set_based, earlier, set_based=False, monkeypatch=monkeypatch)
    # when the same batch (out of order, with ties) is recorded by each path
    rows_results = _recorded(by_rows, batch, set_based=False, monkeypatch=monkeypatch)
    set_results = _recorded(set_based, batch, set_based=True, monkeypatch=monkeypatch)
    # then the outcomes, the ledger, the states, the timeline and the audit rows are the same
    assert [r.code if isinstance(r, ValidationError) else r.status for r in set_results] == [
        r.code if isinstance(r, ValidationError) else r.status for r in rows_results]
    assert _seen(set_based) == _seen(by_rows)
    # and the records handed back are the stored ones
    stored = ConsentRecord.objects.in_bulk([r.pk for r in set_results if isinstance(r, ConsentRecord)])
    assert all(stored[r.pk].status == r.status and stored[r.pk].captured_at == r.captured_at
               for r in set_results if isinstance(r, ConsentRecord))


def test_a_set_based_batch_keeps_invalid_entries_apart_and_hands_back_ids(monkeypatch):
    monkeypatch.setattr(services, "SET_BASED_FROM", 1)
    ann, merged = ProfileFactory(), ProfileFactory(status="merged", merged_into=ProfileFactory())
    child = ProfileFactory(birth_date=timezone.localdate() - datetime.timedelta(days=365 * 8))
    results = consent_record_many([
        ConsentEntry(profile=ann, purpose_code="email_marketing", status="granted", source="import"),
        ConsentEntry(profile=child, purpose_code="email_marketing", status="granted", source="import"),
        ConsentEntry(profile=merged, purpose_code="email_marketing", status="granted", source="import"),
        ConsentEntry(profile=ann, purpose_code="nonsense", status="granted", source="import"),
        ConsentEntry(profile=child, purpose_code="email_marketing", status="granted", source="import",
                     guardian_consent=True),
    ], actor=SYSTEM, as_ids=True)
    assert [r.code if isinstance(r, ValidationError) else type(r).__name__ for r in results] == [
        "int", "guardian_required", "profile_not_active", "unknown_purpose", "int"]
    assert set(ConsentRecord.objects.values_list("pk", flat=True)) == {results[0], results[4]}
    assert ConsentState.objects.get(profile=child).guardian_consent is True


def test_a_reimport_through_the_set_based_path_writes_nothing_twice(tmp_path):
    # given 60 customers and a consent file of 180 rows (taken set-based: more than SET_BASED_FROM)
    lines = ["手机,用途,同意状态,同意时间,凭证"]
    for n in range(60):
        phone = f"+86138{n:08d}"
        IdentityFactory(profile=ProfileFactory(phone=phone, birth_date=datetime.date(1990, 1, 1)), kind_id="phone",
                        value=phone)
        lines += [f"138{n:08d},email_marketing,同意,2024-03-0{1 + n % 5} 10:00,官网",
                  f"138{n:08d},email_marketing,撤回,2024-02-01 10:00,短信",  # older: joins the history only
                  f"138{n:08d},sms_marketing,拒绝,2024-04-01 10:00,门店"]
    assert len(lines) - 1 >= services.SET_BASED_FROM
    path = tmp_path / "consent.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def imported():
        job, _table = import_job_create(path=str(path), name="consent.csv", kind="consent", actor=SYSTEM)
        return import_run(job)

    first = imported()
    assert (first.created, first.failed) == (180, 0)
    written = (ConsentRecord.objects.count(), ConsentState.objects.count(),
               ProfileActivity.objects.filter(type="consent_changed").count(),
               AuditLog.objects.filter(action="consent_recorded").count())
    assert written == (180, 120, 180, 180)
    assert set(ConsentState.objects.filter(purpose__code="email_marketing").values_list("status", flat=True)) == {
        "granted"}
    # when the same file is imported again
    again = imported()
    # then every row is unchanged and nothing was written
    assert (again.created, again.unchanged, again.failed) == (0, 180, 0)
    assert (ConsentRecord.objects.count(), ConsentState.objects.count(),
            ProfileActivity.objects.filter(type="consent_changed").count(),
            AuditLog.objects.filter(action="consent_recorded").count()) == written


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the guard is a PostgreSQL trigger")
def test_the_database_refuses_states_that_do_not_copy_their_entry_however_many_in_one_statement():
    ann, bo = ProfileFactory(), ProfileFactory()
    grant = consent_record_many([ConsentEntry(profile=p, purpose_code="email_marketing", status="withdrawn",
                                              source="import") for p in (ann, bo)], actor=SYSTEM)
    ConsentState.objects.all().delete()
    sms = Purpose.objects.get(code="sms_marketing")
    columns = "(profile_id, purpose_id, status, notice_version, captured_at, expires_at, guardian_consent, record_id)"
    for wrong in ("'granted', r.notice_version", "r.status, 99"):  # a grant without one on record; another notice
        with pytest.raises(DatabaseError, match="must copy its ledger entry"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO consent_consentstate {columns} SELECT r.profile_id, r.purpose_id, {wrong}, "
                    "r.captured_at, r.expires_at, r.guardian_consent, r.id FROM consent_consentrecord r "
                    "WHERE r.id = ANY(%s)", [[g.pk for g in grant]])
    with pytest.raises(DatabaseError, match="must copy its ledger entry"), transaction.atomic():
        with connection.cursor() as cursor:  # an entry of another purpose
            cursor.execute(
                f"INSERT INTO consent_consentstate {columns} SELECT r.profile_id, %s, r.status, r.notice_version, "
                "r.captured_at, r.expires_at, r.guardian_consent, r.id FROM consent_consentrecord r "
                "WHERE r.id = ANY(%s)", [sms.pk, [g.pk for g in grant]])
    services.consent_states_rebuild(profile_id=ann.pk, ledger_ids=[ann.pk])
    services.consent_states_rebuild(profile_id=bo.pk, ledger_ids=[bo.pk])
    assert set(Profile.objects.filter(consent_states__status="withdrawn").values_list("pk", flat=True)) == {
        ann.pk, bo.pk}
