"""Imports over the partner API: a file uploaded whole or in parts, run by the Celery task
(eager here; tests/worker runs a real worker), followed by status, counts and failed rows."""
import csv
import io
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cdp.models import AuditLog, Scope
from profiles.models import ImportJob, ImportStatus, MappingTemplate, Profile
from tests.cdp.test_api_fixtures import *  # noqa: F401,F403
from tests.cdp.test_api_fixtures import assert_error, client_with, key_for

DATA = Path(__file__).parent / "data"
CRM = (DATA / "crm_gb18030.csv").read_bytes()
pytestmark = pytest.mark.django_db
IMPORTS = reverse("api-imports")


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """The task is queued after commit, as in production; the eager worker runs it then."""
    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            response = call()
        return response
    return run


def upload(api, content=CRM, name="crm.csv", **fields):
    return api.post(IMPORTS, {"file": SimpleUploadedFile(name, content), **fields}, format="multipart")


def test_a_file_uploaded_is_imported_by_the_task_and_its_counts_read_back(api, partner, run_tasks):
    # when a partner uploads its CRM export
    response = run_tasks(lambda: upload(api, kind="profiles", mode="create_or_update"))

    # then the import is queued, runs on the worker and its counts are there to read
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["file_name"] == "crm.csv" and body["file_format"] == "csv"
    job = ImportJob.objects.get(pk=body["id"])
    assert job.partner == partner and job.source == "shop" and job.status == ImportStatus.DONE
    detail = api.get(body["url"]).json()
    assert detail["status"] == "done" and detail["progress"] == 1.0
    assert detail["counts"] == {"rows": 5, "created": 3, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 2}
    assert Profile.objects.count() == 3
    assert detail["errors"]["failed_rows"] == 2 and [e["row"] for e in detail["errors"]["first"]] == [4, 6]
    assert {p["column"] for p in detail["errors"]["first"][0]["problems"]} >= {"手机"}
    assert not default_storage.exists(job.file_path)  # personal data: not kept once imported
    audit = AuditLog.objects.filter(action="api_call", details__method="POST").get()
    assert (audit.partner, audit.target, audit.details["status"], audit.details["route"]) == (
        partner, f"import {job.pk}", 202, "api/v1/imports/")


def test_a_dry_run_counts_and_writes_nothing_then_starts_for_real(api, run_tasks):
    response = run_tasks(lambda: upload(api, dry_run="true"))
    body = api.get(response.json()["url"]).json()
    assert body["status"] == "previewed" and body["dry_run"] is True and body["counts"]["created"] == 3
    assert not Profile.objects.exists()

    started = run_tasks(lambda: api.post(reverse("api-import-start", args=[body["id"]]), {}, format="json"))

    assert started.status_code == 202, started.content
    assert api.get(body["url"]).json()["status"] == "done" and Profile.objects.count() == 3
    again = api.post(reverse("api-import-start", args=[body["id"]]), {}, format="json")
    assert_error(again, 409, "not_startable")


def test_a_file_in_parts_is_joined_and_imported(api, run_tasks):
    # given an import waiting for its file in parts
    created = api.post(IMPORTS, {"file_name": "crm.csv", "kind": "profiles"}, format="multipart")
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]
    assert created.json()["status"] == "uploading"
    parts = reverse("api-import-parts", args=[job_id])

    # when three parts arrive out of order (one split inside a row, one sent twice)
    first, second, third = CRM[:100], CRM[100:250], CRM[250:]
    for number, content in ((2, b"junk"), (3, third), (1, first), (2, second)):
        response = api.post(parts, {"number": number, "file": SimpleUploadedFile("part", content)},
                            format="multipart")
        assert response.status_code == 200, response.content
    assert response.json()["parts"] == {"1": 100, "2": 150, "3": len(third)}
    assert response.json()["file_size"] == len(CRM)
    started = run_tasks(lambda: api.post(reverse("api-import-start", args=[job_id]), {}, format="json"))

    # then they are imported as one file
    assert started.status_code == 202, started.content
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportStatus.DONE and (job.created, job.failed) == (3, 2) and job.encoding == "gb18030"
    late = api.post(parts, {"number": 4, "file": SimpleUploadedFile("part", b"x")}, format="multipart")
    assert_error(late, 409, "not_receiving")


def test_a_missing_part_is_named_before_anything_runs(api):
    job_id = api.post(IMPORTS, {"file_name": "crm.csv"}, format="multipart").json()["id"]
    api.post(reverse("api-import-parts", args=[job_id]), {"number": 2, "file": SimpleUploadedFile("p", CRM)},
             format="multipart")
    body = assert_error(api.post(reverse("api-import-start", args=[job_id]), {}, format="json"), 422, "parts_missing")
    assert "1" in body["message"]
    assert ImportJob.objects.get(pk=job_id).status == ImportStatus.UPLOADING  # send part 1, start again


def test_parts_may_not_pass_the_size_limit(api, settings):
    settings.CDP_IMPORT_MAX_BYTES = 300
    job_id = api.post(IMPORTS, {"file_name": "crm.csv"}, format="multipart").json()["id"]
    parts = reverse("api-import-parts", args=[job_id])
    assert api.post(parts, {"number": 1, "file": SimpleUploadedFile("p", CRM[:200])}, format="multipart").status_code == 200
    assert_error(api.post(parts, {"number": 2, "file": SimpleUploadedFile("p", CRM[200:])}, format="multipart"),
                 422, "file_too_large")


def test_a_mapping_template_is_used_by_name_or_id(api, run_tasks):
    template = MappingTemplate.objects.create(
        name="旧CRM", kind="profiles", columns={"客户编号": "identity:crm_id", "手机": "", "邮箱": "", "会员等级": ""})

    response = run_tasks(lambda: upload(api, template="旧CRM"))
    job = ImportJob.objects.get(pk=response.json()["id"])
    assert job.template == template and job.mapping["手机"] == "" and job.mapping["客户编号"] == "identity:crm_id"
    assert response.json()["template"] == "旧CRM"
    assert job.status == ImportStatus.DONE and job.failed == 1  # the bad phone and email are not read: one row
    assert list(job.row_errors.values_list("row_number", flat=True)) == [6]  # left: its impossible birth date

    by_id = upload(api, template=str(template.pk))
    assert by_id.status_code == 202 and ImportJob.objects.get(pk=by_id.json()["id"]).template == template
    body = assert_error(upload(api, template="nope"), 422, "unknown_template")
    assert "template" in body["fields"]


@pytest.mark.parametrize(("name", "content", "code"), [
    ("crm.xls", b"\xd0\xcf\x11\xe0", "unreadable_file"),
    ("crm.pdf", b"%PDF-1.4", "unreadable_file"),
    ("crm.csv", b"", "empty"),
    ("crm.json", b"[1, 2]", "unreadable_file"),
    ("notes.csv", "备注,日期\n你好,2024-01-01\n".encode(), "mapping_invalid"),
])
def test_a_bad_file_is_refused_with_what_to_fix(api, name, content, code):
    response = upload(api, content=content, name=name)
    body = assert_error(response, 400 if code == "empty" else 422, code)
    assert not ImportJob.objects.exclude(status=ImportStatus.FAILED).exists()
    assert not default_storage.listdir("imports")[1] if default_storage.exists("imports") else True
    if code == "unreadable_file":
        assert body["fields"]["file"]


def test_errors_are_in_the_callers_language(partner):
    api = client_with(key_for(partner))
    api.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"], HTTP_ACCEPT_LANGUAGE="zh-hans")
    body = assert_error(upload(api, content=b"x", name="crm.xls"), 422, "unreadable_file")
    assert "不支持" in body["message"] or "xlsx" in body["message"].lower()
    assert body["message"] != "Old Excel files (.xls) are not supported: save the sheet as .xlsx or CSV."


def test_another_partner_sees_none_of_it(api, other_partner, run_tasks):
    job_id = run_tasks(lambda: upload(api)).json()["id"]
    other = client_with(key_for(other_partner))
    for url in (reverse("api-import", args=[job_id]), reverse("api-import-failed-rows", args=[job_id])):
        assert_error(other.get(url), 404, "not_found")
    assert_error(other.post(reverse("api-import-start", args=[job_id]), {}, format="json"), 404, "not_found")
    assert other.get(IMPORTS).json()["results"] == []
    assert [row["id"] for row in api.get(IMPORTS).json()["results"]] == [job_id]


def test_the_scope_is_needed(partner):
    api = client_with(key_for(partner, [Scope.PROFILES_WRITE]))
    assert_error(upload(api), 403, "missing_scope")
    imports_only = client_with(key_for(partner, [Scope.IMPORTS_WRITE]))
    assert_error(upload(imports_only, kind="consent"), 403, "missing_scope")  # consent files need consent:write


def test_the_failed_rows_download(api, run_tasks):
    job_id = run_tasks(lambda: upload(api)).json()["id"]

    response = api.get(reverse("api-import-failed-rows", args=[job_id]))

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["客户编号", "姓名", "手机"] and len(rows) == 3
    assert [row[1] for row in rows[1:]] == ["王芳", "陈静"]


def test_unknown_fields_are_refused(api):
    assert_error(upload(api, colour="red"), 400, "unknown_field")
    assert_error(api.post(IMPORTS, {"kind": "profiles"}, format="multipart"), 422, "file_missing")


def test_file_name_names_a_file_sent_whole(api, run_tasks):
    response = run_tasks(lambda: upload(api, name="upload.bin", file_name="会员.csv"))
    assert response.status_code == 202 and ImportJob.objects.get().file_name == "会员.csv"


def test_the_schema_documents_the_routes(client):
    schema = client.get("/api/schema/?format=json").json()
    assert {"/api/v1/imports/", "/api/v1/imports/{job_id}/", "/api/v1/imports/{job_id}/parts/",
            "/api/v1/imports/{job_id}/start/", "/api/v1/imports/{job_id}/failed-rows/"} <= set(schema["paths"])
    create = schema["paths"]["/api/v1/imports/"]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
    assert "text/csv" in schema["paths"]["/api/v1/imports/{job_id}/failed-rows/"]["get"]["responses"]["200"]["content"]


def test_parts_of_an_import_never_started_expire_with_the_uploads(api, settings):
    import datetime

    from django.utils import timezone

    from profiles.importing.files import parts_sizes
    from profiles.importing.housekeeping import import_uploads_expire

    job_id = api.post(IMPORTS, {"file_name": "crm.csv"}, format="multipart").json()["id"]
    api.post(reverse("api-import-parts", args=[job_id]), {"number": 1, "file": SimpleUploadedFile("p", CRM)},
             format="multipart")
    assert parts_sizes(job_id) == {1: len(CRM)}

    assert import_uploads_expire(now=timezone.now() + datetime.timedelta(days=8)) == [job_id]

    assert parts_sizes(job_id) == {} and ImportJob.objects.get(pk=job_id).file_expired_at


def test_every_import_route_needs_a_key_and_the_scope(partner, revoked_key, run_tasks):
    job_id = run_tasks(lambda: upload(client_with(key_for(partner)))).json()["id"]
    routes = [("get", IMPORTS, None), ("post", IMPORTS, {"file_name": "crm.csv"}),
              ("get", reverse("api-import", args=[job_id]), None),
              ("post", reverse("api-import-parts", args=[job_id]), {"number": "1"}),
              ("post", reverse("api-import-start", args=[job_id]), {}),
              ("get", reverse("api-import-failed-rows", args=[job_id]), None)]
    without = client_with(key_for(partner, [s for s in Scope.values if s != Scope.IMPORTS_WRITE]))
    for method, url, body in routes:
        call = (lambda client: getattr(client, method)(url, body, format="multipart") if body is not None
                else getattr(client, method)(url))
        assert_error(call(client_with(None)), 401, "not_authenticated")
        assert_error(call(client_with(revoked_key)), 401, "key_revoked")
        assert_error(call(without), 403, "missing_scope")


def test_hostile_input_is_refused_not_a_server_error(api):
    assert_error(upload(api, template="a\x00b"), 400, "invalid")
    named = upload(api, name="a\x00.csv")  # Django's multipart parser drops the NUL from file names
    assert named.status_code == 202 and "\x00" not in ImportJob.objects.get(pk=named.json()["id"]).file_name
    job_id = api.post(IMPORTS, {"file_name": "crm.csv"}, format="multipart").json()["id"]
    assert_error(api.post(reverse("api-import-start", args=[job_id]), [1, 2], format="json"), 400, "invalid")
    assert_error(api.post(reverse("api-import-parts", args=[job_id]), {"number": "x", "file": SimpleUploadedFile(
        "p", b"1")}, format="multipart"), 400, "invalid")
    assert_error(api.get(reverse("api-import", args=[10**12])), 404, "not_found")


def test_a_name_or_template_of_blanks_is_unknown_not_missing(api):
    # "\x1c" is whitespace to Python: trimmed, it would answer 400 to what the schema allows
    assert_error(upload(api, template="\x1c"), 422, "unknown_template")
    assert api.post(IMPORTS, {"file_name": " \x1c "}, format="multipart").status_code == 422
    named = upload(api, file_name="  members.csv ")
    assert named.status_code == 202 and ImportJob.objects.get(pk=named.json()["id"]).file_name == "members.csv"


def test_an_erasure_deletes_parts_naming_the_person(api):
    from consent.erasure_copies import erasure_copies_scrub
    from profiles.importing.files import parts_sizes

    naming = api.post(IMPORTS, {"file_name": "crm.csv"}, format="multipart").json()["id"]
    other = api.post(IMPORTS, {"file_name": "crm.csv"}, format="multipart").json()["id"]
    # the phone is split across the two parts: the parts are searched joined
    cut = CRM.index("138 0013".encode("gb18030")) + 5
    for number, content in ((1, CRM[:cut]), (2, CRM[cut:])):
        api.post(reverse("api-import-parts", args=[naming]), {"number": number, "file": SimpleUploadedFile(
            "p", content)}, format="multipart")
    api.post(reverse("api-import-parts", args=[other]), {"number": 1, "file": SimpleUploadedFile(
        "p", "客户编号,姓名,手机\nCRM9,王芳,13500000000\n".encode())}, format="multipart")

    result = erasure_copies_scrub(identifiers={("phone", "+8613800138000")}, profile_ids=[])

    assert result["import_uploads"] == 1
    assert parts_sizes(naming) == {} and ImportJob.objects.get(pk=naming).status == ImportStatus.FAILED
    assert parts_sizes(other) != {} and ImportJob.objects.get(pk=other).status == ImportStatus.UPLOADING
