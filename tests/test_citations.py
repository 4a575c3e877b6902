"""Notes that cite sources: the Citation model, its W3C form, the API, reading pages, backlinks."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from annotations.models import (
    Annotation,
    AnnotationRevision,
    Citation,
    CitationError,
    CitationSpec,
)
from tests.conftest import archive_text
from tests.w3c import assert_w3c_annotation

pytestmark = pytest.mark.django_db

CITED_TEXT = (
    "The harbour strike began on a Tuesday. Dockers refused to unload the grain ships, "
    "and within a week the city had run short of bread."
)
MEDIA = "application/ld+json"


@pytest.fixture
def cited(owner, collection):
    return archive_text(
        CITED_TEXT,
        owner,
        collection,
        metadata={
            "title": "The Harbour Strike",
            "creators": ["Okafor, Ada", "Lund, Per"],
            "date_published": "1998-05-02",
            "publisher": "Port Review",
            "url": "https://example.org/strike",
        },
    )


@pytest.fixture
def hidden(stranger):
    """A source only sam (its archiver) can see."""
    return archive_text(
        "SECRETTEXT the stranger keeps to himself.", stranger, metadata={"title": "SECRETTITLE"}
    )


@pytest.fixture
def note(demo_source, member):
    return Annotation.create_anchored(
        author=member, source=demo_source, start=0, end=12, note="Compare the strike."
    )


def passage(text: str, quote: str) -> tuple[int, int]:
    start = text.index(quote)
    return start, start + len(quote)


def cite(annotation, user, *specs):
    annotation.replace_citations(Citation.build_all(list(specs), user=user, citing=annotation))


# --- The model ------------------------------------------------------------------------------


def test_a_passage_citation_keeps_offsets_and_the_quote_from_the_text(note, member, cited):
    start, end = passage(CITED_TEXT, "Dockers refused")
    cite(note, member, {"source": str(cited.uuid), "start": start, "end": end, "locator": "4"})
    citation = note.citations.get()
    assert (citation.kind, citation.start, citation.end) == ("source", start, end)
    assert citation.exact == "Dockers refused"
    assert citation.as_text() == (
        f"The Harbour Strike [@{cited.citation_key}], “Dockers refused” ({start}–{end}), p. 4"
    )


def test_a_passage_link_is_enough_to_cite_a_passage(note, member, cited):
    start, end = passage(CITED_TEXT, "grain ships")
    cite(
        note, member, {"source": f"http://testserver/sources/{cited.uuid}/passages/{start}-{end}/"}
    )
    assert note.citations.get().exact == "grain ships"


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"start": 5, "end": 100_000}, "end", "outside the text"),
        ({"start": 9, "end": 3}, "end", "empty"),
        ({"start": 4, "end": 11, "exact": "not this"}, "exact", "differs"),
        ({"exact": "words the text never holds"}, "exact", "does not occur"),
        ({"start": 4}, "start", "both start and end"),
    ],
)
def test_a_passage_outside_the_text_is_refused_clearly(
    note, member, cited, spec: CitationSpec, field, words
):
    with pytest.raises(CitationError) as caught:
        Citation.build_all([{"source": str(cited.uuid), **spec}], user=member, citing=note)
    assert caught.value.field == field and words in caught.value.message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": "data:text/html,<script>alert(1)</script>"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"doi": "10.12/x"}, "doi"),
        ({"doi": "doi.org/oops"}, "doi"),
        ({"url": "https://e.org", "date_published": "May 2020"}, "date_published"),
        ({"url": "https://e.org", "date_accessed": "yesterday"}, "date_accessed"),
        ({"url": "https://e.org", "creators": 7}, "creators"),
        ({"url": "https://e.org", "reference_type": "poem"}, "reference_type"),
        ({"url": "https://e.org", "locator_label": "verse"}, "locator_label"),
        ({"url": "https://e.org", "comment": "x" * 1001}, "comment"),
        ({}, "citation"),
        ({"url": "https://e.org", "source": "x"}, "citation"),
    ],
)
def test_malformed_external_references_are_refused(note, member, spec, field):
    with pytest.raises(CitationError) as caught:
        Citation.build_all([spec], user=member, citing=note)
    assert caught.value.field == field


def test_external_references_are_normalised(note, member):
    cite(
        note,
        member,
        {
            "doi": "https://doi.org/10.1000/xyz123",
            "title": "Bread and Ports",
            "creators": "Mbeki, T.; Ruiz, Ana",
            "date_published": "2001",
            "date_accessed": "2026-11-30",
            "reference_type": "article-newspaper",
            "publisher": "Daily Tide",
        },
    )
    citation = note.citations.get()
    assert citation.doi == "10.1000/xyz123" and citation.external_href.endswith("10.1000/xyz123")
    assert citation.creators == ["Mbeki, T.", "Ruiz, Ana"]
    assert citation.csl_json()["type"] == "article-newspaper"
    assert "Bread and Ports" in str(citation)


def test_citing_what_the_author_cannot_see_is_refused_like_citing_nothing(
    note, member, hidden, stranger
):
    other = Annotation.create_anchored(
        author=stranger, source=hidden, start=0, end=5, visibility="private"
    )
    messages = []
    specs: list[CitationSpec] = [
        {"source": str(hidden.uuid)},
        {"source": "00000000-0000-4000-8000-000000000000"},
        {"annotation": str(other.uuid)},
        {"annotation": "00000000-0000-4000-8000-000000000000"},
    ]
    for spec in specs:
        with pytest.raises(CitationError) as caught:
            Citation.build_all([spec], user=member, citing=note)
        messages.append(caught.value.message)
    assert messages[0] == messages[1] and messages[2] == messages[3]


def test_an_annotation_cannot_cite_itself(note, member):
    with pytest.raises(CitationError, match="cannot cite itself"):
        Citation.build_all([{"annotation": str(note.uuid)}], user=member, citing=note)


def test_circular_citations_are_allowed_and_pages_render(
    note, member, cited, demo_source, django_assert_max_num_queries
):
    other = Annotation.create_anchored(author=member, source=cited, start=0, end=11)
    cite(note, member, {"annotation": str(other.uuid)})
    cite(other, member, {"annotation": str(note.uuid)})
    client = Client()
    client.force_login(member)
    for source in (demo_source, cited):
        page = client.get(f"/sources/{source.uuid}/").content.decode()
        assert 'class="cite-annotation"' in page
    response = client.get(f"/api/annotations/{note.uuid}")
    linking = [b for b in response.json()["body"] if b.get("purpose") == "linking"]
    assert linking[0]["source"] == f"http://testserver/api/annotations/{other.uuid}"


def test_order_is_kept(note, member, cited):
    cite(
        note,
        member,
        {"url": "https://b.example/"},
        {"source": str(cited.uuid)},
        {"url": "https://a.example/"},
    )
    assert [c.kind for c in note.citations.all()] == ["external", "source", "external"]
    assert [c.position for c in note.citations.all()] == [0, 1, 2]


def test_a_deleted_cited_annotation_leaves_a_trace(note, member, cited):
    other = Annotation.create_anchored(author=member, source=cited, start=0, end=11)
    cite(note, member, {"annotation": str(other.uuid)})
    other.delete()
    assert note.citations.get().as_text() == "a deleted annotation"


def test_a_cited_source_cannot_be_deleted(note, member, cited):
    from django.core.exceptions import ValidationError

    cite(note, member, {"source": str(cited.uuid)})
    with pytest.raises(ValidationError, match="cite this source"):
        cited.delete()


# --- The API --------------------------------------------------------------------------------


def linking_body(source, start=None, end=None, **extra):
    body = {
        "type": "SpecificResource",
        "purpose": "linking",
        "source": f"http://testserver/sources/{source.uuid}/",
        **extra,
    }
    if start is not None:
        body["selector"] = [{"type": "TextPositionSelector", "start": start, "end": end}]
    return body


def post(client, doc):
    return client.post("/api/annotations/", json.dumps(doc), content_type=MEDIA)


def new_doc(source, *bodies):
    return {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "Annotation",
        "target": {
            "source": f"http://testserver/sources/{source.uuid}/",
            "selector": [{"type": "TextPositionSelector", "start": 0, "end": 10}],
        },
        "body": [{"type": "TextualBody", "value": "See [@x].", "purpose": "commenting"}, *bodies],
    }


def test_the_api_creates_citations_and_returns_w3c_linking_bodies(
    client, member, demo_source, cited
):
    client.force_login(member)
    start, end = passage(CITED_TEXT, "grain ships")
    response = post(
        client,
        new_doc(
            demo_source,
            linking_body(cited, start, end, locator="12", locatorLabel="paragraph", comment="cf."),
            {
                "type": "SpecificResource",
                "purpose": "linking",
                "source": "https://doi.org/10.1000/abc",
                "reference": {"title": "Ports", "creators": ["Ruiz, Ana"], "datePublished": "2001"},
            },
        ),
    )
    assert response.status_code == 201, response.content
    doc = response.json()
    assert_w3c_annotation(doc)
    linking = [b for b in doc["body"] if b.get("purpose") == "linking"]
    assert linking[0]["source"] == f"http://testserver/sources/{cited.uuid}/"
    assert linking[0]["selector"] == [
        {"type": "TextPositionSelector", "start": start, "end": end},
        {"type": "TextQuoteSelector", "exact": "grain ships"},
    ]
    assert linking[0]["locator"] == "12" and linking[0]["comment"] == "cf."
    assert linking[1]["source"] == "https://doi.org/10.1000/abc"
    assert linking[1]["reference"]["title"] == "Ports"
    annotation = Annotation.objects.get(uuid=doc["id"].rsplit("/", 1)[1])
    assert [c.kind for c in annotation.citations.all()] == ["source", "external"]


def test_a_round_trip_through_get_and_put_keeps_the_citations(client, member, demo_source, cited):
    client.force_login(member)
    start, end = passage(CITED_TEXT, "Dockers")
    doc = post(client, new_doc(demo_source, linking_body(cited, start, end))).json()
    again = client.put(doc["id"], json.dumps(doc), content_type=MEDIA)
    assert again.status_code == 200
    assert again.json()["body"] == doc["body"]
    annotation = Annotation.objects.get(uuid=doc["id"].rsplit("/", 1)[1])
    assert annotation.version == 1  # nothing changed


def test_put_replaces_citations_and_keeps_the_old_ones_in_the_history(
    client, member, demo_source, cited
):
    client.force_login(member)
    doc = post(client, new_doc(demo_source, linking_body(cited))).json()
    doc["body"] = [b for b in doc["body"] if b.get("purpose") != "linking"]
    doc["body"].append(
        {"type": "SpecificResource", "purpose": "linking", "source": "https://e.org/"}
    )
    response = client.put(doc["id"], json.dumps(doc), content_type=MEDIA)
    assert response.status_code == 200
    annotation = Annotation.objects.get(uuid=doc["id"].rsplit("/", 1)[1])
    assert annotation.version == 2
    assert [c.url for c in annotation.citations.all()] == ["https://e.org/"]
    revision = AnnotationRevision.objects.get(annotation=annotation)
    assert revision.citations == [
        {
            "kind": "source",
            "source": str(cited.uuid),
            "locator": "",
            "locator_label": "page",
            "comment": "",
        }
    ]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"source": "javascript:alert(1)"}, "citations[0].url", "http"),
        ({"source": "https://doi.org/banana"}, "citations[0].doi", "DOI"),
        (
            {"selector": [{"type": "TextPositionSelector", "start": 0, "end": 10**6}]},
            "citations[0].end",
            "outside",
        ),
        (
            {"selector": [{"type": "TextPositionSelector", "start": "0", "end": 3}]},
            "body[citation 1].selector",
            "whole number",
        ),
        (
            {"selector": [{"type": "CssSelector", "value": "p"}]},
            "body[citation 1].selector",
            "TextPositionSelector",
        ),
        ({"source": 7}, "body[citation 1].source", "IRI"),
        ({"purpose": "commenting"}, "body[citation 1]", "linking"),
        ({"locator": ["p", 4]}, "body[citation 1].locator", "string"),
        (
            {"source": "http://testserver/sources/00000000-0000-4000-8000-000000000000/"},
            "citations[0].source",
            "No source you can see",
        ),
    ],
)
def test_bad_citations_get_a_json_400_naming_the_field(
    client, member, demo_source, cited, body, field, words
):
    client.force_login(member)
    response = post(client, new_doc(demo_source, {**linking_body(cited), **body}))
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert words in response.json()["error"]
    assert not Annotation.objects.exists()


def test_citing_a_source_the_author_cannot_see_is_refused_by_the_api(
    client, member, demo_source, hidden
):
    client.force_login(member)
    response = post(client, new_doc(demo_source, linking_body(hidden, 0, 5)))
    assert response.status_code == 400
    assert "No source you can see" in response.json()["error"]
    assert "SECRET" not in response.content.decode()


def test_preview_flags_unknown_keys(client, member, cited):
    client.force_login(member)
    response = client.post(
        "/api/preview/",
        json.dumps({"note": f"[@{cited.citation_key}; @nobody2020]"}),
        content_type="application/json",
    )
    data = response.json()
    assert data["unresolved"] == ["nobody2020"]
    assert f'href="/sources/{cited.uuid}/"' in data["html"]
    assert "Okafor and Lund 1998" in data["html"]


def test_source_search_finds_visible_sources_by_title_creator_or_key(client, member, cited, hidden):
    client.force_login(member)
    for query in ("harbour", "okafor", cited.citation_key[:6], str(cited.uuid)):
        found = client.get("/api/sources/", {"q": query}).json()["sources"]
        assert [s["uuid"] for s in found] == [str(cited.uuid)], query
    assert client.get("/api/sources/", {"q": "SECRET"}).json()["sources"] == []
    assert client.put("/api/sources/").status_code == 405
    # POST captures a page by its URL (tests/test_captures.py), and needs one.
    assert client.post("/api/sources/").status_code == 400


# --- What readers see -----------------------------------------------------------------------


def test_a_citation_of_a_hidden_source_shows_only_that_it_is_hidden(
    client, note, member, hidden, stranger, collection
):
    # sam (who archived it) cites his source in a public note; maya may not see the source.
    collection.is_public = True
    collection.save()
    from archive.models import Membership

    Membership.objects.create(collection=collection, user=stranger, role="annotator")
    public = Annotation.create_anchored(
        author=stranger,
        source=note.source,
        start=20,
        end=30,
        note="Mine.",
        visibility="public",
    )
    cite(public, stranger, {"source": str(hidden.uuid), "start": 0, "end": 10, "locator": "2"})
    client.force_login(member)
    page = client.get(f"/sources/{note.source.uuid}/").content.decode()
    assert "a source you do not have access to" in page
    assert "SECRET" not in page and str(hidden.uuid) not in page
    doc = client.get(f"/api/annotations/{public.uuid}").json()
    linking = [b for b in doc["body"] if b.get("purpose") == "linking"][0]
    assert "selector" not in linking and "SECRET" not in json.dumps(doc)
    assert_w3c_annotation(doc)
    client.force_login(stranger)
    page = client.get(f"/sources/{note.source.uuid}/").content.decode()
    assert "SECRETTITLE" in page and "SECRETTEXT" in page


def test_cited_by_lists_visible_citing_annotations_with_quote_and_link(
    client, note, member, owner, cited, stranger, collection
):
    start, end = passage(CITED_TEXT, "grain ships")
    cite(note, member, {"source": str(cited.uuid), "start": start, "end": end})
    private = Annotation.create_anchored(
        author=member,
        source=note.source,
        start=40,
        end=50,
        visibility="private",
    )
    cite(private, member, {"source": str(cited.uuid)})
    client.force_login(owner)
    page = client.get(f"/sources/{cited.uuid}/").content.decode()
    assert "Cited by" in page
    assert f'href="/sources/{note.source.uuid}/#a-{note.uuid}"' in page
    assert note.exact in page
    assert f'href="/sources/{cited.uuid}/passages/{start}-{end}/"' in page
    assert f"#a-{private.uuid}" not in page  # maya's private note stays hers
    client.force_login(member)
    assert f"#a-{private.uuid}" in client.get(f"/sources/{cited.uuid}/").content.decode()


def test_the_passage_page_lists_only_overlapping_citations(client, note, member, cited):
    s1, e1 = passage(CITED_TEXT, "harbour strike")
    s2, e2 = passage(CITED_TEXT, "grain ships")
    other = Annotation.create_anchored(author=member, source=note.source, start=50, end=60)
    cite(note, member, {"source": str(cited.uuid), "start": s1, "end": e1})
    cite(other, member, {"source": str(cited.uuid), "start": s2, "end": e2})
    client.force_login(member)
    page = client.get(f"/sources/{cited.uuid}/passages/{s2 - 3}-{e2 - 3}/").content.decode()
    assert "Citing this passage" in page
    assert f"#a-{other.uuid}" in page and f"#a-{note.uuid}" not in page


def test_a_known_key_in_a_note_links_to_the_source_and_an_unknown_one_is_flagged(
    client, member, demo_source, cited, hidden
):
    Annotation.create_anchored(
        author=member,
        source=demo_source,
        start=0,
        end=9,
        note=f"As [@{cited.citation_key}, p. 2] but not [@{hidden.citation_key}] or [@ghost].",
    )
    client.force_login(member)
    page = client.get(f"/sources/{demo_source.uuid}/").content.decode()
    assert f'<a class="cite" href="/sources/{cited.uuid}/"' in page
    assert page.count('class="cite-unresolved"') == 2
    assert "SECRETTITLE" not in page


def test_every_highlight_carries_what_its_copy_link_button_is_made_from(
    client, note, member, demo_source
):
    """reader.js makes each entry's Copy link button (tests/test_browser_cite.py clicks it)
    from the entry's offsets and the page's passage link."""
    client.force_login(member)
    page = client.get(f"/sources/{demo_source.uuid}/").content.decode()
    assert f'data-passages="/sources/{demo_source.uuid}/passages/0-1/"' in page
    assert 'data-start="0" data-end="12"' in page


def make_citations(count, annotations, user, cited):
    for i, annotation in enumerate(annotations[:count]):
        cite(
            annotation,
            user,
            {"source": str(cited.uuid), "start": i, "end": i + 5, "locator": str(i)},
            {"url": f"https://e.org/{i}", "title": f"Ref {i}"},
        )


@pytest.mark.parametrize("page_of", ["citing", "cited"])
def test_query_count_does_not_grow_with_citations_or_backlinks(
    page_of, member, demo_source, cited, django_assert_max_num_queries
):
    annotations = [
        Annotation.create_anchored(
            author=member,
            source=demo_source,
            start=i,
            end=i + 3,
            note=f"See [@{cited.citation_key}, p. {i}] and [@nobody{i}].",
        )
        for i in range(20)
    ]
    client = Client()
    client.force_login(member)
    url = f"/sources/{(demo_source if page_of == 'citing' else cited).uuid}/"
    make_citations(1, annotations, member, cited)
    with django_assert_max_num_queries(30) as one:
        page = client.get(url).content.decode()
    assert page.count('class="cite-source"' if page_of == "citing" else "#a-") >= 1
    make_citations(20, annotations, member, cited)
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = client.get(url).content.decode()
    if page_of == "citing":
        assert page.count('class="cite-source"') == 20
        assert page.count('class="cite-external"') == 20
    else:
        assert page.count('<q class="cite-quote">') == 20  # twenty backlinks


def test_note_keys_are_links_on_every_page_that_lists_notes(
    client, demo_source, member, cited, hidden, collection
):
    keyed = Annotation.create_anchored(
        author=member,
        source=demo_source,
        start=0,
        end=12,
        note=f"Compare [@{cited.citation_key}, p. 2] and [@{hidden.citation_key}].",
        tags=["strikes"],
    )
    client.force_login(member)
    pages = {
        "tag": "/tags/strikes/",
        "collection": f"{collection.get_absolute_url()}?tag=strikes",
        "mine": "/me/annotations/",
        "history": f"/annotations/{keyed.uuid}/history/",
    }
    for name, url in pages.items():
        html = client.get(url).content.decode()
        assert f'href="{cited.get_absolute_url()}"' in html, name
        assert "Okafor and Lund 1998" in html, name
        # A source the reader may not see stays an unresolved key, its title unrevealed.
        assert 'class="cite-unresolved"' in html and "SECRETTITLE" not in html, name


# --- What creating costs ---------------------------------------------------------------------


def test_create_answers_exactly_what_reading_it_back_gives(
    client, member, owner, demo_source, cited
):
    """The API answers a POST from what it wrote, without reading it back: the same document
    and ETag as a GET right after, tags in the order sent with existing tags' spelling."""
    other = Annotation.create_anchored(
        author=owner, source=cited, start=0, end=11, tags=["Strikes"], visibility="collection"
    )
    client.force_login(member)
    start, end = passage(CITED_TEXT, "grain ships")
    doc = new_doc(
        demo_source,
        linking_body(cited, start, end, locator="12", locatorLabel="paragraph", comment="cf."),
        linking_body(cited),
        {
            "type": "SpecificResource",
            "purpose": "linking",
            "source": f"http://testserver/api/annotations/{other.uuid}",
        },
        {
            "type": "SpecificResource",
            "purpose": "linking",
            "source": "https://doi.org/10.1000/abc",
            "reference": {
                "title": "Ports",
                "creators": ["Ruiz, Ana"],
                "datePublished": "2001",
                "dateAccessed": "2024-02-03",
            },
        },
    )
    doc["body"] += [
        {"type": "TextualBody", "value": name, "purpose": "tagging"}
        for name in ("zeta", "STRIKES", "alpha")
    ]
    created = post(client, doc)
    assert created.status_code == 201, created.content
    read = client.get(created["Location"])
    assert created["ETag"] == read["ETag"]
    tags = [b["value"] for b in created.json()["body"] if b["purpose"] == "tagging"]
    assert tags == ["zeta", "Strikes", "alpha"]
    # Read back in the same order: tagging order, on every engine.
    assert created.json() == read.json()
    assert len([b for b in created.json()["body"] if b["purpose"] == "linking"]) == 4


@pytest.mark.parametrize(
    ("citing", "most"),
    [
        # Session, user, source, collection; then in one transaction (here a savepoint, 2):
        # the annotation, its tags (find them, attach them) and its search entry. 22 before.
        (False, 10),
        # ...and the cited sources, the cited annotations and the citations (one INSERT).
        (True, 13),
    ],
)
def test_create_costs_a_fixed_number_of_queries(
    client, member, owner, demo_source, cited, citing, most, django_assert_max_num_queries
):
    other = Annotation.create_anchored(author=owner, source=cited, start=0, end=11)
    Annotation.create_anchored(author=owner, source=cited, start=0, end=5, tags=["a", "b", "c"])
    client.force_login(member)
    links = (
        [
            linking_body(cited, 0, 11),
            linking_body(cited),
            {
                "type": "SpecificResource",
                "purpose": "linking",
                "source": f"http://testserver/api/annotations/{other.uuid}",
            },
            {"type": "SpecificResource", "purpose": "linking", "source": "https://e.org/"},
        ]
        if citing
        else []
    )
    doc = new_doc(demo_source, *links)
    doc["body"] += [{"type": "TextualBody", "value": t, "purpose": "tagging"} for t in "abc"]
    with django_assert_max_num_queries(most):
        response = post(client, doc)
    assert response.status_code == 201, response.content
    annotation = Annotation.objects.get(uuid=response.json()["id"].rsplit("/", 1)[1])
    assert sorted(annotation.tags.names()) == ["a", "b", "c"]
    assert annotation.citations.count() == (4 if citing else 0)
    assert annotation.search_entry.tags == "a b c"
