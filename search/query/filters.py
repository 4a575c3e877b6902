"""Filters on a search (collection, tags, author, source, dates...), as querysets.

Only rows the user may see are ever considered: each filter narrows ``visible_to(user)``,
or its probe-shaped twin (``access``) when the rows are the few an index of words found.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from uuid import UUID

from django.db.models import Exists, OuterRef, Q, QuerySet
from taggit.models import Tag

from annotations.models import Annotation, AnnotationQuerySet, TaggedAnnotation
from archive.models import Collection, Source, SourceQuerySet
from search.index import index_words
from search.query.access import annotations_visible_by_probe, sources_visible_by_probe
from search.query.engine import TagWords


@dataclass
class Filters:
    collection: str = ""
    tags: list[str] = field(default_factory=list)
    author: str = ""
    source: UUID | None = None
    media_type: str = ""
    archived_from: dt.date | None = None
    archived_to: dt.date | None = None
    published_from: str = ""
    published_to: str = ""
    has_note: bool | None = None
    mine: bool = False
    overlap: bool = False  # tags: passages where the two tags meet (same or overlapping)
    _tags_of_filter: dict[str, list[tuple[int, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def only_passages(self) -> bool:
        """Filters that only annotations have: sources are then not searched."""
        return bool(self.tags or self.author or self.has_note is not None or self.mine)

    def __bool__(self) -> bool:
        """Whether any filter is set."""
        return self.has_note is not None or any(
            getattr(self, f.name) for f in fields(self) if f.init and f.name != "has_note"
        )

    def _source_q(self, prefix: str) -> Q:
        """The filters on a source's own fields (``prefix`` reaches the source)."""
        q = Q()
        if self.source:
            q &= Q(**{f"{prefix}uuid": self.source})
        if self.media_type:
            q &= Q(**{f"{prefix}media_type": self.media_type})
        if self.archived_from:
            q &= Q(**{f"{prefix}archived_at__gte": _midnight(self.archived_from)})
        if self.archived_to:
            q &= Q(**{f"{prefix}archived_at__lt": _midnight(self.archived_to, days=1)})
        published = f"{prefix}date_published"
        if self.published_from or self.published_to:
            q &= ~Q(**{published: ""})
        if self.published_from:
            q &= Q(**{f"{published}__gte": self.published_from})
        if self.published_to:
            # "to 2005" takes in 2005-12-31 too.
            q &= Q(**{f"{published}__lte": self.published_to}) | Q(
                **{f"{published}__startswith": self.published_to}
            )
        return q

    def tags_named(self, tag: str) -> list[tuple[int, str]]:
        """(id, name) of each tag a tag filter names, by slug or, in any case, by name:
        looked up once, in one small query. Filtering by these ids, rather than by a join
        on the name, lets PostgreSQL's planner see how often the tag is used."""
        if tag not in self._tags_of_filter:
            named = Q(slug=tag) | Q(name__iexact=tag)
            self._tags_of_filter[tag] = list(Tag.objects.filter(named).values_list("pk", "name"))
        return self._tags_of_filter[tag]

    def tag_ids(self) -> list[list[int]]:
        """The ids of the tags each tag filter names."""
        return [[pk for pk, _ in self.tags_named(tag)] for tag in self.tags]

    def sources(self, user, *, by_probe: bool = False) -> SourceQuerySet:
        """The visible sources these filters let through; ``by_probe``: the rule checked
        for each in turn (``access``)."""
        visible = sources_visible_by_probe(user) if by_probe else Source.objects.visible_to(user)
        # Curators may open a withdrawn source, but a search never offers one.
        sources = visible.filter(self._source_q(""), withdrawn_at__isnull=True)
        if self.collection:
            in_collection = Collection.sources.through.objects.filter(
                collection__slug=self.collection
            )
            sources = sources.filter(pk__in=in_collection.values("source_id"))
        return sources

    def annotations(
        self, user, *, by_words: bool = False, by_probe: bool = False
    ) -> AnnotationQuerySet:
        """The visible annotations these filters let through. ``by_words``: the caller
        narrows them further by words, which then find the few candidates; each tag is
        checked on those alone, rather than listed whole first (SQLite plans as written).
        ``by_probe``: so is the access rule (``access``)."""
        if by_probe:
            visible = annotations_visible_by_probe(user)
        else:
            visible = Annotation.objects.visible_to(user)
        if getattr(user, "is_staff", False):
            # Curators see withdrawn sources (everyone else's visible_to leaves them out).
            # As a set of ids (read from an index), not a join: on SQLite a join reads each
            # source row, whose text layer lies before withdrawn_at.
            not_withdrawn = Source.objects.filter(withdrawn_at__isnull=True).values("pk")
            visible = visible.filter(source__in=not_withdrawn)
        annotations = visible.filter(self._source_q("source__"))
        if self.collection:
            # The collection the annotation was made in, not every one holding its source.
            annotations = annotations.filter(collection__slug=self.collection)
        if self.author:
            annotations = annotations.filter(author__username__iexact=self.author)
        if self.mine:
            annotations = (
                annotations.filter(author=user) if user.is_authenticated else visible.none()
            )
        if self.has_note is not None:
            annotations = (
                annotations.exclude(note="") if self.has_note else annotations.filter(note="")
            )
        tags = self.tag_ids()
        if self.overlap and len(tags) == 2:
            a, b = tags
            annotations = annotations.filter(
                Q(_tagged_with_any(a), _carries_or_overlaps_tag(b, visible))
                | Q(_tagged_with_any(b), _carries_or_overlaps_tag(a, visible))
            )
        else:
            for ids in tags:
                annotations = annotations.filter(
                    _probe_tagged_with_any(ids) if by_words else _tagged_with_any(ids)
                )
        return annotations


def tag_words(filters: Filters) -> TagWords:
    """The tag filters as words for the engine to match along with the search's own, so
    that a common word with a common tag reads only the entries with both. Only a first
    cut: words in a row may also span two tags, so the exact filter still decides. The tags
    are those the filter itself found (``Filters.tags_named``)."""
    if filters.overlap:
        return []
    words_of_each_filter = []
    for tag in filters.tags:
        words = [tuple(index_words(name)) for _, name in filters.tags_named(tag)]
        if words and all(words):  # (a tag without words can't be matched by words)
            words_of_each_filter.append(words)
    return words_of_each_filter


def _midnight(day: dt.date, days: int = 0) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=days), dt.time.min, tzinfo=dt.UTC)


def _tagged_with_any(tag_ids: list[int]) -> Q:
    """The annotation is among those carrying one of these tags (as a set of ids)."""
    return Q(pk__in=TaggedAnnotation.objects.filter(tag_id__in=tag_ids).values("content_object_id"))


def _probe_tagged_with_any(tag_ids: list[int]) -> Exists:
    """``_tagged_with_any``, checked for each annotation in turn: one probe of the tagging
    index."""
    return Exists(
        TaggedAnnotation.objects.filter(content_object_id=OuterRef("pk"), tag_id__in=tag_ids)
    )


def _carries_or_overlaps_tag(tag_ids: list[int], visible: QuerySet[Annotation]) -> Exists:
    """The annotation, or a visible one overlapping it on the same source, carries one of
    these tags."""
    return Exists(
        visible.filter(
            _tagged_with_any(tag_ids),
            source_id=OuterRef("source_id"),
            start__lt=OuterRef("end"),
            end__gt=OuterRef("start"),
        )
    )
