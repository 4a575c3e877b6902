"""What an export covers: one collection, narrowed by the search filters, as one user sees it.

Every format reads its rows from an ExportScope, so they all agree on which annotations and
sources are in, and in which order. The rows are streamed in chunks with their tags (and, once
they exist, citations) prefetched per chunk; sources and authors are read once and shared, so
the number of queries does not grow with the number of annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.urls import reverse

from annotations.models import (
    Annotation,
    Citation,
    Comment,
    TagRef,
    attach_tags_and_citations,
    tags_and_citations,
)
from archive.models import Collection, Source, make_citation_key
from search.query import Filters

CHUNK_SIZE = 2000
EXTERNAL_FIELDS = (
    "kind",
    "position",
    "annotation_id",
    "annotation__uuid",
    "url",
    "doi",
    "title",
    "creators",
    "publisher",
    "date_published",
    "date_accessed",
    "reference_type",
    "comment",
)
# Source columns the formats use; the text layer (possibly megabytes) is never read.
SOURCE_FIELDS = (
    "pk",
    "uuid",
    "sha256",
    "size",
    "media_type",
    "original_filename",
    "original_url",
    "archived_at",
    "divisions",  # a PDF's pages, for page locators (stored before the text layer)
    *Source.METADATA_FIELDS,
)
# An annotation as the spreadsheet formats show it, read as plain values (AnnotationRow):
# a model instance for each row cost more than writing the row (bench/NOTES.md, issue 28).
ROW_FIELDS = (
    "pk",
    "source_id",
    "start",
    "end",
    "exact",
    "note",
    f"author__{get_user_model().USERNAME_FIELD}",
    "visibility",
    "created",
    "modified",
)


class AnnotationRow(NamedTuple):
    pk: int
    source_id: int
    start: int
    end: int
    exact: str
    note: str
    author: str  # the author's username
    visibility: str
    created: datetime
    modified: datetime
    source: Source  # shared by its annotations' rows (SOURCE_FIELDS)
    tags: list[TagRef]
    citations: list[Citation]


# Text order within a source; UUIDs rather than primary keys break ties, so an export of
# an imported copy lists everything in the same order as the export it came from.
ANNOTATION_ORDER = ("source__title", "source__uuid", "start", "-end", "created", "uuid")
SOURCE_ORDER = ("title", "uuid")


def citations_text(citations: Iterable[Citation]) -> str:
    """An annotation's citations, for the CSV and Markdown formats: one line each, joined by
    "; ". A target the export's reader may not see is named only as such (the citations are
    flagged by ``tags_and_citations``)."""
    return "; ".join(citation_line(c) for c in citations)


def citation_line(citation: Citation) -> str:
    if citation.kind == Citation.Kind.SOURCE and not getattr(citation, "source_visible", True):
        return "a source you do not have access to"
    if citation.kind == Citation.Kind.ANNOTATION and not getattr(citation, "cited_visible", True):
        return "an annotation you do not have access to"
    return citation.as_text()


Row = TypeVar("Row")


def _batched(rows: Iterator[Row]) -> Iterator[list[Row]]:
    # itertools.batched arrives with Python 3.12.
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK_SIZE:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class ExportScope:
    collection: Collection
    user: Any  # the user the export is made for: it holds only what they may see
    base_url: str  # scheme and host, no trailing slash: links in the export are absolute
    filters: Filters = field(default_factory=Filters)
    query: dict[str, Any] = field(default_factory=dict)  # the filters as given, for the IRI
    progress: Callable[[int], None] | None = None  # called with annotations written so far

    def __post_init__(self) -> None:
        self.filters.collection = self.collection.slug
        self._passage_prefixes: dict[int, str] = {}

    # --- Rows -------------------------------------------------------------------------

    def annotations(self) -> QuerySet[Annotation]:
        """The annotations in the export, in text order.

        ``visible_to`` lets a curator read everyone's private annotations; an export leaves
        the archive, so it never carries another person's private annotation, not even a
        curator's export.
        """
        user_pk = self.user.pk if self.user.is_authenticated else None
        return (
            self.filters.annotations(self.user)
            .exclude(Q(visibility=Annotation.Visibility.PRIVATE) & ~Q(author_id=user_pk))
            # An export carries the Markdown, not what the pages show of it.
            .defer("note_rendered", "note_plain")
            .order_by(*ANNOTATION_ORDER)
        )

    def sources(self) -> QuerySet[Source]:
        """The sources in the export: those of the collection the filters keep, and those of
        its exported annotations. With passage filters (tags, author), only the latter."""
        exported = self.annotations().order_by().values("source_id")
        if self.filters.only_passages:
            rule = Q(pk__in=exported)
        else:
            rule = Q(pk__in=self.filters.sources(self.user).order_by().values("pk")) | Q(
                pk__in=exported
            )
        return Source.objects.filter(rule).only(*SOURCE_FIELDS).order_by(*SOURCE_ORDER)

    def source_list(self) -> list[Source]:
        if not hasattr(self, "_sources"):
            self._sources = list(self.sources())
        return self._sources

    def authors(self) -> dict[int, Any]:
        if not hasattr(self, "_authors"):
            ids = self.annotations().order_by().values("author_id")
            self._authors = get_user_model().objects.filter(pk__in=ids).in_bulk()
        return self._authors

    def count(self) -> int:
        if not hasattr(self, "_count"):
            self._count = self.annotations().count()
        return self._count

    def iter_annotations(self) -> Iterator[Annotation]:
        """Each annotation with its source, author and tags attached, streamed in chunks."""
        sources = {s.pk: s for s in self.source_list()}
        authors = self.authors()
        rows = self.annotations().iterator(chunk_size=CHUNK_SIZE)
        written = 0
        for chunk in _batched(rows):
            attach_tags_and_citations(chunk, self.user)
            for annotation in chunk:
                # Shared instances instead of a join: one Source and one User object per
                # row would cost more than all the rest of the export. They go straight into
                # the cache the foreign-key descriptors read (as select_related fills it).
                cache = annotation._state.fields_cache
                cache["source"] = sources[annotation.source_id]
                cache["author"] = authors[annotation.author_id]
                yield annotation
            written += len(chunk)
            if self.progress:
                self.progress(written)

    def iter_rows(self) -> Iterator[AnnotationRow]:
        """Each annotation as plain values with its source, tags and citations, in the order
        of ``iter_annotations``, streamed in chunks: what the CSV and the XLSX write."""
        sources: dict[int, Source] = {}
        rows = self.annotations().values_list(*ROW_FIELDS).iterator(chunk_size=CHUNK_SIZE)
        written = 0
        for chunk in _batched(rows):
            # Only the sources these rows name, read once each: no second pass over the
            # visibility rule (the rows are visible, and so are their sources).
            missing = {row[1] for row in chunk} - sources.keys()
            if missing:
                sources.update(Source.objects.only(*SOURCE_FIELDS).in_bulk(missing))
            related = tags_and_citations([row[0] for row in chunk], self.user)
            for row in chunk:
                yield AnnotationRow._make((*row, sources[row[1]], *related[row[0]]))
            written += len(chunk)
            if self.progress:
                self.progress(written)

    def external_references(self) -> list[dict]:
        """CSL-JSON items of the references outside the archive that the exported
        annotations cite, once each (by DOI or URL), keyed like sources' citation keys."""
        citations = (
            Citation.objects.filter(
                kind=Citation.Kind.EXTERNAL, annotation__in=self.annotations().values("pk")
            )
            .select_related("annotation")
            .only(*EXTERNAL_FIELDS)
            .order_by("annotation__uuid", "position")
        )
        items: dict[tuple[str, str], dict] = {}
        keys: set[str] = {s.citation_key for s in self.source_list()}
        for citation in citations:
            identity = (citation.doi.lower(), "" if citation.doi else citation.url)
            if identity in items:
                continue
            item = citation.csl_json()
            key = make_citation_key(citation.creators, citation.date_published, citation.title)
            unique, n = key, 1
            while unique in keys:
                n += 1
                unique = f"{key}{n}"
            keys.add(unique)
            item["id"] = unique
            item.pop("note", None)  # the comment belongs to one citation, not the reference
            items[identity] = item
        return list(items.values())

    # --- Links --------------------------------------------------------------------------

    def comments(self) -> list[Comment]:
        """The replies to the exported annotations, and the collection's notes on the
        exported sources with their replies, oldest first; as for annotations, never another
        person's private note. With passage filters (tags, author), only the replies."""
        if hasattr(self, "_comments"):
            return self._comments
        user_pk = self.user.pk if self.user.is_authenticated else None
        readable = Comment.objects.visible_to(self.user)
        notes = (
            readable.source_notes()
            .filter(collection=self.collection, source__in=self.sources().values("pk"))
            .exclude(Q(visibility=Annotation.Visibility.PRIVATE) & ~Q(author_id=user_pk))
        )
        if self.filters.only_passages:
            notes = notes.none()
        note_pks = notes.values("pk")
        self._comments: list[Comment] = list(
            readable.filter(
                Q(pk__in=note_pks)
                | Q(reply_to_note__in=note_pks)
                | Q(reply_to_annotation__in=self.annotations().order_by().values("pk"))
            )
            .select_related("author", "source", "reply_to_annotation", "reply_to_note")
            .defer(
                "source__text",
                "source__blocks",
                "reply_to_annotation__exact",
                "reply_to_annotation__note",
                "reply_to_annotation__note_rendered",
                "reply_to_annotation__note_plain",
                "reply_to_note__note",
                "reply_to_note__note_rendered",
                "note_rendered",
            )
            .order_by("created", "pk")
        )
        return self._comments

    def export_iri(self, fmt: str) -> str:
        url = self.base_url + reverse("exports:download", args=[self.collection.slug, fmt])
        query = {k: v for k, v in self.query.items() if v not in (None, "", [], False)}
        return url + ("?" + urlencode(query, doseq=True) if query else "")

    def collection_iri(self) -> str:
        return self.base_url + self.collection.get_absolute_url()

    def source_iri(self, source: Source) -> str:
        return self.base_url + source.get_absolute_url()

    def passage_iri(self, annotation: Annotation | AnnotationRow) -> str:
        # reverse() per row would cost more than writing the row: the source's part once.
        prefix = self._passage_prefixes.get(annotation.source_id)
        if prefix is None:
            sample = reverse("annotations:passage", args=[annotation.source.uuid, 0, 1])
            prefix = self.base_url + sample.removesuffix("0-1/")
            self._passage_prefixes[annotation.source_id] = prefix
        return f"{prefix}{annotation.start}-{annotation.end}/"
