"""The one small interface both search engines offer (``sqlite``, ``postgresql``).

Each method writes SQL, with its parameters, from clauses (``parsing``) and from SQL the
caller embeds (a set of ids, a first id); none runs a search by itself. ``finding`` puts
the pieces together with the access rule and the filters, the same way for both engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.db.models import QuerySet

from search.query.parsing import Clause

SQL = tuple[str, list]  # a statement (or a part of one) and its parameters

# For each tag filter, the words of every tag it may name: an annotation carrying one of
# them has those words in a row in its index entry's tags (``filters.tag_words``).
TagWords = list[list[tuple[str, ...]]]


@dataclass(frozen=True)
class NewestIds:
    """Where to read matches from first (``ranking.count_and_rank``): the ``width`` newest
    ids of ``lowest``..``highest``, then further back only if too few match. The default,
    ``highest`` 0, is every id at once."""

    lowest: int = 0
    highest: int = 0
    width: int = 0

    @property
    def is_every_id(self) -> bool:
        return self.highest - self.width <= self.lowest


class Engine(Protocol):
    # Whether the engine yields a word's matches newest first, so that a statement can
    # stop one past the limit (``newest_sources``, ``newest_entries``); else it reads
    # windows of the newest ids (``source_window``, ``passage_window``).
    reads_newest_first: bool
    # Whether a few matches read in a window are each checked against the access rule by
    # a probe, rather than against the set of visible rows (``access``).
    probes_each_match: bool

    # Sources: their metadata and stretches of text (segments), and their vocabulary.
    def sources_matching_any(self, clauses: list[Clause], from_id: int = 0) -> SQL:
        """Ids of the sources (from ``from_id`` on) that any of the clauses matches."""

    def segment_hits(self, clause: Clause, sources: str, first: str) -> SQL:
        """(source_id, segment_id, kind, score) of each segment the clause matches, in the
        sources that the SQL ``sources`` selects, none below source ``first`` (SQL)."""

    def source_window(self, clauses: list[Clause]) -> NewestIds:
        """The newest source ids to read the clauses' matches in first."""

    def newest_sources(self, rows: QuerySet, words: list[Clause]) -> SQL:
        """Ids of the newest of ``rows`` whose vocabulary holds every one of ``words``
        (clauses of one word or prefix), up to one past the limit."""

    def metadata_matches(self, rows: QuerySet, clauses: list[Clause], limit: int) -> SQL:
        """(id, score) of the newest ``limit`` of ``rows`` whose metadata every clause
        matches, newest first."""

    # Passages: one index entry per annotation (its tags, quote and note).
    def entries_matching_all(
        self, clauses: list[Clause], tag_words: TagWords | None = None, from_id: int = 0
    ) -> SQL:
        """Ids of the annotations (from ``from_id`` on) that every clause matches, and
        the words of one tag of each filter in ``tag_words``."""

    def entries_matching_any(self, clauses: list[Clause]) -> SQL:
        """Ids of the annotations that any of the clauses matches."""

    def entry_hits(self, clauses: list[Clause], entries: str, first: str) -> SQL:
        """(id, score) of the annotations the SQL ``entries`` selects that every clause
        matches, none below ``first`` (SQL)."""

    def passage_window(
        self,
        clauses: list[Clause],
        tag_words: TagWords | None = None,
        tag_ids: list[list[int]] | None = None,
    ) -> NewestIds:
        """The newest annotation ids to read the matches in first; ``tag_ids``: the ids
        each tag filter names."""

    def newest_entries(self, rows: QuerySet, clauses: list[Clause], tag_words: TagWords) -> SQL:
        """Ids of the newest of ``rows`` that every clause (and ``tag_words``) matches, up
        to one past the limit."""


def words_and_phrases(clauses: list[Clause]) -> tuple[list[Clause], list[Clause]]:
    """Clauses of one word (or prefix), which a source's vocabulary answers, and phrases,
    which need the positions in its stretches of text."""
    return [c for c in clauses if len(c.words) == 1], [c for c in clauses if len(c.words) > 1]
