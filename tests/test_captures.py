"""Capture by URL, end to end: the archive page queues captures, the real worker runs them
against a website on 127.0.0.1, and the pages show what became of each."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from archive.blobstore import archive_storage
from archive.models import Capture, Membership, Source
from tests.conftest import run_worker
from tests.helpers import blob_files, command_env
from tests.websites import Answer, Website, redirect, website

ARTICLE = (
    b"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    b"<title>Tolls on the river crossing</title></head><body><article>"
    b"<h1>Tolls on the river crossing</h1>"
    b"<p>The ferry charged one penny per passenger in 1843, as the ledger records.</p>"
    b"</article></body></html>"
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_blobs() -> None:
    """Blobs that earlier tests stored (files outlive the database's rows)."""
    shutil.rmtree(archive_storage().path(""), ignore_errors=True)


@pytest.fixture
def site(settings) -> Iterator[Website]:
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.SCHOLION_CAPTURE_TIMEOUT = 5
    with website() as site:
        site.pages["/story"] = Answer(ARTICLE)
        yield site


def capture_urls(client: Client, *urls: str, **fields: object):
    data = {"capture-urls": "\n".join(urls), **{f"capture-{k}": v for k, v in fields.items()}}
    return client.post("/sources/new/", data)


def source_of(capture: Capture) -> Source:
    assert capture.source is not None, capture.error
    return capture.source


def status_of(capture: Capture) -> tuple[str, str]:
    capture.refresh_from_db()
    return capture.display_state, capture.status_text


# --- Through the archive page ----------------------------------------------------------------


def test_a_url_on_the_archive_page_becomes_a_source_with_its_provenance(client, owner, site):
    site.pages["/old-address"] = redirect("/story", status=301)
    client.force_login(owner)
    page = client.get("/sources/new/").content.decode()
    # The address comes first, before the upload.
    assert page.index('name="capture-urls"') < page.index('name="file"')

    response = capture_urls(client, site.url("/old-address"))
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "1 capture queued" in page
    assert "Waiting for the worker to start it." in page

    run_worker()
    capture = Capture.objects.get()
    assert capture.state == "done", capture.error
    source = capture.source
    assert source is not None and capture.new_source
    assert source.archived_via == "capture" and source.archived_by == owner
    assert source.sha256 == hashlib.sha256(ARTICLE).hexdigest()
    with source.open_original() as original:
        assert original.read() == ARTICLE
    assert source.original_url == source.url == site.url("/story")
    assert source.title == "Tolls on the river crossing"
    assert "one penny per passenger" in source.text
    assert capture.url == site.url("/old-address")
    assert capture.url_final == site.url("/story")
    assert capture.http_status == 200 and capture.server_ip == "127.0.0.1"
    assert capture.provenance["redirects"] == [
        {"url": site.url("/old-address"), "status": 301, "location": "/story"}
    ]
    assert ["Content-Type", "text/html; charset=utf-8"] in capture.provenance["headers"]
    assert capture.provenance["software"]["name"] == "Scholion"
    # Every request carried Scholion's user agent; one for the redirect, one for the page.
    assert [path for path, _ in site.seen] == ["/old-address", "/story"]
    assert all(agent and agent.startswith("Scholion/") for _, agent in site.seen)

    archive_page = client.get("/sources/new/").content.decode()
    assert "Archived as “Tolls on the river crossing”." in archive_page
    assert source.get_absolute_url() in archive_page

    reading = client.get(source.get_absolute_url()).content.decode()
    assert "Captured from the web" in reading
    assert capture.get_absolute_url() in reading
    assert f"/captures/{capture.uuid}/wacz" in reading

    detail = client.get(capture.get_absolute_url()).content.decode()
    for shown in (site.url("/old-address"), "answered 301", site.url("/story"), "127.0.0.1"):
        assert shown in detail
    assert "Web archive (WACZ)" in detail


def test_the_web_archive_download_is_a_wacz_of_the_capture(client, owner, site):
    client.force_login(owner)
    capture_urls(client, site.url("/story"))
    run_worker()
    capture = Capture.objects.get()
    response = client.get(f"/captures/{capture.uuid}/wacz")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Security-Policy"] == "sandbox"
    wacz = b"".join(response.streaming_content)
    assert hashlib.sha256(wacz).hexdigest() == capture.wacz_sha256
    names = zipfile.ZipFile(io.BytesIO(wacz)).namelist()
    assert "datapackage.json" in names and "pages/pages.jsonl" in names
    # Stored at its content address, beside the page's original.
    assert blob_files() == {capture.wacz_name, source_of(capture).blob_name}


def test_several_urls_one_per_line_each_become_a_capture(client, owner, collection, site):
    site.pages["/second"] = Answer(ARTICLE.replace(b"1843", b"1844"))
    client.force_login(owner)
    capture_urls(client, site.url("/story"), "", site.url("/second"), collection=collection.pk)
    assert Capture.objects.count() == 2
    run_worker()
    assert sorted(c.state for c in Capture.objects.all()) == ["done", "done"]
    assert set(collection.sources.all()) == {c.source for c in Capture.objects.all()}


@pytest.mark.parametrize(
    "urls, message",
    [
        (["not an address"], "Not a web address (http or https): “not an address”."),
        (["ftp://example.org/file.txt"], "Not a web address"),
        (["javascript:alert(1)"], "Not a web address"),
        ([f"https://example.org/{n}" for n in range(21)], "capture at most 20 at a time"),
        ([], "This field is required."),
    ],
)
def test_bad_addresses_are_refused_and_nothing_is_queued(client, owner, urls, message):
    client.force_login(owner)
    response = capture_urls(client, *urls, "https://example.org/fine" if urls else "")
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Capture.objects.exists()
    # What was typed stays in the box, to be corrected.
    if urls:
        assert urls[0] in response.content.decode()


def test_the_bookmarklet_fills_in_the_address(client, owner):
    client.force_login(owner)
    page = client.get("/sources/new/", {"url": "https://example.org/a?b=1"}).content.decode()
    assert "https://example.org/a?b=1</textarea>" in page
    assert "Archive in Scholion" in page
    assert "encodeURIComponent(location.href)" in page


def test_a_capture_into_a_collection_one_may_not_add_to_is_refused(client, stranger, collection):
    client.force_login(stranger)
    response = capture_urls(client, "https://example.org/", collection=collection.pk)
    assert "Select a valid choice" in response.content.decode()
    assert not Capture.objects.exists()


# --- Failures, in plain words, and trying again --------------------------------------------


@pytest.mark.parametrize(
    "path, answer, reason",
    [
        ("/gone", Answer(b"no", status=404), "the server answered 404"),
        ("/broken", Answer(b"no", status=503), "the server answered 503"),
        ("/to-intranet", redirect("http://10.1.2.3/admin"), "the address is on a private network"),
        ("/slow", Answer(ARTICLE, trickle=0.05), "the server took longer than 1 s"),
    ],
)
def test_a_failed_capture_says_why_and_leaves_nothing_behind(
    client, owner, site, settings, path, answer, reason
):
    settings.SCHOLION_CAPTURE_TIMEOUT = 1
    site.pages[path] = answer
    client.force_login(owner)
    capture_urls(client, site.url(path))
    run_worker()
    capture = Capture.objects.get()
    assert status_of(capture) == ("failed", f"The capture failed: {reason}.")
    page = client.get("/captures/").content.decode()
    assert f"The capture failed: {reason}." in page and "Try again" in page
    assert not Source.objects.exists() and not blob_files()


def test_a_private_address_is_refused_without_the_allowance(client, owner, settings):
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = []
    client.force_login(owner)
    capture_urls(client, "http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/")
    run_worker()
    assert sorted(c.error for c in Capture.objects.all()) == [
        "The capture failed: the address is on a private network.",
        "The capture failed: the address is on a private network.",
    ]


def test_a_page_that_is_too_large_is_refused(client, owner, site, settings):
    settings.SCHOLION_MAX_UPLOAD_BYTES = 1024
    site.pages["/huge"] = Answer(b"x" * 5000)
    client.force_login(owner)
    capture_urls(client, site.url("/huge"))
    run_worker()
    assert Capture.objects.get().error == "The capture failed: the page is larger than 1 KiB."


def test_a_page_scholion_cannot_read_says_so(client, owner, site):
    site.pages["/photo"] = Answer(
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64, headers=[("Content-Type", "image/png")]
    )
    client.force_login(owner)
    capture_urls(client, site.url("/photo"))
    run_worker()
    capture = Capture.objects.get()
    assert capture.state == "failed"
    assert capture.error.startswith("The page was fetched but could not be archived: ")
    assert "image/png" in capture.error
    assert not Source.objects.exists()


def test_the_page_is_read_in_the_charset_its_server_declared(client, owner, site):
    # The server sends Latin-1 and says so; the page's <meta> was left saying UTF-8.
    page = (
        "<!doctype html><html lang='es'><head><meta charset='utf-8'>"
        "<title>La sanción del puerto</title></head><body><article><h1>La sanción del puerto</h1>"
        "<p>El registro de 1843 anota la sanción impuesta al barquero por cobrar de más.</p>"
        "</article></body></html>"
    ).encode("latin-1")
    site.pages["/latin"] = Answer(page, headers=[("Content-Type", "text/html; charset=ISO-8859-1")])
    client.force_login(owner)
    capture_urls(client, site.url("/latin"))
    run_worker()
    source = source_of(Capture.objects.get())
    assert source.title == "La sanción del puerto"
    assert "la sanción impuesta" in source.text
    assert source.encoding == "windows-1252"
    assert source.encoding_note == "windows-1252: declared by the server (Content-Type)"


def test_a_failed_capture_can_be_tried_again(client, owner, site):
    site.pages["/later"] = Answer(b"not yet", status=503)
    client.force_login(owner)
    capture_urls(client, site.url("/later"))
    run_worker()
    capture = Capture.objects.get()
    assert capture.state == "failed"

    site.pages["/later"] = Answer(ARTICLE)
    response = client.post(f"/captures/{capture.uuid}/retry", {"next": "/captures/"})
    assert response["Location"] == "/captures/"
    assert status_of(capture) == ("queued", "Waiting for the worker to start it.")
    run_worker()
    capture.refresh_from_db()
    assert capture.state == "done" and capture.attempt == 2 and capture.error == ""
    # A capture that did not fail is not run again.
    client.post(f"/captures/{capture.uuid}/retry")
    assert Capture.objects.get().attempt == 2


def test_the_collection_is_checked_again_when_the_capture_runs(client, member, collection, site):
    Membership.objects.filter(user=member).update(role=Membership.Role.EDITOR)
    client.force_login(member)
    capture_urls(client, site.url("/story"), collection=collection.pk)
    assert Capture.objects.get().state == "queued"
    Membership.objects.filter(user=member).delete()  # removed before the worker got to it
    run_worker()
    capture = Capture.objects.get()
    assert capture.error == (
        "The capture failed: you can no longer add sources to the collection it was to go into."
    )
    assert not collection.sources.exists()


# --- The same address again ------------------------------------------------------------------


def test_capturing_the_same_bytes_again_records_the_capture_on_the_same_source(client, owner, site):
    client.force_login(owner)
    capture_urls(client, site.url("/story"))
    run_worker()
    capture_urls(client, site.url("/story"))
    run_worker()
    first, second = Capture.objects.order_by("created_at")
    assert first.source == second.source and first.new_source and not second.new_source
    assert Source.objects.count() == 1
    assert "already archived" in status_of(second)[1]
    reading = client.get(first.source.get_absolute_url()).content.decode()
    assert reading.count("Captured again") == 1
    assert first.get_absolute_url() in reading and second.get_absolute_url() in reading


def test_a_page_that_changed_becomes_a_new_source_linked_to_the_earlier_capture(
    client, owner, site
):
    client.force_login(owner)
    capture_urls(client, site.url("/story"))
    run_worker()
    site.pages["/story"] = Answer(ARTICLE.replace(b"one penny", b"two pence"))
    capture_urls(client, site.url("/story"))
    run_worker()
    first, second = Capture.objects.order_by("created_at")
    assert first.source != second.source and second.new_source
    reading = client.get(second.source.get_absolute_url()).content.decode()
    assert "Other captures of this address" in reading
    assert first.source.get_absolute_url() in reading


# --- Private means private -------------------------------------------------------------------


def test_a_stranger_learns_nothing_of_someone_elses_capture(client, owner, stranger, site):
    client.force_login(owner)
    capture_urls(client, site.url("/story"))
    run_worker()
    mine = Capture.objects.get()
    assert mine.source is not None

    other = Client()
    other.force_login(stranger)
    for path in (
        mine.get_absolute_url(),
        f"/captures/{mine.uuid}/wacz",
        f"/captures/{mine.uuid}/screenshot.png",
    ):
        assert other.get(path).status_code == 404, path
    assert other.post(f"/captures/{mine.uuid}/retry").status_code == 404
    assert other.get("/captures/status", {"uuid": str(mine.uuid)}).json() == {"captures": []}
    assert site.url("/story") not in other.get("/captures/").content.decode()
    assert Client().get(mine.get_absolute_url()).status_code == 404

    # Capturing the same page makes the stranger a source of their own, naming nothing of mine.
    capture_urls(other, site.url("/story"))
    run_worker()
    theirs = Capture.objects.get(user=stranger)
    assert theirs.new_source and theirs.source != mine.source
    assert source_of(theirs).archived_by == stranger
    reading = other.get(source_of(theirs).get_absolute_url()).content.decode()
    assert mine.get_absolute_url() not in reading
    assert mine.source.get_absolute_url() not in reading
    assert "Other captures of this address" not in reading


def test_a_collection_member_sees_the_provenance_of_a_source_they_can_read(
    client, owner, member, collection, site
):
    client.force_login(owner)
    capture_urls(client, site.url("/story"), collection=collection.pk)
    run_worker()
    capture = Capture.objects.get()
    colleague = Client()
    colleague.force_login(member)
    assert colleague.get(capture.get_absolute_url()).status_code == 200
    assert colleague.get(f"/captures/{capture.uuid}/wacz").status_code == 200
    # But it is not theirs to retry, and not in their list.
    assert colleague.post(f"/captures/{capture.uuid}/retry").status_code == 404
    assert site.url("/story") not in colleague.get("/captures/").content.decode()


def test_my_captures_needs_a_login(client):
    assert client.get("/captures/")["Location"].startswith("/accounts/login/")
    assert client.get("/captures/status")["Location"].startswith("/accounts/login/")


# --- A worker killed mid-capture -------------------------------------------------------------


def test_a_worker_killed_mid_capture_leaves_nothing_and_the_capture_can_run_again(
    client, owner, site, settings
):
    settings.SCHOLION_CAPTURE_TIMEOUT = 60
    site.pages["/slow"] = Answer(ARTICLE, trickle=0.2)
    client.force_login(owner)
    capture_urls(client, site.url("/slow"))
    capture = Capture.objects.get()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"],
        cwd=settings.BASE_DIR,
        env={**command_env(), "SCHOLION_CAPTURE_ALLOWED_NETWORKS": "127.0.0.1/32"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not any(path == "/slow" for path, _ in site.seen):
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert status_of(capture)[0] == "running"
    # Three minutes without a heartbeat: the capture is shown as stopped.
    Capture.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    page = client.get(capture.get_absolute_url()).content.decode()
    assert "The capture stopped before it finished" in page and "Try again" in page
    assert not Source.objects.exists() and not blob_files()

    site.pages["/slow"] = Answer(ARTICLE)
    client.post(f"/captures/{capture.uuid}/retry")
    run_worker()
    capture.refresh_from_db()
    assert capture.state == "done" and capture.attempt == 2
    assert Source.objects.count() == 1


# --- The pages' script ----------------------------------------------------------------------


def test_the_status_json_names_only_the_asked_for_captures_of_the_person(client, owner, site):
    client.force_login(owner)
    capture_urls(client, site.url("/story"), site.url("/missing"))
    story = Capture.objects.get(url=site.url("/story"))
    missing = Capture.objects.get(url=site.url("/missing"))
    assert client.get("/captures/status", {"uuid": [str(story.uuid), "junk"]}).json() == {
        "captures": [story.status()]
    }
    run_worker()
    answered = client.get("/captures/status", {"uuid": [str(story.uuid), str(missing.uuid)]})
    by_url = {c["url"]: c for c in answered.json()["captures"]}
    done = by_url[site.url("/story")]
    assert done["state"] == "done" and done["finished"] and not done["may_retry"]
    assert done["source"]["url"] == source_of(Capture.objects.get(pk=story.pk)).get_absolute_url()
    failed = by_url[site.url("/missing")]
    assert failed["state"] == "failed" and failed["may_retry"] and failed["source"] is None
    assert answered["Cache-Control"].startswith("max-age=0")


def test_my_captures_lists_newest_first_with_pages(client, owner):
    client.force_login(owner)
    for n in range(30):
        Capture.objects.create(user=owner, url=f"https://example.org/{n}")
    page = client.get("/captures/").content.decode()
    shown = re.findall(r"https://example\.org/(\d+)</a>", page)
    assert shown == [str(n) for n in range(29, 4, -1)]
    assert "Page 1 of 2" in page
    assert "My captures" in client.get("/sources/").content.decode()


# --- The command line ------------------------------------------------------------------------


def test_the_archive_command_takes_urls_and_paths_mixed(owner, collection, site, tmp_path):
    site.pages["/gone"] = Answer(b"no", status=404)
    notes = tmp_path / "notes.txt"
    notes.write_text("Field notes, kept as written.\n")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 of 3 inputs failed"):
        call_command(
            "archive",
            site.url("/story"),
            str(notes),
            site.url("/gone"),
            "--collection",
            collection.slug,
            "--user",
            owner.username,
            stdout=out,
            stderr=err,
        )
    captured = Source.objects.get(archived_via="capture")
    uploaded = Source.objects.get(archived_via="cli")
    assert out.getvalue().splitlines() == [
        f"{captured.uuid}\t{captured.sha256}\tTolls on the river crossing",
        f"{uploaded.uuid}\t{uploaded.sha256}\tField notes, kept as written.",
    ]
    assert err.getvalue() == f"{site.url('/gone')}: The capture failed: the server answered 404.\n"
    assert set(collection.sources.all()) == {captured, uploaded}
    # Recorded as captures of the user's, with their provenance and web archive.
    done = Capture.objects.get(state="done")
    assert done.user == owner and done.source == captured and done.wacz_name
    assert Capture.objects.get(state="failed").url == site.url("/gone")


def test_the_archive_command_refuses_private_addresses_too(settings):
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = []
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("archive", "http://localhost./admin", stdout=io.StringIO(), stderr=err)
    assert "the address is on a private network" in err.getvalue()
    assert not Source.objects.exists()


# --- The API: POST /api/sources/ -------------------------------------------------------------


def bearer(user, scope: str = "write") -> dict[str, str]:
    _, key = ApiToken.issue(user, "capture script", scope)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def post_json(client: Client, data: object, **headers: str):
    return client.post(
        "/api/sources/", json.dumps(data), content_type="application/json", headers=http(headers)
    )


def http(meta: dict[str, str]) -> dict[str, str]:
    """``HTTP_AUTHORIZATION`` as the ``Authorization`` header the test client's headers take."""
    return {name.removeprefix("HTTP_").title(): value for name, value in meta.items()}


def test_a_script_captures_with_a_token_and_polls_until_the_source_is_there(
    client, owner, collection, site
):
    auth = bearer(owner)
    response = post_json(client, {"url": site.url("/story"), "collection": collection.slug}, **auth)
    assert response.status_code == 202
    location = response["Location"]
    capture = Capture.objects.get()
    assert location == f"http://testserver/api/captures/{capture.uuid}"
    assert response.json()["state"] == "queued" and response.json()["source"] is None

    polled = client.get(location, **auth)
    assert polled.status_code == 200 and polled["Retry-After"] == "2"
    assert polled.json()["state"] == "queued"

    run_worker()
    done = client.get(location, **auth)
    assert done.status_code == 200 and "Retry-After" not in done
    body = done.json()
    source = source_of(Capture.objects.get())
    assert body["state"] == "done" and body["finished"]
    assert body["source"] == {
        "uuid": str(source.uuid),
        "title": "Tolls on the river crossing",
        "url": f"http://testserver{source.get_absolute_url()}",
    }
    assert source in collection.sources.all()


@pytest.mark.parametrize(
    "data, status, message",
    [
        ({}, 400, "url must be a web address (http or https)."),
        ({"url": "file:///etc/passwd"}, 400, "url must be a web address (http or https)."),
        ({"url": 12}, 400, "url must be a web address (http or https)."),
        (["https://example.org/"], 400, "Send a JSON object"),
        ({"url": "https://example.org/", "whole_page": "yes"}, 400, "whole_page must be"),
        ({"url": "https://example.org/", "collection": "nowhere"}, 404, "No collection you may"),
    ],
)
def test_the_api_refuses_bad_requests_clearly(client, owner, data, status, message):
    response = post_json(client, data, **bearer(owner))
    assert response.status_code == status
    assert response.json()["error"].startswith(message)
    assert not Capture.objects.exists()


def test_a_stranger_cannot_capture_into_a_collection_or_learn_that_it_exists(
    client, owner, stranger, collection
):
    hidden = post_json(
        client, {"url": "https://example.org/", "collection": collection.slug}, **bearer(stranger)
    )
    missing = post_json(
        client, {"url": "https://example.org/", "collection": "no-such-thing"}, **bearer(stranger)
    )
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert not Capture.objects.exists()


def test_the_api_needs_a_login_and_a_csrf_token_for_cookie_sessions(client, owner, stranger):
    anonymous = post_json(client, {"url": "https://example.org/"})
    assert anonymous.status_code == 401
    session = Client(enforce_csrf_checks=True)
    session.force_login(owner)
    assert post_json(session, {"url": "https://example.org/"}).status_code == 403
    assert not Capture.objects.exists()

    mine = Capture.submit(owner, "https://example.org/")
    assert client.get(f"/api/captures/{mine.uuid}").status_code == 401
    theirs = client.get(f"/api/captures/{mine.uuid}", **bearer(stranger))
    assert theirs.status_code == 404
    assert theirs.json() == {"error": "No capture of yours has that id."}


def test_curators_see_every_capture_in_the_admin_read_only(client, owner, curator):
    capture = Capture.objects.create(
        user=owner, url="https://example.org/report", state="failed", error="The capture failed."
    )
    client.force_login(curator)
    listing = client.get("/admin/archive/capture/").content.decode()
    assert "https://example.org/report" in listing
    change = client.get(f"/admin/archive/capture/{capture.pk}/change/").content.decode()
    assert capture.get_absolute_url() in change and 'name="url"' not in change
    assert client.get(capture.get_absolute_url()).status_code == 200
    assert client.get("/admin/archive/capture/add/").status_code == 403


def test_one_person_may_have_at_most_100_captures_waiting(client, owner, stranger):
    Capture.objects.bulk_create(
        Capture(user=owner, url=f"https://example.org/{n}") for n in range(99)
    )
    client.force_login(owner)
    refused = capture_urls(client, "https://example.org/a", "https://example.org/b")
    assert "You have 99 captures waiting or running" in refused.content.decode()
    assert "you may ask for 1 more now" in refused.content.decode()
    assert Capture.objects.count() == 99
    capture_urls(client, "https://example.org/a")
    assert Capture.objects.count() == 100
    api = post_json(client, {"url": "https://example.org/c"}, **bearer(owner))
    assert api.status_code == 429 and "Nothing was captured" in api.json()["error"]
    # Finished ones do not count, nor do other people's.
    Capture.objects.filter(url="https://example.org/0").update(state="failed")
    assert post_json(client, {"url": "https://example.org/c"}, **bearer(owner)).status_code == 202
    assert (
        post_json(client, {"url": "https://example.org/d"}, **bearer(stranger)).status_code == 202
    )


NEWS = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    "<title>Harbour dues rise for the winter - Coast Wire</title>"
    "<meta property='og:site_name' content='Coast Wire'>"
    '<script type=\'application/ld+json\'>{"@context": "https://schema.org",'
    ' "@type": "NewsArticle", "headline": "Harbour dues rise for the winter",'
    ' "author": {"@type": "Person", "name": "Ada Okafor"},'
    ' "datePublished": "2026-11-30T08:00:00Z"}</script></head><body>'
    "<nav><a href='/'>Home</a> <a href='/sport'>Sport</a> <a href='/weather'>Weather</a></nav>"
    "<article><h1>Harbour dues rise for the winter</h1>"
    + "".join(
        f"<p>The harbour board set the winter dues at its meeting, paragraph {n}: ships over"
        " forty metres pay by the metre, fishing boats by the season, and ferries as before.</p>"
        for n in range(6)
    )
    + "</article><aside><h2>Related</h2><ul><li><a href='/a'>Other story</a></li></ul></aside>"
    "<footer>Share this story. © Coast Wire. Subscribe to our newsletter.</footer></body></html>"
).encode()


@pytest.mark.parametrize("whole_page", [False, True])
def test_a_captured_news_page_keeps_its_article_or_the_whole_page(client, owner, site, whole_page):
    site.pages["/news"] = Answer(NEWS)
    client.force_login(owner)
    capture_urls(client, site.url("/news"), **({"whole_page": "on"} if whole_page else {}))
    run_worker()
    source = source_of(Capture.objects.get())
    assert source.title == "Harbour dues rise for the winter"
    assert source.creators == ["Ada Okafor"]
    assert source.date_published == "2026-11-30"
    assert "ferries as before" in source.text
    if whole_page:
        assert source.extractor == "html"
        assert "Subscribe to our newsletter" in source.text
    else:
        assert source.extractor == "article"
        assert "Subscribe to our newsletter" not in source.text
        assert "Other story" not in source.text and "Weather" not in source.text
