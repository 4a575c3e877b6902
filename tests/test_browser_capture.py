"""Capture by URL in real Chromium: the archive page follows a capture until it is done."""

from __future__ import annotations

import os
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
