"""On PostgreSQL, tighter guards on the consent ledger and its current state.

* The ledger's trigger lets an UPDATE through only as erasure's pseudonymisation: with
  cdp.erasure on in the transaction, of a row whose customer (or the customer it was
  merged into) is already erased, changing nothing but the evidence columns, and those
  only to blank. Any connection can switch cdp.erasure on; all it could then do is what
  erasure does to an erased person's rows. Status, capture time, purpose, notice version
  and every other column stay as recorded.
* TRUNCATE of the ledger is refused (a row trigger never sees it).
* A current state must copy a ledger entry of its purpose (status, capture time, notice
  version, expiry, guardian consent): it cannot say "granted" without a grant on record.
  That it copies the *latest* entry is checked by consent_check_state (nightly).
"""
from django.db import migrations

LEDGER_GUARD = """
CREATE OR REPLACE FUNCTION consent_ledger_guard() RETURNS trigger AS $$
DECLARE
    evidence CONSTANT text[] := ARRAY['evidence_ip', 'evidence_user_agent', 'evidence_reference', 'evidence_text',
                                      'pseudonymised'];
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('cdp.erasure', true) = 'on'
       AND to_jsonb(NEW) - evidence = to_jsonb(OLD) - evidence
       AND NEW.pseudonymised AND NEW.evidence_ip IS NULL AND NEW.evidence_user_agent = ''
       AND NEW.evidence_reference = '' AND NEW.evidence_text = ''
       AND EXISTS (
           WITH RECURSIVE chain(id, status, merged_into_id) AS (
               SELECT id, status, merged_into_id FROM profiles_profile WHERE id = NEW.profile_id
               UNION
               SELECT p.id, p.status, p.merged_into_id FROM profiles_profile p JOIN chain ON p.id = chain.merged_into_id
           )
           SELECT 1 FROM chain WHERE status = 'erased')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION consent_forbid_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON consent_consentrecord
    FOR EACH STATEMENT EXECUTE FUNCTION consent_forbid_truncate();

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

# Back to 0002's guard.
PREVIOUS = """
DROP TRIGGER IF EXISTS consent_state_copies_ledger ON consent_consentstate;
DROP FUNCTION IF EXISTS consent_state_guard();
DROP TRIGGER IF EXISTS consent_ledger_no_truncate ON consent_consentrecord;
DROP FUNCTION IF EXISTS consent_forbid_truncate();
CREATE OR REPLACE FUNCTION consent_ledger_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('cdp.erasure', true) = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LEDGER_GUARD, params=None)  # no placeholders: keep RAISE's % as is


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS, params=None)


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_seed_purposes_and_ledger_guard")]
    operations = [migrations.RunPython(forward, backward)]
