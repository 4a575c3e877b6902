"""Background tasks of the exports app, run by the worker (`manage.py db_worker`)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from archive.jobs import Heartbeat
from archive.models import Collection
from exports.cleanup import clean_up
from exports.hypothesis import HypothesisError, import_hypothesis
from exports.importer import import_package
from exports.models import (
    EXPORT_UNEXPECTED_ERROR,
    UNEXPECTED_ERROR,
    ExportJob,
    ImportJob,
    export_storage,
)
from exports.package import PackageError, open_package
from exports.prepared import ExportRefused, write_export

logger = logging.getLogger(__name__)


@task()
def run_import(job_uuid: str, attempt: int) -> str:
    """Run an uploaded package's import (ImportJob.submit queues it) and record the outcome
    on the job. The package file is deleted once the import has finished either way; an
    import interrupted by the worker's own shutdown keeps it, to be tried again."""
    job = (
        ImportJob.objects.select_related("user", "collection")
        .filter(uuid=job_uuid, attempt=attempt)
        .first()
    )
    if job is None or not job.claim():
        return "skipped"  # deleted, retried since, or already run
    if job.kind == ImportJob.Kind.HYPOTHESIS:
        return _run_hypothesis_import(job)
    try:
        with (
            Heartbeat(job) as heartbeat,
            job.open_package_file() as file,
            open_package(file) as package,
        ):
            result = import_package(
                package, importer=job.user, progress=heartbeat.report, job=job, into=job.collection
            )
    except PackageError as exc:
        job.fail(f"Nothing was imported: {exc}")
    except Exception:
        # The traceback is for the administrators (this log, and the task's row in the
        # queue, as the exception goes on to the worker); the requester gets a plain sentence.
        logger.exception("Import %s of %s failed unexpectedly", job.uuid, job.filename)
        job.fail(UNEXPECTED_ERROR)
        job.delete_package()
        raise
    except BaseException:
        # The worker is being stopped in the middle (a second Ctrl+C, a forced shutdown).
        job.interrupted()
        raise
    else:
        job.succeed(result.summary(), result.collection, result.report)
    job.delete_package()
    return job.state


def _run_hypothesis_import(job: ImportJob) -> str:
    """A Hypothesis file's import, as its requester, into the collection they named (if
    they may still write to it)."""
    collection = job.collection
    try:
        writable = Collection.objects.writable_by(job.user)
        if collection is None or not writable.filter(pk=collection.pk).exists():
            raise HypothesisError("the collection is gone, or you may no longer add to it.")
        with Heartbeat(job) as heartbeat, job.open_package_file() as file:
            heartbeat.report("Reading the file")
            result = import_hypothesis(file.read(), collection, job.user, progress=heartbeat.report)
    except HypothesisError as exc:
        job.fail(f"Nothing was imported: {exc}")
    except Exception:
        logger.exception("Hypothesis import %s of %s failed unexpectedly", job.uuid, job.filename)
        job.fail(UNEXPECTED_ERROR)
        job.delete_package()
        raise
    except BaseException:
        job.interrupted()
        raise
    else:
        job.succeed(result.summary(), collection)
    job.delete_package()
    return job.state


@task()
def run_export(job_uuid: str, attempt: int) -> str:
    """Write a collection's export (ExportJob.submit queues it) to the exports storage."""
    job = (
        ExportJob.objects.select_related("user", "collection")
        .filter(uuid=job_uuid, attempt=attempt)
        .first()
    )
    if job is None or not job.claim():
        return "skipped"  # deleted, retried since, or already run
    try:
        with Heartbeat(job) as heartbeat:
            name, size = write_export(job, progress=heartbeat.report)
    except ExportRefused as exc:
        job.fail(str(exc))
    except Exception:
        logger.exception("Export %s of %s failed unexpectedly", job.uuid, job.collection_id)
        job.fail(EXPORT_UNEXPECTED_ERROR)
        raise
    except BaseException:
        job.interrupted()
        raise
    else:
        if not job.succeed(name, size):  # retried or removed meanwhile: nobody will fetch it
            export_storage().delete(name)
    return job.state


# How often the worker cleans up after killed processes (exports.cleanup).
CLEANUP_EVERY = timedelta(days=1)


@task()
def clean_up_daily() -> str:
    """Clean up (exports.cleanup), then queue the next run a day later: a periodic task on
    the queue, with no scheduler beside the worker. ``manage.py cleanup --schedule`` (which
    `make serve` runs) queues the first."""
    try:
        return clean_up().summary()
    finally:
        schedule_cleanup(after=CLEANUP_EVERY)


def schedule_cleanup(after: timedelta = timedelta(0)) -> bool:
    """Queue the daily cleanup to run after ``after``, unless a run is already waiting."""
    waiting = DBTaskResult.objects.filter(
        task_path=clean_up_daily.module_path, status=TaskResultStatus.READY
    )
    if waiting.exists():
        return False
    clean_up_daily.using(run_after=timezone.now() + after).enqueue()
    return True
