"""The import screens in the admin: upload → mapping → preview → import → errors → failed rows → undo."""
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from profiles.models import AttributeDefinition, ImportJob, ImportStatus, MappingTemplate, Profile
from tests.factories import TagFactory

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def upload(client, path: Path, **data):
    with open(path, "rb") as file:
        content = file.read()
    return client.post(reverse("admin:profiles_importjob_upload"), {
        "file": SimpleUploadedFile(path.name, content), "kind": "profiles", "source": "crm",
        "mode": "create_or_update", "error_policy": "skip", **data})


def test_the_whole_path_in_the_admin(staff_client, django_assert_max_num_queries):
    TagFactory(name="VIP", slug="vip")
    TagFactory(name="高价值", slug="high-value")
    response = upload(staff_client, DATA / "crm_gb18030.csv")
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("admin:profiles_importjob_mapping", args=[job.pk])
    assert job.encoding == "gb18030"

    page = staff_client.get(response.url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "张伟" in text and "GB18030" in text
    assert 'name="column-0"' in text

    # Fix the mapping: 会员等级 becomes a new custom trait; save it as a template.
    mapping = {f"column-{i}": t for i, t in enumerate(job.headers and [job.mapping[h] for h in job.headers])}
    mapping["column-8"] = "new_trait:string"
    response = staff_client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {
        **mapping, "precedence": "crm_id, phone, email", "mode": "create_or_update", "error_policy": "skip",
        "template_name": "旧CRM"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED and job.dry_run
    assert (job.created, job.failed) == (2, 3)
    assert not Profile.objects.exists()
    assert MappingTemplate.objects.get(name="旧CRM").columns["会员等级"] == "new_trait:string"

    with django_assert_max_num_queries(30):  # constant: not per row or per error
        detail = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk]))
    text = detail.content.decode()
    assert "12345" in text and 'id="run-import"' in text and 'id="failed-rows"' in text

    staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and not job.dry_run
    assert not Path(job.file_path).exists()  # the upload is not kept once imported
    assert Profile.objects.count() == 2
    assert AttributeDefinition.objects.filter(key="会员等级").exists()
    assert Profile.objects.get(name="张伟").traits == {"会员等级": "金卡会员"}

    failed = staff_client.get(reverse("admin:profiles_importjob_failed_rows", args=[job.pk]))
    body = b"".join(failed.streaming_content).decode("utf-8")
    assert failed["Content-Type"].startswith("text/csv")
    assert body.count("\n") == 4 and "'=HYPERLINK" in body

    confirm = staff_client.get(reverse("admin:profiles_importjob_undo", args=[job.pk]))
    assert confirm.status_code == 200
    staff_client.post(reverse("admin:profiles_importjob_undo", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.UNDONE
    assert not Profile.objects.exists()

    listing = staff_client.get(reverse("admin:profiles_importjob_changelist"))
    assert listing.status_code == 200 and "crm_gb18030.csv" in listing.content.decode()


def test_a_bad_mapping_is_explained_not_a_500(staff_client):
    upload(staff_client, DATA / "crm_gb18030.csv")
    job = ImportJob.objects.get()
    response = staff_client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {
        "column-0": "name", "column-1": "name", "precedence": "crm_id, nonsense"})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'id="mapping-problems"' in text
    assert "nonsense" in text


def test_an_unreadable_or_too_large_file_is_refused_with_a_message(staff_client, tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    response = upload(staff_client, bad)
    assert response.status_code == 200 and "XLSX" in response.content.decode()
    with override_settings(CDP_IMPORT_MAX_BYTES=10):
        response = upload(staff_client, DATA / "crm_gb18030.csv")
    assert response.status_code == 200 and "import_file" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_large_files_run_in_the_background(staff_client, django_capture_on_commit_callbacks, monkeypatch):
    from profiles import tasks

    queued = []
    monkeypatch.setattr(tasks.run_import, "delay", lambda *args: queued.append(args))
    upload(staff_client, DATA / "crm_gb18030.csv")
    job = ImportJob.objects.get()
    mapping = {f"column-{i}": job.mapping[h] for i, h in enumerate(job.headers)}
    with override_settings(CDP_IMPORT_INLINE_BYTES=10), django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]),
                          {**mapping, "precedence": "crm_id, phone"})
    assert queued == [(job.pk, True)]
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED
    progress = staff_client.get(reverse("admin:profiles_importjob_progress", args=[job.pk])).json()
    assert progress["running"] and progress["progress"] == 0
    assert "import-progress" in staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    assert tasks.run_import(job.pk, True) == ImportStatus.PREVIEWED
    assert tasks.run_import(job.pk, True) == "skipped"  # a second delivery of the message


def test_an_events_file_through_the_admin(staff_client):
    from tests.factories import IdentityFactory, ProfileFactory

    profile = ProfileFactory(phone="+8613800138000")
    IdentityFactory(profile=profile, kind_id="phone", value="+8613800138000")
    upload(staff_client, DATA / "events.csv", kind="events")
    job = ImportJob.objects.get()
    assert job.mapping == {"手机号": "phone", "事件": "event_name", "下单时间": "occurred_at", "实付金额": "amount",
                           "订单号": "external_id", "品类": ""}
    page = staff_client.get(reverse("admin:profiles_importjob_mapping", args=[job.pk])).content.decode()
    assert 'value="property"' in page
    mapping = {f"column-{i}": job.mapping[h] for i, h in enumerate(job.headers)}
    mapping["column-5"] = "property"
    staff_client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {**mapping, "precedence": "phone"})
    job.refresh_from_db()
    assert (job.status, job.created, job.failed) == (ImportStatus.PREVIEWED, 2, 3)


def test_other_staff_without_personal_data_access_see_the_files_phones_masked(staff_client, django_user_model):
    from django.contrib.auth.models import Group

    upload(staff_client, DATA / "crm_gb18030.csv")
    job = ImportJob.objects.get()
    staff_client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {
        **{f"column-{i}": job.mapping[h] for i, h in enumerate(job.headers)}, "precedence": "crm_id, phone, email",
        "mode": "create_or_update", "error_policy": "skip"})
    staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.failed  # so that there are failed rows to download
    page = reverse("admin:profiles_importjob_change", args=[job.pk])
    failed = reverse("admin:profiles_importjob_failed_rows", args=[job.pk])
    assert "138 0013 8000" in staff_client.get(page).content.decode()  # the uploader reads their file

    marketer = django_user_model.objects.create_user(username="mei", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name="营销 marketer"))
    staff_client.force_login(marketer)
    text = staff_client.get(page).content.decode()
    assert "138 0013 8000" not in text and "Zhang.Wei@Example.COM" not in text
    assert "138******8000" in text and "Z***@Example.COM" in text and "张伟" in text
    assert 'id="failed-rows"' not in text and staff_client.get(failed).status_code == 403
