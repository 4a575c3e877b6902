"""What a process killed in the middle of its work leaves behind in the archive: stored blobs
that no source or capture names, half-written blobs, and temporary files.

A blob is written before the row that names it is committed, so a young unreferenced blob
may belong to work still running: only those older than a grace period are removed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from archive.blobstore import archive_storage
from archive.jobs import Job
from archive.models import Capture, Source, UploadJob

BLOB_ROOT = "sha256"
# The filesystem storage's name for a blob being written (ContentAddressedFileSystemStorage).
PARTIAL_PREFIX = ".partial-"


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int


def stored_blob_names(directory: str = BLOB_ROOT) -> Iterator[str]:
    """Every file under the blobs' directory, half-written ones included, through the
    storage API (so on S3 as on disk)."""
    storage = archive_storage()
    try:
        directories, files = storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{directory}/{name}"
    for sub in sorted(directories):
        yield from stored_blob_names(f"{directory}/{sub}")


def unreferenced_blobs(older_than: datetime | None = None) -> Iterator[StoredFile]:
    """Stored files that no source (its original) or capture (its WACZ, its screenshot)
    names, last written before ``older_than`` when given. Checked against the database in
    batches, so that memory does not grow with the archive."""
    storage = archive_storage()
    names = stored_blob_names()
    while batch := list(islice(names, 500)):
        named = set(Source.objects.filter(blob_name__in=batch).values_list("blob_name", flat=True))
        # An upload waiting for the worker to read it: its bytes are all there is of it.
        named.update(
            UploadJob.objects.filter(
                blob_name__in=batch, state__in=[Job.State.QUEUED, Job.State.RUNNING]
            ).values_list("blob_name", flat=True)
        )
        for wacz, screenshot in Capture.objects.filter(
            Q(wacz_name__in=batch) | Q(screenshot_name__in=batch)
        ).values_list("wacz_name", "screenshot_name"):
            named.update((wacz, screenshot))
        for name in batch:
            if name in named:
                continue
            try:
                if older_than is not None and storage.get_modified_time(name) >= older_than:
                    continue
                yield StoredFile(name, storage.size(name))
            except FileNotFoundError:
                continue  # removed meanwhile


def remove_blob(name: str) -> None:
    archive_storage().delete(name)


def stale_temporary_files(older_than: datetime) -> Iterator[StoredFile]:
    """Files and directories in SCHOLION_TMP_DIR (spooled uploads, a capture's working
    directories) untouched since ``older_than``: a process that was killed left them."""
    root = Path(settings.SCHOLION_TMP_DIR)
    if not root.is_dir():
        return
    cutoff = older_than.timestamp()
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            yield StoredFile(entry.path, _size(Path(entry.path)))
        except FileNotFoundError:
            continue


def remove_temporary(path: str) -> None:
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.lstat().st_size
