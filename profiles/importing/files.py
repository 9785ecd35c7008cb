"""Uploaded import files: kept under MEDIA_ROOT/imports until the import has run."""
from __future__ import annotations

import os
import uuid

from django.conf import settings


def upload_dir() -> str:
    path = os.path.join(settings.MEDIA_ROOT, "imports")
    os.makedirs(path, exist_ok=True)
    return path


def upload_store(uploaded) -> str:
    """Save an uploaded file (streamed in chunks) under MEDIA_ROOT/imports; returns its path."""
    extension = os.path.splitext(uploaded.name)[1].lower()[:10]
    path = os.path.join(upload_dir(), f"{uuid.uuid4().hex}{extension}")
    with open(path, "wb") as target:
        for chunk in uploaded.chunks():
            target.write(chunk)
    return path


def file_remove(job) -> None:
    """Delete the uploaded copy (only files under MEDIA_ROOT/imports are ours to delete)."""
    if job.file_path and os.path.dirname(os.path.abspath(job.file_path)) == os.path.abspath(upload_dir()):
        try:
            os.remove(job.file_path)
        except FileNotFoundError:
            pass

