"""PDF sources: the extractor ``pdf`` 1, its page boundaries and metadata, and bad PDFs."""

from __future__ import annotations

import hashlib
import uuid
import zlib
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from archive.blobstore import archive_storage, blob_name
from archive.divisions import Divisions
from archive.ingest import ArchiveError, archive_chunks
from archive.models import Source
from tests.pdfs import LIGATURE_FI, make_pdf, text_page

pytestmark = pytest.mark.django_db


def marker() -> str:
    # Distinct bytes per test: blobs outlive each test's rolled-back rows.
    return f"Marker {uuid.uuid4().hex}."


def archive_pdf(data: bytes, owner, **kwargs) -> Source:
    return archive_chunks(iter([data]), user=owner, filename="report.pdf", **kwargs).source


def pages_of(source: Source) -> list[tuple[str, str]]:
    """Each page's label and the text it covers."""
    spans = source.divisions["spans"]
    return [(label, source.text[s:e]) for s, e, label in spans]


def two_column_page() -> list:
    left = [
        (72, 700, "The left column opens the page and"),
        (72, 688, "tells of the of" + LIGATURE_FI + "ce where an infor-"),
        (72, 676, "mation desk stood."),
    ]
    right = [
        (320, 700, "The right column follows it and"),
        (320, 688, "closes the page."),
    ]
    return right + left  # drawn right column first: reading order is not drawing order


def test_a_pdf_is_archived_page_by_page_in_reading_order(owner):
    first = marker()
    data = make_pdf([text_page("Front matter.", first), two_column_page(), text_page("The end.")])
    source = archive_pdf(data, owner)
    assert (source.media_type, source.extractor, source.extractor_version) == (
        "application/pdf",
        "pdf",
        "1",
    )
    assert source.has_text_layer
    with source.open_original() as original:
        assert original.read() == data  # the bytes unchanged
    pages = pages_of(source)
    assert [label for label, _ in pages] == ["1", "2", "3"]
    assert pages[0][1] == f"Front matter.\n\n{first}\n\n"
    assert pages[1][1] == (
        "The left column opens the page and tells of the office where an infor-mation"
        " desk stood.\n\nThe right column follows it and closes the page.\n\n"
    )
    assert pages[2][1] == "The end."
    # The pages partition the text layer, and every block lies on one page.
    spans = source.divisions["spans"]
    assert spans[0][0] == 0 and spans[-1][1] == len(source.text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert [source.text[b["s"] : b["e"]] for b in source.blocks][2:4] == [
        "The left column opens the page and tells of the office where an infor-mation desk stood.",
        "The right column follows it and closes the page.",
    ]


def test_printed_page_labels_are_used_and_an_empty_page_covers_nothing(owner):
    pages = [text_page("Preface", marker()), [], text_page("Chapter one."), text_page("More.")]
    data = make_pdf(pages, page_labels=b"/Nums [0 << /S /r >> 2 << /S /D /St 12 >>]")
    source = archive_pdf(data, owner)
    assert [(label, len(text) > 0) for label, text in pages_of(source)] == [
        ("i", True),
        ("ii", False),
        ("12", True),
        ("13", True),
    ]
    divisions = Divisions(source.divisions)
    chapter = source.text.index("Chapter one")
    assert divisions.locator(chapter, chapter + 7) == "p. 12"
    assert divisions.locator(chapter, source.text.index("More") + 4) == "pp. 12–13"
    assert divisions.labels(chapter, source.text.index("More") + 4) == "12–13"


def test_metadata_comes_from_the_document_information(owner):
    info = {
        "Title": "Tonnage in the Port of Leith",
        "Author": "Ann Smith; Bo Li",
        "CreationDate": "D:20240115093000Z",
    }
    source = archive_pdf(make_pdf([text_page(marker())], info=info), owner)
    assert source.title == "Tonnage in the Port of Leith"
    assert source.creators == ["Ann Smith", "Bo Li"]
    assert source.date_published == "2024-01-15"


def test_xmp_metadata_is_preferred_and_gives_the_doi(owner):
    xmp = """<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/">
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour Ledgers, 1850–1900</rdf:li></rdf:Alt></dc:title>
<dc:creator><rdf:Seq><rdf:li>Ruth Okafor</rdf:li><rdf:li>Jon Berg</rdf:li></rdf:Seq></dc:creator>
<prism:doi>10.5555/ledgers.2019.7</prism:doi>
<prism:publicationName>Journal of Port History</prism:publicationName>
<prism:publicationDate>2019-06</prism:publicationDate>
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"""
    data = make_pdf([text_page(marker())], info={"Title": "untitled.docx"}, xmp=xmp)
    source = archive_pdf(data, owner)
    assert source.title == "Harbour Ledgers, 1850–1900"
    assert source.creators == ["Ruth Okafor", "Jon Berg"]
    assert source.doi == "10.5555/ledgers.2019.7"
    assert source.container_title == "Journal of Port History"
    assert source.date_published == "2019-06"


def test_a_doi_printed_on_the_first_page_is_found(owner):
    data = make_pdf([text_page("Harbour Ledgers", "https://doi.org/10.5555/ledgers.7.", marker())])
    assert archive_pdf(data, owner).doi == "10.5555/ledgers.7"


def test_a_scanned_pdf_is_archived_without_a_text_layer_and_says_so(owner):
    data = make_pdf([[], []], info={"Title": f"Scanned minutes {uuid.uuid4().hex}"})
    archived = archive_chunks(iter([data]), user=owner, filename="scan.pdf")
    source = archived.source
    assert not source.has_text_layer
    assert (source.media_type, source.text, source.divisions) == ("application/pdf", "", {})
    assert source.title.startswith("Scanned minutes")
    assert "no text layer" in archived.message and "scanned" in archived.message


def bomb_page() -> bytes:
    """A content stream of a few hundred kilobytes that inflates to 400 MB."""
    squeeze = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    packed = b"".join(squeeze.compress(chunk) for _ in range(400)) + squeeze.flush()
    return (
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
    )


def slow_page() -> bytes:
    """A page of 300,000 lines: more than a second's reading."""
    lines = b"\n".join(b"1 0 0 1 72 %d Tm (slow line) Tj" % (i % 700) for i in range(300_000))
    packed = zlib.compress(b"BT /F1 10 Tf\n" + lines + b"\nET")
    return (
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
    )


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("encrypted", "encrypted with a password"),
        ("garbage", "could not be read"),
        ("truncated", "The PDF \\(application/pdf\\) is truncated"),
        ("too many pages", "The PDF has 5 pages, more than the 3 Scholion reads"),
        ("a page count that lies", "The PDF has more than the 3 pages Scholion reads"),
        ("bomb", "within the limits of"),
        # Out of CPU time, or, on a machine too loaded to give it that second, of wall time.
        ("slow", "within (the limits of )?1 seconds"),
    ],
)
def test_a_bad_pdf_is_refused_with_a_clear_message_and_leaves_nothing(
    owner, settings, name, needle
):
    settings.SCHOLION_MAX_PDF_PAGES = 3
    settings.SCHOLION_PDF_MEMORY_BYTES = 256 * 1024 * 1024
    settings.SCHOLION_PDF_SECONDS = 1 if name == "slow" else 60
    page = text_page(marker())
    data = {
        "encrypted": lambda: make_pdf([page], encrypt=True),
        "garbage": lambda: b"%PDF-1.7\n" + marker().encode() + b"\x00\xff" * 500 + b"\n%%EOF\n",
        "truncated": lambda: make_pdf([page, page, page])[:-200],
        "too many pages": lambda: make_pdf([page] * 5),
        "a page count that lies": lambda: make_pdf([page] * 5).replace(b"/Count 5", b"/Count 1"),
        "bomb": lambda: make_pdf([page], page_contents=[bomb_page()]),
        "slow": lambda: make_pdf([page], page_contents=[slow_page()]),
    }[name]()
    with pytest.raises(ArchiveError, match=needle):
        archive_pdf(data, owner)
    assert not Source.objects.exists()
    assert not archive_storage().exists(blob_name(hashlib.sha256(data).hexdigest()))
    assert not list(Path(archive_storage().path("")).rglob(".partial-*"))


def test_upload_archives_a_pdf_and_leads_to_its_metadata(client, owner):
    client.force_login(owner)
    data = make_pdf([text_page("Uploaded report.", marker())], info={"Title": "Uploaded"})
    file = SimpleUploadedFile("upload.pdf", data, content_type="application/pdf")
    response = client.post("/sources/new/", {"file": file})
    assert response.status_code == 302
    source = Source.objects.get(sha256=hashlib.sha256(data).hexdigest())
    assert response["Location"] == f"/sources/{source.uuid}/edit/"
    assert (source.title, source.extractor, source.archived_by) == ("Uploaded", "pdf", owner)
    assert source.text.startswith("Uploaded report.")


def test_the_command_line_archives_a_pdf(tmp_path):
    path = tmp_path / "cli.pdf"
    path.write_bytes(make_pdf([text_page("From the command line.", marker())]))
    out = StringIO()
    call_command("archive", str(path), stdout=out, stderr=StringIO())
    source = Source.objects.get()
    assert source.extractor == "pdf"
    assert source.text.startswith("From the command line.")
    assert str(source.uuid) in out.getvalue()


def test_lines_join_as_read_and_an_unreadable_glyph_is_one_replacement_character():
    from archive.extract.pdf import join_lines

    assert join_lines(["a well-", "known infor-", "mation desk -", "not a break"]) == (
        "a well-known infor-mation desk - not a break"
    )
    # A bitmap font without a ToUnicode map: pdfminer writes "(cid:28)" for such a glyph.
    assert join_lines(["the (cid:28)scal (cid:28)-", "nance"]) == "the \ufffdscal \ufffd-nance"
