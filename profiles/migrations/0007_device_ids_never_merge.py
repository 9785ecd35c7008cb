from django.db import migrations


def seed(apps, schema_editor):
    """Device ids may be shared (a family tablet, a shop's POS): never merge on them."""
    apps.get_model("profiles", "IdentityKind").objects.filter(code="device_id").update(merge_on=False)


class Migration(migrations.Migration):
    dependencies = [("profiles", "0006_merges")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
