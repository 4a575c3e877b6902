"""PostgreSQL: tsvector columns with GIN indexes made by ``search`` migration 0002.

A GIN index yields every match of a word before any can be sorted newest first: for a word
in thousands of rows, reading each row found costs more than reading the index. So a
search reads the matches among the newest ids first (the index and the id range combined),
in a window as wide as the planner's estimate of how many rows match says should hold half
as many again as can be shown (at least 2,000 ids); and further back only if it must.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.expressions import RawSQL

from annotations.models import Annotation, TaggedAnnotation
from archive.models import Source
from search.query import limits
from search.query.engine import SQL, NewestIds, TagWords, words_and_phrases
from search.query.parsing import Clause


class PostgreSQLEngine:
    reads_newest_first = False
    # A window holds few enough matches that each is best checked in turn.
    probes_each_match = True

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

    def _entries_tsquery(self, clauses: list[Clause], tag_words: TagWords | None) -> str:
        terms = [self._entry_tsquery(c) for c in clauses]
        for names in tag_words or ():  # tags carry weight A
            terms.append("(" + " | ".join(self._tsquery(Clause(w), "A") for w in names) + ")")
        return " & ".join(terms)

    # --- Sources ----------------------------------------------------------------------

    def sources_matching_any(self, clauses: list[Clause], from_id: int = 0) -> SQL:
        words, phrases = words_and_phrases(clauses)
        parts, params = [], []
        if words:
            parts.append(f"SELECT {_matches_from('search_vocabulary_sources', from_id)}")
            params.append(" | ".join(self._tsquery(c) for c in words))
        if phrases:
            parts.append(
                "SELECT s.source_id FROM search_sourcesegment s WHERE s.document @@ %s::tsquery"
                f" AND s.source_id >= {int(from_id)}"
            )
            params.append(" | ".join(self._tsquery(c) for c in phrases))
        return " UNION ".join(parts), params

    def segment_hits(self, clause: Clause, sources: str, first: str) -> SQL:
        # (No use for ``first``: a range of ids only adds work to PostgreSQL's plans.)
        q = self._tsquery(clause)
        return (
            "SELECT s.source_id, s.id AS segment_id, s.kind,"
            " -ts_rank(s.document, %s::tsquery, 1) AS score"
            " FROM search_sourcesegment s WHERE s.document @@ %s::tsquery"
            f" AND s.source_id IN ({sources})",
            [q, q],
        )

    def source_window(self, clauses: list[Clause]) -> NewestIds:
        words, phrases = words_and_phrases(clauses)
        if phrases:
            # Counted in stretches of text holding every phrase, not in sources: rough
            # either way (a window too narrow widens), and for a rare phrase few enough to
            # read every id at once.
            q = " & ".join(self._tsquery(c) for c in phrases)
            estimate = "SELECT 1 FROM search_sourcesegment WHERE document @@ %s::tsquery", [q]
        else:
            q = " & ".join(self._tsquery(c) for c in words)
            estimate = "SELECT 1 FROM search_sourcevocabulary WHERE document @@ %s::tsquery", [q]
        return _window(Source, estimate)

    def newest_sources(self, rows: QuerySet, words: list[Clause]) -> SQL:
        raise NotImplementedError("A GIN index yields matches in no order.")

    def metadata_matches(self, rows: QuerySet, clauses: list[Clause], limit: int) -> SQL:
        # The metadata rows have a GIN index of their own (migration 0006).
        q = " & ".join(self._tsquery(c) for c in clauses)
        row = rows.filter(pk=RawSQL("m.source_id", ())).order_by().values("pk")
        sql, params = row.query.sql_with_params()
        # Matched first, in the metadata's own index (the planner, whose statistics are
        # those of every row, expects a word in a title to be as common as in texts); then
        # each checked in turn (a scalar subquery: never made a join over every source).
        return (
            "WITH m AS MATERIALIZED (SELECT id, source_id FROM search_sourcesegment"
            " WHERE kind = 'meta' AND document @@ %s::tsquery),"
            f" newest AS (SELECT id, source_id FROM m WHERE (SELECT EXISTS ({sql}))"
            f" ORDER BY source_id DESC LIMIT {int(limit)})"
            " SELECT newest.source_id, -ts_rank(s.document, %s::tsquery, 1)"
            " FROM newest JOIN search_sourcesegment s ON s.id = newest.id"
            " ORDER BY newest.source_id DESC",
            [q, *params, q],
        )

    # --- Passages ---------------------------------------------------------------------

    def entries_matching_all(
        self, clauses: list[Clause], tag_words: TagWords | None = None, from_id: int = 0
    ) -> SQL:
        function = _matches_from("search_entry_annotations", from_id)
        return f"SELECT {function}", [self._entries_tsquery(clauses, tag_words)]

    def entries_matching_any(self, clauses: list[Clause]) -> SQL:
        q = " | ".join(self._entry_tsquery(c) for c in clauses)
        return "SELECT search_entry_annotations(%s::tsquery)", [q]

    def entry_hits(self, clauses: list[Clause], entries: str, first: str) -> SQL:
        q = " & ".join(self._entry_tsquery(c) for c in clauses)
        return (
            "SELECT e.annotation_id AS id, -ts_rank(e.document, %s::tsquery) AS score"
            " FROM search_annotationentry e WHERE e.document @@ %s::tsquery"
            f" AND e.annotation_id IN ({entries})",
            [q, q],
        )

    def passage_window(
        self,
        clauses: list[Clause],
        tag_words: TagWords | None = None,
        tag_ids: list[list[int]] | None = None,
    ) -> NewestIds:
        """``tag_ids``: the ids each tag filter names (``Filters.tag_ids``). The planner
        takes the words of a tag's name as found apart from each other, and so guesses far
        too few entries holding a word and a tag of two words (bench/NOTES.md); each tag's
        use is estimated from its own rows instead, as independent of the words."""
        q = self._entries_tsquery(clauses, None if tag_ids else tag_words)
        estimate = "SELECT 1 FROM search_annotationentry WHERE document @@ %s::tsquery", [q]
        tagging = TaggedAnnotation._meta.db_table
        shares = [
            (f'SELECT 1 FROM "{tagging}" WHERE tag_id = ANY(%s)', [ids]) for ids in tag_ids or ()
        ]
        return _window(Annotation, estimate, shares)

    def newest_entries(self, rows: QuerySet, clauses: list[Clause], tag_words: TagWords) -> SQL:
        raise NotImplementedError("A GIN index yields matches in no order.")


def _matches_from(function: str, from_id: int) -> str:
    """A matching function (migration 0004), reading only from ``from_id`` on."""
    return f"{function}(%s::tsquery, {int(from_id)})" if from_id else f"{function}(%s::tsquery)"


def _window(model: type[Model], estimate: SQL, shares: list[SQL] | None = None) -> NewestIds:
    """The window of the newest ids of ``model`` that should hold half as many again as can
    be shown of the rows ``estimate`` (SQL) matches, as the planner estimates them; and of
    those, the share that meets each of ``shares`` (SQL over rows of ``model``, taken as
    independent)."""
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT MIN("{pk}"), MAX("{pk}") FROM "{table}"')
        lowest, highest = (n or 0 for n in cursor.fetchone())

        def planned(sql: str, params: list) -> float:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            return cursor.fetchone()[0][0]["Plan"]["Plan Rows"]

        rows = planned(*estimate)
        if shares:
            every = max(1.0, planned(f'SELECT 1 FROM "{table}"', []))
            for share in shares:
                rows *= min(1.0, planned(*share) / every)
    wanted = limits.MAX_RESULTS + 1
    width = max(
        2 * limits.MAX_RESULTS, 3 * wanted * (highest - lowest + 1) // (2 * max(1, int(rows)))
    )
    if shares and 2 * width > highest - lowest + 1:
        # Over most ids, the range costs more than the matches it leaves out (bench/NOTES.md).
        width = highest - lowest + 1
    return NewestIds(lowest, highest, width)
