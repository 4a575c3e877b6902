"""A file longer than SCHOLION_MAX_TEXT_BYTES: its bytes are archived, without a text layer."""

from __future__ import annotations

import hashlib
import io
import tracemalloc

import pytest
from django.core.management import call_command

from archive.blobstore import archive_storage, blob_name
from archive.extract import decode_stream
from archive.ingest import ArchiveError, archive_chunks
from archive.models import Source

LIMIT = 4096


@pytest.fixture(autouse=True)
def small_text_limit(settings):
    settings.SCHOLION_MAX_TEXT_BYTES = LIMIT


def long_text(first_line: str = "Harbour records of 1911", encoding: str = "utf-8") -> bytes:
    body = "\n\n".join(f"Ledger entry {i}: café, quay and tonnage." for i in range(400))
    return f"{first_line}\n\n{body}".encode(encoding)


def test_a_long_file_is_archived_unchanged_without_a_text_layer(owner, collection):
    data = long_text()
    archived = archive_chunks(
        iter([data[:5000], data[5000:]]), user=owner, collection=collection, filename="ledger.txt"
    )
    source = archived.source
    assert archived.created
    assert "too long to read or annotate" in archived.message
    source = Source.objects.get(pk=source.pk)
    assert not source.has_text_layer
    assert (source.text, source.blocks) == ("", [])
    assert (source.media_type, source.encoding) == ("text/plain", "utf-8")
    assert source.title == "Harbour records of 1911"
    assert source.sha256 == hashlib.sha256(data).hexdigest()
    with source.open_original() as fh:
        assert fh.read() == data
    assert source.verify_fixity().ok


def test_a_short_file_still_gets_its_text_layer(owner):
    data = long_text()[: LIMIT - 10]
    source = archive_chunks(iter([data]), user=owner).source
    assert source.has_text_layer
    assert source.text.startswith("Harbour records")


def test_the_source_page_explains_and_offers_the_original(client, owner, collection):
    source = archive_chunks(iter([long_text()]), user=owner, collection=collection).source
    client.force_login(owner)
    page = client.get(source.get_absolute_url()).content.decode()
    assert "too long to read or annotate in the browser" in page
    assert 'id="no-text-layer"' in page
    assert 'id="text-layer"' not in page
    assert f"/sources/{source.uuid}/original" in page


def test_it_is_discussed_in_notes_on_the_whole_source(
    client, owner, member, collection, django_user_model
):
    """No passage can be selected in it, but a note on all of it can be written and read."""
    source = archive_chunks(iter([long_text()]), user=owner, collection=collection).source
    client.force_login(member)
    page = client.get(source.get_absolute_url()).content.decode()
    assert "Notes on this source" in page and 'id="add-source-note"' in page
    assert 'data-can-annotate="false" data-can-note="true"' in page
    assert "Select a passage" not in page
    doc = {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "Annotation",
        "motivation": "commenting",
        "body": {"type": "TextualBody", "value": "The ledger's 1911 tonnage column is **blank**."},
        "target": f"http://testserver/sources/{source.uuid}/",
    }
    created = client.post("/api/annotations/", doc, content_type="application/ld+json")
    assert created.status_code == 201, created.content
    client.force_login(owner)
    page = client.get(source.get_absolute_url()).content.decode()
    assert "tonnage column is <strong>blank</strong>" in page
    # A stranger reads neither the note nor a way to write one, and cannot write one.
    stranger = django_user_model.objects.create_user("sam", "sam@example.org", "pw-sam-123")
    client.force_login(stranger)
    assert client.get(source.get_absolute_url()).status_code == 404
    refused = client.post("/api/annotations/", doc, content_type="application/ld+json")
    assert refused.status_code == 404


def test_annotating_it_is_refused_with_the_reason(client, owner, collection):
    source = archive_chunks(iter([long_text()]), user=owner, collection=collection).source
    client.force_login(owner)
    response = client.post(
        "/api/annotations/",
        {
            "type": "Annotation",
            "target": {
                "source": str(source.uuid),
                "selector": {"type": "TextPositionSelector", "start": 0, "end": 7},
            },
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "no text layer" in response.json()["error"]
    assert not source.annotations.exists()


def test_its_metadata_is_searchable(client, owner, collection):
    archive_chunks(
        iter([long_text("Tonnage ledgers of Valparaíso")]), user=owner, collection=collection
    )
    client.force_login(owner)
    page = client.get("/search/", {"q": "valparaiso"}).content.decode()
    assert "Tonnage ledgers of <mark>Valparaíso</mark>" in page


def test_windows_1252_is_detected_over_the_whole_file(owner):
    # Valid UTF-8 for the first 64 KiB; a Latin-1 byte only near the end.
    data = ("Plain ASCII start\n\n" + "x" * 70_000 + "\n\nCafé").encode("cp1252")
    source = archive_chunks(iter([data]), user=owner).source
    assert source.encoding == "windows-1252"
    assert f"first invalid byte at {len(data) - 1}" in source.encoding_note


def test_html_keeps_its_type_declared_charset_and_title(owner):
    page = (
        '<!doctype html><html><head><meta charset="windows-1252">'
        "<title>Tonnage report</title></head><body>" + "<p>Caf\xe9 row</p>" * 500 + "</body></html>"
    ).encode("cp1252")
    source = archive_chunks(iter([page]), user=owner, declared_type="text/html").source
    assert not source.has_text_layer
    assert (source.media_type, source.encoding) == ("text/html", "windows-1252")
    assert source.title == "Tonnage report"


def test_a_long_page_is_read_in_the_charset_its_server_declared(owner):
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        "<title>Tonnage r\xe9sum\xe9</title></head><body>"
        + "<p>Caf\xe9 row</p>" * 500
        + "</body></html>"
    ).encode("cp1252")
    declared = "text/html; charset=windows-1252"
    source = archive_chunks(iter([page]), user=owner, declared_type=declared).source
    assert not source.has_text_layer
    assert source.encoding_note == "windows-1252: declared by the server (Content-Type)"
    assert source.title == "Tonnage r\xe9sum\xe9"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"%PDF-1.7\n" + b"x" * (2 * LIMIT), "application/pdf"),
        (b"text at first\n" * 5000 + b"\x00\x01binary tail", "NUL characters"),
        (b"\xef\xbb\xbfwith a BOM " * 500 + b"\xff\xfe", "not valid utf-8-sig"),
        (b"\x81\x8d\x8f\x90\x9d" + b"\x81" * (2 * LIMIT), "could not be decoded"),
    ],
)
def test_bad_long_input_gets_the_same_clear_errors_and_leaves_nothing(owner, data, needle):
    with pytest.raises(ArchiveError, match=needle):
        archive_chunks(iter([data]), user=owner, filename="long.txt")
    assert not Source.objects.exists()
    assert not archive_storage().exists(blob_name(hashlib.sha256(data).hexdigest()))


def test_a_character_cut_between_chunks_still_decodes():
    data = "Ledger: déjà vu, 🙂 and Ωmega.".encode()

    def read():
        return (data[i : i + 1] for i in range(len(data)))  # every multi-byte char cut

    assert decode_stream(data[:10], read, [], text=True)[0] == "utf-8"
    broken = data[:12] + b"\xc3(" + data[12:]  # a lead byte without its continuation

    def read_broken():
        return (broken[i : i + 3] for i in range(0, len(broken), 3))

    encoding, note = decode_stream(broken[:10], read_broken, [], text=True)
    assert encoding == "windows-1252"
    assert "first invalid byte at 12" in note


def test_memory_stays_flat_however_long_the_file(owner, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 64 * 1024 * 1024
    size = 24 * 1024 * 1024
    line = b"A steady line of harbour records, one after another.\n"
    chunk = line * (1024 * 1024 // len(line))

    def chunks():
        for _ in range(size // len(chunk)):
            yield chunk

    tracemalloc.start()
    try:
        source = archive_chunks(chunks(), user=owner).source
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not source.has_text_layer
    # Chunks of 1 MiB are read, hashed, decoded and written; the file is never held whole.
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1024 / 1024:.1f} MiB"


def test_the_archive_command_says_why_there_is_no_text_layer(owner, tmp_path):
    path = tmp_path / "ledger.txt"
    path.write_bytes(long_text())
    out, err = io.StringIO(), io.StringIO()
    call_command("archive", str(path), "--user", owner.username, stdout=out, stderr=err)
    assert "Harbour records of 1911" in out.getvalue()
    assert "no text layer" in err.getvalue()


def test_the_archive_page_states_both_limits(client, owner, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
    client.force_login(owner)
    page = client.get("/sources/new/").content.decode().replace("\xa0", " ")
    assert "Up to 50.0 MB; a file over 4.0 KB is kept without a text layer" in page


def test_a_text_in_more_pieces_than_the_reading_page_can_set_out_has_no_text_layer(
    client, owner, settings
):
    settings.SCHOLION_MAX_TEXT_BYTES = 16 * 1024 * 1024
    settings.SCHOLION_MAX_TEXT_BLOCKS = 3
    data = b"Ledger\n\nOne\n\nTwo\n\nThree\n\nFour"
    archived = archive_chunks(iter([data]), user=owner, filename="ledger.txt")
    source = Source.objects.get(pk=archived.source.pk)
    assert not source.has_text_layer and (source.text, source.blocks) == ("", [])
    assert source.title == "Ledger" and source.verify_fixity().ok
    client.force_login(owner)
    page = client.get(source.get_absolute_url()).content.decode()
    assert "in too many pieces (more than 3 paragraphs, list items and table cells)" in page
    assert 'id="text-layer"' not in page


def test_a_text_in_as_many_pieces_as_allowed_keeps_its_text_layer(owner, settings):
    settings.SCHOLION_MAX_TEXT_BYTES = 16 * 1024 * 1024
    settings.SCHOLION_MAX_TEXT_BLOCKS = 4
    source = archive_chunks(iter([b"Ledger\n\nOne\n\nTwo\n\nThree"]), user=owner).source
    assert source.has_text_layer and len(source.blocks) == 4
