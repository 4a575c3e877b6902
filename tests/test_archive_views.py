"""Archiving, reading, downloading and describing sources through the web, bad input included."""

from __future__ import annotations

import hashlib
import html
import re
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from archive.blobstore import archive_storage, blob_name
from archive.models import Collection, Membership, Source
from tests.conftest import archive_text
from tests.helpers import archive_location

pytestmark = pytest.mark.django_db

ARCHIVE = "/sources/new/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def unique(text: str = "A report") -> str:
    # Distinct bytes per test: blobs outlive each test's rolled-back rows.
    return f"{text}\n\nBody {uuid.uuid4()}.\n"


def upload(
    client, name: str, data: bytes, content_type: str = "text/plain", follow=False, **fields
):
    file = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post(ARCHIVE, {"file": file, **fields}, follow=follow)


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def errors_shown(response) -> str:
    """The error messages the archive form shows, as the user reads them."""
    found = re.findall(r'<div class="error"[^>]*>(.*?)</div>', response.content.decode(), re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(found)))


def partial_files() -> list[Path]:
    return list(Path(archive_location()).rglob(".partial-*"))


def assert_nothing_archived(data: bytes) -> None:
    assert not Source.objects.filter(sha256=hashlib.sha256(data).hexdigest()).exists()
    assert not archive_storage().exists(blob_name(hashlib.sha256(data).hexdigest()))
    assert partial_files() == []


def archived_from(response) -> Source:
    """The source a successful archive POST redirected to (its metadata page)."""
    assert response.status_code == 302, errors_shown(response)
    match = re.fullmatch(r"/sources/([0-9a-f-]{36})/edit/", response["Location"])
    assert match, response["Location"]
    source = Source.objects.get(uuid=match.group(1))
    assert archive_storage().exists(source.blob_name)  # never a row without its bytes
    return source


@pytest.fixture
def public_collection(owner):
    return Collection.objects.create(slug="open", title="Open archive", owner=owner, is_public=True)


@pytest.fixture
def editor(django_user_model, collection):
    user = django_user_model.objects.create_user("eddie", "eddie@example.org", "pw-eddie-123")
    Membership.objects.create(collection=collection, user=user, role=Membership.Role.EDITOR)
    return user


# --- The archive page --------------------------------------------------------------------


def test_visitor_is_sent_to_log_in_before_archiving(client):
    response = client.get(ARCHIVE)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={ARCHIVE}"
    response = client.post(ARCHIVE, {"text": "Anonymous text"})
    assert response.status_code == 302
    assert Source.objects.count() == 0


def test_archive_page_is_linked_from_the_source_list(client, owner):
    client.force_login(owner)
    assert f'href="{ARCHIVE}"' in client.get("/sources/").text
    response = client.get(ARCHIVE)
    assert response.status_code == 200
    assert 'type="file"' in response.text and 'name="text"' in response.text


def test_archive_page_refuses_other_methods(client, owner):
    client.force_login(owner)
    assert client.put(ARCHIVE).status_code == 405
    assert client.delete(ARCHIVE).status_code == 405


def test_uploaded_file_is_archived_byte_for_byte(client, owner, collection):
    client.force_login(owner)
    data = unique("Notes from the field").encode()
    response = upload(
        client, "notes.txt", data, collection=collection.pk, original_url="example.org/notes"
    )
    source = archived_from(response)
    assert source.archived_via == Source.Via.UPLOAD
    assert source.archived_by == owner
    assert source.original_filename == "notes.txt"
    assert source.original_url == "https://example.org/notes"
    assert source.title == "Notes from the field"
    assert list(Collection.objects.filter(sources=source)) == [collection]
    with source.open_original() as fh:
        assert fh.read() == data
    # The metadata page comes next, pre-filled, with a message saying so.
    page = client.get(response["Location"])
    assert page.context["form"]["title"].value() == "Notes from the field"
    assert "Check the metadata" in page.text


def test_pasted_text_is_archived_as_utf8(client, owner):
    client.force_login(owner)
    text = unique("Pasted “quote” — 🙂")
    source = archived_from(client.post(ARCHIVE, {"text": text, "title": "My paste"}))
    assert source.archived_via == Source.Via.PASTE
    assert source.title == "My paste"
    assert source.encoding == "utf-8"
    with source.open_original() as fh:
        assert fh.read() == text.encode("utf-8")
    assert source.text == text


def test_html_upload_leads_to_metadata_prefilled_from_the_page(client, owner):
    client.force_login(owner)
    data = f"""<!doctype html><html lang="en"><head>
<title>Ceasefire talks resume</title>
<meta name="citation_author" content="Haddad, Rania">
<meta name="citation_author" content="Levi, Dan">
<meta name="citation_publication_date" content="2024/03/31">
</head><body><article><h1>Ceasefire talks resume</h1><p>Negotiators met. {uuid.uuid4()}</p>
</article></body></html>""".encode()
    response = upload(client, "article.html", data, content_type="text/html")
    source = archived_from(response)
    assert source.media_type == "text/html"
    form = client.get(response["Location"]).context["form"]
    assert form["title"].value() == "Ceasefire talks resume"
    assert form["creators"].value() == "Haddad, Rania\nLevi, Dan"


def test_archiving_bytes_already_archived_leads_to_the_existing_source(client, owner):
    client.force_login(owner)
    data = unique("Twice").encode()
    first = archived_from(upload(client, "a.txt", data))
    response = upload(client, "b.txt", data, follow=True)
    assert response.redirect_chain[-1][0] == first.get_absolute_url()
    assert "already archived" in page_text(response)
    assert Source.objects.count() == 1


def test_archiving_into_a_collection_the_user_cannot_write_is_refused(client, member, collection):
    client.force_login(member)  # an annotator, not an editor
    data = unique().encode()
    response = upload(client, "a.txt", data, collection=collection.pk)
    assert response.status_code == 200
    assert "Select a valid choice" in errors_shown(response)
    assert_nothing_archived(data)


# --- Bad input through the web form ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "content_type", "message"),
    [
        ("empty.txt", b"", "text/plain", "file is empty"),
        (
            "data.txt",
            b"\x00\x01\x02\x03binary\x00" * 50,
            "text/plain",
            "This file is application/octet-stream (declared as text/plain), which Scholion"
            " cannot archive yet",
        ),
        (
            "notes.txt",
            b"Caf\x81 \x8d\x8f\x90\x9d and more text",
            "text/plain",
            "not valid UTF-8 (first invalid byte at offset 3) and not Windows-1252/Latin-1."
            " Save it as UTF-8",
        ),
        (
            "bom.txt",
            b"\xef\xbb\xbfStarts as UTF-8 \xff\xfe then not",
            "text/plain",
            "byte-order mark but is not valid",
        ),
        (
            "page.html",
            PNG,
            "text/html",
            "This file is image/png (declared as text/html), which Scholion cannot archive yet."
            " Supported types: plain text (text/plain), HTML (text/html), PDF (application/pdf),"
            " Word (DOCX) and EPUB.",
        ),
        ("blank.txt", b" \n\n\t  \r\n", "text/plain", "no text"),
        ("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf", "application/pdf"),
    ],
)
def test_bad_upload_gets_a_clear_error_and_leaves_nothing(
    client, owner, name, data, content_type, message
):
    client.force_login(owner)
    response = upload(client, name, data, content_type=content_type)
    assert response.status_code == 200
    assert message in errors_shown(response)
    assert_nothing_archived(data)


def test_oversize_upload_is_refused_with_the_limit(client, owner, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 1000
    client.force_login(owner)
    data = unique("Too long " * 200).encode()
    response = upload(client, "long.txt", data)
    assert response.status_code == 200
    assert f"The file is {len(data):,} bytes, over the limit of 1,000 bytes." in errors_shown(
        response
    )
    assert_nothing_archived(data)


def test_oversize_pasted_text_is_refused_with_the_limit(client, owner, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 1000
    client.force_login(owner)
    text = unique("Too long " * 200)
    response = client.post(ARCHIVE, {"text": text})
    assert response.status_code == 200
    assert "larger than the limit of 1,000 bytes" in errors_shown(response)
    assert_nothing_archived(text.encode())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Choose a file to upload or paste some text."),
        ({"text": "  \n\t "}, "Choose a file to upload or paste some text."),
        ({"text": "nul \x00 inside"}, "Null characters are not allowed."),
        ({"text": "Some text", "original_url": "javascript:alert(1)"}, "Enter a valid URL."),
    ],
)
def test_bad_form_input_gets_a_clear_error(client, owner, fields, message):
    client.force_login(owner)
    response = client.post(ARCHIVE, fields)
    assert response.status_code == 200
    assert message in errors_shown(response)
    assert Source.objects.count() == 0


def test_uploading_a_file_and_pasting_text_at_once_is_refused(client, owner):
    client.force_login(owner)
    response = upload(client, "a.txt", unique().encode(), text="Also pasted")
    assert response.status_code == 200
    assert "Upload a file or paste text, not both." in errors_shown(response)
    assert Source.objects.count() == 0


def test_a_ten_megabyte_single_line_is_archived_and_readable(client, owner):
    client.force_login(owner)
    data = (str(uuid.uuid4()) + " word" * 2_100_000).encode()
    assert len(data) > 10_000_000 and b"\n" not in data
    source = archived_from(upload(client, "one-line.txt", data))
    assert source.title == "one-line.txt"  # a 10 MB first line is no title
    assert source.size == len(data)
    assert len(source.blocks) == 1
    response = client.get(source.get_absolute_url())
    assert response.status_code == 200
    assert "word word" in response.text
    download = client.get(f"/sources/{source.uuid}/original")
    assert b"".join(download.streaming_content) == data


def test_html_nested_a_hundred_thousand_levels_deep_gets_no_500(client, owner):
    client.force_login(owner)
    marker = f"deep text {uuid.uuid4()}"
    data = b"<div>" * 100_000 + marker.encode() + b"</div>" * 100_000
    response = upload(client, "deep.html", data, content_type="text/html")
    if response.status_code == 200:
        # Refused: then with a message, and nothing left behind.
        assert errors_shown(response).strip()
        assert_nothing_archived(data)
        return
    source = archived_from(response)
    assert marker in source.text
    reading = client.get(source.get_absolute_url())
    assert reading.status_code == 200
    assert marker in reading.text


HOSTILE = """<!doctype html><html><head><title>&lt;script&gt;alert('title')&lt;/script&gt;</title>
<script>alert(1)</script><script src="https://evil.example/x.js"></script>
<meta http-equiv="refresh" content="0;url=javascript:alert(2)">
<base href="javascript:alert(3)//">
<style>body { background: url("javascript:alert(4)") }</style>
<link rel="stylesheet" href="javascript:alert(5)">
</head><body onload="alert(6)">
<div style="background:url(javascript:alert(25))" onmouseover="alert(26)">
Safe text stays: MARKER</div>
<p><a href="https://example.org/ok">A good link</a></p>
<p onclick="alert(7)">Click <a href="javascript:alert(8)">here</a> or
<a href="JaVaScRiPt:alert(9)">there</a> or <a href="  javascript:alert(10)">spaced</a> or
<a href="java&#x09;script:alert(11)">tabbed</a> or <a href="vbscript:msgbox(12)">vb</a> or
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxMyk8L3NjcmlwdD4=">data</a>.</p>
<img src="x" onerror="alert(14)"><svg onload="alert(15)"><script>alert(16)</script></svg>
<iframe src="javascript:alert(17)"></iframe><iframe srcdoc="<script>alert(18)</script>"></iframe>
<form action="javascript:alert(19)"><input onfocus="alert(20)" autofocus></form>
<object data="javascript:alert(21)"></object><embed src="javascript:alert(22)">
<noscript><p>No script here.</p></noscript>
<template><script>alert(23)</script></template>
<math><mtext><table><mglyph><style><img src=x onerror=alert(24)></style></mglyph></table>
</mtext></math>
<script>document.write('<p>written</p>')</script>
</body></html>"""


def test_hostile_html_never_reaches_the_reading_page_as_markup(client, owner):
    client.force_login(owner)
    data = HOSTILE.replace("MARKER", str(uuid.uuid4())).encode()
    source = archived_from(upload(client, "hostile.html", data, content_type="text/html"))
    assert source.media_type == "text/html"
    assert "Safe text stays" in source.text
    for url in [source.get_absolute_url(), f"/sources/{source.uuid}/edit/", "/sources/"]:
        page = client.get(url).content.decode()
        lowered = page.lower()
        # The only script is Scholion's own module; nothing from the source runs.
        scripts = re.findall(r"<script[^>]*>", lowered)
        assert all('src="/static/' in s for s in scripts), scripts
        for needle in ["javascript:", "vbscript:", "onerror=", "onload=", "onclick=", "srcdoc"]:
            assert needle not in lowered, (url, needle)
        assert "<iframe" not in lowered and "<object" not in lowered and "<embed" not in lowered
        assert "<base" not in lowered and "http-equiv" not in lowered
    reading = client.get(source.get_absolute_url()).content.decode()
    article = reading.split('id="text-layer"', 1)[1].split("</article>", 1)[0]
    assert not re.search(r"\son\w+\s*=", article, re.I)
    assert "<style" not in article.lower() and "style=" not in article.lower()
    hrefs = re.findall(r'href="([^"]*)"', article)
    assert "https://example.org/ok" in hrefs
    assert all(h.startswith(("https://", "http://", "#", "/", "mailto:")) for h in hrefs), hrefs
    assert "written" not in source.text


def test_html_named_txt_is_read_as_html(client, owner):
    client.force_login(owner)
    marker = uuid.uuid4()
    data = f"<html><head><title>Lying name</title></head><body><p>{marker}</p></body></html>"
    source = archived_from(upload(client, "notes.txt", data.encode(), content_type="text/plain"))
    assert source.media_type == "text/html"
    assert source.declared_media_type == "text/plain"
    assert "<p>" not in source.text and str(marker) in source.text


# --- The original bytes ------------------------------------------------------------------


def test_original_is_a_download_that_never_runs_on_this_origin(client, owner):
    client.force_login(owner)
    data = HOSTILE.replace("MARKER", str(uuid.uuid4())).encode()
    source = archived_from(upload(client, "hostile.html", data, content_type="text/html"))
    response = client.get(f"/sources/{source.uuid}/original")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Disposition"] == 'attachment; filename="hostile.html"'
    assert response["Content-Type"] == "text/html"
    assert response["X-Content-Type-Options"] == "nosniff"
    # Exactly "sandbox": the site-wide policy from django-csp must not replace it.
    assert response["Content-Security-Policy"] == "sandbox"
    assert response["ETag"] == f'"{source.sha256}"'


def test_reading_page_links_the_download(client, owner):
    client.force_login(owner)
    source = archive_text(unique(), owner)
    page = client.get(source.get_absolute_url())
    assert f'href="/sources/{source.uuid}/original"' in page.text


def test_original_of_a_pasted_text_downloads_under_its_hash(client, owner):
    client.force_login(owner)
    source = archive_text(unique(), owner)
    response = client.get(f"/sources/{source.uuid}/original")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == source.text.encode()
    assert response["Content-Disposition"] == f'attachment; filename="{source.sha256}"'
    assert response["Content-Type"] == "text/plain"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"


def test_unknown_source_is_404(client, owner):
    client.force_login(owner)
    random = uuid.uuid4()
    assert client.get(f"/sources/{random}/").status_code == 404
    assert client.get(f"/sources/{random}/original").status_code == 404
    assert client.get(f"/sources/{random}/edit/").status_code == 404
    assert client.get("/sources/not-a-uuid/").status_code == 404


def test_withdrawn_source_is_404_for_its_archiver_but_a_curator_still_sees_it(
    client, owner, curator, collection
):
    source = archive_text(unique("Withdrawn piece"), owner, collection=collection)
    source.withdraw("Copyright complaint under review.")
    client.force_login(owner)
    for url in [source.get_absolute_url(), f"/sources/{source.uuid}/original"]:
        assert client.get(url).status_code == 404
    assert "Withdrawn piece" not in client.get("/sources/").text
    assert "Withdrawn piece" not in client.get(collection.get_absolute_url()).text

    client.force_login(curator)
    page = client.get(source.get_absolute_url())
    assert page.status_code == 200
    assert "Copyright complaint under review." in page.text
    assert client.get(f"/sources/{source.uuid}/original").status_code == 200
    assert "Withdrawn piece" in client.get("/sources/").text


def test_private_source_is_404_for_a_stranger_and_a_visitor(client, owner, stranger, collection):
    source = archive_text(unique(), owner, collection=collection)
    for user in [stranger, None]:
        client.logout()
        if user:
            client.force_login(user)
        assert client.get(source.get_absolute_url()).status_code == 404
        assert client.get(f"/sources/{source.uuid}/original").status_code == 404


def test_visitor_reads_and_downloads_a_source_in_a_public_collection(
    client, owner, public_collection
):
    source = archive_text(unique(), owner, collection=public_collection)
    assert client.get(source.get_absolute_url()).status_code == 200
    assert client.get(f"/sources/{source.uuid}/original").status_code == 200


def test_read_only_pages_refuse_post(client, owner, collection):
    client.force_login(owner)
    source = archive_text(unique(), owner, collection=collection)
    for url in [
        "/sources/",
        source.get_absolute_url(),
        f"/sources/{source.uuid}/original",
        "/collections/",
        collection.get_absolute_url(),
    ]:
        assert client.post(url).status_code == 405, url
        assert client.head(url).status_code == 200, url


# --- Source list -------------------------------------------------------------------------


@pytest.fixture
def thirty_sources(owner, public_collection):
    sources = []
    for i in range(30):
        sources.append(
            archive_text(
                unique(f"Source {i:02d}"),
                owner,
                collection=public_collection,
                metadata={"date_published": f"{2000 + i}"},
            )
        )
    return sources


def titles(response) -> list[str]:
    return [s.title for s in response.context["page"]]


def test_source_list_is_paginated(client, thirty_sources):
    first = client.get("/sources/")
    assert first.status_code == 200
    assert len(titles(first)) == 25
    assert "30 sources" in first.text
    assert 'href="?page=2"' in first.text
    assert 'href="?sort=title&amp;page=2"' in client.get("/sources/?sort=title").text
    second = client.get("/sources/?page=2")
    assert len(titles(second)) == 5
    assert set(titles(first)).isdisjoint(titles(second))
    # Out of range or nonsense pages show a real page, not an error.
    assert titles(client.get("/sources/?page=99")) == titles(second)
    assert titles(client.get("/sources/?page=abc")) == titles(first)


@pytest.mark.parametrize(
    ("sort", "expected_first"),
    [
        ("newest", "Source 29"),
        ("oldest", "Source 00"),
        ("title", "Source 00"),
        ("published", "Source 29"),
        ("nonsense", "Source 29"),
    ],
)
def test_source_list_sorts(client, thirty_sources, sort, expected_first):
    response = client.get(f"/sources/?sort={sort}")
    assert response.status_code == 200
    assert titles(response)[0] == expected_first


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_source_list_by_date_archived_is_read_in_order_from_an_index(client, thirty_sources, sort):
    """Not sorted: a page of sources read in order and stopped at its end, however many
    there are (sorting read every visible source's row; on SQLite, a row is the size of
    its text layer)."""
    response = client.get(f"/sources/?sort={sort}")
    by_date = sorted(thirty_sources, key=lambda s: (s.archived_at, s.pk), reverse=sort == "newest")
    assert titles(response) == [s.title for s in by_date[:25]]
    listed = response.context["page"].paginator.object_list[:25]
    sql, params = listed.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(row[-1] for row in cursor.fetchall())
            assert "archive_source_archived_idx" in plan and "ORDER BY" not in plan, plan
        else:
            # Thirty rows: the planner would rather scan and sort, as it should. Told not
            # to scan, it must still not need to sort.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "archive_source_newest_idx" in plan and "Sort" not in plan, plan


def test_source_list_sorts_by_title_across_pages(client, thirty_sources):
    on_pages = titles(client.get("/sources/?sort=title")) + titles(
        client.get("/sources/?sort=title&page=2")
    )
    assert on_pages == sorted(f"Source {i:02d}" for i in range(30))


def test_source_list_shows_only_what_the_user_may_see(
    client, owner, stranger, collection, public_collection
):
    archive_text(unique("Private one"), owner, collection=collection)
    archive_text(unique("Public one"), owner, collection=public_collection)
    archive_text(unique("Stranger's own"), stranger)
    assert set(titles(client.get("/sources/"))) == {"Public one"}
    client.force_login(stranger)
    assert set(titles(client.get("/sources/"))) == {"Public one", "Stranger's own"}
    client.force_login(owner)
    assert set(titles(client.get("/sources/"))) == {"Private one", "Public one"}


def test_source_list_query_count_does_not_grow_with_sources(client, owner, public_collection):
    client.force_login(owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/sources/").status_code == 200
        return len(ctx)

    for i in range(3):
        archive_text(unique(f"S{i}"), owner, collection=public_collection)
    three = count()
    for i in range(3, 25):
        archive_text(unique(f"S{i}"), owner, collection=public_collection)
    assert count() == three


# --- Collections -------------------------------------------------------------------------


def test_collection_list_shows_public_and_own_collections(
    client, owner, member, stranger, collection, public_collection
):
    def listed() -> set[str]:
        response = client.get("/collections/")
        assert response.status_code == 200
        return {c.title for c in response.context["collections"]}

    assert listed() == {"Open archive"}
    client.force_login(stranger)
    assert listed() == {"Open archive"}
    client.force_login(member)
    assert listed() == {"Open archive", "Field notes"}


def test_collection_page_lists_its_sources_for_members_and_404s_for_strangers(
    client, owner, member, stranger, collection
):
    archive_text(unique("In the collection"), owner, collection=collection)
    archive_text(unique("Elsewhere"), owner)
    client.force_login(member)
    response = client.get(collection.get_absolute_url())
    assert response.status_code == 200
    assert titles(response) == ["In the collection"]
    client.force_login(stranger)
    assert client.get(collection.get_absolute_url()).status_code == 404
    assert client.get("/collections/no-such-collection/").status_code == 404


def test_collection_page_is_paginated(client, thirty_sources, public_collection):
    response = client.get(public_collection.get_absolute_url())
    assert len(titles(response)) == 25
    assert len(titles(client.get(public_collection.get_absolute_url() + "?page=2"))) == 5


# --- Metadata editing --------------------------------------------------------------------


def edit_url(source: Source) -> str:
    return f"/sources/{source.uuid}/edit/"


METADATA = {
    "title": "Operations on March 31",
    "source_type": "article-newspaper",
    "creators": "Haddad, Rania\nLevi, Dan",
    "publisher": "The Daily",
    "date_published": "2024-03-31",
    "language": "en",
    "description": "A news report.",
    "doi": "",
    "isbn": "",
    "url": "https://example.org/report",
    "rights": "",
    "citation_key": "haddad2024operations",
}


def test_archiver_edits_metadata_and_the_text_stays(client, owner):
    source = archive_text(unique(), owner)
    text = source.text
    client.force_login(owner)
    assert client.get(edit_url(source)).status_code == 200
    response = client.post(edit_url(source), {**METADATA, "text": "rewritten", "sha256": "0"})
    assert response.status_code == 302
    assert response["Location"] == source.get_absolute_url()
    source.refresh_from_db()
    assert source.title == "Operations on March 31"
    assert source.creators == ["Haddad, Rania", "Levi, Dan"]
    assert source.citation_key == "haddad2024operations"
    assert source.text == text


def test_invalid_metadata_is_shown_back_with_errors(client, owner):
    source = archive_text(unique("Original title"), owner)
    client.force_login(owner)
    response = client.post(
        edit_url(source), {**METADATA, "date_published": "March 2024", "title": ""}
    )
    assert response.status_code == 200
    shown = errors_shown(response)
    assert "YYYY, YYYY-MM or YYYY-MM-DD" in shown
    assert "This field is required." in shown
    source.refresh_from_db()
    assert source.title == "Original title"


def test_a_pasted_doi_link_is_stored_as_a_doi(client, owner):
    source = archive_text(unique(), owner)
    client.force_login(owner)
    response = client.post(edit_url(source), {**METADATA, "doi": "https://doi.org/10.1234/ab.c"})
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.doi == "10.1234/ab.c"


def test_who_may_edit_metadata(
    client, owner, member, editor, stranger, curator, collection, public_collection
):
    private = archive_text(unique("Private"), owner, collection=collection)
    public = archive_text(unique("Public"), owner, collection=public_collection)
    expected = [
        (owner, private, 200),
        (editor, private, 200),
        (curator, private, 200),
        (member, private, 403),  # an annotator sees it but may not describe it
        (stranger, private, 404),  # may not even know it exists
        (stranger, public, 403),
    ]
    for user, source, status in expected:
        client.force_login(user)
        assert client.get(edit_url(source)).status_code == status, (user, source)
        assert client.post(edit_url(source), METADATA).status_code in {status, 302}
    client.logout()
    response = client.get(edit_url(public))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_forbidden_metadata_post_changes_nothing(client, member, stranger, owner, collection):
    source = archive_text(unique("Untouched"), owner, collection=collection)
    for user in [member, stranger]:
        client.force_login(user)
        assert client.post(edit_url(source), METADATA).status_code in {403, 404}
    source.refresh_from_db()
    assert source.title == "Untouched"


def test_edit_page_refuses_other_methods(client, owner):
    source = archive_text(unique(), owner)
    client.force_login(owner)
    assert client.put(edit_url(source)).status_code == 405
    assert client.delete(edit_url(source)).status_code == 405
