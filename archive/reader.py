"""Render a text layer as HTML that the browser can map back to code-point offsets.

Every text run is a leaf element carrying ``data-o``, its starting offset in the text layer;
a script turns a DOM selection into offsets by adding the code points before the selection
point in that run. Highlights are rendered here on the server, so reading needs no JavaScript.
Runs are split at every annotation boundary, so overlapping and nested highlights become flat
runs that each list every annotation covering them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

HEADING_SHIFT = {"h1": "h2", "h2": "h3", "h3": "h4", "h4": "h5", "h5": "h6", "h6": "h6"}
BLOCK_TAGS = {"p", "li", "pre", "td", "th", "caption", "figcaption"} | set(HEADING_SHIFT)


class Anchored(Protocol):
    start: int
    end: int

    @property
    def uuid(self) -> object: ...


def render_text_layer(
    text: str,
    blocks: Sequence[dict],
    annotations: Iterable[Anchored] = (),
    mark: tuple[int, int] | None = None,
) -> SafeString:
    """HTML for the whole text layer; ``mark`` is a passage to show as targeted."""
    anns = sorted(annotations, key=lambda a: (a.start, -a.end))
    out: list[str] = []
    wrappers: list[tuple[str, object]] = []  # open containers: (tag, group id)
    pointer = 0
    active: list[Anchored] = []
    for block in blocks:
        s, e = block["s"], block["e"]
        while pointer < len(anns) and anns[pointer].start < e:
            active.append(anns[pointer])
            pointer += 1
        active = [a for a in active if a.end > s]
        _sync_wrappers(out, wrappers, _wanted_wrappers(block))
        out.append(_render_block(text, block, [a for a in active if a.start < e], mark))
    _sync_wrappers(out, wrappers, [])
    return mark_safe("".join(out))  # noqa: S308 - every text run is escaped in _runs


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


def _sync_wrappers(out: list[str], open_: list[tuple[str, object]], wanted: list) -> None:
    common = 0
    while common < len(open_) and common < len(wanted) and open_[common] == wanted[common]:
        common += 1
    while len(open_) > common:
        tag, _ = open_.pop()
        out.append(f"</{tag}>")
    for tag, group in wanted[common:]:
        out.append(f"<{tag}>")
        open_.append((tag, group))


def _render_block(text: str, block: dict, anns: list[Anchored], mark) -> str:
    kind = block.get("t", "p")
    tag = HEADING_SHIFT.get(kind, kind if kind in BLOCK_TAGS else "p")
    css = "blk"
    if kind == "figcaption":
        tag, css = "p", "blk figcaption"
    if "depth" in block and block["depth"] > 1:
        css += f" depth-{min(block['depth'], 6)}"
    s, e = block["s"], block["e"]
    links = block.get("links") or []
    parts = [f'<{tag} class="{css}" data-s="{s}" data-e="{e}">']
    cursor = s
    for ls, le, href in links:
        if ls > cursor:
            parts.append(_runs(text, cursor, ls, anns, mark))
        parts.append(
            f'<a href="{escape(href)}" rel="nofollow noopener noreferrer">'
            f"{_runs(text, ls, le, anns, mark)}</a>"
        )
        cursor = le
    if cursor < e:
        parts.append(_runs(text, cursor, e, anns, mark))
    parts.append(f"</{tag}>")
    return "".join(parts)


def _runs(text: str, s: int, e: int, anns: list[Anchored], mark) -> str:
    cuts = {s, e}
    for a in anns:
        if s < a.start < e:
            cuts.add(a.start)
        if s < a.end < e:
            cuts.add(a.end)
    if mark:
        for point in mark:
            if s < point < e:
                cuts.add(point)
    points = sorted(cuts)
    html: list[str] = []
    for a_, b_ in zip(points, points[1:], strict=False):
        covering = [a for a in anns if a.start <= a_ and a.end >= b_]
        chunk = escape(text[a_:b_])
        marked = mark is not None and mark[0] <= a_ and b_ <= mark[1]
        passage = ' data-passage=""' if marked else ""
        if covering:
            ids = " ".join(str(a.uuid) for a in covering)
            depth = min(len(covering), 4)
            html.append(
                f'<mark class="hl hl-{depth}" data-o="{a_}" data-anns="{ids}"{passage}>'
                f"{chunk}</mark>"
            )
        elif marked:
            html.append(f'<mark class="passage" data-o="{a_}"{passage}>{chunk}</mark>')
        else:
            html.append(f'<span data-o="{a_}">{chunk}</span>')
    return "".join(html)
