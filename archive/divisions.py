"""The pages of a PDF's text layer (or the chapters of a book's): where each begins and ends.

Stored on a source as ``divisions``: ``{"unit": "page", "spans": [[start, end, label], ...]}``,
one span per page in the document's order; page n covers code points [start, end) of the
text layer, the spans partition it, and a page without text covers none (start == end).
``label`` is the page as printed ("iv", "12"); its position (from 1) is the physical page
number that a PDF fragment (RFC 3778 ``page=``) names. A source without pages has ``{}``.

A chapter-divided text layer (an EPUB book) has the same shape with the unit "chapter", each
chapter labelled by its number; a unit's locator labels are CSL's ("page", "chapter"). Only
pages name a place in the original file (a PDF fragment); a chapter's would be an EPUB CFI,
which needs the path to an element of the chapter's own markup, not kept here.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

# How a locator names one unit and a range of them: "p. 12", "pp. 12–13".
ABBREVIATIONS = {"page": ("p.", "pp."), "chapter": ("ch.", "chs.")}


@dataclass(frozen=True)
class Division:
    number: int  # from 1, in the document's order
    label: str
    start: int
    end: int
    unit: str = "page"

    @property
    def mark(self) -> str:
        """How the reading page marks where it starts: "p. 12", "ch. 3"."""
        return f"{ABBREVIATIONS[self.unit][0]} {self.label}"


class Divisions:
    def __init__(self, stored: dict | None) -> None:
        stored = stored or {}
        self.unit: str = stored.get("unit", "")
        self.spans: list[list] = stored.get("spans", []) if self.unit in ABBREVIATIONS else []
        self._starts = [span[0] for span in self.spans]

    def __bool__(self) -> bool:
        return bool(self.spans)

    def covering(self, start: int, end: int) -> list[Division]:
        """The divisions a passage [start, end) lies on (the one holding ``start`` when the
        passage is empty)."""
        if not self.spans:
            return []
        first = max(bisect_right(self._starts, start) - 1, 0)
        stop = max(end, start + 1)
        found = []
        for index in range(first, len(self.spans)):
            s, e, label = self.spans[index]
            if s >= stop:
                break
            if e > s and e > start:  # an empty page holds no passage
                found.append(Division(index + 1, str(label), s, e))
        return found

    def locator(self, start: int, end: int) -> str:
        """How a citation names where the passage is: "p. 12", "pp. 12–13", or ""."""
        found = self.covering(start, end)
        if not found:
            return ""
        one, many = ABBREVIATIONS[self.unit]
        if len(found) == 1:
            return f"{one} {found[0].label}"
        return f"{many} {found[0].label}–{found[-1].label}"

    def labels(self, start: int, end: int) -> str:
        """The divisions' labels alone, as a column holds them: "12" or "12–13"."""
        found = self.covering(start, end)
        if not found:
            return ""
        if len(found) == 1:
            return found[0].label
        return f"{found[0].label}–{found[-1].label}"

    def cell(self, start: int, end: int) -> str:
        """What a spreadsheet's ``pages`` column holds: a page's labels alone ("12–13"), any
        other unit named ("ch. 3"), so a chapter's number is not read as a page."""
        if self.unit == "page":
            return self.labels(start, end)
        return self.locator(start, end)

    def pdf_fragment(self, start: int, end: int) -> str:
        """The RFC 3778 fragment of the page a passage starts on ("page=3", physical page
        numbers from 1), or "" for a source without pages."""
        found = self.covering(start, end) if self.unit == "page" else []
        return f"page={found[0].number}" if found else ""

    def starts(self) -> list[Division]:
        """Each division that holds text, where it starts: the reading page's page marks."""
        return [
            Division(index + 1, str(label), s, e, self.unit)
            for index, (s, e, label) in enumerate(self.spans)
            if e > s
        ]
