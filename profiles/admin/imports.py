"""Imports in the admin: upload → map columns (save as a template) → preview (dry run) →
import → the job page (counts, errors, failed rows, progress, undo). Small files run in the
request; larger ones in Celery, and the job page follows their progress."""
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cdp.actors import Actor
from cdp.queueing import task_queue_after_commit

from ..event_labels import source_label
from ..importing.files import upload_store
from ..importing.jobs import failed_rows_lines, import_job_create, job_mapping_set, mapping_template_save
from ..importing.mapping import TAGS_NEW, identity_kinds, is_tags_target, tags_category_id, target_choices, target_label
from ..importing.masks import row_mask, row_masks, text_mask
from ..importing.pipeline import import_run
from ..importing.readers import FORMATS, ReadError, encoding_label, open_table
from ..importing.touched import CREATED, EVENTS, UPDATED, import_events_q, import_touched, import_touched_counts
from ..importing.undo import import_undo, import_undo_queue
from ..masking import can_see_personal_data
from ..models import ErrorPolicy, ImportJob, ImportKind, ImportMode, ImportStatus, MappingTemplate, TagCategory

PREVIEW_ROWS = 3
ERRORS_PER_PAGE = 100
# Recording consent, by any path, needs the consent app's permission to add ledger entries.
CONSENT_PERMISSION = "consent.add_consentrecord"
# Running, resuming or undoing an import someone else uploaded (administrators have it).
OTHERS_IMPORTS_PERMISSION = "profiles.change_importjob"


def max_upload_bytes() -> int:
    return getattr(settings, "CDP_IMPORT_MAX_BYTES", 500 * 1024 * 1024)


def inline_bytes() -> int:
    """Files up to this size run in the request; larger ones in the background."""
    return getattr(settings, "CDP_IMPORT_INLINE_BYTES", 2 * 1024 * 1024)


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("file"),
                           help_text=gettext_lazy("CSV, TSV, XLSX or JSON; UTF-8, GB18030 or UTF-16 (Excel)."))
    kind = forms.ChoiceField(label=gettext_lazy("what the file holds"), choices=ImportKind.choices)
    source = forms.CharField(label=gettext_lazy("source"), max_length=64, initial="crm",
                             help_text=gettext_lazy("Where the data comes from, e.g. the CRM's name."))
    template = forms.ModelChoiceField(label=gettext_lazy("mapping template"), required=False,
                                      queryset=MappingTemplate.objects.all(),
                                      help_text=gettext_lazy("Reuse the column mapping saved for this source."))
    # Mode and error policy are chosen once, on the mapping page, beside the preview they
    # decide (and the mode only for customer files); the job page shows them.

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = max_upload_bytes()
        if upload.size > limit:
            raise ValidationError(
                _("The file is %(size)s MB; the limit in the browser is %(limit)s MB. Split it, or import it on the "
                  "server with “manage.py import_file”.") % {"size": upload.size // 2**20, "limit": limit // 2**20},
                code="file_too_large")
        if upload.size == 0:
            raise ValidationError(_("The file is empty."), code="file_empty")
        return upload

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_kind(self):
        kind = self.cleaned_data["kind"]
        if kind == ImportKind.CONSENT and self.user is not None and not self.user.has_perm(CONSENT_PERMISSION):
            raise ValidationError(_consent_refusal(), code="consent_permission_missing")
        return kind

    def clean(self):
        cleaned = super().clean()
        template = cleaned.get("template")
        if template is not None and cleaned.get("kind") and template.kind != cleaned["kind"]:
            self.add_error("template", _("This template is for %(kind)s imports.") % {
                "kind": template.get_kind_display()})
        return cleaned


class ImportJobFilter(admin.SimpleListFilter):
    """The customer list narrowed to those one import created, or updated (for event and
    consent files: whose events or consent it recorded): `?import_job=12-created`. Shown
    in the sidebar only while it is used; the job page links to it."""

    title = gettext_lazy("import")
    parameter_name = "import_job"

    def _parsed(self):
        job_id, _dash, action = (self.value() or "").partition("-")
        if not job_id.isdigit() or action not in (CREATED, UPDATED):
            return None, action
        return ImportJob.objects.filter(pk=int(job_id)).first(), action

    def lookups(self, request, model_admin):
        if not self.value():
            return []
        job, action = self._parsed()
        if job is None:
            return [(self.value(), _("unknown import"))]
        label = ((_("created by import #%(job)s") if action == CREATED else _("updated by import #%(job)s"))
                 if job.kind == ImportKind.PROFILES else _("in import #%(job)s")) % {"job": job.pk}
        return [(self.value(), f"{label} ({job.file_name})")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        job, action = self._parsed()
        if job is None or not ImportJobAdmin.may_view(request, job):
            return queryset.none()
        return import_touched(job, action, queryset)


class ImportEventsFilter(admin.SimpleListFilter):
    """The event list narrowed to the events one import added: `?import_job=12`. Shown in
    the sidebar only while it is used; the job page links to it."""

    title = gettext_lazy("import")
    parameter_name = "import_job"

    def _job(self):
        value = self.value() or ""
        return ImportJob.objects.filter(pk=int(value)).first() if value.isdigit() else None

    def lookups(self, request, model_admin):
        if not self.value():
            return []
        job = self._job()
        if job is None:
            return [(self.value(), _("unknown import"))]
        return [(self.value(), _("added by import #%(job)s") % {"job": job.pk} + f" ({job.file_name})")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        job = self._job()
        q = import_events_q(job) if job is not None and ImportJobAdmin.may_view(request, job) else None
        return queryset.filter(q) if q is not None else queryset.none()


@admin.register(MappingTemplate)
class MappingTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "source", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name", "source")
    readonly_fields = ("created_by", "updated_at")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "file_name", "kind", "status", "rows_read", "created", "updated", "unchanged", "skipped",
                    "failed", "actor_label", "created_at", "duration_display")
    list_display_links = ("id", "file_name")
    # The watched source that brought the file in, shown once any source has made an import.
    list_filter = ("kind", "status", ("import_source", admin.RelatedOnlyFieldListFilter))
    search_fields = ("file_name", "source")
    list_select_related = ()
    date_hierarchy = "created_at"

    def has_change_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # a job holds what its undo needs; it stays as the record of the import

    @staticmethod
    def may_view(request, job: ImportJob) -> bool:
        return request.user.has_perm("profiles.view_importjob") or request.user.has_perm("profiles.change_importjob")

    @admin.display(description=gettext_lazy("duration"))
    def duration_display(self, job):
        return job.duration_text

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("new/", wrap(self.upload_view), name="profiles_importjob_upload"),
            path("<int:job_id>/mapping/", wrap(self.mapping_view), name="profiles_importjob_mapping"),
            path("<int:job_id>/run/", wrap(self.run_view), name="profiles_importjob_run"),
            path("<int:job_id>/progress/", wrap(self.progress_view), name="profiles_importjob_progress"),
            path("<int:job_id>/failed-rows/", wrap(self.failed_rows_view), name="profiles_importjob_failed_rows"),
            path("<int:job_id>/undo/", wrap(self.undo_view), name="profiles_importjob_undo"),
            path("<int:job_id>/resume/", wrap(self.resume_view), name="profiles_importjob_resume"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:profiles_importjob_upload"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not str(object_id).isdigit():
            raise Http404
        job = get_object_or_404(ImportJob, pk=object_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        errors = Paginator(job.row_errors.order_by("row_number"), ERRORS_PER_PAGE).get_page(request.GET.get("page"))
        headers = job.headers
        samples = []
        labels = {"create": _("To create") if job.dry_run else _("Created"),
                  "update": _("To update") if job.dry_run else _("Updated"),
                  "unchanged": _("Unchanged"), "skip": _("Skipped"), "fail": _("Failed")}
        reads_cells = _reads_cells(request.user, job)
        masks = row_masks(headers, job.mapping)
        for action, rows in (job.report.get("samples") or {}).items():
            if rows:
                samples.append({"label": labels.get(action, action),
                                "rows": [_sample(row, reads_cells, masks) for row in rows]})
        if not reads_cells:  # error messages quote the cells they are about
            for error in errors:
                error.errors = [{**item, "message": text_mask(item.get("message", ""))} for item in error.errors]
        may_act = _may_act(request.user, job)
        return TemplateResponse(request, "admin/profiles/importjob/detail.html", {
            "touched": _touched_links(job),
            "warnings": _warnings(job, reads_cells),
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import #%(job)s: %(file)s") % {"job": job.pk, "file": job.file_name},
            "job": job,
            "source": source_label(job.source),
            "headers": headers,
            "samples": samples,
            "errors": errors,
            "encoding": encoding_label(job.encoding) if job.file_format != "xlsx" else "—",
            "mapped": [(h, target_label(job.kind, t)) for h, t in job.mapping.items() if t],
            # Nothing is dropped without the user seeing it: the columns no field takes.
            "ignored": [h for h in headers if not job.mapping.get(h)],
            "unknown_tags": _unknown_tags(job),
            "can_run": job.status == ImportStatus.PREVIEWED and not job.file_expired_at and may_act,
            "can_remap": may_act and not job.file_expired_at and not job.undone_at and (
                job.status in (ImportStatus.PREVIEWED, ImportStatus.DRAFT)
                or job.dry_run and job.status in (ImportStatus.FAILED, ImportStatus.INTERRUPTED)),
            "can_resume": job.can_resume and may_act,
            "can_undo": job.can_undo and may_act,
            "can_download_failed": reads_cells,
            "run_by": job.run_by_label or job.actor_label,
        })

    # --- upload ---

    def upload_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            stored = upload_store(data["file"])
            try:
                job, _table = import_job_create(
                    path=stored, name=data["file"].name, kind=data["kind"], actor=Actor.staff(request.user),
                    source=data["source"], template=data["template"])
            except ReadError as error:
                form.add_error("file", str(error))
            else:
                return HttpResponseRedirect(reverse("admin:profiles_importjob_mapping", args=[job.pk]))
        return TemplateResponse(request, "admin/profiles/importjob/upload.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import a file"),
            "form": form,
            "formats": ", ".join(f.upper() for f in FORMATS),
        })

    # --- mapping ---

    def mapping_view(self, request, job_id):
        job = get_object_or_404(ImportJob, pk=job_id)
        self._check_may_act(request, job)
        if job.status not in (ImportStatus.DRAFT, ImportStatus.PREVIEWED, ImportStatus.FAILED,
                              ImportStatus.INTERRUPTED) or job.undone_at \
                or (job.status == ImportStatus.INTERRUPTED and not job.dry_run) \
                or (job.status == ImportStatus.FAILED and not job.dry_run and job.batches.exists()):
            messages.warning(request, _("This import has already run; upload the file again to import it anew."))
            return HttpResponseRedirect(reverse("admin:profiles_importjob_change", args=[job.pk]))
        if job.file_expired_at:
            messages.error(request, _file_expired_message(job))
            return HttpResponseRedirect(reverse("admin:profiles_importjob_change", args=[job.pk]))
        try:
            table = open_table(job.file_path, name=job.file_name, kind=job.kind)
        except (ReadError, FileNotFoundError) as error:
            messages.error(request, str(error) if isinstance(error, ReadError) else _("The uploaded file is gone; "
                                                                                      "upload it again."))
            return HttpResponseRedirect(reverse("admin:profiles_importjob_changelist"))
        choices = target_choices(job.kind)
        problems = []
        if request.method == "POST":
            mapping = {header: request.POST.get(f"column-{index}", "") for index, header in enumerate(table.headers)}
            new_tags = request.POST.get("new_tags_category", "")
            if new_tags.isdigit():  # tags not in the taxonomy are created under this category
                mapping = {header: f"{TAGS_NEW}{new_tags}" if target == "tags" else target
                           for header, target in mapping.items()}
            precedence = [k.strip() for k in request.POST.get("precedence", "").replace("，", ",").split(",")
                          if k.strip()]
            job.mode = request.POST.get("mode") if request.POST.get("mode") in ImportMode.values else job.mode
            job.error_policy = (request.POST.get("error_policy") if request.POST.get("error_policy")
                                in ErrorPolicy.values else job.error_policy)
            job.save(update_fields=["mode", "error_policy"])
            try:
                job = job_mapping_set(job=job, mapping=mapping, precedence=precedence, headers=table.headers)
                if request.POST.get("template_name", "").strip():
                    template = mapping_template_save(job=job, name=request.POST["template_name"],
                                                     actor=Actor.staff(request.user))
                    messages.success(request, _("Mapping saved as template “%(name)s”.") % {"name": template.name})
            except ValidationError as error:
                problems = error.messages
                job.mapping = mapping
            else:
                return self._start(request, job, dry_run=True)
        columns = []
        preview = []
        for _number, cells in table.rows():
            preview.append(cells)
            if len(preview) >= PREVIEW_ROWS:
                break
        for index, header in enumerate(table.headers):
            target = job.mapping.get(header, "")
            columns.append({
                "index": index, "header": header, "target": "tags" if is_tags_target(target) else target,
                "examples": [str(row[index]) for row in preview if index < len(row) and str(row[index]).strip()],
            })
        kind_names = {kind.code: str(kind) for kind in identity_kinds()}
        return TemplateResponse(request, "admin/profiles/importjob/mapping.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Map the columns of %(file)s") % {"file": job.file_name},
            "job": job,
            "columns": columns,
            "choices": choices,
            "problems": problems,
            "precedence": ", ".join(job.precedence),
            # The codes typed above, by their names in the reader's language, and every kind's code and name.
            "precedence_labels": [str(kind_names.get(code, code)) for code in job.precedence],
            "identity_kind_names": sorted(kind_names.items()),
            "encoding": encoding_label(table.encoding) if table.format != "xlsx" else "XLSX",
            "modes": ImportMode.choices,
            "policies": ErrorPolicy.choices,
            "template_name": job.template.name if job.template else "",
            "tag_categories": [(category.pk, str(category)) for category in
                               sorted(TagCategory.objects.all(), key=str)] if job.kind == ImportKind.PROFILES else [],
            "new_tags_category": next((tags_category_id(t) for t in job.mapping.values()
                                       if tags_category_id(t) is not None), None),
        })

    # --- running ---

    def run_view(self, request, job_id):
        if request.method != "POST":
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id)
        self._check_may_act(request, job)
        if job.file_expired_at:
            messages.error(request, _file_expired_message(job))
            return HttpResponseRedirect(reverse("admin:profiles_importjob_change", args=[job.pk]))
        # Claim the job: a second click (or a second tab) finds it no longer previewed.
        if not ImportJob.objects.filter(pk=job.pk, status=ImportStatus.PREVIEWED, file_expired_at__isnull=True).update(
                status=ImportStatus.QUEUED):
            messages.error(request, _("Preview the import before running it."))
            return HttpResponseRedirect(reverse("admin:profiles_importjob_change", args=[job.pk]))
        job.refresh_from_db()
        return self._start(request, job, dry_run=False)

    def resume_view(self, request, job_id):
        """An interrupted import continues after its last committed batch."""
        if request.method != "POST":
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id)
        self._check_may_act(request, job)
        if not job.can_resume or not ImportJob.objects.filter(
                pk=job.pk, status=ImportStatus.INTERRUPTED, dry_run=False, file_expired_at__isnull=True,
                undo_queued_at__isnull=True).update(status=ImportStatus.QUEUED):
            messages.error(request, _file_expired_message(job) if job.file_expired_at else
                           _("Only an interrupted import can be resumed."))
            return HttpResponseRedirect(reverse("admin:profiles_importjob_change", args=[job.pk]))
        job.refresh_from_db()
        return self._start(request, job, dry_run=False, resume=True)

    def _start(self, request, job: ImportJob, *, dry_run: bool, resume: bool = False):
        actor = Actor.staff(request.user)  # whoever runs it is credited, not the uploader
        if job.file_size <= inline_bytes():
            import_run(job, dry_run=dry_run, actor=actor, resume=resume)
        else:
            from ..tasks import run_import

            job.status = ImportStatus.QUEUED
            job.dry_run = dry_run
            job.progress = 0
            job.run_by, job.run_by_label = actor.user, actor.label[:150]
            job.save(update_fields=["status", "dry_run", "progress", "run_by", "run_by_label"])
            arguments = (job.pk, dry_run, True) if resume else (job.pk, dry_run)
            # If the broker cannot take it, the job goes back to where it was (not "queued" forever).
            before = ImportStatus.INTERRUPTED if resume else ImportStatus.DRAFT if dry_run else ImportStatus.PREVIEWED
            task_queue_after_commit(
                task=run_import, args=arguments, request=request,
                sent_message=_("The file is large: it is processed in the background. You can leave this page "
                               "and come back."),
                failure_message=_("The task queue cannot be reached right now, so the file has not started; it is "
                                  "kept. Try again in a few minutes."),
                on_failure=lambda: ImportJob.objects.filter(pk=job.pk, status=ImportStatus.QUEUED).update(status=before))
        return HttpResponseRedirect(reverse("admin:profiles_importjob_change", args=[job.pk]))

    def progress_view(self, request, job_id):
        job = get_object_or_404(ImportJob, pk=job_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return JsonResponse({
            "status": job.status, "status_label": job.get_status_display(), "progress": job.progress,
            "running": job.is_running, "undoing": job.is_undoing, "undo_progress": job.undo_progress,
            "rows": job.rows_read, "created": job.created, "updated": job.updated,
            "unchanged": job.unchanged, "skipped": job.skipped, "failed": job.failed,
        })

    def failed_rows_view(self, request, job_id):
        job = get_object_or_404(ImportJob, pk=job_id)
        if not self.has_view_permission(request, job) or not _reads_cells(request.user, job):
            raise PermissionDenied
        response = StreamingHttpResponse(failed_rows_lines(job, job.headers), content_type="text/csv; charset=utf-8")
        stem = job.file_name.rsplit(".", 1)[0]
        response["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(stem)}-failed-rows.csv"
        return response

    def undo_view(self, request, job_id):
        job = get_object_or_404(ImportJob, pk=job_id)
        self._check_may_act(request, job)
        if request.method == "POST":
            if job.file_size > inline_bytes():
                # A large undo takes minutes: in the background, the job page follows it.
                from ..tasks import undo_import

                if import_undo_queue(job=job):
                    task_queue_after_commit(
                        task=undo_import, args=(job.pk, request.user.pk), request=request,
                        sent_message=_("Import #%(job)s is being undone in the background. You can leave this "
                                       "page and come back.") % {"job": job.pk},
                        # If the broker cannot take it, the job can be undone again (nothing was done).
                        on_failure=lambda: ImportJob.objects.filter(pk=job.pk, undone_at__isnull=True).update(
                            undo_queued_at=None))
                else:
                    messages.error(request, _("This import cannot be undone (it is a preview, still running, or "
                                              "already undone)."))
                return HttpResponseRedirect(reverse("admin:profiles_importjob_change", args=[job.pk]))
            try:
                import_undo(job=job, actor=Actor.staff(request.user))
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                messages.success(request, _("Import #%(job)s was undone.") % {"job": job.pk})
            return HttpResponseRedirect(reverse("admin:profiles_importjob_change", args=[job.pk]))
        return TemplateResponse(request, "admin/profiles/importjob/undo_confirm.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Undo import #%(job)s?") % {"job": job.pk},
            "job": job,
        })


    def _check_may_act(self, request, job: ImportJob) -> None:
        """Mapping, previewing, running, resuming and undoing: the uploader's (or an
        administrator's), and for consent files only with the consent permission."""
        if not self.has_add_permission(request) or not _may_act(request.user, job):
            raise PermissionDenied


def _sample(row: dict, reads_cells: bool, masks) -> dict:
    """A sample row of the report: each cell as written and, where it differs, as it is
    stored; phones and e-mails masked for staff who may not read the file's cells."""
    values, stored = row["values"], row.get("stored") or []
    warnings = row.get("warnings") or []
    if not reads_cells:
        values = row_mask(values, masks)
        stored = row_mask(stored, masks)
        warnings = [{**item, "message": text_mask(item.get("message", ""))} for item in warnings]
    cells = [{"raw": value, "stored": stored[index] if index < len(stored) else None}
             for index, value in enumerate(values)]
    return {**row, "cells": cells, "warnings": warnings}


def _warnings(job: ImportJob, reads_cells: bool) -> dict:
    """The rows imported without a refused cell (a landline in the mobile column)."""
    warnings = job.report.get("warnings") or {}
    rows = warnings.get("rows") or []
    if not reads_cells:
        rows = [{**item, "message": text_mask(item.get("message", ""))} for item in rows]
    return {"count": warnings.get("count", 0), "rows": rows, "listed": len({item["row"] for item in rows})}


def _unknown_tags(job: ImportJob) -> dict:
    """The tags the file named that were not in the taxonomy: left out (a warning), or
    created under the category chosen; per tag, how many rows name it."""
    return job.report.get("unknown_tags") or {}


def _touched_links(job: ImportJob) -> list[dict]:
    """Links to the customer list filtered to the customers this import created / updated
    (for event and consent files: those whose events or consent it recorded), with counts."""
    if job.dry_run or job.undone_at or job.status not in (ImportStatus.DONE, ImportStatus.FAILED,
                                                          ImportStatus.INTERRUPTED):
        return []
    counts = import_touched_counts(job)
    url = reverse("admin:profiles_profile_changelist")
    if job.kind == ImportKind.PROFILES:
        items = [(CREATED, _("Customers created by this import")), (UPDATED, _("Customers updated by this import"))]
    elif job.kind == ImportKind.EVENTS:
        items = [(UPDATED, _("Customers whose events this import added"))]
    else:
        items = [(UPDATED, _("Customers whose consent this import recorded"))]
    links = [{"action": action, "label": label, "count": counts[action],
              "url": f"{url}?{ImportJobFilter.parameter_name}={job.pk}-{action}"} for action, label in items]
    if job.kind == ImportKind.EVENTS:
        links.append({"action": EVENTS, "label": _("Events this import added"), "count": counts[EVENTS],
                      "url": f"{reverse('admin:profiles_event_changelist')}?{ImportEventsFilter.parameter_name}="
                             f"{job.pk}"})
    return links


def _may_act(user, job: ImportJob) -> bool:
    if job.created_by_id != user.pk and not user.has_perm(OTHERS_IMPORTS_PERMISSION):
        return False
    return job.kind != ImportKind.CONSENT or user.has_perm(CONSENT_PERMISSION)


def _consent_refusal() -> str:
    return _("Importing consent records them in the consent ledger: that needs the permission to record "
             "consent. Ask a privacy officer.")


def _file_expired_message(job: ImportJob) -> str:
    return _("The uploaded file was deleted on %(date)s because the import was not run in time; upload it "
             "again.") % {"date": date_format(localtime(job.file_expired_at), "SHORT_DATETIME_FORMAT")}


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _reads_cells(user, job: ImportJob) -> bool:
    """The file's cells hold personal data: the person who uploaded it and staff who may
    see personal data read them as they are; other staff see phones and emails masked,
    and cannot download the failed rows."""
    return job.created_by_id == user.pk or can_see_personal_data(user)


