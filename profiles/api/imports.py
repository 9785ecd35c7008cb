"""Partner routes for file imports: a CRM export (CSV, TSV, XLSX, JSON) uploaded whole or
in numbered parts, run by the Celery worker through the same pipeline, limits and
mapping templates as the admin's imports. A partner sees only its own imports.

    POST /imports/                   a whole file (multipart `file`): stored, read, queued
    POST /imports/                   no file, a `file_name`: an import waiting for parts
    POST /imports/{id}/parts/        part `number` (1, 2, …) of the file; resending replaces it
    POST /imports/{id}/start/        the parts joined, read and queued; or a preview run for real
    GET  /imports/, /imports/{id}/   status, progress, counts and a summary of the errors
    GET  /imports/{id}/failed-rows/  the rows that failed, as CSV with their errors
"""
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from cdp.api.errors import VALIDATION_MESSAGE, ApiError
from cdp.api.parsers import StrictJSONParser
from cdp.api.schema import error_responses
from cdp.api.views import PartnerAPIView, PartnerGenericView
from cdp.models import Scope
from cdp.queueing import task_queue_after_commit
from profiles.importing.files import file_remove, parts_sizes, upload_store
from profiles.importing.jobs import (
    failed_rows_lines,
    import_job_claim,
    import_job_create,
    import_job_fail,
    import_job_receive,
    import_mapping_check,
    import_max_bytes,
    import_part_add,
    import_parts_complete,
)
from profiles.importing.readers import ReadError
from profiles.models import ErrorPolicy, ImportJob, ImportKind, ImportMode, ImportStatus, MappingTemplate

UNPROCESSABLE = status.HTTP_422_UNPROCESSABLE_ENTITY
FIRST_ERRORS = 10

# --- input ---


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text=gettext_lazy(
        "The whole file (CSV, TSV, XLSX or JSON; UTF-8, GB18030 or UTF-16). Leave it out to send the file in "
        "parts: give file_name instead."))
    # Not trimmed (like identities): a name of blanks is well-formed (minLength 1), and is
    # refused as an unknown format or template (422), not as a missing field (400).
    file_name = serializers.CharField(required=False, max_length=255, trim_whitespace=False, help_text=gettext_lazy(
        "The file's name; its extension says the format (.csv, .tsv, .xlsx, .json). Without `file`: the file "
        "comes in parts. With it: the name it is known by (default: the uploaded file's)."))
    kind = serializers.ChoiceField(choices=ImportKind.choices, default=ImportKind.PROFILES)
    mode = serializers.ChoiceField(choices=ImportMode.choices, default=ImportMode.CREATE_OR_UPDATE,
                                   help_text=gettext_lazy("For customer files."))
    error_policy = serializers.ChoiceField(choices=ErrorPolicy.choices, default=ErrorPolicy.SKIP)
    template = serializers.CharField(required=False, max_length=100, trim_whitespace=False, help_text=gettext_lazy(
        "A saved mapping template of this kind, by name or id; without one the columns are recognised by their "
        "headers."))
    dry_run = serializers.BooleanField(default=False, help_text=gettext_lazy(
        "Preview only: every row is checked and counted, nothing is written. Start it again without dry_run to "
        "import."))



class ImportPartSerializer(serializers.Serializer):
    number = serializers.IntegerField(min_value=1, max_value=10_000, help_text=gettext_lazy(
        "The part's place in the file, from 1; the parts are joined in this order."))
    file = serializers.FileField(help_text=gettext_lazy("The part's bytes (split anywhere, even inside a row)."))


class ImportStartSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(required=False, help_text=gettext_lazy(
        "Preview only; by default as given when the import was created (false after a preview)."))


# --- output ---

class ImportCountsSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()


class ImportRowProblemSerializer(serializers.Serializer):
    column = serializers.CharField(allow_blank=True)
    message = serializers.CharField()
    code = serializers.CharField(allow_blank=True)


class ImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text=gettext_lazy("The row number a spreadsheet shows (the header is 1)."))
    problems = ImportRowProblemSerializer(many=True)


class ImportErrorsSerializer(serializers.Serializer):
    failed_rows = serializers.IntegerField()
    warnings = serializers.IntegerField(help_text=gettext_lazy("Rows imported with a cell left out."))
    first = ImportRowErrorSerializer(many=True, help_text=gettext_lazy("The first failed rows (details of all: "
                                                                        "failed_rows_url)."))


class ImportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ImportStatus.choices)
    status_label = serializers.CharField()
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    mode = serializers.ChoiceField(choices=ImportMode.choices)
    error_policy = serializers.ChoiceField(choices=ErrorPolicy.choices)
    template = serializers.CharField(allow_null=True)
    dry_run = serializers.BooleanField()
    file_name = serializers.CharField()
    file_size = serializers.IntegerField()
    file_format = serializers.CharField(allow_blank=True)
    parts = serializers.DictField(child=serializers.IntegerField(), help_text=gettext_lazy(
        "While the file comes in parts: part number → bytes received."))
    progress = serializers.FloatField(help_text=gettext_lazy("0 to 1"))
    counts = ImportCountsSerializer()
    error = serializers.CharField(allow_blank=True, help_text=gettext_lazy("Why the import failed, if it did."))
    errors = ImportErrorsSerializer(required=False, help_text=gettext_lazy("Not in lists."))
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()
    failed_rows_url = serializers.CharField()


def import_output(job: ImportJob, *, detail: bool = True) -> dict:
    body = {
        "id": job.pk, "status": job.status, "status_label": str(job.get_status_display()), "kind": job.kind,
        "mode": job.mode, "error_policy": job.error_policy, "template": job.template.name if job.template else None,
        "dry_run": job.dry_run, "file_name": job.file_name, "file_size": job.file_size,
        "file_format": job.file_format,
        "parts": {str(n): size for n, size in parts_sizes(job.pk).items()} if job.status == ImportStatus.UPLOADING
        else {},
        "progress": round(job.progress, 4),
        "counts": {"rows": job.rows_read, "created": job.created, "updated": job.updated,
                   "unchanged": job.unchanged, "skipped": job.skipped, "failed": job.failed},
        "error": job.error, "created_at": job.created_at, "started_at": job.started_at,
        "finished_at": job.finished_at,
        "url": reverse("api-import", args=[job.pk]),
        "failed_rows_url": reverse("api-import-failed-rows", args=[job.pk]),
    }
    if detail:
        first = job.row_errors.order_by("row_number").values_list("row_number", "errors")[:FIRST_ERRORS]
        body["errors"] = {
            "failed_rows": job.failed, "warnings": int((job.report.get("warnings") or {}).get("count") or 0),
            "first": [{"row": number, "problems": [{"column": p.get("column") or "", "message": p.get("message", ""),
                                                    "code": p.get("code") or ""} for p in problems]}
                      for number, problems in first],
        }
    return ImportJobSerializer(body).data


EXAMPLE = OpenApiExample("import", response_only=True, status_codes=["200", "201", "202"], value={
    "id": 42, "status": "done", "status_label": "Done", "kind": "profiles", "mode": "create_or_update",
    "error_policy": "skip", "template": "CRM export", "dry_run": False, "file_name": "members-2026-12.csv",
    "file_size": 18204, "file_format": "csv", "parts": {}, "progress": 1.0,
    "counts": {"rows": 200, "created": 150, "updated": 45, "unchanged": 3, "skipped": 0, "failed": 2},
    "error": "", "errors": {"failed_rows": 2, "warnings": 0, "first": [
        {"row": 17, "problems": [{"column": "手机", "message": "“138” is not a valid phone number.",
                                  "code": "invalid_phone"}]}]},
    "created_at": "2026-12-05T08:00:00Z", "started_at": "2026-12-05T08:00:01Z",
    "finished_at": "2026-12-05T08:00:03Z", "url": "/api/v1/imports/42/",
    "failed_rows_url": "/api/v1/imports/42/failed-rows/"})

LIST_EXAMPLE = OpenApiExample("imports", response_only=True, value={
    "next": None, "previous": None, "results": [{k: v for k, v in EXAMPLE.value.items() if k != "errors"}]})
PARTS_EXAMPLE = OpenApiExample("parts received", response_only=True, value={
    **EXAMPLE.value, "status": "uploading", "status_label": "Receiving the file", "file_size": 104857600,
    "file_format": "", "parts": {"1": 52428800, "2": 52428800}, "progress": 0.0,
    "counts": {"rows": 0, "created": 0, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 0},
    "errors": {"failed_rows": 0, "warnings": 0, "first": []}, "started_at": None, "finished_at": None})

OWN = gettext_lazy("Needs imports:write (consent files: consent:write too). You see only the imports your keys "
                   "created; others answer 404.")


# --- views ---

class _ImportView:
    required_scopes = {"*": Scope.IMPORTS_WRITE}

    def own_imports(self):
        return ImportJob.objects.filter(partner=self.client.partner).select_related("template")

    def own_import(self, job_id: int) -> ImportJob:
        job = get_object_or_404(self.own_imports(), pk=job_id)
        self.audit_target = f"import {job.pk}"
        return job

    def queue(self, job: ImportJob, *, dry_run: bool, before: str) -> None:
        """Run the job on the Celery worker, like the admin's large imports; if the queue
        cannot take it, it goes back to `before` to be started again."""
        from profiles.tasks import run_import

        if not import_job_claim(job=job, dry_run=dry_run, actor=self.actor):
            raise ApiError("not_startable", _("This import cannot start now: it is %(status)s.") % {
                "status": job.get_status_display()}, status.HTTP_409_CONFLICT)
        task_queue_after_commit(task=run_import, args=(job.pk, dry_run), on_failure=lambda: ImportJob.objects.filter(
            pk=job.pk, status=ImportStatus.QUEUED).update(status=before))
        job.refresh_from_db()


def _refuse_unknown_fields(data, serializer_class) -> None:
    """Only the listed fields, and no text a database cannot store (multipart bodies do not
    pass the JSON parser's checks)."""
    unknown = sorted(set(data) - set(serializer_class().fields))
    if unknown:
        raise ApiError("unknown_field", VALIDATION_MESSAGE, fields={name: [_("This field cannot be set.")]
                                                                   for name in unknown})
    for name in data:
        value = data.get(name)
        if isinstance(value, str) and "\x00" in value:
            message = _("Text may not contain the NUL character (\\u0000).")
            raise ApiError("invalid", message, fields={name: [message]})
        upload_name = getattr(value, "name", "")
        if isinstance(upload_name, str) and "\x00" in upload_name:
            message = _("Text may not contain the NUL character (\\u0000).")
            raise ApiError("invalid", message, fields={name: [message]})


def _template(name_or_id: str | None, kind: str) -> MappingTemplate | None:
    if not name_or_id:
        return None
    match = Q(name=name_or_id.strip())
    if name_or_id.strip().isdigit():
        match |= Q(pk=int(name_or_id))
    template = MappingTemplate.objects.filter(match, kind=kind).order_by("pk").first()
    if template is None:
        message = _("No mapping template “%(template)s” for %(kind)s imports.") % {
            "template": name_or_id, "kind": ImportKind(kind).label}
        raise ApiError("unknown_template", message, UNPROCESSABLE, fields={"template": [message]})
    return template


def _unreadable(error: ReadError) -> ApiError:
    return ApiError("unreadable_file", str(error), UNPROCESSABLE, fields={"file": [str(error)]})


def _mapping_unfit(error: ValidationError) -> ApiError:
    return ApiError("mapping_invalid", " ".join(error.messages), UNPROCESSABLE, fields={"mapping": error.messages})


class ImportCollectionView(_ImportView, PartnerGenericView):
    parser_classes = [MultiPartParser, StrictJSONParser]
    serializer_class = ImportJobSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no partner
            return ImportJob.objects.none()
        return self.own_imports()

    @extend_schema(
        operation_id="imports_list", summary=_("Your imports"),
        description=_("Newest first, with cursor pagination (follow `next`).") + " " + OWN,
        responses={200: ImportJobSerializer(many=True), **error_responses(400, 401, 403, 422, 429)},
        examples=[LIST_EXAMPLE],
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([import_output(job, detail=False) for job in page])

    @extend_schema(
        operation_id="imports_create", summary=_("Import a file"),
        description=_(
            "Multipart. With `file`: the file is stored, its format and encoding detected, its columns mapped (by "
            "the template, else by their headers) and the import queued on the worker: 202, then follow `url`. "
            "Files larger than one request may carry: send `file_name` instead of `file` (201), then each part "
            "to `/imports/{id}/parts/`, then `POST /imports/{id}/start/`. Limits: the platform's import size "
            "(all parts together) and formats. An unreadable file, an unknown template or columns that do not "
            "say who the customer is answer 422.") + " " + OWN,
        request={"multipart/form-data": ImportCreateSerializer},
        responses={201: ImportJobSerializer, 202: ImportJobSerializer,
                   **error_responses(400, 401, 403, 413, 415, 422, 429)},
        examples=[EXAMPLE],
    )
    def post(self, request):
        _refuse_unknown_fields(request.data, ImportCreateSerializer)
        serializer = ImportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        kind = data["kind"]
        if kind == ImportKind.CONSENT and Scope.CONSENT_WRITE not in self.client.scopes:
            raise ApiError("missing_scope", _("This API key lacks the scope %(scope)s.") % {"scope": Scope.CONSENT_WRITE},
                           status.HTTP_403_FORBIDDEN)
        template = _template(data.get("template"), kind)
        options = {"kind": kind, "actor": self.actor, "partner": self.client.partner,
                   "source": self.client.partner.code, "mode": data["mode"], "error_policy": data["error_policy"],
                   "template": template}
        if "file" not in data and "file_name" not in data:
            message = _("Send the file, or file_name to send the file in parts.")
            raise ApiError("file_missing", message, UNPROCESSABLE, fields={"file": [message]})
        if "file" not in data:
            try:
                job = import_job_receive(name=data["file_name"].strip(), dry_run=data["dry_run"], **options)
            except ReadError as error:
                raise _unreadable(error) from None
            self.audit_target = f"import {job.pk}"
            return Response(import_output(job), status=status.HTTP_201_CREATED)

        upload = data["file"]
        limit = import_max_bytes()
        if upload.size > limit:
            message = _("The file is %(size)s MB; the limit is %(limit)s MB. Split the data into several "
                        "imports.") % {"size": upload.size // 2**20, "limit": limit // 2**20}
            raise ApiError("file_too_large", message, UNPROCESSABLE, fields={"file": [message]})
        stored = upload_store(upload)
        try:
            job, _table = import_job_create(path=stored, name=data.get("file_name", "").strip() or upload.name,
                                            **options)
        except ReadError as error:
            file_remove(ImportJob(file_path=stored))
            raise _unreadable(error) from None
        self.audit_target = f"import {job.pk}"
        try:
            import_mapping_check(job)
        except ValidationError as error:
            import_job_fail(job=job, error=" ".join(error.messages))
            raise _mapping_unfit(error) from None
        self.queue(job, dry_run=data["dry_run"], before=ImportStatus.DRAFT)
        return Response(import_output(job), status=status.HTTP_202_ACCEPTED)


class ImportDetailView(_ImportView, PartnerAPIView):
    @extend_schema(
        operation_id="imports_retrieve", summary=_("An import: status, progress, counts, errors"),
        description=OWN, responses={200: ImportJobSerializer, **error_responses(401, 403, 404, 429)},
        examples=[EXAMPLE],
    )
    def get(self, request, job_id):
        return Response(import_output(self.own_import(job_id)))


class ImportPartsView(_ImportView, PartnerAPIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="imports_part", summary=_("Send a part of the file"),
        description=_("Multipart: `number` (1, 2, …) and `file`, the part's bytes. Parts may come in any order "
                      "and a part sent again replaces the earlier one (retries are safe). Every part must fit "
                      "in one request; all together within the platform's import size.") + " " + OWN,
        request={"multipart/form-data": ImportPartSerializer},
        responses={200: ImportJobSerializer, **error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)},
        examples=[PARTS_EXAMPLE],
    )
    def post(self, request, job_id):
        job = self.own_import(job_id)
        _refuse_unknown_fields(request.data, ImportPartSerializer)
        serializer = ImportPartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            import_part_add(job=job, number=serializer.validated_data["number"],
                            content=serializer.validated_data["file"])
        except ValidationError as error:
            code = error.code or "invalid"
            raise ApiError(code, error.messages[0], status.HTTP_409_CONFLICT if code == "not_receiving"
                           else UNPROCESSABLE) from None
        job.refresh_from_db()
        return Response(import_output(job))


class ImportStartView(_ImportView, PartnerAPIView):
    parser_classes = [StrictJSONParser, MultiPartParser]

    @extend_schema(
        operation_id="imports_start", summary=_("Start an import"),
        description=_("An import sent in parts: the parts are joined (every number from 1 to the last must have "
                      "come), the file is read and mapped, and the import is queued. A previewed import "
                      "(dry_run) is run for real, or previewed again with dry_run true.") + " " + OWN,
        request=ImportStartSerializer,
        responses={202: ImportJobSerializer, **error_responses(400, 401, 403, 404, 409, 415, 422, 429)},
        examples=[EXAMPLE],
    )
    def post(self, request, job_id):
        job = self.own_import(job_id)
        data = request.data
        if not isinstance(data, dict):
            raise ApiError("invalid", VALIDATION_MESSAGE, fields={"non_field_errors": [_("Must be a JSON object.")]})
        _refuse_unknown_fields(data, ImportStartSerializer)
        serializer = ImportStartSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        if job.status == ImportStatus.UPLOADING:
            dry_run = serializer.validated_data.get("dry_run", job.dry_run)
            try:
                job = import_parts_complete(job=job)
            except ReadError as error:
                raise _unreadable(error) from None
            except ValidationError as error:
                code = error.code or "invalid"
                raise ApiError(code, error.messages[0], status.HTTP_409_CONFLICT if code == "not_receiving"
                               else UNPROCESSABLE) from None
            try:
                import_mapping_check(job)
            except ValidationError as error:
                import_job_fail(job=job, error=" ".join(error.messages))
                raise _mapping_unfit(error) from None
            self.queue(job, dry_run=dry_run, before=ImportStatus.DRAFT)
        else:
            before = job.status
            self.queue(job, dry_run=serializer.validated_data.get("dry_run", False), before=before)
        return Response(import_output(job), status=status.HTTP_202_ACCEPTED)


class ImportFailedRowsView(_ImportView, PartnerAPIView):
    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)  # the answer is CSV, whatever Accept says

    @extend_schema(
        operation_id="imports_failed_rows", summary=_("The rows that failed, as CSV"),
        description=_("The file's own columns plus the errors and the row number, for fixing and sending "
                      "again.") + " " + OWN,
        responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, job_id):
        job = self.own_import(job_id)
        response = StreamingHttpResponse(failed_rows_lines(job, job.headers), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-failed-rows.csv"'
        return response
