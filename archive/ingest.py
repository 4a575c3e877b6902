"""Archiving: bytes in, a Source out. Every way in (web, command line, demo) goes through here."""

from __future__ import annotations

import logging
import uuid as uuid_module
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from archive.blobstore import Spooled, TooLarge, spool, store
from archive.extract import (
    ARTICLE_EXTRACTOR,
    INLINE_PAGE_BYTES,
    INLINE_TEXT_BYTES,
    NO_TEXT_EXTRACTOR,
    ExtractionError,
    TooSlowForRequest,
    extract,
    extract_within,
    extract_without_text,
    sniff,
)
from archive.extract.pdf import extract_pdf
from archive.extract.zipped import extract_package
from archive.models import Collection, Source, UploadJob, make_citation_key, unique_citation_key
from archive.signals import source_written

log = logging.getLogger(__name__)

# What extraction or the person archiving may set; the citation key is generated.
METADATA_FIELDS = tuple(f for f in Source.METADATA_FIELDS if f != "citation_key")


CITATION_KEY_ATTEMPTS = 10

# A text layer up to this many characters is indexed for search in the transaction that
# writes its source (about a second of work). A longer one is indexed by the background
# worker once that transaction commits, in short batched transactions: on SQLite one long
# transaction would hold the single write lock past other writers' busy timeout, and the
# person archiving need not wait for it.
INLINE_INDEX_CHARS = 2_000_000


class ArchiveError(Exception):
    """Input that cannot be archived; the message is meant for the person archiving."""


class ReadOnWorker(Exception):  # noqa: N818 - an outcome, not an error
    """The file (a PDF, a Word document, an EPUB book, a long page) takes longer to read than
    the request may run: its bytes are stored and the worker derives its text layer
    (``job``), then makes the source."""

    def __init__(self, job: UploadJob) -> None:
        super().__init__(str(job.uuid))
        self.job = job


@dataclass
class Archived:
    source: Source
    created: bool  # False when the bytes were already archived as a source the person may use

    @property
    def message(self) -> str:
        if self.created:
            if not self.source.has_text_layer:
                return f"Archived “{self.source.title}”. {self.source.no_text_layer_reason}"
            return f"Archived “{self.source.title}”."
        return (
            f"These exact bytes were already archived as “{self.source.title}”"
            f" (SHA-256 {self.source.sha256[:12]}…); no second copy was made."
        )


def archive_chunks(
    chunks: Iterator[bytes],
    *,
    user=None,
    via: str = Source.Via.UPLOAD,
    filename: str = "",
    declared_type: str = "",
    original_url: str = "",
    metadata: dict | None = None,
    collection: Collection | None = None,
    source_uuid: uuid_module.UUID | None = None,
    archived_at: datetime | None = None,
    reuse: bool = True,
    whole_page: bool = False,
    read_budget: float | None = None,
) -> Archived:
    """Hash and spool the bytes, store them at their content address, derive the text layer.

    An HTML page's text layer is its article; ``whole_page`` keeps all of the page's text.
    A web request passes ``read_budget``, the seconds it may spend reading the file (a PDF, a
    Word document, an EPUB book, a page over INLINE_PAGE_BYTES, a text over INLINE_TEXT_BYTES):
    one that takes longer is stored and left to the worker (ReadOnWorker is raised).

    The blob is stored before the row is written, so no source row exists without its
    bytes; a failure after storing leaves only a complete, reusable blob. An import passes
    ``source_uuid`` and ``archived_at`` to keep the identity and date the source had in the
    archive it was exported from; they apply only when the bytes are new here.
    """
    try:
        spooled = spool(chunks)
    except TooLarge:
        limit = settings.SCHOLION_MAX_UPLOAD_BYTES
        raise ArchiveError(
            f"The file is larger than the limit of {limit:,} bytes"
            f" ({limit / 1024 / 1024:.0f} MiB; set SCHOLION_MAX_UPLOAD_BYTES to change it)."
        ) from None
    except OSError as exc:
        log.exception("spooling failed")
        raise ArchiveError(
            f"The bytes could not be read or spooled ({exc.strerror or exc}), so nothing was"
            " archived. Try again later; if it keeps failing, tell an administrator."
        ) from exc
    try:
        return _archive_spooled(
            spooled,
            user=user,
            via=via,
            filename=filename,
            declared_type=declared_type,
            original_url=original_url,
            metadata=metadata or {},
            collection=collection,
            reuse=reuse,
            whole_page=whole_page,
            read_budget=read_budget,
            preserved={
                k: v
                for k, v in (("uuid", source_uuid), ("archived_at", archived_at))
                if v is not None
            },
        )
    finally:
        spooled.close()


def _archive_spooled(
    spooled: Spooled,
    *,
    user,
    via,
    filename,
    declared_type,
    original_url,
    metadata,
    collection,
    reuse,
    whole_page,
    preserved,
    read_budget=None,
) -> Archived:
    if spooled.size == 0:
        raise ArchiveError("The file is empty: there is nothing to archive.")
    existing = (
        reusable_source(spooled.sha256, user, collection, whole_page=whole_page) if reuse else None
    )
    if existing is not None:
        _add_to_collection(existing, collection)
        return Archived(existing, created=False)

    try:
        kind = sniff(spooled.head)
        if kind == "application/pdf":
            # A PDF's text is far smaller than its file: read up to the upload limit.
            extraction = extract_pdf(spooled.file, budget=read_budget)
        elif kind == "application/zip":
            # So is a Word document's or an EPUB book's (archive.extract.zipped's limits).
            extraction = extract_package(spooled.file, budget=read_budget)
        elif spooled.size > settings.SCHOLION_MAX_TEXT_BYTES:
            # Too long to read or annotate in a browser: keep the bytes, make no text layer,
            # and never hold the file in memory.
            extraction = extract_without_text(
                spooled.head, spooled.chunks, declared_type, original_url
            )
        elif read_budget is not None and spooled.size > (
            INLINE_PAGE_BYTES if kind == "text/html" else INLINE_TEXT_BYTES
        ):
            # A long page of pathological markup (or a text of a million tiny paragraphs)
            # can outlast the request too.
            extraction = extract_within(
                spooled.file,
                read_budget,
                declared_type=declared_type,
                base_url=original_url,
                whole_page=whole_page,
            )
        else:
            spooled.file.seek(0)
            extraction = extract(
                spooled.file.read(),
                declared_type=declared_type,
                base_url=original_url,
                whole_page=whole_page,
            )
    except TooSlowForRequest:
        raise ReadOnWorker(
            _defer_to_worker(
                spooled,
                user,
                via,
                filename,
                declared_type,
                original_url,
                metadata,
                collection,
                whole_page,
            )
        ) from None
    except ExtractionError as exc:
        raise ArchiveError(str(exc)) from None

    if len(extraction.blocks) > settings.SCHOLION_MAX_TEXT_BLOCKS:
        # As a file too long for a text layer: its reading page could not be made in time.
        extraction.text, extraction.blocks, extraction.divisions = "", [], {}
        extraction.extractor, extraction.extractor_version = NO_TEXT_EXTRACTOR
    merged = {k: v for k, v in extraction.metadata.items() if k in METADATA_FIELDS and v}
    merged.update({k: v for k, v in metadata.items() if k in METADATA_FIELDS and v})
    if not merged.get("title"):
        merged["title"] = filename or "Untitled source"
    merged["title"] = merged["title"][:500]
    for name in ("publisher", "rights"):
        if name in merged:
            merged[name] = merged[name][:300]
    if "container_title" in merged:
        merged["container_title"] = merged["container_title"][:500]
    for name in ("volume", "issue", "pages"):
        if name in merged:
            merged[name] = merged[name][:50]
    # Extracted metadata is a suggestion: drop what would not pass the form's validation,
    # and keep what does as the form would (an ISBN normalised).
    for name in (
        "doi",
        "date_published",
        "isbn",
        "language",
        "url",
        "creators",
        "editors",
        "source_type",
    ):
        if name in merged:
            cleaned = _cleaned(name, merged[name])
            if cleaned is None:
                del merged[name]
            else:
                merged[name] = cleaned

    try:
        name, _ = store(spooled)
    except OSError as exc:
        log.exception("storing %s failed", spooled.sha256)
        raise ArchiveError(
            f"The original bytes could not be stored ({exc.strerror or exc}), so nothing was"
            " archived. Try again later; if it keeps failing, tell an administrator."
        ) from exc
    for attempt in range(CITATION_KEY_ATTEMPTS):
        try:
            with transaction.atomic():
                _lock_bytes(spooled.sha256)
                # The same bytes archived meanwhile by this person (another tab, a retry):
                # checked again under the lock, so they make one source, not two.
                existing = (
                    reusable_source(spooled.sha256, user, collection, whole_page=whole_page)
                    if reuse
                    else None
                )
                if existing is not None:
                    _add_to_collection(existing, collection)
                    return Archived(existing, created=False)
                source = Source(
                    sha256=spooled.sha256,
                    size=spooled.size,
                    blob_name=name,
                    media_type=extraction.media_type,
                    declared_media_type=declared_type[:200],
                    encoding=extraction.encoding,
                    encoding_note=extraction.encoding_note[:300],
                    original_filename=filename[:300],
                    original_url=original_url[:2000],
                    archived_by=user,
                    archived_via=via,
                    text=extraction.text,
                    blocks=extraction.blocks,
                    extractor=extraction.extractor,
                    extractor_version=extraction.extractor_version,
                    divisions=extraction.divisions,
                    **preserved,
                    **merged,
                )
                if "source_type" not in merged:
                    # Nothing said what kind of work it is: as references assumed before.
                    source.source_type = source.inferred_type()
                source.citation_key = unique_citation_key(
                    make_citation_key(source.creators, source.date_published, source.title)
                )
                source.save()
                if len(source.text) <= INLINE_INDEX_CHARS:
                    source_written.send(Source, source=source)
                _add_to_collection(source, collection)
        except IntegrityError:
            # Other bytes archived concurrently took this citation key: choose again.
            if attempt == CITATION_KEY_ATTEMPTS - 1:
                raise
            continue
        log.info("archived %s %s (%s bytes)", source.uuid, source.sha256, source.size)
        if len(source.text) > INLINE_INDEX_CHARS:
            _index_later(source)
        return Archived(source, created=True)
    raise AssertionError("unreachable")


def _defer_to_worker(
    spooled: Spooled,
    user,
    via,
    filename,
    declared_type,
    original_url,
    metadata,
    collection,
    whole_page,
) -> UploadJob:
    """Store the bytes now (nothing uploaded is lost) and queue the reading of the file."""
    try:
        name, _ = store(spooled)
    except OSError as exc:
        log.exception("storing %s failed", spooled.sha256)
        raise ArchiveError(
            f"The original bytes could not be stored ({exc.strerror or exc}), so nothing was"
            " archived. Try again later; if it keeps failing, tell an administrator."
        ) from exc
    job = UploadJob(
        user=user,
        collection=collection,
        filename=filename[:300],
        declared_type=declared_type[:200],
        original_url=original_url[:2000],
        title=(metadata.get("title") or "")[:500],
        via=via,
        whole_page=whole_page,
        sha256=spooled.sha256,
        size=spooled.size,
        blob_name=name,
    )
    with transaction.atomic():
        job.save()
        transaction.on_commit(job.enqueue)
    log.info("%s read on the worker (upload %s)", spooled.sha256, job.uuid)
    return job


def reusable_source(
    sha256: str,
    user,
    collection: Collection | None,
    *,
    whole_page: bool = False,
    extractor: str = "",
) -> Source | None:
    """The source these bytes are already archived as, if the person archiving may use it.

    Bytes are stored once, but a source (its metadata, collections and visibility) belongs
    to the people who may see it. Only a source the person can see is reused, and only one
    they may edit (or one already in it) is added to a collection: adding a source to a
    public collection publishes it. Anyone else's source is neither reused nor named; the
    bytes make a new source of the person's own over the same stored blob. ``user`` None
    is the server itself (the command line without --user), which may use any source.

    A page's article is not what ``whole_page`` asks for, so it is not reused then; an
    ``extractor`` named reuses only a source whose text layer that extractor made.
    """
    candidates = Source.objects.filter(sha256=sha256).defer("text", "blocks")
    if whole_page:
        candidates = candidates.exclude(extractor=ARTICLE_EXTRACTOR[0])
    if extractor:
        candidates = candidates.filter(extractor=extractor)
    if user is not None:
        candidates = candidates.visible_to(user)
        if collection is not None:
            candidates = candidates.addable_to(collection, user)
    mine = user.pk if user is not None else None
    # The person's own copy first, then the oldest.
    return min(candidates, key=lambda s: (s.archived_by_id != mine, s.pk), default=None)


def _lock_bytes(sha256: str) -> None:
    """Serialise archiving the same bytes until the transaction ends. SQLite's write
    transactions (BEGIN IMMEDIATE) are serialised already; PostgreSQL takes an advisory
    lock named by the hash."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(sha256[:15], 16)])


def _index_later(source: Source) -> None:
    """Queue the indexing of a source with a long text layer, once it is committed: the
    background worker indexes it in short batched transactions. Until then it is archived
    and readable but not yet found by search; ``manage.py rebuild_search_index --missing``
    indexes whatever a worker never got to."""
    from archive.tasks import index_source  # the task module imports this one

    transaction.on_commit(lambda: index_source.enqueue(source.pk))


def _cleaned(field_name: str, value):
    """The value as the model's field cleans it (an ISBN normalised), or None if invalid."""
    from django.core.exceptions import ValidationError
    from django.db.models import Field

    field = Source._meta.get_field(field_name)
    assert isinstance(field, Field), f"Source.{field_name} is not a concrete field"
    try:
        return field.clean(value, None)
    except ValidationError:
        return None


def _add_to_collection(source: Source, collection: Collection | None) -> None:
    if collection is not None:
        collection.sources.add(source)
