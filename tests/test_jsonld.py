"""Scholion's JSON-LD as a JSON-LD processor reads it: PyLD, in JSON-LD 1.0 and 1.1 modes, expands
the API's annotations, collections and pages and the export without error, and the expanded graph
holds what a researcher cares about (the passage, the note, the tags, what a note cites)."""

from __future__ import annotations

import json

import pytest
from pyld import jsonld as pyld

from annotations.models import Annotation, Citation
from annotations.w3c import ANNO_CONTEXT, REFERENCE_TYPE_CLASSES
from tests.helpers import cite_everything, download
from tests.jsonld import MODES, expand, one, relative_iris, values

pytestmark = pytest.mark.django_db
API = "/api/annotations/"
OA = "http://www.w3.org/ns/oa#"
AS = "http://www.w3.org/ns/activitystreams#"
SCHEMA = "http://schema.org/"
RDF_VALUE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value"


def bodies_by_purpose(node: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for body in node.get(OA + "hasBody", []):
        for purpose in values(body, OA + "hasPurpose"):
            found.setdefault(purpose.removeprefix(OA), []).append(body)
    return found


@pytest.fixture
def cited_note(owner, annotated):
    """olive's annotation with a note and tags, citing a passage of beta, maya's annotation,
    a journal article by DOI and a source outside the collection."""
    citing, _ = cite_everything(owner, annotated)
    return Annotation.objects.with_related(owner).get(pk=citing.pk)


@pytest.mark.parametrize("mode", MODES)
def test_an_annotation_with_note_tags_and_citations_expands_to_what_it_says(
    client, owner, annotated, cited_note, mode
):
    client.force_login(owner)
    doc = client.get(f"{API}{cited_note.uuid}").json()
    [node] = expand(doc, mode)
    assert relative_iris(node) == []
    assert node["@type"] == [OA + "Annotation"]
    assert node["@id"] == f"http://testserver{API}{cited_note.uuid}"

    alpha = annotated["alpha"]
    target = one(node, OA + "hasTarget")
    assert values(target, OA + "hasSource") == [f"http://testserver/sources/{alpha.uuid}/"]
    selectors = {s["@type"][0].removeprefix(OA): s for s in target[OA + "hasSelector"]}
    position = selectors["TextPositionSelector"]
    assert (values(position, OA + "start"), values(position, OA + "end")) == (
        [cited_note.start],
        [cited_note.end],
    )
    assert values(selectors["TextQuoteSelector"], OA + "exact") == ["The first passage"]

    bodies = bodies_by_purpose(node)
    [note] = bodies["commenting"]
    assert values(note, RDF_VALUE) == ['Line one\nLine two, with "quotes" and a comma']
    assert sorted(v for b in bodies["tagging"] for v in values(b, RDF_VALUE)) == [
        "claims",
        "dates",
    ]
    linked = {values(b, OA + "hasSource")[0]: b for b in bodies["linking"]}
    beta = annotated["beta"]
    passage = linked[f"http://testserver/sources/{beta.uuid}/"]
    quoted = [values(s, OA + "exact") for s in passage[OA + "hasSelector"]]
    assert ["the harbour froze"] in quoted
    assert values(passage, "urn:x-scholion:locator") == ["4"]
    maya = annotated["a"]["maya-collection"]
    assert values(linked[f"http://testserver{API}{maya.uuid}"], "urn:x-scholion:comment") == [
        "same winter"
    ]

    # The journal article: what a reference manager would want from it.
    work = one(linked["https://doi.org/10.1234/abc.def"], SCHEMA + "citation")
    assert work["@type"] == [SCHEMA + "ScholarlyArticle"]
    assert values(work, SCHEMA + "name") == ["Winters of the North"]
    assert values(work, SCHEMA + "author") == ["Jansen, Pieter"]
    assert values(work, SCHEMA + "publisher") == ["Journal of Cold"]
    assert values(work, SCHEMA + "datePublished") == ["1999"]
    assert values(work, "http://purl.org/ontology/bibo/doi") == ["10.1234/abc.def"]


@pytest.mark.parametrize("mode", MODES)
def test_creators_keep_their_order_and_a_url_is_an_iri(member, annotated, mode):
    from annotations.w3c import annotation_to_jsonld

    note = annotated["a"]["maya-collection"]
    note.replace_citations(
        Citation.build_all(
            [
                {
                    "url": "https://news.example/dockers",
                    "title": "Dockers out",
                    "creators": ["Zed, Ann", "Abel, Bo", "Moss, Cy"],
                    "reference_type": "article-newspaper",
                    "date_accessed": "2024-02-03",
                }
            ],
            user=member,
            citing=note,
        )
    )
    doc = annotation_to_jsonld(Annotation.objects.with_related().get(pk=note.pk), "https://s.ex")
    [node] = expand(doc, mode)
    work = one(bodies_by_purpose(node)["linking"][0], SCHEMA + "citation")
    assert values(work, SCHEMA + "author") == ["Zed, Ann", "Abel, Bo", "Moss, Cy"]
    assert work[SCHEMA + "url"] == [{"@id": "https://news.example/dockers"}]
    assert work["@type"] == [SCHEMA + "NewsArticle"]
    assert work["urn:x-scholion:dateAccessed"] == [
        {"@type": "http://www.w3.org/2001/XMLSchema#date", "@value": "2024-02-03"}
    ]


def test_every_reference_type_is_a_schema_org_class():
    """A reference type added to the model without a class here would expand to a relative
    IRI, which linked-data tools drop."""
    assert set(Citation.ReferenceType.values) == set(REFERENCE_TYPE_CLASSES)
    assert all(iri.startswith(SCHEMA) for iri in REFERENCE_TYPE_CLASSES.values())


def test_json_ld_1_0_refuses_the_old_json_typed_reference_term():
    """The oracle can fail: the term as Scholion once defined it is an error in JSON-LD 1.0."""
    old = {
        "@context": [
            ANNO_CONTEXT,
            {"reference": {"@id": "urn:x-scholion:reference", "@type": "@json"}},
        ],
        "type": "SpecificResource",
        "source": "https://doi.org/10.1234/abc.def",
        "reference": {"type": "book", "title": "Ports"},
    }
    with pytest.raises(pyld.JsonLdError) as refused:
        expand(old, "json-ld-1.0")
    assert "@json" in str(refused.value)
    assert expand(old, "json-ld-1.1")


@pytest.mark.parametrize("mode", MODES)
def test_the_api_collection_and_its_pages_expand(client, owner, annotated, cited_note, mode):
    client.force_login(owner)
    collection = client.get(API).json()
    [node] = expand(collection, mode)
    assert relative_iris(node) == []
    # The container is both (protocol 4.1), with the LDP context to say so.
    assert set(node["@type"]) == {
        AS + "OrderedCollection",
        "http://www.w3.org/ns/ldp#BasicContainer",
    }
    assert values(node, AS + "totalItems") == [4]
    first = one(node, AS + "first")
    assert first["@type"] == [AS + "OrderedCollectionPage"]
    assert len(values(first, AS + "items")) == 4
    assert f"http://testserver{API}{cited_note.uuid}" in [
        item["@id"] for item in first[AS + "items"][0]["@list"]
    ]
    page = client.get(API, {"page": "first"}).json()
    [page_node] = expand(page, mode)
    assert relative_iris(page_node) == []
    assert one(page_node, AS + "partOf")["@id"] == "http://testserver/api/annotations/"


@pytest.mark.parametrize("mode", MODES)
def test_the_export_expands_with_every_annotation(client, owner, annotated, cited_note, mode):
    client.force_login(owner)
    response, body = download(client, "jsonld")
    assert response.status_code == 200
    [node] = expand(json.loads(body), mode)
    assert relative_iris(node) == []
    first = one(node, AS + "first")
    items = first[AS + "items"][0]["@list"]
    assert len(items) == values(node, AS + "totalItems")[0] == 4
    citing = next(i for i in items if i["@id"].endswith(str(cited_note.uuid)))
    titles = [
        values(work, SCHEMA + "name")
        for body in bodies_by_purpose(citing)["linking"]
        for work in body.get(SCHEMA + "citation", [])
    ]
    assert ["Winters of the North"] in titles


@pytest.mark.parametrize("mode", MODES)
def test_the_minimal_and_iri_only_containers_expand(client, owner, annotated, mode):
    client.force_login(owner)
    prefer = (
        "return=representation; include="
        '"http://www.w3.org/ns/ldp#PreferMinimalContainer http://www.w3.org/ns/oa#PreferContainedIRIs"'
    )
    [minimal] = expand(client.get(API, headers={"Prefer": prefer}).json(), mode)
    assert minimal[AS + "first"] == [
        {"@id": "http://testserver/api/annotations/?iris=1&page=first"}
    ]
    [iris] = expand(client.get(API, {"iris": 1}).json(), mode)
    items = one(iris, AS + "first")[AS + "items"][0]["@list"]
    assert len(items) == 4 and all(set(item) == {"@id"} for item in items)
