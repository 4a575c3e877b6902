"""Extractor ``pdf`` 1: a PDF's text layer, page by page, in reading order (pdfminer.six).

pdfminer.six was chosen over pypdfium2 by trying both on PDFs like the tests': pdfium reads
text in the order it is drawn (a two-column page whose right column is drawn first comes out
right column first) and replaces a line-end hyphen with U+FFFE, losing the printed hyphen;
pdfminer's layout analysis gets both right. It is slower (pure Python: tens of pages a
second, against pdfium's hundreds; bench/NOTES.md).

A PDF is untrusted input to a large parser: it is read in a child process with its address
space, CPU time and wall-clock time limited (a decompression bomb or a page that takes
forever fails alone), and the page count is checked before any page is read.

Each text box pdfminer finds is a paragraph block; its lines are joined by a space as a
reader reads them, except after a line-end hyphen, which stays as printed ("infor-mation"):
whether it was a hyphenated compound or a word broken to fit cannot be known from the page.
Typographic ligatures (ﬁ, ﬂ, ...) become their letters, so the text reads and searches as
the words it prints.

The page boundaries are ``divisions`` (see archive.divisions): page n covers code points
[start, end) of the text layer, end being the next page's start; a page without text covers
no code points. Each page is labelled as the PDF labels it (/PageLabels: roman front matter,
a journal's own page numbers), else by its number from 1.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from archive.extract import (
    NO_TEXT_EXTRACTOR,
    PDF_EXTRACTOR,
    Extraction,
    ExtractionError,
    TooSlowForRequest,
)

LIGATURES = re.compile("[\ufb00-\ufb06]")
LIGATURE_LETTERS = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
# Control characters other than tab and newline, and U+FFFE/U+FFFF (not characters).
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")
SPACES = re.compile(r"[ \t\u00a0]+")
# pdfminer's stand-in for a glyph whose font says no character for it (a bitmap font without
# a ToUnicode map): one replacement character, not eight characters of its own.
UNMAPPED_GLYPH = re.compile(r"\(cid:\d+\)")
DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)

# Exit status of the child when the bytes are not a PDF it can read; its message is on stdout.
REFUSED = 3

ROOT = Path(__file__).resolve().parent.parent.parent


def extract_pdf(file: IO[bytes], budget: float | None = None) -> Extraction:
    """The text layer of the PDF in ``file`` (a real file, read from its start), within the
    limits the settings set. A PDF without text (scanned pages) has no text layer.

    ``budget`` (seconds, below SCHOLION_PDF_SECONDS) is what a web request may spend: a PDF
    not read within it raises TooSlowForRequest rather than the refusal a PDF that exhausts
    the full limit gets, since it may well be an honest long PDF."""
    from django.conf import settings

    max_pages = settings.SCHOLION_MAX_PDF_PAGES
    limit = settings.SCHOLION_PDF_SECONDS
    seconds: float = limit if budget is None else min(budget, limit)
    within_budget = budget is not None and budget < limit
    memory_bytes = settings.SCHOLION_PDF_MEMORY_BYTES
    file.seek(0)
    command = [
        sys.executable,
        "-I",  # no user site-packages, no PYTHON* variables: only what the server runs
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]);"
        " from archive.extract.pdf import child_main; child_main()",
        str(ROOT),
        str(max_pages),
        str(max(1, math.ceil(seconds))),  # CPU seconds: RLIMIT_CPU counts whole ones
        str(memory_bytes),
    ]
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter running our own code
            command,
            stdin=file,
            capture_output=True,
            timeout=seconds if within_budget else seconds + 5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        if within_budget:
            raise TooSlowForRequest(f"not read within {seconds} seconds") from None
        raise ExtractionError(
            f"The PDF could not be read within {seconds} seconds, so nothing was archived."
            " It may be damaged or built to exhaust a reader."
        ) from None
    if result.returncode == REFUSED:
        raise ExtractionError(result.stdout.decode("utf-8", "replace"))
    if within_budget and result.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        # Out of CPU time (SIGXCPU at the limit): too slow for a request, not refused yet.
        raise TooSlowForRequest(f"not read within {seconds} seconds of CPU time")
    if result.returncode != 0:
        raise ExtractionError(
            f"The PDF could not be read within the limits of {limit} seconds and"
            f" {memory_bytes // 1024 // 1024} MiB of memory, so nothing was archived."
            " It may be damaged or built to exhaust a reader (a decompression bomb)."
        )
    derived = json.loads(result.stdout)
    if not derived["text"]:
        return Extraction(
            media_type="application/pdf",
            encoding="",
            encoding_note="",
            text="",
            blocks=[],
            extractor=NO_TEXT_EXTRACTOR[0],
            extractor_version=NO_TEXT_EXTRACTOR[1],
            metadata=derived["metadata"],
        )
    return Extraction(
        media_type="application/pdf",
        encoding="",
        encoding_note="",
        text=derived["text"],
        blocks=derived["blocks"],
        extractor=PDF_EXTRACTOR[0],
        extractor_version=PDF_EXTRACTOR[1],
        metadata=derived["metadata"],
        divisions=derived["divisions"],
    )


def child_main() -> None:
    """Read a PDF on stdin, write its text layer as JSON on stdout, within limits."""
    import logging
    import resource

    max_pages, seconds, memory_bytes = (int(a) for a in sys.argv[2:5])
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    logging.disable(logging.CRITICAL)  # pdfminer warns freely about what it repairs
    data = sys.stdin.buffer.read()
    try:
        derived = derive(data, max_pages)
    except ExtractionError as exc:
        sys.stdout.write(str(exc))
        sys.stdout.flush()
        os._exit(REFUSED)
    sys.stdout.write(json.dumps(derived, ensure_ascii=False))
    sys.stdout.flush()


def _die_with_parent() -> None:
    """Stop when the process that asked is gone (a web worker killed at its timeout): no
    one is waiting for the text any more."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took hold
        os._exit(REFUSED)


def derive(data: bytes, max_pages: int) -> dict[str, Any]:
    """The text layer, blocks, page divisions and metadata of PDF bytes."""
    from io import BytesIO

    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams, LTPage, LTTextBox
    from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import resolve1
    from pdfminer.psexceptions import PSException

    # Every PDF ends with %%EOF (readers look for it in its last kilobyte): without it, the
    # file was cut short, and what is left may hold only some of its pages.
    if b"%%EOF" not in data[-1024:]:
        raise ExtractionError(
            "The PDF (application/pdf) is truncated: it stops before its end (%%EOF), so"
            " some of its pages may be missing. Nothing was archived; archive the whole file."
        )
    try:
        document = PDFDocument(PDFParser(BytesIO(data)))
        count = resolve1(resolve1(document.catalog["Pages"])["Count"])
    except PDFEncryptionError:
        raise ExtractionError(
            "The PDF is encrypted with a password, so its text cannot be read. Remove the"
            " password (print it to a new PDF, say) and archive that."
        ) from None
    except (PSException, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise unreadable(exc) from None
    if not isinstance(count, int) or count < 0:
        raise unreadable("its page count is missing")
    if count > max_pages:
        raise ExtractionError(
            f"The PDF has {count:,} pages, more than the {max_pages:,} Scholion reads"
            " (SCHOLION_MAX_PDF_PAGES), so nothing was archived."
        )

    manager = PDFResourceManager(caching=True)
    device = PDFPageAggregator(manager, laparams=LAParams())
    interpreter = PDFPageInterpreter(manager, device)
    parts: list[str] = []
    length = 0
    blocks: list[dict] = []
    pages: list[tuple[int | None, str]] = []  # where each page's text starts, its label
    try:
        for number, page in enumerate(PDFPage.create_pages(document), start=1):
            if number > max_pages:
                raise ExtractionError(
                    f"The PDF has more than the {max_pages:,} pages Scholion reads"
                    " (SCHOLION_MAX_PDF_PAGES), so nothing was archived."
                )
            interpreter.process_page(page)
            layout: LTPage = device.get_result()
            first = None
            for element in layout:
                if not isinstance(element, LTTextBox):
                    continue
                paragraph = join_lines(line.get_text() for line in element)
                if not paragraph:
                    continue
                if length:
                    parts.append("\n\n")  # belongs to the page before, with its last block
                    length += 2
                if first is None:
                    first = length
                blocks.append({"t": "p", "s": length, "e": length + len(paragraph)})
                parts.append(paragraph)
                length += len(paragraph)
            pages.append((first, page.label or str(number)))
    except ExtractionError:
        raise
    except (PSException, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise unreadable(exc) from None
    if not pages:
        raise unreadable("it has no pages")
    # Each page runs to the next page's start, so the pages partition the text layer; a page
    # without text covers no code points.
    spans: list[list] = []
    following = length
    for first, label in reversed(pages):
        start = following if first is None else first
        spans.append([start, following, label])
        following = start
    spans.reverse()
    text = "".join(parts)
    metadata = document_metadata(document)
    if "doi" not in metadata:
        first_page = text[spans[0][0] : spans[0][1]]
        found = DOI_IN_TEXT.search(first_page)
        if found:
            metadata["doi"] = found.group(1).rstrip(".,;:)]}")
    return {
        "text": text,
        "blocks": blocks,
        "divisions": {"unit": "page", "spans": spans} if text else {},
        "metadata": metadata,
    }


def unreadable(reason: object) -> ExtractionError:
    return ExtractionError(
        f"This file looks like a PDF (application/pdf) but could not be read ({reason}):"
        " it may be damaged or truncated. Nothing was archived."
    )


def join_lines(lines: Any) -> str:
    """A text box's lines as one paragraph, as a reader reads them."""
    out = ""
    for raw in lines:
        line = SPACES.sub(" ", clean(raw)).strip()
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith("-") and len(out) > 1 and (out[-2].isalnum() or out[-2] == "\ufffd"):
            out += line  # a line-end hyphen stays as printed, the word rejoined
        else:
            out += " " + line
    return out


def clean(text: str) -> str:
    text = LIGATURES.sub(lambda m: LIGATURE_LETTERS[m.group()], text)
    text = UNMAPPED_GLYPH.sub("\ufffd", text)
    return UNPRINTABLE.sub("", text.replace("\n", " ").replace("\r", " "))


# --- Metadata ---------------------------------------------------------------------------------

XMP_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "prism": "http://prismstandard.org/namespaces/basic/2.0/",
    "prism3": "http://prismstandard.org/namespaces/basic/3.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdfx": "http://ns.adobe.com/pdfx/1.3/",
}
PDF_DATE = re.compile(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?")
ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def document_metadata(document: Any) -> dict[str, Any]:
    """Title, authors, date and DOI from the XMP packet, else the document information."""
    metadata: dict[str, Any] = {}
    try:
        xmp = xmp_metadata(document)
    except Exception:  # a damaged packet gives no metadata, not a refused file
        xmp = {}
    try:
        info = info_metadata(document)
    except Exception:
        info = {}
    for name in ("title", "creators", "date_published", "doi", "container_title"):
        value = xmp.get(name) or info.get(name)
        if value:
            metadata[name] = value
    return metadata


def info_metadata(document: Any) -> dict[str, Any]:
    from pdfminer.pdftypes import resolve1
    from pdfminer.utils import decode_text

    found: dict[str, Any] = {}
    for info in document.info:
        values = {}
        for key, value in resolve1(info).items():
            value = resolve1(value)
            if isinstance(value, bytes):
                values[key.lower()] = decode_text(value).strip()
        if values.get("title"):
            found["title"] = values["title"][:500]
        if values.get("author"):
            found["creators"] = split_names(values["author"])
        date = values.get("creationdate", "")
        matched = PDF_DATE.match(date)
        if matched:
            found["date_published"] = "-".join(p for p in matched.groups() if p)
        doi = values.get("doi", "")
        if doi:
            found["doi"] = bare_doi(doi)
    return found


def xmp_metadata(document: Any) -> dict[str, Any]:
    from xml.etree import ElementTree

    from pdfminer.pdftypes import resolve1

    stream = resolve1(document.catalog.get("Metadata"))
    if stream is None:
        return {}
    root = ElementTree.fromstring(stream.get_data())  # noqa: S314 - expat refuses entity bombs
    found: dict[str, Any] = {}

    def items(path: str) -> list[str]:
        return [
            (li.text or "").strip()
            for li in root.iterfind(f".//{path}//rdf:li", XMP_NS)
            if (li.text or "").strip()
        ]

    def value(path: str) -> str:
        for element in root.iterfind(f".//{path}", XMP_NS):
            if (element.text or "").strip():
                return element.text.strip()  # type: ignore[union-attr]
        return ""

    titles = items("dc:title")
    if titles:
        found["title"] = titles[0][:500]
    creators = items("dc:creator")
    if creators:
        found["creators"] = creators
    date = (
        value("prism:publicationDate") or value("prism:coverDate") or "".join(items("dc:date")[:1])
    )
    matched = ISO_DATE.match(date)
    if matched:
        found["date_published"] = "-".join(p for p in matched.groups() if p)
    doi = value("prism:doi") or value("prism3:doi") or value("pdfx:doi")
    if not doi:
        doi = next((i for i in items("dc:identifier") if "10." in i), "")
    if doi:
        found["doi"] = bare_doi(doi)
    journal = value("prism:publicationName")
    if journal:
        found["container_title"] = journal
    return found


def bare_doi(value: str) -> str:
    return re.sub(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)", "", value.strip(), flags=re.I)


def split_names(value: str) -> list[str]:
    """An Author entry's names: people separate them with semicolons, or "and"."""
    names = re.split(r"\s*;\s*|\s+and\s+|\s*&\s*", value)
    return [n.strip() for n in names if n.strip()]
