"""Searching: what people type, how the engine is asked, and where each result matched.

The query is parsed here into clauses (words, "phrases", prefix*, -exclusions), and the
engine's query is written from those clauses, never from the raw input: nothing a person
types can reach FTS5's MATCH or PostgreSQL's tsquery syntax. Every word goes through the
same folding as the indexed text (``search.index``), so both engines match the same rows,
and the highlighter finds the very words the engine matched.

A source matches when each clause matches somewhere in it (its metadata or any stretch of
its text) and no excluded clause matches anywhere in it. A passage (an annotation) matches
when each clause matches its quote, note or tags; a phrase stays within one of the three.
Only rows from ``visible_to(user)`` are ever considered.

The SQL below is put together from constants, table names and ORM-compiled querysets (hence
the S608 waivers); what a person types reaches the database only as query parameters, and
only as folded words (letters and digits) at that.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass, field, fields
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Substr
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from annotations.citekeys import key_spans, keys_in, resolve_keys
from annotations.markdown import plain_text
from annotations.models import Annotation, TaggedAnnotation
from archive.models import Collection, Source
from search.index import fold_in_place, index_words, word_spans
from search.listing import TagLink, TagLinks
from search.models import SourceSegment
from search.parallel import side_by_side

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

MAX_QUERY_LENGTH = 500
MAX_CLAUSES = 12
MIN_PREFIX_LENGTH = 2
PER_PAGE = 10
# A search lists at most this many sources and this many passages, the most recently added
# (as GitHub's search does): past it the count says "more than 1,000", and a filter or
# another word narrows the list. Counting every match of a word in most texts would mean
# checking who may see each one of thousands; this way the engine stops at the limit.
MAX_LISTED = 1000
# Scoring each match is costly (the engine reads every occurrence): of the listed ones, a
# search ranks this many, the most recently added, by relevance and lists the rest after
# them, newest first.
MAX_RANKED_SOURCES = 200
MAX_RANKED_PASSAGES = 1000
SNIPPET_CHARS = 240
SNIPPET_LEAD = 70
QUOTE_MARKS = '"“”„«»'
# Left out of a search when other words are given: they match nearly every text, so they
# only slow the search down. Quoted ("the") they are searched for.
STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have he her his in is it its of on or she"  # noqa: SIM905
    " that the their they this to was were which with".split()
)


@dataclass(frozen=True)
class Window:
    """Where to read matches from (``_count_and_rank``): the ``width`` newest ids of
    ``first``..``newest`` first. The default, ``newest`` 0, is every id at once."""

    first: int = 0
    newest: int = 0
    width: int = 0


# For each tag filter, the words of every tag it may name: an annotation carrying one of
# them has those words in a row in its index entry's tags.
Sieve = list[list[tuple[str, ...]]] | tuple[()]
Links = list[tuple[int, int, str, str]] | tuple[()]  # (start, end, href, title) in a text


class QueryError(ValueError):
    """A search that cannot be run; the message says why, for the person searching."""


@dataclass(frozen=True)
class Clause:
    words: tuple[str, ...]
    prefix: bool = False  # the last word is a prefix (resist*)
    exclude: bool = False  # -word: leave out what matches
    quoted: bool = False

    def __str__(self) -> str:
        text = " ".join(self.words) + ("*" if self.prefix else "")
        if self.quoted or len(self.words) > 1:
            text = f"“{text}”"
        return ("-" if self.exclude else "") + text


@dataclass
class Query:
    text: str
    clauses: list[Clause]
    notices: list[str] = field(default_factory=list)

    @property
    def include(self) -> list[Clause]:
        return [c for c in self.clauses if not c.exclude]

    @property
    def exclude(self) -> list[Clause]:
        return [c for c in self.clauses if c.exclude]


def parse_query(text: str) -> Query:
    """Clauses from what was typed: words, "phrases", prefix*, and -exclusions of any.

    Any other character is only a separator, as in the indexed text; a quotation mark left
    open runs to the end. Raises QueryError when nothing searchable is left.
    """
    text = text.strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"The search is too long ({len(text):,} characters): keep it under"
            f" {MAX_QUERY_LENGTH} characters."
        )
    clauses: list[Clause] = []
    notices: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        exclude = text[i] in "-−" and i + 1 < n and not text[i + 1].isspace()
        if exclude:
            i += 1
        if text[i] in QUOTE_MARKS:
            close = next((j for j in range(i + 1, n) if text[j] in QUOTE_MARKS), -1)
            if close == -1:
                body, i = text[i + 1 :], n
                notices.append("A quotation mark was not closed: the phrase runs to the end.")
            else:
                body, i = text[i + 1 : close], close + 1
            prefix = i < n and text[i] == "*"
            while i < n and text[i] == "*":
                i += 1
            quoted = True
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in QUOTE_MARKS:
                j += 1
            body, i = text[i:j], j
            prefix, quoted = body.endswith("*"), False
        words = tuple(index_words(body))
        if not words:
            continue
        if prefix and len(words[-1]) < MIN_PREFIX_LENGTH:
            raise QueryError(
                f"“{body.strip('*')}*” is too short for a prefix search: put at least"
                f" {MIN_PREFIX_LENGTH} letters before the *."
            )
        clause = Clause(words, prefix=prefix, exclude=exclude, quoted=quoted)
        if clause not in clauses:
            clauses.append(clause)
    if not clauses:
        raise QueryError(f"“{text}” has no words to search for." if text else "Type a search.")
    if len(clauses) > MAX_CLAUSES:
        raise QueryError(f"Use at most {MAX_CLAUSES} words or phrases in one search.")

    include = [c for c in clauses if not c.exclude]
    common = [
        c
        for c in include
        if len(c.words) == 1 and not c.quoted and not c.prefix and c.words[0] in STOP_WORDS
    ]
    if common and len(common) == len(include):
        raise QueryError(
            f"“{text}” has only very common words, which are in nearly every text. Add a"
            ' more specific word, or put a phrase in quotation marks ("the people").'
        )
    if common:
        clauses = [c for c in clauses if c not in common]
        left_out = ", ".join(c.words[0] for c in common)
        notices.append(f"Left out very common words: {left_out}.")
    return Query(text, clauses, notices)


# --- The engines -------------------------------------------------------------------------


class _SQLite:
    """FTS5 over the external-content tables made by migration 0002."""

    # FTS5 indexes prefixes of 2 and 3 characters (prefix='2 3'). A longer prefix it
    # matches by merging the whole list of places of every word that starts with it, before
    # any other condition applies: to score sources' text, where each word has thousands of
    # places, naming those words costs less; and to read sources' vocabularies newest
    # first, too (a third of the time for a prefix of 60 words). The vocabulary's terms
    # (migration 0005) list them; a prefix that more words than this start with is left to
    # FTS5.
    MAX_PREFIX_WORDS = 100

    def __init__(self) -> None:
        self._source_words: dict[str, str] = {}

    @staticmethod
    def _match(clause: Clause) -> str:
        # Words are letters and digits only, so double quotes around them are safe.
        return f'"{" ".join(clause.words)}"' + ("*" if clause.prefix else "")

    def _source_match(self, clause: Clause) -> str:
        """``_match`` for sources: a prefix longer than FTS5 indexes, as the words in
        sources that start with it."""
        if not clause.prefix or len(clause.words) > 1 or len(clause.words[0]) <= 3:
            return self._match(clause)
        prefix = clause.words[0]
        if prefix not in self._source_words:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT term FROM search_vocabulary_terms WHERE term >= %s AND term < %s"  # noqa: S608
                    f" LIMIT {self.MAX_PREFIX_WORDS + 1}",
                    [prefix, prefix + "\U0010ffff"],
                )
                words = [row[0] for row in cursor.fetchall()]
            self._source_words[prefix] = (
                "(" + " OR ".join(f'"{word}"' for word in words) + ")"
                if 0 < len(words) <= self.MAX_PREFIX_WORDS
                else self._match(clause)
            )
        return self._source_words[prefix]

    # The segment id encodes its source and number (SourceSegment.SEGMENT_ID_BASE): no join
    # to the segment table, whose rows hold the words and are large.
    _SOURCE = f"(rowid / {SourceSegment.SEGMENT_ID_BASE})"
    _KIND = (
        f"CASE WHEN rowid = {_SOURCE} * {SourceSegment.SEGMENT_ID_BASE} THEN 'meta' ELSE 'text' END"
    )

    def segment_hits(self, clause: Clause, sources: str, first: str) -> tuple[str, list]:
        """Scored hits in the sources that the SQL ``sources`` selects, none below source
        ``first`` (SQL): FTS5 seeks there by rowid, and scores only the rows kept."""
        return (
            f"SELECT {self._SOURCE} AS source_id, rowid AS segment_id, {self._KIND} AS kind,"  # noqa: S608
            " bm25(search_segment_fts) AS score"
            " FROM search_segment_fts WHERE search_segment_fts MATCH %s"
            f" AND rowid >= ({first}) * {SourceSegment.SEGMENT_ID_BASE}"
            f" AND {self._SOURCE} IN ({sources})",
            [self._source_match(clause)],
        )

    @staticmethod
    def source_window(clauses: list[Clause]) -> Window:
        """No window of newest ids to read matches from (``_count_and_rank``): FTS5 reads
        a word's matches newest first, and the statement stops at the limit."""
        return Window()

    @staticmethod
    def passage_window(clauses: list[Clause], tagged: Sieve = (), tags=()) -> Window:
        return Window()

    def sources_matching_any(self, clauses: list[Clause], from_id: int = 0) -> tuple[str, list]:
        # (No use for ``from_id``: see ``source_window``.)
        words, phrases = _words_and_phrases(clauses)
        parts, params = [], []
        if words:
            parts.append(
                "SELECT rowid FROM search_vocabulary_fts WHERE search_vocabulary_fts MATCH %s"
            )
            params.append(" OR ".join(self._source_match(c) for c in words))
        if phrases:
            parts.append(
                f"SELECT {self._SOURCE} FROM search_segment_fts"  # noqa: S608
                " WHERE search_segment_fts MATCH %s"
            )
            params.append(" OR ".join(self._match(c) for c in phrases))
        return " UNION ".join(parts), params

    def entry_hits(self, clauses: list[Clause], entries: str, first: str) -> tuple[str, list]:
        """Scored hits among the annotations the SQL ``entries`` selects, from ``first`` on."""
        return (
            "SELECT rowid AS id, bm25(search_annotation_fts, 1.0, 1.0, 2.0) AS score"  # noqa: S608
            " FROM search_annotation_fts WHERE search_annotation_fts MATCH %s"
            # (rowid + 0): a filter on the rows of the range scan, not one MATCH per id.
            f" AND rowid >= ({first}) AND (rowid + 0) IN ({entries})",
            [" AND ".join(self._match(c) for c in clauses)],
        )

    def entries_matching_all(
        self, clauses: list[Clause], tagged: Sieve = (), from_id: int = 0
    ) -> tuple[str, list]:
        terms = [self._match(c) for c in clauses]
        for names in tagged:
            terms.append("(" + " OR ".join(f'tags : "{" ".join(w)}"' for w in names) + ")")
        return (
            "SELECT rowid FROM search_annotation_fts WHERE search_annotation_fts MATCH %s",
            [" AND ".join(terms)],
        )

    def entries_matching_any(self, clauses: list[Clause]) -> tuple[str, list]:
        return (
            "SELECT rowid FROM search_annotation_fts WHERE search_annotation_fts MATCH %s",
            [" OR ".join(self._match(c) for c in clauses)],
        )

    # The newest matches, read newest first from the index and each checked in turn, so
    # that the statement stops one past the limit: ``rows`` (visible, filtered) then have
    # to check their rule one row at a time (``visible_to(user, one_by_one=True)``). As a
    # set, the rule would cost a list of every visible source, built before the first row.
    NEWEST_FROM_INDEX = True
    # Elsewhere (``matching``: sorted by date, or past the ranked matches) the rule is
    # checked as a set: SQLite then reads every match of a word, in the index's order.
    ONE_BY_ONE = False

    def newest_sources(self, rows: QuerySet, words: list[Clause]) -> tuple[str, list]:
        """The newest of ``rows`` whose vocabulary holds every one of ``words`` (clauses of
        one word or prefix)."""
        match = " AND ".join(self._source_match(clause) for clause in words)
        return self._newest(rows, "search_vocabulary_fts", match)

    def newest_entries(
        self, rows: QuerySet, clauses: list[Clause], tagged: Sieve
    ) -> tuple[str, list]:
        """The newest of ``rows`` that every clause (and the tag sieve) matches."""
        _sql, params = self.entries_matching_all(clauses, tagged)
        return self._newest(rows, "search_annotation_fts", params[0])

    def titled(self, rows: QuerySet, clauses: list[Clause], limit: int) -> tuple[str, list]:
        """(id, score) of the newest ``limit`` of ``rows`` whose metadata every clause
        matches (migration 0006), newest first."""
        fts = "search_metadata_fts"
        source = f"({fts}.rowid / {SourceSegment.SEGMENT_ID_BASE})"
        match = " AND ".join(self._match(clause) for clause in clauses)
        return self._newest(rows, fts, match, limit, key=source, score=f"bm25({fts})")

    @staticmethod
    def _newest(
        rows: QuerySet, fts: str, match: str, limit: int = 0, key: str = "", score: str = ""
    ) -> tuple[str, list]:
        """The ids (``key``: the row's, by default) of the newest ``limit`` (one past the
        listed, by default) of the index ``fts``'s matches that are among ``rows``; and
        with a ``score``, each one's."""
        key = key or f"{fts}.rowid"
        # The subquery names the index's table to find the row it checks (its own FROM
        # shadows the name only inside subqueries that read the index again).
        row = rows.filter(pk=RawSQL(key, ())).order_by().values("pk")  # noqa: S611
        sql, params = row.query.sql_with_params()
        columns = f"{key} AS pk" + (f", {score} AS score" if score else "")
        return (
            f"SELECT {columns} FROM {fts} WHERE {fts} MATCH %s AND EXISTS ({sql})"  # noqa: S608
            f" ORDER BY {fts}.rowid DESC LIMIT {int(limit or MAX_LISTED + 1)}",
            [match, *params],
        )


class _PostgreSQL:
    """tsvector columns with GIN indexes made by migration 0002."""

    # A GIN index yields its matches in no order (``_count_and_rank`` reads them in windows
    # of the newest ids): each match found is checked in turn.
    NEWEST_FROM_INDEX = False
    ONE_BY_ONE = True

    @staticmethod
    def _tsquery(clause: Clause, weight: str = "") -> str:
        last = len(clause.words) - 1
        lexemes = []
        for i, word in enumerate(clause.words):
            flags = ("*" if clause.prefix and i == last else "") + weight
            # Words are letters and digits only, so single quotes around them are safe.
            lexemes.append(f"'{word}'" + (f":{flags}" if flags else ""))
        return "(" + " <-> ".join(lexemes) + ")"

    def _entry_tsquery(self, clause: Clause) -> str:
        if len(clause.words) == 1:
            return self._tsquery(clause)
        # An entry's tags, quote and note carry weights A, B, C: a phrase must keep to one.
        return "(" + " | ".join(self._tsquery(clause, w) for w in "ABC") + ")"

    def segment_hits(self, clause: Clause, sources: str, first: str) -> tuple[str, list]:
        # (No use for ``first``: a range of ids only adds work to PostgreSQL's plans.)
        q = self._tsquery(clause)
        return (
            "SELECT s.source_id, s.id AS segment_id, s.kind,"  # noqa: S608
            " -ts_rank(s.document, %s::tsquery, 1) AS score"
            " FROM search_sourcesegment s WHERE s.document @@ %s::tsquery"
            f" AND s.source_id IN ({sources})",
            [q, q],
        )

    # A GIN index yields every match of a word before any can be sorted newest first: for
    # a word in thousands of rows, reading each row found costs more than reading the index.
    # So ``_count_and_rank`` reads the matches among the newest ids first (the index and the
    # id range combined), in a window as wide as the planner's estimate of how many rows
    # match says should hold half as many again as can be listed (at least 2,000 ids); and
    # further back only if it must.

    def source_window(self, clauses: list[Clause]) -> Window:
        words, phrases = _words_and_phrases(clauses)
        if phrases:
            # Counted in stretches of text holding every phrase, not in sources: rough
            # either way (a window too narrow widens), and for a rare phrase few enough to
            # read every id at once.
            q = " & ".join(self._tsquery(c) for c in phrases)
            estimate = "SELECT 1 FROM search_sourcesegment WHERE document @@ %s::tsquery", [q]
        else:
            q = " & ".join(self._tsquery(c) for c in words)
            estimate = "SELECT 1 FROM search_sourcevocabulary WHERE document @@ %s::tsquery", [q]
        return self._window(Source, estimate)

    def passage_window(
        self, clauses: list[Clause], tagged: Sieve = (), tags: list[list[int]] = ()
    ) -> Window:
        """``tags``: the ids each tag filter names (``Filters.tag_ids``). The planner takes
        the words of a tag's name as found apart from each other, so it guessed the entries
        holding a word and a tag of two words at a quarter to a sixteenth of their number
        (bench/search.py), and the window then took in every id. Each tag's use is estimated
        from its own rows instead, as independent of the words."""
        q = self._entries_tsquery(clauses, () if tags else tagged)
        estimate = "SELECT 1 FROM search_annotationentry WHERE document @@ %s::tsquery", [q]
        tagging = TaggedAnnotation._meta.db_table
        shares = [(f'SELECT 1 FROM "{tagging}" WHERE tag_id = ANY(%s)', [ids]) for ids in tags]  # noqa: S608
        return self._window(Annotation, estimate, shares)

    @staticmethod
    def _window(model, estimate: tuple[str, list], shares=()) -> Window:
        """The window of the newest ids of ``model`` that should hold half as many again
        as can be listed of the rows ``estimate`` (SQL) matches, as the planner estimates
        them; and of those, the share that meets each of ``shares`` (SQL over rows of
        ``model``, taken as independent)."""
        table, pk = model._meta.db_table, model._meta.pk.column
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT MIN("{pk}"), MAX("{pk}") FROM "{table}"')  # noqa: S608
            first, newest = (n or 0 for n in cursor.fetchone())

            def planned(sql: str, params: list) -> float:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                return cursor.fetchone()[0][0]["Plan"]["Plan Rows"]

            rows = planned(*estimate)
            if shares:
                every = max(1.0, planned(f'SELECT 1 FROM "{table}"', []))  # noqa: S608
                for share in shares:
                    rows *= min(1.0, planned(*share) / every)
        width = 3 * (MAX_LISTED + 1) * (newest - first + 1) // (2 * max(1, int(rows)))
        width = max(2 * MAX_LISTED, width)
        if shares and 2 * width > newest - first + 1:
            # Over most ids, the range costs more than the matches it leaves out (a word and
            # a tag, bench/search.py: 40 ms in a window of 87% of the ids, 33 ms in all).
            width = newest - first + 1
        return Window(first, newest, width)

    @staticmethod
    def _from(name: str, from_id: int) -> str:
        """The matching function (migration 0004), reading only from ``from_id`` on."""
        return f"{name}(%s::tsquery, {int(from_id)})" if from_id else f"{name}(%s::tsquery)"

    def sources_matching_any(self, clauses: list[Clause], from_id: int = 0) -> tuple[str, list]:
        words, phrases = _words_and_phrases(clauses)
        parts, params = [], []
        if words:
            parts.append(f"SELECT {self._from('search_vocabulary_sources', from_id)}")
            params.append(" | ".join(self._tsquery(c) for c in words))
        if phrases:
            parts.append(
                "SELECT s.source_id FROM search_sourcesegment s WHERE s.document @@ %s::tsquery"  # noqa: S608
                f" AND s.source_id >= {int(from_id)}"
            )
            params.append(" | ".join(self._tsquery(c) for c in phrases))
        return " UNION ".join(parts), params

    def titled(self, rows: QuerySet, clauses: list[Clause], limit: int) -> tuple[str, list]:
        """(id, score) of the newest ``limit`` of ``rows`` whose metadata every clause
        matches, newest first: the metadata rows have a GIN index of their own (migration
        0006)."""
        q = " & ".join(self._tsquery(c) for c in clauses)
        row = rows.filter(pk=RawSQL("m.source_id", ())).order_by().values("pk")  # noqa: S611
        sql, params = row.query.sql_with_params()
        # Matched first, in the metadata's own index (the planner, whose statistics are
        # those of every row, expects a word in a title to be as common as in texts); then
        # each checked in turn (a scalar subquery: never made a join over every source).
        return (
            "WITH m AS MATERIALIZED (SELECT id, source_id FROM search_sourcesegment"  # noqa: S608
            " WHERE kind = 'meta' AND document @@ %s::tsquery),"
            f" newest AS (SELECT id, source_id FROM m WHERE (SELECT EXISTS ({sql}))"
            f" ORDER BY source_id DESC LIMIT {int(limit)})"
            " SELECT newest.source_id, -ts_rank(s.document, %s::tsquery, 1)"
            " FROM newest JOIN search_sourcesegment s ON s.id = newest.id"
            " ORDER BY newest.source_id DESC",
            [q, *params, q],
        )

    def entry_hits(self, clauses: list[Clause], entries: str, first: str) -> tuple[str, list]:
        q = " & ".join(self._entry_tsquery(c) for c in clauses)
        return (
            "SELECT e.annotation_id AS id, -ts_rank(e.document, %s::tsquery) AS score"  # noqa: S608
            " FROM search_annotationentry e WHERE e.document @@ %s::tsquery"
            f" AND e.annotation_id IN ({entries})",
            [q, q],
        )

    def _entries_tsquery(self, clauses: list[Clause], tagged: Sieve) -> str:
        terms = [self._entry_tsquery(c) for c in clauses]
        for names in tagged:  # tags carry weight A
            terms.append("(" + " | ".join(self._tsquery(Clause(w), "A") for w in names) + ")")
        return " & ".join(terms)

    def entries_matching_all(
        self, clauses: list[Clause], tagged: Sieve = (), from_id: int = 0
    ) -> tuple[str, list]:
        function = self._from("search_entry_annotations", from_id)
        return f"SELECT {function}", [self._entries_tsquery(clauses, tagged)]

    def entries_matching_any(self, clauses: list[Clause]) -> tuple[str, list]:
        q = " | ".join(self._entry_tsquery(c) for c in clauses)
        return "SELECT search_entry_annotations(%s::tsquery)", [q]


def _words_and_phrases(clauses: list[Clause]) -> tuple[list[Clause], list[Clause]]:
    """Clauses of one word (or prefix), which a source's vocabulary answers, and phrases,
    which need the positions in its stretches of text."""
    return [c for c in clauses if len(c.words) == 1], [c for c in clauses if len(c.words) > 1]


def _engine() -> _SQLite | _PostgreSQL:
    if connection.vendor == "sqlite":
        return _SQLite()
    if connection.vendor == "postgresql":
        return _PostgreSQL()
    raise NotImplementedError(f"Search supports SQLite and PostgreSQL, not {connection.vendor}.")


def _sql(queryset: QuerySet) -> tuple[str, tuple]:
    """A queryset as SQL to embed in a larger statement (unordered: it is only a set)."""
    return queryset.order_by().query.sql_with_params()


# --- Filters -------------------------------------------------------------------------------


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
    _named: dict[str, list[tuple[int, str]]] = field(
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
        from taggit.models import Tag

        if tag not in self._named:
            self._named[tag] = list(Tag.objects.filter(_naming(tag)).values_list("pk", "name"))
        return self._named[tag]

    def tag_ids(self) -> list[list[int]]:
        """The ids of the tags each tag filter names."""
        return [[pk for pk, _ in self.tags_named(tag)] for tag in self.tags]

    def sources(self, user, *, one_by_one: bool = False) -> QuerySet[Source]:
        """The visible sources these filters let through; ``one_by_one``: see
        ``SourceQuerySet.visible_to``."""
        # Curators may open a withdrawn source, but a search never offers one.
        sources = Source.objects.visible_to(user, one_by_one=one_by_one).filter(
            self._source_q(""), withdrawn_at__isnull=True
        )
        if self.collection:
            in_collection = Collection.sources.through.objects.filter(
                collection__slug=self.collection
            )
            sources = sources.filter(pk__in=in_collection.values("source_id"))
        return sources

    def annotations(
        self, user, *, by_words: bool = False, one_by_one: bool = False
    ) -> QuerySet[Annotation]:
        """The visible annotations these filters let through. ``by_words``: the caller
        narrows them further by words, which then find the few candidates; each tag is
        checked on those alone, rather than listed whole first (SQLite plans as written).
        ``one_by_one``: so is each annotation's source (``SourceQuerySet.visible_to``)."""
        visible = Annotation.objects.visible_to(user, one_by_one=one_by_one)
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
                Q(_tagged(a), _meets(b, visible)) | Q(_tagged(b), _meets(a, visible))
            )
        else:
            for ids in tags:
                annotations = annotations.filter(_carries(ids) if by_words else _tagged(ids))
        return annotations


def _midnight(day: dt.date, days: int = 0) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=days), dt.time.min, tzinfo=dt.UTC)


def _naming(tag: str) -> Q:
    """The tags ``tag`` names: by slug or, in any case, by name."""
    return Q(slug=tag) | Q(name__iexact=tag)


def _tagged(tag_ids: list[int]) -> Q:
    """The annotation is among those carrying one of these tags (those a tag filter names)."""
    return Q(pk__in=TaggedAnnotation.objects.filter(tag_id__in=tag_ids).values("content_object_id"))


def _carries(tag_ids: list[int]) -> Exists:
    """``_tagged``, checked for each annotation in turn: one probe of the tagging index."""
    return Exists(
        TaggedAnnotation.objects.filter(content_object_id=OuterRef("pk"), tag_id__in=tag_ids)
    )


def _tag_sieve(filters: Filters) -> Sieve:
    """The tag filters as words for the engine to match along with the search's own, so
    that a common word with a common tag reads only the entries with both. A sieve, not the
    filter: words in a row may also span two tags, so the exact filter (``_carries``) still
    decides. The tags are those the filter itself found (``Filters.tags_named``)."""
    if filters.overlap:
        return ()
    sieve = []
    for tag in filters.tags:
        words = [tuple(index_words(name)) for _, name in filters.tags_named(tag)]
        if words and all(words):  # (a tag without words can't be sieved for)
            sieve.append(words)
    return sieve


def _meets(tag_ids: list[int], visible: QuerySet[Annotation]) -> Exists:
    """The annotation, or a visible one overlapping it on the same source, carries one of
    these tags."""
    return Exists(
        visible.filter(
            _tagged(tag_ids),
            source_id=OuterRef("source_id"),
            start__lt=OuterRef("end"),
            end__gt=OuterRef("start"),
        )
    )


# --- Results -------------------------------------------------------------------------------


@dataclass
class ResultPage:
    """One page of results, shaped like Django's Page for the templates. ``count`` is how
    many are listed, at most MAX_LISTED; ``more`` says that more than that match."""

    items: list
    count: int
    number: int
    more: bool = False
    per_page: int = field(default_factory=lambda: PER_PAGE)

    def __iter__(self):
        return iter(self.items)

    @property
    def listed(self) -> str:
        """How many are listed, for people: "1,000"."""
        return f"{self.count:,}"

    @property
    def count_text(self) -> str:
        """The count in a sentence: "3", or "more than 1,000"."""
        return f"more than {self.listed}" if self.more else self.listed

    @property
    def count_label(self) -> str:
        """The count in a heading: "3", or "1,000+"."""
        return f"{self.listed}+" if self.more else self.listed

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


SORTS = {"relevance": "Relevance", "newest": "Newest first"}


def search(
    user: AbstractBaseUser | AnonymousUser,
    query: Query | None,
    filters: Filters,
    *,
    sort: str = "relevance",
    sources_page: int = 1,
    passages_page: int = 1,
) -> Results:
    """Sources and passages the user may see that match ``query`` (if any) and ``filters``."""
    if query is not None and not query.include and not filters:
        raise QueryError(
            "Say what to look for: a search with only -exclusions would list everything else."
        )
    if query is None or not query.include:
        sort = "newest"

    def passages() -> ResultPage:
        return _search_passages(user, query, filters, sort, passages_page)

    if filters.only_passages:
        return Results(query, filters, sort, None, passages())
    # Sources and passages are independent reads: side by side, the page waits for the
    # slower of the two rather than both. (A request's lazy user is read here, once.)
    user.is_authenticated  # noqa: B018
    found_sources, found_passages = side_by_side(
        lambda: _search_sources(user, query, filters, sort, sources_page), passages
    )
    return Results(query, filters, sort, found_sources, found_passages)


def passage_url(source: Source, start: int, end: int) -> str:
    """The reading page at a stretch of its text layer (code-point offsets)."""
    from django.urls import reverse

    return reverse("annotations:passage", args=[source.uuid, start, end]) + "#passage"


def _page_bounds(number: int) -> tuple[int, int]:
    number = max(1, number)
    return PER_PAGE, (number - 1) * PER_PAGE


def _listing_page(queryset: QuerySet, number: int) -> ResultPage:
    """The ids on a page of ``queryset`` (newest first, in its order), counted up to the
    limit: one statement reads the first ids up to one past it, which both counts them and
    holds the page, where a count and a slice would each work out the whole filter."""
    ids = list(queryset.values_list("pk", flat=True)[: MAX_LISTED + 1])
    count, more = _listed(len(ids))
    number = _clamp_page(number, count)
    limit, offset = _page_bounds(number)
    return ResultPage(ids[offset : min(offset + limit, count)], count, number, more)


def _listed(counted: int) -> tuple[int, bool]:
    """How many of ``counted`` matches (counted up to one past the limit) are listed, and
    whether more match."""
    return min(counted, MAX_LISTED), counted > MAX_LISTED


def _search_sources(user, query, filters, sort, number) -> ResultPage:
    clauses = query.include if query else []
    engine = _engine()

    @cache  # keyed on the arguments as passed: give ``one_by_one`` by position
    def allowed(one_by_one: bool = False) -> QuerySet[Source]:
        """The sources the filters let through, none that an excluded clause matches."""
        rows = filters.sources(user, one_by_one=one_by_one)
        if query and query.exclude:
            sql, params = engine.sources_matching_any(query.exclude)
            rows = rows.exclude(pk__in=RawSQL(sql, params))  # noqa: S611
        return rows

    if not clauses:
        listed = _listing_page(allowed().order_by("-archived_at", "-pk"), number)
        return _source_page(listed, [], [])

    def matching(from_id: int, one_by_one: bool = False) -> QuerySet[Source]:
        """Found without scoring: the sources (from ``from_id`` on) where every clause
        matches somewhere."""
        rows = allowed(one_by_one)
        rows = rows.filter(pk__gte=from_id) if from_id else rows
        for clause in clauses:
            sql, params = engine.sources_matching_any([clause], from_id)
            rows = rows.filter(pk__in=RawSQL(sql, params))  # noqa: S611
        return rows

    def newest() -> tuple[str, list]:
        """``matching(0)``'s newest, read from the vocabulary's index, for words only (a
        phrase is looked up in the stretches of text: ``sources_matching_any``)."""
        return engine.newest_sources(allowed(True), clauses)

    _, phrases = _words_and_phrases(clauses)

    if sort == "newest":
        listed = _listing_page(matching(0).order_by("-archived_at", "-pk"), number)
        hits = _source_hits(engine, clauses, listed.items) if listed.items else []
    else:
        union, params = _hits_union(
            engine, clauses, "SELECT pk FROM search_top", "SELECT MIN(pk) FROM search_top"
        )
        window = engine.source_window(clauses)
        # Few matches (a window of every id): each is checked in turn. Thousands: against
        # the set of visible sources, worked out once.
        few = engine.ONE_BY_ONE and window.newest - window.width <= window.first

        def found(from_id: int) -> QuerySet[Source]:
            return matching(from_id, one_by_one=few)

        count, more, hits = _count_and_rank(
            found,
            window,
            union,
            params,
            MAX_RANKED_SOURCES,
            newest=newest if engine.NEWEST_FROM_INDEX and not phrases else None,
        )
        number = _clamp_page(number, count)
        limit, offset = _page_bounds(number)
        score: dict[int, float] = {}
        for source_id, _segment_id, _kind, hit_score, _k in hits:
            score[source_id] = score.get(source_id, 0.0) + hit_score
        titled = _titled(hits, len(clauses))
        older: set[int] = set()
        if count > MAX_RANKED_SOURCES:
            # Not every source found was scored: those whose metadata matches are listed
            # first all the same, the newest of them, however old (scored alike).
            sql, params = engine.titled(allowed(True), clauses, MAX_RANKED_SOURCES)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                titled = dict(cursor.fetchall())
            older = set(titled) - set(score)

        def rank(pk: int) -> tuple:
            return (0, titled[pk], -pk) if pk in titled else (1, score[pk], -pk)

        ranked = sorted([*score, *older], key=rank)
        page_ids = _page_of_ranked(found, ranked, count, offset, limit)
        unscored = [pk for pk in page_ids if pk not in score and pk not in older]
        if unscored:  # a page past the ranked sources
            hits = [h for h in hits if h[0] in page_ids]
            hits += _source_hits(engine, clauses, unscored)
        listed = ResultPage(page_ids, count, number, more)
    return _source_page(listed, clauses, hits)


def _titled(hits: list[tuple], clauses: int) -> dict[int, float]:
    """The sources whose metadata every clause matched (in ``hits``: (source, segment,
    kind, score, clause number)), each with its metadata's score."""
    matched: dict[int, set[int]] = {}
    score: dict[int, float] = {}
    for source_id, _segment_id, kind, hit_score, k in hits:
        if kind == SourceSegment.Kind.METADATA:
            matched.setdefault(source_id, set()).add(k)
            score[source_id] = score.get(source_id, 0.0) + hit_score
    return {pk: score[pk] for pk, ks in matched.items() if len(ks) == clauses}


def _source_page(page: ResultPage, clauses: list[Clause], hits: list[tuple]) -> ResultPage:
    """The page's source ids made into results, in order, each shown at its best hit."""
    page_ids = page.items
    if not page_ids:
        return page
    # Show each source at the stretch of text that matches the most clauses, then scores
    # best; at its metadata only when no stretch of text matches.
    on_page = set(page_ids)
    segments: dict[int, list] = {}  # segment -> [source, clauses, is text, score]
    for source_id, segment_id, kind, hit_score, k in hits:
        if source_id in on_page:
            segment = segments.setdefault(segment_id, [source_id, set(), kind == "text", 0.0])
            segment[1].add(k)
            segment[3] += hit_score
    best: dict[int, tuple] = {}  # source -> (preference, segment)
    for segment_id, (source_id, matched, is_text, segment_score) in segments.items():
        preference = (len(matched), is_text, -segment_score, -segment_id)
        if source_id not in best or preference > best[source_id][0]:
            best[source_id] = (preference, segment_id)
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


def _clamp_page(number: int, count: int) -> int:
    """Past the last page, the last page (as Paginator.get_page)."""
    return min(max(1, number), max(1, -(-count // PER_PAGE)))


def _hits_union(engine, clauses: list[Clause], sources: str, first: str) -> tuple[str, list]:
    """(source, segment, kind, score, clause number) of each hit in ``sources`` (SQL)."""
    parts, params = [], []
    for k, clause in enumerate(clauses):
        sql, p = engine.segment_hits(clause, sources, first)
        parts.append(f"SELECT source_id, segment_id, kind, score, {k} AS k FROM ({sql}) AS c{k}")  # noqa: S608
        params += p
    return " UNION ALL ".join(parts), params


def _count_and_rank(
    matching, window: Window, hits_sql, hits_params, top: int, page=None, newest=None
):
    """How many of the rows found (``matching(from_id)``) are listed and whether there are
    more (``_listed``), and the scored hits (``hits_sql``, reading the ids from
    ``search_top``) of the ``top`` most recently added.

    Given a ``window`` of the newest ids (PostgreSQL: ``_PostgreSQL.source_window``), the
    matches are read in it first; a window that holds more than can be listed holds the
    newest of them all. Otherwise the next window is wider in proportion to the matches
    found so far, with a margin, and the last takes in every id (``from_id`` 0). With a
    ``page``, only the hits on it come back (``_count_and_rank_in``); ``newest`` is passed
    on, for a single window."""
    first, last, width = window.first, window.newest, window.width
    while True:
        from_id = last - width if last - width > first else 0
        rows = matching(from_id) if newest is None else None
        count, more, hits = _count_and_rank_in(rows, hits_sql, hits_params, top, page, newest)
        if more or from_id == 0:
            return count, more, hits
        width = width * 3 * (MAX_LISTED + 1) // (2 * count) if count else last


def _count_and_rank_in(
    found: QuerySet | None, hits_sql: str, hits_params: list, top: int, page=None, newest=None
):
    """``_count_and_rank`` in one window: the engine reads matches newest first and stops
    one past the limit. With a ``page`` (offset, limit), only the hits on that page come
    back, best first (``hits_sql`` then gives (id, score)). ``newest()``, if given, is the
    SQL that reads the same ids as ``found``, newest first, up to one past the limit."""
    try:
        if newest is not None:
            found_sql, found_params = newest()
        else:
            ids = found.order_by("-pk").values("pk")[: MAX_LISTED + 1]
            found_sql, found_params = ids.query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing, such as a tag no one used
        return 0, False, []
    hits, order = "search_hits", ""
    if page is not None:
        offset, limit = page
        hits = (
            "(SELECT * FROM search_hits ORDER BY score, id DESC"  # noqa: S608
            f" LIMIT {int(limit)} OFFSET {int(offset)}) AS search_hits"
        )
        order = " ORDER BY search_hits.score, search_hits.id DESC"
    # Materialized: FTS5 scores only in a plain scan of its own table.
    sql = (
        f"WITH search_found AS MATERIALIZED ({found_sql}),"  # noqa: S608
        " search_top AS MATERIALIZED"
        f" (SELECT pk FROM search_found ORDER BY pk DESC LIMIT {min(int(top), MAX_LISTED)}),"
        f" search_hits AS MATERIALIZED ({hits_sql})"
        # The count on every row, and on one row of its own when nothing was scored.
        " SELECT (SELECT COUNT(*) FROM search_found), search_hits.*"
        f" FROM (SELECT 1) AS search_one LEFT JOIN {hits} ON 1 = 1{order}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*found_params, *hits_params])
        rows = cursor.fetchall()
    return *_listed(rows[0][0]), [row[1:] for row in rows if row[1] is not None]


def _page_of_ranked(matching, ranked: list[int], count: int, offset: int, limit: int):
    """The ids on a page: the ranked ones first, then the rest of those found
    (``matching(0)``), most recently added first (read only for a page that reaches past
    the ranked ones)."""
    limit = min(limit, count - offset)
    page_ids = ranked[offset : offset + limit]
    if len(page_ids) < limit:
        # Every id not ranked, as any found row without a scored hit (a source whose index
        # was cut short, awaiting rebuild_search_index --missing) still counts and shows.
        skip = max(0, offset - len(ranked))
        rest = matching(0).exclude(pk__in=ranked).order_by("-pk").values_list("pk", flat=True)
        page_ids += list(rest[skip : skip + limit - len(page_ids)])
    return page_ids


def _source_hits(engine, clauses: list[Clause], source_ids: list[int]) -> list[tuple]:
    ids = ", ".join(str(int(pk)) for pk in source_ids)  # ids just read from the database
    union, params = _hits_union(engine, clauses, ids, str(min(source_ids)))
    sql = f"WITH search_hits AS MATERIALIZED ({union}) SELECT * FROM search_hits"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _search_passages(user, query, filters, sort, number) -> ResultPage:
    clauses = query.include if query else []
    engine = _engine()

    @cache  # as in _search_sources
    def allowed(one_by_one: bool = False) -> QuerySet[Annotation]:
        """The annotations the filters let through, none that an excluded clause matches."""
        rows = filters.annotations(user, by_words=bool(clauses), one_by_one=one_by_one)
        if query and query.exclude:
            sql, params = engine.entries_matching_any(query.exclude)
            rows = rows.exclude(pk__in=RawSQL(sql, params))  # noqa: S611
        return rows

    if not clauses:
        listed = _listing_page(allowed().order_by("-created", "-pk"), number)
        return _passage_page(listed, [], user)

    sieve = _tag_sieve(filters)

    def matching(from_id: int, one_by_one: bool = False) -> QuerySet[Annotation]:
        """The annotations (from ``from_id`` on) that every clause matches."""
        sql, params = engine.entries_matching_all(clauses, sieve, from_id)
        rows = allowed(one_by_one)
        rows = rows.filter(pk__gte=from_id) if from_id else rows
        return rows.filter(pk__in=RawSQL(sql, params))  # noqa: S611

    def newest() -> tuple[str, list]:
        """``matching(0)``'s newest, read from the index (``_SQLite.newest_entries``)."""
        return engine.newest_entries(allowed(True), clauses, sieve)

    newest_first = newest if engine.NEWEST_FROM_INDEX else None

    if sort == "newest":
        listed = _listing_page(matching(0).order_by("-created", "-pk"), number)
    else:
        hits_sql, hits_params = engine.entry_hits(
            clauses, "SELECT pk FROM search_top", "SELECT MIN(pk) FROM search_top"
        )
        window = engine.passage_window(clauses, sieve, () if filters.overlap else filters.tag_ids())
        limit, offset = _page_bounds(number)

        def found(from_id: int) -> QuerySet[Annotation]:
            # Each match checked in turn: no more than a window's worth, on PostgreSQL.
            return matching(from_id, one_by_one=engine.ONE_BY_ONE)

        # Every passage found is scored (its index entry both finds and scores it): a page
        # among the ranked ones comes straight from the statement, best first.
        count, more, hits = _count_and_rank(
            found,
            window,
            hits_sql,
            hits_params,
            MAX_RANKED_PASSAGES,
            (offset, limit),
            newest_first,
        )
        ranked = min(count, MAX_RANKED_PASSAGES)
        if _clamp_page(number, count) == number and min(offset + limit, count) <= ranked:
            page_ids = [pk for pk, _score in hits]
        else:  # past the ranked ones, or past the last page
            count, more, hits = _count_and_rank(
                found, window, hits_sql, hits_params, MAX_RANKED_PASSAGES, None, newest_first
            )
            score = dict(hits)
            number = _clamp_page(number, count)
            limit, offset = _page_bounds(number)
            ranked_ids = sorted(score, key=lambda pk: (score[pk], -pk))
            page_ids = _page_of_ranked(found, ranked_ids, count, offset, limit)
        listed = ResultPage(page_ids, count, number, more)
    return _passage_page(listed, clauses, user)


def _passage_page(page: ResultPage, clauses: list[Clause], user) -> ResultPage:
    """The page's annotation ids made into results, in order."""
    found = _with_related(Annotation.objects.all()).in_bulk(page.items)
    annotations = [found[pk] for pk in page.items if pk in found]
    page.items = _passage_results(annotations, clauses, user)
    return page


def _with_related(annotations: QuerySet[Annotation]) -> QuerySet[Annotation]:
    return annotations.select_related("author", "source", "collection").only(*PASSAGE_RESULT_FIELDS)


# What a passage's result shows (templates/search/search.html, ``_passage_result``): no
# more is read. Not the source's text layer, which can be megabytes, nor the author's row,
# which holds a password hash; and fewer columns to convert (bench/search.py's data: ten
# results read in 1.9-2.1 ms rather than 2.6-3.1 on PostgreSQL, 1.0 rather than 1.5 on SQLite).
PASSAGE_RESULT_FIELDS = (
    "uuid",
    "source__uuid",
    "source__title",
    "collection__title",
    "author__username",
    "exact",
    "note",
    "visibility",
    "created",
)


def _passage_results(annotations: list[Annotation], clauses: list[Clause], user) -> list:
    """Results for the annotations, with their tags read in one query: as plain names, in
    the order they were applied (taggit's prefetch costs twice as much, in model objects),
    each tag's link made once; and the citation keys in their notes that ``user`` may
    follow, in one more if any."""
    keys = resolve_keys({k for a in annotations if a.note for k in keys_in(a.note)}, user)
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
    return [_passage_result(a, clauses, tags.get(a.pk, []), keys) for a in annotations]


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


def _passage_result(
    annotation: Annotation, clauses: list[Clause], tags: list[TagLink], keys
) -> PassageResult:
    quote, _ = make_snippet(annotation.exact, clauses, fallback=True)
    note = None
    if annotation.note:
        # The note as read, not its Markdown; each [@key] of a source the user may see links
        # to it, as in the note itself.
        text = plain_text(annotation.note)
        links = [
            (start, end, keys[key].href, keys[key].title)
            for start, end, key in (key_spans(text) if keys else [])
            if key in keys
        ]
        note = make_snippet(text, clauses, fallback=True, links=links)[0] or None
    source_url = annotation.source.get_absolute_url()
    return PassageResult(
        annotation, quote, note, tags, f"{source_url}#{annotation.fragment}", source_url
    )


# --- Where it matched ----------------------------------------------------------------------


def find_matches(text: str, clauses: list[Clause]) -> list[tuple[int, int, int]]:
    """(start, end, clause number) of every match of a clause in ``text``."""
    if not clauses or not text:
        return []
    folded = fold_in_place(text)
    if folded is None:
        return _find_matches_word_by_word(text, clauses)
    found = [
        (m.start(), m.end(), k)
        for k, clause in enumerate(clauses)
        for m in _clause_pattern(clause).finditer(folded)
    ]
    found.sort()
    return found


@lru_cache(maxsize=256)
def _clause_pattern(clause: Clause) -> re.Pattern:
    """A regex for the clause over folded text: whole words, any separators between them."""
    words = [re.escape(w) for w in clause.words]
    if clause.prefix:
        words[-1] += r"[^\W_]*"
    return re.compile(r"(?<![^\W_])" + r"[\W_]+".join(words) + r"(?![^\W_])")


def _find_matches_word_by_word(text: str, clauses: list[Clause]) -> list[tuple[int, int, int]]:
    spans = list(word_spans(text))
    words = [w for w, _, _ in spans]
    found = []
    for k, clause in enumerate(clauses):
        size = len(clause.words)
        for i in range(len(words) - size + 1):
            if _clause_at(clause, words, i):
                found.append((spans[i][1], spans[i + size - 1][2], k))
    found.sort()
    return found


def _clause_at(clause: Clause, words: list[str], i: int) -> bool:
    last = len(clause.words) - 1
    for j, wanted in enumerate(clause.words):
        word = words[i + j]
        if clause.prefix and j == last:
            if not word.startswith(wanted):
                return False
        elif word != wanted:
            return False
    return True


def _marked(
    text: str, matches: list[tuple[int, int, int]], start: int, end: int, links: Links = ()
) -> str:
    """Escaped ``text[start:end]`` with each match inside it wrapped in <mark>, and each of
    ``links`` (start, end, href, title: apart, in order) in a link."""
    if links:
        return _linked(text, matches, start, end, links)
    out, pos = [], start
    for m_start, m_end, _ in matches:
        if m_end <= pos or m_start >= end:
            continue
        m_start = max(m_start, pos)
        out.append(escape(text[pos:m_start]))
        out.append(f"<mark>{escape(text[m_start : min(m_end, end)])}</mark>")
        pos = min(m_end, end)
    out.append(escape(text[pos:end]))
    return "".join(out)


def _linked(text: str, matches, start: int, end: int, links: Links) -> str:
    """``_marked`` with links: cut at every edge of a match or a link, each piece marked if
    it lies in a match, and the pieces of one link kept in one <a> (a match never crosses a
    link's edge, since a key is whole words, but a mark is closed at one if it did)."""
    matches = [m for m in matches if m[1] > start and m[0] < end]
    links = [link for link in links if link[1] > start and link[0] < end]
    cuts = {start, end}
    for edge_start, edge_end, *_ in (*matches, *links):
        cuts.update(p for p in (edge_start, edge_end) if start < p < end)
    points = sorted(cuts)
    out, current = [], None
    for a, b in itertools.pairwise(points):
        link = next((lk for lk in links if lk[0] <= a and b <= lk[1]), None)
        if link is not current:
            if current is not None:
                out.append("</a>")
            if link is not None:
                out.append(f'<a href="{escape(link[2])}" title="{escape(link[3])}">')
            current = link
        piece = escape(text[a:b])
        in_match = any(m_start <= a and b <= m_end for m_start, m_end, _ in matches)
        out.append(f"<mark>{piece}</mark>" if in_match else piece)
    if current is not None:
        out.append("</a>")
    return "".join(out)


def highlight(text: str, clauses: list[Clause]) -> SafeString:
    """All of ``text``, escaped, with the matched words marked."""
    return mark_safe(_marked(text, find_matches(text, clauses), 0, len(text)))  # noqa: S308


def make_snippet(
    text: str, clauses: list[Clause], fallback: bool = False, links: Links = ()
) -> tuple[SafeString | None, tuple[int, int] | None]:
    """A short, escaped passage of ``text`` around its best matches, matches marked, and
    ``links`` (see ``_marked``) linked; and the (start, end) of the first match shown.
    Without a match: the opening of ``text`` if ``fallback``, else None."""
    matches = find_matches(text, clauses)
    if not matches:
        if not fallback:
            return None, None
        end = _word_end(text, SNIPPET_CHARS) if len(text) > SNIPPET_CHARS else len(text)
        opening = _marked(text, [], 0, end, links)
        return mark_safe(opening + ("…" if end < len(text) else "")), None  # noqa: S308
    # The window holding the most different clauses, then the most matches.
    best, best_key = 0, (-1, -1)
    for i, (m_start, _, _) in enumerate(matches[:200]):
        reach = m_start + SNIPPET_CHARS - SNIPPET_LEAD
        inside = list(itertools.takewhile(lambda m, reach=reach: m[0] < reach, matches[i : i + 50]))
        key = (len({m[2] for m in inside if m[1] <= reach}), len(inside))
        if key > best_key:
            best, best_key = i, key
    first = matches[best]
    start = max(0, first[0] - SNIPPET_LEAD)
    if start:
        start = _word_start(text, start, first[0])
    end = min(len(text), start + SNIPPET_CHARS)
    if end < len(text):
        end = max(_word_end(text, end), first[1])
    html = _marked(text, matches, start, end, links).strip()
    html = ("…" if start else "") + html + ("…" if end < len(text) else "")
    return mark_safe(" ".join(html.split())), (first[0], first[1])  # noqa: S308


def _word_start(text: str, pos: int, limit: int) -> int:
    """The start of the first whole word at or after ``pos`` (not beyond ``limit``)."""
    space = text.find(" ", pos, limit)
    return space + 1 if space != -1 else pos


def _word_end(text: str, pos: int) -> int:
    space = text.rfind(" ", 0, pos)
    return space if space > pos - 40 else pos


# --- Tags that meet ------------------------------------------------------------------------


@dataclass
class TagPair:
    first: Any
    second: Any
    same: int  # passages carrying both tags
    meeting: int  # passages with one tag that carry or overlap a passage with the other
    # Links, set by the page (search.views): the tags' pages, and the passages counted.
    first_url: str = ""
    second_url: str = ""
    same_url: str = ""
    meeting_url: str = ""


def tag_cooccurrence(user, collection: str = "", limit: int = 200) -> list[TagPair]:
    """Pairs of tags applied to the same or overlapping passages, among visible annotations."""
    from taggit.models import Tag

    visible = Annotation.objects.visible_to(user)
    if collection:
        visible = visible.filter(collection__slug=collection)
    visible_sql, visible_params = _sql(visible.values("pk"))
    tagged = TaggedAnnotation._meta.db_table
    annotations = Annotation._meta.db_table
    # Two tags meet on one passage that carries both, or on two passages that overlap. Most
    # passages overlap no other, so rather than pair every passage with every other on its
    # source, one pass in text order marks those that overlap a neighbour (an earlier one
    # reaching past its start, or the next one starting before its end); only the marked
    # are paired across passages.
    sql = (
        "WITH search_tagged AS MATERIALIZED ("  # noqa: S608
        f' SELECT a.id, a.source_id, a.start, a."end", t.tag_id FROM {annotations} a'
        f" JOIN {tagged} t ON t.content_object_id = a.id WHERE a.id IN ({visible_sql})),"
        " search_overlapping AS MATERIALIZED ("
        ' SELECT p.id, p.source_id, p.start, p."end", p.tag_id FROM search_tagged p WHERE p.id IN ('
        ' SELECT id FROM (SELECT id, start, "end",'
        ' MAX("end") OVER (PARTITION BY source_id ORDER BY start, id'
        " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach,"
        " LEAD(start) OVER (PARTITION BY source_id ORDER BY start, id) AS next_start"
        ' FROM (SELECT DISTINCT id, source_id, start, "end" FROM search_tagged) d) w'
        ' WHERE w.reach > w.start OR w.next_start < w."end")),'
        " search_meeting AS ("
        " SELECT x.tag_id AS first, y.tag_id AS second, x.id, 1 AS is_same"
        " FROM search_tagged x JOIN search_tagged y ON y.id = x.id AND y.tag_id > x.tag_id"
        " UNION ALL"
        " SELECT CASE WHEN x.tag_id < y.tag_id THEN x.tag_id ELSE y.tag_id END,"
        " CASE WHEN x.tag_id < y.tag_id THEN y.tag_id ELSE x.tag_id END, x.id, 0"
        " FROM search_overlapping x JOIN search_overlapping y ON y.source_id = x.source_id"
        ' AND y.id <> x.id AND y.start < x."end" AND x.start < y."end" AND y.tag_id <> x.tag_id)'
        " SELECT first, second, COUNT(DISTINCT CASE WHEN is_same = 1 THEN id END) AS same,"
        " COUNT(DISTINCT id) AS meeting FROM search_meeting"
        " GROUP BY first, second ORDER BY meeting DESC, same DESC, first, second LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*visible_params, limit])
        rows = cursor.fetchall()
    tags = Tag.objects.in_bulk({r[0] for r in rows} | {r[1] for r in rows})
    pairs = [TagPair(tags[a], tags[b], same, meeting) for a, b, same, meeting in rows]
    for pair in pairs:
        if pair.first.name.lower() > pair.second.name.lower():
            pair.first, pair.second = pair.second, pair.first
    return pairs
