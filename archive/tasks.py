"""Background tasks of the archive app, run by the worker (`manage.py db_worker`)."""

from __future__ import annotations

import logging

from django_tasks import task

from archive.capture.run import run
from archive.jobs import Heartbeat
from archive.models import Capture, Source
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
