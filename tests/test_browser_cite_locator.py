"""Citing a passage of a PDF or an EPUB in real Chromium: the locator is filled with its page
(or chapter) unless the person typed one."""

from __future__ import annotations

import uuid

import pytest

from annotations.models import Annotation
from archive.ingest import archive_chunks
from tests.conftest import archive_text, drag_select, login
from tests.docs import BOOK_METADATA, book_chapters, make_epub
from tests.pdfs import make_pdf, text_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def pdf_bytes() -> bytes:
    pages = [
        text_page("Front matter of the minutes.", f"Copy {uuid.uuid4().hex}."),
        text_page("The board raised the tolls.", "Coal ships paid double and"),
        text_page("grain ships paid nothing.", "The motion carried."),
    ]
    return make_pdf(
        pages,
        info={"Title": "Ledgers of the Port"},
        page_labels=b"/Nums [0 << /S /r >> 1 << /S /D /St 40 >>]",
    )


@pytest.mark.parametrize(
    ("kind", "typed", "locator", "label"),
    [
        ("pdf", "", "40", "page"),
        ("epub", "", "2", "chapter"),
        ("pdf", "7", "7", "page"),  # what the person types is kept
    ],
)
def test_picking_a_passage_fills_the_locator_with_its_page_or_chapter(
    page, live_server, owner, collection, kind, typed, locator, label
):
    if kind == "pdf":
        data = pdf_bytes()
    else:
        data = make_epub(book_chapters(f"Copy {uuid.uuid4().hex}."), metadata=BOOK_METADATA)
    cited = archive_chunks(iter([data]), user=owner, collection=collection).source
    notes = archive_text(f"Board notes {uuid.uuid4().hex}.", owner, collection)
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{notes.uuid}/")
    drag_select(page, 0, len("Board notes"))
    page.get_by_role("button", name="Annotate").click()
    page.get_by_role("button", name="Cite a source…").click()
    search = page.get_by_role("combobox", name="Find a source")
    search.fill("ledgers")
    page.get_by_role("option", name="Ledgers of the Port").wait_for()
    search.press("ArrowDown")
    search.press("Enter")
    if typed:
        page.get_by_label("Locator", exact=True).fill(typed)
    page.get_by_role("button", name="Pick a passage…").click()
    dialog = page.get_by_role("dialog", name="Pick a passage of “Ledgers of the Port”")
    dialog.wait_for()
    start = cited.text.index("raised the tolls")
    drag_select(page, start, start + len("raised the tolls"), within="dialog.picker .picker-layer")
    dialog.get_by_text("Selected: “raised the tolls”").wait_for()
    dialog.get_by_role("button", name="Use this passage").click()
    assert page.get_by_label("Locator", exact=True).input_value() == locator
    assert page.get_by_label("Locator type").input_value() == label
    page.get_by_role("button", name="Add citation").click()
    page.get_by_role("button", name="Save").click()
    page.wait_for_function("() => document.querySelectorAll('#ann-list .ann').length === 1")
    citation = Annotation.objects.get().citations.get()
    assert (citation.locator, citation.locator_label) == (locator, label)
