"""Formatted references (Chicago author-date, APA), BibTeX and CSL-JSON, naming the archived copy."""

from __future__ import annotations

import json

import bibtexparser
import pytest

from annotations.models import Annotation, Citation, CitationSpec
from archive.cite import Passage, bibtex, csl_json, references
from tests.conftest import archive_text
from tests.helpers import assert_csl_json

pytestmark = pytest.mark.django_db

PERMALINK = "https://scholion.example/sources/x/"


def parse_bibtex(text: str) -> dict[str, str]:
    """The one entry in a BibTeX string, as bibtexparser reads it (ENTRYTYPE and ID included)."""
    if hasattr(bibtexparser, "parse_string"):  # bibtexparser's 2.x API
        library = bibtexparser.parse_string(text)
        assert not library.failed_blocks and len(library.entries) == 1, text
        entry = library.entries[0]
        fields = {f.key: f.value for f in entry.fields}
        return {"ENTRYTYPE": entry.entry_type, "ID": entry.key, **fields}
    from bibtexparser.bparser import BibTexParser

    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    database = bibtexparser.loads(text, parser=parser)
    assert len(database.entries) == 1, text
    return database.entries[0]


@pytest.fixture
def sources(owner, collection):
    common = {"creators": ["Okafor, Ada", "Per Lund"], "date_published": "1998-05-02"}
    return {
        "webpage": archive_text(
            "A web page about the strike.",
            owner,
            collection,
            metadata={
                "title": "Strike & {Bread}: 100% of $5_#",
                "url": "https://example.org/strike",
                "publisher": "Port Review",
                **common,
            },
        ),
        "book": archive_text(
            "A book.",
            owner,
            collection,
            metadata={"title": "Harbours", "isbn": "9780306406157", "publisher": "Tide", **common},
        ),
        "article-journal": archive_text(
            "An article.",
            owner,
            collection,
            metadata={
                "title": "Grain",
                "doi": "10.1000/grain.1",
                "publisher": "J. Ports",
                **common,
            },
        ),
        "document": archive_text("A bare note.", owner, collection, metadata={"title": "Note"}),
    }


@pytest.mark.parametrize(
    ("kind", "entry_type"),
    [("webpage", "online"), ("book", "book"), ("article-journal", "article"), ("document", "misc")],
)
def test_bibtex_parses_back_with_every_field(sources, kind, entry_type):
    source = sources[kind]
    entry = parse_bibtex(bibtex(source, PERMALINK))
    assert entry["ENTRYTYPE"] == entry_type and entry["ID"] == source.citation_key
    assert f"SHA-256 {source.sha256}" in entry["note"] and PERMALINK in entry["note"]
    if kind != "document":
        assert entry["urldate"] == source.archived_at.date().isoformat()
        assert entry["author"] == "Okafor, Ada and Lund, Per"
        assert entry["date"] == "1998-05-02" and entry["year"] == "1998"


def test_bibtex_escapes_special_characters(sources):
    entry = parse_bibtex(bibtex(sources["webpage"], PERMALINK))
    assert entry["title"] == r"Strike \& \{Bread\}: 100\% of \$5\_\#"


@pytest.mark.parametrize("kind", ["webpage", "book", "article-journal", "document"])
def test_csl_json_is_valid_against_the_schema_and_typed(sources, kind):
    item = csl_json(sources[kind], PERMALINK)
    assert_csl_json([item])
    assert item["type"] == kind
    assert sources[kind].sha256 in item["note"]


def test_external_references_give_valid_csl_json(demo_source, member):
    note = Annotation.create_anchored(author=member, source=demo_source, start=0, end=5)
    specs: list[CitationSpec] = [
        {"url": "https://news.example/a", "title": "Dockers out", "reference_type": t}
        for t in Citation.ReferenceType.values
    ]
    specs.append(
        {
            "doi": "10.1000/xyz",
            "creators": ["Ruiz, Ana", "UNESCO"],
            "date_published": "2001-02",
            "date_accessed": "2026-11-30",
            "publisher": "Tide",
            "comment": "on bread",
        }
    )
    note.replace_citations(Citation.build_all(specs, user=member, citing=note))
    items = [c.csl_json() for c in note.citations.all()]
    assert_csl_json(items)
    assert items[-1]["author"] == [{"family": "Ruiz", "given": "Ana"}, {"literal": "UNESCO"}]
    assert items[-1]["accessed"] == {"date-parts": [[2026, 11, 30]]}


def test_chicago_and_apa_name_the_work_and_the_archived_copy(sources):
    refs = references(sources["webpage"], PERMALINK)
    assert refs["chicago"].startswith("Okafor, Ada, and Per Lund. 1998.")
    assert "Strike &amp; {Bread}" in refs["chicago"]
    assert refs["apa"].startswith("Okafor, A., &amp; Lund, P. (1998, May 2).")
    assert "https://example.org/strike" in refs["apa"]
    assert f"SHA-256 {sources['webpage'].sha256}" in refs["archived"]
    assert PERMALINK in refs["archived"]
    assert json.loads(refs["csl_json"])[0]["title"].startswith("Strike")


def test_formatted_references_carry_no_markup_from_metadata(owner, collection):
    source = archive_text(
        "x",
        owner,
        collection,
        metadata={"title": '<script>alert(1)</script><img src=x onerror="y">'},
    )
    refs = references(source, PERMALINK)
    for style in ("chicago", "apa"):
        assert "<script" not in refs[style] and "<img" not in refs[style]


def test_the_source_page_offers_every_format(client, owner, sources):
    client.force_login(owner)
    source = sources["book"]
    page = client.get(f"/sources/{source.uuid}/").content.decode()
    assert "Cite this source" in page
    assert "Chicago (author-date)" in page and "APA (7th edition)" in page
    assert f"@book{{{source.citation_key}," in page
    assert "&quot;ISBN&quot;: &quot;9780306406157&quot;" in page
    assert source.sha256 in page


def test_the_passage_page_cites_the_passage(client, owner, sources):
    client.force_login(owner)
    source = sources["webpage"]
    page = client.get(f"/sources/{source.uuid}/passages/2-10/").content.decode()
    assert "Cite this passage" in page
    assert f"http://testserver/sources/{source.uuid}/passages/2-10/" in page
    assert "“web page”" in page


def test_a_passage_is_named_in_bibtex_and_csl_json(sources):
    source = sources["webpage"]
    where = Passage(2, 10, "web page", PERMALINK + "passages/2-10/")
    assert "passages/2-10/" in parse_bibtex(bibtex(source, PERMALINK, where))["note"]
    assert_csl_json([csl_json(source, PERMALINK, where)])


def test_plain_reference_without_a_date_reads_n_d_once(owner, collection):
    from archive.cite import plain_reference

    source = archive_text("Undated leaflet\n\nText.", owner, collection)
    reference = plain_reference(source, "https://scholion.example/s/")
    assert reference.startswith("n.d. “Undated leaflet.”") and "n.d.." not in reference


@pytest.mark.parametrize(
    ("source_type", "entry_type", "subtype"),
    [
        ("article-newspaper", "article", "newspaper"),
        ("webpage", "online", None),
        ("report", "report", None),
        ("article-journal", "article", None),
        ("book", "book", None),
        ("chapter", "incollection", None),
        ("thesis", "thesis", None),
        ("interview", "misc", None),
        ("dataset", "dataset", None),
        ("document", "misc", None),
    ],
)
def test_each_type_is_its_csl_type_and_biblatex_entry_type(
    owner, collection, source_type, entry_type, subtype
):
    source = archive_text(
        "x", owner, collection, metadata={"title": "T", "source_type": source_type}
    )
    assert csl_json(source, PERMALINK)["type"] == source_type
    entry = parse_bibtex(bibtex(source, PERMALINK))
    assert entry["ENTRYTYPE"] == entry_type
    assert entry.get("entrysubtype") == subtype


def test_a_news_article_with_a_doi_stays_a_news_article(owner, collection):
    source = archive_text(
        "x",
        owner,
        collection,
        metadata={
            "title": "Dockers Walk Out",
            "source_type": "article-newspaper",
            "doi": "10.1000/news.1",
            "container_title": "The Harbour Times",
        },
    )
    item = csl_json(source, PERMALINK)
    assert (item["type"], item["container-title"]) == ("article-newspaper", "The Harbour Times")
    assert "ahead of print" not in references(source, PERMALINK)["chicago"]


def test_bibtex_writes_the_url_and_doi_as_they_are(owner, collection):
    source = archive_text(
        "x",
        owner,
        collection,
        metadata={
            "title": "Grain",
            "doi": "10.1234/jaeh.1998.042_3",
            "url": "https://example.org/a?x=1&y=2_z",
        },
    )
    text = bibtex(source, PERMALINK)
    assert "  doi = {10.1234/jaeh.1998.042_3},\n" in text
    assert "  url = {https://example.org/a?x=1&y=2_z},\n" in text


def test_an_undated_source_gives_biblatex_no_year_to_take_from_the_archive_date(owner, collection):
    source = archive_text("Undated leaflet\n\nText.", owner, collection)
    entry = parse_bibtex(bibtex(source, PERMALINK))
    assert not {"date", "year", "urldate"} & set(entry)
    assert f"archived {source.archived_at:%Y-%m-%d}" in entry["note"]
    # CSL-JSON has no such fallback: the access date stays.
    assert "accessed" in csl_json(source, PERMALINK) and "issued" not in csl_json(source, PERMALINK)


def test_a_chapter_names_its_book_editors_and_pages(owner, collection):
    source = archive_text(
        "x",
        owner,
        collection,
        metadata={
            "title": "The Strike",
            "source_type": "chapter",
            "creators": ["Okafor, Ada"],
            "editors": ["Ruiz, Ana", "UNESCO"],
            "container_title": "Ports of Europe",
            "pages": "10–20",
            "publisher": "Tide",
            "date_published": "1998",
        },
    )
    entry = parse_bibtex(bibtex(source, PERMALINK))
    assert (entry["booktitle"], entry["editor"], entry["pages"]) == (
        "Ports of Europe",
        "Ruiz, Ana and {UNESCO}",
        "10–20",
    )
    chicago = references(source, PERMALINK)["chicago"]
    assert chicago.startswith(
        "Okafor, Ada. 1998. “The Strike.” In <i>Ports of Europe</i>, edited by Ana Ruiz and UNESCO"
    )


def test_the_plain_reference_gives_where_it_was_published_and_no_doubled_punctuation(
    owner, collection
):
    from archive.cite import plain_reference

    source = archive_text(
        "x",
        owner,
        collection,
        metadata={
            "title": "Why Strike?",
            "source_type": "article-journal",
            "creators": ["Okafor, Ada"],
            "date_published": "1998",
            "container_title": "Journal of Ports",
            "volume": "12",
            "issue": "3",
            "pages": "45–67",
        },
    )
    reference = plain_reference(source, PERMALINK)
    assert reference.startswith("Okafor, Ada. 1998. “Why Strike?” Journal of Ports 12 (3): 45–67.")
