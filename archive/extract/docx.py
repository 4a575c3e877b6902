"""Extractor ``docx`` 1: a Word document's text layer (python-docx), in document order.

Headings (the "Title" style, then "Heading n" one level below it), paragraphs, list items
(numbered or bulleted, as the document's numbering or the paragraph's style says, nested by
their level), tables (a row marked to repeat as a header gives th cells) and footnotes.
python-docx has no footnote API: word/footnotes.xml is read through the document part's
relationship. A footnote's reference
is its number in brackets where it stands ("[1]"), and the notes follow the body under a
"Notes" heading, each starting with its number, so a quote of either reads as printed.

Deleted tracked changes are left out, inserted ones kept (the document as it now reads);
field codes are left out, their results kept. Text boxes' text stands where they are anchored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from archive.extract import DOCX_EXTRACTOR, Extraction, ExtractionError
from archive.extract.zipped import DOCX_TYPE, Package

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
FOOTNOTES = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes"
HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
# Control characters other than newline, and U+FFFE/U+FFFF (not characters).
UNPRINTABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f\ufffe\uffff]")
SAFE_SCHEMES = ("http://", "https://", "mailto:")


@dataclass
class Layer:
    """A text layer built block by block: blocks separated by a blank line."""

    parts: list[str] = field(default_factory=list)
    blocks: list[dict] = field(default_factory=list)
    length: int = 0

    def add(self, kind: str, pieces: list[tuple[str, str | None]], **attrs: Any) -> bool:
        """Add a block of (text, link) pieces; False when it holds no text."""
        raw = "".join(text for text, _ in pieces)
        lead = len(raw) - len(raw.lstrip())
        text = raw.strip()
        if not text:
            return False
        if self.blocks:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        block: dict = {"t": kind, "s": start, "e": start + len(text)}
        links: list[list] = []
        at = -lead
        for piece, href in pieces:
            s, e = max(at, 0), min(at + len(piece), len(text))
            at += len(piece)
            if href and e > s:
                if links and links[-1][2] == href and links[-1][1] == start + s:
                    links[-1][1] = start + e
                else:
                    links.append([start + s, start + e, href])
        if links:
            block["links"] = links
        block.update(attrs)
        self.blocks.append(block)
        self.parts.append(text)
        self.length += len(text)
        return True

    @property
    def text(self) -> str:
        return "".join(self.parts)


def extract_docx(package: Package) -> Extraction:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    # python-docx parses these parts itself (without entities, but silently): checked first,
    # so a part that declares entities or is not XML is refused in words.
    for name in sorted(package.names):
        if name.endswith((".xml", ".rels")):
            package.xml(name)
    package.file.seek(0)
    try:
        document = docx.Document(package.file)
        reader = _Reader(document, package)
        reader.body(document.element.body)
        reader.notes()
        metadata = core_metadata(document)
    except ExtractionError:
        raise
    except (PackageNotFoundError, KeyError, ValueError, AttributeError, TypeError) as exc:
        raise package.unreadable(str(exc) or type(exc).__name__) from None
    text = reader.layer.text
    if not text:
        raise ExtractionError("The Word document holds no text, so there is nothing to read.")
    return Extraction(
        media_type=DOCX_TYPE,
        encoding="",
        encoding_note="",
        text=text,
        blocks=reader.layer.blocks,
        extractor=DOCX_EXTRACTOR[0],
        extractor_version=DOCX_EXTRACTOR[1],
        metadata=metadata,
    )


class _Reader:
    def __init__(self, document: Any, package: Package) -> None:
        self.document = document
        self.package = package
        self.layer = Layer()
        self.rels = document.part.rels
        self.note_numbers: dict[str, int] = {}  # footnote id -> its number, in reference order
        self.next_group = 0
        self.list_group: tuple[str, int] | None = None  # the list the last block belonged to
        self.numbering = self._numbering()
        self.styles: dict[str, Any] = {}

    def group(self) -> int:
        self.next_group += 1
        return self.next_group

    # --- the body, in document order ---------------------------------------------------------
    def body(self, element: Any) -> None:
        for child in element:
            if child.tag == W + "p":
                self.paragraph(child)
            elif child.tag == W + "tbl":
                self.list_group = None
                self.table(child)
            elif child.tag == W + "sdt":  # a content control: its content in place
                content = child.find(W + "sdtContent")
                if content is not None:
                    self.body(content)

    def paragraph(self, p: Any) -> None:
        pieces = self.pieces(p)
        style = self.style_name(p)
        heading = HEADING_STYLE.match(style)
        attrs: dict[str, Any]
        # The Title style above the headings, as Word shows it: "Heading 1" is h2.
        if style.lower() == "title":
            kind, attrs = "h1", {}
        elif heading:
            kind, attrs = f"h{min(int(heading.group(1)) + 1, 6)}", {}
        else:
            kind, attrs = "p", {}
            listed = self.list_kind(p, style)
            if listed is not None:
                list_kind, depth = listed
                if self.list_group is None or self.list_group[0] != list_kind:
                    self.list_group = (list_kind, self.group())
                kind, attrs = "li", {"list": list(self.list_group), "depth": depth}
        if self.layer.add(kind, pieces, **attrs) and kind != "li":
            self.list_group = None

    def table(self, tbl: Any) -> None:
        table = self.group()
        for row_index, tr in enumerate(tbl.iter(W + "tr")):
            if tr.getparent() is not tbl:
                continue  # a nested table's row: its text is in the cell that holds it
            header = tr.find(f"{W}trPr/{W}tblHeader") is not None
            for tc in tr.findall(W + "tc"):
                pieces: list[tuple[str, str | None]] = []
                for p in tc.iter(W + "p"):
                    found = self.pieces(p)
                    if "".join(t for t, _ in found).strip():
                        if pieces:
                            pieces.append(("\n", None))
                        pieces.extend(found)
                self.layer.add("th" if header else "td", pieces, table=table, row=row_index)

    def pieces(self, p: Any) -> list[tuple[str, str | None]]:
        """The paragraph's text as (text, link) pieces, as it reads."""
        out: list[tuple[str, str | None]] = []
        for element in _walk(p):
            tag = element.tag
            if tag == W + "t":
                text = UNPRINTABLE.sub("", (element.text or "").replace("\t", " "))
                out.append((text, self.href(element)))
            elif tag in (W + "tab", W + "ptab"):
                out.append((" ", None))
            elif tag in (W + "br", W + "cr"):
                kind = element.get(W + "type", "textWrapping")
                out.append(("\n" if kind == "textWrapping" else " ", None))
            elif tag == W + "noBreakHyphen":
                out.append(("-", None))
            elif tag == W + "footnoteReference":
                note = element.get(W + "id", "")
                number = self.note_numbers.setdefault(note, len(self.note_numbers) + 1)
                out.append((f"[{number}]", None))
        return out

    def href(self, element: Any) -> str | None:
        for ancestor in element.iterancestors(W + "hyperlink"):
            rel = self.rels.get(ancestor.get(R + "id", ""))
            if rel is not None and rel.is_external and rel.target_ref.startswith(SAFE_SCHEMES):
                return str(rel.target_ref)
            return None
        return None

    # --- styles and numbering ----------------------------------------------------------------
    def style_name(self, p: Any) -> str:
        style_id = p.find(f"{W}pPr/{W}pStyle")
        if style_id is None:
            return ""
        style = self.style(style_id.get(W + "val", ""))
        return style.name_val or "" if style is not None else ""

    def style(self, style_id: str) -> Any:
        # Looked up once per style: an XPath query over every style, for each paragraph,
        # was half the time of a long document.
        if style_id not in self.styles:
            self.styles[style_id] = self.document.styles.element.get_by_id(style_id)
        return self.styles[style_id]

    def list_kind(self, p: Any, style: str) -> tuple[str, int] | None:
        """("ol" or "ul", depth from 1) for a list item, else None."""
        num = p.find(f"{W}pPr/{W}numPr")
        if num is None:
            style_id = p.find(f"{W}pPr/{W}pStyle")
            found = self.style(style_id.get(W + "val", "")) if style_id is not None else None
            num = found.find(f"{W}pPr/{W}numPr") if found is not None else None
        if num is None:
            if style.lower().startswith("list number"):
                return "ol", 1
            if style.lower().startswith(("list bullet", "list paragraph")):
                return "ul", 1
            return None
        num_id = _val(num.find(W + "numId"))
        if num_id == "0":  # numbering switched off for this paragraph
            return None
        level = _val(num.find(W + "ilvl")) or "0"
        depth = int(level) + 1 if level.isdigit() else 1
        fmt = self.numbering.get((num_id, level), "")
        if not fmt:
            fmt = "decimal" if style.lower().startswith("list number") else "bullet"
        return ("ul" if fmt in ("bullet", "none") else "ol"), min(depth, 6)

    def _numbering(self) -> dict[tuple[str, str], str]:
        """Each list's number format by (numId, level): "bullet", "decimal", ..."""
        try:
            numbering = self.document.part.numbering_part.element
        except (NotImplementedError, KeyError, AttributeError):
            return {}
        abstract = {
            a.get(W + "abstractNumId"): {
                lvl.get(W + "ilvl"): _val(lvl.find(W + "numFmt")) for lvl in a.findall(W + "lvl")
            }
            for a in numbering.findall(W + "abstractNum")
        }
        formats = {}
        for num in numbering.findall(W + "num"):
            levels = abstract.get(_val(num.find(W + "abstractNumId")), {})
            for level, fmt in levels.items():
                formats[(num.get(W + "numId"), level)] = fmt
        return formats

    # --- footnotes ---------------------------------------------------------------------------
    def notes(self) -> None:
        if not self.note_numbers:
            return
        part = next(
            (
                r.target_part
                for r in self.rels.values()
                if r.reltype == FOOTNOTES and not r.is_external
            ),
            None,
        )
        if part is None:
            return
        root = _parse(part.blob, self.package)
        found: dict[str, list[tuple[str, str | None]]] = {}
        for note in root.iter(W + "footnote"):
            pieces: list[tuple[str, str | None]] = []
            for p in note.iter(W + "p"):
                text = self.pieces(p)
                if "".join(t for t, _ in text).strip():
                    if pieces:
                        pieces.append((" ", None))
                    pieces.extend(text)
            found[note.get(W + "id", "")] = pieces
        self.list_group = None
        self.layer.add("h2", [("Notes", None)])
        for note_id, number in list(self.note_numbers.items()):
            pieces = found.get(note_id, [])
            while pieces and not pieces[0][0].strip():
                pieces = pieces[1:]
            if pieces:  # the space Word puts after the note's own mark
                pieces = [(pieces[0][0].lstrip(), pieces[0][1]), *pieces[1:]]
            self.layer.add("p", [(f"[{number}] ", None), *pieces])


def _walk(element: Any) -> Any:
    """The element and its descendants in document order, without what a Word file keeps
    for older readers (mc:Fallback: a text box's text a second time)."""
    stack = [element]
    while stack:
        node = stack.pop()
        if not isinstance(node.tag, str) or node.tag == MC_FALLBACK:
            continue  # a comment or processing instruction, or the fallback
        yield node
        stack.extend(reversed(node))


def _val(element: Any) -> str:
    return "" if element is None else str(element.get(W + "val", ""))


def _parse(data: bytes, package: Package) -> etree._Element:
    from archive.extract.zipped import parse_xml

    return parse_xml(data, "word/footnotes.xml", package.what)


def core_metadata(document: Any) -> dict[str, Any]:
    """Title, authors, date (created, else last modified) and language from core properties."""
    core = document.core_properties
    metadata: dict[str, Any] = {}
    if (core.title or "").strip():
        metadata["title"] = core.title.strip()[:500]
    if (core.author or "").strip():
        names = re.split(r"\s*;\s*", core.author.strip())
        metadata["creators"] = [n for n in names if n]
    when = core.created or core.modified
    if when is not None:
        metadata["date_published"] = when.date().isoformat()
    if (core.language or "").strip():
        metadata["language"] = core.language.strip()
    return metadata
