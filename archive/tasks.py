"""Background tasks of the archive app, run by the worker (`manage.py db_worker`)."""

from __future__ import annotations

import logging

from django_tasks import task

from archive.blobstore import read_chunks
from archive.capture.run import NO_LONGER_WRITABLE, run
from archive.ingest import ArchiveError, archive_chunks
from archive.jobs import Heartbeat
from archive.models import UPLOAD_UNEXPECTED_ERROR, Capture, Collection, Source, UploadJob
from archive.signals import source_written

logger = logging.getLogger(__name__)


@task()
def run_capture(capture_uuid: str, attempt: int) -> str:
    """Capture a URL (Capture.submit queues it) and record the outcome on the capture."""
    job = (
        Capture.objects.select_related("user", "collection")
        .filter(uuid=capture_uuid, attempt=attempt)
        .first()
    )
    if job is None or not job.claim():
        return "skipped"  # deleted, retried since, or already run
    with Heartbeat(job) as heartbeat:
        run(job, progress=heartbeat.report)
    return job.state


@task()
def index_source(source_pk: int) -> str:
    """Index a committed source whose text layer was too long to index as it was archived."""
    source = Source.objects.filter(pk=source_pk).first()
    if source is None:
        return "deleted"
    try:
        source_written.send(Source, source=source)
    except Exception:
        logger.exception(
            "search indexing of %s failed; run manage.py rebuild_search_index --missing",
            source.uuid,
        )
        raise
    return "indexed"


@task()
def read_upload(job_uuid: str, attempt: int) -> str:
    """Read an upload too long to read within its request (archive.ingest defers it) from
    its stored bytes, without the request's budget, and make its source."""
    job = (
        UploadJob.objects.select_related("user", "collection")
        .filter(uuid=job_uuid, attempt=attempt)
        .first()
    )
    if job is None or not job.claim():
        return "skipped"  # deleted, retried since, or already run
    try:
        # The uploader may have left the collection (or lost the right to add to it) while
        # the upload waited: as a capture does, it is then not added.
        if job.collection is not None and not (
            Collection.objects.writable_by(job.user).filter(pk=job.collection.pk).exists()
        ):
            raise ArchiveError(f"Not archived: {NO_LONGER_WRITABLE}.")
        with Heartbeat(job):
            archived = archive_chunks(
                read_chunks(job.blob_name),
                user=job.user,
                via=job.via,
                filename=job.filename,
                declared_type=job.declared_type,
                original_url=job.original_url,
                metadata={"title": job.title},
                collection=job.collection,
                whole_page=job.whole_page,
            )
    except ArchiveError as exc:
        job.fail(str(exc))
    except Exception:
        logger.exception("Reading upload %s (%s) failed unexpectedly", job.uuid, job.sha256)
        job.fail(UPLOAD_UNEXPECTED_ERROR)
        raise
    except BaseException:
        job.interrupted()
        raise
    else:
        job.succeed(archived.source, archived.message)
    return job.state
