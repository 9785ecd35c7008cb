"""Importing customers and events from CRM files: readers, mapping, the pipeline, undo, the CLI."""
import datetime
import decimal
import json
from pathlib import Path

import pytest
from django.utils import timezone
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from cdp.actors import Actor
from cdp.exports import csv_bytes, spreadsheet_safe
from profiles.importing.jobs import failed_rows_lines, import_job_create, mapping_template_save
from profiles.importing.mapping import guess_mapping
from profiles.importing.pipeline import import_run
from profiles.importing.readers import ReadError, detect_encoding, open_table
from profiles.importing.rows import parse_datetime
from profiles.importing.undo import import_undo
from profiles.models import (
    AttributeDefinition,
    Event,
    Identity,
    ImportJob,
    ImportStatus,
    Profile,
    ProfileActivity,
    ProfileTag,
)
from profiles.normalisers import NormalisationError
from tests.concurrency import run_together
from tests.factories import IdentityFactory, ProfileFactory, TagFactory

DATA = Path(__file__).parent / "data"
ACTOR = Actor.system("tests")
pytestmark = pytest.mark.django_db

HEADER = "客户编号,姓名,手机,邮箱,性别,生日,城市\n"


def write(tmp_path, text: str, name="customers.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(path, *, dry_run=False, name=None, **options) -> ImportJob:
    mapping = options.pop("mapping", None)
    job, _table = import_job_create(path=str(path), name=name or Path(path).name, actor=ACTOR, **options)
    if mapping:
        job.mapping.update(mapping)
        job.save()
    return import_run(job, dry_run=dry_run)


def counts(job) -> dict:
    return {k: getattr(job, k) for k in ("created", "updated", "unchanged", "skipped", "failed")}


def errors_of(job) -> list[tuple[int, str, str]]:
    return [(e.row_number, item["column"], item["code"]) for e in job.row_errors.order_by("row_number")
            for item in e.errors]


# --- readers -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding, expected", [
    ("utf-8", "utf-8-sig"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("utf-16", "utf-16"),
])
def test_each_encoding_is_detected_and_read(tmp_path, encoding, expected):
    path = write(tmp_path, HEADER + "C1,张伟,13800138000,,男,,上海市\n", encoding=encoding)
    assert detect_encoding(str(path)) == expected
    job = run(path)
    assert job.encoding == expected
    assert counts(job)["created"] == 1
    assert Profile.objects.get().name == "张伟"
    assert Profile.objects.get().city == "上海"


def test_utf8_is_tried_before_gb18030(tmp_path):
    # "涓枃" is what "中文" in UTF-8 looks like when wrongly decoded as GB18030.
    path = write(tmp_path, HEADER + "C1,中文,13800138000,,,,\n")
    assert detect_encoding(str(path)) == "utf-8-sig"
    run(path)
    assert Profile.objects.get().name == "中文"


def test_utf16_without_bom_is_recognised(tmp_path):
    path = write(tmp_path, "姓名\t手机\n张伟\t13800138000\n", name="x.txt", encoding="utf-16-le")
    assert detect_encoding(str(path)) == "utf-16-le"
    assert counts(run(path))["created"] == 1


def test_undecodable_file_is_refused_with_a_message(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\xff\xff\xff\x80\x80name\n")
    with pytest.raises(ReadError, match="UTF-8"):
        open_table(str(path))


def test_unknown_and_old_formats_are_refused(tmp_path):
    for name in ("x.pdf", "x.xls"):
        path = write(tmp_path, "a,b\n", name=name)
        with pytest.raises(ReadError):
            open_table(str(path))


def test_excel_unicode_text():
    job = run(DATA / "customers_utf16.txt")
    assert (job.encoding, job.file_format, job.created) == ("utf-16", "tsv", 2)
    assert Profile.objects.filter(city="上海").count() == 1


def test_xlsx():
    job = run(DATA / "customers.xlsx")
    assert job.file_format == "xlsx"
    assert (job.created, job.failed) == (2, 1)  # the trailing blank rows are no rows at all
    li = Profile.objects.get(identities__value="X002")
    assert li.birth_date == datetime.date(1988, 5, 12)  # an Excel serial date
    assert li.city == "北京"  # "Beijing"
    assert Profile.objects.get(identities__value="X001").phone == "+8613800138000"  # a number cell


def test_json_array_and_json_lines(tmp_path):
    job = run(DATA / "customers.json", mapping={"tags": ""})
    assert (job.file_format, job.created) == ("json", 2)
    assert Identity.objects.filter(kind_id="crm_id", value="J001").exists()
    lines = tmp_path / "c.jsonl"
    lines.write_text('{"手机": "13700137000", "姓名": "赵六"}\n{"手机": "13600136000", "姓名": "钱七"}\n')
    assert run(lines).created == 2


def test_xlsx_with_a_long_blank_tail_stops_early(tmp_path):
    from openpyxl import Workbook

    from profiles.importing import readers

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["手机"])
    sheet.append(["13800138000"])
    for row in range(3, readers.XLSX_BLANK_ROWS_END + 50):
        sheet.cell(row=row, column=1, value="")
    sheet.append(["13900139000"])  # after the blank run: not read
    path = tmp_path / "tail.xlsx"
    workbook.save(path)
    job = run(path)
    assert job.rows_read == 1


# --- mapping -----------------------------------------------------------------------------


def test_chinese_and_english_headers_are_recognised():
    AttributeDefinition.objects.create(key="member_level", label="会员等级", type="string")
    headers = ["姓名", "手机号", "E-mail", "性别", "出生日期", "城市", "省份", "CRM 编号", "会员等级", "标签",
               "Mobile", "UnionID", "备注"]
    mapping = guess_mapping("profiles", headers)
    assert mapping == {
        "姓名": "name", "手机号": "phone", "E-mail": "email", "性别": "gender", "出生日期": "birth_date",
        "城市": "city", "省份": "province", "CRM 编号": "identity:crm_id", "会员等级": "trait:member_level",
        "标签": "tags", "Mobile": "", "UnionID": "identity:wechat_unionid", "备注": "",
    }  # a second phone column is left for the user to decide


def test_a_wechat_id_column_finds_and_keys_the_customer(tmp_path):
    path = write(tmp_path, "手机,微信号\n13800138000,wx_ZhangWei\n,wx_ZhangWei\n")
    assert guess_mapping("profiles", ["手机", "微信号"]) == {"手机": "phone", "微信号": "identity:wechat_id"}
    job = run(path)
    assert job.created == 1 and Profile.objects.count() == 1  # the second row is the same person, by WeChat ID alone
    assert Identity.objects.get(kind_id="wechat_id").value == "wx_ZhangWei"


def test_mapping_needs_an_identity_column(tmp_path):
    path = write(tmp_path, "姓名,城市\n张伟,上海\n")
    job = run(path)
    assert job.status == ImportStatus.FAILED
    assert "phone" in job.error or "手机" in job.error  # "map at least one column to a phone, email or id" 


def test_unknown_column_becomes_a_typed_custom_trait_or_is_ignored(tmp_path):
    path = write(tmp_path, "手机,积分,备注\n13800138000,1200,hello\n13900139000,abc,x\n")
    job = run(path, mapping={"积分": "new_trait:number"})
    definition = AttributeDefinition.objects.get(key="积分")
    assert definition.type == "number"
    assert Profile.objects.get(phone="+8613800138000").traits == {"积分": 1200}
    assert errors_of(job) == [(3, "积分", "invalid_trait")]


def test_a_dry_run_registers_no_trait(tmp_path):
    path = write(tmp_path, "手机,积分\n13800138000,1200\n")
    job = run(path, dry_run=True, mapping={"积分": "new_trait:number"})
    assert job.created == 1
    assert not AttributeDefinition.objects.exists()


def test_mapping_template_is_saved_and_reused(tmp_path):
    path = write(tmp_path, "编号X,电话X\nT1,13800138000\n")
    job, _ = import_job_create(path=str(path), name="a.csv", actor=ACTOR)
    assert job.mapping == {"编号X": "", "电话X": ""}
    job.mapping = {"编号X": "identity:crm_id", "电话X": "phone"}
    job.save()
    mapping_template_save(job=job, name="老CRM", actor=ACTOR)
    call_command("import_file", str(path), "--mapping", "老CRM", stdout=_Out(), stderr=_Out())
    assert Identity.objects.filter(kind_id="crm_id", value="T1").exists()


# --- normalisation -----------------------------------------------------------------------


def test_crm_values_are_normalised(tmp_path):
    path = write(tmp_path, HEADER + "\n".join([
        "C1,  张  伟 ,+86 138-0013-8000,Zhang.Wei@Example.COM,先生,1995年3月2日,上海市",
        "C2,李娜,0086 139 0013 9000,lina@example.com,女士,19880512,Beijing",
        "C3,王芳,８６１３７００１３７０００,,F,33000,广州市",
        "C4,赵六,021-68888888,,M,1990.7.8,",
    ]) + "\n")
    job = run(path)
    assert job.created == 4, errors_of(job)
    rows = {p.identities.get(kind_id="crm_id").value: p for p in Profile.objects.all()}
    assert (rows["C1"].name, rows["C1"].phone, rows["C1"].email, rows["C1"].gender, rows["C1"].birth_date,
            rows["C1"].city) == ("张 伟", "+8613800138000", "zhang.wei@example.com", "male",
                                 datetime.date(1995, 3, 2), "上海")
    assert (rows["C2"].phone, rows["C2"].gender, rows["C2"].city) == ("+8613900139000", "female", "北京")
    assert (rows["C3"].phone, rows["C3"].birth_date, rows["C3"].city) == (
        "+8613700137000", datetime.date(1990, 5, 7), "广州")  # Excel serial 33000
    # a landline in the mobile column is refused (the SMS channel needs a mobile), the rest of the row kept
    assert rows["C4"].phone == "" and rows["C4"].gender == "male"
    assert job.report["warnings"]["count"] == 1
    assert [(w["row"], w["column"], w["code"]) for w in job.report["warnings"]["rows"]] == [
        (5, "手机", "landline_in_mobile_column")]  # the header is row 1
    assert set(Identity.objects.filter(profile=rows["C1"]).values_list("kind_id", flat=True)) == {
        "crm_id", "phone", "email"}


def test_every_error_has_row_column_and_a_translated_message():
    job = run(DATA / "crm_gb18030.csv")
    assert job.encoding == "gb18030"
    found = errors_of(job)
    assert (4, "手机", "invalid_phone") in found
    assert (4, "邮箱", "invalid_email") in found
    assert not [row for row, _column, _code in found if row == 5]  # a tag not in the taxonomy costs no one
    assert (5, "标签", "unknown_tag") in [(w["row"], w["column"], w["code"]) for w in job.report["warnings"]["rows"]]
    assert (6, "出生日期", "invalid_date") in found
    messages = [item["message"] for e in job.row_errors.all() for item in e.errors]
    assert any("不是有效的电话号码" in m for m in messages)  # Chinese: the staff member's language


# --- matching, modes, conflicts ----------------------------------------------------------


def test_update_matches_by_identity_and_blank_never_overwrites(tmp_path):
    profile = ProfileFactory(name="老名字", phone="+8613800138000", email="old@example.com", city="北京",
                             occupation="教师")
    IdentityFactory(profile=profile, kind_id="phone", value="+8613800138000")
    path = write(tmp_path, "手机,姓名,邮箱,城市,职业,性别\n138 0013 8000,新名字,  ,上海,,未知\n")
    job = run(path)
    assert counts(job) == {"created": 0, "updated": 1, "unchanged": 0, "skipped": 0, "failed": 0}
    profile.refresh_from_db()
    assert (profile.name, profile.email, profile.city, profile.occupation, profile.gender) == (
        "新名字", "old@example.com", "上海", "教师", "female")
    assert ProfileActivity.objects.filter(profile=profile, type="imported").get().params["action"] == "updated"


def test_precedence_and_conflicts(tmp_path):
    a = ProfileFactory(phone="+8613800138000")
    b = ProfileFactory(phone="+8613900139000")
    IdentityFactory(profile=a, kind_id="crm_id", value="A1")
    IdentityFactory(profile=b, kind_id="phone", value="+8613900139000")
    path = write(tmp_path, "客户编号,手机,姓名\nA1,13900139000,冲突\nA1,,只有编号\n")
    job = run(path)
    assert errors_of(job) == [(2, "手机", "conflict")]
    assert job.updated == 1
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.name, b.name) != ("冲突", "冲突")
    assert a.name == "只有编号"
    assert Profile.objects.count() == 2  # neither merged nor duplicated


def test_modes(tmp_path):
    existing = ProfileFactory(name="旧")
    IdentityFactory(profile=existing, kind_id="crm_id", value="E1")
    path = write(tmp_path, "客户编号,姓名\nE1,新\nN1,新人\n")
    assert counts(run(path, mode="create_only")) == {
        "created": 1, "updated": 0, "unchanged": 0, "skipped": 1, "failed": 0}
    existing.refresh_from_db()
    assert existing.name == "旧"
    path2 = write(tmp_path, "客户编号,姓名\nE1,新\nN2,另一个\n", name="b.csv")
    assert counts(run(path2, mode="update_only")) == {
        "created": 0, "updated": 1, "unchanged": 0, "skipped": 1, "failed": 0}
    assert not Identity.objects.filter(value="N2").exists()


def test_the_same_person_twice_in_a_file_is_created_once_then_updated(tmp_path):
    path = write(tmp_path, "手机,姓名,城市\n13800138000,张伟,\n138 0013 8000,,上海\n")
    job = run(path)
    assert (job.created, job.updated) == (1, 1)
    assert Profile.objects.get().city == "上海"


def test_reimporting_the_same_file_changes_nothing(tmp_path):
    TagFactory(name="VIP", slug="vip")
    path = write(tmp_path, HEADER.strip() + ",标签\nC1,张伟,13800138000,a@example.com,男,1995-03-02,上海,VIP\n"
                 "C2,李娜,13900139000,,女,,北京,\n")
    first = run(path)
    assert first.created == 2
    before = (Profile.objects.count(), Identity.objects.count(), ProfileTag.objects.count(),
              ProfileActivity.objects.count())
    second = run(path)
    assert counts(second) == {"created": 0, "updated": 0, "unchanged": 2, "skipped": 0, "failed": 0}
    assert (Profile.objects.count(), Identity.objects.count(), ProfileTag.objects.count(),
            ProfileActivity.objects.count()) == before


def test_tags_column_assigns_manual_tags_with_either_separator(tmp_path):
    vip, high = TagFactory(name="VIP", slug="vip"), TagFactory(name="高价值", slug="high-value")
    path = write(tmp_path, "手机,标签\n13800138000,VIP；高价值\n13900139000,vip，high-value\n13700137000,VIP;\n")
    job = run(path)
    assert job.created == 3
    assert ProfileTag.objects.filter(tag=vip, source="import").count() == 3
    assert ProfileTag.objects.filter(tag=high).count() == 2
    vip.refresh_from_db()
    assert vip.profile_count == 3
    assert ProfileActivity.objects.filter(type="tag_added").count() == 5


def test_a_rule_tag_in_the_tags_column_is_a_warning_and_the_person_imported(tmp_path):
    TagFactory(name="高购买频率", slug="frequent-buyer", kind="rule")
    job = run(write(tmp_path, "手机,标签\n13800138000,高购买频率\n"))
    assert (job.created, job.failed) == (1, 0) and not ProfileTag.objects.exists()
    assert [w["code"] for w in job.report["warnings"]["rows"]] == ["rule_tag"]


# --- error policies, dry run, failed rows ------------------------------------------------


BAD_FILE = HEADER + "C1,张伟,13800138000,,,,\nC2,坏,12345,,,,\nC3,李娜,13900139000,,,,\n"


def test_skip_bad_rows_imports_the_rest(tmp_path):
    job = run(write(tmp_path, BAD_FILE))
    assert job.status == ImportStatus.DONE
    assert (job.created, job.failed) == (2, 1)
    assert Profile.objects.count() == 2


def test_all_or_nothing_imports_nothing_when_a_row_fails(tmp_path):
    job = run(write(tmp_path, BAD_FILE), error_policy="all_or_nothing")
    assert job.status == ImportStatus.FAILED
    assert (job.created, job.failed) == (2, 1)  # what would have happened
    assert "1" in job.error
    assert not Profile.objects.exists() and not Identity.objects.exists()
    assert errors_of(job) == [(3, "手机", "invalid_phone")]  # still reported after the rollback


def test_dry_run_reports_exactly_and_writes_nothing(tmp_path):
    ProfileFactory(name="旧", phone="+8613900139000")
    IdentityFactory(kind_id="crm_id", value="C3", profile=Profile.objects.get())
    job = run(write(tmp_path, BAD_FILE), dry_run=True)
    assert job.status == ImportStatus.PREVIEWED
    assert counts(job) == {"created": 1, "updated": 1, "unchanged": 0, "skipped": 0, "failed": 1}
    assert [s["row"] for s in job.report["samples"]["create"]] == [2]
    assert job.report["samples"]["update"][0]["changes"] == ["name"]
    assert Profile.objects.count() == 1 and Profile.objects.get().name == "旧"
    assert not job.batches.exists() and not job.changes.exists()


def test_failed_rows_file_has_an_error_column_and_is_formula_safe():
    job = run(DATA / "crm_gb18030.csv")
    text = "".join(failed_rows_lines(job, job.headers))
    assert text.startswith("\ufeff客户编号,姓名")
    lines = text.splitlines()
    assert lines[0].endswith(",errors,row") or lines[0].endswith(",错误,行")
    row4 = next(line for line in lines if line.startswith("CRM0003"))
    assert "'=HYPERLINK" in row4  # escaped: Excel shows it as text
    assert "不是有效的电话号码" in row4


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+86138", "'+86138"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("张伟", "张伟"), ("a=b", "a=b"), (5, 5), (None, None), ("", ""),
])
def test_spreadsheet_safe(value, expected):
    assert spreadsheet_safe(value) == expected


def test_csv_bytes_is_formula_safe():
    assert csv_bytes(["a", "b"], [{"a": "=cmd", "b": 1}]).decode("utf-8") == "\ufeffa,b\r\n'=cmd,1\r\n"


# --- undo --------------------------------------------------------------------------------


def test_undo_removes_created_restores_changed_and_removes_added(tmp_path):
    vip = TagFactory(name="VIP", slug="vip")
    existing = ProfileFactory(name="旧名字", city="北京", phone="+8613900139000")
    IdentityFactory(profile=existing, kind_id="phone", value="+8613900139000")
    path = write(tmp_path, "手机,姓名,城市,客户编号,标签\n13800138000,新人,上海,N1,VIP\n13900139000,新名字,,E9,VIP\n")
    job = run(path)
    assert (job.created, job.updated) == (1, 1)
    assert existing.identities.filter(kind_id="crm_id", value="E9").exists()
    job = import_undo(job=job, actor=ACTOR)
    assert job.status == ImportStatus.UNDONE
    assert list(Profile.objects.all()) == [existing]
    existing.refresh_from_db()
    assert (existing.name, existing.city) == ("旧名字", "北京")
    assert not existing.identities.filter(kind_id="crm_id").exists()
    assert not ProfileTag.objects.exists()
    vip.refresh_from_db()
    assert vip.profile_count == 0
    assert ProfileActivity.objects.filter(profile=existing, type="imported", params__action="undone").exists()
    with pytest.raises(Exception, match="cannot be undone|无法撤销|不能撤销"):
        import_undo(job=job, actor=ACTOR)


def test_a_preview_cannot_be_undone(tmp_path):
    job = run(write(tmp_path, BAD_FILE), dry_run=True)
    assert not job.can_undo


# --- events ------------------------------------------------------------------------------


SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


@pytest.mark.parametrize("value, expected", [
    ("2024-03-01 12:30", datetime.datetime(2024, 3, 1, 12, 30, tzinfo=SHANGHAI)),
    ("2024-03-01T12:30:15.25", datetime.datetime(2024, 3, 1, 12, 30, 15, 250000, tzinfo=SHANGHAI)),
    ("2024-03-01T04:30:00Z", datetime.datetime(2024, 3, 1, 4, 30, tzinfo=datetime.timezone.utc)),
    ("2024-03-01 12:30:00 +0800", datetime.datetime(2024, 3, 1, 12, 30, tzinfo=SHANGHAI)),
    ("2024-03-01", datetime.datetime(2024, 3, 1, tzinfo=SHANGHAI)),
    ("2024/3/1 9:05", datetime.datetime(2024, 3, 1, 9, 5, tzinfo=SHANGHAI)),
    ("2024.3.1", datetime.datetime(2024, 3, 1, tzinfo=SHANGHAI)),
    ("2024年3月1日 12:30", datetime.datetime(2024, 3, 1, 12, 30, tzinfo=SHANGHAI)),
    ("20240301", datetime.datetime(2024, 3, 1, tzinfo=SHANGHAI)),
    (45352.5, datetime.datetime(2024, 3, 1, 12, tzinfo=SHANGHAI)),  # an Excel serial
    (datetime.datetime(2024, 3, 1, 12, 30), datetime.datetime(2024, 3, 1, 12, 30, tzinfo=SHANGHAI)),
    ("  ", None),
])
def test_crm_timestamps_are_read(value, expected):
    result = parse_datetime(value)
    assert result == expected
    assert result is None or result.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("value", ["2024-02-30 10:00", "2024-03-01 24:30", "1850-03-01 10:00", "next Tuesday"])
def test_impossible_timestamps_are_refused(value):
    with pytest.raises(NormalisationError):
        parse_datetime(value)


def test_events_import_is_idempotent_and_updates_metrics():
    a = ProfileFactory(phone="+8613800138000")
    IdentityFactory(profile=a, kind_id="phone", value="+8613800138000")
    b = ProfileFactory(phone="+8613900139000")
    IdentityFactory(profile=b, kind_id="phone", value="+8613900139000")
    job = run(DATA / "events.csv", kind="events", mapping={"品类": "property"})
    assert counts(job) == {"created": 3, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 2}, errors_of(job)
    assert [(row, code) for row, _col, code in errors_of(job)] == [(5, "no_customer"), (6, "invalid_date")]
    order = Event.objects.get(external_id="SO-1001")
    assert (order.name, order.amount, order.profile_id, order.properties) == (
        "order", decimal.Decimal("199.00"), a.pk, {"品类": "sneakers"})
    assert order.occurred_at == datetime.datetime(2024, 3, 1, 4, 30, tzinfo=datetime.timezone.utc)
    assert Event.objects.get(external_id="SO-1001-PAY").name == "payment"
    assert Event.objects.get(external_id="SO-1002").amount == decimal.Decimal("1299.50")
    a.refresh_from_db()
    assert a.order_count == 1
    again = run(DATA / "events.csv", kind="events", mapping={"品类": "property"})
    assert (again.created, again.unchanged) == (0, 3)
    import_undo(job=job, actor=ACTOR)
    assert not Event.objects.exists()
    a.refresh_from_db()
    assert a.order_count == 0


def test_events_without_an_external_id_get_a_derived_one(tmp_path):
    a = ProfileFactory(phone="+8613800138000")
    IdentityFactory(profile=a, kind_id="phone", value="+8613800138000")
    path = write(tmp_path, "手机,事件,时间\n13800138000,page_view,2024-03-01 10:00\n")
    assert run(path, kind="events").created == 1
    assert run(path, kind="events").unchanged == 1
    assert Event.objects.get().external_id.startswith("import:")


# --- timeline, CLI, concurrency ----------------------------------------------------------


def test_imports_appear_on_the_timeline(tmp_path):
    run(write(tmp_path, "手机,姓名\n13800138000,张伟\n"))
    entry = ProfileActivity.objects.get(type="imported")
    assert entry.params["action"] == "created"
    assert "customers.csv" in entry.summary


class _Out:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_cli_prints_the_report_and_exits_non_zero_on_failure(tmp_path):
    out, err = _Out(), _Out()
    path = write(tmp_path, BAD_FILE)
    with pytest.raises(SystemExit) as exit_info:
        call_command("import_file", str(path), "--dry-run", "--on-error", "all_or_nothing", stdout=out, stderr=err)
    assert exit_info.value.code == 2  # a row would fail
    assert "100%" in err.text  # the progress bar
    assert "12345" in out.text and "[手机]" in out.text  # the error, with its row and column
    assert not Profile.objects.exists()

    failed = tmp_path / "failed.csv"
    with pytest.raises(SystemExit) as exit_info:
        call_command("import_file", str(path), "--failed-rows", str(failed), stdout=_Out(), stderr=_Out())
    assert exit_info.value.code == 2  # some rows failed, the rest went in
    assert Profile.objects.count() == 2
    assert "12345" in failed.read_text(encoding="utf-8-sig")

    with pytest.raises(SystemExit) as exit_info:
        call_command("import_file", str(write(tmp_path, "姓名\n张伟\n", name="noid.csv")), stdout=_Out(),
                     stderr=_Out())
    assert exit_info.value.code == 1


def test_cli_success_exits_zero(tmp_path):
    call_command("import_file", str(write(tmp_path, "手机\n13800138000\n")), stdout=_Out(), stderr=_Out())
    assert Profile.objects.count() == 1


def test_cli_reports_a_landline_in_the_mobile_column_as_a_warning(tmp_path):
    # given a customer file whose phone column holds a landline
    out = _Out()
    # when it is imported on the command line
    call_command("import_file", str(write(tmp_path, "客户编号,手机\nC9,021-6123 4567\n")), stdout=out, stderr=_Out())
    # then the customer is imported without it, and the report says which row and column, and why
    assert Profile.objects.get().phone == ""
    assert "第 2 行 [手机]" in out.text and "021-6123 4567”是座机号码" in out.text and "有警告的行" in out.text


@pytest.mark.parametrize("clashes, status", [(1, "done"), (2, "failed")])
def test_a_batch_that_meets_a_concurrent_insert_is_looked_at_again_once(tmp_path, monkeypatch, clashes, status):
    """Someone else adds one of the batch's identities between its look-up and its insert:
    the batch is written again once; a second clash ends the import as failed."""
    from profiles.services.bulk import bulk_writer

    store = type(bulk_writer())  # the portable writer, or PostgreSQL's
    insert = store.identities_insert
    left = {"clashes": clashes}

    def clashing_insert(self, *args, **kwargs):
        if left["clashes"]:
            left["clashes"] -= 1
            raise IntegrityError("duplicate key value violates unique constraint")
        return insert(self, *args, **kwargs)

    monkeypatch.setattr(store, "identities_insert", clashing_insert)
    job = run(write(tmp_path, "手机,姓名\n13800138000,张伟\n"))
    assert job.status == status
    assert Profile.objects.count() == (1 if status == "done" else 0)


@pytest.mark.postgres
def test_two_overlapping_imports_at_once_create_no_duplicates(tmp_path, seeded_transactional_db):
    rows = [f"{13800000000 + n},客户{n}" for n in range(300)]
    first = write(tmp_path, "手机,姓名\n" + "\n".join(rows[:200]) + "\n", name="a.csv")
    second = write(tmp_path, "手机,姓名\n" + "\n".join(rows[100:]) + "\n", name="b.csv")
    jobs = [import_job_create(path=str(p), name=p.name, actor=ACTOR)[0] for p in (first, second)]
    run_together(lambda job: import_run(job, batch_size=50), jobs)
    for job in jobs:
        job.refresh_from_db()
        assert job.status == ImportStatus.DONE, job.error
    assert Profile.objects.count() == 300
    assert sum(job.created for job in jobs) == 300
    assert connection.vendor == "postgresql"


def test_sample_files_are_small():
    assert all(path.stat().st_size < 20_000 for path in DATA.iterdir())


# --- consent, erased people --------------------------------------------------------------


def test_consent_import_records_the_ledger_idempotently_and_undo_corrects_it(tmp_path):
    from consent.models import ConsentRecord, ConsentState

    a = ProfileFactory(phone="+8613800138000", birth_date=datetime.date(1990, 1, 1))
    IdentityFactory(profile=a, kind_id="phone", value="+8613800138000")
    path = write(tmp_path, "手机,用途,同意状态,同意时间\n13800138000,email_marketing,同意,2024-03-01 10:00\n"
                 "13800138000,sms_marketing,maybe,2024-03-01 10:00\n13900139000,email_marketing,同意,\n")
    job = run(path, kind="consent")
    assert counts(job) == {"created": 1, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 2}, errors_of(job)
    assert [code for _row, _col, code in errors_of(job)] == ["invalid_status", "no_customer"]
    record = ConsentRecord.objects.get()
    assert (record.status, record.source, record.purpose.code) == ("granted", "import", "email_marketing")
    assert run(path, kind="consent").unchanged == 1  # the same file again adds nothing

    import_undo(job=job, actor=ACTOR)
    assert ConsentRecord.objects.count() == 2  # history kept: a correcting entry was appended
    assert ConsentState.objects.get(profile=a).status == "withdrawn"


def test_consent_rows_of_one_customer_in_one_batch(tmp_path):
    from consent.models import ConsentRecord, ConsentState

    a = ProfileFactory(phone="+8613800138000", birth_date=datetime.date(1990, 1, 1))
    IdentityFactory(profile=a, kind_id="phone", value="+8613800138000")
    child = ProfileFactory(phone="+8613900139000", birth_date=timezone.localdate() - datetime.timedelta(days=365 * 8))
    IdentityFactory(profile=child, kind_id="phone", value="+8613900139000")
    path = write(tmp_path, "手机,用途,同意状态,同意时间\n"
                 "13800138000,email_marketing,同意,2024-03-01 10:00\n"
                 "13800138000,email_marketing,同意,2024-03-01 10:00\n"  # the same row twice
                 "13800138000,email_marketing,撤回,2024-06-01 10:00\n"
                 "13900139000,sms_marketing,同意,2024-03-01 10:00\n"  # under 14: needs a guardian
                 "13900139000,sms_marketing,同意,2024-03-01 10:00\n")
    job = run(path, kind="consent")
    assert counts(job) == {"created": 2, "updated": 0, "unchanged": 1, "skipped": 0, "failed": 2}, errors_of(job)
    assert [(row, code) for row, _col, code in errors_of(job)] == [(5, "guardian_required"), (6, "guardian_required")]
    assert list(ConsentRecord.objects.order_by("captured_at").values_list("status", flat=True)) == [
        "granted", "withdrawn"]
    assert ConsentState.objects.get(profile=a).status == "withdrawn"
    again = run(path, kind="consent")  # the whole history is in the ledger already: nothing is added
    assert (again.created, again.unchanged, again.failed) == (0, 3, 2)


def test_consent_undo_brings_each_customer_back_to_their_status_before_the_import(tmp_path):
    from consent.models import ConsentRecord, ConsentState
    from consent.services import consent_record

    a = ProfileFactory(phone="+8613800138000", birth_date=datetime.date(1990, 1, 1))
    b = ProfileFactory(phone="+8613900139000", birth_date=datetime.date(1990, 1, 1))
    for person in (a, b):
        IdentityFactory(profile=person, kind_id="phone", value=person.phone)
    consent_record(profile=a, purpose_code="sms_marketing", status="granted", source="admin", actor=ACTOR,
                   captured_at=timezone.now() - datetime.timedelta(days=30))
    job = run(write(tmp_path, "手机,用途,同意状态\n13800138000,sms_marketing,撤回\n13900139000,sms_marketing,同意\n"),
              kind="consent")
    assert job.created == 2
    import_undo(job=job, actor=ACTOR)
    assert ConsentState.objects.get(profile=a).status == "granted"  # as before the import
    assert ConsentState.objects.get(profile=b).status == "withdrawn"  # the import gave the first grant
    assert ConsentRecord.objects.count() == 5  # nothing deleted: two correcting entries appended


def test_erased_peoples_identifiers_are_refused(tmp_path):
    from profiles.models import Suppression
    from profiles.services.suppression import identifier_digest

    Suppression.objects.create(digest=identifier_digest("phone", "+8613800138000"), kind="phone")
    job = run(write(tmp_path, "手机,姓名\n13800138000,被删除的人\n13900139000,李娜\n"))
    assert (job.created, job.failed) == (1, 1)
    assert errors_of(job) == [(2, "手机", "suppressed")]
    assert not Identity.objects.filter(value="+8613800138000").exists()


def test_tsv_and_json_keys_that_appear_late_are_columns_too(tmp_path):
    tsv = write(tmp_path, "手机\t城市\n13800138000\t上海市\n", name="c.tsv")
    assert run(tsv).created == 1
    records = [{"phone": f"1370013{n:04d}"} for n in range(150)] + [{"phone": "13600136000", "city": "杭州"}]
    path = tmp_path / "late.json"
    path.write_text(json.dumps(records))
    job = run(path)
    assert "city" in job.headers and job.created == 151
    assert Profile.objects.get(phone="+8613600136000").city == "杭州"


def test_progress_is_reported_per_batch(tmp_path):
    path = write(tmp_path, "手机\n" + "".join(f"1380013{n:04d}\n" for n in range(50)))
    seen = []
    job, _ = import_job_create(path=str(path), name="p.csv", actor=ACTOR)
    import_run(job, batch_size=10, on_progress=lambda j: seen.append((j.rows_read, j.progress)))
    assert [rows for rows, _p in seen] == [10, 20, 30, 40, 50, 50]
    assert seen[-1][1] == 1.0
    assert ImportJob.objects.get().batches.count() == 5


def test_cli_refuses_an_unknown_template_and_a_missing_file(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("import_file", str(tmp_path / "nope.csv"), stdout=_Out(), stderr=_Out())
    with pytest.raises(CommandError, match="nobody"):
        call_command("import_file", str(write(tmp_path, "手机\n1\n")), "--mapping", "nobody", stdout=_Out(),
                     stderr=_Out())


def test_a_shared_device_id_is_not_a_conflict(tmp_path):
    other = ProfileFactory()
    IdentityFactory(profile=other, kind_id="device_id", value="tablet-1")
    path = write(tmp_path, "手机,设备ID\n13800138000,TABLET-1\n")
    job = run(path)
    assert (job.created, job.failed) == (1, 0), errors_of(job)
    assert Identity.objects.get(kind_id="device_id").profile == other  # left with its holder


def test_many_events_of_one_customer_go_in_one_batch(tmp_path):
    a = ProfileFactory(phone="+8613800138000")
    IdentityFactory(profile=a, kind_id="phone", value="+8613800138000")
    path = write(tmp_path, "手机,事件,时间,订单号\n" + "".join(
        f"13800138000,order,2024-03-01 10:{n:02d},SO-{n}\n" for n in range(30)))
    job, _ = import_job_create(path=str(path), name="o.csv", kind="events", actor=ACTOR)
    import_run(job, batch_size=100)
    assert job.created == 30
    assert job.batches.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner statistics")
def test_a_big_events_import_refreshes_the_planner_statistics_first(tmp_path):
    a = ProfileFactory(phone="+8613800138000")
    IdentityFactory(profile=a, kind_id="phone", value="+8613800138000")
    path = write(tmp_path, "手机,事件,时间,订单号\n" + "".join(
        f"13800138000,order,2024-03-01 10:{n:02d},SO-{n}\n" for n in range(30)))
    with connection.cursor() as cursor:  # statistics of the table as it is now: no event
        cursor.execute('ANALYZE "profiles_event"')
    with CaptureQueriesContext(connection) as queries:
        assert run(path, kind="events").created == 30
    analyses = [q["sql"] for q in queries if q["sql"].startswith("ANALYZE")]
    assert analyses == ['ANALYZE "profiles_event"']  # the metrics are recomputed on fresh figures


@pytest.mark.parametrize("policy", ["skip", "all_or_nothing"])  # a batch's transaction, or a savepoint
def test_events_are_looked_up_only_once_one_is_found_already_stored(tmp_path, policy):
    a = ProfileFactory(phone="+8613800138000")
    IdentityFactory(profile=a, kind_id="phone", value="+8613800138000")

    def orders(numbers, name):
        return write(tmp_path, "手机,事件,时间,订单号\n" + "".join(
            f"13800138000,order,2024-03-01 10:{n:02d},SO-{n}\n" for n in numbers), name=name)

    def run_in_batches_of_10(path):
        job, _ = import_job_create(path=str(path), name=path.name, kind="events", actor=ACTOR, error_policy=policy)
        with CaptureQueriesContext(connection) as queries:
            import_run(job, batch_size=10)
        lookups = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and "external_id" in q["sql"]]
        return job, lookups

    job, lookups = run_in_batches_of_10(orders(range(20, 30), "late.csv"))
    assert (job.created, lookups) == (10, [])  # nothing stored yet: straight in
    # SO-0 … SO-19 are new; the third batch holds the stored SO-20 … SO-29, is refused
    # by the unique index and written again with the check.
    job, lookups = run_in_batches_of_10(orders(range(30), "all.csv"))
    assert counts(job) == {"created": 20, "updated": 0, "unchanged": 10, "skipped": 0, "failed": 0}
    assert len(lookups) == 1
    assert Event.objects.count() == 30
    assert job.batches.count() == 2  # the third batch added nothing to undo


@pytest.mark.parametrize("written, landline", [
    ("021-6123 4567", True), ("010 8888 6666", True), ("400-810-8888", True), ("+44 20 7946 0958", True),
    ("13800138000", False), ("+44 7911 123456", False), ("+1 415 555 2671", False),  # US: fixed line or mobile
])
def test_landlines_and_service_numbers_are_told_from_mobiles(written, landline):
    from profiles.importing.rows import fast_phone, is_landline

    assert is_landline(fast_phone(written, "CN")) is landline
