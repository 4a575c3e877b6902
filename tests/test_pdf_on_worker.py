"""A PDF that takes longer to read than an upload's request may spend on it
(SCHOLION_READ_REQUEST_SECONDS) is stored at once and read by the real worker (django_tasks_db's
db_worker); its page follows the work and then leads to the source, which exists only once
its text layer does. A small budget here stands in for a long PDF."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from archive.blobstore import archive_storage, blob_name
from archive.models import Membership, Source, UploadJob
from tests.conftest import run_worker
from tests.pdfs import make_pdf, text_page

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def tiny_budget(settings):
    # No PDF is read in this long, however small: every upload goes to the worker.
    settings.SCHOLION_READ_REQUEST_SECONDS = 0.01


def upload(client, data: bytes, name: str = "long report.pdf", **fields):
    file = SimpleUploadedFile(name, data, content_type="application/pdf")
    return client.post("/sources/new/", {"file": file, **fields})


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_pdf_too_slow_for_the_request_is_read_on_the_worker(owner, collection, stranger):
    data = make_pdf([text_page("The long report, read later.")], info={"Title": "Long report"})
    sha256 = hashlib.sha256(data).hexdigest()
    client = signed_in(owner)
    response = upload(client, data, collection=collection.pk)
    job = UploadJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/uploads/{job.uuid}/"
    # The bytes are archived at once; the source waits for its text layer.
    assert archive_storage().exists(blob_name(sha256))
    assert not Source.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "Its text layer is being prepared" in page and 'aria-live="polite"' in page
    assert client.get(f"/uploads/{job.uuid}/status").json()["source"] is None
    # Cleanup must not take the bytes of an upload still waiting for the worker.
    call_command("cleanup", "--grace-hours=0", stdout=io.StringIO())
    assert archive_storage().exists(blob_name(sha256))

    run_worker()

    job.refresh_from_db()
    source = Source.objects.get()
    assert job.state == "done" and job.source == source
    assert (source.sha256, source.title, source.extractor) == (sha256, "Long report", "pdf")
    assert source.text.startswith("The long report, read later.")
    assert source.archived_by == owner and collection.sources.filter(pk=source.pk).exists()
    status = client.get(f"/uploads/{job.uuid}/status").json()
    assert status["state"] == "done" and status["source"]["url"] == f"/sources/{source.uuid}/"
    page = client.get(f"/uploads/{job.uuid}/").content.decode()
    assert "Archived “Long report”." in page and f'href="/sources/{source.uuid}/"' in page
    assert client.get(f"/sources/{source.uuid}/").status_code == 200

    # Only the uploader sees it, and nobody learns that it exists.
    for suffix in ("", "status"):
        assert signed_in(stranger).get(f"/uploads/{job.uuid}/{suffix}").status_code == 404
    assert signed_in(stranger).post(f"/uploads/{job.uuid}/retry").status_code == 404
    assert client.post(f"/uploads/{job.uuid}/status").status_code == 405


def test_an_uploader_who_left_the_collection_meanwhile_adds_nothing_to_it(member, collection):
    Membership.objects.filter(collection=collection, user=member).update(
        role=Membership.Role.EDITOR
    )
    data = make_pdf([text_page("Written before leaving.")])
    client = signed_in(member)
    upload(client, data, collection=collection.pk)
    job = UploadJob.objects.get()
    Membership.objects.filter(collection=collection, user=member).delete()
    run_worker()
    job.refresh_from_db()
    assert job.state == "failed"
    assert "no longer add sources to the collection" in job.error
    assert not Source.objects.exists() and not collection.sources.exists()
    page = client.get(f"/uploads/{job.uuid}/").content.decode()
    assert "no longer add sources to the collection" in page
    assert collection.title not in page


def test_a_pdf_the_worker_refuses_says_why_and_its_bytes_are_cleaned_up(owner):
    data = make_pdf([text_page("Secret.")], encrypt=True)
    client = signed_in(owner)
    upload(client, data)
    job = UploadJob.objects.get()
    run_worker()
    job.refresh_from_db()
    assert job.state == "failed" and "encrypted with a password" in job.error
    assert not Source.objects.exists()
    page = client.get(f"/uploads/{job.uuid}/").content.decode()
    assert "encrypted with a password" in page
    call_command("cleanup", "--grace-hours=0", stdout=io.StringIO())
    assert not archive_storage().exists(blob_name(hashlib.sha256(data).hexdigest()))


def test_a_pdf_read_within_the_budget_is_archived_in_the_request(owner, settings):
    settings.SCHOLION_READ_REQUEST_SECONDS = 60
    data = make_pdf([text_page("Short enough.")], info={"Title": "Short"})
    response = upload(signed_in(owner), data)
    source = Source.objects.get()
    assert response["Location"] == f"/sources/{source.uuid}/edit/"
    assert not UploadJob.objects.exists()


def test_a_stopped_reading_can_be_tried_again_by_its_uploader(owner):
    client = signed_in(owner)
    upload(client, make_pdf([text_page("Interrupted.")]))
    job = UploadJob.objects.get()
    UploadJob.objects.filter(pk=job.pk).update(
        state="running", heartbeat_at=job.created_at - timedelta(hours=1)
    )
    assert "Try again" in client.get(f"/uploads/{job.uuid}/").content.decode()
    assert client.post(f"/uploads/{job.uuid}/retry").status_code == 302
    run_worker()
    job.refresh_from_db()
    assert job.state == "done" and job.attempt == 2
    assert Source.objects.get().text.startswith("Interrupted.")
