"""Capture by URL of a Word document or an EPUB book: archived by its extractor, as it came."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from archive.blobstore import archive_storage
from archive.models import Capture, Source
from tests.conftest import run_worker
from tests.docs import BOOK_METADATA, book_chapters, make_docx, make_epub
from tests.websites import Answer, Website, website

pytestmark = pytest.mark.django_db(transaction=True)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
INTERVIEW = make_docx("Captured interview.", title="Captured interview")
BOOK = make_epub(book_chapters("Captured book."), metadata=BOOK_METADATA)


@pytest.fixture(autouse=True)
def no_blobs() -> None:
    shutil.rmtree(archive_storage().path(""), ignore_errors=True)


@pytest.fixture
def site(settings) -> Iterator[Website]:
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.SCHOLION_CAPTURE_TIMEOUT = 5
    with website() as site:
        site.pages["/interview.docx"] = Answer(INTERVIEW, headers=[("Content-Type", DOCX)])
        site.pages["/book.epub"] = Answer(BOOK, headers=[("Content-Type", "application/epub+zip")])
        site.pages["/broken.epub"] = Answer(
            BOOK[: len(BOOK) // 2], headers=[("Content-Type", "application/epub+zip")]
        )
        yield site


@pytest.mark.parametrize(
    ("path", "extractor", "title", "original"),
    [
        ("/interview.docx", "docx", "Captured interview", INTERVIEW),
        ("/book.epub", "epub", "Ledgers of the Port", BOOK),
    ],
)
def test_a_document_url_is_captured_and_read(
    client, owner, site, settings, path, extractor, title, original
):
    # A browser is configured, but a document is not loaded in it.
    settings.SCHOLION_CAPTURE_BROWSER = "/nonexistent/chromium"
    client.force_login(owner)
    client.post("/sources/new/", {"capture-urls": site.url(path)})
    run_worker()
    capture = Capture.objects.get()
    assert capture.state == "done", capture.error
    source = Source.objects.get()
    assert (source.extractor, source.archived_via, source.title) == (extractor, "capture", title)
    assert "browser" not in capture.provenance
    with source.open_original() as kept:
        assert kept.read() == original
    response = client.get(source.get_absolute_url())
    assert response.status_code == 200 and b"Captured" in response.content


def test_a_broken_epub_url_fails_in_words_and_leaves_no_source(client, owner, site):
    client.force_login(owner)
    client.post("/sources/new/", {"capture-urls": site.url("/broken.epub")})
    run_worker()
    capture = Capture.objects.get()
    assert capture.state == "failed"
    assert "could not be read" in capture.error
    assert not Source.objects.exists()
