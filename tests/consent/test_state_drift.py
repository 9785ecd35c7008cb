"""The current consent states are provably derived from the ledger: a set-based check
recomputes them and reports drift (nightly, and by manage.py consent_check_state), and
--repair rewrites them from the ledger with an audit row."""
import datetime

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone, translation

from cdp.actors import Actor
from cdp.models import AuditLog
from consent.models import ConsentRecord, ConsentState, Purpose
from consent.selectors import consent_state_drift
from consent.services import consent_record, consent_states_repair
from consent.tasks import check_consent_state
from profiles.services.merge import profiles_merge
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
STATE_DRIFT_ON_PURPOSE = True  # tests/consent/conftest.py: no drift check after these tests
SYSTEM = Actor.system("test")
HOUR = datetime.timedelta(hours=1)


def record(profile, status="granted", purpose="email_marketing", **kwargs):
    return consent_record(profile=profile, purpose_code=purpose, status=status, source="admin", actor=SYSTEM, **kwargs)


def drift() -> list[tuple[str, int, str]]:
    codes = dict(Purpose.objects.values_list("pk", "code"))
    return [(d.kind, d.profile_id, codes[d.purpose_id]) for d in consent_state_drift()]


@pytest.fixture
def customers():
    """Two customers with a history, one merged into the other, and a back-filled entry."""
    now = timezone.now()
    anna, bo, old = ProfileFactory(), ProfileFactory(), ProfileFactory()
    grant = record(anna, captured_at=now - 3 * HOUR)
    record(anna, "withdrawn", captured_at=now - 2 * HOUR)
    record(anna, "granted", captured_at=now - 5 * HOUR)  # back-filled paper form: the state stays withdrawn
    record(bo, "denied", purpose="sms_marketing", captured_at=now - 4 * HOUR)
    record(old, "granted", purpose="sms_marketing", captured_at=now - HOUR)
    profiles_merge(survivor=bo, merged=old, actor=SYSTEM)
    return anna, bo, grant


def test_states_written_by_the_services_match_the_ledger(customers):
    anna, bo, _grant = customers
    assert drift() == []
    assert ConsentState.objects.get(profile=bo, purpose__code="sms_marketing").status == "granted"  # merged in


def test_a_state_pointing_at_an_older_entry_is_reported(customers):
    anna, _bo, grant = customers
    # Someone rewrote the state around the services: a faithful copy of an entry, but not the latest one.
    ConsentState.objects.filter(profile=anna).update(status=grant.status, captured_at=grant.captured_at, record=grant)
    assert drift() == [("different", anna.pk, "email_marketing")]


def test_a_missing_and_an_unexpected_state_are_reported(customers):
    anna, bo, grant = customers
    ConsentState.objects.filter(profile=bo).delete()
    # A state for a purpose nobody recorded for the customer (copying someone else's entry).
    ConsentState.objects.create(profile=bo, purpose=grant.purpose, status=grant.status, captured_at=grant.captured_at,
                                notice_version=grant.notice_version, record=grant)
    assert drift() == [("unexpected", bo.pk, "email_marketing"), ("missing", bo.pk, "sms_marketing")] or drift() == [
        ("missing", bo.pk, "sms_marketing"), ("unexpected", bo.pk, "email_marketing")]


def test_repair_rewrites_the_states_from_the_ledger_and_audits_it(customers):
    anna, bo, grant = customers
    expected = set(ConsentState.objects.values_list("profile_id", "purpose_id", "status", "record_id"))
    ConsentState.objects.filter(profile=anna).update(status=grant.status, captured_at=grant.captured_at, record=grant)
    ConsentState.objects.filter(profile=bo).delete()
    ConsentState.objects.create(profile=bo, purpose=grant.purpose, status=grant.status, captured_at=grant.captured_at,
                                notice_version=grant.notice_version, record=grant)

    counts = consent_states_repair(actor=SYSTEM)

    assert counts == {"missing": 1, "different": 1, "unexpected": 1}
    assert drift() == []
    assert set(ConsentState.objects.values_list("profile_id", "purpose_id", "status", "record_id")) == expected
    audit = AuditLog.objects.get(action="consent_state_repaired")
    assert audit.count == 3 and audit.details["profiles"] == sorted([anna.pk, bo.pk])
    assert consent_states_repair(actor=SYSTEM) == {"missing": 0, "different": 0, "unexpected": 0}
    assert AuditLog.objects.filter(action="consent_state_repaired").count() == 1


def test_an_erased_customer_has_no_states():
    profile = ProfileFactory()
    entry = record(profile)
    type(profile).objects.filter(pk=profile.pk).update(status="erased")
    assert drift() == [("unexpected", profile.pk, "email_marketing")]
    consent_states_repair(actor=SYSTEM)
    assert not ConsentState.objects.filter(profile=profile).exists()
    assert ConsentRecord.objects.filter(pk=entry.pk).exists()  # the ledger is never touched


def test_the_check_costs_two_queries_whatever_the_number_of_customers(customers, django_assert_num_queries):
    for _ in range(5):
        record(ProfileFactory())
    with django_assert_num_queries(2):
        consent_state_drift()


@translation.override("en")
def test_the_command_reports_drift_and_repairs_on_request(customers, capsys):
    anna, _bo, grant = customers
    call_command("consent_check_state")
    assert "matches the ledger" in capsys.readouterr().out
    ConsentState.objects.filter(profile=anna).update(status=grant.status, captured_at=grant.captured_at, record=grant)
    with pytest.raises(CommandError, match="--repair"):
        call_command("consent_check_state")
    assert f"different: customer #{anna.pk}" in capsys.readouterr().out
    call_command("consent_check_state", "--repair")
    assert "1 different" in capsys.readouterr().out
    assert drift() == []


def test_the_nightly_task_reports_drift(customers, caplog):
    anna, _bo, grant = customers
    assert settings.CELERY_BEAT_SCHEDULE["check-consent-state"]["task"] == "consent.tasks.check_consent_state"
    assert check_consent_state.delay().get() == 0
    ConsentState.objects.filter(profile=anna).update(status=grant.status, captured_at=grant.captured_at, record=grant)
    assert check_consent_state.delay().get() == 1
    assert "differ from the ledger" in caplog.text
    assert ConsentState.objects.get(profile=anna).record == grant  # reported, not repaired behind anyone's back


@pytest.mark.postgres
def test_on_postgresql_a_state_must_copy_its_ledger_entry(customers):
    anna, _bo, grant = customers
    state = ConsentState.objects.get(profile=anna)
    for statement, params in (
        ("UPDATE consent_consentstate SET status = 'granted' WHERE id = %s", [state.pk]),  # the entry says withdrawn
        ("UPDATE consent_consentstate SET record_id = %s WHERE id = %s", [grant.pk, state.pk]),
        ("UPDATE consent_consentstate SET expires_at = now() WHERE id = %s", [state.pk]),
    ):
        with pytest.raises(Exception, match="must copy its ledger entry"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
    assert ConsentState.objects.get(pk=state.pk).status == "withdrawn"


def test_the_command_speaks_the_admins_language(customers, capsys):
    with translation.override("zh-hans"):
        call_command("consent_check_state")
    assert "所有当前同意状态均与同意台账一致" in capsys.readouterr().out
