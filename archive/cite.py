"""A source's reference, naming the archived copy: formatted (Chicago author-date and APA, by
citeproc-py with the official CSL styles in archive/csl/), plain text, BibTeX and CSL-JSON.

Scholion keeps no "item type" on a source, so the type is inferred: an ISBN makes a book, a
DOI a journal article, a URL or HTML original a web page, anything else a document.
"""

from __future__ import annotations

import functools
import io
import json
import warnings
from pathlib import Path
from typing import NamedTuple

import nh3

from archive.models import Source

CSL_DIR = Path(__file__).resolve().parent / "csl"
STYLES = {"chicago": "chicago-author-date.csl", "apa": "apa.csl"}


class Passage(NamedTuple):
    start: int
    end: int
    exact: str
    permalink: str


def _bibtex_escape(value: str) -> str:
    out = []
    for ch in value:
        if ch in "{}\\":
            out.append("\\" + ch if ch != "\\" else "\\textbackslash{}")
        elif ch in "&%$#_":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def bibtex_entry_type(source: Source) -> str:
    """BibLaTeX types that Zotero imports: book, article, online, misc."""
    return {
        "book": "book",
        "article-journal": "article",
        "webpage": "online",
    }.get(csl_type(source), "misc")


def archived_copy_note(source: Source, permalink: str, passage: Passage | None = None) -> str:
    note = (
        f"Archived copy: {permalink}, archived {source.archived_at:%Y-%m-%d},"
        f" SHA-256 {source.sha256}"
    )
    if passage is not None:
        note += f". Passage (characters {passage.start}–{passage.end}): {passage.permalink}"
    return note


def bibtex(source: Source, permalink: str, passage: Passage | None = None) -> str:
    fields: list[tuple[str, str]] = [("title", source.title)]
    if source.creators:
        fields.append(("author", " and ".join(source.creators)))
    if source.publisher:
        container = {"article": "journaltitle", "online": "organization"}
        fields.append((container.get(bibtex_entry_type(source), "publisher"), source.publisher))
    if source.date_published:
        fields.append(("date", source.date_published))
        fields.append(("year", source.date_published[:4]))
    if source.doi:
        fields.append(("doi", source.doi))
    if source.isbn:
        fields.append(("isbn", source.isbn))
    fields.append(("url", source.url or source.original_url or permalink))
    if source.language:
        fields.append(("langid", source.language))
    fields.append(("urldate", source.archived_at.date().isoformat()))
    fields.append(("note", archived_copy_note(source, permalink, passage)))
    body = ",\n".join(f"  {name} = {{{_bibtex_escape(value)}}}" for name, value in fields)
    return f"@{bibtex_entry_type(source)}{{{source.citation_key},\n{body}\n}}\n"


def plain_reference(source: Source, permalink: str) -> str:
    """Author-date style: Creators. Year. “Title.” Publisher. URL. Archived copy ..."""
    parts = []
    creators = "; ".join(source.creators) if source.creators else ""
    year = f"{source.date_published[:4]}." if source.date_published else "n.d."
    parts.append(f"{creators}. {year}" if creators else year)
    parts.append(f"“{source.title}.”")
    if source.publisher:
        parts.append(f"{source.publisher}.")
    if source.doi:
        parts.append(f"https://doi.org/{source.doi}.")
    elif source.url or source.original_url:
        parts.append(f"{source.url or source.original_url}.")
    parts.append(
        f"Archived {source.archived_at:%Y-%m-%d} at {permalink} (SHA-256 {source.sha256})."
    )
    return " ".join(parts)


def csl_name(creator: str) -> dict[str, str]:
    """A CSL name: "Family, Given" and "Given Family" split; one word (an organisation) literal."""
    creator = creator.strip()
    if "," in creator:
        family, given = (part.strip() for part in creator.split(",", 1))
        return {"family": family, "given": given} if given else {"literal": family}
    if " " in creator:
        given, family = creator.rsplit(" ", 1)
        return {"family": family, "given": given}
    return {"literal": creator}


def csl_date(value: str) -> dict[str, list[list[int]]]:
    return {"date-parts": [[int(part) for part in value.split("-")]]}


def csl_type(source: Source) -> str:
    if source.isbn:
        return "book"
    if source.doi:
        return "article-journal"
    return "webpage" if source.media_type == "text/html" or source.url else "document"


def csl_json(source: Source, permalink: str, passage: Passage | None = None) -> dict:
    """One CSL-JSON item (https://citationstyles.org) for a source, naming the archived copy."""
    item: dict = {"id": source.citation_key, "type": csl_type(source), "title": source.title}
    if source.creators:
        item["author"] = [csl_name(c) for c in source.creators]
    if source.date_published:
        item["issued"] = csl_date(source.date_published)
    if source.publisher:
        # A site or a journal is the container; a book's or document's is its publisher.
        if item["type"] in ("webpage", "article-journal"):
            item["container-title"] = source.publisher
        else:
            item["publisher"] = source.publisher
    if source.doi:
        item["DOI"] = source.doi
    if source.isbn:
        item["ISBN"] = source.isbn
    item["URL"] = source.url or source.original_url or permalink
    if source.language:
        item["language"] = source.language
    if source.description:
        item["abstract"] = source.description
    item["accessed"] = csl_date(source.archived_at.date().isoformat())
    item["note"] = archived_copy_note(source, permalink, passage)
    return item


@functools.cache
def csl_style(name: str):
    """A shipped CSL style, parsed once per process."""
    from citeproc import CitationStylesStyle
    from lxml import etree

    tree = etree.parse(str(CSL_DIR / STYLES[name]))
    if name == "chicago":
        # citeproc-py 0.11 ignores CSL 1.0.1's initialize="false", so the style-wide
        # initialize-with would shorten given names to initials; Chicago spells them out.
        tree.getroot().attrib.pop("initialize-with", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CitationStylesStyle(io.BytesIO(etree.tostring(tree)), validate=False)


def formatted_reference(item: dict, style: str) -> str:
    """One bibliography entry as (sanitised) HTML: only <i> and <b> survive.

    citeproc-py takes tens of milliseconds per entry and every reading page shows two, so
    entries are remembered per item (a source's metadata changes rarely; a change is a new
    item, hence a new entry)."""
    return _formatted_reference(json.dumps(item, sort_keys=True), style)


@functools.lru_cache(maxsize=2048)
def _formatted_reference(item_json: str, style: str) -> str:
    item = json.loads(item_json)
    from citeproc import Citation, CitationItem, CitationStylesBibliography, formatter
    from citeproc.source.json import CiteProcJSON

    item = {**item, "id": "item"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bibliography = CitationStylesBibliography(
            csl_style(style), CiteProcJSON([item]), formatter.html
        )
        bibliography.register(Citation([CitationItem("item")]))
        entries = [str(entry) for entry in bibliography.bibliography()]
    return nh3.clean(" ".join(entries), tags={"i", "b"}, attributes={})


def references(source: Source, permalink: str, passage: Passage | None = None) -> dict:
    """Everything the "Cite this source" (or passage) box shows."""
    item = csl_json(source, permalink, passage)
    archived = (
        f"Archived copy: {permalink}, archived {source.archived_at:%Y-%m-%d},"
        f" SHA-256 {source.sha256}."
    )
    if passage is not None:
        quote = passage.exact if len(passage.exact) <= 200 else passage.exact[:199] + "…"
        archived += f" Passage “{quote}”: {passage.permalink}."
    return {
        "chicago": formatted_reference(item, "chicago"),
        "apa": formatted_reference(item, "apa"),
        "archived": archived,
        "bibtex": bibtex(source, permalink, passage),
        "csl_json": json.dumps([item], ensure_ascii=False, indent=2),
    }


# CSL item types as BibLaTeX entry types that Zotero imports.
BIBTEX_TYPES = {
    "article-journal": "article",
    "article-newspaper": "article",
    "article-magazine": "article",
    "book": "book",
    "chapter": "incollection",
    "report": "report",
    "thesis": "thesis",
    "webpage": "online",
    "post-weblog": "online",
}


def bibtex_from_csl(item: dict) -> str:
    """A BibLaTeX entry for a CSL-JSON item (external references cited in notes)."""
    entry_type = BIBTEX_TYPES.get(item.get("type", ""), "misc")
    fields: list[tuple[str, str]] = []
    if item.get("title"):
        fields.append(("title", item["title"]))
    names = []
    for name in item.get("author", []):
        if "literal" in name:
            names.append("{" + _bibtex_escape(name["literal"]) + "}")
        else:
            names.append(_bibtex_escape(f"{name['family']}, {name.get('given', '')}".strip(", ")))
    if item.get("container-title"):
        container = {"article": "journaltitle", "incollection": "booktitle"}
        fields.append((container.get(entry_type, "organization"), item["container-title"]))
    if item.get("publisher"):
        key = "institution" if entry_type == "report" else "publisher"
        fields.append((key, item["publisher"]))
    if item.get("issued"):
        parts = item["issued"]["date-parts"][0]
        fields.append(("date", "-".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts))))
        fields.append(("year", str(parts[0])))
    if item.get("DOI"):
        fields.append(("doi", item["DOI"]))
    if item.get("URL"):
        fields.append(("url", item["URL"]))
    if item.get("accessed"):
        parts = item["accessed"]["date-parts"][0]
        fields.append(
            ("urldate", "-".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts)))
        )
    if item.get("note"):
        fields.append(("note", item["note"]))
    lines = [f"  {name} = {{{_bibtex_escape(value)}}}" for name, value in fields]
    if names:
        lines.insert(1 if item.get("title") else 0, f"  author = {{{' and '.join(names)}}}")
    return f"@{entry_type}{{{item['id']},\n" + ",\n".join(lines) + "\n}\n"
