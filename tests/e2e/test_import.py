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
    assert page.inner_text("#import-counts .count-created") == "2"
    assert page.inner_text("#import-counts .count-failed") == "3"
    errors = page.inner_text("#import-errors")
    assert "12345" in errors and "1992-02-30" in errors and "不存在的标签" in errors
    assert not Profile.objects.exists()

    # when they import
    page.click("#run-import")
    page.wait_for_selector("#undo-import")
    assert page.locator("#import-status").get_attribute("data-status") == ImportStatus.DONE
    assert Profile.objects.count() == 2
    assert AttributeDefinition.objects.filter(key="会员等级").exists()
    assert Profile.objects.get(name="张伟").profile_tags.count() == 2

    # and download the failed rows to fix them
    with page.expect_download() as download_info:
        page.click("#failed-rows")
    failed = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    assert failed.count("\n") == 4  # header + 3 failed rows
    assert "CRM0003" in failed and "'=HYPERLINK" in failed  # the formula is neutralised

    # when they undo the whole import (after confirming)
    page.click("#undo-import")
    page.click("#import-undo input[type=submit]")

    # then everything it created is gone
    page.wait_for_selector("#import-status[data-status='undone']")
    assert not Profile.objects.exists()
    assert ImportJob.objects.get().status == ImportStatus.UNDONE
