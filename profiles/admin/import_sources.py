"""Watched import sources in the admin (导入 → 监控的导入来源): where the files come from,
when the source was last and will next be polled, its errors, the imports it created, and
"poll now"."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from cdp.queueing import task_queue_after_commit

from ..models import ImportJob, ImportKind, ImportSource

RECENT_JOBS = 20


class ImportSourceForm(forms.ModelForm):
    endpoint_url = forms.URLField(label=gettext_lazy("endpoint"), required=False, assume_scheme="https",
                                  help_text=ImportSource._meta.get_field("endpoint_url").help_text)

    class Meta:
        model = ImportSource
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        storage = cleaned.get("storage")
        if storage == ImportSource.Storage.FOLDER and not (cleaned.get("path") or "").startswith("/"):
            self.add_error("path", _("Give the folder's absolute path, e.g. /srv/crm-drop."))
        if storage == ImportSource.Storage.S3 and not cleaned.get("bucket"):
            self.add_error("bucket", _("Give the bucket's name."))
        template, kind = cleaned.get("template"), cleaned.get("kind")
        if template is not None and kind and template.kind != kind:
            self.add_error("template", _("This template is for %(kind)s imports.") % {
                "kind": template.get_kind_display()})
        if kind == ImportKind.CONSENT and self.user is not None and not self.user.has_perm("consent.add_consentrecord"):
            raise ValidationError(_("Recording consent needs the permission to add consent records."))
        return cleaned


@admin.register(ImportSource)
class ImportSourceAdmin(admin.ModelAdmin):
    form = ImportSourceForm
    # Few columns, so that the runs and errors fit at 1440 px; kind and template are filters.
    list_display = ("name", "location_display", "enabled", "last_run_display", "next_run_display",
                    "last_counts_display", "error_display", "jobs_link")
    list_filter = ("enabled", "kind", "storage", "template")
    search_fields = ("name", "path", "bucket", "prefix")
    list_select_related = ("template",)
    actions = ["poll_now"]
    readonly_fields = ("last_run_at", "next_run_at", "last_counts_display", "last_error", "recent_jobs")
    fieldsets = (
        (None, {"fields": ("name", "enabled", "kind", "template", "mode", "error_policy", "data_source",
                           "interval_minutes")}),
        (gettext_lazy("where the files come from"), {"fields": (
            "storage", "path", "bucket", "prefix", "endpoint_url", "region", "credentials")}),
        (gettext_lazy("runs"), {"fields": ("last_run_at", "next_run_at", "last_counts_display", "last_error",
                                          "recent_jobs")}),
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.user = request.user
        return form

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(job_count=Count("jobs"))

    @admin.display(description=gettext_lazy("where"))
    def location_display(self, source):
        location = source.location
        short = location if len(location) <= 28 else "…" + location[-27:]  # the end says most
        return format_html('<span title="{}">{}</span>', location, short)

    @admin.display(description=gettext_lazy("last run"), ordering="last_run_at")
    def last_run_display(self, source):
        return date_format(localtime(source.last_run_at), "SHORT_DATETIME_FORMAT") if source.last_run_at else "—"

    @admin.display(description=gettext_lazy("next run"), ordering="next_run_at")
    def next_run_display(self, source):
        if not source.enabled:
            return _("disabled")
        if not source.next_run_at:
            return _("within a minute")
        return date_format(localtime(source.next_run_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=gettext_lazy("last run's files"))
    def last_counts_display(self, source):
        counts = source.last_counts or {}
        if not counts:
            return "—"
        return _("%(imported)s imported, %(failed)s failed, %(duplicates)s already imported") % {
            "imported": counts.get("imported", 0), "failed": counts.get("failed", 0),
            "duplicates": counts.get("duplicates", 0)}

    @admin.display(description=gettext_lazy("last error"))
    def error_display(self, source):
        if not source.last_error:
            return "—"
        first = source.last_error.splitlines()[0]
        return format_html('<span style="color: var(--error-fg)" title="{}">{}</span>', source.last_error,
                           first if len(first) <= 60 else first[:59] + "…")

    @admin.display(description=gettext_lazy("imports"))
    def jobs_link(self, source):
        url = reverse("admin:profiles_importjob_changelist") + f"?import_source={source.pk}"
        count = getattr(source, "job_count", None)
        return format_html('<a href="{}">{}</a>', url, ngettext("%(count)s import", "%(count)s imports", count or 0)
                           % {"count": count or 0})

    @admin.display(description=gettext_lazy("latest imports"))
    def recent_jobs(self, source):
        jobs = list(ImportJob.objects.filter(import_source=source).order_by("-created_at", "-id")[:RECENT_JOBS])
        if not jobs:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", '<li><a href="{}">#{} {}</a> · {} · {}</li>', (
            (reverse("admin:profiles_importjob_change", args=[job.pk]), job.pk, job.file_name,
             job.get_status_display(), date_format(localtime(job.created_at), "SHORT_DATETIME_FORMAT"))
            for job in jobs)))

    @admin.action(description=gettext_lazy("Poll now"), permissions=["change"])
    def poll_now(self, request, queryset):
        from ..import_sources import poll_import_source

        sources = list(queryset.filter(enabled=True).values_list("pk", flat=True))
        for source_id in sources:
            task_queue_after_commit(task=poll_import_source, args=(source_id, True), request=request)
        skipped = queryset.count() - len(sources)
        messages.info(request, ngettext("%(count)s source will be polled in a moment; refresh to see the result.",
                                        "%(count)s sources will be polled in a moment; refresh to see the result.",
                                        len(sources)) % {"count": len(sources)})
        if skipped:
            messages.warning(request, ngettext("%(count)s disabled source was not polled.",
                                               "%(count)s disabled sources were not polled.", skipped)
                             % {"count": skipped})
