"""Partners keep reading the customers they sent before PartnerCustomer existed: every
customer with an event whose source is the partner's code (or "<code>/<sub-source>") or
an identity it added (source = its code) becomes one of its customers. One INSERT …
SELECT per partner; a re-run adds nothing twice."""
from django.db import migrations


def backfill(apps, schema_editor):
    Partner = apps.get_model("cdp", "Partner")
    PartnerCustomer = apps.get_model("cdp", "PartnerCustomer")
    Event = apps.get_model("profiles", "Event")
    Identity = apps.get_model("profiles", "Identity")
    Profile = apps.get_model("profiles", "Profile")
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    link, profile = quote(PartnerCustomer._meta.db_table), quote(Profile._meta.db_table)
    event, identity = quote(Event._meta.db_table), quote(Identity._meta.db_table)
    now = "CURRENT_TIMESTAMP"
    with connection.cursor() as cursor:
        for partner_id, code in Partner.objects.values_list("pk", "code"):
            cursor.execute(
                f"INSERT INTO {link} (partner_id, profile_uuid, first_sent_at) "
                f"SELECT DISTINCT %s, p.uuid, {now} FROM {profile} p WHERE p.id IN ("
                f"SELECT e.profile_id FROM {event} e WHERE e.source = %s OR e.source LIKE %s ESCAPE '\\' "
                f"UNION SELECT i.profile_id FROM {identity} i WHERE i.source = %s) "
                f"AND NOT EXISTS (SELECT 1 FROM {link} l WHERE l.partner_id = %s AND l.profile_uuid = p.uuid)",
                [partner_id, code, code.replace("%", r"\%").replace("_", r"\_") + "/%", code, partner_id])


class Migration(migrations.Migration):

    dependencies = [
        ("cdp", "0005_partner_purposes_and_customers"),
        ("profiles", "0017_chinese_labels"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
