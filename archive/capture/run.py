"""A capture from start to end: fetch the page, keep its web archive, archive its bytes.

The worker (archive.tasks.run_capture) and the command line (manage.py archive URL) run it.
Nothing is written until the page has been fetched whole: a fetch that fails leaves only the
capture's failure record. The web archive is stored before the source, at its content address,
so the source and the capture's record are written together, in one transaction, last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import transaction

from archive.blobstore import TooLarge, file_chunks, spool, store
from archive.extract import sniff
from archive.ingest import Archived, ArchiveError, archive_chunks
from archive.models import CAPTURE_UNEXPECTED_ERROR, Capture, Collection, Source

from . import CaptureError
from .browser import render
from .fetch import Fetched, capture
from .wacz import package_wacz
from .warc import write_warc

log = logging.getLogger(__name__)

# The web archive holds the page, its redirects and (with a browser) what the page loaded.
WACZ_LIMIT_FACTOR = 4

NO_LONGER_WRITABLE = "you can no longer add sources to the collection it was to go into"


class Superseded(Exception):
    """The capture was retried while this run was still going: the newer run records it."""


def run(job: Capture, progress: Callable[[str], None] = lambda text: None) -> bool:
    """Run a claimed capture and record its outcome: True if it archived the page.

    The worker's task and the command line both run captures through here. A failure the
    person can act on is recorded in plain words; an unexpected error is recorded as one and
    raised, for the log; a worker stopped in the middle leaves the capture to be retried.
    """
    try:
        perform(job, progress)
    except CaptureError as exc:
        job.fail(f"The capture failed: {exc.reason}.")
    except ArchiveError as exc:
        job.fail(f"The page was fetched but could not be archived: {exc}")
    except Superseded:
        return False
    except Exception:
        # The traceback is for the administrators; the requester gets a plain sentence.
        log.exception("Capture %s of %s failed unexpectedly", job.uuid, job.url)
        job.fail(CAPTURE_UNEXPECTED_ERROR)
        raise
    except BaseException:
        job.interrupted()  # the worker is being stopped in the middle
        raise
    return job.state == job.State.DONE


def perform(job: Capture, progress: Callable[[str], None] = lambda text: None) -> Archived:
    """Capture ``job.url`` as ``job.user`` and record the outcome on ``job``.

    Raises CaptureError (a reason to show), ArchiveError (the page cannot be archived) or
    Superseded; the caller records a failure.
    """
    collection, user = job.collection, job.user
    if collection is not None and user is not None and not _may_add_to(user, collection):
        raise CaptureError(NO_LONGER_WRITABLE)
    progress("Fetching the page.")
    with capture(job.url) as fetched, ExitStack() as files:
        screenshot: dict[str, Any] = {}
        record = _provenance(fetched)
        if settings.SCHOLION_CAPTURE_BROWSER and not _is_document(fetched):
            # A document is archived as it came (its extractor reads it); a browser would
            # only show its own viewer, or download it.
            progress("Loading the page in a browser.")
            screenshot, record["provenance"]["browser"] = _browse(fetched)
        progress("Writing the web archive.")
        warc = files.enter_context(write_warc(fetched))
        wacz = files.enter_context(
            package_wacz(
                warc, url=fetched.final.url, title="", captured_at=fetched.final.fetched_at
            )
        )
        wacz_record = _store(wacz, "web archive")
        progress("Archiving the page.")
        final = fetched.final
        with transaction.atomic():
            archived = archive_chunks(
                file_chunks(fetched.original),
                user=job.user,
                via=Source.Via.CAPTURE,
                filename=_filename(final.url),
                declared_type=final.header("Content-Type") or "",
                original_url=final.url,
                metadata={"url": final.url},
                collection=job.collection,
                whole_page=job.whole_page,
            )
            recorded = job.succeed(
                archived.source,
                created=archived.created,
                **record,
                **{f"wacz_{name}": value for name, value in wacz_record.items()},
                **screenshot,
            )
            if not recorded:
                raise Superseded
        return archived


def _browse(fetched: Fetched) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the page in the configured browser: its resources join the WARC, and its
    screenshot is stored. A browser that fails leaves the capture as it was (the page's bytes
    and WARC stand), and the capture's page says there is no screenshot, and why."""
    rendering = render(fetched)
    record: dict[str, Any] = {}
    if rendering.screenshot is not None:
        stored = _store(rendering.screenshot.file, "screenshot")
        record = {f"screenshot_{name}": value for name, value in stored.items()}
    elif rendering.failure:
        log.warning("Capture of %s has no screenshot: %s", fetched.final.url, rendering.failure)
    browser = {
        "failure": rendering.failure or "",
        "refused": [{"url": url, "reason": reason} for url, reason in rendering.refused],
        "resources": len(fetched.resources),
    }
    return record, browser


def _is_document(fetched: Fetched) -> bool:
    """A PDF, Word document or EPUB book (a zip), whatever the server called it (as archiving
    decides)."""
    fetched.original.seek(0)
    head = fetched.original.read(8)
    fetched.original.seek(0)
    return sniff(head) in ("application/pdf", "application/zip")


def _may_add_to(user, collection: Collection) -> bool:
    return Collection.objects.writable_by(user).filter(pk=collection.pk).exists()


def _provenance(fetched: Fetched) -> dict[str, Any]:
    final = fetched.final
    provenance = fetched.provenance()
    return {
        "url_final": final.url[:2000],
        "http_status": final.status,
        "server_ip": final.ip,
        "fetched_at": final.fetched_at,
        "provenance": {
            key: provenance[key] for key in ("redirects", "headers", "software", "url_requested")
        },
    }


def _store(file: IO[bytes], what: str) -> dict[str, Any]:
    """Store a file the capture made at its content address."""
    file.seek(0)
    try:
        spooled = spool(
            file_chunks(file), max_bytes=settings.SCHOLION_MAX_UPLOAD_BYTES * WACZ_LIMIT_FACTOR
        )
    except TooLarge:
        raise CaptureError(f"the {what} is too large to keep") from None
    try:
        name, _ = store(spooled)
    finally:
        spooled.close()
    return {"sha256": spooled.sha256, "name": name, "size": spooled.size}


def _filename(url: str) -> str:
    """The last part of the URL's path, as a browser would name the saved page."""
    return unquote(PurePosixPath(urlsplit(url).path).name)[:300]
