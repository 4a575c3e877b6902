"""Exports too long to write within a request, prepared by the background worker.

A sync web worker is killed at GUNICORN_TIMEOUT (30 s), in the middle of a streamed
download. bench/export.py on the 2-core machine loaded by other work (load average 11-17),
18,056 annotations over 200 sources, SQLite: CSV 14 s, Markdown 26 s, XLSX 32 s, JSON-LD 35 s,
the pandoc report 46 s (390-1,270 annotations a second); the QDA project 102 s (177 a second),
and the BagIt package, which holds every text format, the project and the originals, 54 s for
3,644 annotations (68 a second). So a download runs in its request only up to
SCHOLION_EXPORT_INLINE_ANNOTATIONS (5,000: about 13 s at the slowest text format's rate), a
package or project only up to a tenth of that (500: about 7 s) and SCHOLION_EXPORT_INLINE_BYTES
of sources (a bag's time grows with its originals' bytes too). Anything larger, and every
package or project asked for from the Export menu, is an ExportJob written by the worker.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db.models import Sum

from archive.models import Collection
from exports.formats import FORMATS, binary_writer, buffered, text_writer
from exports.forms import export_scope
from exports.models import ExportJob, export_storage
from exports.scope import ExportScope

logger = logging.getLogger(__name__)

# Formats that carry the sources themselves (the originals, or every text layer): the
# Export menu always prepares them on the worker.
PREPARED_FORMATS = ("bagit", "qdpx")
# They write each annotation many times over (see above): a tenth as many fit in a request.
PREPARED_SHARE = 10


class ExportRefused(Exception):
    """The export cannot be written as asked; the message is for the requester."""


def fits_in_request(scope: ExportScope, fmt: str) -> bool:
    """Whether a download of this export can be written well within the request timeout."""
    limit = settings.SCHOLION_EXPORT_INLINE_ANNOTATIONS
    if fmt in PREPARED_FORMATS:
        limit //= PREPARED_SHARE
    if scope.count() > limit:
        return False
    if fmt in PREPARED_FORMATS:
        held = scope.sources().order_by().aggregate(total=Sum("size"))["total"] or 0
        return held <= settings.SCHOLION_EXPORT_INLINE_BYTES
    return True


def export_bytes(scope: ExportScope, fmt: str, *, bom: bool = False) -> Iterator[bytes]:
    if FORMATS[fmt].text is None:
        return binary_writer(fmt)(scope)
    return (chunk.encode("utf-8") for chunk in buffered(text_writer(fmt, bom=bom)(scope)))


def write_export(job: ExportJob, progress: Callable[[str], None]) -> tuple[str, int]:
    """Write the job's export to the exports storage, spooled through a temporary file
    (memory holds one chunk); return the stored name and its size."""
    collection = Collection.objects.visible_to(job.user).filter(pk=job.collection_id).first()
    if collection is None:
        raise ExportRefused("You can no longer see this collection, so nothing was exported.")
    try:
        scope = export_scope(collection, job.user, job.base_url, job.filters)
    except ValidationError as exc:
        raise ExportRefused("The export filters are not valid: " + " ".join(exc.messages)) from exc
    total = scope.count()
    scope.progress = lambda n: progress(f"{n:,} of {total:,} annotations written.")
    settings.SCHOLION_TMP_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=settings.SCHOLION_TMP_DIR) as spool:
        size = 0
        for chunk in export_bytes(scope, job.format, bom=job.bom):
            spool.write(chunk)
            size += len(chunk)
        progress("Storing the file.")
        spool.seek(0)
        name = export_storage().save(
            f"{job.uuid}{FORMATS[job.format].filename}", File(spool, name=job.download_filename)
        )
    return name, size
