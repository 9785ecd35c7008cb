"""The helpers every download uses: formula-safe cells that keep phone numbers as they are,
XLSX cells as typed strings, and the importer reading its own failed-rows file back."""
import io
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from cdp.actors import Actor
from cdp.exports import csv_bytes, spreadsheet_safe, xlsx_row
from profiles.importing.jobs import failed_rows_lines, import_job_create
from profiles.importing.pipeline import import_run
from profiles.models import Profile


@pytest.mark.parametrize("value", [
    "+8613800138000", "+86 138 0013 8000", "+86-138-0013-8000", "+44 7911 123456", "+1 (415) 555-2671",
])
def test_a_valid_phone_number_is_data_not_a_formula(value):
    assert spreadsheet_safe(value) == value


@pytest.mark.parametrize("value", [
    "+86138",  # too short to be a number anywhere
    "+8613800138000+HYPERLINK(\"http://evil\")", "+cmd|' /C calc'!A0", "+86 138 0013 8000;1", "+A1",
    "=+8613800138000", "-8613800138000",
])
def test_text_that_only_looks_like_a_phone_is_still_escaped(value):
    assert spreadsheet_safe(value) == "'" + value


def test_csv_keeps_phones_and_escapes_formulas():
    text = csv_bytes(["phone", "note"], [{"phone": "+8613800138000", "note": "=1+1"}]).decode("utf-8")
    assert text == "\ufeffphone,note\r\n+8613800138000,'=1+1\r\n"


def test_xlsx_cells_are_typed_strings_so_nothing_is_a_formula():
    # given a write-only workbook
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    # when a row of risky text, a phone and a number is appended
    sheet.append(xlsx_row(sheet, ["=HYPERLINK(\"http://evil\")", "+8613800138000", "@SUM(A1)", "#N/A", "bad\x01char",
                                  3]))
    buffer = io.BytesIO()
    workbook.save(buffer)
    # then every text cell is a string holding exactly the data, and the number a number
    cells = list(load_workbook(io.BytesIO(buffer.getvalue())).active[1])
    assert [cell.value for cell in cells] == [
        "=HYPERLINK(\"http://evil\")", "+8613800138000", "@SUM(A1)", "#N/A", "badchar", 3]
    assert [cell.data_type for cell in cells] == ["s", "s", "s", "s", "s", "n"]


@pytest.mark.django_db
def test_the_failed_rows_file_imports_again_once_fixed(tmp_path: Path):
    # given a CRM file where one customer has an E.164 phone but a broken email
    source = tmp_path / "crm.csv"
    source.write_text("客户编号,姓名,手机,邮箱\n"
                      "C1,张伟,+8613800138000,zhang.wei@example.com\n"
                      "C2,王芳,+86 139 0013 9000,wang.fang@@example\n", encoding="utf-8")
    actor = Actor.system("tests")
    job, _table = import_job_create(path=str(source), name="crm.csv", actor=actor)
    job = import_run(job)
    assert (job.created, job.failed) == (1, 1)
    # when the failed rows are downloaded, the email fixed, and the file imported again
    failed = "".join(failed_rows_lines(job, job.headers))
    assert "+86 139 0013 9000" in failed and "'+86" not in failed
    fixed = tmp_path / "crm-failed-rows.csv"
    fixed.write_text(failed.replace("wang.fang@@example", "wang.fang@example.com"), encoding="utf-8")
    again, _table = import_job_create(path=str(fixed), name=fixed.name, actor=actor)
    again = import_run(again)
    # then the customer goes in with their phone
    assert (again.created, again.failed) == (1, 0), list(again.row_errors.values_list("errors", flat=True))
    assert Profile.objects.get(name="王芳").phone == "+8613900139000"


@pytest.mark.django_db
def test_a_file_exported_with_escaped_phones_still_imports(tmp_path: Path):
    # given a file written before phones were kept as they are: '+86… with the apostrophe
    source = tmp_path / "old-export.csv"
    source.write_text("客户编号,姓名,手机\nC9,赵磊,'+8613600136000\n", encoding="utf-8-sig")
    # when it is imported
    job, _table = import_job_create(path=str(source), name=source.name, actor=Actor.system("tests"))
    job = import_run(job)
    # then the apostrophe is read as the spreadsheet's text mark, not as part of the number
    assert (job.created, job.failed) == (1, 0)
    assert Profile.objects.get(name="赵磊").phone == "+8613600136000"
