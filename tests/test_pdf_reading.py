"""A PDF source's reading page: page marks in the text, the page(s) on each annotation card."""

from __future__ import annotations

import html
import re
import uuid

import pytest

from archive.ingest import archive_chunks
from tests.helpers import annotate
from tests.pdfs import make_pdf, text_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def pdf_source(owner, collection):
    pages = [
        text_page("Preface to the ledgers.", f"Copy {uuid.uuid4().hex}."),
        text_page("The harbour master kept the ledgers.", "Tolls were paid in coin and"),
        text_page("in kind, until the reform.", "Ships grew larger."),
    ]
    data = make_pdf(pages, page_labels=b"/Nums [0 << /S /r >> 1 << /S /D /St 12 >>]")
    return archive_chunks(iter([data]), user=owner, collection=collection, filename="l.pdf").source


def shown(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))


def card_of(response, annotation) -> str:
    found = re.search(
        rf'<li class="ann" id="a-{annotation.uuid}".*?</li>', response.content.decode(), re.S
    )
    assert found, "no card for the annotation"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group())).split())


def test_the_reading_page_marks_where_each_page_starts(client, owner, pdf_source):
    client.force_login(owner)
    response = client.get(pdf_source.get_absolute_url())
    assert response.status_code == 200
    page = response.content.decode()
    marks = re.findall(r'<div class="page-mark" id="page-(\d+)"[^>]*>([^<]*)</div>', page)
    assert marks == [("1", "p. i"), ("2", "p. 12"), ("3", "p. 13")]
    # Before the text each page starts with, and outside every text run.
    first_block = re.search(r'p\. 12</div><p class="blk" data-s="(\d+)"', page)
    assert first_block and first_block.group(1) == str(pdf_source.text.index("The harbour master"))
    runs = re.findall(r'<span data-o="\d+">([^<]*)</span>', page)
    assert "p. 12" not in "".join(html.unescape(r) for r in runs)
    assert "Download original" in shown(response)


def test_each_card_says_which_pages_its_passage_is_on(client, owner, pdf_source):
    one = annotate(pdf_source, owner, "harbour master")
    across = annotate(pdf_source, owner, "coin and\n\nin kind")
    client.force_login(owner)
    response = client.get(pdf_source.get_absolute_url())
    assert "p. 12 ·" in card_of(response, one)
    assert "pp. 12–13 ·" in card_of(response, across)


def test_a_plain_text_source_has_no_page_marks(client, owner, collection):
    source = archive_chunks(
        iter([f"Plain notes {uuid.uuid4().hex}.".encode()]), user=owner, collection=collection
    ).source
    annotate(source, owner, "Plain notes")
    client.force_login(owner)
    page = client.get(source.get_absolute_url()).content.decode()
    assert "page-mark" not in page and 'class="pages"' not in page


def test_a_stranger_learns_nothing_of_a_pdf_source(client, stranger, pdf_source):
    client.force_login(stranger)
    response = client.get(pdf_source.get_absolute_url())
    assert response.status_code == 404
    assert "p. 12" not in shown(response) and "harbour" not in shown(response)
