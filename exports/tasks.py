"""Background tasks of the exports app, run by the worker (`manage.py db_worker`)."""

from __future__ import annotations

import logging

from django_tasks import task

from archive.jobs import Heartbeat
from exports.importer import import_package
from exports.models import UNEXPECTED_ERROR, ImportJob
from exports.package import PackageError, open_package

logger = logging.getLogger(__name__)


@task()
def run_import(job_uuid: str, attempt: int) -> str:
    """Run an uploaded package's import (ImportJob.submit queues it) and record the outcome
    on the job. The package file is deleted once the import has finished either way; an
    import interrupted by the worker's own shutdown keeps it, to be tried again."""
    job = ImportJob.objects.select_related("user").filter(uuid=job_uuid, attempt=attempt).first()
    if job is None or not job.claim():
        return "skipped"  # deleted, retried since, or already run
    try:
        with Heartbeat(job) as heartbeat, open_package(job.package_path) as package:
            result = import_package(package, importer=job.user, progress=heartbeat.report, job=job)
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
        job.succeed(result.summary(), result.collection)
    job.delete_package()
    return job.state
