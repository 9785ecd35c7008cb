"""Who may do what with an import: recording consent by any path needs the consent
permission; only the uploader (or an administrator) runs, retries, resumes or undoes a job,
and whoever runs it is credited; other staff read the file's personal data masked."""
import datetime

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cdp.actors import Actor
from cdp.models import AuditLog, Scope
from profiles.importing.jobs import import_job_create
from profiles.importing.pipeline import import_run
from profiles.models import ImportJob, ImportStatus, Profile, ProfileActivity
from tests.cdp.test_api_fixtures import client_with, key_for, partner  # noqa: F401 — fixture
from tests.factories import IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db

CONSENT_FILE = ("phone,purpose,consent_status,captured_at,guardian_consent\n"
                "13800138000,email_marketing,granted,2026-11-01 10:00,yes\n")


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def staff_in(django_user_model, username: str, role: str):
    user = django_user_model.objects.create_user(username=username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def marketer(django_user_model):
    return staff_in(django_user_model, "mei", "营销 marketer")


@pytest.fixture
def officer(django_user_model):
    return staff_in(django_user_model, "li", "隐私专员 privacy officer")


@pytest.fixture
def customer():
    """A customer who withdrew their e-mail consent."""
    from consent.services import consent_record

    profile = ProfileFactory(phone="+8613800138000", birth_date=datetime.date(1990, 1, 1))
    IdentityFactory(profile=profile, kind_id="phone", value="+8613800138000")
    consent_record(profile=profile, purpose_code="email_marketing", status="withdrawn", source="admin",
                   actor=Actor.system("tests"), captured_at=datetime.datetime(2026, 10, 1, tzinfo=datetime.UTC))
    return profile


def email_status(profile) -> str:
    from consent.models import ConsentState

    return ConsentState.objects.get(profile=profile, purpose__code="email_marketing").status


def upload(client, text: str, kind: str, name="file.csv"):
    return client.post(reverse("admin:profiles_importjob_upload"), {
        "file": SimpleUploadedFile(name, text.encode()), "kind": kind, "source": "crm",
        "mode": "create_or_update", "error_policy": "skip"})


def preview(client, job):
    return client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {
        **{f"column-{i}": job.mapping[h] for i, h in enumerate(job.headers)}, "precedence": "phone",
        "mode": "create_or_update", "error_policy": "skip"})


def consent_job(tmp_path, user, *, run=False):
    """A consent file uploaded (and previewed, or run) by someone allowed to."""
    path = tmp_path / "consent.csv"
    path.write_text(CONSENT_FILE)
    job, _table = import_job_create(path=str(path), name="consent.csv", kind="consent", actor=Actor.staff(user))
    return import_run(job, dry_run=not run)


# --- 1. consent is recorded only with the consent permission ---------------------------------


def test_a_marketer_cannot_upload_a_consent_file(client, marketer, customer):
    # given a marketer (may import customers, may not record consent)
    client.force_login(marketer)
    # when they upload a consent file
    response = upload(client, CONSENT_FILE, "consent")
    # then it is refused with a message, and no job exists
    assert response.status_code == 200
    assert "consent" in response.content.decode().lower() or "同意" in response.content.decode()
    assert not ImportJob.objects.exists()
    assert email_status(customer) == "withdrawn"


def test_a_marketer_cannot_preview_run_retry_or_undo_a_consent_import(client, marketer, officer, customer, tmp_path):
    # given a consent file previewed by a privacy officer, who made the marketer... an administrator-like helper
    job = consent_job(tmp_path, officer)
    assert job.status == ImportStatus.PREVIEWED
    # even a marketer who is allowed to act on others' jobs
    from django.contrib.auth.models import Permission

    marketer.user_permissions.add(Permission.objects.get(codename="change_importjob"))
    client.force_login(marketer)
    # when they try to preview (retry), run or undo it, then each is refused
    assert preview(client, job).status_code == 403
    assert client.post(reverse("admin:profiles_importjob_run", args=[job.pk])).status_code == 403
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED and email_status(customer) == "withdrawn"
    done = consent_job(tmp_path, officer, run=True)
    assert email_status(customer) == "granted"
    assert client.post(reverse("admin:profiles_importjob_undo", args=[done.pk])).status_code == 403
    assert client.post(reverse("admin:profiles_importjob_resume", args=[done.pk])).status_code == 403
    done.refresh_from_db()
    assert done.status == ImportStatus.DONE
    # and the job page offers none of it
    text = client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    assert 'id="run-import"' not in text and 'id="change-mapping"' not in text


def test_a_privacy_officer_imports_consent(client, officer, customer):
    # given a privacy officer
    client.force_login(officer)
    # when they upload, preview and run a consent file
    upload(client, CONSENT_FILE, "consent")
    job = ImportJob.objects.get()
    preview(client, job)
    client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    # then the consent is recorded, credited to them
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE, job.error
    assert email_status(customer) == "granted"
    assert AuditLog.objects.filter(action="consent_recorded", actor_user=officer).exists()


def test_the_admin_consent_form_needs_the_consent_permission(client, marketer, customer):
    client.force_login(marketer)
    url = reverse("admin:consent_consentrecord_record", args=[customer.uuid])
    assert client.get(url).status_code == 403
    assert client.post(url, {"purpose": "email_marketing", "status": "granted"}).status_code == 403
    assert email_status(customer) == "withdrawn"


def test_the_api_records_consent_only_with_a_consent_write_key(partner, customer):  # noqa: F811
    url = f"/api/v1/profiles/{customer.uuid}/consent/"
    body = {"purpose": "email_marketing", "status": "granted"}
    # given a partner key with every scope but consent:write
    without = client_with(key_for(partner, scopes=[s for s in Scope.values if s != Scope.CONSENT_WRITE]))
    # when it records a grant, then it is refused for the missing scope and nothing changes
    response = without.post(url, body, format="json")
    assert response.status_code == 403 and response.json()["code"] == "missing_scope"
    assert email_status(customer) == "withdrawn"


# --- 2. only the uploader acts on a job; the runner is credited; others read masked -------------


PROFILES_FILE = ("crm_id,name,phone,remark,contact\n"
                 "CRM1,张伟,13800138000,call 13900139000,zhang.wei@example.com\n")


def test_another_marketer_cannot_map_run_or_undo_someone_elses_job(client, marketer, django_user_model):
    # given a file uploaded and previewed by one marketer
    other = staff_in(django_user_model, "wang", "营销 marketer")
    client.force_login(other)
    upload(client, PROFILES_FILE, "profiles")
    job = ImportJob.objects.get()
    preview(client, job)
    # when another marketer opens its mapping, runs it, or undoes it
    client.force_login(marketer)
    mapping = client.get(reverse("admin:profiles_importjob_mapping", args=[job.pk]))
    run = client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    # then they are refused, and nothing was imported
    assert mapping.status_code == 403 and run.status_code == 403
    assert not Profile.objects.exists()
    client.force_login(other)
    client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    client.force_login(marketer)
    assert client.post(reverse("admin:profiles_importjob_undo", args=[job.pk])).status_code == 403
    assert Profile.objects.count() == 1


def test_whoever_runs_the_job_is_credited_on_the_timeline(client, marketer, django_user_model):
    # given a job uploaded and previewed by a marketer
    admin = staff_in(django_user_model, "boss", "管理员 administrator")
    client.force_login(marketer)
    upload(client, PROFILES_FILE, "profiles")
    job = ImportJob.objects.get()
    preview(client, job)
    # when an administrator runs it
    client.force_login(admin)
    client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    # then the timeline and the job name the administrator, not the uploader
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.run_by == admin and job.run_by_label == "boss"
    entry = ProfileActivity.objects.get(profile=Profile.objects.get())
    assert (entry.actor_user_id, entry.actor_label) == (admin.pk, "boss")
    assert "boss" in client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()


def test_others_read_every_phone_and_email_of_the_file_masked(client, marketer, django_user_model):
    # given a file whose remark column (mapped to nothing) holds a phone and whose
    # contact column (ignored) an e-mail, previewed by its uploader
    uploader = staff_in(django_user_model, "wang", "营销 marketer")
    client.force_login(uploader)
    upload(client, PROFILES_FILE, "profiles")
    job = ImportJob.objects.get()
    job.mapping.update({"remark": "", "contact": ""})
    job.save()
    preview(client, job)
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED and job.created == 1
    page = reverse("admin:profiles_importjob_change", args=[job.pk])
    assert "13900139000" in client.get(page).content.decode()  # the uploader reads their own file
    # when another marketer opens the job page
    client.force_login(marketer)
    text = client.get(page).content.decode()
    # then no phone or e-mail shows, mapped or not
    for raw in ("13800138000", "13900139000", "zhang.wei@example.com"):
        assert raw not in text
    assert "138****8000" in text and "z***@example.com" in text and "张伟" in text and "CRM1" in text


def test_error_messages_quote_phones_masked_for_others(client, marketer, django_user_model):
    # given two customers and a row whose phone and e-mail belong to different ones (a conflict)
    a = ProfileFactory(phone="+8613800138000")
    IdentityFactory(profile=a, kind_id="phone", value="+8613800138000")
    b = ProfileFactory(email="zhang.wei@example.com")
    IdentityFactory(profile=b, kind_id="email", value="zhang.wei@example.com")
    uploader = staff_in(django_user_model, "wang", "营销 marketer")
    client.force_login(uploader)
    upload(client, "name,phone,email\n张伟,13800138000,zhang.wei@example.com\n", "profiles")
    job = ImportJob.objects.get()
    preview(client, job)
    job.refresh_from_db()
    assert job.failed == 1
    # when another marketer reads the errors, then the conflict's phone and e-mail are masked
    client.force_login(marketer)
    text = client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    assert "8613800138000" not in text and "zhang.wei@example.com" not in text
    assert "138****8000" in text


def test_an_administrator_running_a_consent_import_is_credited_in_the_ledger_and_audit_log(
        client, officer, customer, django_user_model, tmp_path):
    from consent.models import ConsentRecord

    # given a consent file uploaded and previewed by a privacy officer
    job = consent_job(tmp_path, officer)
    admin = staff_in(django_user_model, "boss", "管理员 administrator")
    # when an administrator runs it
    client.force_login(admin)
    client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    # then the grant and its audit entry name the administrator, not the uploader
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and email_status(customer) == "granted"
    record = ConsentRecord.objects.filter(profile=customer, source="import").get()
    assert (record.actor_user_id, record.actor_label) == (admin.pk, "boss")
    audit = AuditLog.objects.filter(action="consent_recorded").latest("id")
    assert (audit.actor_user_id, audit.actor_label) == (admin.pk, "boss")
