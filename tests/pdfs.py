"""Small PDFs written by hand for the tests: no PDF writer is a dependency.

A page is a list of lines, each (x, y, text) in points on a US Letter page, drawn in
Helvetica. Code 1 in a line's text draws the ﬁ ligature glyph (``LIGATURE_FI``), as a
typesetter would for "fi".
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

LIGATURE_FI = "\x01"

Line = tuple[float, float, str]


def _literal(text: str) -> bytes:
    raw = text.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _content(lines: Sequence[Line]) -> bytes:
    parts = [b"BT /F1 10 Tf"]
    for x, y, text in lines:
        parts.append(b"1 0 0 1 %.2f %.2f Tm " % (x, y) + _literal(text) + b" Tj")
    parts.append(b"ET")
    return b"\n".join(parts)


def _stream(data: bytes, extra: bytes = b"", *, compress: bool = True) -> bytes:
    if compress:
        data = zlib.compress(data)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def pdf_string(text: str) -> bytes:
    """A PDF text string: UTF-16BE with a byte-order mark, in hex."""
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def make_pdf(
    pages: Sequence[Sequence[Line]],
    *,
    info: dict[str, str] | None = None,
    xmp: str | None = None,
    page_labels: bytes | None = None,
    encrypt: bool = False,
    extra_objects: Sequence[bytes] = (),
    page_contents: Sequence[bytes] | None = None,
) -> bytes:
    """A PDF of ``pages``. ``page_labels`` is the /PageLabels number tree's body, e.g.
    ``b"/Nums [0 << /S /r >> 2 << /S /D >>]"``; ``page_contents`` replaces the pages'
    drawn lines with raw content streams (stream objects, as written)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in last
    pages_id = add(b"")
    font = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding"
        b" << /Type /Encoding /BaseEncoding /WinAnsiEncoding /Differences [1 /fi] >> >>"
    )
    kids = []
    count = len(page_contents) if page_contents is not None else len(pages)
    for index in range(count):
        if page_contents is not None:
            content = add(page_contents[index])
        else:
            content = add(_stream(_content(pages[index])))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792]"
                b" /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_id, font, content)
            )
        )
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    catalog_body = b"<< /Type /Catalog /Pages %d 0 R" % pages_id
    if page_labels is not None:
        catalog_body += b" /PageLabels << " + page_labels + b" >>"
    if xmp is not None:
        metadata = add(
            _stream(xmp.encode("utf-8"), b" /Type /Metadata /Subtype /XML", compress=False)
        )
        catalog_body += b" /Metadata %d 0 R" % metadata
    objects[catalog - 1] = catalog_body + b" >>"
    for body in extra_objects:
        add(body)
    trailer = b"/Root %d 0 R" % catalog
    if info:
        info_id = add(
            b"<< "
            + b" ".join(b"/" + k.encode() + b" " + pdf_string(v) for k, v in info.items())
            + b" >>"
        )
        trailer += b" /Info %d 0 R" % info_id
    if encrypt:
        # The standard security handler with a user password nobody knows.
        encrypt_id = add(
            b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44"
            b" /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> >>"
        )
        trailer += b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (encrypt_id, b"ab" * 16, b"ab" * 16)

    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer,
        xref,
    )
    return bytes(out)


def text_page(*paragraphs: str, x: float = 72, top: float = 720) -> list[Line]:
    """A page of single-line paragraphs, one under the other, a blank line between them."""
    lines: list[Line] = []
    y = top
    for paragraph in paragraphs:
        for line in paragraph.split("\n"):
            lines.append((x, y, line))
            y -= 12
        y -= 12
    return lines
