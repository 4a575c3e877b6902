"""Capture by URL of a PDF: the server's application/pdf archived by the pdf extractor."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from archive.blobstore import archive_storage
from archive.models import Capture, Source
from tests.conftest import run_worker
from tests.pdfs import make_pdf, text_page
from tests.websites import Answer, Website, website

pytestmark = pytest.mark.django_db(transaction=True)

REPORT = make_pdf(
    [text_page("Annual report of the harbour."), text_page("Second page of the report.")],
    info={"Title": "Harbour annual report", "Author": "Port Authority"},
)


@pytest.fixture(autouse=True)
def no_blobs() -> None:
    shutil.rmtree(archive_storage().path(""), ignore_errors=True)


@pytest.fixture
def site(settings) -> Iterator[Website]:
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.SCHOLION_CAPTURE_TIMEOUT = 5
    with website() as site:
        site.pages["/report.pdf"] = Answer(REPORT, headers=[("Content-Type", "application/pdf")])
        yield site


def test_a_pdf_url_is_captured_with_its_pages(client, owner, site, settings):
    # A browser is configured, but a PDF is not loaded in it.
    settings.SCHOLION_CAPTURE_BROWSER = "/nonexistent/chromium"
    client.force_login(owner)
    client.post("/sources/new/", {"capture-urls": site.url("/report.pdf")})
    run_worker()
    capture = Capture.objects.get()
    assert capture.state == "done", capture.error
    source = Source.objects.get()
    assert capture.source == source
    assert (source.media_type, source.extractor, source.archived_via) == (
        "application/pdf",
        "pdf",
        "capture",
    )
    assert source.title == "Harbour annual report"
    assert source.creators == ["Port Authority"]
    assert [label for _, _, label in source.divisions["spans"]] == ["1", "2"]
    assert source.text.endswith("Second page of the report.")
    assert "browser" not in capture.provenance
    with source.open_original() as original:
        assert original.read() == REPORT


def test_a_broken_pdf_url_fails_in_words_and_leaves_no_source(client, owner, site):
    site.pages["/broken.pdf"] = Answer(
        REPORT[: len(REPORT) // 2], headers=[("Content-Type", "application/pdf")]
    )
    client.force_login(owner)
    client.post("/sources/new/", {"capture-urls": site.url("/broken.pdf")})
    run_worker()
    capture = Capture.objects.get()
    assert capture.state == "failed"
    assert "truncated" in capture.error
    assert not Source.objects.exists()
