"""Counting and ranking what a search found, in one statement per window of ids.

The engine reads matches newest first and stops one past the most a search shows: the
statement counts them, keeps the newest few to score (``top``), and scores only those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

from search.models import SourceSegment
from search.query import limits
from search.query.engine import SQL, Engine, NewestIds
from search.query.parsing import Clause
from search.query.results import SegmentHit, capped_count

Found = Callable[[int], QuerySet]  # the rows found, from an id on (0: every id)


class Counted(NamedTuple):
    shown: int  # how many are shown, at most MAX_RESULTS (not ``count``: tuples have a count())
    more: bool  # whether more than that match
    hits: list


def segment_hits_sql(engine: Engine, clauses: list[Clause], sources: str, first: str) -> SQL:
    """A ``SegmentHit`` for each hit in ``sources`` (SQL), none below ``first`` (SQL)."""
    parts, params = [], []
    for k, clause in enumerate(clauses):
        sql, p = engine.segment_hits(clause, sources, first)
        parts.append(f"SELECT source_id, segment_id, kind, score, {k} AS k FROM ({sql}) AS c{k}")
        params += p
    return " UNION ALL ".join(parts), params


def count_and_rank(
    found: Found,
    window: NewestIds,
    hits: SQL,
    make_hit: Callable[[Iterable], tuple],
    top: int,
    page: tuple[int, int] | None = None,
    newest: Callable[[], SQL] | None = None,
) -> Counted:
    """How many of the rows found are shown and whether there are more, and the scored
    ``hits`` (SQL reading the ids from ``search_top``; each row made by ``make_hit``) of
    the ``top`` most recently added.

    The matches are read first among the ids of ``window``; a window that holds more than
    can be shown holds the newest of them all. Otherwise the next window is wider in
    proportion to the matches found so far, with a margin, and the last takes in every id.
    With a ``page`` (offset, limit), only the hits on it come back, best first (``hits``
    then gives (id, score)). ``newest()``, if given, is SQL reading the same ids as
    ``found(0)``, newest first, up to one past the limit (a single window)."""
    lowest, highest, width = window.lowest, window.highest, window.width
    while True:
        from_id = highest - width if highest - width > lowest else 0
        if newest is not None:
            counted = _count_and_rank_in(newest, hits, make_hit, top, page)
        else:
            counted = _count_and_rank_in(_newest_ids(found(from_id)), hits, make_hit, top, page)
        if counted.more or from_id == 0:
            return counted
        count = counted.shown
        width = width * 3 * (limits.MAX_RESULTS + 1) // (2 * count) if count else highest


def _newest_ids(found: QuerySet) -> Callable[[], SQL]:
    def sql() -> SQL:
        ids = found.order_by("-pk").values("pk")[: limits.MAX_RESULTS + 1]
        sql, params = ids.query.sql_with_params()
        return sql, list(params)

    return sql


def _count_and_rank_in(
    newest: Callable[[], SQL],
    hits: SQL,
    make_hit: Callable[[Iterable], tuple],
    top: int,
    page: tuple[int, int] | None,
) -> Counted:
    """``count_and_rank`` in one window: ``newest()`` is the SQL of the ids found, newest
    first, up to one past the limit."""
    try:
        found_sql, found_params = newest()
    except EmptyResultSet:  # a filter that can match nothing, such as a tag no one used
        return Counted(0, False, [])
    hits_sql, hits_params = hits
    hits_table, order = "search_hits", ""
    if page is not None:
        offset, limit = page
        hits_table = (
            "(SELECT * FROM search_hits ORDER BY score, id DESC"
            f" LIMIT {int(limit)} OFFSET {int(offset)}) AS search_hits"
        )
        order = " ORDER BY search_hits.score, search_hits.id DESC"
    top = min(int(top), limits.MAX_RESULTS)
    # Materialized: FTS5 scores only in a plain scan of its own table.
    sql = (
        f"WITH search_found AS MATERIALIZED ({found_sql}),"
        " search_top AS MATERIALIZED"
        f" (SELECT pk FROM search_found ORDER BY pk DESC LIMIT {top}),"
        f" search_hits AS MATERIALIZED ({hits_sql})"
        # The count on every row, and on one row of its own when nothing was scored.
        " SELECT (SELECT COUNT(*) FROM search_found), search_hits.*"
        f" FROM (SELECT 1) AS search_one LEFT JOIN {hits_table} ON 1 = 1{order}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*found_params, *hits_params])
        rows = cursor.fetchall()
    count, more = capped_count(rows[0][0])
    return Counted(count, more, [make_hit(row[1:]) for row in rows if row[1] is not None])


def page_of_ranked(found: Found, ranked: list[int], count: int, offset: int, limit: int):
    """The ids on a page: the ranked ones first, then the rest of those found, most
    recently added first (read only for a page that reaches past the ranked ones)."""
    limit = min(limit, count - offset)
    page_ids = ranked[offset : offset + limit]
    if len(page_ids) < limit:
        # Every id not ranked, as any found row without a scored hit (a source whose index
        # was cut short, awaiting rebuild_search_index --missing) still counts and shows.
        skip = max(0, offset - len(ranked))
        rest = found(0).exclude(pk__in=ranked).order_by("-pk").values_list("pk", flat=True)
        page_ids += list(rest[skip : skip + limit - len(page_ids)])
    return page_ids


def source_hits(engine: Engine, clauses: list[Clause], source_ids: list[int]) -> list[SegmentHit]:
    """Every hit of each clause in these sources."""
    ids = ", ".join(str(int(pk)) for pk in source_ids)  # ids just read from the database
    union, params = segment_hits_sql(engine, clauses, ids, str(min(source_ids)))
    sql = f"WITH search_hits AS MATERIALIZED ({union}) SELECT * FROM search_hits"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(map(SegmentHit._make, cursor.fetchall()))


def matched_in_metadata(hits: list[SegmentHit], clauses: int) -> dict[int, float]:
    """The sources whose metadata every clause matched, each with its metadata's score."""
    matched: dict[int, set[int]] = {}
    score: dict[int, float] = {}
    for hit in hits:
        if hit.kind == SourceSegment.Kind.METADATA:
            matched.setdefault(hit.source_id, set()).add(hit.clause)
            score[hit.source_id] = score.get(hit.source_id, 0.0) + hit.score
    return {pk: score[pk] for pk, ks in matched.items() if len(ks) == clauses}
