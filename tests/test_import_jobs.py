"""Imports uploaded on the import page run on the background queue: the upload is stored and
queued, the real worker (django_tasks_db's db_worker) runs it, and the import's page shows
what became of it. Who sees an import, the upload cap, and an import whose worker stopped."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.test.client import FakePayload
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from annotations.models import Annotation
from exports.models import UNEXPECTED_ERROR, ImportJob, package_storage
from tests.conftest import run_worker
from tests.helpers import counts, export_bag

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def imports_dir(settings, tmp_path):
    """Each test's own folder of uploaded packages, so that what one leaves is its own."""
    settings.SCHOLION_IMPORTS_DIR = tmp_path / "imports"


def stored_packages() -> list[Path]:
    root = Path(settings.SCHOLION_IMPORTS_DIR)
    return sorted(root.iterdir()) if root.exists() else []


def upload(client, data: bytes, name: str = "field-notes-bag.zip"):
    file = io.BytesIO(data)
    file.name = name
    return client.post("/import/", {"package": file})


@pytest.fixture
def package(annotated, tmp_path) -> bytes:
    """field-notes exported, then its annotations deleted: importing it adds them back."""
    data = export_bag(tmp_path / "bag.zip")
    Annotation.objects.all().delete()
    return data


def test_an_uploaded_package_is_imported_by_the_worker_and_its_page_says_done(
    client, curator, package
):
    client.force_login(curator)
    response = upload(client, package)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/import/{job.uuid}/"
    assert job.user == curator and job.state == "queued"
    assert job.filename == "field-notes-bag.zip" and job.size == len(package)
    assert [p.name for p in stored_packages()] == [f"{job.uuid}.zip"]
    assert stored_packages()[0].read_bytes() == package
    page = client.get(response["Location"]).content.decode()
    assert "Queued" in page and 'aria-live="polite"' in page
    assert client.get(f"/import/{job.uuid}/status").json()["state"] == "queued"
    assert Annotation.objects.count() == 0

    run_worker()

    job.refresh_from_db()
    assert job.state == "done" and job.collection is not None
    assert job.collection.slug == "field-notes"
    assert job.started_at and job.finished_at and not job.error
    assert Annotation.objects.count() == 4
    assert stored_packages() == [], "the package must be deleted once imported"
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
    page = client.get(response["Location"]).content.decode()
    assert "Done" in page and "4 annotations added" in page
    assert 'href="/collections/field-notes/"' in page
    assert "Open the collection “Field notes”" in page
    state = client.get(f"/import/{job.uuid}/status").json()
    assert state["state"] == "done" and state["finished"]
    assert state["collection"] == {"title": "Field notes", "url": "/collections/field-notes/"}
    assert "4 annotations added" in state["text"]


def test_a_damaged_package_fails_with_its_problem_named_and_nothing_imported(
    client, curator, package
):
    client.force_login(curator)
    before = counts()
    response = upload(client, package[: len(package) // 2])
    run_worker()

    job = ImportJob.objects.get()
    assert job.state == "failed" and job.collection is None
    assert job.error.startswith("Nothing was imported: The package is not a readable zip file")
    assert counts() == before
    assert stored_packages() == []
    page = client.get(response["Location"]).content.decode()
    assert "Failed" in page and "Nothing was imported: The package is not a readable zip" in page
    assert "Open the collection" not in page or 'id="import-collection" hidden' in page
    assert client.get(f"/import/{job.uuid}/status").json()["state"] == "failed"


def test_an_unexpected_error_gives_a_plain_message_and_logs_the_traceback(
    client, curator, package, caplog
):
    client.force_login(curator)
    upload(client, package)
    job = ImportJob.objects.get()
    package_storage().delete(job.package_name)  # e.g. removed by hand meanwhile

    with caplog.at_level(logging.ERROR, logger="exports"):
        run_worker()

    job.refresh_from_db()
    assert job.state == "failed" and job.error == UNEXPECTED_ERROR
    assert "FileNotFoundError" in caplog.text and str(job.uuid) in caplog.text
    assert DBTaskResult.objects.get().status == "FAILED"  # the queue's record of it too
    page = client.get(job.get_absolute_url()).content.decode()
    assert "error on the server, not in your package" in page
    assert "FileNotFoundError" not in page
    assert Annotation.objects.count() == 0


def test_who_sees_an_import(client, owner, curator, stranger, package):
    client.force_login(owner)  # owns field-notes, so may import
    upload(client, package)
    job = ImportJob.objects.get()
    urls = [job.get_absolute_url(), f"/import/{job.uuid}/status"]
    for url in urls:
        assert client.get(url).status_code == 200

    client.force_login(stranger)
    for url in urls:
        assert client.get(url).status_code == 404
    assert client.post(f"/import/{job.uuid}/retry").status_code == 404
    assert job.filename not in client.get("/collections/").content.decode()

    client.force_login(curator)
    for url in urls:
        assert client.get(url).status_code == 200
    assert "by olive" in client.get(job.get_absolute_url()).content.decode()

    client.logout()
    for url in [*urls, "/import/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_an_anonymous_upload_is_sent_to_log_in_and_nothing_is_stored(client, package):
    response = upload(client, package)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not ImportJob.objects.exists() and stored_packages() == []


def test_an_upload_without_the_csrf_token_is_refused(curator, package):
    # The view makes the CSRF check itself (after the length check): it must still make it.
    client = Client(enforce_csrf_checks=True)
    client.force_login(curator)
    assert upload(client, package).status_code == 403
    assert not ImportJob.objects.exists() and stored_packages() == []


def test_post_only_and_read_only_endpoints_refuse_other_methods(client, curator, package):
    client.force_login(curator)
    upload(client, package)
    job = ImportJob.objects.get()
    assert client.get(f"/import/{job.uuid}/retry").status_code == 405
    assert client.post(f"/import/{job.uuid}/status").status_code == 405
    assert client.post(job.get_absolute_url()).status_code == 405
    assert client.delete("/import/").status_code == 405


@override_settings(SCHOLION_IMPORT_MAX_UPLOAD_BYTES=1024)
def test_an_upload_announcing_more_than_the_limit_is_refused_without_reading_it(client, curator):
    client.force_login(curator)
    # The body is ten bytes; reading more than that fails the test (FakePayload), so a
    # refusal shows that the view went by the announced length alone.
    response = client.generic(
        "POST",
        "/import/",
        b"0123456789",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(10 * 1024**3),
        **{"wsgi.input": FakePayload(b"0123456789")},
    )
    assert response.status_code == 413
    page = response.content.decode()
    assert "larger than the 1.0\xa0KB (1,024 bytes) the import page accepts" in page
    assert "manage.py import_collection" in page
    assert not ImportJob.objects.exists() and stored_packages() == []


@override_settings(SCHOLION_IMPORT_MAX_UPLOAD_BYTES=1024)
def test_a_package_over_the_limit_is_refused_with_the_limit_named(client, curator):
    client.force_login(curator)
    response = upload(client, b"x" * 5000)  # under the request's allowance, over the limit
    assert response.status_code == 400
    assert "larger than the 1.0\xa0KB (1,024 bytes)" in response.content.decode()
    assert not ImportJob.objects.exists() and stored_packages() == []

    response = upload(client, b"x" * 200_000)  # over the allowance too: refused unread
    assert response.status_code == 413
    assert not ImportJob.objects.exists() and stored_packages() == []


def stop_worker_mid_import(job: ImportJob) -> None:
    """What a worker killed in the middle of an import leaves behind: its task taken from
    the queue, the job running, and no word from it since."""
    DBTaskResult.objects.ready().get().claim("killed-worker")
    assert job.claim()
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))


def test_an_import_whose_worker_stopped_says_so_and_can_be_tried_again(client, curator, package):
    client.force_login(curator)
    response = upload(client, package)
    job = ImportJob.objects.get()
    stop_worker_mid_import(job)
    run_worker()
    assert ImportJob.objects.get().state == "running"  # no worker takes it up again

    page = client.get(response["Location"]).content.decode()
    assert "Stopped" in page and "the worker running it was stopped" in page
    assert "Try again" in page and 'id="import-retry" hidden' not in page
    state = client.get(f"/import/{job.uuid}/status").json()
    assert state["state"] == "stopped" and state["may_retry"] and not state["finished"]
    assert stored_packages(), "a stopped import keeps its package to be tried again"

    response = client.post(f"/import/{job.uuid}/retry")
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    job.refresh_from_db()
    assert job.state == "queued" and job.attempt == 2
    run_worker()
    job.refresh_from_db()
    assert job.state == "done" and Annotation.objects.count() == 4
    assert stored_packages() == []


def test_trying_again_an_import_that_has_not_stopped_changes_nothing(client, curator, package):
    client.force_login(curator)
    upload(client, package)
    job = ImportJob.objects.get()
    response = client.post(f"/import/{job.uuid}/retry", follow=True)
    assert "nothing to try again" in response.content.decode()
    job.refresh_from_db()
    assert job.state == "queued" and job.attempt == 1
    assert DBTaskResult.objects.count() == 1

    run_worker()
    client.post(f"/import/{job.uuid}/retry")
    job.refresh_from_db()
    assert job.state == "done" and job.attempt == 1
    assert DBTaskResult.objects.count() == 1


def test_the_import_page_lists_my_recent_imports_and_no_one_elses(
    client, owner, curator, package, django_assert_max_num_queries
):
    client.force_login(curator)
    upload(client, package, name="curators-bag.zip")
    client.force_login(owner)
    for n in range(3):
        upload(client, package, name=f"bag-{n}.zip")
    run_worker()

    with django_assert_max_num_queries(8):
        page = client.get("/import/").content.decode()
    mine = ImportJob.objects.filter(user=owner)
    for job in mine:
        assert f'<a href="{job.get_absolute_url()}">{job.filename}</a>' in page
    assert "curators-bag.zip" not in page
    # olive's packages name maya's work, which only a curator imports; the curator's did.
    assert all(job.state == ImportJob.State.FAILED for job in mine)
    client.force_login(curator)
    assert (
        'href="/collections/field-notes/">Field notes</a>'
        in client.get("/import/").content.decode()
    )


def test_curators_find_every_import_in_the_admin_and_can_open_its_page(
    client, owner, curator, package
):
    client.force_login(owner)
    upload(client, package, name="olives-bag.zip")
    job = ImportJob.objects.get()
    client.force_login(curator)
    listing = client.get("/admin/exports/importjob/").content.decode()
    assert "olives-bag.zip" in listing
    detail = client.get(f"/admin/exports/importjob/{job.pk}/change/")
    assert detail.status_code == 200  # read-only: shown, not editable
    assert f'<a href="{job.get_absolute_url()}">Queued</a>' in detail.content.decode()
    client.force_login(owner)
    assert client.get("/admin/exports/importjob/").status_code == 302  # not staff: to log in
