"""Uploads are kept in Django's storage: a job's file_path becomes the file's storage name
("imports/<uuid>.csv") instead of an absolute path under MEDIA_ROOT. Paths elsewhere on
disk (files imported with manage.py import_file) stay as they are."""
import os

from django.conf import settings
from django.db import migrations


def to_storage_names(apps, schema_editor):
    ImportJob = apps.get_model("profiles", "ImportJob")
    media = os.path.abspath(settings.MEDIA_ROOT) + os.sep
    for pk, path in ImportJob.objects.filter(file_path__startswith=media).values_list("pk", "file_path").iterator():
        ImportJob.objects.filter(pk=pk).update(file_path=os.path.relpath(path, media).replace(os.sep, "/"))


def to_paths(apps, schema_editor):
    ImportJob = apps.get_model("profiles", "ImportJob")
    for pk, name in ImportJob.objects.exclude(file_path="").values_list("pk", "file_path").iterator():
        if not os.path.isabs(name):
            ImportJob.objects.filter(pk=pk).update(file_path=os.path.join(settings.MEDIA_ROOT, name))


class Migration(migrations.Migration):
    dependencies = [("profiles", "0021_product_recommendations")]

    operations = [
        migrations.RunPython(to_storage_names, to_paths, elidable=True),
    ]
