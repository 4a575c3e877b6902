from __future__ import annotations

import json

import pytest

from annotations.models import Annotation, AnnotationRevision
from archive.models import Membership
from tests.conftest import archive_text
from tests.w3c import assert_w3c_annotation, assert_w3c_collection, assert_w3c_page, failures

pytestmark = pytest.mark.django_db
API = "/api/annotations/"


def body(source, start=None, end=None, exact=None, note="", tags=(), visibility=None, **extra):
    selectors = []
    if start is not None:
        selectors.append({"type": "TextPositionSelector", "start": start, "end": end})
    if exact is not None:
        selectors.append({"type": "TextQuoteSelector", "exact": exact})
    doc = {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "Annotation",
        "target": {"source": f"http://testserver/sources/{source.uuid}/", "selector": selectors},
        "body": (
            [
                {
                    "type": "TextualBody",
                    "value": note,
                    "format": "text/markdown",
                    "purpose": "commenting",
                }
            ]
            if note
            else []
        )
        + [{"type": "TextualBody", "value": t, "purpose": "tagging"} for t in tags],
    }
    if visibility:
        doc["visibility"] = visibility
    doc.update(extra)
    return doc


def post(client, doc):
    return client.post(API, json.dumps(doc), content_type="application/ld+json")


@pytest.fixture
def annotator_client(member):
    from django.test import Client

    annotator = Client()
    annotator.force_login(member)
    return annotator


def test_create_returns_201_with_location_etag_and_a_valid_w3c_annotation(
    annotator_client, demo_source
):
    text = demo_source.text
    response = post(
        annotator_client, body(demo_source, 3, 11, text[3:11], "A *note*", ["dates", "claims"])
    )
    assert response.status_code == 201, response.content
    doc = response.json()
    assert response["Location"] == doc["id"]
    assert response["ETag"]
    assert response["Content-Type"].startswith("application/ld+json")
    assert_w3c_annotation(doc)
    assert doc["motivation"] == "commenting"
    assert doc["target"]["source"] == f"http://testserver/sources/{demo_source.uuid}/"
    assert doc["target"]["selector"][1]["exact"] == "March 31"
    assert sorted(b["value"] for b in doc["body"] if b["purpose"] == "tagging") == [
        "claims",
        "dates",
    ]
    assert doc["created"].endswith("Z")
    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end, annotation.exact) == (3, 11, "March 31")
    assert annotation.collection.slug == "field-notes"


def test_server_fills_in_the_quote_when_only_offsets_are_sent(annotator_client, demo_source):
    response = post(annotator_client, body(demo_source, 0, 2))
    assert response.status_code == 201
    annotation = Annotation.objects.get()
    assert annotation.exact == "On" and annotation.suffix == demo_source.text[2:34]
    assert response.json()["motivation"] == "highlighting"


def test_a_quote_alone_is_found_in_the_text(annotator_client, demo_source):
    response = post(annotator_client, body(demo_source, exact="Hezbollah"))
    assert response.status_code == 201
    annotation = Annotation.objects.get()
    assert demo_source.text[annotation.start : annotation.end] == "Hezbollah"


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("Before \U0001f642 after", "\U0001f642"),
        ("flag \U0001f1f5\U0001f1f8 here", "\U0001f1f5\U0001f1f8"),
        ("cafe\u0301 noir", "cafe\u0301"),
        ("\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd and more", "\u05e2\u05d5\u05dc\u05dd"),
    ],
)
def test_astral_combining_and_right_to_left_text_anchor_in_code_points(
    annotator_client, member, collection, text, exact
):
    source = archive_text(text, member, collection)
    start = text.index(exact)
    response = post(annotator_client, body(source, start, start + len(exact), exact))
    assert response.status_code == 201, response.content
    annotation = Annotation.objects.get()
    assert source.text[annotation.start : annotation.end] == exact


@pytest.mark.parametrize(
    ("doc_change", "field"),
    [
        ({"target": None}, "target"),
        ({"selector": [{"type": "XPathSelector", "value": "/p"}]}, "target.selector"),
        ({"selector": []}, "target.selector"),
        ({"range": (5, 5)}, "end"),
        ({"range": (-1, 4)}, "start"),
        ({"range": (0, 10_000_000)}, "end"),
        ({"range": ("a", 4)}, "start"),
        ({"exact": "not the text"}, "exact"),
        ({"note": "x" * 100_001}, "body.value"),
        ({"tags": [f"t{i}" for i in range(101)]}, "body"),
        ({"tags": ["x" * 101]}, "body.value"),
        ({"tags": ["  "]}, "body.value"),
        ({"body": [{"type": "Image", "value": "x"}]}, "body"),
        ({"visibility": "everyone"}, "visibility"),
    ],
)
def test_bad_annotations_get_400_with_a_json_error_naming_the_field(
    annotator_client, demo_source, doc_change, field
):
    start, end = doc_change.get("range", (0, 2))
    doc = body(
        demo_source,
        start,
        end,
        doc_change.get("exact"),
        doc_change.get("note", ""),
        doc_change.get("tags", ()),
        doc_change.get("visibility"),
    )
    if "target" in doc_change:
        del doc["target"]
    if "selector" in doc_change:
        doc["target"]["selector"] = doc_change["selector"]
    if "body" in doc_change:
        doc["body"] = doc_change["body"]
    response = post(annotator_client, doc)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert response.json()["error"]
    assert Annotation.objects.count() == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"\xff\xfe", b'"string"'])
def test_malformed_json_gets_400(annotator_client, demo_source, raw):
    response = annotator_client.post(API, raw, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_anonymous_write_gets_401_json(client, demo_source):
    response = post(client, body(demo_source, 0, 2))
    assert response.status_code == 401
    assert response.json()["error"]


def test_session_writes_need_the_csrf_token(member, demo_source):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    response = post(strict, body(demo_source, 0, 2))
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_viewer_cannot_annotate_and_stranger_cannot_see(
    client, demo_source, collection, stranger, django_user_model
):
    viewer = django_user_model.objects.create_user("vic", password="x")
    Membership.objects.create(collection=collection, user=viewer, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    assert post(client, body(demo_source, 0, 2)).status_code == 403
    client.force_login(stranger)
    assert post(client, body(demo_source, 0, 2)).status_code == 404


def create(client, source, **kwargs):
    response = post(client, body(source, **kwargs))
    assert response.status_code == 201, response.content
    return response


def test_put_with_if_match_updates_and_keeps_a_revision(annotator_client, demo_source):
    created = create(annotator_client, demo_source, start=0, end=2, note="first", tags=["a"])
    url, etag = created["Location"], created["ETag"]
    doc = created.json()
    doc["body"] = [
        {"type": "TextualBody", "value": "second", "purpose": "commenting"},
        {"type": "TextualBody", "value": "b", "purpose": "tagging"},
    ]
    response = annotator_client.put(
        url, json.dumps(doc), content_type="application/ld+json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 200, response.content
    assert response["ETag"] != etag
    annotation = Annotation.objects.get()
    assert annotation.note == "second" and annotation.version == 2
    assert [t.name for t in annotation.tags.all()] == ["b"]
    revision = AnnotationRevision.objects.get()
    assert (revision.note, revision.tags, revision.version) == ("first", ["a"], 1)
    stale = annotator_client.put(
        url, json.dumps(doc), content_type="application/ld+json", HTTP_IF_MATCH=etag
    )
    assert stale.status_code == 412
    history = annotator_client.get(f"/annotations/{annotation.uuid}/history/")
    assert b"first" in history.content and b"Version 1" in history.content


def test_put_cannot_move_the_anchor(annotator_client, demo_source):
    created = create(annotator_client, demo_source, start=0, end=2)
    doc = created.json()
    doc["target"]["selector"][0]["end"] = 5
    doc["target"]["selector"].pop()
    response = annotator_client.put(
        created["Location"], json.dumps(doc), content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["field"] == "target"


def test_only_the_author_edits_or_deletes(client, annotator_client, demo_source, owner):
    created = create(annotator_client, demo_source, start=0, end=2)
    client.force_login(owner)
    assert client.delete(created["Location"]).status_code == 403
    assert client.put(created["Location"], "{}", content_type="application/json").status_code == 403
    assert Annotation.objects.count() == 1


def test_delete_returns_204_and_get_then_404(annotator_client, demo_source):
    created = create(annotator_client, demo_source, start=0, end=2)
    assert annotator_client.delete(created["Location"]).status_code == 204
    assert annotator_client.get(created["Location"]).status_code == 404
    assert Annotation.objects.count() == 0


def test_get_has_an_etag_and_unknown_methods_get_405(annotator_client, demo_source):
    created = create(annotator_client, demo_source, start=0, end=2)
    response = annotator_client.get(created["Location"])
    assert response.status_code == 200 and response["ETag"] == created["ETag"]
    assert annotator_client.patch(created["Location"], "{}").status_code == 405


def test_list_is_a_valid_collection_with_pages_and_filters(
    client, annotator_client, demo_source, owner
):
    create(annotator_client, demo_source, start=0, end=2, tags=["alpha"])
    create(annotator_client, demo_source, start=3, end=8, tags=["beta"])
    client.force_login(owner)
    create(client, demo_source, start=10, end=12, tags=["alpha"])
    response = annotator_client.get(API, {"source": str(demo_source.uuid)})
    doc = response.json()
    assert_w3c_collection(doc)
    page = {"@context": doc["@context"], **doc["first"]}
    assert_w3c_page(page)
    assert doc["total"] == 3 and len(doc["first"]["items"]) == 3
    for item in doc["first"]["items"]:
        assert_w3c_annotation({"@context": doc["@context"], **item})
    tagged = annotator_client.get(API, {"source": str(demo_source.uuid), "tag": "alpha"}).json()
    assert tagged["total"] == 2
    by_author = annotator_client.get(API, {"author": "olive"}).json()
    assert by_author["total"] == 1
    page_doc = annotator_client.get(API, {"source": str(demo_source.uuid), "page": 1}).json()
    assert_w3c_page(page_doc)


def test_private_annotations_stay_private_in_list_detail_and_tag_suggestions(
    client, annotator_client, demo_source, owner
):
    created = create(
        annotator_client, demo_source, start=0, end=2, tags=["secret-tag"], visibility="private"
    )
    client.force_login(owner)
    assert client.get(created["Location"]).status_code == 404
    assert client.get(API, {"source": str(demo_source.uuid)}).json()["total"] == 0
    assert client.get("/api/tags/", {"q": "sec"}).json() == {"tags": []}
    assert annotator_client.get("/api/tags/", {"q": "sec"}).json() == {"tags": ["secret-tag"]}


def test_the_validator_rejects_a_broken_annotation():
    broken = {
        "@context": "http://example.org/other",
        "type": "Note",
        "created": "2020-01-01T00:00:00+00:00",
    }
    assert len(failures(broken, "annotations/annotationMusts.test")) >= 3


def test_reading_page_query_count_does_not_grow_with_annotations(
    annotator_client, demo_source, client, owner, django_assert_max_num_queries
):
    def add(n):
        for i in range(n):
            Annotation.create_anchored(
                author=owner if i % 2 else demo_source.archived_by,
                source=demo_source,
                start=i,
                end=i + 5,
                note=f"n{i}",
                tags=[f"t{i % 3}", "all"],
            )

    add(5)
    with django_assert_max_num_queries(20) as few:
        assert annotator_client.get(f"/sources/{demo_source.uuid}/").status_code == 200
    add(45)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = annotator_client.get(f"/sources/{demo_source.uuid}/")
    assert response.content.count(b'class="ann"') == 50
