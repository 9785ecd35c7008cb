"""`import_file` on a large file: every failed row named by its line, grouped by the kind of
error with ranges, and the failed rows written next to the file unless told otherwise."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from profiles.management.commands.import_file import row_ranges
from profiles.models import Profile

pytestmark = pytest.mark.django_db


class _Out:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def crm_file(tmp_path, name="crm.csv"):
    """Rows 2–251 good, except bad phones on rows 482-style runs: 102–105 and 240, and
    rows 150–151 without any identity. More than the 100 the command used to print."""
    lines = ["客户编号,姓名,手机"]
    for row in range(2, 252):
        if 102 <= row <= 105 or row == 240:
            lines.append(f"C{row},坏号码,12345")
        elif row in (150, 151):
            lines.append(",没有编号,")
        else:
            lines.append(f"C{row},客户{row},138{row:08d}")
    for row in range(252, 402):  # 150 more bad phones: more failed rows than the old limit of 100
        lines.append(f"C{row},坏号码,1{row}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(*args) -> tuple[str, int]:
    out = _Out()
    try:
        call_command("import_file", *map(str, args), stdout=out, stderr=_Out())
    except SystemExit as exit_info:
        return out.text, exit_info.code
    return out.text, 0


def test_row_ranges_read_like_a_person_would_write_them():
    assert row_ranges([482, 483, 484, 485, 1203, 1205, 1206]) == "第 482–485、1,203、1,205–1,206 行"


def test_every_failed_row_is_named_by_kind_with_ranges_and_written_next_to_the_file(tmp_path):
    path = crm_file(tmp_path)
    text, code = run(path)
    assert code == 2 and Profile.objects.count() == 250 - 7
    # every failed row, the last ones too, in one line per kind of error and column
    assert "第 102–105、240、252–401 行" in text
    assert "[手机]" in text and "155 行" in text
    assert "no_identity · 2 行：第 150–151 行" in text or "no_identity · 2 行: 第 150–151 行" in text
    # the failed rows file is next to the file, and named in the output
    failed = tmp_path / "crm-failed-rows.csv"
    assert str(failed) in text
    assert failed.read_text(encoding="utf-8-sig").count("\n") == 1 + 157


def test_the_failed_rows_file_can_be_placed_or_left_out(tmp_path):
    path = crm_file(tmp_path)
    elsewhere = tmp_path / "out" / "bad.csv"
    elsewhere.parent.mkdir()
    text, _code = run(path, "--dry-run", "--failed-rows", elsewhere)
    assert elsewhere.exists() and str(elsewhere) in text
    assert not (tmp_path / "crm-failed-rows.csv").exists()
    text, _code = run(path, "--dry-run", "--no-failed-rows")
    assert not (tmp_path / "crm-failed-rows.csv").exists() and "crm-failed-rows" not in text
    with pytest.raises(CommandError):
        run(path, "--failed-rows", elsewhere, "--no-failed-rows")
    assert not Profile.objects.exists()


def test_no_file_is_written_when_nothing_failed(tmp_path):
    path = tmp_path / "good.csv"
    path.write_text("手机\n13800138000\n", encoding="utf-8")
    _text, code = run(path)
    assert code == 0 and not (tmp_path / "good-failed-rows.csv").exists()
