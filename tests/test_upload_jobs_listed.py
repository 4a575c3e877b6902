"""Uploads read on the worker are listed on the archive page for their uploader, not only
reached by the redirect after uploading: those still being read and those that failed lately,
each linking to its page. Nobody else sees them, collaborators included."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from archive.models import UploadJob

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_upload(user, name: str, **fields) -> UploadJob:
    return UploadJob.objects.create(
        user=user, filename=name, sha256="b" * 64, size=2048, blob_name="bb/" + "b" * 64, **fields
    )


def archive_page(client) -> str:
    response = client.get("/sources/new/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_archive_page_lists_the_uploaders_waiting_and_lately_failed_uploads(owner):
    now = timezone.now()
    queued = make_upload(owner, "queued-report.pdf")
    running = make_upload(owner, "running-thesis.docx", state="running", heartbeat_at=now)
    stopped = make_upload(
        owner, "stopped-book.epub", state="running", heartbeat_at=now - timedelta(hours=1)
    )
    failed = make_upload(
        owner, "failed-scan.pdf", state="failed", error="The PDF is encrypted.", finished_at=now
    )
    make_upload(owner, "read-already.pdf", state="done", summary="Archived.", finished_at=now)
    make_upload(
        owner,
        "failed-long-ago.pdf",
        state="failed",
        error="Old.",
        finished_at=now - timedelta(days=8),
    )
    page = archive_page(signed_in(owner))
    assert "Uploads read on the worker" in page
    for job in (queued, running, stopped, failed):
        assert f'<a href="/uploads/{job.uuid}/">{job.filename}</a>' in page
    assert "Its text layer is being prepared: waiting for the worker to start." in page
    assert "Stopped" in page and "Reading the file stopped before it finished" in page
    assert "Failed" in page and "The PDF is encrypted." in page
    # A read upload is its source; an old failure is no longer news.
    assert "read-already.pdf" not in page and "failed-long-ago.pdf" not in page


def test_nobody_but_the_uploader_sees_their_uploads(owner, member, stranger, collection):
    make_upload(owner, "owners-private-upload.pdf", collection=collection)
    for other in (member, stranger):
        page = archive_page(signed_in(other))
        assert "owners-private-upload.pdf" not in page
        assert "Uploads read on the worker" not in page
    assert "owners-private-upload.pdf" in archive_page(signed_in(owner))
    assert Client().get("/sources/new/").status_code == 302  # to log in


def test_without_uploads_on_the_worker_the_page_says_nothing_of_them(owner):
    make_upload(owner, "read.pdf", state="done", summary="Archived.")
    assert "Uploads read on the worker" not in archive_page(signed_in(owner))


def test_listing_uploads_costs_the_same_queries_for_one_as_for_ten(owner):
    client = signed_in(owner)
    make_upload(owner, "first.pdf")
    with CaptureQueriesContext(connection) as one:
        archive_page(client)
    for n in range(9):
        make_upload(owner, f"more-{n}.pdf")
    with CaptureQueriesContext(connection) as ten:
        page = archive_page(client)
    assert page.count('<li class="upload ') == 10
    assert len(ten) == len(one)
