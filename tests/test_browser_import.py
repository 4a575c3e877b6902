"""The import pages in real Chromium: an uploaded package's page follows the import by itself
while the worker runs it, and a package over the limit is refused before it is sent."""

from __future__ import annotations

import pytest
from playwright.sync_api import Request, expect

from annotations.models import Annotation
from exports.models import ImportJob
from tests.conftest import login, run_worker
from tests.helpers import export_bag

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def imports_dir(settings, tmp_path):
    settings.SCHOLION_IMPORTS_DIR = tmp_path / "imports"


def test_the_import_page_turns_to_done_by_itself_when_the_worker_has_run(
    page, curator, annotated, tmp_path
):
    data = export_bag(tmp_path / "bag.zip")
    Annotation.objects.all().delete()
    login(page, "cora", "pw-cora-123")
    page.goto("/collections/")
    page.get_by_role("link", name="Import a collection").click()
    page.get_by_label("Package (.zip or .qdpx)").set_input_files(
        {"name": "field-notes-bag.zip", "mimeType": "application/zip", "buffer": data}
    )
    page.get_by_role("button", name="Import").click()
    page.wait_for_url("**/import/*-*/")
    status = page.get_by_role("status")
    expect(status).to_contain_text("Queued")
    expect(page.get_by_role("link", name="Refresh")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")  # gone if the page were reloaded

    run_worker()

    expect(status).to_contain_text("Done")
    expect(status).to_contain_text("4 annotations added")
    link = page.get_by_role("link", name="Open the collection “Field notes”")
    expect(link).to_be_visible()
    expect(page.get_by_role("link", name="Refresh")).to_be_hidden()
    assert page.evaluate("window.stillTheSamePage") is True
    assert ImportJob.objects.get().state == "done"

    link.click()
    page.wait_for_url("**/collections/field-notes/")
    page.goto("/import/")
    expect(page.get_by_role("link", name="field-notes-bag.zip")).to_be_visible()


def test_a_package_over_the_limit_is_refused_as_soon_as_it_is_chosen(
    page, curator, annotated, settings
):
    settings.SCHOLION_IMPORT_MAX_UPLOAD_BYTES = 1024
    login(page, "cora", "pw-cora-123")
    page.goto("/import/")
    posts: list[str] = []

    def note_post(request: Request) -> None:
        if request.method == "POST":
            posts.append(request.url)

    page.on("request", note_post)
    field = page.get_by_label("Package (.zip or .qdpx)")
    form = page.locator("#import-form")

    field.set_input_files({"name": "big.zip", "mimeType": "application/zip", "buffer": b"x" * 5000})
    assert "larger than the 1.0\xa0KB" in field.evaluate("input => input.validationMessage")
    assert form.evaluate("form => form.checkValidity()") is False
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Import a collection")).to_be_visible()
    assert posts == [] and not ImportJob.objects.exists()

    field.set_input_files({"name": "small.zip", "mimeType": "application/zip", "buffer": b"x" * 10})
    assert form.evaluate("form => form.checkValidity()") is True


def test_a_projects_report_appears_by_itself_when_its_import_is_done(page, owner, collection):
    from tests.test_qdpx_import import coded_project

    login(page, "olive", "pw-olive-123")
    page.goto("/import/")
    page.get_by_label("Package (.zip or .qdpx)").set_input_files(
        {"name": "harbour.qdpx", "mimeType": "application/zip", "buffer": coded_project()}
    )
    page.get_by_label("Into collection (REFI-QDA projects only)").select_option("field-notes")
    page.get_by_role("button", name="Import").click()
    page.wait_for_url("**/import/*-*/")
    report = page.get_by_role("region", name="What was not kept as it was")
    expect(report).to_be_hidden()
    page.evaluate("window.stillTheSamePage = true")

    run_worker()

    expect(page.get_by_role("status")).to_contain_text("3 annotations added")
    expect(report).to_be_visible()
    assert page.evaluate("window.stillTheSamePage") is True
    page.reload()  # and the same report without the script's help
    expect(report.get_by_role("listitem").filter(has_text="“beyond the end”")).to_be_visible()
