"""Background tasks of the exports app, run by the worker (`manage.py db_worker`)."""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, connections
from django_tasks import task

from exports.importer import import_package
from exports.models import HEARTBEAT_SECONDS, UNEXPECTED_ERROR, ImportJob
from exports.package import PackageError, open_package

logger = logging.getLogger(__name__)


class Heartbeat:
    """Records, every HEARTBEAT_SECONDS, that the job's worker is alive and how far its
    import has got, so that its page can say so (and can tell when the worker was stopped).

    It writes from a thread of its own, on a database connection of its own: the import
    writes in transactions, and a progress line written inside them would stay unseen until
    they commit. The thread dies with the worker, which is what makes silence mean "stopped".
    """

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.progress: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"import-{job.uuid}-heartbeat", daemon=True
        )

    def report(self, text: str) -> None:
        """The import's progress callback: the next beat writes the latest text."""
        self.progress = text

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    self.job.beat(self.progress)
                except DatabaseError as exc:
                    # SQLite: another writer held the lock past the busy timeout. The next
                    # beat tries again; only minutes of silence mark the job stopped.
                    logger.warning("Import %s: could not record progress (%s)", self.job.uuid, exc)
        finally:
            connections.close_all()  # this thread's connections only


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
