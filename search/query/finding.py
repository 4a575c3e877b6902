"""A search, put together: sources and passages the user may see that match a query and
filters, a page of each.

A source matches when each clause matches somewhere in it (its metadata or any stretch of
its text) and no excluded clause matches anywhere in it. A passage (an annotation) matches
when each clause matches its quote, note or tags; a phrase stays within one of the three.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from annotations.models import Annotation
from archive.models import Source
from search.parallel import side_by_side
from search.query import limits
from search.query.engine import SQL, Engine, words_and_phrases
from search.query.filters import Filters, tag_words
from search.query.parsing import Query, QueryError
from search.query.postgresql import PostgreSQLEngine
from search.query.ranking import (
    count_and_rank,
    matched_in_metadata,
    page_of_ranked,
    segment_hits_sql,
    source_hits,
)
from search.query.results import (
    PassageHit,
    ResultPage,
    Results,
    SegmentHit,
    capped_count,
    clamp_page,
    page_bounds,
    passage_page,
    source_page,
)
from search.query.sqlite import SQLiteEngine

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

SORTS = {"relevance": "Relevance", "newest": "Newest first"}


def current_engine() -> Engine:
    if connection.vendor == "sqlite":
        return SQLiteEngine()
    if connection.vendor == "postgresql":
        return PostgreSQLEngine()
    raise NotImplementedError(f"Search supports SQLite and PostgreSQL, not {connection.vendor}.")


def search(
    user: User | AnonymousUser,
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
    # slower of the two rather than both. A request's lazy user is read here, once, before
    # the helper thread needs it.
    _ = user.is_authenticated
    found_sources, found_passages = side_by_side(
        lambda: _search_sources(user, query, filters, sort, sources_page), passages
    )
    return Results(query, filters, sort, found_sources, found_passages)


def _newest_page(queryset: QuerySet, number: int) -> ResultPage:
    """The ids on a page of ``queryset`` (in its order), counted up to the limit: one
    statement reads the first ids up to one past it, which both counts them and holds the
    page, where a count and a slice would each work out the whole filter."""
    ids = list(queryset.values_list("pk", flat=True)[: limits.MAX_RESULTS + 1])
    count, more = capped_count(len(ids))
    number = clamp_page(number, count)
    limit, offset = page_bounds(number)
    return ResultPage(ids[offset : min(offset + limit, count)], count, number, more)


def _search_sources(user, query: Query | None, filters: Filters, sort: str, number: int):
    clauses = query.include if query else []
    engine = current_engine()

    @cache  # each shape built once; keyword-only, so each has one key
    def allowed(*, by_probe: bool) -> QuerySet[Source]:
        """The sources the filters let through, none that an excluded clause matches."""
        rows = filters.sources(user, by_probe=by_probe)
        if query and query.exclude:
            rows = rows.exclude(pk__in=_raw(engine.sources_matching_any(query.exclude)))
        return rows

    if not clauses:
        page = _newest_page(allowed(by_probe=False).order_by("-archived_at", "-pk"), number)
        return source_page(page, [], [])

    def matching(from_id: int, *, by_probe: bool = False) -> QuerySet[Source]:
        """Found without scoring: the sources (from ``from_id`` on) where every clause
        matches somewhere."""
        rows = allowed(by_probe=by_probe)
        rows = rows.filter(pk__gte=from_id) if from_id else rows
        for clause in clauses:
            rows = rows.filter(pk__in=_raw(engine.sources_matching_any([clause], from_id)))
        return rows

    if sort == "newest":
        page = _newest_page(matching(0).order_by("-archived_at", "-pk"), number)
        hits = source_hits(engine, clauses, page.items) if page.items else []
        return source_page(page, clauses, hits)

    window = engine.source_window(clauses)
    # Few matches (a window of every id): each is checked in turn. Thousands: against the
    # set of visible sources, worked out once.
    by_probe = engine.probes_each_match and window.is_every_id

    def found(from_id: int) -> QuerySet[Source]:
        return matching(from_id, by_probe=by_probe)

    def newest() -> SQL:
        # ``matching(0)``'s newest, read from the vocabulary's index.
        return engine.newest_sources(allowed(by_probe=True), clauses)

    # A phrase is looked up in the stretches of text, not the vocabulary.
    _, phrases = words_and_phrases(clauses)
    newest_first = engine.reads_newest_first and not phrases
    hits_sql = segment_hits_sql(
        engine, clauses, "SELECT pk FROM search_top", "SELECT MIN(pk) FROM search_top"
    )
    count, more, hits = count_and_rank(
        found,
        window,
        hits_sql,
        SegmentHit._make,
        limits.MAX_RANKED_SOURCES,
        newest=newest if newest_first else None,
    )
    number = clamp_page(number, count)
    limit, offset = page_bounds(number)
    score: dict[int, float] = {}
    for hit in hits:
        score[hit.source_id] = score.get(hit.source_id, 0.0) + hit.score
    in_metadata = matched_in_metadata(hits, len(clauses))
    older: set[int] = set()
    if count > limits.MAX_RANKED_SOURCES:
        # Not every source found was scored: those whose metadata matches are shown first
        # all the same, the newest of them, however old (scored alike).
        sql, params = engine.metadata_matches(
            allowed(by_probe=True), clauses, limits.MAX_RANKED_SOURCES
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            in_metadata = dict(cursor.fetchall())
        older = set(in_metadata) - set(score)

    def rank(pk: int) -> tuple:
        return (0, in_metadata[pk], -pk) if pk in in_metadata else (1, score[pk], -pk)

    ranked = sorted([*score, *older], key=rank)
    page_ids = page_of_ranked(found, ranked, count, offset, limit)
    unscored = [pk for pk in page_ids if pk not in score and pk not in older]
    if unscored:  # a page past the ranked sources
        hits = [hit for hit in hits if hit.source_id in page_ids]
        hits += source_hits(engine, clauses, unscored)
    return source_page(ResultPage(page_ids, count, number, more), clauses, hits)


def _search_passages(user, query: Query | None, filters: Filters, sort: str, number: int):
    clauses = query.include if query else []
    engine = current_engine()

    @cache  # as above
    def allowed(*, by_probe: bool) -> QuerySet[Annotation]:
        """The annotations the filters let through, none that an excluded clause matches."""
        rows = filters.annotations(user, by_words=bool(clauses), by_probe=by_probe)
        if query and query.exclude:
            rows = rows.exclude(pk__in=_raw(engine.entries_matching_any(query.exclude)))
        return rows

    if not clauses:
        page = _newest_page(allowed(by_probe=False).order_by("-created", "-pk"), number)
        return passage_page(page, [], user)

    words_of_tags = tag_words(filters)

    def matching(from_id: int, *, by_probe: bool = False) -> QuerySet[Annotation]:
        """The annotations (from ``from_id`` on) that every clause matches."""
        rows = allowed(by_probe=by_probe)
        rows = rows.filter(pk__gte=from_id) if from_id else rows
        return rows.filter(
            pk__in=_raw(engine.entries_matching_all(clauses, words_of_tags, from_id))
        )

    if sort == "newest":
        page = _newest_page(matching(0).order_by("-created", "-pk"), number)
        return passage_page(page, clauses, user)

    def found(from_id: int) -> QuerySet[Annotation]:
        # Each match checked in turn: no more than a window's worth, on PostgreSQL.
        return matching(from_id, by_probe=engine.probes_each_match)

    def newest() -> SQL:
        # ``matching(0)``'s newest, read from the index.
        return engine.newest_entries(allowed(by_probe=True), clauses, words_of_tags)

    hits_sql = engine.entry_hits(
        clauses, "SELECT pk FROM search_top", "SELECT MIN(pk) FROM search_top"
    )
    tag_ids = None if filters.overlap else filters.tag_ids()
    window = engine.passage_window(clauses, words_of_tags, tag_ids)
    limit, offset = page_bounds(number)

    def counted(page: tuple[int, int] | None):
        return count_and_rank(
            found,
            window,
            hits_sql,
            PassageHit._make,
            limits.MAX_RANKED_PASSAGES,
            page,
            newest if engine.reads_newest_first else None,
        )

    # Every passage found is scored (its index entry both finds and scores it): a page
    # among the ranked ones comes straight from the statement, best first.
    count, more, hits = counted((offset, limit))
    ranked = min(count, limits.MAX_RANKED_PASSAGES)
    if clamp_page(number, count) == number and min(offset + limit, count) <= ranked:
        page_ids = [hit.annotation_id for hit in hits]
    else:  # past the ranked ones, or past the last page
        count, more, hits = counted(None)
        score = {hit.annotation_id: hit.score for hit in hits}
        number = clamp_page(number, count)
        limit, offset = page_bounds(number)
        ranked_ids = sorted(score, key=lambda pk: (score[pk], -pk))
        page_ids = page_of_ranked(found, ranked_ids, count, offset, limit)
    return passage_page(ResultPage(page_ids, count, number, more), clauses, user)


def _raw(sql: SQL) -> RawSQL:
    """An engine's SQL as a subquery; only folded words reach it, and only as parameters."""
    return RawSQL(*sql)  # noqa: S611
