"""A source's reference, naming the archived copy: formatted (Chicago author-date and APA, with
the official CSL styles in archive/csl/, by archive.csl_processor), plain text, BibLaTeX and
CSL-JSON.

A source's type is a CSL item type (Source.Type); BibLaTeX's entry types are mapped from it
(BIBLATEX_TYPES), and every BibLaTeX entry is written from the CSL-JSON item, so that the two
formats say the same thing.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from archive.csl_processor import formatted_reference
from archive.models import Source


class Passage(NamedTuple):
    start: int
    end: int
    exact: str
    permalink: str


def archived_copy_note(source: Source, permalink: str, passage: Passage | None = None) -> str:
    note = (
        f"Archived copy: {permalink}, archived {source.archived_at:%Y-%m-%d},"
        f" SHA-256 {source.sha256}"
    )
    if passage is not None:
        pages = source.text_divisions.locator(passage.start, passage.end)
        where = f"characters {passage.start}–{passage.end}" + (f", {pages}" if pages else "")
        note += f". Passage ({where}): {passage.permalink}"
    return note


def bibtex(source: Source, permalink: str, passage: Passage | None = None) -> str:
    """A BibLaTeX entry for a source, written from its CSL-JSON item."""
    return bibtex_from_csl(csl_json(source, permalink, passage))


def plain_reference(source: Source, permalink: str) -> str:
    """Author-date: Creators. Year. “Title.” Published in. Publisher. URL. Archived copy ..."""
    parts = []
    creators = "; ".join(source.creators) if source.creators else ""
    year = f"{source.date_published[:4]}." if source.date_published else "n.d."
    parts.append(f"{creators}. {year}" if creators else year)
    # American punctuation, as the formatted references: the period inside the quotation
    # marks, and none after a title that ends in its own.
    title = source.title if source.title.endswith((".", "?", "!")) else f"{source.title}."
    parts.append(f"“{title}”")
    container = container_title(source)
    if container:
        numbering = source.volume + (f" ({source.issue})" if source.issue else "")
        if source.pages:
            numbering += f": {source.pages}" if numbering else source.pages
        parts.append(f"{container}{' ' + numbering.strip() if numbering else ''}.")
    if source.publisher and source.publisher != container:
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


# The types whose container is the site or periodical that "publisher or site" has named
# since before sources had a container title.
PUBLISHER_AS_CONTAINER = {"webpage", "article-journal", "article-newspaper"}


def container_title(source: Source) -> str:
    """The journal, newspaper, site or book the source is part of: its container title, or,
    for a web page or an article without one, its "publisher or site"."""
    if source.container_title:
        return source.container_title
    return source.publisher if source.source_type in PUBLISHER_AS_CONTAINER else ""


def csl_json(source: Source, permalink: str, passage: Passage | None = None) -> dict:
    """One CSL-JSON item (https://citationstyles.org) for a source, naming the archived copy."""
    item: dict = {"id": source.citation_key, "type": source.source_type, "title": source.title}
    if source.creators:
        item["author"] = [csl_name(c) for c in source.creators]
    if source.editors:
        item["editor"] = [csl_name(c) for c in source.editors]
    if source.date_published:
        item["issued"] = csl_date(source.date_published)
    container = container_title(source)
    if container:
        item["container-title"] = container
    if source.publisher and source.publisher != container:
        item["publisher"] = source.publisher
    for key, value in (("volume", source.volume), ("issue", source.issue), ("page", source.pages)):
        if value:
            item[key] = value
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


def references(source: Source, permalink: str, passage: Passage | None = None) -> dict:
    """Everything the "Cite this source" (or passage) box shows."""
    item = csl_json(source, permalink, passage)
    archived = (
        f"Archived copy: {permalink}, archived {source.archived_at:%Y-%m-%d},"
        f" SHA-256 {source.sha256}."
    )
    if passage is not None:
        quote = passage.exact if len(passage.exact) <= 200 else passage.exact[:199] + "…"
        pages = source.text_divisions.locator(passage.start, passage.end)
        archived += f" Passage “{quote}”{f' ({pages})' if pages else ''}: {passage.permalink}."
    return {
        "chicago": formatted_reference(item, "chicago"),
        "apa": formatted_reference(item, "apa"),
        "archived": archived,
        "bibtex": bibtex(source, permalink, passage),
        "csl_json": json.dumps([item], ensure_ascii=False, indent=2),
    }


# CSL item types as BibLaTeX entry types (biblatex's data model, checked with biber), with the
# entrysubtype or type a reader needs to tell them apart. Other CSL types are @misc.
BIBLATEX_TYPES: dict[str, tuple[str, dict[str, str]]] = {
    "article-newspaper": ("article", {"entrysubtype": "newspaper"}),
    "article-magazine": ("article", {"entrysubtype": "magazine"}),
    "article-journal": ("article", {}),
    "webpage": ("online", {}),
    "post-weblog": ("online", {}),
    # biblatex requires a report's and a thesis's type; Scholion does not know the kind of
    # report or the degree, so the type is the plain word.
    "report": ("report", {"type": "Report"}),
    "thesis": ("thesis", {"type": "Thesis"}),
    "book": ("book", {}),
    "chapter": ("incollection", {}),
    "dataset": ("dataset", {}),
    "interview": ("misc", {"type": "Interview"}),
}
# Where each entry type keeps the CSL container title and publisher; None: not written.
CONTAINER_FIELD = {"article": "journaltitle", "incollection": "booktitle", "online": "organization"}
PUBLISHER_FIELD: dict[str, str | None] = {
    "report": "institution",
    "thesis": "institution",
    "article": None,
}
# Fields biber reads verbatim (biblatex's datamodel: url, doi, eprint, file...): LaTeX escapes
# would become part of the value (a DOI ending "\_3", a URL holding "%5C"), so they are
# written as they are.
VERBATIM_FIELDS = {"url", "doi", "eprint", "file"}


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


def _bibtex_verbatim(value: str) -> str:
    """A verbatim field's value: only braces, which would end the field, are changed, to
    their percent-encoding (which a URL needs anyway, and doi.org resolves)."""
    return value.replace("{", "%7B").replace("}", "%7D")


def _biblatex_name(name: dict) -> str:
    if "literal" in name:
        # Braced, so that biber reads an organisation as one name, not "family, given".
        return "{" + _bibtex_escape(name["literal"]) + "}"
    return _bibtex_escape(f"{name['family']}, {name.get('given', '')}".strip(", "))


def _biblatex_date(date: dict) -> str:
    parts = date["date-parts"][0]
    return "-".join(f"{p:02d}" if i else f"{p:04d}" for i, p in enumerate(parts))


def bibtex_from_csl(item: dict) -> str:
    """A BibLaTeX entry for a CSL-JSON item (a source's, or an external reference's).

    An undated item is written without date, year or urldate: biblatex takes the first of
    date, year, eventdate, origdate and urldate as an entry's year, and only when there is
    none prints its "nodate" string (n.d.), so an urldate would stand in as the year of
    publication. biber accepts no date value that says "undated" (``date = {nodate}`` is
    refused and ignored, ``year = {nodate}`` is not a number, and pandoc prints it as
    "nodate"), so its data-model check still notes the missing date. The day it was archived
    stays in the note."""
    entry_type, extra = BIBLATEX_TYPES.get(item.get("type", ""), ("misc", {}))
    fields: list[tuple[str, str]] = []
    if item.get("title"):
        fields.append(("title", _bibtex_escape(item["title"])))
    for role in ("author", "editor"):
        if item.get(role):
            fields.append((role, " and ".join(_biblatex_name(n) for n in item[role])))
    fields += [(name, _bibtex_escape(value)) for name, value in extra.items()]
    if item.get("container-title"):
        name = CONTAINER_FIELD.get(entry_type, "howpublished")
        fields.append((name, _bibtex_escape(item["container-title"])))
    if item.get("publisher"):
        publisher_field = PUBLISHER_FIELD.get(entry_type, "publisher")
        if publisher_field is not None:
            fields.append((publisher_field, _bibtex_escape(item["publisher"])))
    if item.get("volume"):
        fields.append(("volume", _bibtex_escape(item["volume"])))
    if item.get("issue"):
        fields.append(("number", _bibtex_escape(item["issue"])))
    if item.get("page"):
        fields.append(("pages", _bibtex_escape(item["page"])))
    if item.get("issued"):
        fields.append(("date", _biblatex_date(item["issued"])))
        fields.append(("year", str(item["issued"]["date-parts"][0][0])))
    if item.get("DOI"):
        fields.append(("doi", item["DOI"]))
    if item.get("ISBN"):
        fields.append(("isbn", _bibtex_escape(item["ISBN"])))
    if item.get("URL"):
        fields.append(("url", item["URL"]))
    if item.get("language"):
        fields.append(("langid", _bibtex_escape(item["language"])))
    if item.get("accessed") and item.get("issued"):
        fields.append(("urldate", _biblatex_date(item["accessed"])))
    if item.get("note"):
        fields.append(("note", _bibtex_escape(item["note"])))
    lines = [
        f"  {name} = {{{_bibtex_verbatim(value) if name in VERBATIM_FIELDS else value}}}"
        for name, value in fields
    ]
    return f"@{entry_type}{{{item['id']},\n" + ",\n".join(lines) + "\n}\n"
