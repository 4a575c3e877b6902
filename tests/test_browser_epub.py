"""An EPUB book in real Chromium: select a passage in a chapter, annotate it, see its chapter."""

from __future__ import annotations

import uuid

import pytest

from annotations.models import Annotation
from archive.ingest import archive_chunks
from tests.conftest import drag_select, login
from tests.docs import BOOK_METADATA, book_chapters, make_epub

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def book(owner, collection):
    data = make_epub(book_chapters(f"Copy {uuid.uuid4().hex}."), metadata=BOOK_METADATA)
    return archive_chunks(iter([data]), user=owner, collection=collection, filename="b.epub").source


def test_annotating_an_epub_passage_shows_its_chapter_on_the_card(page, live_server, book):
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{book.uuid}/")
    marks = page.locator("#text-layer .page-mark")
    assert marks.all_inner_texts() == ["ch. 1", "ch. 2", "ch. 3"]
    assert page.get_by_role("heading", name="The Tolls").is_visible()

    start = book.text.index("raised the tolls")
    drag_select(page, start, start + len("raised the tolls"))
    page.get_by_role("button", name="Annotate").click()
    page.get_by_role("button", name="Save").click()
    page.wait_for_function("() => document.querySelectorAll('#ann-list .ann').length > 0")
    one = Annotation.objects.get()
    assert one.exact == "raised the tolls"
    assert "ch. 2" in page.locator(f"#a-{one.uuid} .ann-meta").inner_text()
