"""What people type, made into clauses: words, "phrases", prefix*, and -exclusions.

The engines write their queries from these clauses, never from the raw input: nothing a
person types can reach FTS5's MATCH or PostgreSQL's tsquery syntax. Every word goes
through the same folding as the indexed text (``search.index``), so both engines match the
same rows, and the highlighter finds the very words the engine matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from search.index import index_words

MAX_QUERY_LENGTH = 500
MAX_CLAUSES = 12
MIN_PREFIX_LENGTH = 2
QUOTE_MARKS = '"“”„«»'
# Left out of a search when other words are given: they match nearly every text, so they
# only slow the search down. Quoted ("the") they are searched for.
STOP_WORDS = frozenset(
    # One sentence of words reads better than 44 quoted strings (hence SIM905's waiver).
    "a an and are as at be but by for from has have he her his in is it its of on or she"  # noqa: SIM905
    " that the their they this to was were which with".split()
)


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
