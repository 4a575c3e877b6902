"""A PDF passage is cited by its page: the locator, every export, the JSON-LD, references."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import TYPE_CHECKING, cast

import pytest
from django.core.management import call_command

from annotations.models import Annotation, Citation, CitationError
from archive.ingest import archive_chunks
from archive.models import Source
from tests.helpers import annotate, download, empty_everything, export_bag, members
from tests.pdfs import make_pdf, text_page

if TYPE_CHECKING:
    from annotations.models import CitationSpec

pytestmark = pytest.mark.django_db

RFC_3778 = "http://tools.ietf.org/rfc/rfc3778"


@pytest.fixture
def pdf_source(owner, collection):
    pages = [
        text_page("Minutes of the harbour board.", f"Copy {uuid.uuid4().hex}."),
        text_page("The board raised the tolls.", "Coal ships paid double and"),
        text_page("grain ships paid nothing.", "The motion carried."),
    ]
    data = make_pdf(pages, info={"Title": "Harbour board minutes"})
    return archive_chunks(iter([data]), user=owner, collection=collection, filename="m.pdf").source


@pytest.fixture
def on_page_two(pdf_source, owner):
    return annotate(pdf_source, owner, "raised the tolls", note="On page two.")


@pytest.fixture
def across_pages(pdf_source, owner):
    return annotate(pdf_source, owner, "paid double and\n\ngrain ships")


def cite(user, citing, **spec):
    citation = Citation.build_all([cast("CitationSpec", spec)], user=user, citing=citing)[0]
    citing.replace_citations([citation])
    return citation


def test_citing_a_passage_fills_the_locator_with_its_page(pdf_source, owner, on_page_two):
    note = annotate(pdf_source, owner, "The motion carried")
    start = pdf_source.text.index("raised the tolls")
    citation = cite(owner, note, source=str(pdf_source.uuid), start=start, end=start + 16)
    assert (citation.locator, citation.locator_label, citation.locator_text) == (
        "2",
        "page",
        "p. 2",
    )
    start = pdf_source.text.index("paid double")
    across = cite(owner, note, source=str(pdf_source.uuid), start=start, end=start + 30)
    assert across.locator_text == "pp. 2–3"


def test_a_locator_the_person_typed_is_kept(pdf_source, owner):
    note = annotate(pdf_source, owner, "The motion carried")
    start = pdf_source.text.index("raised the tolls")
    typed = cite(owner, note, source=str(pdf_source.uuid), start=start, end=start + 16, locator="4")
    assert typed.locator_text == "p. 4"
    whole = cite(owner, note, source=str(pdf_source.uuid))  # the whole source: no page
    assert whole.locator == ""


def test_the_csv_has_a_pages_column(client, owner, on_page_two, across_pages):
    client.force_login(owner)
    response, body = download(client, "csv")
    assert response.status_code == 200
    rows = {r["quote"]: r["pages"] for r in csv.DictReader(io.StringIO(body.decode()))}
    assert rows == {"raised the tolls": "2", "paid double and\n\ngrain ships": "2–3"}


def test_the_json_ld_names_the_page_beside_the_text_selectors(client, owner, on_page_two):
    client.force_login(owner)
    response, body = download(client, "jsonld")
    assert response.status_code == 200
    items = json.loads(body)["first"]["items"]
    (item,) = items
    kinds = [s["type"] for s in item["target"]["selector"]]
    assert kinds == ["TextPositionSelector", "TextQuoteSelector", "FragmentSelector"]
    assert item["target"]["selector"][2] == {
        "type": "FragmentSelector",
        "conformsTo": RFC_3778,
        "value": "page=2",
    }
    # The API's representation is the same one.
    api = client.get(f"/api/annotations/{on_page_two.uuid}", HTTP_ACCEPT="application/ld+json")
    assert api.json()["target"]["selector"][2]["value"] == "page=2"


def test_a_json_ld_annotation_with_a_page_selector_can_be_posted_back(
    client, owner, collection, pdf_source, on_page_two
):
    client.force_login(owner)
    doc = client.get(f"/api/annotations/{on_page_two.uuid}").json()
    doc.pop("id")
    doc["body"] = [{"type": "TextualBody", "value": "Again.", "purpose": "commenting"}]
    response = client.post("/api/annotations/", json.dumps(doc), content_type="application/ld+json")
    assert response.status_code == 201, response.content
    assert response.json()["target"]["selector"][2]["value"] == "page=2"


def test_the_markdown_report_says_the_page(client, owner, on_page_two, across_pages):
    client.force_login(owner)
    # The pandoc report escapes the full stop, which pandoc would otherwise read as markup.
    for fmt, one, two in (("markdown", "p. 2", "pp. 2–3"), ("pandoc", r"p\. 2", r"pp\. 2–3")):
        response, body = download(client, fmt)
        assert response.status_code == 200, fmt
        text = body.decode()
        assert f" · {one} · by olive" in text, fmt
        assert f" · {two} · by olive" in text, fmt


def test_the_passage_references_carry_the_page(client, owner, pdf_source):
    client.force_login(owner)
    start = pdf_source.text.index("raised the tolls")
    response = client.get(f"/sources/{pdf_source.uuid}/passages/{start}-{start + 16}/")
    assert response.status_code == 200
    references = response.context["references"]
    assert "Passage “raised the tolls” (p. 2):" in references["archived"]
    assert f"characters {start}–{start + 16}, p. 2)" in references["bibtex"]


def test_a_stranger_cannot_cite_the_pdf_or_learn_its_pages(client, stranger, pdf_source):
    own = archive_chunks(
        iter([f"Stranger notes {uuid.uuid4().hex}".encode()]), user=stranger
    ).source
    note = annotate(own, stranger, "Stranger notes")
    start = pdf_source.text.index("raised the tolls")
    with pytest.raises(CitationError) as refused:
        Citation.build_all(
            [{"source": str(pdf_source.uuid), "start": start, "end": start + 16}],
            user=stranger,
            citing=note,
        )
    assert "No source you can see" in str(refused.value.message)
    assert "p." not in str(refused.value.message)
    client.force_login(stranger)
    assert (
        client.get(f"/sources/{pdf_source.uuid}/passages/{start}-{start + 16}/").status_code == 404
    )
    response, body = download(client, "csv")
    assert response.status_code == 404 and b"tolls" not in body


def test_a_pdf_source_and_its_pages_survive_an_export_and_import(
    owner, pdf_source, on_page_two, tmp_path
):
    first = members(export_bag(tmp_path / "first.zip"))
    spans = pdf_source.divisions
    empty_everything()
    call_command("import_collection", str(tmp_path / "first.zip"))
    source = Source.objects.get(uuid=pdf_source.uuid)
    assert (source.extractor, source.divisions) == ("pdf", spans)
    imported = Annotation.objects.get(uuid=on_page_two.uuid)
    assert (imported.start, imported.end) == (on_page_two.start, on_page_two.end)
    second = members(export_bag(tmp_path / "second.zip"))
    assert first["data/annotations.csv"] == second["data/annotations.csv"]
    assert b'"value": "page=2"' in second["data/annotations.jsonld"]


def test_a_reader_who_cannot_see_the_pdf_is_not_told_the_cited_page(
    client, owner, member, collection, pdf_source
):
    # olive cites a passage of her PDF, kept out of the collection maya reads, in a note
    # maya can read: maya learns that a source is cited, not which page of it.
    note_source = archive_chunks(
        iter([f"Board notes {uuid.uuid4().hex}".encode()]), user=owner, collection=collection
    ).source
    note = annotate(note_source, owner, "Board notes")
    collection.sources.remove(pdf_source)
    start = pdf_source.text.index("raised the tolls")
    cite(owner, note, source=str(pdf_source.uuid), start=start, end=start + 16)
    typed = annotate(note_source, owner, "notes")
    cite(owner, typed, source=str(pdf_source.uuid), start=start, end=start + 16, locator="7")
    client.force_login(member)
    page = client.get(note_source.get_absolute_url()).content.decode()
    assert page.count("a source you do not have access to") == 2
    assert "p. 2" not in page and "p. 7" in page  # what olive typed is hers to show
    body = client.get(f"/api/annotations/{note.uuid}").json()["body"]
    linking = [b for b in body if b.get("purpose") == "linking"]
    assert linking and "locator" not in linking[0] and "tolls" not in json.dumps(body)
    client.force_login(owner)
    assert "p. 2" in client.get(note_source.get_absolute_url()).content.decode()
