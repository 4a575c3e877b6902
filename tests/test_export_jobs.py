"""Exports too long for a request are prepared by the background worker (exports/prepared.py):
the Export menu asks for one, the real worker (django_tasks_db's db_worker) writes it to the
exports storage, its page offers the file to its requester alone, and `manage.py cleanup`
removes it once expired. A download too large for its request is sent to the same place."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from archive.models import Membership
from exports.models import ExportJob
from tests.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def exports_dir(settings, tmp_path):
    """Each test's own folder of prepared exports."""
    settings.SCHOLION_EXPORTS_DIR = tmp_path / "exports"


def stored_exports() -> list[Path]:
    root = Path(settings.SCHOLION_EXPORTS_DIR)
    return sorted(root.iterdir()) if root.exists() else []


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_export_menu_asks_the_worker_for_a_bag(annotated, owner):
    page = signed_in(owner).get("/collections/field-notes/").content.decode()
    assert 'action="/collections/field-notes/export/bagit/prepare"' in page
    assert 'action="/collections/field-notes/export/qdpx/prepare"' in page
    assert "(prepared in the background)" in page
    # A text format small enough for a request stays a plain download.
    assert 'href="/collections/field-notes/export/csv"' in page


def test_a_bag_is_prepared_polled_and_downloaded_by_its_requester_only(
    annotated, owner, member, stranger, curator
):
    client = signed_in(owner)
    assert client.get("/collections/field-notes/export/bagit/prepare").status_code == 200
    response = client.post("/collections/field-notes/export/bagit/prepare", {"tag": "claims"})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exports/{job.uuid}/"
    assert job.user == owner and job.format == "bagit" and job.filters == {"tag": ["claims"]}
    page = client.get(response["Location"]).content.decode()
    assert "Queued" in page and 'aria-live="polite"' in page
    status = client.get(f"/exports/{job.uuid}/status").json()
    assert status["state"] == "queued" and status["download"] is None
    # Not written yet: the file's address leads back to the page that says so.
    early = client.get(f"/exports/{job.uuid}/file")
    assert early.status_code == 302 and early["Location"] == f"/exports/{job.uuid}/"

    run_worker()

    job.refresh_from_db()
    assert job.state == "done" and job.size
    assert job.expires_at is not None and job.expires_at > timezone.now()
    assert [p.name for p in stored_exports()] == [f"{job.uuid}-bag.zip"]
    status = client.get(f"/exports/{job.uuid}/status").json()
    assert status["state"] == "done" and status["download"] == f"/exports/{job.uuid}/file"
    page = client.get(f"/exports/{job.uuid}/").content.decode()
    assert '<p id="export-download">' in page and "Download field-notes-bag.zip" in page
    assert "Ready until" in page
    download = client.get(f"/exports/{job.uuid}/file")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="field-notes-bag.zip"'
    data = body(download)
    assert len(data) == job.size
    with zipfile.ZipFile(io.BytesIO(data)) as bag:
        assert "bagit.txt" in {Path(n).name for n in bag.namelist()}
        everything = b"".join(bag.read(n) for n in bag.namelist())
    assert b"MAYAPRIVATE" not in everything  # the requester's view, never another's private note

    # Nobody else learns it exists: not a collection member, not a stranger, not a curator.
    for other in (member, stranger, curator):
        for suffix in ("", "status", "file"):
            assert signed_in(other).get(f"/exports/{job.uuid}/{suffix}").status_code == 404
    assert Client().get(f"/exports/{job.uuid}/file").status_code == 302  # to the login page


def test_the_download_is_refused_once_the_requester_lost_sight_of_the_collection(annotated, member):
    client = signed_in(member)
    client.post("/collections/field-notes/export/bagit/prepare")
    run_worker()
    job = ExportJob.objects.get()
    assert job.state == "done"
    Membership.objects.filter(user=member).delete()
    assert client.get(f"/exports/{job.uuid}/file").status_code == 404


def test_a_stranger_cannot_ask_for_an_export_of_a_private_collection(annotated, stranger):
    client = signed_in(stranger)
    assert client.post("/collections/field-notes/export/bagit/prepare").status_code == 404
    assert client.get("/collections/field-notes/export/bagit/prepare").status_code == 404
    assert not ExportJob.objects.exists()


def test_asking_needs_a_session_and_a_known_format(annotated, owner):
    response = Client().post("/collections/field-notes/export/bagit/prepare")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert signed_in(owner).post("/collections/field-notes/export/zip/prepare").status_code == 404
    bad = signed_in(owner).post(
        "/collections/field-notes/export/csv/prepare", {"archived_from": "yesterday"}
    )
    assert bad.status_code == 400 and "archived_from" in bad.content.decode()
    assert not ExportJob.objects.exists()


def test_a_download_too_large_for_its_request_leads_to_the_worker(annotated, owner, settings):
    settings.SCHOLION_EXPORT_INLINE_ANNOTATIONS = 1  # two annotations carry "claims"
    client = signed_in(owner)
    response = client.get("/collections/field-notes/export/csv?tag=claims")
    assert response.status_code == 302
    assert response["Location"] == "/collections/field-notes/export/csv/prepare?tag=claims"
    page = client.get(response["Location"]).content.decode()
    assert "too large to write while you wait" in page
    assert 'name="tag" value="claims"' in page
    client.post("/collections/field-notes/export/csv/prepare", {"tag": "claims"})
    run_worker()
    job = ExportJob.objects.get()
    text = body(client.get(f"/exports/{job.uuid}/file")).decode()
    assert text.startswith("collection,source_title")
    assert "the harbour froze in 1709" in text and "Bread was dear" not in text


def test_a_bag_whose_originals_are_large_is_not_written_in_a_request(annotated, owner, settings):
    settings.SCHOLION_EXPORT_INLINE_BYTES = 10
    response = signed_in(owner).get("/collections/field-notes/export/bagit")
    assert response.status_code == 302
    assert response["Location"] == "/collections/field-notes/export/bagit/prepare"


def test_cleanup_removes_an_expired_export_and_its_page_says_so(annotated, owner):
    client = signed_in(owner)
    client.post("/collections/field-notes/export/bagit/prepare")
    run_worker()
    job = ExportJob.objects.get()
    out = io.StringIO()
    call_command("cleanup", stdout=out)
    assert "0 expired exports" in out.getvalue() and len(stored_exports()) == 1

    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    out = io.StringIO()
    call_command("cleanup", stdout=out)
    assert "1 expired export (" in out.getvalue()
    assert stored_exports() == []
    job.refresh_from_db()
    assert job.file_name == ""
    page = client.get(f"/exports/{job.uuid}/").content.decode()
    assert "This export has expired" in page and '<p id="export-download" hidden>' in page
    assert client.get(f"/exports/{job.uuid}/file").status_code == 302


def test_the_status_page_takes_no_post(annotated, owner):
    client = signed_in(owner)
    client.post("/collections/field-notes/export/bagit/prepare")
    job = ExportJob.objects.get()
    for suffix in ("", "status", "file"):
        assert client.post(f"/exports/{job.uuid}/{suffix}").status_code == 405


def test_with_s3_the_prepared_file_is_in_the_bucket_and_fetched_by_a_signed_url(
    s3, annotated, owner, settings
):
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": settings.STORAGES["archive"]["BACKEND"],
            "OPTIONS": {**settings.STORAGES["archive"]["OPTIONS"], "location": "exports"},
        },
    }
    client = signed_in(owner)
    client.post("/collections/field-notes/export/bagit/prepare")
    run_worker()
    job = ExportJob.objects.get()
    assert job.state == "done" and stored_exports() == []
    key = f"exports/{job.file_name}"
    assert s3.objects()[key][:2] == b"PK"
    response = client.get(f"/exports/{job.uuid}/file")
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-store"
    url = urlsplit(response["Location"])
    assert url.path.endswith(key) and "X-Amz-Signature" in parse_qs(url.query)
    assert "field-notes-bag.zip" in parse_qs(url.query)["response-content-disposition"][0]
    with urllib.request.urlopen(response["Location"]) as signed:  # noqa: S310 - loopback
        assert signed.read() == s3.objects()[key]


def test_a_script_with_a_token_asks_polls_and_fetches_a_large_export(annotated, owner, member):
    write_key = ApiToken.issue(owner, "nightly export", "write")[1]
    read_key = ApiToken.issue(owner, "reader", "read")[1]
    api = Client()
    # A small package still streams at once, as scripts have always fetched it.
    small = api.get("/collections/field-notes/export/bagit", headers=bearer(read_key))
    assert small.status_code == 200 and body(small)[:2] == b"PK"
    refused = api.post("/collections/field-notes/export/bagit/prepare", headers=bearer(read_key))
    assert refused.status_code == 403 and not ExportJob.objects.exists()
    asked = api.post("/collections/field-notes/export/bagit/prepare", headers=bearer(write_key))
    job = ExportJob.objects.get()
    assert asked.status_code == 302 and job.user == owner
    run_worker()
    status = api.get(f"/exports/{job.uuid}/status", headers=bearer(read_key)).json()
    assert status["state"] == "done"
    fetched = api.get(status["download"], headers=bearer(read_key))
    assert fetched.status_code == 200 and body(fetched)[:2] == b"PK"
    other = ApiToken.issue(member, "maya's script", "read")[1]
    assert api.get(status["download"], headers=bearer(other)).status_code == 404


def test_a_bag_fits_in_a_request_with_a_tenth_of_the_annotations_a_csv_may_have(
    annotated, owner, settings
):
    settings.SCHOLION_EXPORT_INLINE_ANNOTATIONS = 39  # the owner's export holds 4
    client = signed_in(owner)
    assert client.get("/collections/field-notes/export/csv").status_code == 200
    response = client.get("/collections/field-notes/export/bagit")
    assert response.status_code == 302
    assert response["Location"] == "/collections/field-notes/export/bagit/prepare"
    settings.SCHOLION_EXPORT_INLINE_ANNOTATIONS = 40
    assert client.get("/collections/field-notes/export/bagit").status_code == 200
