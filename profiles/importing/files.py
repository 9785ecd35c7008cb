"""Uploaded import files, kept in Django's default storage (a folder under MEDIA_ROOT, or
an S3-compatible bucket shared by every worker machine: see STORAGES) until the import
has run.

`ImportJob.file_path` holds the file's storage name ("imports/<uuid>.csv"). An absolute
path is a file on this machine that is not ours (`manage.py import_file` reads it where it
lies) and is never deleted. The readers need a local file: a storage that has none (S3)
is copied once per machine into a cache folder, reused by later reads of the same name
and deleted with the upload.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

UPLOADS = "imports"
# Cached copies of remote uploads older than this are deleted by the housekeeping task.
CACHE_MAX_AGE_SECONDS = 24 * 3600


def upload_storage():
    return default_storage


def upload_dir() -> str:
    """The local folder of uploads when the storage is a folder (MEDIA_ROOT/imports)."""
    path = os.path.join(settings.MEDIA_ROOT, UPLOADS)
    os.makedirs(path, exist_ok=True)
    return path


def upload_store(uploaded, *, name: str = "") -> str:
    """Save an uploaded file (or any Django File) in the storage; returns its storage name."""
    extension = os.path.splitext(name or uploaded.name or "")[1].lower()[:10]
    return upload_storage().save(f"{UPLOADS}/{uuid.uuid4().hex}{extension}", uploaded)


def upload_names() -> list[str]:
    """The storage names of every stored upload."""
    try:
        _folders, files = upload_storage().listdir(UPLOADS)
    except FileNotFoundError:
        return []
    return [f"{UPLOADS}/{name}" for name in sorted(files)]


def is_stored(name: str) -> bool:
    """Whether `name` is a storage name (not a local path the user pointed at)."""
    return bool(name) and not os.path.isabs(name)


def local_path(name: str) -> str:
    """A local file with the content of `name`: the file itself for a folder storage or a
    local path, else a cached copy. FileNotFoundError if the upload is gone."""
    if not is_stored(name):
        return name
    storage = upload_storage()
    try:
        return storage.path(name)
    except NotImplementedError:  # a remote storage: copy it here once
        pass
    cached = cache_path(name)
    if os.path.exists(cached):
        return cached
    if not storage.exists(name):
        raise FileNotFoundError(name)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    partial = f"{cached}.{uuid.uuid4().hex}.part"
    with storage.open(name, "rb") as remote, open(partial, "wb") as local:
        shutil.copyfileobj(remote, local, 1 << 20)
    os.replace(partial, cached)  # readers never see a half-copied file
    return cached


def file_remove(job) -> None:
    """Delete the upload (and this machine's cached copy); files the user pointed at on
    disk are not ours to delete, except legacy uploads under MEDIA_ROOT/imports."""
    name = job.file_path
    if is_stored(name):
        upload_storage().delete(name)
        try:
            os.remove(cache_path(name))
        except FileNotFoundError:
            pass
    elif name and os.path.dirname(os.path.abspath(name)) == os.path.abspath(upload_dir()):
        try:
            os.remove(name)
        except FileNotFoundError:
            pass


# --- a file sent in parts (the partner API): kept as numbered parts until it is complete ---

def part_name(job_id: int, number: int) -> str:
    return f"{UPLOADS}/parts/{job_id}/{number:05d}"


def part_store(job_id: int, number: int, content) -> None:
    """Store part `number` (a retried part replaces the one sent before)."""
    storage, name = upload_storage(), part_name(job_id, number)
    storage.delete(name)
    storage.save(name, content)


def parts_sizes(job_id: int) -> dict[int, int]:
    """{part number: bytes} of the parts received."""
    storage = upload_storage()
    try:
        _folders, files = storage.listdir(f"{UPLOADS}/parts/{job_id}")
    except FileNotFoundError:
        return {}
    return {int(name): storage.size(f"{UPLOADS}/parts/{job_id}/{name}") for name in files if name.isdigit()}


def parts_join(job_id: int, *, extension: str) -> str:
    """The parts, in order, as one upload; returns its storage name. The parts are deleted."""
    numbers = sorted(parts_sizes(job_id))
    storage = upload_storage()
    with tempfile.TemporaryFile() as joined:
        for number in numbers:
            with storage.open(part_name(job_id, number), "rb") as part:
                shutil.copyfileobj(part, joined, 1 << 20)
        joined.seek(0)
        name = upload_store(File(joined, name=f"upload{extension}"))
    parts_delete(job_id)
    return name


@contextmanager
def parts_joined_copy(job_id: int, *, extension: str = "") -> Iterator[str | None]:
    """The parts received so far, joined in a local temporary file (None: no parts yet)."""
    numbers = sorted(parts_sizes(job_id))
    if not numbers:
        yield None
        return
    storage = upload_storage()
    with tempfile.NamedTemporaryFile(suffix=extension[:10]) as joined:
        for number in numbers:
            with storage.open(part_name(job_id, number), "rb") as part:
                shutil.copyfileobj(part, joined, 1 << 20)
        joined.flush()
        yield joined.name


def parts_delete(job_id: int) -> None:
    storage = upload_storage()
    for number in parts_sizes(job_id):
        storage.delete(part_name(job_id, number))


def file_checksum(file) -> str:
    """SHA-256 of a binary file object (read in chunks, from the start)."""
    digest = hashlib.sha256()
    file.seek(0)
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def cache_clean(*, max_age: int = CACHE_MAX_AGE_SECONDS) -> int:
    """Delete cached copies of remote uploads not touched for `max_age` seconds; how many."""
    folder = _cache_dir()
    if not os.path.isdir(folder):
        return 0
    removed = 0
    cutoff = time.time() - max_age
    for entry in os.scandir(folder):
        if entry.is_file() and entry.stat().st_mtime < cutoff:
            try:
                os.remove(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def _cache_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "cdp-import-cache")


def cache_path(name: str) -> str:
    extension = os.path.splitext(name)[1].lower()[:10]
    return os.path.join(_cache_dir(), hashlib.sha256(name.encode()).hexdigest()[:32] + extension)
