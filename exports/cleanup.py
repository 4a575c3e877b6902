"""After a killed process: what it left behind, removed, and what it left unfinished, finished.

Here, in the top layer, because it gathers every layer's leftovers: the archive's blobs and
temporary files, the search index's incomplete sources, and this app's abandoned imports and
their uploaded packages, prepared exports past their expiry, and the copies of deleted
annotations past their undo window. ``manage.py cleanup`` and the daily task
(exports.tasks) run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from annotations.models import DeletedAnnotation
from archive import cleanup as archive_cleanup
from archive.cleanup import StoredFile
from exports.models import ExportJob, ImportJob, PendingImport, export_storage, package_storage
from search.index import index_source, unindexed_sources

log = logging.getLogger(__name__)

# Longer than any archive, capture or import takes between writing a file and committing the
# row that names it.
DEFAULT_GRACE = timedelta(hours=24)


@dataclass
class Cleanup:
    blobs: list[StoredFile] = field(default_factory=list)
    temporary: list[StoredFile] = field(default_factory=list)
    packages: list[StoredFile] = field(default_factory=list)
    exports: list[StoredFile] = field(default_factory=list)
    imports_discarded: int = 0
    deletions_purged: int = 0
    reindexed: list[str] = field(default_factory=list)

    def summary(self, dry_run: bool = False) -> str:
        verb = "Would remove" if dry_run else "Removed"
        parts = [
            f"{verb} {_count(self.blobs, 'stored blob')} that nothing names"
            f" ({_megabytes(self.blobs)})",
            f"{_count(self.temporary, 'temporary file')} ({_megabytes(self.temporary)})",
            f"{_count(self.packages, 'abandoned import package')} ({_megabytes(self.packages)})",
            f"{_count(self.exports, 'expired export')} ({_megabytes(self.exports)})",
        ]
        finish = "would discard" if dry_run else "discarded"
        index = "would index" if dry_run else "indexed"
        return (
            "; ".join(parts)
            + f"; {finish} {self.imports_discarded} unfinished"
            + f" import{'s' if self.imports_discarded != 1 else ''};"
            + f" {index} {len(self.reindexed)} source{'s' if len(self.reindexed) != 1 else ''}"
            + " with an incomplete search index;"
            + f" {'would purge' if dry_run else 'purged'} {self.deletions_purged} deleted"
            + f" annotation{'s' if self.deletions_purged != 1 else ''} past their undo window."
        )


def clean_up(
    grace: timedelta = DEFAULT_GRACE,
    *,
    dry_run: bool = False,
    report: Callable[[str], None] = lambda line: None,
) -> Cleanup:
    """Discard abandoned imports, index sources whose indexing was cut short, and remove
    files older than ``grace`` that nothing names: blobs, temporary files, packages."""
    done = Cleanup()
    for pending in PendingImport.objects.abandoned():
        done.imports_discarded += 1
        report(f"unfinished import {pending.pk} ({pending})")
        if not dry_run:
            pending.discard()
    for source in unindexed_sources().order_by("pk").iterator(chunk_size=20):
        done.reindexed.append(str(source.uuid))
        report(f"search index incomplete: {source.uuid}")
        if not dry_run:
            index_source(source)

    # A deleted annotation's copy (its note, its quote) must not outlive its undo window
    # just because its author deleted nothing after it.
    expired = DeletedAnnotation.objects.expired()
    done.deletions_purged = expired.count() if dry_run else expired.delete()[0]

    cutoff = timezone.now() - grace
    for blob in archive_cleanup.unreferenced_blobs(older_than=cutoff):
        done.blobs.append(blob)
        report(f"blob {blob.name} ({blob.size} bytes)")
        if not dry_run:
            archive_cleanup.remove_blob(blob.name)
    for temporary in archive_cleanup.stale_temporary_files(older_than=cutoff):
        done.temporary.append(temporary)
        report(f"temporary {temporary.name} ({temporary.size} bytes)")
        if not dry_run:
            archive_cleanup.remove_temporary(temporary.name)
    for package in _abandoned_packages(cutoff):
        done.packages.append(package)
        report(f"package {package.name} ({package.size} bytes)")
        if not dry_run:
            package_storage().delete(package.name)
    for job in ExportJob.objects.expired().exclude(file_name=""):
        done.exports.append(StoredFile(job.file_name, job.size or 0))
        report(f"expired export {job.file_name} ({job.size} bytes)")
        if not dry_run:
            job.delete_file()
    for export in _unnamed_exports(cutoff):
        done.exports.append(export)
        report(f"export {export.name} ({export.size} bytes)")
        if not dry_run:
            export_storage().delete(export.name)
    log.info("cleanup: %s", done.summary(dry_run))
    return done


def _abandoned_packages(cutoff: datetime) -> list[StoredFile]:
    """Uploaded packages no import names (its upload or its job's row cut short)."""
    storage = package_storage()
    try:
        _, names = storage.listdir("")
    except FileNotFoundError:
        return []
    old = [n for n in sorted(names) if storage.get_modified_time(n) < cutoff]
    named = set(
        ImportJob.objects.filter(package_name__in=old).values_list("package_name", flat=True)
    )
    return [StoredFile(n, storage.size(n)) for n in old if n not in named]


def _unnamed_exports(cutoff: datetime) -> list[StoredFile]:
    """Export files no job names (a worker killed between storing one and recording it)."""
    storage = export_storage()
    try:
        _, names = storage.listdir("")
    except FileNotFoundError:
        return []
    old = [n for n in sorted(names) if storage.get_modified_time(n) < cutoff]
    named = set(ExportJob.objects.filter(file_name__in=old).values_list("file_name", flat=True))
    return [StoredFile(n, storage.size(n)) for n in old if n not in named]


def _count(files: list[StoredFile], noun: str) -> str:
    return f"{len(files)} {noun}{'s' if len(files) != 1 else ''}"


def _megabytes(files: list[StoredFile]) -> str:
    return f"{sum(f.size for f in files) / 1e6:.1f} MB"
