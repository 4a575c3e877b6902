"""Archiving and reading in real Chromium: upload, metadata, reading, byte-exact download."""

from __future__ import annotations

import hashlib

import pytest

from archive.models import Source
from tests.conftest import DEMO_PATH, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HTML = (
    b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Harbour report</title>"
    b"<meta name='citation_author' content='Okafor, Ada'>"
    b"<meta name='citation_publication_date' content='2024/05/02'>"
    b"<script>document.title='hacked'</script></head><body><h1>Harbour report</h1>"
    b"<p onclick='alert(1)'>Ships <a href='javascript:alert(1)'>arrived</a> at dawn.</p>"
    b"</body></html>"
)


def test_upload_fill_metadata_read_and_download_the_exact_bytes(page, live_server, owner, tmp_path):
    login(page, "olive", "pw-olive-123")
    page.get_by_role("link", name="Archive a source").first.click()
    upload = tmp_path / "harbour.html"
    upload.write_bytes(HTML)
    page.get_by_label("File").set_input_files(str(upload))
    page.get_by_role("button", name="Archive").click()

    page.wait_for_url("**/edit/")
    assert page.get_by_label("Title").input_value() == "Harbour report"
    assert page.get_by_label("Creators").input_value() == "Okafor, Ada"
    assert page.get_by_label("Date published").input_value() == "2024-05-02"
    page.get_by_label("Publisher or site").fill("Port Gazette")
    page.get_by_role("button", name="Save metadata").click()

    page.wait_for_selector("#text-layer")
    assert page.title().startswith("Harbour report")
    assert "Ships arrived at dawn." in page.locator("#text-layer").inner_text()
    assert page.locator("#text-layer a").count() == 0  # the javascript: link kept only its text
    assert "Port Gazette" in page.locator(".source-head").inner_text()
    source = Source.objects.get()
    assert source.sha256 in page.locator(".fixity").inner_text()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download original").click()
    path = download_info.value.path()
    data = path.read_bytes()
    assert data == HTML
    assert hashlib.sha256(data).hexdigest() == source.sha256

    page.get_by_text("Cite this source", exact=True).click()
    assert source.citation_key in page.locator(".bibtex").inner_text()


def test_pasted_text_is_archived_and_the_same_upload_again_is_recognised(page, live_server, owner):
    login(page, "olive", "pw-olive-123")
    page.goto("/sources/new/")
    page.get_by_label("…or paste text").fill(
        "A pasted note about the harbour.\n\nSecond paragraph."
    )
    page.get_by_label("Title").fill("Pasted harbour note")
    page.get_by_role("button", name="Archive").click()
    page.wait_for_url("**/edit/")
    page.goto("/sources/new/")
    page.get_by_label("File").set_input_files(str(DEMO_PATH))
    page.get_by_role("button", name="Archive").click()
    page.wait_for_url("**/edit/")
    page.goto("/sources/new/")
    page.get_by_label("File").set_input_files(str(DEMO_PATH))
    page.get_by_role("button", name="Archive").click()
    assert "already archived" in page.locator(".messages").inner_text()
    assert Source.objects.count() == 2


def test_an_unsupported_file_gets_a_clear_error_and_the_form_keeps_its_values(
    page, live_server, owner, tmp_path
):
    login(page, "olive", "pw-olive-123")
    page.goto("/sources/new/")
    fake = tmp_path / "photo.txt"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    page.get_by_label("File").set_input_files(str(fake))
    page.get_by_label("Title").fill("Kept title")
    page.get_by_role("button", name="Archive").click()
    alert = page.get_by_role("alert")
    assert "image/png" in alert.inner_text() and "Supported types" in alert.inner_text()
    assert page.get_by_label("Title").input_value() == "Kept title"
    assert Source.objects.count() == 0
