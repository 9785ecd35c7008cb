"""On PostgreSQL the database itself holds the ledger, the audit log and the current
states to their rules, whatever connection asks: proven here with raw SQL from a second
connection, on committed rows."""
import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from cdp.actors import Actor
from cdp.audit import audit_record
from consent.models import ConsentRecord, ConsentState
from consent.services import consent_record
from profiles.models import Profile
from tests.factories import ProfileFactory

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("seeded_transactional_db")]
SYSTEM = Actor.system("test")


def other_connection() -> psycopg.Connection:
    """A connection of its own to the test database (not Django's), autocommitting."""
    settings = connection.settings_dict
    return psycopg.connect(dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
                           host=settings["HOST"] or None, port=settings["PORT"] or None, autocommit=True)


def refused(statements: list[str], params=()) -> str:
    """Run the statements in one transaction of the other connection; the error it ends with."""
    with other_connection() as conn:
        with pytest.raises(psycopg.Error) as error:
            with conn.transaction(), conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement, params if "%s" in statement else ())
    return str(error.value)


@pytest.fixture
def entry():
    profile = ProfileFactory(name="王芳")
    return consent_record(profile=profile, purpose_code="email_marketing", status="withdrawn", source="web_form",
                          actor=SYSTEM, evidence={"ip": "198.51.100.7", "text": "form 7", "reference": "f-7"})


ERASURE_ON = "SET LOCAL cdp.erasure = 'on'"


@pytest.mark.parametrize("change", [
    "status = 'granted'",
    "captured_at = captured_at - interval '1 day'",
    "notice_version = 2",
    "purpose_id = (SELECT id FROM consent_purpose WHERE code = 'sms_marketing')",
    "source = 'admin', evidence_text = '', evidence_ip = NULL, evidence_reference = '', pseudonymised = true",
])
def test_switching_erasure_on_does_not_let_anyone_rewrite_the_ledger(entry, change):
    """Even on an erased customer's row, only the evidence may be cleared."""
    Profile.objects.filter(pk=entry.profile_id).update(status="erased")
    error = refused([ERASURE_ON, f"UPDATE consent_consentrecord SET {change} WHERE id = %s"], [entry.pk])
    assert "append-only" in error
    kept = ConsentRecord.objects.get(pk=entry.pk)
    assert (kept.status, kept.captured_at, kept.source, kept.evidence_text) == (
        entry.status, entry.captured_at, entry.source, "form 7")


def test_switching_erasure_on_does_not_let_anyone_clear_a_living_customers_evidence(entry):
    error = refused([ERASURE_ON, "UPDATE consent_consentrecord SET evidence_text = '', evidence_ip = NULL, "
                                 "evidence_reference = '', pseudonymised = true WHERE id = %s"], [entry.pk])
    assert "append-only" in error
    assert ConsentRecord.objects.get(pk=entry.pk).evidence_text == "form 7"


def test_erasure_may_clear_the_evidence_of_an_erased_customer_and_nothing_else(entry):
    Profile.objects.filter(pk=entry.profile_id).update(status="erased")
    with other_connection() as conn, conn.transaction(), conn.cursor() as cursor:
        cursor.execute(ERASURE_ON)
        cursor.execute("UPDATE consent_consentrecord SET evidence_text = '', evidence_ip = NULL, "
                       "evidence_user_agent = '', evidence_reference = '', pseudonymised = true WHERE id = %s",
                       [entry.pk])
    kept = ConsentRecord.objects.get(pk=entry.pk)
    assert kept.pseudonymised and (kept.evidence_text, kept.evidence_ip, kept.status) == ("", None, "withdrawn")


@pytest.mark.parametrize("statement", [
    "TRUNCATE consent_consentrecord CASCADE",
    "TRUNCATE cdp_auditlog",
    "DELETE FROM consent_consentrecord",
    "DELETE FROM cdp_auditlog",
])
def test_the_ledger_and_the_audit_log_cannot_be_emptied(entry, statement):
    audit_record(actor=SYSTEM, action="api_call", target="x")
    assert "append-only" in refused([statement])
    assert ConsentRecord.objects.filter(pk=entry.pk).exists() and ConsentState.objects.exists()


def test_a_state_cannot_say_granted_without_a_grant_on_record(entry):
    state = ConsentState.objects.get(profile_id=entry.profile_id)
    assert "must copy its ledger entry" in refused(
        ["UPDATE consent_consentstate SET status = 'granted' WHERE id = %s"], [state.pk])
    assert ConsentState.objects.get(pk=state.pk).status == "withdrawn"


def test_flush_still_empties_a_test_database(entry):
    """Transactional tests flush with TRUNCATE: as a superuser, past the guards."""
    call_command("flush", interactive=False, verbosity=0)
    assert not ConsentRecord.objects.exists() and not Profile.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"  # the guards are back for the rest of the session
