"""What an export covers: one collection, narrowed by the search filters, as one user sees it.

Every format reads its rows from an ExportScope, so they all agree on which annotations and
sources are in, and in which order. The rows are streamed in chunks with their tags (and, once
they exist, citations) prefetched per chunk; sources and authors are read once and shared, so
the number of queries does not grow with the number of annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet, prefetch_related_objects
from django.urls import reverse

from annotations.models import Annotation, TaggedAnnotation, TagRef
from archive.models import Collection, Source
from search.query import Filters

CHUNK_SIZE = 2000
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
    *Source.METADATA_FIELDS,
)
# Text order within a source; UUIDs rather than primary keys break ties, so an export of
# an imported copy lists everything in the same order as the export it came from.
ANNOTATION_ORDER = ("source__title", "source__uuid", "start", "-end", "created", "uuid")
SOURCE_ORDER = ("title", "uuid")


def citations_text(annotation: Annotation) -> str:
    """The citations attached to an annotation, for the CSV and Markdown formats.

    Empty until annotations have a ``citations`` relation (the Citation model); then it lists
    the cited keys. Reads only prefetched rows (see ``citation_prefetch``).
    """
    if not hasattr(annotation, "citations"):
        return ""
    return "; ".join(str(citation) for citation in annotation.citations.all())


def _batched(rows: Iterator[Annotation]) -> Iterator[list[Annotation]]:
    # itertools.batched arrives with Python 3.12.
    chunk: list[Annotation] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK_SIZE:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _attach_tags(chunk) -> None:
    """Tags of a chunk of annotations in one query, where ``annotation.tags.all()`` finds them.

    taggit's own prefetch builds a queryset per annotation, which made it most of an
    export's time; the tags are sorted by name so every export lists them alike.
    """
    by_pk: dict[int, list[TagRef]] = {a.pk: [] for a in chunk}
    tagged = TaggedAnnotation.objects.filter(content_object_id__in=list(by_pk)).values_list(
        "content_object_id", "tag__name", "tag__slug"
    )
    for pk, name, slug in tagged:
        by_pk[pk].append(TagRef(name, slug))
    for annotation in chunk:
        tags = sorted(by_pk[annotation.pk], key=lambda t: (t.name.casefold(), t.name))
        # The manager's cache (the same place prefetch_related fills): tags.all() reads it.
        annotation._prefetched_objects_cache = {"tags": tags}


def citation_prefetch() -> list[str]:
    """The prefetch for citations_text, once the relation exists (no query per row)."""
    return ["citations"] if hasattr(Annotation, "citations") else []


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
            _attach_tags(chunk)
            if citation_prefetch():
                prefetch_related_objects(chunk, *citation_prefetch())
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

    # --- Links --------------------------------------------------------------------------

    def export_iri(self, fmt: str) -> str:
        url = self.base_url + reverse("exports:download", args=[self.collection.slug, fmt])
        query = {k: v for k, v in self.query.items() if v not in (None, "", [], False)}
        return url + ("?" + urlencode(query, doseq=True) if query else "")

    def collection_iri(self) -> str:
        return self.base_url + self.collection.get_absolute_url()

    def source_iri(self, source: Source) -> str:
        return self.base_url + source.get_absolute_url()

    def passage_iri(self, annotation: Annotation) -> str:
        # reverse() per row would cost more than writing the row: the source's part once.
        prefix = self._passage_prefixes.get(annotation.source_id)
        if prefix is None:
            sample = reverse("archive:passage", args=[annotation.source.uuid, 0, 1])
            prefix = self.base_url + sample.removesuffix("0-1/")
            self._passage_prefixes[annotation.source_id] = prefix
        return f"{prefix}{annotation.start}-{annotation.end}/"
