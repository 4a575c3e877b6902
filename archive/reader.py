"""Render a text layer as HTML that the browser can map back to code-point offsets.

Every text run is a leaf element carrying ``data-o``, its starting offset in the text layer;
a script turns a DOM selection into offsets by adding the code points before the selection
point in that run. Highlights are rendered here on the server, so reading needs no JavaScript.
Runs are split at every annotation boundary, so overlapping and nested highlights become flat
runs that each list every annotation covering them.

The markup around the runs (blocks, lists, quotes, tables, links) depends only on the text
layer, which never changes once stored: it is laid out once per source and remembered
(``text_layout``), and each page only cuts the stretches of text at its highlights.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from html import escape  # Django's escape is this, plus a lazy-string wrapper's cost per call
from threading import Lock
from typing import Protocol

from django.utils.safestring import SafeString, mark_safe

from archive.divisions import Division

HEADING_SHIFT = {"h1": "h2", "h2": "h3", "h3": "h4", "h4": "h5", "h5": "h6", "h6": "h6"}
BLOCK_TAGS = {"p", "li", "pre", "td", "th", "caption", "figcaption"} | set(HEADING_SHIFT)

# Layouts kept in memory, counted in code points of their text layers (a layout holds its
# text once, escaped, plus the markup): the most recently read sources, at most this much.
LAYOUT_CACHE_CHARS = 8_000_000


class Anchored(Protocol):
    start: int
    end: int

    @property
    def uuid(self) -> object: ...


# A layout: markup (str) and stretches of text (start, end, the stretch as one plain run).
Layout = list[str | tuple[int, int, str]]


def render_text_layer(
    text: str,
    blocks: Sequence[dict],
    annotations: Iterable[Anchored] = (),
    mark: tuple[int, int] | None = None,
    *,
    layout_key: Hashable | None = None,
    pages: Sequence[Division] = (),
) -> SafeString:
    """HTML for the whole text layer; ``mark`` is a passage to show as targeted, ``pages``
    where the text layer's pages (or chapters) start (each gets a quiet "p. 12", "ch. 3").

    ``layout_key`` names this text layer for ``text_layout``'s memory; it must change
    whenever the text, blocks or pages could (a source's id and digest do).
    """
    layout = text_layout(text, blocks, layout_key, pages)
    anns = sorted(annotations, key=lambda a: (a.start, -a.end))
    # Every offset where a run ends: each highlight's start and end, and the passage's.
    points = sorted({p for a in anns for p in (a.start, a.end)}.union(mark or ()))
    out: list[str] = []
    # Highlights covering the current offset, in (start, -end) order; the offset only grows.
    active: list[Anchored] = []
    waiting = 0  # anns[waiting:] start later
    named = False  # the passage's first run has its id
    count = len(anns)
    for item in layout:
        if item.__class__ is str:
            out.append(item)  # type: ignore[arg-type]
            continue
        s, e, plain = item  # type: ignore[misc]
        cut_from = bisect_right(points, s)
        cut_to = bisect_left(points, e, cut_from)
        while waiting < count and anns[waiting].start <= s:
            active.append(anns[waiting])
            waiting += 1
        if active:
            active = [a for a in active if a.end > s]
        if cut_from == cut_to and not active and (mark is None or not mark[0] <= s < mark[1]):
            out.append(plain)
            continue
        run_start = s
        for run_end in [*points[cut_from:cut_to], e]:
            if run_start > s:
                while waiting < count and anns[waiting].start <= run_start:
                    active.append(anns[waiting])
                    waiting += 1
                if active:
                    active = [a for a in active if a.end > run_start]
            chunk = escape(text[run_start:run_end])
            marked = mark is not None and mark[0] <= run_start and run_end <= mark[1]
            passage = ' data-passage=""' if marked else ""
            if marked and not named:
                # The passage's first run is where a link's #passage lands, with or without
                # JavaScript.
                passage, named = ' id="passage" data-passage=""', True
            if active:
                ids = " ".join(str(a.uuid) for a in active)
                # A code's colour (a name from a fixed palette) shows where one annotation
                # alone covers the text; overlaps keep the deepening yellow that counts them.
                colour = getattr(active[0], "colour", "") if len(active) == 1 else ""
                shade = f" code-{colour}" if colour else ""
                out.append(
                    f'<mark class="hl hl-{min(len(active), 4)}{shade}" data-o="{run_start}"'
                    f' data-anns="{ids}"{passage}>{chunk}</mark>'
                )
            elif marked:
                out.append(f'<mark class="passage" data-o="{run_start}"{passage}>{chunk}</mark>')
            else:
                out.append(f'<span data-o="{run_start}">{chunk}</span>')
            run_start = run_end
    return mark_safe("".join(out))  # noqa: S308 - every text run is escaped


_layouts: OrderedDict[Hashable, tuple[Layout, int]] = OrderedDict()
_layouts_size = 0
_layouts_lock = Lock()


def text_layout(
    text: str,
    blocks: Sequence[dict],
    key: Hashable | None = None,
    pages: Sequence[Division] = (),
) -> Layout:
    """The text layer's markup and stretches of text, remembered under ``key`` if given."""
    global _layouts_size
    if key is None:
        return _lay_out(text, blocks, pages)
    with _layouts_lock:
        found = _layouts.get(key)
        if found is not None:
            _layouts.move_to_end(key)
            return found[0]
    layout = _lay_out(text, blocks, pages)
    size = len(text)
    if size <= LAYOUT_CACHE_CHARS // 4:
        with _layouts_lock:
            if key not in _layouts:
                _layouts[key] = (layout, size)
                _layouts_size += size
            while _layouts_size > LAYOUT_CACHE_CHARS:
                _, (_, dropped) = _layouts.popitem(last=False)
                _layouts_size -= dropped
    return layout


def _lay_out(text: str, blocks: Sequence[dict], pages: Sequence[Division] = ()) -> Layout:
    out: Layout = []
    next_page = 0
    wrappers: list[tuple[str, object]] = []  # open containers: (tag, group id)

    def stretch(s: int, e: int) -> None:
        if s != e:
            s, e = min(s, e), max(s, e)
            out.append((s, e, f'<span data-o="{s}">{escape(text[s:e])}</span>'))

    for block in blocks:
        if next_page < len(pages) and pages[next_page].start <= block["s"]:
            # A mark is no list item or table row: the chapter's lists and tables close first.
            _sync_wrappers(out, wrappers, [])
        while next_page < len(pages) and pages[next_page].start <= block["s"]:
            out.append(_page_mark(pages[next_page]))
            next_page += 1
        _sync_wrappers(out, wrappers, _wanted_wrappers(block))
        kind = block.get("t", "p")
        tag = HEADING_SHIFT.get(kind, kind if kind in BLOCK_TAGS else "p")
        css = "blk"
        if kind == "figcaption":
            tag, css = "p", "blk figcaption"
        if "depth" in block and block["depth"] > 1:
            css += f" depth-{min(block['depth'], 6)}"
        s, e = block["s"], block["e"]
        out.append(f'<{tag} class="{css}" data-s="{s}" data-e="{e}">')
        cursor = s
        for ls, le, href in block.get("links") or []:
            if ls > cursor:
                stretch(cursor, ls)
            out.append(f'<a href="{escape(href)}" rel="nofollow noopener noreferrer">')
            stretch(ls, le)
            out.append("</a>")
            cursor = le
        if cursor < e:
            stretch(cursor, e)
        out.append(f"</{tag}>")
    _sync_wrappers(out, wrappers, [])
    # Markup between two stretches as one string: fewer items to walk on every page.
    merged: Layout = []
    for item in out:
        if isinstance(item, str) and merged and isinstance(merged[-1], str):
            merged[-1] += item
        else:
            merged.append(item)
    return merged


def _page_mark(page: Division) -> str:
    # Outside every text run (no data-o) and not selectable: a selection across it, and the
    # quote it makes, hold only the text layer's own code points.
    label = escape(page.label)
    if page.unit != "page":
        # A chapter's start is no page break: a quiet mark a screen reader names in words.
        return (
            f'<div class="page-mark" id="{page.unit}-{page.number}"'
            f' aria-label="{page.unit} {label}">{escape(page.mark)}</div>'
        )
    return (
        f'<div class="page-mark" id="page-{page.number}" role="doc-pagebreak"'
        f' aria-label="page {label}">p. {label}</div>'
    )


def _wanted_wrappers(block: dict) -> list[tuple[str, object]]:
    wanted: list[tuple[str, object]] = []
    if "quote" in block:
        wanted.append(("blockquote", block["quote"]))
    if "list" in block:
        kind, list_id = block["list"]
        wanted.append((kind if kind in ("ul", "ol") else "ul", list_id))
    if "table" in block:
        wanted.append(("table", block["table"]))
        if block["t"] != "caption":
            wanted.append(("tr", (block["table"], block.get("row", 0))))
    return wanted


def _sync_wrappers(out: Layout, open_: list[tuple[str, object]], wanted: list) -> None:
    common = 0
    while common < len(open_) and common < len(wanted) and open_[common] == wanted[common]:
        common += 1
    while len(open_) > common:
        tag, _ = open_.pop()
        out.append(f"</{tag}>")
    for tag, group in wanted[common:]:
        out.append(f"<{tag}>")
        open_.append((tag, group))
