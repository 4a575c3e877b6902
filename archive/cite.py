"""A source's reference in plain text and BibTeX, naming the archived copy."""

from __future__ import annotations

from archive.models import Source


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
    return "online" if source.media_type == "text/html" or source.url else "misc"


def bibtex(source: Source, permalink: str) -> str:
    fields: list[tuple[str, str]] = [("title", source.title)]
    if source.creators:
        fields.append(("author", " and ".join(source.creators)))
    if source.publisher:
        fields.append(("publisher", source.publisher))
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
    fields.append(
        (
            "note",
            f"Archived copy: {permalink}, archived {source.archived_at:%Y-%m-%d},"
            f" SHA-256 {source.sha256}",
        )
    )
    body = ",\n".join(f"  {name} = {{{_bibtex_escape(value)}}}" for name, value in fields)
    return f"@{bibtex_entry_type(source)}{{{source.citation_key},\n{body}\n}}\n"


def plain_reference(source: Source, permalink: str) -> str:
    """Author-date style: Creators. Year. “Title.” Publisher. URL. Archived copy ..."""
    parts = []
    creators = "; ".join(source.creators) if source.creators else ""
    year = source.date_published[:4] if source.date_published else "n.d."
    parts.append(f"{creators}. {year}." if creators else f"{year}.")
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
    return "webpage" if source.media_type == "text/html" or source.url else "document"


def csl_json(source: Source, permalink: str) -> dict:
    """One CSL-JSON item (https://citationstyles.org) for a source, naming the archived copy."""
    item: dict = {"id": source.citation_key, "type": csl_type(source), "title": source.title}
    if source.creators:
        item["author"] = [csl_name(c) for c in source.creators]
    if source.date_published:
        item["issued"] = csl_date(source.date_published)
    if source.publisher:
        item["publisher"] = source.publisher
        if item["type"] == "webpage":
            item["container-title"] = source.publisher
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
    item["note"] = (
        f"Archived copy: {permalink}, archived {source.archived_at:%Y-%m-%d},"
        f" SHA-256 {source.sha256}"
    )
    return item
