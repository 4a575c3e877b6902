"""Derive a source's text layer from its original bytes.

The text layer is what a reader sees and what annotations anchor to (offsets in Unicode
code points). It is produced by a named, versioned extractor and stored once; a later
extractor version never rewrites a stored text layer, so anchors never drift.

``blocks`` describes the structure of the text layer for rendering. Each block is a dict:
    t      block kind: p, h1..h6, li, pre, th, td, caption, figcaption
    s, e   code-point offsets of the block's text in the text layer (text[s:e])
    links  optional [[s, e, href], ...], absolute offsets, non-overlapping, sorted
    list   optional [kind, id] for li: kind "ul" or "ol"; consecutive items share an id
    depth  optional list nesting depth (1 = top level)
    quote  optional id of the enclosing block quote; consecutive blocks share it
    table  optional table id, with row (row index) for th/td/caption
Blocks are separated in the text layer by a blank line ("\\n\\n").
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO

# A zip archive is a Word document or an EPUB book, or refused (archive.extract.zipped).
SUPPORTED_TYPES = ("text/plain", "text/html", "application/pdf", "application/zip")


class ExtractionError(Exception):
    """The bytes cannot be archived; the message is shown to the user as is."""


class Unsupported(ExtractionError):
    pass


class TooSlowForRequest(ExtractionError):
    """The file was not read within the time a web request may spend on it (its ``budget``,
    SCHOLION_READ_REQUEST_SECONDS), or within the memory its child process may take
    (SCHOLION_READ_REQUEST_MEMORY_BYTES): it is read again on the worker, without those caps."""


class Undecodable(ExtractionError):
    pass


@dataclass
class Extraction:
    media_type: str
    encoding: str
    encoding_note: str
    text: str
    blocks: list[dict]
    extractor: str
    extractor_version: str
    metadata: dict = field(default_factory=dict)
    # Where the text layer's pages (or chapters) begin and end: see archive.divisions.
    divisions: dict = field(default_factory=dict)


# Magic numbers of common binary formats, so the error can name what was uploaded.
MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"RIFF", "application/octet-stream"),
    (b"\x7fELF", "application/x-executable"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"{\\rtf", "application/rtf"),
    (b"\xd0\xcf\x11\xe0", "application/x-ole-storage"),
]
HTML_STARTS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<!--",
    b"<title",
    b"<meta",
    b"<article",
    b"<div",
    b"<p>",
    b"<p ",
    b"<h1",
    b"<table",
    b"<script",
    b"<style",
    b"<br",
    b"<a ",
    b"<b>",
    b"<font",
    b"<iframe",
)
BOMS = [
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def bom_encoding(head: bytes) -> str | None:
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    return None


def sniff(head: bytes) -> str:
    """The media type the bytes themselves show, from their first bytes."""
    for magic, media_type in MAGIC:
        if head.startswith(magic):
            return media_type
    encoding = bom_encoding(head)
    if encoding:
        try:
            sample = head.decode(encoding, errors="ignore")
        except LookupError:
            sample = ""
        return _text_kind(sample.lstrip().lower().encode("ascii", "ignore"))
    if b"\x00" in head[:8192]:
        return "application/octet-stream"
    # Mostly control characters (other than tab, newline, form feed, carriage return) means binary.
    window = head[:8192]
    controls = sum(1 for b in window if b < 32 and b not in (9, 10, 12, 13, 27))
    if window and controls / len(window) > 0.05:
        return "application/octet-stream"
    return _text_kind(head.lstrip().lower())


def _text_kind(lowered: bytes) -> str:
    return "text/html" if lowered.startswith(HTML_STARTS) else "text/plain"


def decode_plain(data: bytes) -> tuple[str, str, str]:
    """Decode text bytes; returns (text, encoding, the decision in words)."""
    encoding = bom_encoding(data)
    if encoding:
        try:
            return data.decode(encoding), encoding, BOM_NOTE.format(encoding)
        except UnicodeDecodeError as exc:
            raise bad_bom(encoding, exc.start) from None
    try:
        return data.decode("utf-8"), "utf-8", UTF8_NOTE
    except UnicodeDecodeError as exc:
        utf8_error = exc.start
    # Not UTF-8. Windows-1252 is a superset of Latin-1's printable range and is what
    # mislabelled "Latin-1" text almost always is; it leaves five bytes undefined.
    try:
        return data.decode("cp1252"), "windows-1252", CP1252_NOTE.format(utf8_error)
    except UnicodeDecodeError:
        raise undecodable(utf8_error) from None


# The decisions and failures in words, shared by whole-file and chunked decoding.
BOM_NOTE = "{}: byte-order mark present"
UTF8_NOTE = "utf-8: the bytes are valid UTF-8"
DECLARED_NOTE = "{}: declared in <meta charset>"
TRANSPORT_NOTE = "{}: declared by the server (Content-Type)"
CP1252_NOTE = (
    "windows-1252: not valid UTF-8 (first invalid byte at {}), every byte defined in Windows-1252"
)


def bad_bom(encoding: str, at: int) -> Undecodable:
    return Undecodable(
        f"The file starts with a {encoding} byte-order mark but is not valid {encoding}"
        f" (byte {at})."
    )


def undecodable(utf8_error: int) -> Undecodable:
    return Undecodable(
        f"The text could not be decoded: it is not valid UTF-8 (first invalid byte at"
        f" offset {utf8_error}) and not Windows-1252/Latin-1. Save it as UTF-8 and try again."
    )


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


PLAIN_EXTRACTOR = ("plain-text", "1")
# An HTML page's article (archive.extract.article); named here so that naming it does not
# load the extraction library.
ARTICLE_EXTRACTOR = ("article", "2")
# A PDF's text layer, page by page (archive.extract.pdf).
PDF_EXTRACTOR = ("pdf", "1")
# A Word document's text layer (archive.extract.docx) and an EPUB book's, chapter by chapter
# (archive.extract.epub).
DOCX_EXTRACTOR = ("docx", "1")
EPUB_EXTRACTOR = ("epub", "1")


def extract_plain(data: bytes) -> Extraction:
    text, encoding, note = decode_plain(data)
    text = normalise_newlines(text)
    if "\x00" in text:
        raise Unsupported("The file contains NUL characters: it looks like binary data, not text.")
    if not text or text.isspace():  # isspace(), not strip(): no copy of a huge text
        raise ExtractionError("The file holds no text (it is empty or only whitespace).")
    return Extraction(
        media_type="text/plain",
        encoding=encoding,
        encoding_note=note,
        text=text,
        blocks=plain_blocks(text),
        extractor=PLAIN_EXTRACTOR[0],
        extractor_version=PLAIN_EXTRACTOR[1],
        metadata=plain_metadata(text),
    )


def plain_blocks(text: str) -> list[dict]:
    """Paragraphs are runs of lines separated by blank lines; offsets index ``text``."""
    blocks: list[dict] = []
    pos = 0
    length = len(text)
    while pos < length:
        # skip blank lines
        while pos < length and text[pos] == "\n":
            pos += 1
        if pos >= length:
            break
        end = text.find("\n\n", pos)
        if end == -1:
            end = length
        stop = end
        while stop > pos and text[stop - 1] in "\n":
            stop -= 1
        if stop > pos:
            blocks.append({"t": "p", "s": pos, "e": stop})
        pos = end
    return blocks


def plain_metadata(text: str) -> dict:
    """A plain text gives only a guess at its title: its first non-empty line, if short."""
    # Only the first lines are split off: split("\n", 20) would copy the rest of the text.
    pos = 0
    for _ in range(20):
        end = text.find("\n", pos)
        stop = len(text) if end == -1 else end
        line = text[pos : min(stop, pos + 1000)].strip()
        if line:
            return {"title": line} if len(line) <= 200 and stop - pos <= 1000 else {}
        if end == -1:
            break
        pos = end + 1
    return {}


def extract(
    data: bytes, declared_type: str = "", base_url: str = "", *, whole_page: bool = False
) -> Extraction:
    """Dispatch on the sniffed type. The declared type is recorded by the caller, not trusted.

    An HTML page gives its article (the ``article`` extractor), or the whole page (``html``)
    when ``whole_page`` is asked for or no article is found in it.
    """
    if not data:
        raise ExtractionError("The file is empty: there is nothing to archive.")
    media_type = supported_type(data[:65536], declared_type)
    if media_type == "text/html":
        from archive.extract.article import extract_article

        return extract_article(
            data, base_url=base_url, whole_page=whole_page, content_type=declared_type
        )
    if media_type == "text/plain":
        return extract_plain(data)
    if media_type == "application/pdf":
        # Read from a file by a child process (archive.ingest passes its spool file).
        import tempfile

        from archive.extract.pdf import extract_pdf

        with tempfile.TemporaryFile() as file:
            file.write(data)
            return extract_pdf(file)
    if media_type == "application/zip":
        from io import BytesIO

        from archive.extract.zipped import extract_package

        return extract_package(BytesIO(data))
    raise AssertionError(media_type)


# A page or a text up to this long is read in the request's own process: the slowest input
# measured (bench/NOTES.md, "Issue 32: requests within the timeout") reads in about a second
# at these lengths, well inside the read budget, and a child process costs about a second to
# start. trafilatura is far slower on some markup than plain text's paragraphs are.
INLINE_PAGE_BYTES = 64 * 1024
INLINE_TEXT_BYTES = 1024 * 1024
# Exit status of a child of read_in_child that refused the file; the message is on stdout.
REFUSED = 3
# Exit status of a child of read_in_child that ran out of the memory it may take.
OUT_OF_MEMORY = 4


def extract_within(
    file: IO[bytes],
    budget: float,
    declared_type: str = "",
    base_url: str = "",
    *,
    whole_page: bool = False,
) -> Extraction:
    """``extract`` of an HTML page or a plain text in ``file`` (a real file, read from its
    start) within ``budget`` seconds, or TooSlowForRequest.

    A long page of pathological markup (a huge table, a million tiny elements) takes longer to
    read than a request may run, and neither the HTML parser nor trafilatura can be stopped
    from within: the file is read in a child process, killed when the budget runs out."""
    return read_in_child(
        "archive.extract",
        [declared_type, base_url, whole_page],
        file,
        budget,
        "Reading this file failed unexpectedly, so nothing was archived.",
    )


def read_in_child(
    module: str, arguments: object, file: IO[bytes], budget: float, failed: str
) -> Extraction:
    """The Extraction that ``module``'s ``child_main`` makes of ``file`` (a real file, read
    from its start) in a child process, given ``arguments`` (JSON), killed past ``budget``
    seconds (TooSlowForRequest). A file the child refuses raises its ExtractionError; a child
    that fails otherwise raises ``failed``, the cause going to the log."""
    import json
    import logging
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings

    memory_bytes = settings.SCHOLION_READ_REQUEST_MEMORY_BYTES
    file.seek(0)
    command = [
        sys.executable,
        "-I",  # no user site-packages, no PYTHON* variables: only what the server runs
        "-c",
        # The cap is set before anything is imported: a page built to exhaust the parser
        # fails alone, not the web server's machine.
        "import resource, sys; m = int(sys.argv[3]);"
        " resource.setrlimit(resource.RLIMIT_AS, (m, m)); sys.path.insert(0, sys.argv[1]);"
        f" from {module} import child_main;"
        " child_main(*__import__('json').loads(sys.argv[2]))",
        str(Path(__file__).resolve().parent.parent.parent),
        json.dumps(arguments),
        str(memory_bytes),
    ]
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter running our own code
            command, stdin=file, capture_output=True, timeout=max(budget, 0), check=False
        )
    except subprocess.TimeoutExpired:  # the child is killed
        raise TooSlowForRequest(f"not read within {budget} seconds") from None
    if result.returncode == REFUSED:
        raise ExtractionError(result.stdout.decode("utf-8", "replace"))
    if result.returncode == OUT_OF_MEMORY:
        raise TooSlowForRequest(f"not read within {memory_bytes // 1024 // 1024} MiB of memory")
    if result.returncode != 0:
        logging.getLogger(__name__).error(
            "reading in %s failed: %s", module, result.stderr.decode("utf-8", "replace")
        )
        raise ExtractionError(f"{failed} If it keeps failing, tell an administrator.")
    return Extraction(**json.loads(result.stdout))


def reply_from_child(read: Callable[[bytes], Extraction]) -> None:
    """In a child of ``read_in_child``: ``read`` the bytes on stdin and write the Extraction
    as JSON on stdout, or a refusal's message with the exit status REFUSED."""
    import dataclasses
    import json
    import os
    import sys

    from archive.extract.pdf import _die_with_parent

    _die_with_parent()
    try:
        extraction = read(sys.stdin.buffer.read())
        # ASCII: a text layer is whatever the file held, lone surrogates included.
        reply = json.dumps(dataclasses.asdict(extraction))
    except ExtractionError as exc:
        sys.stdout.write(str(exc))
        sys.stdout.flush()
        os._exit(REFUSED)
    except MemoryError:
        os._exit(OUT_OF_MEMORY)
    sys.stdout.write(reply)
    sys.stdout.flush()


def child_main(declared_type: str, base_url: str, whole_page: bool) -> None:
    """Read a text or a page on stdin (see ``extract_within``)."""

    def read(data: bytes) -> Extraction:
        media_type = supported_type(data[:65536], declared_type)
        if media_type not in ("text/html", "text/plain"):
            raise AssertionError(media_type)  # archive.ingest reads other kinds itself
        return extract(data, declared_type=declared_type, base_url=base_url, whole_page=whole_page)

    reply_from_child(read)


def supported_type(head: bytes, declared_type: str = "") -> str:
    """The sniffed media type of bytes starting with ``head``, if Scholion archives it."""
    media_type = sniff(head)
    if media_type not in SUPPORTED_TYPES:
        declared = f" (declared as {declared_type})" if declared_type else ""
        raise Unsupported(
            f"This file is {media_type}{declared}, which Scholion cannot archive yet."
            f" Supported types: {supported_list()}."
        )
    return media_type


def supported_list() -> str:
    return "plain text (text/plain), HTML (text/html), PDF (application/pdf), Word (DOCX) and EPUB"


# A source whose file is too long for a text layer: its bytes are archived, it has no text.
NO_TEXT_EXTRACTOR = ("none", "1")


def extract_without_text(
    head: bytes,
    read: Callable[[], Iterable[bytes]],
    declared_type: str = "",
    base_url: str = "",
) -> Extraction:
    """What a file too long for a text layer is, read chunk by chunk in constant memory.

    The type is sniffed and the encoding decided as for a text layer (the whole file is
    checked to decode), the metadata comes from the first bytes; the text layer is empty.
    """
    media_type = supported_type(head, declared_type)
    declared: list[tuple[tuple[str, str] | None, str]] = []
    if media_type == "text/html":
        from archive.extract.html import declared_charset, transport_charset

        declared = [
            (transport_charset(declared_type), TRANSPORT_NOTE),
            (declared_charset(head), DECLARED_NOTE),
        ]
    encoding, note = decode_stream(head, read, declared, text=media_type == "text/plain")
    sample = head.decode(encoding, errors="ignore")
    if media_type == "text/html":
        from archive.extract.html import head_metadata

        metadata = head_metadata(sample, base_url)
    else:
        metadata = plain_metadata(normalise_newlines(sample))
    return Extraction(
        media_type=media_type,
        encoding=encoding,
        encoding_note=note,
        text="",
        blocks=[],
        extractor=NO_TEXT_EXTRACTOR[0],
        extractor_version=NO_TEXT_EXTRACTOR[1],
        metadata=metadata,
    )


def decode_stream(
    head: bytes,
    read: Callable[[], Iterable[bytes]],
    declared: list[tuple[tuple[str, str] | None, str]],
    *,
    text: bool,
) -> tuple[str, str]:
    """``decode_plain``'s (or, given the charsets an HTML page was declared in, each with
    the words that say where, ``decode_html``'s) decision for a file read chunk by chunk:
    (encoding, the decision in words). Each call of ``read`` reads the file again from its
    start; a plain text must hold no NUL."""
    bom = bom_encoding(head)
    if bom:
        error = _decode_error(bom, read(), text)
        if error is not None:
            raise bad_bom(bom, error)
        return bom, BOM_NOTE.format(bom)
    for charset, where in declared:
        if charset is None:
            continue
        codec, name = charset
        try:
            if _decode_error(codec, read(), text) is None:
                return name, where.format(name)
        except LookupError:
            pass
    utf8_error = _decode_error("utf-8", read(), text)
    if utf8_error is None:
        return "utf-8", UTF8_NOTE
    if _decode_error("cp1252", read(), text) is None:
        return "windows-1252", CP1252_NOTE.format(utf8_error)
    raise undecodable(utf8_error)


def _decode_error(encoding: str, chunks: Iterable[bytes], text: bool) -> int | None:
    """The offset of the first byte that does not decode, or None when all of it does."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    for chunk in chunks:
        pending = len(decoder.getstate()[0])  # bytes of a character the last chunk cut
        try:
            decoded = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return max(offset - pending + exc.start, 0)
        if text and "\x00" in decoded:
            raise Unsupported(
                "The file contains NUL characters: it looks like binary data, not text."
            )
        offset += len(chunk)
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset - pending
    return None
