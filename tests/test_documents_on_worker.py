"""A Word document or an EPUB book that takes longer to read than an upload's request may spend
on it (SCHOLION_READ_REQUEST_SECONDS) is stored at once and read by the real worker, as a slow
PDF is (tests/test_pdf_on_worker.py). A tiny budget here stands in for a long document: a
request reads such a file in a child process it stops when the budget runs out."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from archive.blobstore import archive_storage, blob_name
from archive.extract.zipped import DOCX_TYPE, EPUB_TYPE, extract_package, read_package
from archive.models import Membership, Source, UploadJob
from tests.conftest import run_worker
from tests.docs import BOOK_METADATA, book_chapters, make_docx, make_epub

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def tiny_budget(settings):
    # No document is read in this long, however small: every upload goes to the worker.
    settings.SCHOLION_READ_REQUEST_SECONDS = 0.01


def upload(client, data: bytes, name: str, content_type: str, **fields):
    file = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post("/sources/new/", {"file": file, **fields})


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def empty_docx() -> bytes:
    import docx

    out = io.BytesIO()
    docx.Document().save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content_type", "data", "title", "extractor", "marker"),
    [
        (
            "interview.docx",
            DOCX_TYPE,
            make_docx("Words of the harbour master."),
            "Interview with the harbour master",
            "docx",
            "Words of the harbour master.",
        ),
        (
            "ledgers.epub",
            EPUB_TYPE,
            make_epub(book_chapters("First words of the book."), metadata=BOOK_METADATA),
            "Ledgers of the Port",
            "epub",
            "First words of the book.",
        ),
    ],
    ids=["docx", "epub"],
)
def test_a_document_too_slow_for_the_request_is_read_on_the_worker(
    owner, collection, stranger, name, content_type, data, title, extractor, marker
):
    sha256 = hashlib.sha256(data).hexdigest()
    client = signed_in(owner)
    response = upload(client, data, name, content_type, collection=collection.pk)
    job = UploadJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/uploads/{job.uuid}/"
    # The bytes are archived at once; the source waits for its text layer.
    assert archive_storage().exists(blob_name(sha256))
    assert not Source.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert name in page and "Its text layer is being prepared" in page

    run_worker()

    job.refresh_from_db()
    source = Source.objects.get()
    assert job.state == "done" and job.source == source
    assert (source.sha256, source.title, source.extractor) == (sha256, title, extractor)
    assert marker in source.text
    assert source.archived_by == owner and collection.sources.filter(pk=source.pk).exists()
    page = client.get(f"/uploads/{job.uuid}/").content.decode()
    assert f"Archived “{title}”." in page and f'href="/sources/{source.uuid}/"' in page
    assert marker in client.get(f"/sources/{source.uuid}/").content.decode()
    assert signed_in(stranger).get(f"/uploads/{job.uuid}/").status_code == 404


@pytest.mark.parametrize(
    ("name", "content_type", "data", "message"),
    [
        ("blank.docx", DOCX_TYPE, empty_docx(), "The Word document holds no text"),
        (
            "blank.epub",
            EPUB_TYPE,
            make_epub([("Cover", "<p> </p>")]),
            "The EPUB book holds no text",
        ),
    ],
    ids=["docx", "epub"],
)
def test_a_document_the_worker_refuses_says_why_and_leaves_nothing_behind(
    owner, collection, name, content_type, data, message
):
    client = signed_in(owner)
    upload(client, data, name, content_type, collection=collection.pk)
    job = UploadJob.objects.get()
    run_worker()
    job.refresh_from_db()
    assert job.state == "failed" and message in job.error and job.source is None
    assert not Source.objects.exists() and not collection.sources.exists()
    page = client.get(f"/uploads/{job.uuid}/").content.decode()
    assert message in page
    assert client.get(f"/uploads/{job.uuid}/status").json()["state"] == "failed"
    call_command("cleanup", "--grace-hours=0", stdout=io.StringIO())
    assert not archive_storage().exists(blob_name(hashlib.sha256(data).hexdigest()))


def test_an_uploader_who_left_the_collection_meanwhile_adds_no_document_to_it(member, collection):
    Membership.objects.filter(collection=collection, user=member).update(
        role=Membership.Role.EDITOR
    )
    client = signed_in(member)
    upload(
        client,
        make_docx("Written before leaving."),
        "notes.docx",
        DOCX_TYPE,
        collection=collection.pk,
    )
    job = UploadJob.objects.get()
    Membership.objects.filter(collection=collection, user=member).delete()
    run_worker()
    job.refresh_from_db()
    assert job.state == "failed" and "no longer add sources to the collection" in job.error
    assert not Source.objects.exists() and not collection.sources.exists()
    assert collection.title not in client.get(f"/uploads/{job.uuid}/").content.decode()


def test_a_document_read_within_the_budget_is_archived_in_the_request(owner, settings):
    settings.SCHOLION_READ_REQUEST_SECONDS = 60
    data = make_docx("Short enough.")
    response = upload(signed_in(owner), data, "short.docx", DOCX_TYPE)
    source = Source.objects.get()
    assert response["Location"] == f"/sources/{source.uuid}/edit/"
    assert not UploadJob.objects.exists()
    assert "Short enough." in source.text and source.extractor == "docx"


def test_a_damaged_document_is_refused_in_the_request_and_nothing_is_queued(owner, settings):
    settings.SCHOLION_READ_REQUEST_SECONDS = 60
    data = make_docx("Cut short.")[:-200]
    response = upload(signed_in(owner), data, "cut.docx", DOCX_TYPE)
    assert response.status_code == 200
    assert "could not be read" in response.content.decode()
    assert not UploadJob.objects.exists() and not Source.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        make_docx("Read apart or in place."),
        make_epub(book_chapters("Read apart or in place."), metadata=BOOK_METADATA),
    ],
    ids=["docx", "epub"],
)
def test_a_document_read_in_a_child_process_reads_as_one_read_in_place(data, tmp_path):
    path = tmp_path / "document"
    path.write_bytes(data)
    with path.open("rb") as file:
        apart = extract_package(file, budget=60)
        in_place = read_package(file)
    assert apart == in_place and "Read apart or in place." in apart.text


@pytest.mark.parametrize(
    ("environment", "seconds"),
    [
        ({}, 15),
        ({"SCHOLION_PDF_REQUEST_SECONDS": "7"}, 7),  # its name when only a PDF was read so
        ({"SCHOLION_PDF_REQUEST_SECONDS": "7", "SCHOLION_READ_REQUEST_SECONDS": "9"}, 9),
    ],
)
def test_the_budget_is_read_under_its_new_name_and_its_old_one(environment, seconds):
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SCHOLION_PDF_REQUEST_SECONDS", "SCHOLION_READ_REQUEST_SECONDS")
    }
    env.update(environment, DEBUG="1")
    printed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import config.settings as s; print(s.SCHOLION_READ_REQUEST_SECONDS)",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert printed.strip() == str(seconds)
