"""Where a search matched: each clause found again in a text, marked, and a short snippet
around the best matches.

The words are folded as the index folds them (``search.index``), so what is marked is what
the engine matched.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from typing import Literal, NamedTuple, overload

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from search.index import fold_in_place, word_spans
from search.query.parsing import Clause

SNIPPET_CHARS = 240
SNIPPET_LEAD = 70


# (start, end, clause number) of a match in a text: a plain tuple, as a page makes them by
# the thousand.
Match = tuple[int, int, int]


class Link(NamedTuple):
    """A link over ``text[start:end]``: a citation key in a note."""

    start: int
    end: int
    href: str
    title: str


def find_matches(text: str, clauses: list[Clause]) -> list[Match]:
    """Every match of a clause in ``text``, in order."""
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


def highlight(text: str, clauses: list[Clause]) -> SafeString:
    """All of ``text``, escaped, with the matched words marked."""
    return _escaped(_marked(text, find_matches(text, clauses), 0, len(text)))


@overload
def make_snippet(
    text: str, clauses: list[Clause], fallback: Literal[True], links: list[Link] | None = None
) -> tuple[SafeString, tuple[int, int] | None]: ...


@overload
def make_snippet(
    text: str, clauses: list[Clause], fallback: bool = False, links: list[Link] | None = None
) -> tuple[SafeString | None, tuple[int, int] | None]: ...


def make_snippet(
    text: str, clauses: list[Clause], fallback: bool = False, links: list[Link] | None = None
) -> tuple[SafeString | None, tuple[int, int] | None]:
    """A short, escaped passage of ``text`` around its best matches, matches marked, and
    ``links`` (apart, in order) linked; and the (start, end) of the first match shown.
    Without a match: the opening of ``text`` if ``fallback``, else None."""
    links = links or []
    matches = find_matches(text, clauses)
    if not matches:
        if not fallback:
            return None, None
        end = _word_end(text, SNIPPET_CHARS) if len(text) > SNIPPET_CHARS else len(text)
        opening = _marked(text, [], 0, end, links)
        return _escaped(opening + ("…" if end < len(text) else "")), None
    # The window holding the most different clauses, then the most matches.
    best, best_key = 0, (-1, -1)
    for i, (m_start, _, _) in enumerate(matches[:200]):
        reach = m_start + SNIPPET_CHARS - SNIPPET_LEAD
        inside = _starting_before(matches[i : i + 50], reach)
        key = (len({m[2] for m in inside if m[1] <= reach}), len(inside))
        if key > best_key:
            best, best_key = i, key
    first = matches[best]
    first_start, first_end, _ = first
    start = max(0, first_start - SNIPPET_LEAD)
    if start:
        start = _word_start(text, start, first_start)
    end = min(len(text), start + SNIPPET_CHARS)
    if end < len(text):
        end = max(_word_end(text, end), first_end)
    html = _marked(text, matches, start, end, links).strip()
    html = ("…" if start else "") + html + ("…" if end < len(text) else "")
    return _escaped(" ".join(html.split())), (first_start, first_end)


def _starting_before(matches: list[Match], reach: int) -> list[Match]:
    """The leading ``matches`` that start before ``reach``."""
    return list(itertools.takewhile(lambda m: m[0] < reach, matches))


def _escaped(html: str) -> SafeString:
    """HTML that ``_marked`` built: every piece of text in it went through ``escape``."""
    # Safe: built only by _marked, which escapes every piece of the text.
    return mark_safe(html)  # noqa: S308


@lru_cache(maxsize=256)
def _clause_pattern(clause: Clause) -> re.Pattern:
    """A regex for the clause over folded text: whole words, any separators between them."""
    words = [re.escape(w) for w in clause.words]
    if clause.prefix:
        words[-1] += r"[^\W_]*"
    return re.compile(r"(?<![^\W_])" + r"[\W_]+".join(words) + r"(?![^\W_])")


def _find_matches_word_by_word(text: str, clauses: list[Clause]) -> list[Match]:
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
    text: str, matches: list[Match], start: int, end: int, links: list[Link] | None = None
) -> str:
    """Escaped ``text[start:end]`` with each match inside it wrapped in <mark>, and each of
    ``links`` (apart, in order) in a link."""
    if links:
        return _linked(text, matches, start, end, links)
    out: list[str] = []
    pos = start
    for m_start, m_end, _ in matches:
        if m_end <= pos or m_start >= end:
            continue
        m_start = max(m_start, pos)
        out.append(escape(text[pos:m_start]))
        out.append(f"<mark>{escape(text[m_start : min(m_end, end)])}</mark>")
        pos = min(m_end, end)
    out.append(escape(text[pos:end]))
    return "".join(out)


def _linked(text: str, matches: list[Match], start: int, end: int, links: list[Link]) -> str:
    """``_marked`` with links: cut at every edge of a match or a link, each piece marked if
    it lies in a match, and the pieces of one link kept in one <a> (a match never crosses a
    link's edge, since a key is whole words, but a mark is closed at one if it did)."""
    matches = [m for m in matches if m[1] > start and m[0] < end]
    links = [link for link in links if link.end > start and link.start < end]
    cuts = {start, end}
    edges = [(m_start, m_end) for m_start, m_end, _ in matches]
    edges += [(link.start, link.end) for link in links]
    for edge_start, edge_end in edges:
        cuts.update(p for p in (edge_start, edge_end) if start < p < end)
    points = sorted(cuts)
    out, current = [], None
    for a, b in itertools.pairwise(points):
        link = next((lk for lk in links if lk.start <= a and b <= lk.end), None)
        if link is not current:
            if current is not None:
                out.append("</a>")
            if link is not None:
                out.append(f'<a href="{escape(link.href)}" title="{escape(link.title)}">')
            current = link
        piece = escape(text[a:b])
        in_match = any(m_start <= a and b <= m_end for m_start, m_end, _ in matches)
        out.append(f"<mark>{piece}</mark>" if in_match else piece)
    if current is not None:
        out.append("</a>")
    return "".join(out)


def _word_start(text: str, pos: int, limit: int) -> int:
    """The start of the first whole word at or after ``pos`` (not beyond ``limit``)."""
    space = text.find(" ", pos, limit)
    return space + 1 if space != -1 else pos


def _word_end(text: str, pos: int) -> int:
    space = text.rfind(" ", 0, pos)
    return space if space > pos - 40 else pos
