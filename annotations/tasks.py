"""Background tasks of the annotations app, run by the worker (`manage.py db_worker`)."""

from __future__ import annotations

import logging

from django_tasks import task

from annotations.models import CODEBOOK_UNEXPECTED_ERROR, CodebookError, CodebookJob
from archive.jobs import Heartbeat

logger = logging.getLogger(__name__)


@task()
def run_codebook_job(job_uuid: str, attempt: int) -> str:
    """Make a codebook change too large for its request (CodebookJob.submit_* queues it)."""
    job = (
        CodebookJob.objects.select_related("user", "collection", "from_tag", "to_tag")
        .filter(uuid=job_uuid, attempt=attempt)
        .first()
    )
    if job is None or not job.claim():
        return "skipped"  # deleted, retried since, or already run
    try:
        # The batches record their progress themselves, in their own transactions.
        with Heartbeat(job):
            job.run()
    except CodebookError as exc:
        job.fail(str(exc))
    except Exception:
        logger.exception("Codebook change %s failed unexpectedly", job.uuid)
        job.fail(CODEBOOK_UNEXPECTED_ERROR)
        raise
    except BaseException:
        job.interrupted()
        raise
    return job.state
