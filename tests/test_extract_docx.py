"""Word (DOCX) sources: the extractor ``docx`` 1, its structure and metadata, and bad files."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from archive.blobstore import archive_storage, blob_name
from archive.ingest import ArchiveError, archive_chunks
from archive.models import Source
from tests.docs import make_docx

pytestmark = pytest.mark.django_db

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def marker() -> str:
    # Distinct bytes per test: blobs outlive each test's rolled-back rows.
    return f"Marker {uuid.uuid4().hex}."


def archive_docx(data: bytes, owner, **kwargs) -> Source:
    return archive_chunks(iter([data]), user=owner, filename="interview.docx", **kwargs).source


def shown_blocks(source: Source) -> list[tuple[str, str]]:
    return [(b["t"], source.text[b["s"] : b["e"]]) for b in source.blocks]


def test_a_word_document_is_archived_with_its_structure_in_document_order(owner):
    first = marker()
    data = make_docx(first)
    source = archive_docx(data, owner)
    assert (source.media_type, source.extractor, source.extractor_version) == (DOCX, "docx", "1")
    with source.open_original() as original:
        assert original.read() == data  # the bytes unchanged
    assert shown_blocks(source) == [
        ("h1", "Interview"),
        ("h2", "Part one"),
        ("p", first),
        ("p", "The harbour master said the tolls rose[1] in 1850."),
        ("li", "Coal ships"),
        ("li", "Grain ships"),
        ("li", "First the tolls"),
        ("h3", "Part two"),
        ("th", "Year"),
        ("th", "Tonnage"),
        ("td", "1850"),
        ("td", "12,000"),
        ("p", "After the table."),
        ("h2", "Notes"),
        ("p", "[1] Recorded at the harbour office."),
    ]
    items = [b for b in source.blocks if b["t"] == "li"]
    assert [b["list"][0] for b in items] == ["ul", "ul", "ol"]
    assert items[0]["list"] == items[1]["list"] != items[2]["list"]
    cells = [b for b in source.blocks if b["t"] in ("th", "td")]
    assert {b["table"] for b in cells} == {cells[0]["table"]}
    assert [b["row"] for b in cells] == [0, 0, 1, 1]
    assert source.divisions == {}  # a Word document has no pages of its own to cite


def test_metadata_comes_from_the_core_properties(owner):
    source = archive_docx(make_docx(marker(), title="Tolls at Leith", author="Ann Smith"), owner)
    assert source.title == "Tolls at Leith"
    assert source.creators == ["Ann Smith"]
    assert source.date_published == "2021-03-04"
    assert source.language == "en"


def test_the_reading_page_shows_the_document(client, owner, collection):
    source = archive_docx(make_docx(marker()), owner, collection=collection)
    client.force_login(owner)
    response = client.get(source.get_absolute_url())
    assert response.status_code == 200
    page = response.content.decode()
    assert '<h3 class="blk"' in page and ">Part one</span></h3>" in page
    assert "<table><tr><th" in page and ">Tonnage</span></th>" in page
    assert "<ul><li" in page and "<ol><li" in page
    assert "Download original" in page


def test_upload_archives_a_word_document(client, owner):
    client.force_login(owner)
    data = make_docx(marker(), title="Uploaded interview")
    file = SimpleUploadedFile("upload.docx", data, content_type=DOCX)
    response = client.post("/sources/new/", {"file": file})
    assert response.status_code == 302
    source = Source.objects.get(sha256=hashlib.sha256(data).hexdigest())
    assert response["Location"] == f"/sources/{source.uuid}/edit/"
    assert (source.title, source.extractor, source.archived_by) == (
        "Uploaded interview",
        "docx",
        owner,
    )


def test_the_command_line_archives_a_word_document(tmp_path):
    path = tmp_path / "cli.docx"
    first = marker()
    path.write_bytes(make_docx(first))
    out = StringIO()
    call_command("archive", str(path), stdout=out, stderr=StringIO())
    source = Source.objects.get()
    assert source.extractor == "docx"
    assert first in source.text
    assert str(source.uuid) in out.getvalue()


def rezip(
    data: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None
):
    """The zip ``data`` with entries replaced or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            body = (replace or {}).get(info.filename, old.read(info.filename))
            new.writestr(info.filename, body, compress_type=zipfile.ZIP_DEFLATED)
        for name, body in (add or {}).items():
            new.writestr(name, body, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


ENTITIES = b"""<?xml version="1.0"?>
<!DOCTYPE w:document [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:r><w:t>&secret;</w:t></w:r></w:p></w:body></w:document>"""


EMPTY = b"""<?xml version="1.0"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p/><!-- ID --></w:body></w:document>"""


def plain_zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("malformed", "its word/document.xml is not well-formed XML"),
        ("external entity", "declares XML entities"),
        ("zip bomb", "MiB, more than the 1 MiB Scholion unpacks"),
        ("too many entries", "more than the 20 Scholion unpacks"),
        ("path traversal", "a file named outside the archive ('../../etc/cron.d/x')"),
        ("truncated", "could not be read"),
        ("no text", "holds no text"),
        ("another zip", "not a Word document (DOCX) or an EPUB book"),
    ],
)
def test_a_bad_word_document_is_refused_with_a_clear_message_and_leaves_nothing(
    owner, settings, name, needle
):
    settings.SCHOLION_MAX_UNZIPPED_BYTES = 1024 * 1024
    settings.SCHOLION_MAX_ZIP_ENTRIES = 20
    good = make_docx(marker())
    data = {
        "malformed": lambda: rezip(good, {"word/document.xml": b"<w:document><w:body>"}),
        "external entity": lambda: rezip(good, {"word/document.xml": ENTITIES}),
        "zip bomb": lambda: rezip(good, add={"word/media/big.bin": b"\0" * (3 * 1024 * 1024)}),
        "too many entries": lambda: rezip(good, add={f"x/{i}.txt": b"x" for i in range(30)}),
        "path traversal": lambda: rezip(good, add={"../../etc/cron.d/x": b"* * * * * boom"}),
        "truncated": lambda: good[: len(good) // 2],
        "no text": lambda: rezip(
            good, {"word/document.xml": EMPTY.replace(b"ID", marker().encode())}
        ),
        "another zip": lambda: plain_zip({"notes.txt": marker().encode()}),
    }[name]()
    with pytest.raises(ArchiveError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        archive_docx(data, owner)
    assert not Source.objects.exists()
    assert not archive_storage().exists(blob_name(hashlib.sha256(data).hexdigest()))
    assert not list(Path(archive_storage().path("")).rglob(".partial-*"))


def test_an_upload_of_a_bad_word_document_says_why_and_keeps_nothing(client, owner):
    client.force_login(owner)
    data = rezip(make_docx(marker()), {"word/document.xml": ENTITIES})
    file = SimpleUploadedFile("bad.docx", data, content_type=DOCX)
    response = client.post("/sources/new/", {"file": file}, follow=True)
    assert response.status_code == 200
    assert "declares XML entities" in response.content.decode()
    assert not Source.objects.exists()


TEXT_BOX = b"""<?xml version="1.0"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"
 xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>
<w:p><w:r><w:t xml:space="preserve">Before the box ID. </w:t></w:r><w:r><mc:AlternateContent>
<mc:Choice Requires="wps"><w:txbxContent><w:p><w:r><w:t>Boxed text.</w:t></w:r></w:p>
</w:txbxContent></mc:Choice><mc:Fallback><w:txbxContent><w:p><w:r><w:t>Boxed text.</w:t></w:r>
</w:p></w:txbxContent></mc:Fallback></mc:AlternateContent></w:r></w:p>
<w:p><w:r><w:t>Deleted</w:t></w:r><w:del><w:r><w:delText> and gone</w:delText></w:r></w:del>
<w:r><w:t xml:space="preserve"> and kept.</w:t></w:r></w:p></w:body></w:document>"""


def test_a_text_box_is_read_once_and_deleted_text_is_left_out(owner):
    name = uuid.uuid4().hex
    data = rezip(make_docx(marker()), {"word/document.xml": TEXT_BOX.replace(b"ID", name.encode())})
    source = archive_docx(data, owner)
    assert source.text == f"Before the box {name}. Boxed text.\n\nDeleted and kept."
