"""The audit log: a "consent states rebuilt" action, and on PostgreSQL TRUNCATE refused
like UPDATE and DELETE (a row trigger never sees a TRUNCATE). Django's flush gets past it
only as a superuser (cdp/management/commands/flush.py)."""
from django.db import migrations, models

FORBID = """
CREATE TRIGGER cdp_auditlog_no_truncate BEFORE TRUNCATE ON cdp_auditlog
    FOR EACH STATEMENT EXECUTE FUNCTION cdp_forbid_change();
"""
ALLOW = "DROP TRIGGER IF EXISTS cdp_auditlog_no_truncate ON cdp_auditlog;"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW)


class Migration(migrations.Migration):
    dependencies = [("cdp", "0006_partner_customers_backfill")]
    operations = [
        migrations.AlterField(
            model_name="auditlog",
            name="action",
            field=models.CharField(choices=[('reveal_personal_data', 'Personal data revealed'), ('api_call', 'API call'), ('api_auth_failed', 'API calls with an invalid key'), ('consent_recorded', 'Consent recorded'), ('notice_published', 'Notice published'), ('do_not_contact_added', 'Do-not-contact set'), ('do_not_contact_lifted', 'Do-not-contact lifted'), ('segment_exported', 'Segment exported'), ('data_request_received', 'Data subject request received'), ('data_request_extended', 'Data subject request extended'), ('data_request_completed', 'Data subject request completed'), ('data_request_refused', 'Data subject request refused'), ('subject_data_exported', 'Personal data exported for a request'), ('profile_erased', 'Customer erased'), ('import_undone', 'Import undone'), ('consent_state_repaired', 'Consent states rebuilt from the ledger')], max_length=40, verbose_name='action'),
        ),
        migrations.RunPython(forward, backward),
    ]
