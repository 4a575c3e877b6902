"""The W3C representation itself: every `must` assertion of the WG's test suite passes for
annotations, pages and collections as Scholion writes them, and the validator is not vacuous."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from annotations.models import Annotation
from annotations.w3c import (
    ANNO_CONTEXT,
    ListPage,
    annotation_collection,
    annotation_to_jsonld,
    collection_page,
    parse_annotation,
    values_of,
)
from tests.w3c import (
    assert_w3c_annotation,
    assert_w3c_collection,
    assert_w3c_page,
    failures,
    must_assertions,
)

pytestmark = pytest.mark.django_db
BASE = "https://scholion.example"
COLLECTION_ID = f"{BASE}/api/annotations/?source=x"


def page_url(n: int) -> str:
    return f"{COLLECTION_ID}&page={n}"


def pages(annotations, size: int) -> list[ListPage]:
    """The pages of ``annotations`` (loaded ``with_related``), ``size`` to a page, numbered."""
    items = [values_of(a) for a in annotations]
    count = max(1, -(-len(items) // size))
    return [
        ListPage(
            items=items[(n - 1) * size : n * size],
            id=page_url(n),
            start_index=(n - 1) * size,
            total=len(items),
            first=page_url(1),
            last=page_url(count),
            next=page_url(n + 1) if n < count else None,
            prev=page_url(n - 1) if n > 1 else None,
        )
        for n in range(1, count + 1)
    ]


def make(source, author, start=0, end=2, note="", tags=()) -> Annotation:
    annotation = Annotation.create_anchored(
        author=author, source=source, start=start, end=end, note=note, tags=list(tags)
    )
    return Annotation.objects.with_related().get(pk=annotation.pk)


def test_the_suite_is_loaded_with_every_must_assertion():
    # Pinned to the suite's commit in tests/vendor/w3c-annotation-tests/SOURCE.
    assert len(must_assertions("annotation")) == 54
    assert len(must_assertions("collection")) == 10
    assert len(must_assertions("page")) == 15
    kinds = {
        a["assertionType"]
        for kind in ("annotation", "collection", "page")
        for a in must_assertions(kind)
    }
    assert kinds == {"must"}


@pytest.mark.parametrize(
    ("note", "tags", "motivation"),
    [
        ("", (), "highlighting"),
        ("A *Markdown* note with an emoji \U0001f642 and עברית.", (), "commenting"),
        ("", ("dates", "claims"), "tagging"),
        ("Both.", ("dates",), "commenting"),
    ],
)
def test_annotations_with_and_without_note_and_tags_pass_every_must_assertion(
    demo_source, member, note, tags, motivation
):
    member.first_name, member.last_name = "Maya", "Ortiz"
    member.save()
    doc = annotation_to_jsonld(make(demo_source, member, 3, 11, note, tags), BASE)
    assert_w3c_annotation(doc)
    assert doc["motivation"] == motivation
    assert doc["creator"] == {"type": "Person", "nickname": "maya", "name": "Maya Ortiz"}
    assert doc["target"]["source"] == f"{BASE}/sources/{demo_source.uuid}/"
    assert doc["id"].startswith(f"{BASE}/api/annotations/")
    assert doc["target"]["selector"] == [
        {"type": "TextPositionSelector", "start": 3, "end": 11},
        {
            "type": "TextQuoteSelector",
            "exact": "March 31",
            "prefix": demo_source.text[0:3],
            "suffix": demo_source.text[11:43],
        },
    ]
    bodies = doc.get("body", [])
    assert [b["value"] for b in bodies if b["purpose"] == "commenting"] == ([note] if note else [])
    assert sorted(b["value"] for b in bodies if b["purpose"] == "tagging") == sorted(tags)
    assert all(b["format"] == "text/markdown" for b in bodies if b["purpose"] == "commenting")
    assert ("body" in doc) == bool(note or tags)


def test_visibility_travels_as_a_term_defined_in_the_context(demo_source, member):
    annotation = make(demo_source, member)
    annotation.visibility = "private"
    doc = annotation_to_jsonld(annotation, BASE)
    assert doc["@context"][0] == ANNO_CONTEXT
    assert "visibility" in doc["@context"][1]
    assert doc["visibility"] == "private"
    assert_w3c_annotation(doc)


def test_times_are_utc_with_z(demo_source, member):
    doc = annotation_to_jsonld(make(demo_source, member), BASE)
    assert doc["created"].endswith("Z") and doc["modified"].endswith("Z")
    assert len(doc["created"]) == len("2026-11-25T02:03:04Z")


def test_a_document_parses_back_to_what_was_written(demo_source, member):
    doc = annotation_to_jsonld(make(demo_source, member, 3, 11, "note", ["a", "b"]), BASE)
    parsed = parse_annotation(doc)
    assert (parsed["start"], parsed["end"], parsed["exact"]) == (3, 11, "March 31")
    assert parsed["note"] == "note" and sorted(parsed["tags"]) == ["a", "b"]
    assert parsed["visibility"] == "collection"
    assert parsed["source"] == f"{BASE}/sources/{demo_source.uuid}/"


def test_pages_first_middle_last_and_the_collection_pass_every_must_assertion(
    demo_source, member, owner
):
    for i in range(5):
        make(demo_source, member if i % 2 else owner, i, i + 3, note=f"n{i}", tags=["t"])
    paged = pages(Annotation.objects.with_related().order_by("start"), 2)
    documents = [
        collection_page(page, base_url=BASE, collection_id=COLLECTION_ID) for page in paged
    ]
    for page in documents:
        assert_w3c_page(page)
        for item in page["items"]:
            assert_w3c_annotation({"@context": page["@context"], **item})
    assert [len(p["items"]) for p in documents] == [2, 2, 1]
    assert [p["startIndex"] for p in documents] == [0, 2, 4]
    assert "prev" not in documents[0] and documents[0]["next"] == page_url(2)
    assert documents[1]["prev"] == page_url(1) and documents[1]["next"] == page_url(3)
    assert "next" not in documents[2]
    assert documents[1]["partOf"]["total"] == 5
    assert (documents[1]["partOf"]["first"], documents[1]["partOf"]["last"]) == (
        page_url(1),
        page_url(3),
    )

    collection = annotation_collection(paged[0], base_url=BASE, collection_id=COLLECTION_ID)
    assert_w3c_collection(collection)
    assert_w3c_page(collection)  # the suite checks an embedded first page through its collection
    assert collection["total"] == 5 and collection["last"] == page_url(3)
    assert collection["first"]["id"] == page_url(1) and "@context" not in collection["first"]


def test_an_empty_collection_passes_every_must_assertion():
    [empty] = pages([], 2)
    collection = annotation_collection(empty, base_url=BASE, collection_id=COLLECTION_ID)
    assert_w3c_collection(collection)
    assert collection["total"] == 0 and collection["first"]["items"] == []
    page = collection_page(empty, base_url=BASE, collection_id=COLLECTION_ID)
    assert_w3c_page(page)


# --- The validator must fail broken documents ----------------------------------------------


def broken(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy with one key changed (value ...) or removed (value None)."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target: Any = doc  # a dict or a list, as the path goes
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("@context", "http://example.org/other.jsonld", "3.1-annotationContextValidated"),
        ("@context", None, "3.1-annotationContextValidated"),
        ("id", "not a uri", "3.1-annotationIdValidated"),
        ("type", "Note", "3.1-annotationTypeValidated"),
        ("target", None, "3.1-targetKeyFound"),
        ("bodyValue", "plain text beside a body", "3.2.5-notBodyBodyValue"),
        ("created", "2026-02-30T00:00:00Z", "3.3.1-annotationCreatedValidated"),
        ("created", "yesterday", "3.3.1-annotationCreatedValidated"),
        ("created", "2026-11-25T02:03:04+00:00", "must be UTC written with Z"),
        ("modified", "2026-11-25T02:03:04", "3.3.1-annotationModifiedValidated"),
        ("target.selector.1.exact", None, "4.2.4-textQuoteSelectorValid"),
        ("target.selector.0.start", "three", "4.2-selectorValidIfPresent"),
    ],
)
def test_the_validator_fails_a_broken_annotation(demo_source, member, path, value, expected):
    good = annotation_to_jsonld(make(demo_source, member, 3, 11, "note", ["t"]), BASE)
    assert failures(good, "annotation") == []
    problems = failures(broken(good, path, value), "annotation")
    assert any(expected in p for p in problems), problems
    with pytest.raises(AssertionError):
        assert_w3c_annotation(broken(good, path, value))


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"),
    [
        ("collection", "type", "Collection", "5.1-collectionTypeValidated"),
        ("collection", "total", -1, "5.1-collectionTotalValidated"),
        ("collection", "last", "not a uri", "5.1-collectionLastValidated"),
        ("collection", "@context", None, "5.1-collectionContextValidated"),
        ("page", "items", "not a list", "5.2-pageItemsValidated"),
        ("page", "items.0.type", "Note", "5.2-pageItemsValidated"),
        ("page", "startIndex", -3, "5.2-pageStartIndexValidated"),
        ("page", "next", "not a uri", "5.2-pageNextValidated"),
        ("page", "partOf.first", "not a uri", "5.2-pageFirstValidated"),
        ("page", "items.0.created", "2026-11-25T02:03:04+01:00", "must be UTC written with Z"),
    ],
)
def test_the_validator_fails_a_broken_page_or_collection(
    demo_source, member, kind, path, value, expected
):
    for i in range(3):
        make(demo_source, member, i, i + 2)
    first = pages(Annotation.objects.with_related().order_by("start"), 2)[0]
    if kind == "collection":
        good = annotation_collection(first, base_url=BASE, collection_id=COLLECTION_ID)
    else:
        good = collection_page(first, base_url=BASE, collection_id=COLLECTION_ID)
    assert failures(good, kind) == []
    problems = failures(broken(good, path, value), kind)
    assert any(expected in p for p in problems), problems


def test_the_embedded_first_page_passes_every_page_assertion_on_its_own(demo_source, member):
    for i in range(3):
        make(demo_source, member, i, i + 2)
    first_page = pages(Annotation.objects.with_related().order_by("start"), 2)[0]
    collection = annotation_collection(first_page, base_url=BASE, collection_id=COLLECTION_ID)
    first = {"@context": collection["@context"], **collection["first"]}
    assert_w3c_page(first)
    assert first["partOf"] == {"id": COLLECTION_ID}
    # As it was written before: a bare IRI, which the suite's assertions read as an object.
    bare = failures({**first, "partOf": COLLECTION_ID}, "page")
    assert sorted(problem.split(":")[0] for problem in bare) == [
        "3.3.1-pageCreatedValidated.json",
        "3.3.1-pageModifiedValidated.json",
        "3.3.6-pageRightsValidated.json",
        "5.2-pageFirstValidated.json",
        "5.2-pageLabelValidated.json",
        "5.2-pageLastValidated.json",
        "5.2-pageTotalValidated.json",
    ]
