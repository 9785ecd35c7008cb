"""Erasure reaches every copy of the person, not only the rows that hang off their profile:
import reports and uploads, other customers' timelines, unlinked requests, segment and
analysis settings, the admin's history. The scan reads every text and JSON column of
every table and every stored upload, with phones in any format."""
import json
import re

import pytest
from django.apps import apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

from cdp.actors import Actor
from consent.models import DataSubjectRequest
from consent.requests import profile_erase
from profiles.importing.files import upload_dir
from profiles.models import ImportJob, ImportRowError, ProfileActivity
from profiles.services.profiles import note_add
from segments.models import SavedAnalysis, Segment
from tests.factories import ProfileFactory

from .test_erasure import NEEDLES, SYSTEM, eraser, erasure_request, person  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField, models.GenericIPAddressField)
# The person's name, and their identifiers as people write them.
PERSON = {"欧阳娜娜", "13912345678", "13787654321", "nanaouyangexamplecom", "nanaoldexamplenet", "crmnana7",
          "owxnanaopenid"}


def squashed(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def personal_data_left(needles: set[str]) -> set[tuple[str, str, str]]:
    """(table or file, column, needle) wherever a needle is left, however punctuated."""
    needles = {squashed(n) for n in needles}
    found = set()
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.proxy:
            continue
        columns = [f.attname for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        for row in model._base_manager.values_list(*columns) if columns else ():
            for column, value in zip(columns, row, strict=True):
                text = squashed(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))
                found |= {(model._meta.db_table, column, n) for n in needles if n in text}
    for path in sorted(upload_dir_path().iterdir()):
        raw = path.read_bytes()
        text = squashed(raw.decode("utf-8", "ignore") + raw.decode("gb18030", "ignore"))
        found |= {(path.name, "", n) for n in needles if n in text}
    return found


def upload_dir_path():
    from pathlib import Path

    return Path(upload_dir())


def upload(name: str, text: str, encoding="utf-8"):
    path = upload_dir_path() / name
    path.write_bytes(text.encode(encoding))
    return str(path)


@pytest.fixture
def copies(person, staff_user, settings, tmp_path):
    """The person quoted outside their profile's rows."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    stranger_sample = {"row": 4, "values": ["王芳", "13500000000", "wang@example.com"]}
    ImportJob.objects.create(file_name="crm-2024.csv", status="done", report={"samples": {
        "create": [{"row": 2, "values": ["欧阳娜娜", "+86 139 1234 5678", "Nana.Ouyang@Example.com", "crm-nana-7"]},
                   stranger_sample],
        "fail": [{"row": 3, "values": ["娜娜", "0086-137-8765-4321", ""],
                  "errors": [{"column": "手机", "message": "phone +8613787654321 already identifies 欧阳娜娜"}]},
                 {"row": 5, "values": ["李雷", "13600000000"],
                  "errors": [{"column": "email", "message": "nana.ouyang@example.com belongs to someone else"}]}],
    }, "seconds": 1.5}, error="row 7: CRM-NANA-7 is malformed")
    previewed = ImportJob.objects.create(
        file_name="members.csv", status="previewed", dry_run=True,
        file_path=upload("a1.csv", "姓名,手机,邮箱\n欧阳娜娜,139 1234 5678,nana.ouyang@example.com\n王芳,13500000000,\n",
                         encoding="gb18030"))
    untouched = ImportJob.objects.create(file_name="others.csv", status="draft",
                                         file_path=upload("b2.csv", "姓名,手机\n王芳,13500000000\n"))
    upload("orphan.csv", "name,mobile\nNana,0086 139-1234-5678\n")  # an upload no job points at
    ImportRowError.objects.create(job=untouched, row_number=9, values=["oWx_nana_openid", "x"])
    friend = ProfileFactory(name="李雷")
    note_add(profile=friend, text="friend of nana.ouyang@example.com, phone 13912345678", actor=SYSTEM)
    note_add(profile=friend, text="likes running", actor=SYSTEM)
    Segment.objects.create(name="one person", slug="one", definition={
        "all": [{"field": "phone", "op": "eq", "value": "+8613912345678"}, {"field": "city", "op": "eq", "value": "杭州"}]})
    SavedAnalysis.objects.create(name="funnel", kind="funnel", parameters={"steps": ["view", "order"],
                                                                           "note": "see CRM-NANA-7"})
    DataSubjectRequest(kind="access", requester="email from a stranger", contact="nana.ouyang@example.com").save()
    LogEntry.objects.create(user=staff_user, content_type=ContentType.objects.get_for_model(ImportJob),
                            object_id=str(previewed.pk), object_repr="#9 欧阳娜娜 13912345678.csv",
                            action_flag=ADDITION, change_message="[]")
    return {"previewed": previewed, "untouched": untouched, "stranger_sample": stranger_sample, "friend": friend}


def test_the_scan_finds_every_copy_before_erasure(copies):
    where = {table for table, _column, _needle in personal_data_left(PERSON)}
    assert {"profiles_importjob", "profiles_importrowerror", "profiles_profileactivity", "segments_segment",
            "segments_savedanalysis", "consent_datasubjectrequest", "django_admin_log", "a1.csv", "orphan.csv"} <= where


def test_erasure_leaves_no_copy_anywhere(copies, person, eraser):
    result = profile_erase(profile=person, request=erasure_request(person), actor=Actor.staff(eraser))

    assert personal_data_left(PERSON | NEEDLES) == set()
    assert result["copies_scrubbed"]["import_uploads"] == 2


def test_what_belongs_to_others_stays(copies, person, eraser):
    profile_erase(profile=person, request=erasure_request(person), actor=Actor.staff(eraser))

    report = ImportJob.objects.get(file_name="crm-2024.csv").report
    assert report["samples"]["create"] == [copies["stranger_sample"]]
    assert [s["row"] for s in report["samples"]["fail"]] == [5]  # someone else's row, the message naming her gone
    assert report["samples"]["fail"][0]["errors"][0]["message"] == "—" and report["seconds"] == 1.5
    assert sorted(p.name for p in upload_dir_path().iterdir()) == ["b2.csv"]
    assert ImportJob.objects.get(pk=copies["untouched"].pk).status == "draft"
    previewed = ImportJob.objects.get(pk=copies["previewed"].pk)
    assert previewed.status == "failed" and "删除" in previewed.error  # why, in the admin's language
    assert list(ProfileActivity.objects.filter(profile=copies["friend"], type="note")
                .values_list("params__text", flat=True).order_by("pk")) == ["—", "likes running"]
    definition = Segment.objects.get(slug="one").definition
    assert definition["all"] == [{"field": "phone", "op": "eq", "value": "—"},
                                 {"field": "city", "op": "eq", "value": "杭州"}]
    assert SavedAnalysis.objects.get().parameters == {"steps": ["view", "order"], "note": "—"}
