"""Pages of results: ids found made into sources and passages to show, with their
snippets and links, and the page's count and numbering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from django.db.models import F
from django.db.models.functions import Substr
from django.urls import reverse
from django.utils.safestring import SafeString

from annotations.citekeys import key_spans, keys_in, resolve_keys
from annotations.markdown import plain_text
from annotations.models import Annotation, TaggedAnnotation
from archive.models import Source
from search.listing import TagLink, TagLinks
from search.models import SourceSegment
from search.query import limits
from search.query.filters import Filters
from search.query.parsing import Clause, Query
from search.query.snippets import Link, highlight, make_snippet


class SegmentHit(NamedTuple):
    """Where one clause matched a source: its metadata or a stretch of its text."""

    source_id: int
    segment_id: int
    kind: str  # SourceSegment.Kind
    score: float  # lower is better
    clause: int  # the clause's number in the query


class PassageHit(NamedTuple):
    annotation_id: int
    score: float  # lower is better


@dataclass
class ResultPage:
    """One page of results, shaped like Django's Page for the templates. ``count`` is how
    many are shown in all, at most MAX_RESULTS; ``more`` says that more than that match."""

    items: list
    count: int
    number: int
    more: bool = False
    per_page: int = field(default_factory=lambda: limits.PER_PAGE)

    def __iter__(self):
        return iter(self.items)

    @property
    def count_figure(self) -> str:
        """The count, written for people: "1,000"."""
        return f"{self.count:,}"

    @property
    def count_text(self) -> str:
        """The count in a sentence: "3", or "more than 1,000"."""
        return f"more than {self.count_figure}" if self.more else self.count_figure

    @property
    def count_label(self) -> str:
        """The count in a heading: "3", or "1,000+"."""
        return f"{self.count_figure}+" if self.more else self.count_figure

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.per_page))

    def has_next(self) -> bool:
        return self.number < self.num_pages

    def has_previous(self) -> bool:
        return self.number > 1

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1

    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.count else 0


@dataclass
class SourceResult:
    source: Source
    title_html: SafeString
    creators_html: SafeString
    snippet_html: SafeString | None
    url: str  # the stretch of text that matched, or else the source
    source_url: str
    within_url: str = ""  # this search within the source: set by the page (search.views)


@dataclass
class PassageResult:
    annotation: Annotation
    quote_html: SafeString
    note_html: SafeString | None
    tags: list[TagLink]
    url: str
    source_url: str
    author_url: str = ""  # this search by the passage's author: set by the page


@dataclass
class Results:
    query: Query | None
    filters: Filters
    sort: str
    sources: ResultPage | None  # None: the filters apply to annotations only
    passages: ResultPage


def capped_count(counted: int) -> tuple[int, bool]:
    """How many of ``counted`` matches (counted up to one past the limit) are shown, and
    whether more match."""
    return min(counted, limits.MAX_RESULTS), counted > limits.MAX_RESULTS


def clamp_page(number: int, count: int) -> int:
    """Past the last page, the last page (as Paginator.get_page)."""
    return min(max(1, number), max(1, -(-count // limits.PER_PAGE)))


def page_bounds(number: int) -> tuple[int, int]:
    """(limit, offset) of page ``number``."""
    return limits.PER_PAGE, (max(1, number) - 1) * limits.PER_PAGE


def passage_url(source: Source, start: int, end: int) -> str:
    """The reading page at a stretch of its text layer (code-point offsets)."""
    return reverse("annotations:passage", args=[source.uuid, start, end]) + "#passage"


# What a source's result shows (templates/search/search.html): no more is read.
SOURCE_RESULT_FIELDS = (
    "uuid",
    "title",
    "creators",
    "publisher",
    "date_published",
    "media_type",
    "archived_at",
)
# What a passage's result shows (templates/search/search.html, ``_passage_result``): no
# more is read. Not the source's text layer, which can be megabytes, nor the author's row,
# which holds a password hash; and fewer columns to convert (bench/NOTES.md).
PASSAGE_RESULT_FIELDS = (
    "uuid",
    "source__uuid",
    "source__title",
    "collection__title",
    "author__username",
    "exact",
    "note_plain",  # its plain text, stored when it was written: no Markdown parsed here
    "visibility",
    "created",
)


def source_page(page: ResultPage, clauses: list[Clause], hits: list[SegmentHit]) -> ResultPage:
    """The page's source ids made into results, in order, each shown at its best hit."""
    page_ids = page.items
    if not page_ids:
        return page
    # Show each source at the stretch of text that matches the most clauses, then scores
    # best; at its metadata only when no stretch of text matches.
    on_page = set(page_ids)
    clauses_of: dict[int, set[int]] = {}  # segment -> the clauses it matched
    score_of: dict[int, float] = {}  # segment -> its hits' scores added up
    hit_in: dict[int, SegmentHit] = {}  # segment -> one of its hits
    for hit in hits:
        if hit.source_id in on_page:
            clauses_of.setdefault(hit.segment_id, set()).add(hit.clause)
            score_of[hit.segment_id] = score_of.get(hit.segment_id, 0.0) + hit.score
            hit_in[hit.segment_id] = hit
    best: dict[int, tuple] = {}  # source -> (preference, segment)
    for segment_id, hit in hit_in.items():
        is_text = hit.kind == SourceSegment.Kind.TEXT
        preference = (len(clauses_of[segment_id]), is_text, -score_of[segment_id], -segment_id)
        if hit.source_id not in best or preference > best[hit.source_id][0]:
            best[hit.source_id] = (preference, segment_id)
    found = Source.objects.only(*SOURCE_RESULT_FIELDS).in_bulk(page_ids)
    chosen = SourceSegment.objects.filter(pk__in=[b[1] for b in best.values()])
    excerpts = {
        s.pk: s
        for s in chosen.only("source_id", "kind", "start", "end").annotate(
            excerpt=Substr("source__text", F("start") + 1, F("end") - F("start"))
        )
    }
    page.items = [
        _source_result(found[pk], clauses, excerpts.get(best[pk][1]) if pk in best else None)
        for pk in page_ids
        if pk in found
    ]
    return page


def passage_page(page: ResultPage, clauses: list[Clause], user) -> ResultPage:
    """The page's annotation ids made into results, in order, with their tags read in one
    query: as plain names, in the order they were applied (taggit's prefetch costs twice as
    much, in model objects), each tag's link made once; and the citation keys in their
    notes that ``user`` may follow, in one more if any."""
    related = Annotation.objects.select_related("author", "source", "collection")
    found = related.only(*PASSAGE_RESULT_FIELDS).in_bulk(page.items)
    annotations = [found[pk] for pk in page.items if pk in found]
    # The keys of the plain text: the ones its snippet can link (``_passage_result``).
    keys = resolve_keys({k for a in annotations for k in keys_in(_note_text(a))}, user)
    tags: dict[int, list[TagLink]] = {}
    tag_link = TagLinks()
    rows = (
        TaggedAnnotation.objects.filter(content_object_id__in=[a.pk for a in annotations])
        .order_by("pk")
        .values_list("content_object_id", "tag__name", "tag__slug")
    )
    for annotation_id, name, slug in rows:
        # The name with the words that matched marked.
        tags.setdefault(annotation_id, []).append(tag_link(highlight(name, clauses), slug))
    page.items = [_passage_result(a, clauses, tags.get(a.pk, []), keys) for a in annotations]
    return page


def _source_result(source: Source, clauses: list[Clause], segment) -> SourceResult:
    snippet, url = None, source.get_absolute_url()
    source_url = url
    if segment is not None and segment.kind == SourceSegment.Kind.TEXT:
        snippet, first = make_snippet(segment.excerpt, clauses)
        if first is not None:
            url = passage_url(source, segment.start + first[0], segment.start + first[1])
    return SourceResult(
        source=source,
        title_html=highlight(source.title, clauses),
        creators_html=highlight("; ".join(source.creators), clauses),
        snippet_html=snippet,
        url=url,
        source_url=source_url,
    )


def _note_text(annotation: Annotation) -> str:
    if annotation.note_plain is None:  # written before it was stored, and not yet filled
        return plain_text(annotation.note)
    return annotation.note_plain


def _passage_result(
    annotation: Annotation, clauses: list[Clause], tags: list[TagLink], keys
) -> PassageResult:
    quote, _ = make_snippet(annotation.exact, clauses, fallback=True)
    note = None
    if text := _note_text(annotation):
        # The note as read, not its Markdown; each [@key] of a source the user may see links
        # to it, as in the note itself.
        links = [
            Link(start, end, keys[key].href, keys[key].title)
            for start, end, key in (key_spans(text) if keys else [])
            if key in keys
        ]
        note = make_snippet(text, clauses, fallback=True, links=links)[0] or None
    source_url = annotation.source.get_absolute_url()
    return PassageResult(
        annotation, quote, note, tags, f"{source_url}#{annotation.fragment}", source_url
    )
