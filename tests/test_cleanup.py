"""After a killed process: verify_fixity reports what it left, cleanup removes it (once it is
older than the grace period) and finishes what it left unfinished."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from archive.blobstore import archive_storage, blob_name
from exports.models import ImportJob, PendingImport, package_storage
from exports.tasks import clean_up_daily, schedule_cleanup
from search.index import unindexed_sources
from search.models import SourceSegment
from tests.conftest import archive_text, run_worker
from tests.helpers import blob_files, command_env

ROOT = Path(__file__).resolve().parent.parent
LONG_AGO = time.time() - 3 * 86400

# A process that stores one blob whole, then starts writing a second from a pipe and is
# killed in the middle: what a worker killed between a blob and its row leaves behind.
WRITER = """
import sys, django
django.setup()
from django.core.files import File
from archive.blobstore import archive_storage, spool, store
name, _ = store(spool(iter([b"an original whose row never came"])))
print(name, flush=True)


class Pipe:  # a stream that cannot seek, as an upload being received
    def __init__(self, f):
        self.read = f.read


with open(sys.argv[1], "rb") as pipe:
    archive_storage().save(sys.argv[2], File(Pipe(pipe), name=sys.argv[2]))
"""


@pytest.fixture(autouse=True)
def no_blobs() -> None:
    """Blobs that earlier tests stored (files outlive the database's rows)."""
    shutil.rmtree(archive_storage().path(""), ignore_errors=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_blobs_left_by_a_killed_process_are_reported_then_removed(owner, tmp_path):
    kept = archive_text("The ferry ledger, 1843.\n", user=owner)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    half = blob_name("f" * 64)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(pipe), half],
        cwd=ROOT,
        env=command_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    with open(pipe, "wb") as feed:
        feed.write(b"x" * (3 * 1024 * 1024))  # three chunks of the storage's 1 MiB
        feed.flush()
        stored = writer.stdout.readline().strip()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while not any(Path(f).name.startswith(".partial-") for f in blob_files()):
            assert time.monotonic() < deadline, "the writer never started the second blob"
            time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    partial = next(f for f in blob_files() if Path(f).name.startswith(".partial-"))
    assert blob_files() == {kept.blob_name, stored, partial}

    report = run("verify_fixity")
    assert "Checked 1 source: 1 intact, 0 failed." in report
    assert f"UNREFERENCED {stored} (32 bytes)" in report
    assert f"UNREFERENCED {partial} (" in report
    assert "2 stored files" in report and "named by no source or capture" in report

    # Young: they may belong to work still running, and stay.
    assert "Removed 0 stored blobs" in run("cleanup")
    assert blob_files() == {kept.blob_name, stored, partial}
    # Old enough (here: no grace at all), they go; a dry run first says so and keeps them.
    assert "Would remove 2 stored blobs" in run("cleanup", "--grace-hours", "0", "--dry-run")
    assert len(blob_files()) == 3
    assert "Removed 2 stored blobs" in run("cleanup", "--grace-hours", "0")
    assert blob_files() == {kept.blob_name}
    assert "UNREFERENCED" not in run("verify_fixity")
    assert kept.verify_fixity().ok


@pytest.mark.django_db
def test_stale_temporary_files_and_unnamed_packages_go_young_ones_stay(owner):
    tmp = Path(settings.SCHOLION_TMP_DIR)
    stale_dir = tmp / "wacz-killed"
    (stale_dir / "archive").mkdir(parents=True)
    (stale_dir / "archive" / "data.warc.gz").write_bytes(b"w" * 1000)
    stale_file = tmp / "tmpk1ll3d.upload"
    stale_file.write_bytes(b"u" * 500)
    young = tmp / "browser-running"
    young.mkdir()
    for path in (stale_dir, stale_file):
        os.utime(path, (LONG_AGO, LONG_AGO))

    packages = Path(settings.SCHOLION_IMPORTS_DIR)
    packages.mkdir(parents=True, exist_ok=True)
    orphan = packages / "0f1e2d3c.zip"
    orphan.write_bytes(b"PK")
    waiting = ImportJob.objects.create(
        user=owner, filename="bag.zip", size=2, package_name="waiting.zip"
    )
    (packages / waiting.package_name).write_bytes(b"PK")
    for path in (orphan, packages / waiting.package_name):
        os.utime(path, (LONG_AGO, LONG_AGO))

    out = run("cleanup")
    assert "2 temporary files (0.0 MB)" in out and "1 abandoned import package" in out
    assert not stale_dir.exists() and not stale_file.exists() and young.exists()
    assert not orphan.exists()
    assert package_storage().exists(waiting.package_name)  # its import may be tried again


@pytest.mark.django_db
def test_an_incomplete_search_index_and_an_abandoned_import_are_finished(owner):
    source = archive_text("Tolls on the river crossing were one penny.\n", user=owner)
    SourceSegment.objects.filter(source=source, kind=SourceSegment.Kind.METADATA).delete()
    assert list(unindexed_sources()) == [source]
    pending = PendingImport.objects.create(importer=owner)
    PendingImport.objects.filter(pk=pending.pk).update(
        touched_at=timezone.now() - timedelta(hours=1)
    )

    out = run("cleanup")
    assert "discarded 1 unfinished import" in out
    assert "indexed 1 source with an incomplete search index" in out
    assert not unindexed_sources().exists() and not PendingImport.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_worker_cleans_up_daily():
    assert run("cleanup", "--schedule") == "Queued the daily cleanup for the worker.\n"
    assert run("cleanup", "--schedule") == "The daily cleanup is already queued.\n"
    run_worker()
    ran = DBTaskResult.objects.get(status=TaskResultStatus.SUCCESSFUL)
    assert ran.task_path == clean_up_daily.module_path
    assert "Removed 0 stored blobs" in str(ran.return_value)
    # It queued its next run, a day later.
    following = DBTaskResult.objects.get(status=TaskResultStatus.READY)
    assert following.run_after is not None
    assert timedelta(hours=23) < following.run_after - timezone.now() <= timedelta(days=1)
    assert not schedule_cleanup()


def test_cleanup_explains_itself_and_refuses_a_negative_grace():
    done = subprocess.run(
        [sys.executable, "manage.py", "cleanup", "--help"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--grace-hours" in done.stdout and "--schedule" in done.stdout
    with pytest.raises(CommandError, match="cannot be negative"):
        call_command("cleanup", "--grace-hours", "-1")


@pytest.mark.django_db
def test_a_deleted_annotations_copy_goes_once_its_undo_window_has_passed(owner):
    """Its author deleted nothing after it, so no later delete purged it: the cleanup does."""
    from annotations.models import Annotation, DeletedAnnotation

    source = archive_text("The ferry ran twice a day in summer.\n", user=owner)
    old, recent = (
        Annotation.create_anchored(author=owner, source=source, start=s, end=s + 5, note=n)
        for s, n in ((4, "a note its author withdrew"), (10, "deleted a minute ago"))
    )
    recent.delete_if_current()
    old.delete_if_current()
    DeletedAnnotation.objects.filter(uuid=old.uuid).update(
        deleted_at=timezone.now() - DeletedAnnotation.UNDO_WINDOW - timedelta(minutes=1)
    )
    assert "would purge 1 deleted annotation past" in run("cleanup", "--dry-run")
    assert DeletedAnnotation.objects.count() == 2
    assert "purged 1 deleted annotation past their undo window" in run("cleanup")
    assert list(DeletedAnnotation.objects.values_list("uuid", flat=True)) == [recent.uuid]
    assert "a note its author withdrew" not in str(list(DeletedAnnotation.objects.values("data")))
