"""Watched import sources: a folder, and an S3 bucket (moto's real S3 server on 127.0.0.1),
polled like beat polls them — each new file imported once, then moved to done/ or failed/."""
import datetime
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from profiles.import_sources import poll_import_sources
from profiles.importing.sources import import_source_poll
from profiles.models import ImportJob, ImportSource, ImportStatus, MappingTemplate, Profile

from .s3_server import ACCESS_KEY, SECRET_KEY, s3_bucket_create, s3_keys, s3_server_start

DATA = Path(__file__).parent / "data"
CRM = (DATA / "crm_gb18030.csv").read_bytes()
NO_KEYS = "备注,日期\n你好,2024-01-01\n".encode()
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def drop(tmp_path):
    folder = tmp_path / "crm-drop"
    folder.mkdir()
    return folder


@pytest.fixture
def folder_source(drop):
    return ImportSource.objects.create(name="旧CRM 每日导出", storage="folder", path=str(drop), kind="profiles",
                                       interval_minutes=15)


def names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_new_file_is_imported_once_and_moved_to_done(folder_source, drop):
    # given a CRM export dropped into the watched folder
    (drop / "members.csv").write_bytes(CRM)

    # when beat's task polls the due sources
    assert poll_import_sources() == [folder_source.pk]

    # then it became an import job of the source, ran, and moved to done/
    job = ImportJob.objects.get()
    assert (job.import_source, job.file_name, job.status, job.created, job.failed) == (
        folder_source, "members.csv", ImportStatus.DONE, 3, 2)
    assert len(job.checksum) == 64 and job.source == "crm" and job.actor_label == "旧CRM 每日导出"
    assert Profile.objects.count() == 3
    assert names(drop) == ["done/members.csv"]
    folder_source.refresh_from_db()
    assert folder_source.last_counts == {"imported": 1, "failed": 0, "duplicates": 0}
    assert folder_source.last_error == "" and folder_source.claimed_until is None
    assert folder_source.next_run_at == folder_source.last_run_at + datetime.timedelta(minutes=15)

    # and when the same file is dropped again, it is not imported a second time
    (drop / "members-again.csv").write_bytes(CRM)
    assert import_source_poll(folder_source.pk, force=True) == {"imported": 0, "failed": 0, "duplicates": 1}
    assert ImportJob.objects.count() == 1
    assert names(drop) == ["done/members-again.csv", "done/members.csv"]


def test_bad_files_go_to_failed_with_the_reason(folder_source, drop):
    (drop / "notes.csv").write_bytes(NO_KEYS)
    (drop / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    (drop / "ok.csv").write_bytes(CRM)

    assert import_source_poll(folder_source.pk) == {"imported": 1, "failed": 2, "duplicates": 0}

    assert names(drop) == ["done/ok.csv", "failed/notes.csv", "failed/old.xls"]
    folder_source.refresh_from_db()
    error = folder_source.last_error
    assert "notes.csv" in error and "old.xls" in error and ".xlsx" in error
    assert "手机" in error or "电话" in error or "邮箱" in error  # what to map, in the product's language
    failed = ImportJob.objects.get(file_name="notes.csv")
    assert failed.status == ImportStatus.FAILED and failed.import_source == folder_source
    # a failed file may come again once fixed, and a failed import does not block the same bytes
    (drop / "notes.csv").write_bytes(NO_KEYS)
    assert import_source_poll(folder_source.pk, force=True)["failed"] == 1


def test_the_source_template_and_mode_are_used(drop):
    template = MappingTemplate.objects.create(name="只要编号", kind="profiles",
                                              columns={"客户编号": "identity:crm_id", "手机": "", "邮箱": ""})
    source = ImportSource.objects.create(name="s", storage="folder", path=str(drop), template=template,
                                         mode="update_only")
    (drop / "members.csv").write_bytes(CRM)

    import_source_poll(source.pk)

    job = ImportJob.objects.get()
    assert job.template == template and job.mode == "update_only" and job.mapping["手机"] == ""
    assert job.created == 0 and job.skipped == 4  # update only: nobody is known yet (one row fails its date)


def test_files_still_being_written_are_left(folder_source, drop):
    (drop / "members.csv.part").write_bytes(CRM)
    (drop / ".members.csv").write_bytes(CRM)
    assert import_source_poll(folder_source.pk) == {"imported": 0, "failed": 0, "duplicates": 0}
    assert names(drop) == [".members.csv", "members.csv.part"]


def test_a_source_held_by_another_worker_or_not_due_is_not_polled(folder_source, drop):
    (drop / "members.csv").write_bytes(CRM)
    ImportSource.objects.filter(pk=folder_source.pk).update(claimed_until=timezone.now() + datetime.timedelta(minutes=5))
    assert poll_import_sources() == [] and import_source_poll(folder_source.pk, force=True) is None

    ImportSource.objects.filter(pk=folder_source.pk).update(
        claimed_until=timezone.now() - datetime.timedelta(seconds=1),  # its worker died: the lease ran out
        next_run_at=timezone.now() + datetime.timedelta(minutes=10))
    assert import_source_poll(folder_source.pk) is None  # not due
    assert import_source_poll(folder_source.pk, force=True)["imported"] == 1  # "poll now"
    ImportSource.objects.filter(pk=folder_source.pk).update(enabled=False, next_run_at=None)
    assert poll_import_sources() == []


def test_a_missing_folder_is_reported_on_the_source(drop):
    source = ImportSource.objects.create(name="s", storage="folder", path=str(drop / "nope"))
    assert import_source_poll(source.pk) == {"imported": 0, "failed": 0, "duplicates": 0}
    source.refresh_from_db()
    assert str(drop / "nope") in source.last_error and source.next_run_at and source.claimed_until is None


# --- S3 (moto's server) ---

@pytest.fixture(scope="module")
def s3_endpoint():
    server, endpoint = s3_server_start()
    yield endpoint
    server.stop()


@pytest.fixture
def bucket_source(s3_endpoint, monkeypatch):
    client, bucket = s3_bucket_create(s3_endpoint)
    monkeypatch.setenv("CDP_IMPORT_SOURCE_CRM_BUCKET_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("CDP_IMPORT_SOURCE_CRM_BUCKET_SECRET_ACCESS_KEY", SECRET_KEY)
    source = ImportSource.objects.create(name="桶", storage="s3", bucket=bucket, prefix="crm/exports",
                                         endpoint_url=s3_endpoint, region="cn-north-1", credentials="crm-bucket")
    return source, client, bucket


def test_a_bucket_file_is_imported_once_and_moved(bucket_source):
    source, client, bucket = bucket_source
    client.put_object(Bucket=bucket, Key="crm/exports/members.csv", Body=CRM)
    client.put_object(Bucket=bucket, Key="crm/exports/notes.csv", Body=NO_KEYS)
    client.put_object(Bucket=bucket, Key="elsewhere/members.csv", Body=CRM)

    assert import_source_poll(source.pk) == {"imported": 1, "failed": 1, "duplicates": 0}

    assert Profile.objects.count() == 3
    assert s3_keys(client, bucket) == ["crm/exports/done/members.csv", "crm/exports/failed/notes.csv",
                                       "elsewhere/members.csv"]
    client.put_object(Bucket=bucket, Key="crm/exports/members-copy.csv", Body=CRM)
    assert import_source_poll(source.pk, force=True) == {"imported": 0, "failed": 0, "duplicates": 1}
    assert ImportJob.objects.filter(status=ImportStatus.DONE).count() == 1
    assert "crm/exports/done/members-copy.csv" in s3_keys(client, bucket)


def test_credentials_come_from_the_environment_never_the_database(bucket_source, monkeypatch):
    source, client, bucket = bucket_source
    monkeypatch.delenv("CDP_IMPORT_SOURCE_CRM_BUCKET_SECRET_ACCESS_KEY")

    import_source_poll(source.pk)

    source.refresh_from_db()
    assert "CDP_IMPORT_SOURCE_CRM_BUCKET_SECRET_ACCESS_KEY" in source.last_error
    assert SECRET_KEY not in str(ImportSource.objects.values().get())


def test_a_bucket_that_refuses_is_reported(bucket_source):
    source, _client, _bucket = bucket_source
    ImportSource.objects.filter(pk=source.pk).update(bucket="no-such-bucket")
    import_source_poll(source.pk)
    source.refresh_from_db()
    assert "NoSuchBucket" in source.last_error


# --- admin ---

def test_the_admin_list_in_chinese_with_runs_errors_jobs_and_poll_now(client, staff_user, folder_source, drop,
                                                                      django_capture_on_commit_callbacks,
                                                                      django_assert_max_num_queries):
    (drop / "members.csv").write_bytes(CRM)
    (drop / "notes.csv").write_bytes(NO_KEYS)
    import_source_poll(folder_source.pk)
    ImportSource.objects.create(name="另一个", storage="folder", path=str(drop), enabled=False)
    client.force_login(staff_user)

    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:profiles_importsource_changelist"))

    text = page.content.decode()
    assert page.status_code == 200
    assert "监控的导入来源" in text and "下次运行" in text and "旧CRM 每日导出" in text
    assert "1 个已导入，1 个失败，0 个已导入过" in text and "notes.csv" in text
    assert f"?import_source={folder_source.pk}" in text and "2 次导入" in text
    jobs = client.get(reverse("admin:profiles_importjob_changelist") + f"?import_source={folder_source.pk}")
    assert jobs.status_code == 200 and "members.csv" in jobs.content.decode()
    assert "以 导入来源" in jobs.content.decode()  # the filter the link set, in the sidebar
    detail = client.get(reverse("admin:profiles_importsource_change", args=[folder_source.pk]))
    assert detail.status_code == 200 and "members.csv" in detail.content.decode()

    (drop / "later.csv").write_bytes(CRM.replace(b"CRM0001", b"CRM0009"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:profiles_importsource_changelist"), {
            "action": "poll_now", "_selected_action": [folder_source.pk]}, follow=True)
    assert response.status_code == 200 and "稍后" in response.content.decode()
    assert ImportJob.objects.filter(file_name="later.csv", status=ImportStatus.DONE).exists()


def test_the_admin_form_refuses_a_relative_folder(client, staff_user):
    client.force_login(staff_user)
    response = client.post(reverse("admin:profiles_importsource_add"), {
        "name": "x", "enabled": "on", "kind": "profiles", "mode": "create_or_update", "error_policy": "skip",
        "data_source": "crm", "interval_minutes": "60", "storage": "folder", "path": "relative/dir"})
    assert response.status_code == 200 and "绝对路径" in response.content.decode()
    assert not ImportSource.objects.exists()
