"""Long work on the worker, in real Chromium: an export asked for from the Export menu and a
PDF too slow to read within its upload each have a page that follows the worker by itself
and then offers the result."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from archive.models import Source
from exports.models import ExportJob
from tests.conftest import login, run_worker
from tests.pdfs import make_pdf, text_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SCHOLION_SCREENSHOTS", "")  # a directory: save what the pages look like


def shoot(page, name: str) -> None:
    if not SHOTS:
        return
    for width, height in ((1366, 768), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=f"{SHOTS}/long-work-{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1366, "height": 768})


@pytest.fixture(autouse=True)
def exports_dir(settings, tmp_path):
    settings.SCHOLION_EXPORTS_DIR = tmp_path / "exports"


def test_a_bag_asked_for_from_the_export_menu_is_offered_when_ready(page, owner, annotated):
    login(page, "olive", "pw-olive-123")
    page.goto("/collections/field-notes/?tag=claims")
    page.get_by_text("Export", exact=True).click()
    shoot(page, "menu")
    page.get_by_role("button", name="Archive package (BagIt zip)").click()
    page.wait_for_url("**/exports/*-*/")
    status = page.get_by_role("status")
    expect(status).to_contain_text("Queued")
    download = page.get_by_role("link", name="Download field-notes-bag.zip")
    expect(download).to_be_hidden()
    page.evaluate("window.stillTheSamePage = true")  # gone if the page were reloaded
    assert ExportJob.objects.get().filters == {"tag": ["claims"]}

    run_worker()

    expect(status).to_contain_text("Ready until")
    expect(download).to_be_visible()
    assert page.evaluate("window.stillTheSamePage") is True
    shoot(page, "export-job")
    with page.expect_download() as fetched:
        download.click()
    assert fetched.value.suggested_filename == "field-notes-bag.zip"


def test_a_slow_pdf_upload_leads_to_its_source_once_the_worker_has_read_it(page, owner, settings):
    settings.SCHOLION_READ_REQUEST_SECONDS = 0.01
    login(page, "olive", "pw-olive-123")
    page.goto("/sources/new/")
    data = make_pdf([text_page("A long report, read on the worker.")], info={"Title": "Long"})
    page.locator("input[type=file]").set_input_files(
        {"name": "long.pdf", "mimeType": "application/pdf", "buffer": data}
    )
    page.locator("form:has(input[type=file]) button[type=submit]").click()
    page.wait_for_url("**/uploads/*-*/")
    status = page.get_by_role("status")
    expect(status).to_contain_text("text layer is being prepared")
    shoot(page, "upload-waiting")

    run_worker()

    expect(status).to_contain_text("Archived “Long”.")
    link = page.get_by_role("link", name="Read and annotate it")
    expect(link).to_be_visible()
    shoot(page, "upload-done")
    link.click()
    page.wait_for_url(f"**/sources/{Source.objects.get().uuid}/")
    expect(page.locator("#text-layer")).to_contain_text("A long report, read on the worker.")


def test_a_slow_word_document_is_listed_on_the_archive_page_until_it_is_read(page, owner, settings):
    from archive.extract.zipped import DOCX_TYPE
    from tests.docs import make_docx

    settings.SCHOLION_READ_REQUEST_SECONDS = 0.01
    login(page, "olive", "pw-olive-123")
    page.goto("/sources/new/")
    page.locator("input[type=file]").set_input_files(
        {"name": "thesis.docx", "mimeType": DOCX_TYPE, "buffer": make_docx("Read on the worker.")}
    )
    page.locator("form:has(input[type=file]) button[type=submit]").click()
    page.wait_for_url("**/uploads/*-*/")
    # Left and found again from the archive page, not only through the redirect.
    page.goto("/sources/new/")
    listed = page.get_by_role("list", name="Uploads read on the worker")
    expect(listed).to_contain_text("text layer is being prepared")
    shoot(page, "upload-listed")
    listed.get_by_role("link", name="thesis.docx").click()
    page.wait_for_url("**/uploads/*-*/")

    run_worker()

    expect(page.get_by_role("status")).to_contain_text("Archived")
    page.get_by_role("link", name="Read and annotate it").click()
    expect(page.locator("#text-layer")).to_contain_text("Read on the worker.")
    page.goto("/sources/new/")
    expect(page.get_by_role("list", name="Uploads read on the worker")).to_have_count(0)
