"""Searching: what people type, how each engine is asked, and where each result matched.

Read in this order:

- ``parsing``: the query typed, made into clauses (words, "phrases", prefix*, -exclusions).
- ``filters``: collection, tags, author, dates...; ``access``: the access rule shaped as a
  probe for the few rows an index of words found.
- ``engine``: the small interface both engines offer; ``sqlite`` (FTS5) and ``postgresql``
  (tsvector and GIN) write their SQL from clauses, never from the raw input.
- ``finding``: a search put together (``search``); ``ranking``: counting and scoring in
  windows of the newest ids; ``limits``: how much a search reads and shows.
- ``results``: pages of sources and passages; ``snippets``: where each matched, marked.
- ``cooccurrence``: tags applied to the same or overlapping passages.

The SQL is put together from constants, table names and ORM-compiled querysets; what a
person types reaches the database only as query parameters, and only as folded words
(letters and digits) at that.
"""

from search.query.cooccurrence import TagPair, tag_cooccurrence
from search.query.filters import Filters
from search.query.finding import SORTS, search
from search.query.parsing import Clause, Query, QueryError, parse_query
from search.query.results import PassageResult, ResultPage, Results, SourceResult, passage_url
from search.query.snippets import find_matches, highlight, make_snippet

__all__ = [
    "SORTS",
    "Clause",
    "Filters",
    "PassageResult",
    "Query",
    "QueryError",
    "ResultPage",
    "Results",
    "SourceResult",
    "TagPair",
    "find_matches",
    "highlight",
    "make_snippet",
    "parse_query",
    "passage_url",
    "search",
    "tag_cooccurrence",
]
