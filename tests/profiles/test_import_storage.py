"""Uploads go through Django's storage: a folder by default, an S3-compatible bucket (a
real S3 endpoint here: moto's server) shared by every worker machine when configured."""
import importlib
import os
from pathlib import Path

import pytest
from django.apps import apps
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from profiles.importing.files import cache_path, local_path
from profiles.importing.pipeline import import_run
from profiles.models import ImportJob, ImportStatus, Profile

from .s3_server import s3_bucket_create, s3_keys, s3_server_start, s3_storages

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3_endpoint():
    server, endpoint = s3_server_start()
    yield endpoint
    server.stop()


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def upload_and_import(client, path: Path) -> ImportJob:
    client.post(reverse("admin:profiles_importjob_upload"), {
        "file": SimpleUploadedFile(path.name, path.read_bytes()), "kind": "profiles", "source": "crm"})
    job = ImportJob.objects.get()
    mapping = {f"column-{i}": job.mapping[h] for i, h in enumerate(job.headers)}
    client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {**mapping, "precedence": "crm_id"})
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED, job.error
    client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    job.refresh_from_db()
    return job


def test_an_upload_is_kept_by_its_storage_name_under_media_root(staff_client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    staff_client.post(reverse("admin:profiles_importjob_upload"), {
        "file": SimpleUploadedFile("crm.csv", (DATA / "crm_gb18030.csv").read_bytes()), "kind": "profiles",
        "source": "crm"})
    job = ImportJob.objects.get()
    assert job.file_path.startswith("imports/") and job.file_path.endswith(".csv")
    assert (tmp_path / "media" / job.file_path).is_file() and local_path(job.file_path) == str(
        tmp_path / "media" / job.file_path)


def test_an_upload_in_a_bucket_is_imported_and_then_deleted(staff_client, settings, s3_endpoint):
    # given the storage is an S3 bucket
    client, bucket = s3_bucket_create(s3_endpoint)
    settings.STORAGES = s3_storages(s3_endpoint, bucket)

    # when a file is uploaded, previewed and imported
    job = upload_and_import(staff_client, DATA / "crm_gb18030.csv")

    # then the worker read it from the bucket, and neither the bucket nor this machine keeps it
    assert job.status == ImportStatus.DONE, job.error
    assert job.created == 3 and Profile.objects.count() == 3
    assert s3_keys(client, bucket) == []
    assert not os.path.exists(cache_path(job.file_path))


def test_a_bucket_upload_is_in_the_bucket_until_it_runs(staff_client, settings, s3_endpoint):
    client, bucket = s3_bucket_create(s3_endpoint)
    settings.STORAGES = s3_storages(s3_endpoint, bucket)
    staff_client.post(reverse("admin:profiles_importjob_upload"), {
        "file": SimpleUploadedFile("crm.csv", (DATA / "crm_gb18030.csv").read_bytes()), "kind": "profiles",
        "source": "crm"})
    job = ImportJob.objects.get()
    assert s3_keys(client, bucket) == [f"uploads/{job.file_path}"]
    assert default_storage.exists(job.file_path)


def test_a_bucket_upload_that_is_gone_fails_the_job_with_a_clear_error(settings, s3_endpoint):
    client, bucket = s3_bucket_create(s3_endpoint)
    settings.STORAGES = s3_storages(s3_endpoint, bucket)
    job = ImportJob.objects.create(file_path="imports/missing.csv", file_name="crm.csv", language="zh-hans")

    import_run(job, dry_run=True)

    assert job.status == ImportStatus.FAILED and job.error == "上传的文件已不存在，请重新上传。"


def test_the_migration_turns_media_paths_into_storage_names(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    old = ImportJob.objects.create(file_path=str(tmp_path / "media" / "imports" / "abc.csv"), file_name="a.csv")
    elsewhere = ImportJob.objects.create(file_path="/srv/crm/export.csv", file_name="export.csv")
    migration = importlib.import_module("profiles.migrations.0022_import_storage_names")

    migration.to_storage_names(apps, None)

    assert ImportJob.objects.get(pk=old.pk).file_path == "imports/abc.csv"
    assert ImportJob.objects.get(pk=elsewhere.pk).file_path == "/srv/crm/export.csv"
    migration.to_paths(apps, None)
    assert ImportJob.objects.get(pk=old.pk).file_path == str(tmp_path / "media" / "imports" / "abc.csv")
