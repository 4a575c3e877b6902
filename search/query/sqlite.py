"""SQLite: FTS5 over the external-content tables made by ``search`` migration 0002.

FTS5 yields a word's matches newest first (by rowid, descending), so a search reads the
newest matches from the index and checks each in turn, and the statement stops one past
the limit; no window of newest ids is needed.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from search.models import SourceSegment
from search.query import limits
from search.query.engine import SQL, NewestIds, TagWords, words_and_phrases
from search.query.parsing import Clause

# The segment id encodes its source and number (SourceSegment.SEGMENT_ID_BASE): no join to
# the segment table, whose rows hold the words and are large.
_SOURCE = f"(rowid / {SourceSegment.SEGMENT_ID_BASE})"
_KIND = f"CASE WHEN rowid = {_SOURCE} * {SourceSegment.SEGMENT_ID_BASE} THEN 'meta' ELSE 'text' END"


class SQLiteEngine:
    reads_newest_first = True
    # Where the rule is checked as a set (sorted by date, or past the ranked matches),
    # SQLite reads every match of a word, in the index's order.
    probes_each_match = False

    # FTS5 indexes prefixes of 2 and 3 characters (prefix='2 3'). A longer prefix it
    # matches by merging the lists of places of every word that starts with it, before any
    # other condition applies; naming those words, listed by the vocabulary's terms
    # (migration 0005), costs less. A prefix more words than this start with is left to
    # FTS5.
    MAX_PREFIX_WORDS = 100

    def __init__(self) -> None:
        self._words_of_prefix: dict[str, str] = {}

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
        if prefix not in self._words_of_prefix:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT term FROM search_vocabulary_terms WHERE term >= %s AND term < %s"
                    f" LIMIT {self.MAX_PREFIX_WORDS + 1}",
                    [prefix, prefix + "\U0010ffff"],
                )
                words = [row[0] for row in cursor.fetchall()]
            self._words_of_prefix[prefix] = (
                "(" + " OR ".join(f'"{word}"' for word in words) + ")"
                if 0 < len(words) <= self.MAX_PREFIX_WORDS
                else self._match(clause)
            )
        return self._words_of_prefix[prefix]

    # --- Sources ----------------------------------------------------------------------

    def sources_matching_any(self, clauses: list[Clause], from_id: int = 0) -> SQL:
        # (No use for ``from_id``: SQLite needs no windows of newest ids.)
        words, phrases = words_and_phrases(clauses)
        parts, params = [], []
        if words:
            parts.append(
                "SELECT rowid FROM search_vocabulary_fts WHERE search_vocabulary_fts MATCH %s"
            )
            params.append(" OR ".join(self._source_match(c) for c in words))
        if phrases:
            parts.append(
                f"SELECT {_SOURCE} FROM search_segment_fts WHERE search_segment_fts MATCH %s"
            )
            params.append(" OR ".join(self._match(c) for c in phrases))
        return " UNION ".join(parts), params

    def segment_hits(self, clause: Clause, sources: str, first: str) -> SQL:
        # FTS5 seeks to ``first`` by rowid, and scores only the rows kept.
        return (
            f"SELECT {_SOURCE} AS source_id, rowid AS segment_id, {_KIND} AS kind,"
            " bm25(search_segment_fts) AS score"
            " FROM search_segment_fts WHERE search_segment_fts MATCH %s"
            f" AND rowid >= ({first}) * {SourceSegment.SEGMENT_ID_BASE}"
            f" AND {_SOURCE} IN ({sources})",
            [self._source_match(clause)],
        )

    def source_window(self, clauses: list[Clause]) -> NewestIds:
        return NewestIds()

    def newest_sources(self, rows: QuerySet, words: list[Clause]) -> SQL:
        match = " AND ".join(self._source_match(clause) for clause in words)
        return _newest(rows, "search_vocabulary_fts", match)

    def metadata_matches(self, rows: QuerySet, clauses: list[Clause], limit: int) -> SQL:
        # The metadata have an index of their own (migration 0006).
        fts = "search_metadata_fts"
        source = f"({fts}.rowid / {SourceSegment.SEGMENT_ID_BASE})"
        match = " AND ".join(self._match(clause) for clause in clauses)
        return _newest(rows, fts, match, limit, key=source, score=f"bm25({fts})")

    # --- Passages ---------------------------------------------------------------------

    def entries_matching_all(
        self, clauses: list[Clause], tag_words: TagWords | None = None, from_id: int = 0
    ) -> SQL:
        terms = [self._match(c) for c in clauses]
        for names in tag_words or ():
            terms.append("(" + " OR ".join(f'tags : "{" ".join(w)}"' for w in names) + ")")
        return (
            "SELECT rowid FROM search_annotation_fts WHERE search_annotation_fts MATCH %s",
            [" AND ".join(terms)],
        )

    def entries_matching_any(self, clauses: list[Clause]) -> SQL:
        return (
            "SELECT rowid FROM search_annotation_fts WHERE search_annotation_fts MATCH %s",
            [" OR ".join(self._match(c) for c in clauses)],
        )

    def entry_hits(self, clauses: list[Clause], entries: str, first: str) -> SQL:
        return (
            "SELECT rowid AS id, bm25(search_annotation_fts, 1.0, 1.0, 2.0) AS score"
            " FROM search_annotation_fts WHERE search_annotation_fts MATCH %s"
            # (rowid + 0): a filter on the rows of the range scan, not one MATCH per id.
            f" AND rowid >= ({first}) AND (rowid + 0) IN ({entries})",
            [" AND ".join(self._match(c) for c in clauses)],
        )

    def passage_window(
        self,
        clauses: list[Clause],
        tag_words: TagWords | None = None,
        tag_ids: list[list[int]] | None = None,
    ) -> NewestIds:
        return NewestIds()

    def newest_entries(self, rows: QuerySet, clauses: list[Clause], tag_words: TagWords) -> SQL:
        _sql, params = self.entries_matching_all(clauses, tag_words)
        return _newest(rows, "search_annotation_fts", params[0])


def _newest(
    rows: QuerySet, fts: str, match: str, limit: int = 0, key: str = "", score: str = ""
) -> SQL:
    """The ids (``key``: the row's, by default) of the newest ``limit`` (one past the most
    shown, by default) of the index ``fts``'s matches that are among ``rows``; and with a
    ``score``, each one's. ``rows`` should check each row by a probe (``access``): as a
    set, the rule would cost a list of every visible source, built before the first row."""
    key = key or f"{fts}.rowid"
    # The subquery names the index's table to find the row it checks (its own FROM shadows
    # the name only inside subqueries that read the index again).
    row = rows.filter(pk=RawSQL(key, ())).order_by().values("pk")
    sql, params = row.query.sql_with_params()
    columns = f"{key} AS pk" + (f", {score} AS score" if score else "")
    return (
        f"SELECT {columns} FROM {fts} WHERE {fts} MATCH %s AND EXISTS ({sql})"
        f" ORDER BY {fts}.rowid DESC LIMIT {int(limit or limits.MAX_RESULTS + 1)}",
        [match, *params],
    )
