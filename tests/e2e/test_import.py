"""A staff member imports a messy GB18030 CRM export in the browser: preview, fix the mapping,
import, see the per-row errors, download the failed rows, undo the whole import."""
from pathlib import Path

from profiles.models import AttributeDefinition, ImportJob, ImportStatus, Profile
from tests.e2e.conftest import log_in
from tests.factories import TagFactory

CRM_FILE = Path(__file__).resolve().parents[1] / "profiles" / "data" / "crm_gb18030.csv"


def test_messy_crm_file_preview_fix_mapping_import_errors_failed_rows_undo(page, live_server, admin_login, settings,
                                                                          tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    # given the tags the CRM file names, and a staff member in the admin
    TagFactory(name="VIP", slug="vip")
    TagFactory(name="高价值", slug="high-value")
    log_in(page, live_server, *admin_login)

    # when they upload the GB18030 export
    page.goto(f"{live_server.url}/admin/profiles/importjob/")
    page.click("#content-main .object-tools a.addlink")
    page.set_input_files("input[name=file]", str(CRM_FILE))
    page.fill("input[name=source]", "老CRM")
    page.click("#import-upload input[type=submit]")

    # then the mapping screen read the Chinese headers (the encoding was detected)
    page.wait_for_selector("#mapping-table")
    assert "GB18030" in page.content()
    assert page.locator("select[data-header='手机']").input_value() == "phone"
    assert page.locator("select[data-header='客户编号']").input_value() == "identity:crm_id"
    assert page.locator("select[data-header='会员等级']").input_value() == ""

    # when they fix the mapping (会员等级 becomes a custom trait) and preview
    page.select_option("select[data-header='会员等级']", "new_trait:string")
    page.fill("#id_template_name", "老CRM导出")
    page.click("#import-mapping input[name=preview]")

    # then the preview says what would happen, with every error, and nothing is written yet
    page.wait_for_selector("#import-counts")
    assert page.inner_text("#import-counts .count-created") == "3"  # a tag not in the taxonomy costs no one
    assert page.inner_text("#import-counts .count-failed") == "2"
    errors = page.inner_text("#import-errors")
    assert "12345" in errors and "1992-02-30" in errors and "不存在的标签" in page.inner_text("#import-unknown-tags")
    assert not Profile.objects.exists()

    # when they import
    page.click("#run-import")
    page.wait_for_selector("#undo-import")
    assert page.locator("#import-status").get_attribute("data-status") == ImportStatus.DONE
    assert Profile.objects.count() == 3
    assert AttributeDefinition.objects.filter(key="会员等级").exists()
    assert Profile.objects.get(name="张伟").profile_tags.count() == 2

    # and download the failed rows to fix them
    with page.expect_download() as download_info:
        page.click("#failed-rows")
    failed = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    assert failed.count("\n") == 3  # header + 2 failed rows
    assert "CRM0003" in failed and "'=HYPERLINK" in failed  # the formula is neutralised

    # when they undo the whole import (after confirming)
    page.click("#undo-import")
    page.click("#import-undo input[type=submit]")

    # then everything it created is gone
    page.wait_for_selector("#import-status[data-status='undone']")
    assert not Profile.objects.exists()
    assert ImportJob.objects.get().status == ImportStatus.UNDONE


def test_an_interrupted_import_is_resumed_and_a_large_undo_followed_in_the_browser(page, live_server, admin_login,
                                                                                  settings, tmp_path, monkeypatch):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from cdp.actors import Actor
    from profiles import tasks
    from profiles.importing.files import upload_dir
    from profiles.importing.housekeeping import import_jobs_interrupt_stale
    from profiles.importing.jobs import import_job_create
    from profiles.importing.pipeline import import_run

    settings.MEDIA_ROOT = str(tmp_path)
    settings.CDP_IMPORT_INLINE_BYTES = 10  # every undo goes to the background
    user = get_user_model().objects.get(username=admin_login[0])

    # given an import of 9 customers whose worker died after its first batch of 3
    path = f"{upload_dir()}/customers.csv"
    with open(path, "w", encoding="utf-8") as file:
        file.write("crm_id,name,phone\n" + "".join(f"C{n},客户{n},+86139{n:08d}\n" for n in range(9)))
    job, _table = import_job_create(path=path, name="customers.csv", actor=Actor.staff(user))

    class Killed(BaseException):
        pass

    def die(_job):
        raise Killed

    try:
        import_run(job, batch_size=3, on_progress=die)
    except Killed:
        pass
    assert import_jobs_interrupt_stale(now=timezone.now() + timezone.timedelta(hours=1)) == [job.pk]
    assert Profile.objects.count() == 3

    # when its uploader opens it, then it says it was interrupted and offers to resume or undo
    log_in(page, live_server, *admin_login)
    page.goto(f"{live_server.url}/admin/profiles/importjob/{job.pk}/change/")
    assert page.locator("#import-status").get_attribute("data-status") == ImportStatus.INTERRUPTED
    assert "已中断" in page.inner_text("#import-status") and page.is_visible("#import-error")

    # when they resume it, then the rest is imported
    page.click("#resume-import")
    page.wait_for_selector("#import-status[data-status='done']")
    assert page.inner_text("#import-counts .count-created") == "9"
    assert Profile.objects.count() == 9

    # when they undo it (a large file: the undo is queued), then the page follows its progress
    queued = []
    monkeypatch.setattr(tasks.undo_import, "delay", lambda *args: queued.append(args))
    page.click("#undo-import")
    page.click("#import-undo input[type=submit]")
    page.wait_for_selector("#import-undo-progress")
    assert queued == [(job.pk, user.pk)] and Profile.objects.count() == 9
    # and once the worker has done it, the page shows the import undone by itself
    assert tasks.undo_import(*queued[0]) == ImportStatus.UNDONE
    page.wait_for_selector("#import-status[data-status='undone']")
    assert not Profile.objects.exists()


def test_another_marketer_reads_the_job_masked_and_cannot_run_it(page, live_server, settings, tmp_path):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from cdp.actors import Actor
    from profiles.importing.files import upload_dir
    from profiles.importing.jobs import import_job_create
    from profiles.importing.pipeline import import_run

    settings.MEDIA_ROOT = str(tmp_path)
    users = get_user_model()
    uploader = users.objects.create_user("wang", password="browser-test-pw-1", is_staff=True)
    reader = users.objects.create_user("mei", password="browser-test-pw-2", is_staff=True)
    for user in (uploader, reader):
        user.groups.add(Group.objects.get(name="营销 marketer"))
    # given a file previewed by one marketer, with a phone in an unmapped remark column
    path = f"{upload_dir()}/customers.csv"
    with open(path, "w", encoding="utf-8") as file:
        file.write("crm_id,name,phone,remark\nC1,张伟,13800138000,备用 13900139000 / wei@example.com\n")
    job, _table = import_job_create(path=path, name="customers.csv", actor=Actor.staff(uploader))
    job.mapping["remark"] = ""
    job.save()
    import_run(job, dry_run=True)

    # when another marketer opens the job page
    log_in(page, live_server, "mei", "browser-test-pw-2")
    page.goto(f"{live_server.url}/admin/profiles/importjob/{job.pk}/change/")

    # then they read no phone or e-mail, and may neither run it nor change its mapping
    samples = page.inner_text(".import-samples")
    assert "张伟" in samples and "138****8000" in samples and "139****9000" in samples and "w***@example.com" in samples
    for raw in ("13800138000", "13900139000", "wei@example.com"):
        assert raw not in page.content()
    assert not page.is_visible("#run-import") and not page.is_visible("#change-mapping")


def test_preview_shows_stored_values_and_landline_warning_then_job_links_to_its_customers(page, live_server,
                                                                                         admin_login, settings,
                                                                                         tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    # given a CRM export with phones, genders, dates and cities as staff type them, one of
    # them a Shanghai landline in the mobile column, and a customer who was there before
    crm = tmp_path / "会员.csv"
    crm.write_text("客户编号,姓名,手机,性别,出生日期,城市\n"
                   "C1,张伟,138 0013 8000,女士,1995年3月2日,上海市\n"
                   "C2,李娜,021-6123 4567,女,1988-05-12,北京\n", encoding="utf-8")
    from tests.factories import ProfileFactory

    ProfileFactory(name="老客户")
    log_in(page, live_server, *admin_login)

    # when they upload it: the form does not ask for the mode or the error policy
    page.goto(f"{live_server.url}/admin/profiles/importjob/new/")
    assert page.locator("#import-upload select[name=mode]").count() == 0
    assert page.locator("#import-upload select[name=error_policy]").count() == 0
    page.set_input_files("input[name=file]", str(crm))
    page.click("#import-upload input[type=submit]")

    # then the mapping page asks them, once; they choose all or nothing and preview
    page.wait_for_selector("#mapping-table")
    page.select_option("#id_error_policy", "all_or_nothing")
    page.click("#import-mapping input[name=preview]")

    # then the preview shows each cell as it will be stored beside the raw one
    page.wait_for_selector("#import-counts")
    samples = page.inner_text(".import-samples")
    for raw, stored in (("138 0013 8000", "+8613800138000"), ("上海市", "上海"), ("女士", "女"),
                        ("1995年3月2日", "1995-03-02")):
        assert raw in samples and f"→ {stored}" in samples, (raw, stored)
    # and the landline is a warning with its row, column and what to do, not a silent phone
    assert page.inner_text("#import-counts .count-created") == "2"
    assert page.inner_text("#import-counts .count-failed") == "0"
    warning = page.inner_text("#import-warnings")
    assert "3" in warning and "手机" in warning and "是座机号码，不是手机号" in warning
    assert "1 行" in page.inner_text("#import-warnings-note")
    # and the run button says how it will import
    assert "全部成功才导入" in page.inner_text("#run-choices")

    # when they import
    page.click("#run-import")
    page.wait_for_selector("#import-status[data-status='done']")
    assert Profile.objects.get(name="李娜").phone == ""

    # then the job page links to the customers it created, with their number
    link = page.locator("#import-touched a.touched-created")
    assert link.inner_text() == "本次导入新建的客户"
    assert page.locator("#import-touched .touched-count").first.inner_text() == "2"
    link.click()

    # and the customer list shows exactly those, narrowed by this import
    page.wait_for_selector("#result_list")
    listing = page.inner_text("#result_list")
    assert "张伟" in listing and "李娜" in listing and "老客户" not in listing
    job = ImportJob.objects.get()
    assert f"由导入 #{job.pk} 新建" in page.inner_text("#changelist-filter")
