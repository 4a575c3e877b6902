"""Curators follow uploads read on the worker and exports it writes in the admin: listed with
their state, requester and dates, filtered, read-only, and a stopped one can be queued again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotations.models import CodebookJob
from archive.models import UploadJob
from exports.models import ExportJob

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


def staff_client(curator) -> Client:
    client = Client()
    client.force_login(curator)
    return client


def make_upload(user, collection, name: str, **fields) -> UploadJob:
    return UploadJob.objects.create(
        user=user,
        collection=collection,
        filename=name,
        sha256="a" * 64,
        size=1234,
        blob_name="aa/" + "a" * 64,
        **fields,
    )


def make_export(user, collection, **fields) -> ExportJob:
    return ExportJob.objects.create(
        user=user, collection=collection, format="csv", base_url="http://testserver", **fields
    )


def make_codebook_job(user, collection, **fields) -> CodebookJob:
    return CodebookJob.objects.create(
        user=user, collection=collection, action="delete", old_name="prices", **fields
    )


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("kind", ["upload", "export", "codebook"])
def test_a_job_changelist_costs_the_same_queries_for_two_rows_as_for_eight(
    curator, owner, member, collection, kind
):
    def add(n: int) -> None:
        for i in range(n):
            user = owner if i % 2 else member
            if kind == "upload":
                make_upload(user, collection, f"report-{UploadJob.objects.count()}.pdf")
            elif kind == "export":
                make_export(user, collection)
            else:
                make_codebook_job(user, collection)

    url = {
        "upload": "/admin/archive/uploadjob/",
        "export": "/admin/exports/exportjob/",
        "codebook": "/admin/annotations/codebookjob/",
    }[kind]
    client = staff_client(curator)
    add(2)
    few = queries(client, url)
    add(6)
    page = client.get(url).content.decode()
    assert queries(client, url) == few
    assert "maya" in page and "olive" in page and "Queued" in page


def test_the_upload_changelist_shows_state_owner_and_dates_and_filters_stopped_ones(
    curator, owner, collection
):
    make_upload(owner, collection, "waiting.pdf")
    stopped = make_upload(owner, collection, "stopped.docx")
    UploadJob.objects.filter(pk=stopped.pk).update(
        state="running", heartbeat_at=timezone.now() - LONG_AGO
    )
    make_upload(owner, collection, "failed.epub", state="failed", error="No text.")
    client = staff_client(curator)
    page = client.get("/admin/archive/uploadjob/").content.decode()
    for text in ("waiting.pdf", "stopped.docx", "failed.epub", "Stopped", "Failed", "olive"):
        assert text in page
    only_stopped = client.get("/admin/archive/uploadjob/?status=stopped").content.decode()
    assert "stopped.docx" in only_stopped and "waiting.pdf" not in only_stopped
    assert "failed.epub" not in only_stopped
    running = client.get("/admin/archive/uploadjob/?status=running").content.decode()
    assert "stopped.docx" not in running
    found = client.get("/admin/archive/uploadjob/?q=failed").content.decode()
    assert "failed.epub" in found and "waiting.pdf" not in found


def test_a_job_change_page_is_read_only_and_none_is_added_by_hand(curator, owner, collection):
    upload = make_upload(owner, collection, "report.pdf", state="failed", error="Encrypted.")
    export = make_export(owner, collection)
    client = staff_client(curator)
    for url in (
        f"/admin/archive/uploadjob/{upload.pk}/change/",
        f"/admin/exports/exportjob/{export.pk}/change/",
    ):
        response = client.get(url)
        page = response.content.decode()
        assert (
            response.status_code == 200
            and str(upload.uuid if "upload" in url else export.uuid) in page
        )
        assert 'name="_save"' not in page  # nothing to save: the worker alone changes a job
    assert (
        "Encrypted." in client.get(f"/admin/archive/uploadjob/{upload.pk}/change/").content.decode()
    )
    assert (
        client.post(f"/admin/archive/uploadjob/{upload.pk}/change/", {"state": "done"}).status_code
        == 403
    )
    upload.refresh_from_db()
    assert upload.state == "failed"
    assert client.get("/admin/archive/uploadjob/add/").status_code == 403
    assert client.get("/admin/exports/exportjob/add/").status_code == 403


def test_the_retry_action_queues_a_stopped_job_again_and_leaves_the_rest(
    curator, owner, collection
):
    stopped = make_upload(owner, collection, "stopped.pdf")
    UploadJob.objects.filter(pk=stopped.pk).update(
        state="running", heartbeat_at=timezone.now() - LONG_AGO
    )
    done = make_upload(owner, collection, "done.pdf", state="done", summary="Archived.")
    response = staff_client(curator).post(
        "/admin/archive/uploadjob/",
        {"action": "retry_stopped_jobs", "_selected_action": [stopped.pk, done.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "1 job queued to run again." in page and "1 job was not stopped" in page
    stopped.refresh_from_db()
    done.refresh_from_db()
    assert (stopped.state, stopped.attempt, stopped.heartbeat_at) == ("queued", 2, None)
    assert (done.state, done.attempt) == ("done", 1)


def test_the_export_changelist_filters_expired_files(curator, owner, collection):
    now = timezone.now()
    make_export(owner, collection, state="done", expires_at=now - LONG_AGO, file_name="old.csv")
    fresh = make_export(
        owner, collection, state="done", expires_at=now + LONG_AGO, file_name="new.csv"
    )
    client = staff_client(curator)
    page = client.get("/admin/exports/exportjob/?expired=no").content.decode()
    assert f"/admin/exports/exportjob/{fresh.pk}/change/" in page
    assert page.count("/change/") == 1
    assert "1 export job" in page


def test_a_researcher_who_is_not_staff_is_sent_to_log_in(owner):
    client = Client()
    client.force_login(owner)
    for url in ("/admin/archive/uploadjob/", "/admin/exports/exportjob/"):
        assert client.get(url).status_code == 302


def test_imports_are_listed_filtered_and_retried_as_the_other_jobs_are(curator, owner):
    from exports.models import ImportJob

    # Its package is still spooled (package_name): the worker can start it again.
    stopped = ImportJob.objects.create(
        user=owner, filename="stopped-bag.zip", size=10, package_name="import-1.zip"
    )
    ImportJob.objects.filter(pk=stopped.pk).update(
        state="running", heartbeat_at=timezone.now() - LONG_AGO
    )
    done = ImportJob.objects.create(user=owner, filename="done-bag.zip", size=10, state="done")
    client = staff_client(curator)
    only_stopped = client.get("/admin/exports/importjob/?status=stopped").content.decode()
    assert "stopped-bag.zip" in only_stopped and "done-bag.zip" not in only_stopped
    response = client.post(
        "/admin/exports/importjob/",
        {"action": "retry_stopped_jobs", "_selected_action": [stopped.pk, done.pk]},
        follow=True,
    )
    assert "1 job queued to run again." in response.content.decode()
    stopped.refresh_from_db()
    assert (stopped.state, stopped.attempt) == ("queued", 2)
    assert client.get("/admin/exports/importjob/add/").status_code == 403


def test_a_codebook_change_made_by_the_worker_is_listed_and_shown_read_only(
    curator, owner, collection
):
    summary = "Deleted the code “prices” and removed it from 3 passages."
    job = make_codebook_job(owner, collection, state="done", summary=summary, done=3, total=3)
    client = staff_client(curator)
    listing = client.get("/admin/annotations/codebookjob/").content.decode()
    assert "deleting “prices”" in listing and "olive" in listing and "Done" in listing
    response = client.get(f"/admin/annotations/codebookjob/{job.pk}/change/")
    page = response.content.decode()
    assert response.status_code == 200 and str(job.uuid) in page and summary in page
    assert 'name="_save"' not in page
    assert client.get("/admin/annotations/codebookjob/add/").status_code == 403
