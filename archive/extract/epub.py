"""Extractor ``epub`` 1: an EPUB book's text layer, chapter by chapter in spine order.

No EPUB library is used (the maintained one, ebooklib, is AGPL-only): the book is a zip archive
(archive.extract.zipped, with its limits), META-INF/container.xml names the package document
(the OPF), whose manifest lists the files and whose spine orders the chapters. Each chapter is
rendered by the same sanitising HTML renderer as an archived web page (archive.extract.html:
scripts, styles, frames, forms and images dropped, links only to the web kept), and the
chapters follow one another as one text layer.

A chapter is each content document of the spine that holds text; chapter n covers code points
[start, end) (``divisions``, unit "chapter", see archive.divisions), labelled by its number.
A chapter that does not open with a heading gets its title as one, from the book's table of
contents (EPUB 3's navigation document, else EPUB 2's NCX), else from its own <title>.

Metadata comes from the OPF: dc:title, dc:creator, dc:date, dc:language, dc:publisher, and a
dc:identifier that is a DOI or an ISBN.

A book whose chapters are encrypted (META-INF/encryption.xml lists more than obfuscated fonts,
or an Adobe rights.xml is present) cannot be read and is refused.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from typing import Any

from archive.extract import EPUB_EXTRACTOR, Extraction, ExtractionError, bom_encoding
from archive.extract.zipped import EPUB_TYPE, Package, encrypted, inside

CONTAINER = "META-INF/container.xml"
NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "ncx": "http://www.daisy.org/z3986/2005/ncx/",
    "x": "http://www.w3.org/1999/xhtml",
    "epub": "http://www.idpf.org/2007/ops",
    "enc": "http://www.w3.org/2001/04/xmlenc#",
}
X = NS["x"]
# Fonts scrambled so they cannot be lifted from the book: the text stays readable.
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
CONTENT_TYPES = {"application/xhtml+xml", "text/html"}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
DOI = re.compile(r"(10\.\d{4,9}/\S+)")
ISBN = re.compile(r"^(?:urn:isbn:|isbn:?\s*)?([0-9][0-9\- ]{8,16}[0-9Xx])$", re.IGNORECASE)
DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def extract_epub(package: Package) -> Extraction:
    refuse_encrypted(package)
    container = package.xml(CONTAINER)
    rootfile = container.find(".//c:rootfile", NS)
    opf_path = inside("", rootfile.get("full-path", "")) if rootfile is not None else None
    if opf_path is None:
        raise package.unreadable(f"{CONTAINER} names no package document inside the book")
    opf = package.xml(opf_path)
    manifest: dict[str, tuple[str, str, str]] = {}  # id -> (entry, media type, properties)
    for item in opf.iterfind("opf:manifest/opf:item", NS):
        entry = inside(opf_path, item.get("href", ""))
        if entry is None:
            raise ExtractionError(
                f"The EPUB book's manifest names a file outside the book"
                f" ({item.get('href', '')[:100]!r}), as a file built to attack a reader does,"
                " so nothing was archived."
            )
        manifest[item.get("id", "")] = (
            entry,
            item.get("media-type", ""),
            item.get("properties", ""),
        )
    spine = opf.find("opf:spine", NS)
    if spine is None:
        raise package.unreadable("its package document has no spine")
    titles = table_of_contents(package, opf, manifest)

    from archive.extract.html import render

    parts: list[str] = []
    length = 0
    blocks: list[dict] = []
    spans: list[list] = []
    next_group = 0
    for itemref in spine.iterfind("opf:itemref", NS):
        found = manifest.get(itemref.get("idref", ""))
        if found is None or found[1] not in CONTENT_TYPES:
            continue
        entry = found[0]
        parser = render(decode(package.read(entry)))
        text = "".join(parser.text_parts)
        if not text.strip():
            continue  # a cover image, a blank page: no chapter to read
        chapter_blocks = [dict(b) for b in parser.blocks]
        title = titles.get(entry) or " ".join("".join(parser.title).split())
        if title and chapter_blocks[0]["t"] not in HEADINGS:
            shift = len(title) + 2
            text = f"{title}\n\n{text}"
            chapter_blocks = [
                {"t": "h2", "s": 0, "e": len(title)},
                *(_shifted(b, shift, 0) for b in chapter_blocks),
            ]
        start = length + 2 if parts else 0
        if parts:
            parts.append("\n\n")  # belongs to the chapter before, as a PDF's to its page
        blocks.extend(_shifted(b, start, next_group) for b in chapter_blocks)
        next_group += parser.next_id
        parts.append(text)
        length = start + len(text)
        spans.append([start, length, str(len(spans) + 1)])
    if not spans:
        raise ExtractionError("The EPUB book holds no text, so there is nothing to read.")
    # Each chapter runs to the next one's start: the chapters partition the text layer.
    for this, following in zip(spans, spans[1:], strict=False):
        this[1] = following[0]
    return Extraction(
        media_type=EPUB_TYPE,
        encoding="",
        encoding_note="",
        text="".join(parts),
        blocks=blocks,
        extractor=EPUB_EXTRACTOR[0],
        extractor_version=EPUB_EXTRACTOR[1],
        metadata=opf_metadata(opf),
        divisions={"unit": "chapter", "spans": spans},
    )


def refuse_encrypted(package: Package) -> None:
    if "META-INF/rights.xml" in package.names:
        raise encrypted(package.what)
    if "META-INF/encryption.xml" not in package.names:
        return
    root = package.xml("META-INF/encryption.xml")
    for method in root.iter(f"{{{NS['enc']}}}EncryptionMethod"):
        if method.get("Algorithm", "") not in FONT_OBFUSCATION:
            raise encrypted(package.what)


def _shifted(block: dict, by: int, groups: int) -> dict:
    moved = {**block, "s": block["s"] + by, "e": block["e"] + by}
    if "links" in block:
        moved["links"] = [[s + by, e + by, href] for s, e, href in block["links"]]
    if "list" in block:
        moved["list"] = [block["list"][0], block["list"][1] + groups]
    for name in ("quote", "table"):
        if name in block:
            moved[name] = block[name] + groups
    return moved


def decode(data: bytes) -> str:
    """A content document's text: its byte-order mark, else its XML declaration, else UTF-8
    (what EPUB requires); a byte that does not decode becomes U+FFFD."""
    encoding = bom_encoding(data)
    if encoding is None:
        declared = XML_ENCODING.match(data[:200])
        encoding = "utf-8"
        if declared:
            with contextlib.suppress(LookupError):  # an unknown name: as if none were given
                encoding = codecs.lookup(declared.group(1).decode("ascii")).name
    return data.decode(encoding, errors="replace")


def table_of_contents(
    package: Package, opf: Any, manifest: dict[str, tuple[str, str, str]]
) -> dict[str, str]:
    """Each chapter's title by its entry, from the navigation document, else the NCX."""
    titles: dict[str, str] = {}
    nav = next((m for m in manifest.values() if "nav" in m[2].split()), None)
    if nav is not None and nav[0] in package.names:
        root = package.xml(nav[0])
        tocs = [
            n
            for n in root.iter(f"{{{X}}}nav")
            if "toc" in n.get(f"{{{NS['epub']}}}type", "").split()
        ]
        for link in (a for toc in tocs[:1] for a in toc.iter(f"{{{X}}}a")):
            entry = inside(nav[0], link.get("href", ""))
            title = " ".join("".join(link.itertext()).split())
            if entry and title:
                titles.setdefault(entry, title)
    spine = opf.find("opf:spine", NS)
    ncx = manifest.get(spine.get("toc", "")) if spine is not None else None
    if not titles and ncx is not None and ncx[0] in package.names:
        root = package.xml(ncx[0])
        for point in root.iter(f"{{{NS['ncx']}}}navPoint"):
            label = point.find("ncx:navLabel/ncx:text", NS)
            content = point.find("ncx:content", NS)
            if label is None or content is None:
                continue
            entry = inside(ncx[0], content.get("src", ""))
            title = " ".join((label.text or "").split())
            if entry and title:
                titles.setdefault(entry, title)
    return titles


def opf_metadata(opf: Any) -> dict[str, Any]:
    def texts(name: str) -> list[str]:
        return [
            " ".join((e.text or "").split())
            for e in opf.iterfind(f"opf:metadata/dc:{name}", NS)
            if (e.text or "").strip()
        ]

    metadata: dict[str, Any] = {"source_type": "book"}
    for name, field, limit in (("title", "title", 500), ("publisher", "publisher", 300)):
        found = texts(name)
        if found:
            metadata[field] = found[0][:limit]
    creators = texts("creator")
    if creators:
        metadata["creators"] = creators
    for value in texts("date"):
        matched = DATE.match(value)
        if matched:
            metadata["date_published"] = "-".join(p for p in matched.groups() if p)
            break
    languages = texts("language")
    if languages:
        metadata["language"] = languages[0]
    for value in texts("identifier"):
        doi = DOI.search(value)
        isbn = ISBN.match(value)
        if doi and "doi" not in metadata:
            metadata["doi"] = doi.group(1)
        elif isbn and "isbn" not in metadata:
            metadata["isbn"] = isbn.group(1)
    return metadata
