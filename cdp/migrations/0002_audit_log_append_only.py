"""On PostgreSQL the database itself refuses to change or delete audit rows."""
from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION cdp_forbid_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER cdp_auditlog_append_only BEFORE UPDATE OR DELETE ON cdp_auditlog
    FOR EACH ROW EXECUTE FUNCTION cdp_forbid_change();
"""
ALLOW = "DROP TRIGGER IF EXISTS cdp_auditlog_append_only ON cdp_auditlog;"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID, params=None)  # no placeholders: keep RAISE's % as is


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW)


class Migration(migrations.Migration):
    dependencies = [("cdp", "0001_audit_log")]
    operations = [migrations.RunPython(forward, backward)]
