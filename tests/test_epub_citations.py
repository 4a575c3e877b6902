"""An EPUB book is read and cited by its chapters: marks, cards, locators and every export."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import uuid
from typing import TYPE_CHECKING, cast

import pytest

from annotations.models import Citation
from archive.ingest import archive_chunks
from tests.docs import BOOK_METADATA, book_chapters, make_epub
from tests.helpers import annotate, download

if TYPE_CHECKING:
    from annotations.models import CitationSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(owner, collection):
    data = make_epub(book_chapters(f"Copy {uuid.uuid4().hex}."), metadata=BOOK_METADATA)
    return archive_chunks(iter([data]), user=owner, collection=collection, filename="b.epub").source


@pytest.fixture
def in_chapter_two(book, owner):
    return annotate(book, owner, "raised the tolls", note="In chapter two.")


@pytest.fixture
def across_chapters(book, owner):
    return annotate(book, owner, "paid nothing.\n\nThe Reform")


def cite(user, citing, **spec):
    citation = Citation.build_all([cast("CitationSpec", spec)], user=user, citing=citing)[0]
    citing.replace_citations([citation])
    return citation


def card_of(response, annotation) -> str:
    found = re.search(
        rf'<li class="ann" id="a-{annotation.uuid}".*?</li>', response.content.decode(), re.S
    )
    assert found, "no card for the annotation"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group())).split())


def test_the_reading_page_marks_each_chapter_and_each_card_its_chapter(
    client, owner, book, in_chapter_two, across_chapters
):
    client.force_login(owner)
    response = client.get(book.get_absolute_url())
    assert response.status_code == 200
    page = response.content.decode()
    marks = re.findall(r'<div class="page-mark" id="chapter-(\d+)"[^>]*>([^<]*)</div>', page)
    assert marks == [("1", "ch. 1"), ("2", "ch. 2"), ("3", "ch. 3")]
    assert 'aria-label="chapter 2"' in page and "doc-pagebreak" not in page
    # The mark stands before the chapter's heading, outside every text run.
    found = re.search(r'ch\. 2</div><h3 class="blk" data-s="(\d+)"', page)
    assert found and found.group(1) == str(book.text.index("The Tolls"))
    runs = re.findall(r'<span data-o="\d+">([^<]*)</span>', page)
    assert "ch. 2" not in "".join(html.unescape(r) for r in runs)
    assert "ch. 2 ·" in card_of(response, in_chapter_two)
    assert "chs. 2–3 ·" in card_of(response, across_chapters)


def test_citing_a_passage_fills_the_locator_with_its_chapter(book, owner):
    note = annotate(book, owner, "The motion carried")
    start = book.text.index("raised the tolls")
    citation = cite(owner, note, source=str(book.uuid), start=start, end=start + 16)
    assert (citation.locator, citation.locator_label, citation.locator_text) == (
        "2",
        "chapter",
        "ch. 2",
    )
    start = book.text.index("paid nothing")
    across = cite(owner, note, source=str(book.uuid), start=start, end=start + 30)
    assert across.locator_text == "chs. 2–3"
    typed = cite(owner, note, source=str(book.uuid), start=start, end=start + 4, locator="p. 7")
    assert typed.locator == "p. 7"


def test_the_csv_names_the_chapter(client, owner, in_chapter_two, across_chapters):
    client.force_login(owner)
    response, body = download(client, "csv")
    assert response.status_code == 200
    rows = {r["quote"]: r["pages"] for r in csv.DictReader(io.StringIO(body.decode()))}
    assert rows == {"raised the tolls": "ch. 2", "paid nothing.\n\nThe Reform": "chs. 2–3"}


def test_the_json_ld_has_no_page_selector_for_a_chapter(client, owner, in_chapter_two):
    client.force_login(owner)
    response, body = download(client, "jsonld")
    assert response.status_code == 200
    (item,) = json.loads(body)["first"]["items"]
    kinds = [s["type"] for s in item["target"]["selector"]]
    assert kinds == ["TextPositionSelector", "TextQuoteSelector"]
    api = client.get(f"/api/annotations/{in_chapter_two.uuid}", HTTP_ACCEPT="application/ld+json")
    assert [s["type"] for s in api.json()["target"]["selector"]] == kinds


def test_the_markdown_reports_and_references_say_the_chapter(client, owner, book, in_chapter_two):
    client.force_login(owner)
    for fmt, one in (("markdown", "ch. 2"), ("pandoc", r"ch\. 2")):
        response, body = download(client, fmt)
        assert response.status_code == 200, fmt
        assert f" · {one} · by olive" in body.decode(), fmt
    start = book.text.index("raised the tolls")
    response = client.get(f"/sources/{book.uuid}/passages/{start}-{start + 16}/")
    assert response.status_code == 200
    assert "Passage “raised the tolls” (ch. 2):" in response.context["references"]["archived"]


def test_a_stranger_learns_nothing_of_the_book(client, stranger, book, in_chapter_two):
    client.force_login(stranger)
    response = client.get(book.get_absolute_url())
    assert response.status_code == 404
    assert b"ch. 2" not in response.content and b"tolls" not in response.content
    start = book.text.index("raised the tolls")
    assert client.get(f"/sources/{book.uuid}/passages/{start}-{start + 16}/").status_code == 404
    response, body = download(client, "csv")
    assert response.status_code == 404 and b"tolls" not in body


def test_a_chapter_mark_closes_the_list_before_it(client, owner, book):
    client.force_login(owner)
    page = client.get(book.get_absolute_url()).content.decode()
    assert re.search(r'</ul><div class="page-mark" id="chapter-3"', page)


def test_a_book_and_its_chapters_survive_an_export_and_import(
    owner, book, in_chapter_two, tmp_path
):
    from django.core.management import call_command

    from annotations.models import Annotation
    from archive.models import Source
    from tests.helpers import empty_everything, export_bag, members

    first = members(export_bag(tmp_path / "first.zip"))
    chapters = book.divisions
    empty_everything()
    call_command("import_collection", str(tmp_path / "first.zip"))
    source = Source.objects.get(uuid=book.uuid)
    assert (source.extractor, source.divisions) == ("epub", chapters)
    imported = Annotation.objects.get(uuid=in_chapter_two.uuid)
    assert (imported.start, imported.end) == (in_chapter_two.start, in_chapter_two.end)
    second = members(export_bag(tmp_path / "second.zip"))
    assert first["data/annotations.csv"] == second["data/annotations.csv"]
    assert b"ch. 2" in second["data/annotations.csv"]
