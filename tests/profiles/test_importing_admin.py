"""The import screens in the admin: upload → mapping → preview → import → errors → failed rows → undo."""
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
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
    assert (job.created, job.failed) == (3, 2)  # the row naming a tag not in the taxonomy is imported without it
    assert not Profile.objects.exists()
    assert MappingTemplate.objects.get(name="旧CRM").columns["会员等级"] == "new_trait:string"

    with django_assert_max_num_queries(30):  # constant: not per row or per error
        detail = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk]))
    text = detail.content.decode()
    assert "12345" in text and 'id="run-import"' in text and 'id="failed-rows"' in text

    staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and not job.dry_run
    assert job.file_path.startswith("imports/") and not default_storage.exists(job.file_path)  # not kept once imported
    assert Profile.objects.count() == 3
    assert AttributeDefinition.objects.filter(key="会员等级").exists()
    assert Profile.objects.get(name="张伟").traits == {"会员等级": "金卡会员"}

    failed = staff_client.get(reverse("admin:profiles_importjob_failed_rows", args=[job.pk]))
    body = b"".join(failed.streaming_content).decode("utf-8")
    assert failed["Content-Type"].startswith("text/csv")
    assert body.count("\n") == 3 and "'=HYPERLINK" in body

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
                           "订单号": "external_id", "品类": "property:category"}
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


# --- the preview shows what is stored; a landline in the mobile column; one choice; links ---

MESSY = ("客户编号,姓名,手机,性别,出生日期,城市\n"
         "C1,张伟,138 0013 8000,女士,1995年3月2日,上海市\n"
         "C2,李娜,021-6123 4567,女,1988-05-12,北京\n")


def upload_text(client, text: str, name="crm.csv", **data):
    return client.post(reverse("admin:profiles_importjob_upload"), {
        "file": SimpleUploadedFile(name, text.encode()), "kind": "profiles", "source": "crm", **data})


def map_and_preview(client, job, **data):
    return client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {
        **{f"column-{i}": job.mapping[h] for i, h in enumerate(job.headers)}, "precedence": "crm_id, phone",
        "mode": "create_or_update", "error_policy": "skip", **data})


def test_the_preview_shows_each_cell_as_it_will_be_stored_beside_the_raw_one(staff_client):
    # given a CRM file with values in the forms staff type them
    upload_text(staff_client, MESSY)
    job = ImportJob.objects.get()
    # when it is previewed
    map_and_preview(staff_client, job)
    text = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    # then each changed cell shows the stored value beside the raw one
    assert "138 0013 8000" in text and '<span class="stored"' in text
    for stored in ("→ +8613800138000<", "→ 上海<", "→ 女<", "→ 1995-03-02<"):
        assert stored in text, stored
    assert "→ 北京" not in text and "→ C1" not in text and "→ 张伟" not in text  # unchanged cells show once


def test_staff_without_personal_data_access_see_the_stored_phone_masked(staff_client, django_user_model):
    from django.contrib.auth.models import Group

    # given a preview made by the uploader
    upload_text(staff_client, MESSY)
    job = ImportJob.objects.get()
    map_and_preview(staff_client, job)
    # when a marketer who may not see personal data opens it
    marketer = django_user_model.objects.create_user(username="mei", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name="营销 marketer"))
    staff_client.force_login(marketer)
    text = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    # then the stored phone is masked like the raw one, and so is the landline in its warning
    assert "+8613800138000" not in text and "138****8000" in text
    assert "6123 4567" not in text and 'id="import-warnings"' in text


def test_a_landline_in_the_mobile_column_is_refused_with_a_warning_and_the_row_kept(staff_client):
    # given a file whose second customer has a Shanghai landline in the mobile column
    upload_text(staff_client, MESSY)
    job = ImportJob.objects.get()
    # when it is previewed
    map_and_preview(staff_client, job)
    job.refresh_from_db()
    # then the row counts as a new customer, with a warning naming its row and column
    assert (job.created, job.failed) == (2, 0)
    assert job.report["warnings"]["count"] == 1
    page = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    warnings = page.split('id="import-warnings"')[1].split("</table>")[0]
    assert "<td>3</td>" in warnings and "手机" in warnings and "021-6123 4567" in warnings
    # when it runs
    staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    # then the customer is imported without the landline as their mobile phone
    li_na = Profile.objects.get(name="李娜")
    assert li_na.phone == "" and li_na.city == "北京" and li_na.gender == "female"
    assert not li_na.identities.filter(kind_id="phone").exists()
    assert Profile.objects.get(name="张伟").phone == "+8613800138000"


def test_a_row_whose_only_key_is_a_landline_fails_with_the_landline_message(staff_client):
    upload_text(staff_client, "姓名,手机\n王芳,(021) 6123 4567\n")
    job = ImportJob.objects.get()
    map_and_preview(staff_client, job, precedence="phone")
    job.refresh_from_db()
    assert (job.created, job.failed) == (0, 1)
    assert [e["code"] for e in job.row_errors.get().errors] == ["landline_in_mobile_column"]


def test_mode_and_error_policy_are_asked_once_on_the_mapping_page_and_shown_before_running(staff_client):
    # when staff open the upload form
    form = staff_client.get(reverse("admin:profiles_importjob_upload")).content.decode()
    # then it asks neither mode nor error policy
    assert 'name="mode"' not in form and 'name="error_policy"' not in form
    # and the mapping page asks them
    upload_text(staff_client, MESSY)
    job = ImportJob.objects.get()
    mapping = staff_client.get(reverse("admin:profiles_importjob_mapping", args=[job.pk])).content.decode()
    assert 'name="mode"' in mapping and 'name="error_policy"' in mapping
    # and what was chosen there is what the preview's run button will do
    map_and_preview(staff_client, job, mode="update_only", error_policy="all_or_nothing")
    page = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    choices = page.split('id="run-choices"')[1].split("</p>")[0]
    assert "只更新已有客户" in choices and "全部成功才导入" in choices


def test_the_job_page_links_to_the_customers_it_created_and_updated(staff_client, django_assert_max_num_queries):
    from tests.factories import ProfileFactory

    # given a customer who is not in the file, and one the file updates
    bystander = ProfileFactory(name="路人")
    upload_text(staff_client, "客户编号,姓名,城市\nC1,张伟,上海\n")
    first = ImportJob.objects.get()
    map_and_preview(staff_client, first, precedence="crm_id")
    staff_client.post(reverse("admin:profiles_importjob_run", args=[first.pk]))
    # when a second file updates C1 and creates C2
    upload_text(staff_client, "客户编号,姓名,城市\nC1,张伟,杭州\nC2,李娜,北京\n")
    job = ImportJob.objects.exclude(pk=first.pk).get()
    map_and_preview(staff_client, job, precedence="crm_id")
    staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    with django_assert_max_num_queries(30):
        page = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    # then the job page links to each list, with its count
    links = page.split('id="import-touched"')[1].split("</ul>")[0]
    created_url = f"{reverse('admin:profiles_profile_changelist')}?import_job={job.pk}-created"
    updated_url = f"{reverse('admin:profiles_profile_changelist')}?import_job={job.pk}-updated"
    assert created_url in links and updated_url in links
    assert [c.split("<")[0] for c in links.split('class="touched-count">')[1:]] == ["1", "1"]
    # and each link lists exactly those customers
    created = staff_client.get(created_url).content.decode()
    updated = staff_client.get(updated_url).content.decode()
    assert "李娜" in created and "张伟" not in created and bystander.name not in created
    assert "张伟" in updated and "李娜" not in updated and bystander.name not in updated
    # and the sidebar says which import the list is narrowed to
    assert f"由导入 #{job.pk} 新建" in created and f"由导入 #{job.pk} 更新" in updated
    # and an unknown import lists nobody (never everybody)
    nobody = staff_client.get(f"{reverse('admin:profiles_profile_changelist')}?import_job=999999-created")
    assert nobody.status_code == 200 and bystander.name not in nobody.content.decode()


def test_an_undone_import_or_a_preview_links_to_nobody(staff_client):
    upload_text(staff_client, "客户编号,姓名\nC1,张伟\n")
    job = ImportJob.objects.get()
    map_and_preview(staff_client, job, precedence="crm_id")
    assert 'id="import-touched"' not in staff_client.get(
        reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    staff_client.post(reverse("admin:profiles_importjob_undo", args=[job.pk]))
    assert 'id="import-touched"' not in staff_client.get(
        reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()


def test_an_events_import_links_to_the_customers_whose_events_it_added(staff_client):
    from tests.factories import IdentityFactory, ProfileFactory

    # given two customers, one of whom the events file names
    buyer = ProfileFactory(name="买家", phone="+8613800138000")
    IdentityFactory(profile=buyer, kind_id="phone", value="+8613800138000")
    ProfileFactory(name="路人")
    upload_text(staff_client, "手机号,事件,下单时间,实付金额,订单号\n13800138000,订单,2024-03-01 12:30:00,¥199,SO-1\n",
                kind="events")
    job = ImportJob.objects.get()
    map_and_preview(staff_client, job, precedence="phone")
    page = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    # then the preview shows the amount and the time as stored
    assert "→ 199.00<" in page and "→ order<" in page
    # when it runs
    staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    page = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    # then the job page links to the one customer
    links = page.split('id="import-touched"')[1].split("</ul>")[0]
    assert f"import_job={job.pk}-updated" in links and 'class="touched-count">1<' in links
    listing = staff_client.get(f"{reverse('admin:profiles_profile_changelist')}?import_job={job.pk}-updated")
    assert "买家" in listing.content.decode() and "路人" not in listing.content.decode()
    # and to the events it added, and to no others
    from profiles.models import Event
    from tests.factories import EventFactory

    other = EventFactory(profile=buyer, name="page_view", external_id="OTHER-1")
    assert Event.objects.count() == 2
    events_url = f"{reverse('admin:profiles_event_changelist')}?import_job={job.pk}"
    assert events_url in links
    events = staff_client.get(events_url).content.decode()
    assert "SO-1" in events and other.external_id not in events
    assert "OTHER-1" not in staff_client.get(f"{reverse('admin:profiles_event_changelist')}?import_job=999999").content.decode()


def test_a_consent_import_previews_statuses_as_stored_and_links_to_its_customers(staff_client):
    import datetime

    from cdp.actors import Actor
    from consent.services import consent_record
    from tests.factories import IdentityFactory, ProfileFactory

    # given a customer who withdrew their e-mail consent, and one the file does not name
    profile = ProfileFactory(name="同意人", phone="+8613800138000")
    IdentityFactory(profile=profile, kind_id="phone", value="+8613800138000")
    consent_record(profile=profile, purpose_code="email_marketing", status="withdrawn", source="admin",
                   actor=Actor.system("tests"), captured_at=datetime.datetime(2026, 10, 1, tzinfo=datetime.UTC))
    ProfileFactory(name="路人")
    # when a consent file in Chinese words is previewed
    upload_text(staff_client, "手机号,用途,同意状态,同意时间\n13800138000,email_marketing,同意,2026/11/1 10:00\n",
                kind="consent")
    job = ImportJob.objects.get()
    map_and_preview(staff_client, job, precedence="phone")
    page = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    # then the status and the time show as they will be recorded
    assert "→ 已同意<" in page and "→ 2026-11-01 10:00<" in page
    # when it runs, then the job page links to the customer whose consent it recorded
    staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]))
    page = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    links = page.split('id="import-touched"')[1].split("</ul>")[0]
    assert "本次导入记录了同意的客户" in links and 'class="touched-count">1<' in links
    listing = staff_client.get(f"{reverse('admin:profiles_profile_changelist')}?import_job={job.pk}-updated")
    assert "同意人" in listing.content.decode() and "路人" not in listing.content.decode()
