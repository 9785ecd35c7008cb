"""PostgreSQL: the events table becomes range-partitioned by month of occurred_at, every
row, index and the (source, external_id) de-duplication kept (profiles/partitions.py,
docs/partitioning.md). SQLite keeps its plain table. The model's state does not change."""
from django.db import migrations


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from profiles.partitions import convert_to_partitioned, is_partitioned

    if is_partitioned():
        return
    with schema_editor.connection.cursor() as cursor:
        convert_to_partitioned(cursor)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from profiles.partitions import convert_to_plain, is_partitioned

    if not is_partitioned():
        return
    with schema_editor.connection.cursor() as cursor:
        convert_to_plain(cursor)


class Migration(migrations.Migration):

    dependencies = [
        ("profiles", "0027_suppression_from_consent"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
