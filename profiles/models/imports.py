"""Bulk imports: the job, its reusable column mappings, per-row errors and what undo needs.

Written only by `profiles.importing` (the pipeline and undo).
"""
from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ImportKind(models.TextChoices):
    PROFILES = "profiles", _("Customers")
    EVENTS = "events", _("Events (orders, behaviour)")
    CONSENT = "consent", _("Consent records")


class ImportMode(models.TextChoices):
    CREATE_OR_UPDATE = "create_or_update", _("Create new customers and update existing ones")
    CREATE_ONLY = "create_only", _("Create new customers only")
    UPDATE_ONLY = "update_only", _("Update existing customers only")


class ErrorPolicy(models.TextChoices):
    SKIP = "skip", _("Skip bad rows and import the rest")
    ALL_OR_NOTHING = "all_or_nothing", _("All or nothing: import only if every row is valid")


class ImportStatus(models.TextChoices):
    UPLOADING = "uploading", _("Receiving the file")  # a partner sends it in parts (the API)
    DRAFT = "draft", _("Mapping columns")
    QUEUED = "queued", _("Queued")
    PREVIEWING = "previewing", _("Previewing")
    PREVIEWED = "previewed", _("Previewed")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    INTERRUPTED = "interrupted", _("Interrupted")
    UNDONE = "undone", _("Undone")


class MappingTemplate(models.Model):
    """A saved column mapping, reused for the next file from the same source."""

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=ImportKind.choices, default=ImportKind.PROFILES)
    source = models.CharField(_("source"), max_length=64, blank=True, help_text=_("e.g. the CRM's name"))
    columns = models.JSONField(_("columns"), default=dict, help_text=_("Column header → field."))
    precedence = models.JSONField(_("match precedence"), default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("import mapping template")
        verbose_name_plural = _("import mapping templates")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="mapping_template_kind_name_unique")]

    def __str__(self):
        return f"{self.name} ({self.source})" if self.source else self.name


class ImportSource(models.Model):
    """A folder or an S3 bucket (prefix) that a CRM drops files into: polled on a schedule,
    each new file imported with the source's template and mode, then moved to done/ or
    failed/ beside it. Secrets never live here: an S3 source names the credentials that
    the workers' environment holds (profiles/importing/sources.py)."""

    class Storage(models.TextChoices):
        FOLDER = "folder", _("A folder on the workers")
        S3 = "s3", _("An S3-compatible bucket")

    name = models.CharField(_("name"), max_length=100, unique=True)
    storage = models.CharField(_("storage"), max_length=8, choices=Storage.choices, default=Storage.FOLDER)
    path = models.CharField(_("folder"), max_length=500, blank=True,
                            help_text=_("An absolute path that every worker machine sees (e.g. a shared mount)."))
    bucket = models.CharField(_("bucket"), max_length=255, blank=True)
    prefix = models.CharField(_("prefix"), max_length=255, blank=True, help_text=_("e.g. crm/exports"))
    endpoint_url = models.URLField(_("endpoint"), blank=True, help_text=_(
        "For S3-compatible services (Alibaba OSS, Tencent COS, MinIO); empty for AWS."))
    region = models.CharField(_("region"), max_length=64, blank=True)
    credentials = models.SlugField(_("credentials name"), max_length=40, blank=True, help_text=_(
        "The workers read the keys from the environment variables CDP_IMPORT_SOURCE_NAME_ACCESS_KEY_ID and "
        "CDP_IMPORT_SOURCE_NAME_SECRET_ACCESS_KEY, NAME being this name in capitals with _ for -; empty: the "
        "workers' default AWS credentials."))
    kind = models.CharField(_("what the files hold"), max_length=16, choices=ImportKind.choices,
                            default=ImportKind.PROFILES)
    template = models.ForeignKey(MappingTemplate, verbose_name=_("mapping template"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="import_sources",
                                 help_text=_("Without one, columns are recognised by their headers."))
    mode = models.CharField(_("mode"), max_length=20, choices=ImportMode.choices, default=ImportMode.CREATE_OR_UPDATE)
    error_policy = models.CharField(_("on errors"), max_length=20, choices=ErrorPolicy.choices,
                                    default=ErrorPolicy.SKIP)
    data_source = models.CharField(
        _("source"), max_length=64, default="crm",
        help_text=_("Where the data comes from, e.g. the CRM's name; stored on identities and events."))
    interval_minutes = models.PositiveIntegerField(_("every (minutes)"), default=60,
                                                   validators=[MinValueValidator(1)])
    enabled = models.BooleanField(_("enabled"), default=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True, editable=False)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    last_counts = models.JSONField(_("last run's files"), default=dict, blank=True, editable=False)
    # A worker polling the source holds it until then: no second worker polls it meanwhile.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("import source")
        verbose_name_plural = _("watched import sources")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(storage__in=["folder", "s3"]), name="import_source_storage_valid"),
            models.CheckConstraint(condition=Q(interval_minutes__gte=1), name="import_source_interval_positive"),
        ]

    def __str__(self):
        return self.name

    @property
    def location(self) -> str:
        if self.storage == self.Storage.S3:
            return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")
        return self.path


class ImportJob(models.Model):
    kind = models.CharField(_("kind"), max_length=16, choices=ImportKind.choices, default=ImportKind.PROFILES)
    status = models.CharField(_("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.DRAFT)
    # The upload's storage name (profiles/importing/files.py), or a path on the server.
    file_path = models.CharField(_("file"), max_length=500, editable=False)
    file_name = models.CharField(_("file name"), max_length=255)
    file_size = models.BigIntegerField(_("file size"), default=0)
    file_format = models.CharField(_("format"), max_length=8, blank=True)
    encoding = models.CharField(_("encoding"), max_length=32, blank=True)
    source = models.CharField(
        _("source"), max_length=64, default="import",
        help_text=_("Where the data comes from, e.g. the CRM's name; stored on identities and events."),
    )
    template = models.ForeignKey(MappingTemplate, verbose_name=_("mapping template"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="jobs")
    headers = models.JSONField(_("columns"), default=list, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    precedence = models.JSONField(_("match precedence"), default=list, blank=True)
    mode = models.CharField(_("mode"), max_length=20, choices=ImportMode.choices, default=ImportMode.CREATE_OR_UPDATE)
    error_policy = models.CharField(_("on errors"), max_length=20, choices=ErrorPolicy.choices,
                                    default=ErrorPolicy.SKIP)
    language = models.CharField(_("language"), max_length=16, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("started by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(_("started by"), max_length=150, blank=True)
    # The partner that uploaded the file over the API: it sees its own imports only.
    partner = models.ForeignKey("cdp.Partner", verbose_name=_("partner"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    # The watched source the file came from, and its SHA-256: a file is imported once per source.
    import_source = models.ForeignKey(ImportSource, verbose_name=_("import source"), null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="jobs")
    checksum = models.CharField(_("SHA-256"), max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    dry_run = models.BooleanField(_("preview only"), default=False)
    progress = models.FloatField(_("progress"), default=0)
    # Who ran (or resumed) the import: credited on the timeline and in the audit log.
    run_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("run by"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="+")
    run_by_label = models.CharField(_("run by"), max_length=150, blank=True)
    # Touched after every committed batch: a running job whose heartbeat stops is interrupted.
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)
    # The first file row not yet committed (0: none yet): where a resumed import continues.
    resume_row = models.PositiveIntegerField(default=0, editable=False)
    file_expired_at = models.DateTimeField(_("file deleted at"), null=True, blank=True)
    undo_queued_at = models.DateTimeField(_("undo queued at"), null=True, blank=True)
    undo_progress = models.FloatField(_("undo progress"), default=0)
    undo_error = models.TextField(_("undo error"), blank=True)

    rows_read = models.PositiveIntegerField(_("rows"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    report = models.JSONField(_("report"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by_label = models.CharField(_("undone by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ImportKind.values), name="import_job_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=ImportStatus.values), name="import_job_status_valid"),
            models.CheckConstraint(condition=Q(mode__in=ImportMode.values), name="import_job_mode_valid"),
            models.CheckConstraint(condition=Q(error_policy__in=ErrorPolicy.values), name="import_job_policy_valid"),
            # A file of a watched source is imported once; one that failed or was undone may come again.
            models.UniqueConstraint(fields=["import_source", "checksum"], name="import_job_source_file_once",
                                    condition=Q(import_source__isnull=False) & ~Q(checksum="")
                                    & ~Q(status__in=["failed", "undone"])),
        ]

    def __str__(self):
        return f"#{self.pk} {self.file_name}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def duration_text(self) -> str:
        """"2.7 s" ("2.7 秒"); "—" until the job has finished."""
        duration = self.duration
        return _("%(seconds)s s") % {"seconds": f"{duration.total_seconds():.1f}"} if duration else "—"

    @property
    def is_running(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.PREVIEWING, ImportStatus.RUNNING)

    @property
    def is_undoing(self) -> bool:
        return self.undo_queued_at is not None and self.undone_at is None

    @property
    def can_undo(self) -> bool:
        # A failed "skip bad rows" import keeps the batches it committed, and so may an
        # interrupted one: those can be undone.
        return (self.status in (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.INTERRUPTED)
                and not self.dry_run and not self.undone_at and not self.is_undoing)

    @property
    def can_resume(self) -> bool:
        return (self.status == ImportStatus.INTERRUPTED and not self.dry_run and not self.file_expired_at
                and not self.is_undoing)


class ImportRowError(models.Model):
    """A row that failed, with its original cells (for the failed-rows file) and every
    problem found in it (column and message, in the language of who started the job)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.PositiveIntegerField(_("row"))
    values = models.JSONField(_("values"), default=list)
    errors = models.JSONField(_("errors"), default=list)  # [{"column": …, "message": …, "code": …}]

    class Meta:
        verbose_name = _("import error")
        verbose_name_plural = _("import errors")
        indexes = [models.Index(fields=["job", "row_number"], name="import_row_error_job_row")]


class ImportBatch(models.Model):
    """What one committed batch added, as id ranges [[first, last], …]: undo deletes these."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    profile_ids = models.JSONField(default=list)  # customers created
    identity_ids = models.JSONField(default=list)  # identities added to existing customers
    profile_tag_ids = models.JSONField(default=list)
    event_ids = models.JSONField(default=list)
    consent_ids = models.JSONField(default=list)  # consent records added (undone by a correcting record)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="import_batch_job_number_unique")]


class ImportChange(models.Model):
    """An existing customer's fields before the import changed them (only those fields)."""

    # Indexed by (job, profile_id) below; no index of its own.
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="changes", db_index=False)
    profile_id = models.BigIntegerField()  # no constraint: the customer may be erased later
    before = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["job", "profile_id"], name="import_change_job_profile")]
