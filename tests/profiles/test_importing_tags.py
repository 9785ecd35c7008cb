"""A CRM export's tags column never costs a person: tags not in the taxonomy are warnings
(counted per tag), or created under the category the user chose."""
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cdp.actors import Actor
from profiles.importing.jobs import import_job_create, job_mapping_set
from profiles.importing.mapping import TAGS_NEW
from profiles.importing.pipeline import import_run
from profiles.models import Profile, ProfileTag, Tag, TagCategory, TagKind
from tests.factories import TagFactory

ACTOR = Actor.system("tests")
pytestmark = pytest.mark.django_db

CRM = ("客户编号,姓名,手机,标签\n"
       "C1,张伟,13800138000,高价值、美妆\n"
       "C2,李娜,13900139000,高价值；VIP\n"
       "C3,王芳,13700137000,美妆|高价值\n"
       "C4,刘洋,13600136000,VIP\n")


def write(tmp_path, text: str, name="crm.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(path, *, dry_run=False, tags_target="tags"):
    job, table = import_job_create(path=str(path), name=Path(path).name, actor=ACTOR)
    assert job.mapping["标签"] == "tags"
    job_mapping_set(job=job, mapping={**job.mapping, "标签": tags_target}, precedence=job.precedence,
                    headers=table.headers)
    return import_run(job, dry_run=dry_run)


def tags_of(crm_id: str) -> set[str]:
    profile = Profile.objects.get(identities__kind_id="crm_id", identities__value=crm_id)
    return set(ProfileTag.objects.filter(profile=profile).values_list("tag__name", flat=True))


def test_unknown_tags_are_warnings_and_every_person_is_imported(tmp_path):
    # given a first CRM export whose tags are mostly not in the taxonomy yet
    TagFactory(name="VIP", slug="vip")
    # when it is previewed, then imported
    preview = run(write(tmp_path, CRM), dry_run=True)
    job = run(write(tmp_path, CRM))
    # then every person is (would be) created, with the tags that exist
    for each in (preview, job):
        assert (each.created, each.failed) == (4, 0)
        report = each.report["unknown_tags"]
        # and each unknown tag is listed with the number of rows naming it, the most frequent first
        assert [(t["name"], t["rows"], t["first_row"]) for t in report["tags"]] == [("高价值", 3, 2), ("美妆", 2, 2)]
        assert (report["rows"], report["count"], report["created"]) == (3, 2, False)
    assert tags_of("C2") == {"VIP"} and tags_of("C1") == set()
    assert not Tag.objects.filter(name__in=["高价值", "美妆"]).exists()
    # and the rows say which tag was left out, in the staff member's language
    warnings = [(w["row"], w["code"]) for w in job.report["warnings"]["rows"]]
    assert warnings == [(2, "unknown_tag"), (2, "unknown_tag"), (3, "unknown_tag"), (4, "unknown_tag"),
                        (4, "unknown_tag")]
    assert "“高价值”不在标签体系中" in job.report["warnings"]["rows"][0]["message"]


def test_missing_tags_can_be_created_under_a_chosen_category(tmp_path):
    # given a category chosen for new tags on the mapping screen
    value = TagCategory.objects.get(code="value")
    # when the file is previewed: the tags would be created, and nothing is kept
    preview = run(write(tmp_path, CRM), dry_run=True, tags_target=f"{TAGS_NEW}{value.pk}")
    assert preview.created == 4
    assert preview.report["unknown_tags"]["created"] is True
    assert [(t["name"], t["rows"]) for t in preview.report["unknown_tags"]["tags"]] == [
        ("高价值", 3), ("美妆", 2), ("VIP", 2)]
    assert not Tag.objects.exists() and not Profile.objects.exists()
    # when it is imported
    job = run(write(tmp_path, CRM), tags_target=f"{TAGS_NEW}{value.pk}")
    # then the tags are created once each, as manual tags of that category, and given
    assert sorted(Tag.objects.values_list("name", "slug", "kind", "category_id")) == [
        ("VIP", "vip", TagKind.MANUAL, value.pk), ("美妆", "美妆", TagKind.MANUAL, value.pk),
        ("高价值", "高价值", TagKind.MANUAL, value.pk)]
    assert tags_of("C1") == {"高价值", "美妆"} and tags_of("C3") == {"高价值", "美妆"}
    assert Tag.objects.get(name="高价值").profile_count == 3
    assert not job.report["warnings"]["rows"]


def test_new_tags_get_a_free_slug_and_a_small_batch_creates_each_once(tmp_path):
    # given a tag holding the slug a new tag named "High Value" would take
    TagFactory(name="重要客户", slug="high-value")
    value = TagCategory.objects.get(code="value")
    path = write(tmp_path, CRM.replace("高价值", "High Value"))
    job, table = import_job_create(path=str(path), name="crm.csv", actor=ACTOR)
    job_mapping_set(job=job, mapping={**job.mapping, "标签": f"{TAGS_NEW}{value.pk}"}, precedence=job.precedence,
                    headers=table.headers)
    # when it is imported in batches of one row
    import_run(job, batch_size=1)
    # then the new tag gets the next free slug, and each tag is created once
    assert Tag.objects.get(name="High Value").slug == "high-value-2"
    assert Tag.objects.filter(name="美妆").count() == 1
    assert tags_of("C3") == {"High Value", "美妆"}


def test_rule_retired_and_merged_tags_never_fail_the_row(tmp_path):
    TagFactory(name="高购买频率", slug="frequent-buyer", kind="rule")
    TagFactory(name="旧标签", slug="old", is_active=False)
    new = TagFactory(name="新标签", slug="new")
    TagFactory(name="合并前", slug="before-merge", is_active=False, merged_into=new)
    job = run(write(tmp_path, '客户编号,手机,标签\nC1,13800138000,"高购买频率,旧标签,合并前"\n'))
    assert (job.created, job.failed) == (1, 0)
    assert tags_of("C1") == {"新标签"}  # a tag merged into another gives that one
    assert sorted(w["code"] for w in job.report["warnings"]["rows"]) == ["retired_tag", "rule_tag"]


def test_a_deleted_category_is_a_clear_mapping_error(tmp_path):
    category = TagCategory.objects.create(name="临时", parent=TagCategory.objects.get(code="value"))
    job, table = import_job_create(path=str(write(tmp_path, CRM)), name="crm.csv", actor=ACTOR)
    pk = category.pk
    category.delete()
    with pytest.raises(Exception) as error:
        job_mapping_set(job=job, mapping={**job.mapping, "标签": f"{TAGS_NEW}{pk}"}, precedence=job.precedence,
                        headers=table.headers)
    assert "no longer exists" in str(error.value) or "已不存在" in str(error.value)


class _Out:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_cli_reports_unknown_tags_and_creates_them_on_request(tmp_path):
    path = write(tmp_path, CRM)
    out = _Out()
    # when the file is imported on the command line without the option
    call_command("import_file", str(path), "--dry-run", stdout=out, stderr=_Out())
    # then the unknown tags are listed with their rows, and nothing fails
    assert "高价值" in out.text and "3" in out.text and "--create-missing-tags" in out.text
    # when the category is named (by code or by name)
    out = _Out()
    call_command("import_file", str(path), "--create-missing-tags", "value", stdout=out, stderr=_Out())
    assert Profile.objects.count() == 4
    assert set(Tag.objects.values_list("category__code", flat=True)) == {"value"}
    assert tags_of("C4") == {"VIP"}
    # and an unknown category is refused before anything is read
    with pytest.raises(CommandError):
        call_command("import_file", str(path), "--create-missing-tags", "没有这个分类", stdout=_Out(), stderr=_Out())


def test_cli_finds_the_category_by_its_name(tmp_path):
    TagCategory.objects.create(name="CRM标签", parent=TagCategory.objects.get(code="value"))
    call_command("import_file", str(write(tmp_path, CRM)), "--create-missing-tags", "CRM标签", stdout=_Out(),
                 stderr=_Out())
    assert set(Tag.objects.values_list("category__name", flat=True)) == {"CRM标签"}


def test_undo_removes_the_tags_the_import_created_unless_used_since(tmp_path):
    from profiles.importing.undo import import_undo
    from tests.factories import ProfileFactory, tag_on

    value = TagCategory.objects.get(code="value")
    TagFactory(name="VIP", slug="vip")
    job = run(write(tmp_path, CRM), tags_target=f"{TAGS_NEW}{value.pk}")
    assert set(Tag.objects.filter(category=value).values_list("name", flat=True)) == {"高价值", "美妆"}
    # given someone has since given 美妆 to a customer the import did not create
    tag_on(ProfileFactory(), Tag.objects.get(name="美妆"))
    # when the import is undone
    import_undo(job=job, actor=ACTOR)
    # then the tag only the import used is gone, the one in use stays, and tags it did not create stay
    assert set(Tag.objects.values_list("name", flat=True)) == {"VIP", "美妆"}
    assert not Profile.objects.filter(identities__kind_id="crm_id").exists()
