"""Capture by URL in real Chromium: the archive page follows a capture until it is done."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator

import pytest

from archive.models import Capture
from tests.conftest import login, run_worker
from tests.websites import Answer, Website, website

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCHOLION_SCREENSHOTS", "")

STORY = (
    b"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    b"<title>Minutes of the harbour board</title></head><body><article>"
    b"<h1>Minutes of the harbour board</h1><p>The board met on the first of May.</p>"
    b"</article></body></html>"
)


@pytest.fixture
def site(settings) -> Iterator[Website]:
    settings.SCHOLION_CAPTURE_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with website() as site:
        site.pages["/minutes"] = Answer(STORY)
        site.pages["/gone"] = Answer(b"no", status=404)
        yield site


def test_the_archive_page_follows_captures_until_they_are_done(page, live_server, owner, site):
    login(page, "olive", "pw-olive-123")
    page.get_by_role("link", name="Archive a source").first.click()
    addresses = page.get_by_label("Web addresses")
    addresses.fill(f"{site.url('/minutes')}\n{site.url('/gone')}")
    page.get_by_role("button", name="Capture").click()
    page.get_by_text("2 captures queued").wait_for()
    assert page.locator("li.capture.job-state-queued").count() == 2

    run_worker()  # while the page is open: its script notices, with no reload
    done = page.locator("li.capture.job-state-done")
    done.wait_for()
    assert "Archived as “Minutes of the harbour board”." in done.inner_text()
    failed = page.locator("li.capture.job-state-failed")
    failed.wait_for()
    assert "The capture failed: the server answered 404." in failed.inner_text()
    assert failed.get_by_role("button", name="Try again").is_visible()
    assert not done.get_by_role("button", name="Try again").is_visible()
    if SCREENSHOTS:
        page.screenshot(path=f"{SCREENSHOTS}/archive-page-captures.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=f"{SCREENSHOTS}/archive-page-captures-phone.png", full_page=True)
        page.set_viewport_size({"width": 1366, "height": 768})

    done.get_by_role("link", name="Open the source").click()
    page.wait_for_selector("#text-layer")
    assert "The board met on the first of May." in page.locator("#text-layer").inner_text()
    captured = page.locator(".source-captures")
    assert captured.get_by_role("heading", name="Captured from the web").is_visible()
    captured.get_by_role("link", name="Provenance").click()
    assert "Address asked for" in page.locator("dl.provenance").inner_text()
    if SCREENSHOTS:
        page.screenshot(path=f"{SCREENSHOTS}/capture-provenance.png", full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=f"{SCREENSHOTS}/capture-provenance-phone.png", full_page=True)
    assert Capture.objects.filter(state="done").count() == 1


def test_the_bookmarklet_opens_the_archive_page_with_the_address(page, live_server, owner):
    login(page, "olive", "pw-olive-123")
    page.goto("/sources/new/")
    page.get_by_text("Capture from any page with a bookmarklet").click()
    link = page.get_by_role("link", name="Archive in Scholion")
    script = link.get_attribute("href")
    assert script is not None and script.startswith("javascript:")
    # Run as the bookmark would on someone else's page.
    page.goto("about:blank")
    with page.expect_popup() as popup_info:
        page.evaluate(
            "script => { history.replaceState(null, '', location.href); eval(script) }",
            script.removeprefix("javascript:"),
        )
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.get_by_label("Web addresses").input_value() == "about:blank"


def test_with_a_browser_the_capture_keeps_a_screenshot_and_what_the_page_loaded(
    client, owner, site, settings
):
    from io import BytesIO

    from PIL import Image
    from warcio.archiveiterator import ArchiveIterator

    from tests.conftest import CHROMIUM

    settings.SCHOLION_CAPTURE_BROWSER = CHROMIUM
    site.pages["/styled"] = Answer(
        b"<!doctype html><html><head><title>Styled minutes</title>"
        b"<link rel=stylesheet href=/style.css></head><body><h1>Styled minutes</h1>"
        b"<p>The board met again.</p><img src='http://169.254.169.254/latest/x.png'></body></html>"
    )
    site.pages["/style.css"] = Answer(
        b"body { background: rgb(0, 128, 0); }", headers=[("Content-Type", "text/css")]
    )
    client.force_login(owner)
    client.post("/sources/new/", {"capture-urls": site.url("/styled")})
    run_worker()
    capture = Capture.objects.get()
    assert capture.state == "done", capture.error
    assert capture.screenshot_name and capture.provenance["browser"]["resources"] == 1
    assert capture.provenance["browser"]["refused"][0]["url"].startswith("http://169.254.169.254")

    shot = client.get(f"/captures/{capture.uuid}/screenshot.png")
    assert shot["Content-Type"] == "image/png"
    image = Image.open(BytesIO(b"".join(shot.streaming_content))).convert("RGB")
    assert image.getpixel((5, image.height - 5)) == (0, 128, 0)  # the stylesheet was applied

    assert capture.source is not None
    reading = client.get(capture.source.get_absolute_url()).content.decode()
    assert "What the page looked like" in reading
    assert f"/captures/{capture.uuid}/screenshot.png" in reading
    detail = client.get(capture.get_absolute_url()).content.decode()
    assert "Loaded, with the 1 file it asked for kept in the web archive" in detail
    assert "the address is on a private network" in detail

    wacz = zipfile.ZipFile(
        BytesIO(b"".join(client.get(f"/captures/{capture.uuid}/wacz").streaming_content))
    )
    with wacz.open("archive/capture.warc.gz") as warc:
        uris = [
            r.rec_headers.get_header("WARC-Target-URI")
            for r in ArchiveIterator(warc)
            if r.rec_type == "response"
        ]
    assert uris == [site.url("/styled"), site.url("/style.css")]
    # The server saw the page once, and the stylesheet, each from Scholion.
    assert sorted(path for path, _ in site.seen) == ["/style.css", "/styled"]
