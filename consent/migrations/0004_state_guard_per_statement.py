"""On PostgreSQL, the check that a current state copies a ledger entry of its purpose (0003)
runs once per statement over the rows it wrote, instead of once per row: the same rule,
checked by one join of the written rows to the ledger. A batch of 50,000 entries upserts
tens of thousands of states in one statement, and the row trigger's PL/pgSQL call per row
was a third of that statement's time.

INSERT … ON CONFLICT DO UPDATE fires both triggers, each with its own rows.
"""
from django.db import migrations

STATEMENT_GUARD = """
DROP TRIGGER IF EXISTS consent_state_copies_ledger ON consent_consentstate;
DROP FUNCTION IF EXISTS consent_state_guard();

CREATE OR REPLACE FUNCTION consent_states_guard() RETURNS trigger AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM written s LEFT JOIN consent_consentrecord entry ON entry.id = s.record_id
        WHERE entry.id IS NULL OR entry.purpose_id <> s.purpose_id OR entry.status <> s.status
           OR entry.captured_at <> s.captured_at OR entry.notice_version IS DISTINCT FROM s.notice_version
           OR entry.expires_at IS DISTINCT FROM s.expires_at OR entry.guardian_consent <> s.guardian_consent)
    THEN
        RAISE EXCEPTION 'a consent state must copy its ledger entry: % refused', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_state_inserts_copy_ledger AFTER INSERT ON consent_consentstate
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION consent_states_guard();
CREATE TRIGGER consent_state_updates_copy_ledger AFTER UPDATE ON consent_consentstate
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION consent_states_guard();
"""

# Back to 0003's row trigger.
ROW_GUARD = """
DROP TRIGGER IF EXISTS consent_state_inserts_copy_ledger ON consent_consentstate;
DROP TRIGGER IF EXISTS consent_state_updates_copy_ledger ON consent_consentstate;
DROP FUNCTION IF EXISTS consent_states_guard();

CREATE OR REPLACE FUNCTION consent_state_guard() RETURNS trigger AS $$
DECLARE
    entry consent_consentrecord%ROWTYPE;
BEGIN
    SELECT * INTO entry FROM consent_consentrecord WHERE id = NEW.record_id;
    IF FOUND AND entry.purpose_id = NEW.purpose_id AND entry.status = NEW.status
       AND entry.captured_at = NEW.captured_at AND entry.notice_version IS NOT DISTINCT FROM NEW.notice_version
       AND entry.expires_at IS NOT DISTINCT FROM NEW.expires_at AND entry.guardian_consent = NEW.guardian_consent
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a consent state must copy its ledger entry: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_state_copies_ledger BEFORE INSERT OR UPDATE ON consent_consentstate
    FOR EACH ROW EXECUTE FUNCTION consent_state_guard();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STATEMENT_GUARD, params=None)  # no placeholders: keep RAISE's % as is


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ROW_GUARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("consent", "0003_ledger_guard_pseudonymise_only")]
    operations = [migrations.RunPython(forward, backward)]
