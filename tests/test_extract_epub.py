"""EPUB sources: the extractor ``epub`` 1, its chapters and metadata, and bad books."""

from __future__ import annotations

import hashlib
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from archive.blobstore import archive_storage, blob_name
from archive.divisions import Divisions
from archive.ingest import ArchiveError, archive_chunks
from archive.models import Source
from tests.docs import BOOK_METADATA, CONTAINER_XML, book_chapters, chapter_page, make_epub

pytestmark = pytest.mark.django_db


def marker() -> str:
    # Distinct bytes per test: blobs outlive each test's rolled-back rows.
    return f"Marker {uuid.uuid4().hex}."


def archive_epub(data: bytes, owner, **kwargs) -> Source:
    return archive_chunks(iter([data]), user=owner, filename="book.epub", **kwargs).source


def chapters_of(source: Source) -> list[tuple[str, str]]:
    return [(label, source.text[s:e]) for s, e, label in source.divisions["spans"]]


def test_an_epub_is_archived_chapter_by_chapter_in_spine_order(owner):
    first = marker()
    data = make_epub(book_chapters(first), metadata=BOOK_METADATA)
    source = archive_epub(data, owner)
    assert (source.media_type, source.extractor, source.extractor_version) == (
        "application/epub+zip",
        "epub",
        "1",
    )
    with source.open_original() as original:
        assert original.read() == data
    # The second chapter opens with no heading: its title from the table of contents is one.
    # Its script is dropped, as a web page's is.
    assert chapters_of(source) == [
        ("1", f"The Harbour\n\n{first}\n\nShips came in at dawn.\n\n"),
        (
            "2",
            "The Tolls\n\nThe board raised the tolls in the spring.\n\nCoal ships paid double."
            "\n\nGrain ships paid nothing.\n\n",
        ),
        ("3", "The Reform\n\nThe motion carried."),
    ]
    kinds = [(b["t"], source.text[b["s"] : b["e"]]) for b in source.blocks]
    assert kinds[:4] == [
        ("h1", "The Harbour"),
        ("p", first),
        ("p", "Ships came in at dawn."),
        ("h2", "The Tolls"),
    ]
    assert [k for k, _ in kinds[5:7]] == ["li", "li"]
    tolls = source.text.index("raised the tolls")
    assert Divisions(source.divisions).locator(tolls, tolls + 16) == "ch. 2"
    nothing = source.text.index("paid nothing")
    assert Divisions(source.divisions).locator(tolls, source.text.index("motion")) == "chs. 2–3"
    assert Divisions(source.divisions).locator(nothing, nothing + 4) == "ch. 2"


def test_the_spine_orders_the_chapters_not_the_manifest(owner):
    first = marker()
    chapters = book_chapters(first)
    data = make_epub(chapters)
    # The same book with its spine reversed.
    spine = '<itemref idref="c1"/><itemref idref="c2"/><itemref idref="c3"/>'
    reversed_spine = '<itemref idref="c3"/><itemref idref="c2"/><itemref idref="c1"/>'
    opf = make_epub_opf(data).replace(spine, reversed_spine)
    source = archive_epub(make_epub(chapters, opf=opf), owner)
    assert [text.split("\n\n")[0] for _, text in chapters_of(source)] == [
        "The Reform",
        "The Tolls",
        "The Harbour",
    ]


def make_epub_opf(data: bytes) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return book.read("OEBPS/content.opf").decode()


def test_metadata_comes_from_the_opf(owner):
    source = archive_epub(make_epub(book_chapters(marker()), metadata=BOOK_METADATA), owner)
    assert source.title == "Ledgers of the Port"
    assert source.creators == ["Ruth Okafor", "Jon Berg"]
    assert source.date_published == "2019-06-01"
    assert source.language == "en"
    assert source.isbn == "9780306406157"
    assert source.doi == "10.5555/ledgers.2019"
    assert source.publisher == "Harbour Press"
    assert source.source_type == "book"


def test_an_epub_2_book_takes_its_chapter_titles_from_the_ncx(owner):
    chapters = [("Ignored", f"<p>{marker()}</p>"), ("Ignored", "<p>Second.</p>")]
    ncx = (
        '<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"><navMap>'
        '<navPoint id="a"><navLabel><text>Opening</text></navLabel>'
        '<content src="text/ch1.xhtml"/></navPoint>'
        '<navPoint id="b"><navLabel><text>Closing</text></navLabel>'
        '<content src="text/ch2.xhtml#top"/></navPoint></navMap></ncx>'
    )
    opf = make_epub_opf(make_epub(chapters, nav=False))
    opf = opf.replace(
        "</manifest>",
        '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/></manifest>',
    ).replace("<spine>", '<spine toc="ncx">')
    data = make_epub(chapters, nav=False, opf=opf, extra={"OEBPS/toc.ncx": ncx.encode()})
    source = archive_epub(data, owner)
    assert [text.split("\n\n")[0] for _, text in chapters_of(source)] == ["Opening", "Closing"]


def test_upload_archives_an_epub(client, owner):
    client.force_login(owner)
    data = make_epub(book_chapters(marker()), metadata=BOOK_METADATA)
    file = SimpleUploadedFile("book.epub", data, content_type="application/epub+zip")
    response = client.post("/sources/new/", {"file": file})
    assert response.status_code == 302
    source = Source.objects.get(sha256=hashlib.sha256(data).hexdigest())
    assert (source.title, source.extractor) == ("Ledgers of the Port", "epub")


def test_the_command_line_archives_an_epub(tmp_path):
    path = tmp_path / "cli.epub"
    path.write_bytes(make_epub(book_chapters(marker())))
    out = StringIO()
    call_command("archive", str(path), stdout=out, stderr=StringIO())
    source = Source.objects.get()
    assert (source.extractor, source.divisions["unit"]) == ("epub", "chapter")
    assert str(source.uuid) in out.getvalue()


ENCRYPTION = """<?xml version="1.0"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
 xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
<enc:EncryptionMethod Algorithm="{}"/>
<enc:CipherData><enc:CipherReference URI="{}"/></enc:CipherData>
</enc:EncryptedData></encryption>"""


def test_a_book_with_only_obfuscated_fonts_is_read(owner):
    encryption = ENCRYPTION.format("http://www.idpf.org/2008/embedding", "OEBPS/font.otf")
    data = make_epub(
        book_chapters(marker()), extra={"META-INF/encryption.xml": encryption.encode()}
    )
    assert archive_epub(data, owner).extractor == "epub"


OPF_WITH_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE package [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata
 xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&secret;</dc:title></metadata>
<manifest><item id="c1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/></manifest>
<spine><itemref idref="c1"/></spine></package>"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE package [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<package xmlns="http://www.idpf.org/2007/opf"><metadata/><manifest/><spine/></package>"""


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("encrypted", "is encrypted (protected by a password or DRM)"),
        ("adobe drm", "is encrypted (protected by a password or DRM)"),
        ("malformed opf", "its OEBPS/content.opf is not well-formed XML"),
        ("external entity", "declares XML entities"),
        ("entity expansion", "declares XML entities"),
        ("traversal in the manifest", "names a file outside the book ('../../../etc/passwd')"),
        ("traversal in an entry name", "a file named outside the archive ('/etc/passwd')"),
        ("missing chapter", "text/ch2.xhtml is missing"),
        ("no container", "META-INF/container.xml is missing"),
        ("zip bomb", "MiB, more than the 1 MiB Scholion unpacks"),
        ("too many entries", "more than the 20 Scholion unpacks"),
        ("no text", "holds no text"),
    ],
)
def test_a_bad_epub_is_refused_with_a_clear_message_and_leaves_nothing(
    owner, settings, name, needle
):
    settings.SCHOLION_MAX_UNZIPPED_BYTES = 1024 * 1024
    settings.SCHOLION_MAX_ZIP_ENTRIES = 20
    chapters = book_chapters(marker())
    good_opf = make_epub_opf(make_epub(chapters))
    aes = ENCRYPTION.format("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "OEBPS/text/ch1.xhtml")
    data = {
        "encrypted": lambda: make_epub(chapters, extra={"META-INF/encryption.xml": aes.encode()}),
        "adobe drm": lambda: make_epub(chapters, extra={"META-INF/rights.xml": b"<rights/>"}),
        "malformed opf": lambda: make_epub(chapters, opf=good_opf[:-20]),
        "external entity": lambda: make_epub(chapters, opf=OPF_WITH_ENTITY),
        "entity expansion": lambda: make_epub(chapters, opf=LAUGHS),
        "traversal in the manifest": lambda: make_epub(
            chapters, opf=good_opf.replace('href="text/ch1.xhtml"', 'href="../../../etc/passwd"')
        ),
        "traversal in an entry name": lambda: make_epub(chapters, extra={"/etc/passwd": b"x"}),
        "missing chapter": lambda: make_epub(chapters, extra={"OEBPS/text/ch2.xhtml": b""}).replace(
            b"OEBPS/text/ch2.xhtml", b"OEBPS/text/chX.xhtml"
        ),
        "no container": lambda: make_epub(
            chapters, container=CONTAINER_XML.replace("OEBPS", "OTHER")
        ).replace(b"META-INF/container.xml", b"META-INF/containeX.xml"),
        "zip bomb": lambda: make_epub(chapters, extra={"OEBPS/big.bin": b"\0" * 3 * 1024 * 1024}),
        "too many entries": lambda: make_epub(
            chapters, extra={f"OEBPS/x{i}.css": b"" for i in range(30)}
        ),
        "no text": lambda: make_epub(
            [("Cover", f'<img src="cover.png" alt=""/><!-- {uuid.uuid4().hex} -->')]
        ),
    }[name]()
    with pytest.raises(ArchiveError) as refused:
        archive_epub(data, owner)
    assert needle in str(refused.value)
    assert "Nothing was archived" in str(refused.value) or "nothing" in str(refused.value)
    assert not Source.objects.exists()
    assert not archive_storage().exists(blob_name(hashlib.sha256(data).hexdigest()))
    assert not list(Path(archive_storage().path("")).rglob(".partial-*"))


def test_a_chapter_without_a_table_of_contents_entry_takes_its_own_title(owner):
    page = chapter_page("Unused", f"<p>{marker()}</p>", head_title="From the head")
    chapters = [("Unused", "<p>x</p>")]
    data = make_epub(chapters, nav=False, extra={"OEBPS/text/ch1.xhtml": page.encode()})
    source = archive_epub(data, owner)
    assert source.text.startswith("From the head\n\nMarker ")


def test_a_book_with_more_text_than_the_limit_is_kept_without_a_text_layer(owner, settings):
    settings.SCHOLION_MAX_TEXT_BYTES = 100
    archived = archive_chunks(
        iter([make_epub(book_chapters(marker()), metadata=BOOK_METADATA)]), user=owner
    )
    source = archived.source
    assert (source.extractor, source.text, source.divisions) == ("none", "", {})
    assert source.title == "Ledgers of the Port"
    assert "no text layer" in archived.message
