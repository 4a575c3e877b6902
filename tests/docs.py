"""Word documents and EPUB books built in code for the tests (python-docx and zipfile)."""

from __future__ import annotations

import datetime
import io
import zipfile
from collections.abc import Sequence

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
FOOTNOTES_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes"


def make_docx(
    marker: str,
    *,
    title: str = "Interview with the harbour master",
    author: str = "Ann Smith; Bo Li",
    footnote: str = "Recorded at the harbour office.",
) -> bytes:
    """A Word document: a title, headings, paragraphs, a bulleted and a numbered list, a table
    with a header row, a link and a footnote."""
    import docx
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    core = document.core_properties
    core.title = title
    core.author = author
    core.created = datetime.datetime(2021, 3, 4, 10, 0)
    core.language = "en"
    document.add_heading("Interview", 0)
    document.add_heading("Part one", 1)
    document.add_paragraph(marker)
    said = document.add_paragraph("The harbour master said the tolls rose")
    reference = OxmlElement("w:r")
    mark = OxmlElement("w:footnoteReference")
    mark.set(qn("w:id"), "1")
    reference.append(mark)
    said._p.append(reference)  # type: ignore[arg-type]
    said.add_run(" in 1850.")
    document.add_paragraph("Coal ships", style="List Bullet")
    document.add_paragraph("Grain ships", style="List Bullet")
    document.add_paragraph("First the tolls", style="List Number")
    document.add_heading("Part two", 2)
    table = document.add_table(rows=2, cols=2)
    header = table.rows[0]._tr.get_or_add_trPr()
    header.append(OxmlElement("w:tblHeader"))
    for (row, col), text in {
        (0, 0): "Year",
        (0, 1): "Tonnage",
        (1, 0): "1850",
        (1, 1): "12,000",
    }.items():
        table.cell(row, col).text = text
    document.add_paragraph("After the table.")
    footnotes = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:footnotes xmlns:w="{W_NS}">'
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
        '<w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r>'
        f'<w:r><w:t xml:space="preserve"> {footnote}</w:t></w:r></w:p></w:footnote>'
        "</w:footnotes>"
    ).encode()
    part = Part(PackURI("/word/footnotes.xml"), FOOTNOTES_TYPE, footnotes, document.part.package)
    document.part.relate_to(part, FOOTNOTES_REL)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


CONTAINER_XML = (
    '<?xml version="1.0"?>\n<container version="1.0"'
    ' xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
    '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
    "</rootfiles></container>"
)

Chapter = tuple[str, str]  # (its title in the table of contents, its body's markup)


def chapter_page(title: str, body: str, *, head_title: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head><title>{head_title or title}</title></head><body>{body}</body></html>"
    )


def make_epub(
    chapters: Sequence[Chapter],
    *,
    metadata: str = "",
    extra: dict[str, bytes] | None = None,
    opf: str | None = None,
    container: str = CONTAINER_XML,
    nav: bool = True,
) -> bytes:
    """An EPUB 3 book of ``chapters`` (each a content document of the spine, with an entry in
    the navigation document); ``extra`` adds (or replaces) entries by name."""
    items = []
    refs = []
    files: dict[str, bytes] = {}
    links = []
    for number, (title, body) in enumerate(chapters, start=1):
        name = f"text/ch{number}.xhtml"
        items.append(f'<item id="c{number}" href="{name}" media-type="application/xhtml+xml"/>')
        refs.append(f'<itemref idref="c{number}"/>')
        files[f"OEBPS/{name}"] = chapter_page(title, body).encode()
        links.append(f'<li><a href="{name}">{title}</a></li>')
    if nav:
        items.append(
            '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        )
        files["OEBPS/nav.xhtml"] = chapter_page(
            "Contents", f'<nav epub:type="toc"><ol>{"".join(links)}</ol></nav>'
        ).encode()
    if opf is None:
        opf = (
            '<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="http://www.idpf.org/2007/opf"'
            ' version="3.0" unique-identifier="id"><metadata'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"{metadata or '<dc:title>A Book</dc:title>'}</metadata>"
            f"<manifest>{''.join(items)}</manifest><spine>{''.join(refs)}</spine></package>"
        )
    files["OEBPS/content.opf"] = opf.encode()
    files["META-INF/container.xml"] = container.encode()
    files.update(extra or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, data in files.items():
            book.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


BOOK_METADATA = (
    "<dc:title>Ledgers of the Port</dc:title><dc:creator>Ruth Okafor</dc:creator>"
    "<dc:creator>Jon Berg</dc:creator><dc:date>2019-06-01</dc:date><dc:language>en</dc:language>"
    '<dc:identifier id="id">urn:isbn:9780306406157</dc:identifier>'
    "<dc:identifier>doi:10.5555/ledgers.2019</dc:identifier><dc:publisher>Harbour Press</dc:publisher>"
)


def book_chapters(marker: str) -> list[Chapter]:
    return [
        ("The Harbour", f"<h1>The Harbour</h1><p>{marker}</p><p>Ships came in at dawn.</p>"),
        (
            "The Tolls",
            "<p>The board raised the tolls in the spring.</p>"
            "<ul><li>Coal ships paid double.</li><li>Grain ships paid nothing.</li></ul>"
            "<script>alert(1)</script>",
        ),
        ("The Reform", "<h2>The Reform</h2><p>The motion carried.</p>"),
    ]
