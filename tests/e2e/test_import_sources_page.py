"""Watched import sources in the browser, in Chinese, at 1440 px: a source made in the admin,
polled with "poll now", then the list shows its last and next run, its files and errors and
a link to the imports it created, without overflowing sideways."""
import os
from pathlib import Path

from profiles.importing.sources import import_source_poll
from profiles.models import ImportSource
from tests.e2e.conftest import log_in

SCREENSHOTS = os.environ.get("CDP_E2E_SCREENSHOTS")
CRM = (Path(__file__).parents[1] / "profiles" / "data" / "crm_gb18030.csv").read_bytes()


def test_a_watched_folder_made_and_polled_in_the_admin(page, live_server, admin_login, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 1440, "height": 900})
    drop = tmp_path / "crm-drop-with-a-rather-long-shared-mount-path" / "daily-exports"
    drop.mkdir(parents=True)
    (drop / "members-2026-12-05.csv").write_bytes(CRM)
    (drop / "notes.csv").write_bytes("备注,日期\n你好,2024-01-01\n".encode())
    log_in(page, live_server, *admin_login)

    # given a source made in the admin form
    page.goto(f"{live_server.url}/admin/profiles/importsource/add/")
    page.fill("#id_name", "旧CRM 每日导出")
    page.fill("#id_path", str(drop))
    page.fill("#id_interval_minutes", "30")
    page.click("input[name=_save]")
    source = ImportSource.objects.get()

    # when it is polled (what "poll now" queues; run here, the worker is not part of this test)
    import_source_poll(source.pk, force=True)
    page.goto(f"{live_server.url}/admin/profiles/importsource/")

    # then the list tells what happened, in Chinese, within the page's width
    text = page.inner_text("#content")
    assert "监控的导入来源" in page.content() and "1 个已导入，1 个失败，0 个已导入过" in text
    assert "notes.csv" in text and "2 次导入" in text
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "import-sources.png"), full_page=True)
    assert width <= 1440, width
    table = page.evaluate("() => { const r = document.querySelector('#changelist .results'); "
                          "return [r.scrollWidth, r.clientWidth]; }")
    assert table[0] <= table[1], table  # every column in view, none behind a scroll bar
    page.click("text=2 次导入")
    assert "members-2026-12-05.csv" in page.inner_text("#result_list")
    assert errors == []
