"""The text formats of an export, each a generator of strings (streamed, never whole in memory).

W3C JSON-LD goes through ``annotations.w3c.annotation_to_jsonld``, the one place that decides
the representation; CSV, the two Markdown reports, BibTeX and CSL-JSON are written here from
the same rows (and the XLSX in ``exports.xlsx``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC

from django.utils import timezone

from annotations.citekeys import KEY_RE, find_groups
from annotations.models import Annotation, Comment
from annotations.w3c import CONTEXT, annotation_to_jsonld, comment_to_jsonld, iso_z
from archive import cite
from archive.divisions import Divisions
from exports.scope import ExportScope, citations_text

BUFFER_CHARS = 64 * 1024
BOM = "\ufeff"
# One row per annotation, in the CSV and the XLSX alike. The source's creators, date and URL
# sit beside its title: a reader sees what the passage is from without a second file.
CSV_COLUMNS = (
    "collection",
    "source_title",
    "source_creators",
    "source_date_published",
    "source_url",
    "citation_key",
    "source_uuid",
    "sha256",
    "start",
    "end",
    "pages",
    "quote",
    "note",
    "tags",
    "citations",
    "author",
    "visibility",
    "created",
    "modified",
    "passage_link",
)
# Cells people typed, which the CSV neutralises; UUIDs, hashes, numbers, times and links
# cannot start with a formula character. (A citation key is a slug, which may start with "-".)
TYPED_COLUMNS = (
    "collection",
    "source_title",
    "source_creators",
    "source_url",
    "citation_key",
    "pages",  # printed page labels come from the PDF, chapters' from the EPUB
    "quote",
    "note",
    "tags",
    "citations",
    "author",
)
TIME_COLUMNS = ("created", "modified")
_TYPED = tuple(CSV_COLUMNS.index(c) for c in TYPED_COLUMNS)
_TIMES = tuple(CSV_COLUMNS.index(c) for c in TIME_COLUMNS)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def buffered(chunks: Iterable[str], size: int = BUFFER_CHARS) -> Iterator[str]:
    """Join small pieces into pieces of about ``size`` characters: fewer, larger writes."""
    pending: list[str] = []
    length = 0
    for chunk in chunks:
        pending.append(chunk)
        length += len(chunk)
        if length >= size:
            yield "".join(pending)
            pending, length = [], 0
    if pending:
        yield "".join(pending)


def _dumps(value: object, **kwargs) -> str:
    return json.dumps(value, ensure_ascii=False, **kwargs)


# --- W3C JSON-LD -------------------------------------------------------------------------

ITEMS_MARK = "\x00items\x00"


def jsonld(scope: ExportScope) -> Iterator[str]:
    """An AnnotationCollection whose one embedded AnnotationPage holds every annotation.

    One page, because pages embedded in one document can only be chained through ``next``,
    nesting each in the one before: a large export would be too deep for JSON parsers. The
    page is a part of the export document, so its IRI is a fragment of the export's: fetching
    it gives the document that holds it (a ``?page=1`` would name another resource, which
    the export's URL would answer with the whole collection again).
    """
    collection_id = scope.export_iri("jsonld")
    page_id = collection_id + "#page-1"
    head = {
        "@context": CONTEXT,
        "id": collection_id,
        "type": "AnnotationCollection",
        "label": scope.collection.title,
        # Replies and notes on whole sources are annotations too, after the passages.
        "total": scope.count() + len(scope.comments()),
        "first": {
            "id": page_id,
            "type": "AnnotationPage",
            # An object, as the W3C suite's page assertions read it (see collection_page).
            "partOf": {"id": collection_id},
            "startIndex": 0,
            "items": ITEMS_MARK,
        },
        "last": page_id,
    }
    before, after = _dumps(head, indent=1).split(_dumps(ITEMS_MARK))
    yield before + "["
    separator = "\n"
    for annotation in scope.iter_annotations():
        yield separator + _dumps(
            annotation_to_jsonld(annotation, scope.base_url, with_context=False)
        )
        separator = ",\n"
    for comment in scope.comments():
        yield separator + _dumps(comment_to_jsonld(comment, scope.base_url, with_context=False))
        separator = ",\n"
    yield "\n]" + after + "\n"


# --- CSV -----------------------------------------------------------------------------------


def neutralise(cell: str) -> str:
    """Prefix ' to a cell a spreadsheet would otherwise evaluate as a formula."""
    return "'" + cell if cell.startswith(FORMULA_TRIGGERS) else cell


def spreadsheet_rows(scope: ExportScope) -> Iterator[list]:
    """The cells of each annotation's row (``CSV_COLUMNS``) as values: times as datetimes,
    offsets as numbers, nothing neutralised. Each spreadsheet format writes them its way."""
    title = scope.collection.title
    # A source's cells once, for all its rows, and its pages (a PDF's) to label passages.
    about: dict[int, tuple] = {}
    pages: dict[int, Divisions] = {}
    for row in scope.iter_rows():
        cells = about.get(row.source_id)
        if cells is None:
            source = row.source
            pages[row.source_id] = source.text_divisions
            cells = about[row.source_id] = (
                source.title,
                source.creator_display(),  # "; " between names, as a name may be "Family, Given"
                source.date_published,
                source.url or source.original_url,
                source.citation_key,
                str(source.uuid),
                source.sha256,
            )
        yield [
            title,
            *cells,
            row.start,
            row.end,
            pages[row.source_id].cell(row.start, row.end),
            row.exact,
            row.note,
            ", ".join(tag.name for tag in row.tags),
            citations_text(row.citations),
            row.author,
            row.visibility,
            row.created,
            row.modified,
            scope.passage_iri(row),
        ]


def csv_export(scope: ExportScope, *, bom: bool = False) -> Iterator[str]:
    """One row per annotation. ``bom`` starts the file with a byte-order mark: Excel needs it to
    read the file as UTF-8, while most other tools (and Python's csv module without
    ``utf-8-sig``) would take it as part of the first column's name, so it is off by default."""
    out = io.StringIO()
    # The csv module's quoting: a cell with a comma, quote or newline is quoted, so a note's
    # line breaks survive; rows end with CRLF as RFC 4180 says.
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield (BOM if bom else "") + out.getvalue()
    for row in spreadsheet_rows(scope):
        for i in _TYPED:
            row[i] = neutralise(row[i])
        for i in _TIMES:
            row[i] = iso_z(row[i])
        out.seek(0)
        out.truncate()
        writer.writerow(row)
        yield out.getvalue()


# --- Markdown report -----------------------------------------------------------------------


def _block_quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines() or [""])


def _passage(scope: ExportScope, annotation: Annotation, replies: Iterable[Comment] = ()) -> str:
    tags = ", ".join(f"`{t.name}`" for t in annotation.tags.all())
    about = [f"[{annotation.start}–{annotation.end}]({scope.passage_iri(annotation)})"]
    pages = annotation.source.text_divisions.locator(annotation.start, annotation.end)
    if pages:
        about.append(pages)
    about.append(f"by {annotation.author.get_username()}")
    if tags:
        about.append(f"tags: {tags}")
    parts = [_block_quote(annotation.exact), " · ".join(about)]
    if annotation.note:
        parts.append(annotation.note.strip())
    citations = citations_text(annotation.citations.all())
    if citations:
        parts.append(f"Citations: {citations}")
    parts.extend(_reply(reply) for reply in replies)
    return "\n\n".join(parts) + "\n\n"


def _reply(comment: Comment) -> str:
    """A reply as a quoted block under what it answers, its author and date first."""
    when = comment.created.astimezone(UTC).strftime("%Y-%m-%d")
    return _block_quote(f"**Reply by {comment.author.get_username()}** ({when}):\n\n{comment.note}")


def _threads(scope: ExportScope) -> tuple[dict[int, list[Comment]], dict[int, list[Comment]]]:
    """The export's replies by the annotation they answer, and its notes by source (each
    note's replies as ``thread``)."""
    replies: dict[int, list[Comment]] = {}
    notes: dict[int, list[Comment]] = {}
    note_threads: dict[int, list[Comment]] = {}
    for comment in scope.comments():
        if comment.reply_to_annotation_id is not None:
            replies.setdefault(comment.reply_to_annotation_id, []).append(comment)
        elif comment.reply_to_note_id is not None:
            note_threads.setdefault(comment.reply_to_note_id, []).append(comment)
        else:
            notes.setdefault(comment.source_id, []).append(comment)
    for source_notes in notes.values():
        for note in source_notes:
            note.thread = note_threads.get(note.pk, [])  # type: ignore[attr-defined]
    return replies, notes


def _source_notes(notes: list[Comment]) -> str:
    if not notes:
        return ""
    out = ["### Notes on this source\n\n"]
    for note in notes:
        when = note.created.astimezone(UTC).strftime("%Y-%m-%d")
        out.append(f"{note.note.strip()}\n\n— {note.author.get_username()}, {when}\n\n")
        out.extend(_reply(reply) + "\n\n" for reply in note.thread)  # type: ignore[attr-defined]
    return "".join(out)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def markdown(scope: ExportScope) -> Iterator[str]:
    """Per source its reference, then its passages in text order; a bibliography at the end."""
    sources = scope.source_list()
    yield f"# {scope.collection.title}\n\n"
    if scope.collection.description:
        yield scope.collection.description.strip() + "\n\n"
    yield (
        f"{_count(scope.count(), 'passage')} from {_count(len(sources), 'source')}."
        f" Collection: <{scope.collection_iri()}>\n\n"
    )
    replies, notes = _threads(scope)
    annotations = scope.iter_annotations()
    pending = next(annotations, None)
    for source in sources:
        yield f"## {source.title}\n\n"
        yield cite.plain_reference(source, scope.source_iri(source)) + "\n\n"
        yield _source_notes(notes.get(source.pk, []))
        # Both are in (title, uuid) order: the passages of this source come next.
        while pending is not None and pending.source_id == source.pk:
            yield _passage(scope, pending, replies.get(pending.pk, ()))
            pending = next(annotations, None)
    yield "## Bibliography\n\n"
    references = sorted(cite.plain_reference(s, scope.source_iri(s)) for s in sources)
    for reference in references:
        yield f"- {reference}\n"


# --- Markdown report for pandoc ------------------------------------------------------------
#
# The same report for ``pandoc --citeproc``: a YAML block names the CSL-JSON file the Export
# menu offers beside it as its bibliography, and citeproc writes the one reference list.
# Citations pandoc cannot resolve would print as "(key?)" with a warning, so the report holds
# a citation only where its key is in that file; every other "@" is escaped, as is every mark
# in text that is not Markdown (titles, quotes of the source, names).

# All ASCII punctuation but the few that never start Markdown, citations or typography.
_MARKUP = re.compile(r"([!-+\-.:-@\[-`{-~])")
_CODE_SPAN = re.compile(r"(`+)[\s\S]*?\1")
# <https://example.org/@someone>: no citation inside, and pandoc would keep a backslash there.
_AUTOLINK = re.compile(r"<[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*>")
# An "@" that pandoc would read as a citation: not within a word (bob@example.org is not).
_CITE_AT = re.compile(r"(?<![\w\\])@")


def pandoc_text(text: str) -> str:
    """Plain text (not Markdown) as pandoc Markdown that reads back as exactly that text."""
    return _MARKUP.sub(r"\\\1", text)


def pandoc_note(text: str, keys: Container[str]) -> str:
    """A note (Markdown) with its citation groups kept where every key is in ``keys``, and
    every other citation-like "@" escaped. Code spans and autolinks are left alone: pandoc
    reads no citation in them, and a backslash there would show."""
    keep = [
        (start, end) for start, end, items in find_groups(text) if all(i.key in keys for i in items)
    ]
    keep += [m.span() for m in _CODE_SPAN.finditer(text)]
    keep += [m.span() for m in _AUTOLINK.finditer(text)]

    def escape(match: re.Match) -> str:
        at = match.start()
        return "@" if any(start <= at < end for start, end in keep) else "\\@"

    return _CITE_AT.sub(escape, text)


def pandoc_key(key: str) -> str:
    """``@key``, in braces when pandoc's grammar would end the key early (``@{a--b}``)."""
    return f"@{key}" if KEY_RE.fullmatch(key) else f"@{{{key}}}"


def _code_span(text: str) -> str:
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _pandoc_passage(scope: ExportScope, annotation: Annotation, keys: Container[str]) -> str:
    lines = [line.strip() for line in annotation.exact.splitlines()] or [""]
    quote = "\n".join(f"> {pandoc_text(line)}".rstrip() for line in lines)
    about = [f"[{annotation.start}–{annotation.end}]({scope.passage_iri(annotation)})"]
    pages = annotation.source.text_divisions.locator(annotation.start, annotation.end)
    if pages:
        about.append(pandoc_text(pages))
    about.append(f"by {pandoc_text(annotation.author.get_username())}")
    tags = ", ".join(_code_span(t.name) for t in annotation.tags.all())
    if tags:
        about.append(f"tags: {tags}")
    parts = [quote, " · ".join(about)]
    if annotation.note:
        parts.append(pandoc_note(annotation.note.strip(), keys))
    citations = citations_text(annotation.citations.all())
    if citations:
        parts.append(f"Citations: {pandoc_note(citations, keys)}")
    return "\n\n".join(parts) + "\n\n"


def markdown_for_pandoc(scope: ExportScope) -> Iterator[str]:
    """The report, its references left to citeproc: ``pandoc --citeproc`` beside the
    CSL-JSON export (``<slug>-sources.json``, same filters) gives one reference list."""
    sources = scope.source_list()
    keys = {s.citation_key for s in sources} | {i["id"] for i in scope.external_references()}
    # JSON strings are YAML: quotes, colons, "#" and line breaks in a title cannot end the
    # block. Pandoc reads the values as Markdown, hence the escapes inside.
    meta = {
        "title": pandoc_text(scope.collection.title),
        "date": timezone.now().date().isoformat(),
        "bibliography": scope.collection.slug + FORMATS["csljson"].filename,
        # Every reference in the file, as the ready-to-read report lists every source.
        "nocite": "@*",
        "link-citations": True,
    }
    yield "---\n" + "".join(f"{k}: {_dumps(v)}\n" for k, v in meta.items()) + "---\n\n"
    if scope.collection.description:
        yield pandoc_text(scope.collection.description.strip()) + "\n\n"
    yield (
        f"{_count(scope.count(), 'passage')} from {_count(len(sources), 'source')}."
        f" Collection: <{scope.collection_iri()}>\n\n"
    )
    annotations = scope.iter_annotations()
    pending = next(annotations, None)
    for source in sources:
        yield f"# {pandoc_text(source.title)}\n\n"
        yield (
            f"[{pandoc_key(source.citation_key)}] · archived copy <{scope.source_iri(source)}>,"
            f" SHA-256 `{source.sha256}`\n\n"
        )
        while pending is not None and pending.source_id == source.pk:
            yield _pandoc_passage(scope, pending, keys)
            pending = next(annotations, None)
    yield "# References\n\n::: {#refs}\n:::\n"


# --- References ----------------------------------------------------------------------------


def bibtex(scope: ExportScope) -> Iterator[str]:
    """Every source in the export, then every external reference its annotations cite."""
    n = 0
    for n, source in enumerate(scope.source_list(), 1):
        yield ("\n" if n > 1 else "") + cite.bibtex(source, scope.source_iri(source))
    for item in scope.external_references():
        yield ("\n" if n else "") + cite.bibtex_from_csl(item)
        n += 1


def csl_json(scope: ExportScope) -> Iterator[str]:
    """Every source in the export, then every external reference its annotations cite."""
    yield "["
    n = 0
    for n, source in enumerate(scope.source_list(), 1):
        item = cite.csl_json(source, scope.source_iri(source))
        yield ("," if n > 1 else "") + "\n" + _dumps(item, indent=2)
    for item in scope.external_references():
        yield ("," if n else "") + "\n" + _dumps(item, indent=2)
        n += 1
    yield "\n]\n"


# --- REFI-QDA ------------------------------------------------------------------------------


def qdc(scope: ExportScope) -> Iterator[str]:
    """The export's tags as a REFI-QDA codebook (the project itself is ``exports.qdpx``)."""
    # Imported here: exports.qdpx uses the bag's zip sink, and the bag imports this module.
    from exports.qdpx import qdc_codebook

    return qdc_codebook(scope)


# --- The list the views, the admin and the command offer ------------------------------------


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    filename: str  # after the collection's slug
    content_type: str
    text: Callable[[ExportScope], Iterator[str]] | None  # None: binary (see binary_writer)
    hint: str = ""  # what the Export menu says of it, beside its link


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "jsonld",
            "W3C Web Annotation (JSON-LD)",
            "-annotations.jsonld",
            'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"',
            jsonld,
        ),
        Format(
            "xlsx",
            "Spreadsheet (XLSX)",
            "-annotations.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            None,
            "opens in Excel, LibreOffice and Numbers with every accent intact",
        ),
        Format(
            "csv",
            "Spreadsheet (CSV)",
            "-annotations.csv",
            "text/csv; charset=utf-8",
            csv_export,
            "UTF-8 plain text, for scripts and databases",
        ),
        Format(
            "markdown",
            "Report (Markdown)",
            "-report.md",
            "text/markdown; charset=utf-8",
            markdown,
            "ready to read, its references printed",
        ),
        Format(
            "pandoc",
            "Report for pandoc (Markdown)",
            "-report-pandoc.md",
            "text/markdown; charset=utf-8",
            markdown_for_pandoc,
            # A non-breaking hyphen: "CSL-" and "JSON" must not part at a line's end.
            "citations left to pandoc --citeproc; save the CSL\u2011JSON references beside it",
        ),
        Format(
            "bibtex",
            "References (BibTeX)",
            "-sources.bib",
            "application/x-bibtex; charset=utf-8",
            bibtex,
        ),
        Format(
            "csljson",
            "References (CSL-JSON)",
            "-sources.json",
            "application/vnd.citationstyles.csl+json",
            csl_json,
        ),
        Format("bagit", "Archive package (BagIt zip)", "-bag.zip", "application/zip", None),
        Format(
            "qdpx",
            "QDA project (REFI-QDA, .qdpx)",
            "-project.qdpx",
            "application/zip",
            None,
            "opens in ATLAS.ti, MAXQDA, NVivo and QualCoder: sources, codes, codings, notes",
        ),
        Format(
            "qdc",
            "QDA codebook (REFI-QDA, .qdc)",
            "-codebook.qdc",
            "application/xml; charset=utf-8",
            qdc,
            "the tags alone, for tools that import only codes",
        ),
    )
}


def text_writer(fmt: str, *, bom: bool = False) -> Callable[[ExportScope], Iterator[str]]:
    """The writer of a text format."""
    if fmt == "csv" and bom:
        return lambda scope: csv_export(scope, bom=True)
    writer = FORMATS[fmt].text
    if writer is None:
        raise ValueError(f"{fmt} is not a text format")
    return writer


def binary_writer(fmt: str) -> Callable[[ExportScope], Iterator[bytes]]:
    """The writer of a binary format (a zip: the bag, the workbook)."""
    # Imported here: both modules import this one (the bag holds the text formats).
    from exports.bag import bag_chunks
    from exports.qdpx import qdpx_chunks
    from exports.xlsx import xlsx_chunks

    writers: dict[str, Callable[[ExportScope], Iterator[bytes]]] = {
        "bagit": bag_chunks,
        "xlsx": xlsx_chunks,
        "qdpx": qdpx_chunks,
    }
    if fmt not in writers:
        raise ValueError(f"{fmt} is not a binary format")
    return writers[fmt]
