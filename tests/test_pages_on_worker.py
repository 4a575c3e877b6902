"""A long HTML page (over INLINE_PAGE_BYTES) or plain text (over INLINE_TEXT_BYTES) that takes longer to read than an
upload's request may spend on it (SCHOLION_READ_REQUEST_SECONDS) is stored at once and read by
the real worker, as a slow PDF or Word document is (tests/test_documents_on_worker.py). A tiny
budget here stands in for pathological markup: the request reads such a file in a child
process it stops when the budget runs out."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from archive.blobstore import archive_storage, blob_name
from archive.extract import INLINE_PAGE_BYTES, INLINE_TEXT_BYTES, extract, extract_within
from archive.models import Source, UploadJob
from tests.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)

ENTRY = "<p>Entry {n}: the harbour master logged the arrival of a schooner from Bergen.</p>\n"


def long_page(marker: str = "Ledger of the harbour") -> bytes:
    entries = "".join(ENTRY.format(n=n) for n in range(INLINE_PAGE_BYTES // len(ENTRY) + 100))
    return (
        f"<html><head><title>{marker}</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/about'>About the site</a></nav>"
        f"<article><h1>{marker}</h1>{entries}</article>"
        "<footer>Site footer</footer></body></html>"
    ).encode()


def long_text(first_line: str = "Notes from the harbour") -> str:
    line = "The schooner from Bergen came in on the morning tide.\n\n"
    return first_line + "\n\n" + line * (INLINE_TEXT_BYTES // len(line) + 100)


@pytest.fixture
def tiny_budget(settings):
    # No long page is read in this long: every one goes to the worker.
    settings.SCHOLION_READ_REQUEST_SECONDS = 0.01


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client, data: bytes, name: str = "ledger.html", **fields):
    file = SimpleUploadedFile(name, data, content_type="text/html")
    return client.post("/sources/new/", {"file": file, **fields})


def test_a_long_page_too_slow_for_the_request_is_read_on_the_worker_as_asked(
    owner, collection, stranger, tiny_budget
):
    data = long_page()
    sha256 = hashlib.sha256(data).hexdigest()
    client = signed_in(owner)
    response = upload(client, data, collection=collection.pk, whole_page="on")
    job = UploadJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/uploads/{job.uuid}/"
    assert archive_storage().exists(blob_name(sha256)) and not Source.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "ledger.html" in page and "Its text layer is being prepared" in page

    run_worker()

    job.refresh_from_db()
    source = Source.objects.get()
    assert job.state == "done" and job.source == source
    # The whole page, as asked: the site's navigation and footer are in its text.
    assert (source.sha256, source.extractor, source.archived_via) == (sha256, "html", "upload")
    assert "About the site" in source.text and "Site footer" in source.text
    assert "Entry 800: the harbour master" in source.text
    assert source.title == "Ledger of the harbour"
    assert source.archived_by == owner and collection.sources.filter(pk=source.pk).exists()
    assert "Entry 800:" in client.get(f"/sources/{source.uuid}/").content.decode()
    assert signed_in(stranger).get(f"/uploads/{job.uuid}/").status_code == 404


def test_a_long_pasted_text_too_slow_for_the_request_is_read_on_the_worker_as_pasted(
    owner, tiny_budget
):
    client = signed_in(owner)
    response = client.post("/sources/new/", {"text": long_text()})
    job = UploadJob.objects.get()
    assert response["Location"] == f"/uploads/{job.uuid}/" and not Source.objects.exists()
    assert "<h1>Pasted text</h1>" in client.get(response["Location"]).content.decode()

    run_worker()

    source = Source.objects.get()
    assert (source.extractor, source.archived_via) == ("plain-text", "paste")
    assert source.title == "Notes from the harbour"
    assert source.text.count("The schooner from Bergen") > 10_000


def test_a_short_page_is_read_in_the_request_whatever_the_budget(owner, tiny_budget):
    data = b"<html><head><title>Short</title></head><body><p>A short page.</p></body></html>"
    response = upload(signed_in(owner), data)
    source = Source.objects.get()
    assert response["Location"] == f"/sources/{source.uuid}/edit/"
    assert not UploadJob.objects.exists() and "A short page." in source.text


def test_a_long_page_read_within_the_budget_is_archived_in_the_request(owner, settings):
    settings.SCHOLION_READ_REQUEST_SECONDS = 60
    response = upload(signed_in(owner), long_page("Read at once"))
    source = Source.objects.get()
    assert response["Location"] == f"/sources/{source.uuid}/edit/"
    assert not UploadJob.objects.exists()
    assert source.title == "Read at once" and "Entry 800:" in source.text


def test_a_text_that_needs_more_memory_than_the_request_may_take_is_read_on_the_worker(
    owner, settings
):
    # Time enough, memory not: the child reading it for the request runs out of its cap (a
    # page built to exhaust the parser fails alone), and the worker reads it without that cap.
    settings.SCHOLION_READ_REQUEST_SECONDS = 60
    settings.SCHOLION_READ_REQUEST_MEMORY_BYTES = 120 * 1024 * 1024
    data = (long_text() * 10).encode()
    file = SimpleUploadedFile("notes.txt", data, content_type="text/plain")
    client = signed_in(owner)
    response = client.post("/sources/new/", {"file": file})
    job = UploadJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/uploads/{job.uuid}/"
    assert not Source.objects.exists()

    run_worker()

    job.refresh_from_db()
    source = Source.objects.get()
    assert job.state == "done" and job.source == source
    assert source.sha256 == hashlib.sha256(data).hexdigest() and source.extractor == "plain-text"
    assert source.text.startswith("Notes from the harbour")


def test_a_long_text_refused_in_the_child_is_refused_in_the_request(owner, settings):
    settings.SCHOLION_READ_REQUEST_SECONDS = 60
    text = long_text()
    data = (text[: len(text) // 2] + "\x00" + text[len(text) // 2 :]).encode()
    file = SimpleUploadedFile("notes.txt", data, content_type="text/plain")
    response = signed_in(owner).post("/sources/new/", {"file": file})
    assert response.status_code == 200
    assert "The file contains NUL characters" in response.content.decode()
    assert not UploadJob.objects.exists() and not Source.objects.exists()
    call_command("cleanup", "--grace-hours=0", stdout=io.StringIO())
    assert not archive_storage().exists(blob_name(hashlib.sha256(data).hexdigest()))


@pytest.mark.parametrize("whole_page", [False, True])
def test_a_page_read_in_a_child_process_reads_as_one_read_in_place(whole_page, tmp_path):
    data = long_page()
    path = tmp_path / "page.html"
    path.write_bytes(data)
    with path.open("rb") as file:
        apart = extract_within(
            file, 60, "text/html", "https://example.org/ledger", whole_page=whole_page
        )
    in_place = extract(data, "text/html", "https://example.org/ledger", whole_page=whole_page)
    assert apart == in_place and "Entry 800:" in apart.text


def test_a_long_page_refused_in_the_child_is_refused_in_the_request(owner, settings):
    settings.SCHOLION_READ_REQUEST_SECONDS = 60
    data = long_page().replace(b"Entry 5:", b"Entr\x81 5:")  # neither UTF-8 nor Windows-1252
    response = upload(signed_in(owner), data)
    assert response.status_code == 200
    assert "The text could not be decoded" in response.content.decode()
    assert not UploadJob.objects.exists() and not Source.objects.exists()
