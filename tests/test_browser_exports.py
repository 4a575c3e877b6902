"""The collection page's Export menu in real Chromium: each choice is a file download."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import login
from tests.helpers import only_sheet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_export_menu_downloads_the_csv_and_a_filtered_jsonld(page, annotated):
    login(page, "olive", "pw-olive-123")
    page.goto("/collections/")
    page.get_by_role("link", name="Field notes").click()
    page.get_by_text("Export", exact=True).click()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Spreadsheet (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == "field-notes-annotations.csv"
    rows = list(csv.DictReader(io.StringIO(download.path().read_text("utf-8"), newline="")))
    assert {r["quote"] for r in rows} == {
        "The first passage",
        "'=SUM(A1)",
        "the harbour froze in 1709",
        "Bread was dear",
    }

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Spreadsheet (XLSX)").click()
    download = download_info.value
    assert download.suggested_filename == "field-notes-annotations.xlsx"
    sheet = only_sheet(download.path().read_bytes())
    assert sheet["A1"].value == "collection" and sheet.freeze_panes == "A2"
    quote = next(c.column_letter for c in sheet[1] if c.value == "quote")
    assert {c.value for c in sheet[quote][1:]} == {
        "The first passage",
        "=SUM(A1)",  # text in a workbook: it needs no quote mark
        "the harbour froze in 1709",
        "Bread was dear",
    }

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Report for pandoc (Markdown)").click()
    download = download_info.value
    assert download.suggested_filename == "field-notes-report-pandoc.md"
    assert 'bibliography: "field-notes-sources.json"' in download.path().read_text("utf-8")

    # The page's filters narrow the downloads too.
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Tag", exact=True).fill("dates")
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_text("Export", exact=True).click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="W3C Web Annotation (JSON-LD)").click()
    download = download_info.value
    assert download.suggested_filename == "field-notes-annotations.jsonld"
    doc = json.loads(download.path().read_text("utf-8"))
    assert [i["target"]["selector"][1]["exact"] for i in doc["first"]["items"]] == [
        "The first passage"
    ]
