"""Watched import sources: a folder or an S3 bucket a CRM drops its exports into.

Celery beat runs `profiles.import_sources.poll_import_sources` every minute; it queues one
poll per due source. A poll first claims its source (one UPDATE: enabled, and not held by
another worker, or held past its lease), so two workers never poll one source together.
Each new file at the top of the folder (or prefix) is copied into the upload storage,
becomes an import job with the source's kind, template, mode and error policy, and is
imported on the spot (the poll already runs on a worker); then it is moved to `done/` or
`failed/` beside it. Its SHA-256 is recorded on the job: the same file dropped again is
not imported twice (it goes to `done/` at once), unless its import failed or was undone.

Files still being written must not be picked up: write them under a name starting with
"." or ending in .part or .tmp, and rename them when complete (uploads to S3 are atomic).
Credentials are never stored: an S3 source names them, and the workers read
CDP_IMPORT_SOURCE_NAME_ACCESS_KEY_ID / _SECRET_ACCESS_KEY from their environment (NAME: the
name in capitals, _ for -).
"""
from __future__ import annotations

import datetime
import logging
import os
import shutil
import tempfile

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from cdp.actors import Actor

from ..models import ImportJob, ImportSource, ImportStatus
from .files import file_checksum, upload_store
from .jobs import import_job_claim, import_job_create, import_job_fail, import_mapping_check
from .pipeline import import_run
from .readers import ReadError

log = logging.getLogger(__name__)

DONE, FAILED = "done", "failed"
# How long a poll holds its source; renewed after every file.
LEASE = datetime.timedelta(minutes=30)
FILES_PER_POLL = 100
_SKIPPED_SUFFIXES = (".part", ".tmp", ".crdownload")


def import_sources_due(*, now: datetime.datetime | None = None) -> list[int]:
    """Enabled sources whose next run has come and that no worker holds."""
    now = now or timezone.now()
    return list(ImportSource.objects.filter(enabled=True).filter(
        Q(next_run_at__isnull=True) | Q(next_run_at__lte=now)).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).values_list("pk", flat=True))


def import_source_claim(source_id: int, *, now: datetime.datetime, force: bool = False) -> bool:
    """Hold the source for this worker (due, unless `force`: "poll now"); False if another holds it."""
    due = Q() if force else Q(next_run_at__isnull=True) | Q(next_run_at__lte=now)
    return bool(ImportSource.objects.filter(due, pk=source_id, enabled=True).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).update(claimed_until=now + LEASE))


def import_source_poll(source_id: int, *, force: bool = False, now: datetime.datetime | None = None) -> dict | None:
    """Import the source's new files; what happened ({"imported", "failed", "duplicates"}),
    or None when the source was not due or another worker holds it."""
    now = now or timezone.now()
    if not import_source_claim(source_id, now=now, force=force):
        return None
    source = ImportSource.objects.select_related("template").get(pk=source_id)
    counts = {"imported": 0, "failed": 0, "duplicates": 0}
    errors: list[str] = []
    with override(settings.LANGUAGE_CODE):  # jobs and errors in the product's language
        try:
            storage = source_storage(source)
            for name in new_files(storage):
                outcome, error = _file_import(source, storage, name)
                counts[outcome] += 1
                if error:
                    errors.append(_("%(file)s: %(error)s") % {"file": name, "error": error})
                ImportSource.objects.filter(pk=source.pk).update(claimed_until=timezone.now() + LEASE)
        except Exception as error:  # noqa: BLE001 — the source must say why it could not be read
            log.warning("import source %s could not be polled: %r", source.pk, error)
            errors.insert(0, _storage_error(source, error))
    finished = timezone.now()
    ImportSource.objects.filter(pk=source.pk).update(
        last_run_at=finished, next_run_at=finished + datetime.timedelta(minutes=source.interval_minutes),
        claimed_until=None, last_error="\n".join(errors)[:5000], last_counts=counts)
    return counts


def source_storage(source: ImportSource):
    """The Django storage of the source's folder or bucket (django-storages for S3)."""
    if source.storage == ImportSource.Storage.S3:
        from botocore.config import Config
        from storages.backends.s3 import S3Storage

        access_key, secret_key = source_credentials(source)
        return S3Storage(
            bucket_name=source.bucket, endpoint_url=source.endpoint_url or None, region_name=source.region or None,
            access_key=access_key, secret_key=secret_key, location=source.prefix.strip("/"), file_overwrite=False,
            default_acl=None, querystring_auth=False, addressing_style="path",
            client_config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}))
    if not source.path or not os.path.isabs(source.path):
        raise ImproperlyConfigured(_("The folder must be an absolute path."))
    if not os.path.isdir(source.path):
        raise FileNotFoundError(source.path)
    return FileSystemStorage(location=source.path)


def source_credentials(source: ImportSource) -> tuple[str | None, str | None]:
    """The keys named by the source, from the environment; (None, None): boto3's defaults."""
    if not source.credentials:
        return None, None
    stem = f"CDP_IMPORT_SOURCE_{source.credentials.upper().replace('-', '_')}"
    access_key, secret_key = os.environ.get(f"{stem}_ACCESS_KEY_ID"), os.environ.get(f"{stem}_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        raise ImproperlyConfigured(_("The credentials “%(name)s” are not set on this worker: set %(stem)s_ACCESS_KEY_ID "
                                     "and %(stem)s_SECRET_ACCESS_KEY.") % {"name": source.credentials, "stem": stem})
    return access_key, secret_key


def new_files(storage) -> list[str]:
    """Files at the top of the folder or prefix (not in done/ or failed/), oldest name
    first, at most FILES_PER_POLL; files still being written (see the module) are left."""
    _folders, files = storage.listdir("")
    ready = [name for name in files if name and not name.startswith((".", "~$"))
             and not name.lower().endswith(_SKIPPED_SUFFIXES)]
    return sorted(ready)[:FILES_PER_POLL]


def _file_import(source: ImportSource, storage, name: str) -> tuple[str, str]:
    """Import one file and move it; ("imported" | "failed" | "duplicates", error or "")."""
    actor = Actor.system(source.name)
    with tempfile.NamedTemporaryFile(suffix=os.path.splitext(name)[1].lower()[:10]) as local:
        with storage.open(name, "rb") as remote:
            shutil.copyfileobj(remote, local, 1 << 20)
        local.flush()
        checksum = file_checksum(local)
        if _imported_before(source, checksum):
            _move(storage, name, DONE)
            return "duplicates", ""
        stored = upload_store(File(local, name=name), name=name)
    try:
        with transaction.atomic():
            job, _table = import_job_create(
                path=stored, name=name, kind=source.kind, actor=actor, source=source.data_source, mode=source.mode,
                error_policy=source.error_policy, template=source.template)
            ImportJob.objects.filter(pk=job.pk).update(import_source=source, checksum=checksum)
    except ReadError as error:
        file_remove_stored(stored)
        _move(storage, name, FAILED)
        return "failed", str(error)
    except IntegrityError:  # another poll recorded the same file at the same moment
        file_remove_stored(stored)
        _move(storage, name, DONE)
        return "duplicates", ""
    job.import_source, job.checksum = source, checksum
    try:
        import_mapping_check(job)
    except ValidationError as error:
        import_job_fail(job=job, error=" ".join(error.messages))
        _move(storage, name, FAILED)
        return "failed", " ".join(error.messages)
    import_job_claim(job=job, dry_run=False, actor=actor)
    import_run(job, actor=actor)
    if job.status == ImportStatus.DONE:
        _move(storage, name, DONE)
        return "imported", ""
    _move(storage, name, FAILED)
    return "failed", job.error


def _imported_before(source: ImportSource, checksum: str) -> bool:
    return ImportJob.objects.filter(import_source=source, checksum=checksum).exclude(
        status__in=(ImportStatus.FAILED, ImportStatus.UNDONE)).exists()


def file_remove_stored(name: str) -> None:
    from .files import file_remove

    file_remove(ImportJob(file_path=name))


def _move(storage, name: str, folder: str) -> None:
    """Move the file into done/ or failed/ beside it (a name taken there gets a suffix)."""
    try:
        with storage.open(name, "rb") as content:
            storage.save(f"{folder}/{name}", content)
    except FileNotFoundError:  # moved by a poll that took the source over
        return
    storage.delete(name)


def _storage_error(source: ImportSource, error: Exception) -> str:
    if isinstance(error, ImproperlyConfigured):
        return str(error)
    if isinstance(error, FileNotFoundError):
        return _("The folder %(path)s does not exist on this worker.") % {"path": source.path}
    if isinstance(error, PermissionError):
        return _("The worker may not read or move files in %(path)s.") % {"path": source.location}
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "") or error.response.get(
            "ResponseMetadata", {}).get("HTTPStatusCode", "")
        return _("The bucket refused the request: %(code)s.") % {"code": code}
    if isinstance(error, BotoCoreError):
        return _("The bucket cannot be reached: %(error)s") % {"error": error}
    return _("The source could not be read (%(error)s).") % {"error": type(error).__name__}
