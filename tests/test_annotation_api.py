"""The W3C annotation API as its clients see it: the reading page (session + CSRF) and scripts."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from annotations import api
from annotations.models import (
    Annotation,
    AnnotationGone,
    AnnotationRevision,
    Citation,
    StaleAnnotation,
    TaggedAnnotation,
)
from annotations.w3c import MEDIA_TYPE
from archive.models import Collection, Membership
from search.models import AnnotationEntry
from tests.conftest import archive_text
from tests.w3c import assert_w3c_annotation, assert_w3c_collection, assert_w3c_page

pytestmark = pytest.mark.django_db
API = "/api/annotations/"
TAGS = "/api/tags/"


def body(source, start=None, end=None, exact=None, note="", tags=(), visibility=None, **extra):
    selectors = []
    if start is not None:
        selectors.append({"type": "TextPositionSelector", "start": start, "end": end})
    if exact is not None:
        selectors.append({"type": "TextQuoteSelector", "exact": exact})
    bodies = [
        {"type": "TextualBody", "value": note, "format": "text/markdown", "purpose": "commenting"}
    ] * bool(note)
    bodies += [{"type": "TextualBody", "value": t, "purpose": "tagging"} for t in tags]
    doc = {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "Annotation",
        "target": {
            "source": f"http://testserver/sources/{source and source.uuid}/",
            "selector": selectors,
        },
        "body": bodies,
    }
    if visibility:
        doc["visibility"] = visibility
    doc.update(extra)
    return doc


def content(note="", tags=(), visibility=None):
    """A PUT body: note, tags and visibility, no target (the anchor never changes)."""
    doc = body(None, note=note, tags=tags, visibility=visibility)
    del doc["target"]
    return doc


def post(client, doc):
    return client.post(API, json.dumps(doc), content_type="application/ld+json")


def put(client, url, doc, **headers):
    return client.put(url, json.dumps(doc), content_type="application/ld+json", **headers)


def create(client, source, **kwargs):
    response = post(client, body(source, **kwargs))
    assert response.status_code == 201, response.content
    return response


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def maya(member):
    """An annotator of the collection holding demo_source."""
    return client_for(member)


@pytest.fixture
def olive(owner):
    """The collection's owner: sees maya's collection annotations, cannot edit them."""
    return client_for(owner)


# --- Create ----------------------------------------------------------------------------------


def test_create_returns_201_with_location_etag_and_a_valid_w3c_annotation(maya, demo_source):
    text = demo_source.text
    response = post(maya, body(demo_source, 3, 11, text[3:11], "A *note*", ["dates", "claims"]))
    assert response.status_code == 201, response.content
    doc = response.json()
    assert response["Location"] == doc["id"] == f"http://testserver{API}{doc['id'][-36:]}"
    assert response["ETag"].startswith('"')
    assert response["Content-Type"] == MEDIA_TYPE
    assert_w3c_annotation(doc)
    assert doc["motivation"] == "commenting"
    assert doc["target"]["source"] == f"http://testserver/sources/{demo_source.uuid}/"
    assert doc["target"]["selector"][1]["exact"] == "March 31"
    tags = sorted(b["value"] for b in doc["body"] if b["purpose"] == "tagging")
    assert tags == ["claims", "dates"]
    assert doc["visibility"] == "collection"
    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end, annotation.exact) == (3, 11, "March 31")
    assert annotation.collection is not None and annotation.collection.slug == "field-notes"
    assert annotation.author.username == "maya" and annotation.version == 1


def test_server_fills_in_the_quote_when_only_offsets_are_sent(maya, demo_source):
    response = post(maya, body(demo_source, 0, 2))
    assert response.status_code == 201
    annotation = Annotation.objects.get()
    assert annotation.exact == "On" and annotation.prefix == ""
    assert annotation.suffix == demo_source.text[2:34] and len(annotation.suffix) == 32
    quote = response.json()["target"]["selector"][1]
    assert quote == {
        "type": "TextQuoteSelector",
        "exact": "On",
        "prefix": "",
        "suffix": " March 31, a coordinated series ",
    }
    assert response.json()["motivation"] == "highlighting"


def test_a_quote_alone_is_found_in_the_text(maya, demo_source):
    response = post(maya, body(demo_source, exact="Hezbollah"))
    assert response.status_code == 201
    annotation = Annotation.objects.get()
    assert annotation.start == demo_source.text.index("Hezbollah")
    assert demo_source.text[annotation.start : annotation.end] == "Hezbollah"


def test_prefix_and_suffix_choose_between_occurrences_of_a_quote(maya, member, collection):
    text = "one cat here; two cat there; three cat everywhere"
    source = archive_text(text, member, collection)
    doc = body(source)
    doc["target"]["selector"] = [
        {"type": "TextQuoteSelector", "exact": "cat", "prefix": "two ", "suffix": " there"}
    ]
    assert post(maya, doc).status_code == 201
    doc["target"]["selector"] = [{"type": "TextQuoteSelector", "exact": "cat", "suffix": " every"}]
    assert post(maya, doc).status_code == 201
    starts = sorted(Annotation.objects.values_list("start", flat=True))
    assert starts == [text.index("cat there"), text.index("cat everywhere")]


def test_a_quote_that_is_not_in_the_text_gets_400(maya, demo_source):
    response = post(maya, body(demo_source, exact="words nowhere in the source"))
    assert response.status_code == 400
    assert response.json()["field"] == "exact"
    assert "does not occur" in response.json()["error"]
    assert not Annotation.objects.exists()


def test_offsets_are_code_points_so_an_emoji_is_one(maya, member, collection):
    source = archive_text("a\U0001f642b", member, collection)
    assert source.text == "a\U0001f642b"
    response = post(maya, body(source, 1, 2, "\U0001f642"))
    assert response.status_code == 201, response.content
    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end, annotation.exact) == (1, 2, "\U0001f642")
    assert (annotation.prefix, annotation.suffix) == ("a", "b")
    assert response.json()["target"]["selector"][0] == {
        "type": "TextPositionSelector",
        "start": 1,
        "end": 2,
    }
    # UTF-16 offsets (as a careless browser would send them) do not match the quote.
    assert post(maya, body(source, 1, 3, "\U0001f642")).json()["field"] == "exact"


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("Before \U0001f642 after", "\U0001f642"),
        ("flag \U0001f1f5\U0001f1f8 here", "\U0001f1f5\U0001f1f8"),
        ("family \U0001f468\u200d\U0001f469\u200d\U0001f467 here", "\U0001f469"),
        ("cafe\u0301 noir", "cafe\u0301"),
        ("cafe\u0301 noir", "\u0301"),
        ("\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd and more", "\u05e2\u05d5\u05dc\u05dd"),
        (
            "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645!",
            "\u0628\u0627\u0644",
        ),
    ],
)
def test_astral_combining_and_right_to_left_text_anchor_in_code_points(
    maya, member, collection, text, exact
):
    source = archive_text(text, member, collection)
    start = source.text.index(exact)
    response = post(maya, body(source, start, start + len(exact), exact))
    assert response.status_code == 201, response.content
    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end) == (start, start + len(exact))
    assert source.text[annotation.start : annotation.end] == annotation.exact == exact
    found = post(maya, body(source, exact=exact))
    assert found.status_code == 201
    assert found.json()["target"]["selector"][0]["start"] == start


def test_visibility_comes_from_the_request(maya, demo_source):
    create(maya, demo_source, start=0, end=2, visibility="private")
    create(maya, demo_source, start=0, end=2, visibility="public")
    create(maya, demo_source, start=0, end=2)
    assert sorted(Annotation.objects.values_list("visibility", flat=True)) == [
        "collection",
        "private",
        "public",
    ]


# --- Bad input: 400 with a JSON error naming the field, never a 500 -------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": None}, "target"),
        ({"target": "http://testserver/sources/x/"}, "target"),
        ({"target": [{"source": "a"}, {"source": "b"}]}, "target"),
        ({"target.source": 42}, "target.source"),
        ({"target.source": "http://testserver/sources/not-a-uuid/"}, "target.source"),
        ({"selector": [{"type": "XPathSelector", "value": "/p"}]}, "target.selector"),
        ({"selector": [{"type": ["TextPositionSelector"]}]}, "target.selector"),
        ({"selector": []}, "target.selector"),
        ({"selector": ["TextPositionSelector"]}, "target.selector"),
        (
            {"selector": [{"type": "TextQuoteSelector", "exact": "On"}] * 2},
            "target.selector",
        ),
        ({"selector": [{"type": "TextQuoteSelector", "exact": ""}]}, "exact"),
        ({"selector": [{"type": "TextQuoteSelector", "exact": "On", "prefix": 3}]}, "prefix"),
        ({"selector": [{"type": "TextPositionSelector", "start": 0}]}, "end"),
        ({"range": (5, 5)}, "end"),
        ({"range": (6, 5)}, "end"),
        ({"range": (-1, 4)}, "start"),
        ({"range": (0, 10_000_000)}, "end"),
        ({"range": ("a", 4)}, "start"),
        ({"range": (0.0, 4)}, "start"),
        ({"range": (True, 4)}, "start"),
        ({"range": (0, None)}, "end"),
        ({"exact": "not the text"}, "exact"),
        ({"note": "x" * 100_001}, "body.value"),
        ({"tags": [f"t{i}" for i in range(101)]}, "body"),
        ({"tags": ["x" * 101]}, "body.value"),
        ({"tags": ["  "]}, "body.value"),
        ({"tags": [""]}, "body.value"),
        ({"tags": ["a,b"]}, "body.value"),
        ({"tags": ["!!!"]}, "body.value"),  # no letter or digit: its slug would be empty
        ({"body": [{"type": "Image", "value": "x"}]}, "body"),
        ({"body": "a note as a bare string"}, "body"),
        ({"body": [["nested"]]}, "body"),
        ({"body": [{"type": "TextualBody", "value": 42}]}, "body.value"),
        ({"body": [{"type": "TextualBody", "value": "x", "purpose": "linking"}]}, "body.purpose"),
        ({"body": [{"type": "TextualBody", "value": "a"}] * 2}, "body"),
        ({"bodyValue": "plain"}, "bodyValue"),
        ({"type": "Note"}, "type"),
        ({"visibility": "everyone"}, "visibility"),
        ({"visibility": 1}, "visibility"),
        ({"visibility": ["private"]}, "visibility"),
    ],
)
def test_bad_annotations_get_400_with_a_json_error_naming_the_field(
    maya, demo_source, change, field
):
    start, end = change.get("range", (0, 2))
    doc = body(
        demo_source,
        start,
        end,
        change.get("exact"),
        change.get("note", ""),
        change.get("tags", ()),
        change.get("visibility"),
    )
    for key in ("target", "body", "bodyValue", "type"):
        if key in change:
            doc[key] = change[key]
            if change[key] is None:
                del doc[key]
    if "selector" in change:
        doc["target"]["selector"] = change["selector"]
    if "target.source" in change:
        doc["target"]["source"] = change["target.source"]
    response = post(maya, doc)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["field"] == field
    assert response.json()["error"]
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b"[]",
        b'"string"',
        b"null",
        b"\xff\xfe",
        b'{"type": "Annotation", "body": [{"value": "\\u0000"}]}',
        b'{"type": "Annotation", "body": [{"value": "\\ud800"}]}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_json_gets_400(maya, demo_source, raw):
    response = maya.post(API, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]


def test_a_body_over_two_megabytes_gets_400(maya, demo_source):
    doc = body(demo_source, 0, 2, note="x" * (3 * 1024 * 1024))
    response = post(maya, doc)
    assert response.status_code == 400
    assert "larger" in response.json()["error"]


def test_tags_in_any_script_have_pages_linked_from_the_tag_list_and_search(maya, demo_source):
    created = create(maya, demo_source, start=0, end=2, tags=["Résistance", "日本"])
    assert created.status_code == 201
    tag_list = maya.get("/tags/")
    assert tag_list.status_code == 200
    for name in ("Résistance", "日本"):
        found = re.search(rf'href="([^"]+)">{name}</a>', tag_list.content.decode())
        assert found is not None
        link = found.group(1)
        page = maya.get(link)
        assert page.status_code == 200 and name in page.content.decode()
    found = maya.get("/search/", {"q": "résistance"})
    assert found.status_code == 200
    assert found.context["results"].passages.count == 1


def test_a_tag_an_older_version_left_without_a_slug_gets_one_and_a_working_page(maya, demo_source):
    import importlib

    from django.apps import apps
    from taggit.models import Tag

    create(maya, demo_source, start=0, end=2, tags=["dashes"])
    # What an older version made of a tag named with no letter or digit: an empty slug,
    # which left the tag list and every page linking the tag failing.
    tag = Tag.objects.get(name="dashes")
    Tag.objects.filter(pk=tag.pk).update(name="---", slug="")
    Tag.objects.create(name="taken", slug=f"tag-{tag.pk}")
    importlib.import_module("annotations.migrations.0004_slugs_for_tags_without_one").give_slugs(
        apps, None
    )
    tag.refresh_from_db()
    assert tag.slug == f"tag-{tag.pk}_1"
    tag_list = maya.get("/tags/")
    assert tag_list.status_code == 200
    found = re.search(r'href="([^"]+)">---</a>', tag_list.content.decode())
    assert found is not None
    page = maya.get(found.group(1))
    assert page.status_code == 200 and "Tag: ---" in page.content.decode()


def test_thousands_of_tags_are_refused_at_the_101st(maya, demo_source):
    response = post(maya, body(demo_source, 0, 2, tags=[f"tag{i}" for i in range(5_000)]))
    assert response.status_code == 400 and response.json()["field"] == "body"
    assert "100 tags" in response.json()["error"]


def test_repeated_tags_count_once_and_keep_the_first_spelling(maya, demo_source):
    response = create(maya, demo_source, start=0, end=2, tags=["Dates", "dates", " DATES "] * 60)
    assert [b["value"] for b in response.json()["body"]] == ["Dates"]


def test_tags_match_existing_ones_whatever_their_case_and_new_ones_are_made_once(
    demo_source, member
):
    """As taggit's ``tags.set`` with TAGGIT_CASE_INSENSITIVE: the model is called directly
    here (imports, the admin), so nothing has deduplicated the names before it."""
    from taggit.models import Tag

    Tag.objects.create(name="Dates")
    annotation = Annotation.create_anchored(
        author=member,
        source=demo_source,
        start=0,
        end=2,
        tags=["new", "DATES", "dates", "NEW", "Ünïcode", "ünïcode"],
    )
    names = [t.name for t in annotation.tags.all()]
    assert names[:2] == ["new", "Dates"]
    assert Tag.objects.filter(name__iexact="new").count() == 1
    assert Tag.objects.filter(name="Ünïcode").count() == 1
    # Fresh from the database, in the order attached; and so in the search index.
    again = Annotation.objects.get(pk=annotation.pk)
    assert [t.name for t in again.tags.all()] == names
    assert again.search_entry.tags.split()[:2] == ["new", "dates"]


# --- Who may write ------------------------------------------------------------------------


def test_anonymous_writes_get_401_json_not_a_login_redirect(client, maya, demo_source):
    assert post(client, body(demo_source, 0, 2)).status_code == 401
    url = create(maya, demo_source, start=0, end=2)["Location"]
    for response in (
        put(client, url, content(note="x")),
        client.delete(url),
        client.delete(f"{API}00000000-0000-0000-0000-000000000000"),
    ):
        assert response.status_code == 401
        assert response.json()["error"]
    assert Annotation.objects.count() == 1


def test_session_writes_need_the_csrf_token(member, demo_source):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    response = post(strict, body(demo_source, 0, 2))
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    strict.get(f"/sources/{demo_source.uuid}/")  # the reading page sets the csrftoken cookie
    token = strict.cookies["csrftoken"].value
    response = strict.post(
        API,
        json.dumps(body(demo_source, 0, 2)),
        content_type="application/ld+json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201
    url = response["Location"]
    assert strict.delete(url).status_code == 403
    assert strict.delete(url, headers={"X-CSRFToken": token}).status_code == 204


def test_viewer_cannot_annotate_and_stranger_cannot_see(
    client, demo_source, collection, stranger, django_user_model
):
    viewer = django_user_model.objects.create_user("vic", password="x")
    Membership.objects.create(collection=collection, user=viewer, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    response = post(client, body(demo_source, 0, 2))
    assert response.status_code == 403 and response.json()["error"]
    client.force_login(stranger)
    response = post(client, body(demo_source, 0, 2))
    assert response.status_code == 404 and response.json()["field"] == "target.source"
    assert not Annotation.objects.exists()


def test_only_the_author_edits_or_deletes_and_others_who_cannot_see_get_404(
    maya, olive, demo_source, stranger
):
    url = create(maya, demo_source, start=0, end=2, note="mine")["Location"]
    assert olive.get(url).status_code == 200
    assert olive.delete(url).status_code == 403
    response = put(olive, url, content(note="hijacked"))
    assert response.status_code == 403 and "author" in response.json()["error"]
    sam = client_for(stranger)
    assert sam.get(url).status_code == 404
    assert sam.delete(url).status_code == 404
    assert put(sam, url, content(note="hijacked")).status_code == 404
    annotation = Annotation.objects.get()
    assert annotation.note == "mine" and annotation.version == 1


# --- Read, edit, delete ---------------------------------------------------------------------


def test_create_read_update_delete_round_trip(maya, demo_source, member):
    created = create(maya, demo_source, start=3, end=11, note="first", tags=["a"])
    url = created["Location"]
    read = maya.get(url)
    assert read.status_code == 200 and read["Content-Type"] == MEDIA_TYPE
    assert read["ETag"] == created["ETag"] and read.json() == created.json()
    assert_w3c_annotation(read.json())
    doc = read.json()
    doc["body"] = [{"type": "TextualBody", "value": "second", "purpose": "commenting"}]
    doc["visibility"] = "private"
    updated = put(maya, url, doc, HTTP_IF_MATCH=read["ETag"])
    assert updated.status_code == 200, updated.content
    assert_w3c_annotation(updated.json())
    assert updated.json()["body"][0]["value"] == "second"
    assert updated.json()["visibility"] == "private"
    assert updated.json()["modified"] >= updated.json()["created"]
    assert maya.get(url).json() == updated.json()
    assert maya.delete(url, HTTP_IF_MATCH=updated["ETag"]).status_code == 204
    assert maya.get(url).status_code == 404
    assert not Annotation.objects.exists() and not AnnotationRevision.objects.exists()


def test_put_with_if_match_updates_and_keeps_a_revision(maya, demo_source, member):
    created = create(maya, demo_source, start=0, end=2, note="first", tags=["a"])
    url, etag = created["Location"], created["ETag"]
    doc = created.json()
    doc["body"] = [
        {"type": "TextualBody", "value": "second", "purpose": "commenting"},
        {"type": "TextualBody", "value": "b", "purpose": "tagging"},
    ]
    response = put(maya, url, doc, HTTP_IF_MATCH=etag)
    assert response.status_code == 200, response.content
    assert response["ETag"] != etag
    annotation = Annotation.objects.get()
    assert annotation.note == "second" and annotation.version == 2
    assert annotation.modified > annotation.created
    assert [t.name for t in annotation.tags.all()] == ["b"]
    revision = AnnotationRevision.objects.get()
    assert (revision.note, revision.tags, revision.version) == ("first", ["a"], 1)
    assert (revision.visibility, revision.edited_by) == ("collection", member)
    history = maya.get(f"/annotations/{annotation.uuid}/history/")
    assert b"first" in history.content and b"Version 1" in history.content


def test_two_tabs_cannot_silently_overwrite_each_other(maya, demo_source):
    created = create(maya, demo_source, start=0, end=2, note="original")
    url, etag = created["Location"], created["ETag"]
    first_tab = put(maya, url, content(note="from tab one"), HTTP_IF_MATCH=etag)
    assert first_tab.status_code == 200
    second_tab = put(maya, url, content(note="from tab two"), HTTP_IF_MATCH=etag)
    assert second_tab.status_code == 412
    assert "changed since you loaded it" in second_tab.json()["error"]
    assert maya.delete(url, HTTP_IF_MATCH=etag).status_code == 412
    annotation = Annotation.objects.get()
    assert annotation.note == "from tab one" and annotation.version == 2
    assert AnnotationRevision.objects.count() == 1


def test_the_version_is_claimed_atomically_by_the_model(demo_source, member):
    annotation = Annotation.create_anchored(author=member, source=demo_source, start=0, end=2)
    tab_one = Annotation.objects.get(pk=annotation.pk)
    tab_two = Annotation.objects.get(pk=annotation.pk)
    tab_one.update_content(
        editor=member, note="one", tags=[], visibility="collection", expected_version=1
    )
    with pytest.raises(StaleAnnotation):
        tab_two.update_content(
            editor=member, note="two", tags=[], visibility="collection", expected_version=1
        )
    annotation.refresh_from_db()
    assert (annotation.note, annotation.version) == ("one", 2)


def test_a_deleted_annotation_answers_404_to_a_put_and_to_a_second_delete(maya, demo_source):
    created = create(maya, demo_source, start=0, end=2, note="original")
    url, etag = created["Location"], created["ETag"]
    assert maya.delete(url, HTTP_IF_MATCH=etag).status_code == 204
    not_found = {"error": "No annotation you can see has that id."}
    again = maya.delete(url, HTTP_IF_MATCH=etag)
    assert again.status_code == 404 and again.json() == not_found
    late = put(maya, url, content(note="too late"), HTTP_IF_MATCH=etag)
    assert late.status_code == 404 and late.json() == not_found
    assert put(maya, url, content(note="too late")).status_code == 404
    assert not Annotation.objects.exists()


def test_deleting_removes_tags_citations_revisions_and_search_entry(demo_source, member):
    annotation = Annotation.create_anchored(
        author=member,
        source=demo_source,
        start=0,
        end=2,
        note="first",
        tags=["a"],
        citations=Citation.build_all([{"url": "https://example.org/"}], user=member),
    )
    citing = Annotation.create_anchored(
        author=member,
        source=demo_source,
        start=3,
        end=11,
        citations=Citation.build_all([{"annotation": str(annotation.uuid)}], user=member),
    )
    annotation.update_content(
        editor=member, note="second", tags=["b"], visibility="collection", expected_version=1
    )
    pk = annotation.pk
    annotation.delete_if_current(expected_version=2)
    assert not Annotation.objects.filter(pk=pk).exists()
    assert not TaggedAnnotation.objects.filter(content_object_id=pk).exists()
    assert not Citation.objects.filter(annotation_id=pk).exists()
    assert not AnnotationRevision.objects.filter(annotation_id=pk).exists()
    assert not AnnotationEntry.objects.filter(annotation_id=pk).exists()
    # A citation of it stays, and says what it cited is gone.
    citation = Citation.objects.get(annotation=citing)
    assert citation.cited_annotation is None and citation.as_text() == "a deleted annotation"


def test_the_model_neither_deletes_nor_edits_what_changed_or_went_meanwhile(demo_source, member):
    annotation = Annotation.create_anchored(author=member, source=demo_source, start=0, end=2)
    tab_one = Annotation.objects.get(pk=annotation.pk)
    tab_two = Annotation.objects.get(pk=annotation.pk)
    tab_one.update_content(
        editor=member, note="one", tags=[], visibility="collection", expected_version=1
    )
    with pytest.raises(StaleAnnotation) as refused:
        tab_two.delete_if_current(expected_version=1)
    assert not isinstance(refused.value, AnnotationGone)
    annotation.refresh_from_db()
    assert (annotation.note, annotation.version) == ("one", 2)
    tab_one.delete_if_current(expected_version=2)
    with pytest.raises(AnnotationGone):
        tab_two.delete_if_current()
    with pytest.raises(AnnotationGone):
        tab_two.update_content(editor=member, note="two", tags=[], visibility="collection")
    assert not Annotation.objects.exists()


# What creating an annotation with a token costs, and what each query is for: the token with
# its user (1); the source, through the visibility rule (1); the reader's collection for it,
# which also says they may annotate (1); then one transaction (here a savepoint and its
# release, 2): the annotation (1), its tags found by name (1) and attached (1), and its
# search entry (1). Neither the session nor the CSRF cookie is read. New tags cost
# NEW_TAG_QUERIES more.
TOKEN_CREATE_QUERIES = 9


@pytest.mark.parametrize("count", [1, 3])
def test_create_with_a_token_costs_a_pinned_number_of_queries(
    member, demo_source, count, django_assert_num_queries
):
    from taggit.models import Tag

    from accounts.models import ApiToken

    names = [f"theme{i}" for i in range(count)]
    Tag.objects.bulk_create([Tag(name=name, slug=name) for name in names])
    _, key = ApiToken.issue(member, "script", ApiToken.Scope.WRITE)
    ApiToken.objects.update(last_used_at=timezone.now())  # recorded at most once a minute
    client = Client()
    with django_assert_num_queries(TOKEN_CREATE_QUERIES):
        response = client.post(
            API,
            json.dumps(body(demo_source, 3, 11, note="n", tags=names)),
            content_type="application/ld+json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
    assert response.status_code == 201, response.content
    annotation = Annotation.objects.get()
    assert [t.name for t in annotation.tags.all()] == names
    assert annotation.search_entry.tags == " ".join(names)
    assert annotation.author == member and annotation.exact == demo_source.text[3:11]


# taggit's tags.set cost about four more per tag: 27 for one tag, 72 for ten.
PUT_QUERIES = 18
NEW_TAG_QUERIES = 3  # however many new tags: their slugs' neighbours, INSERT, read back


@pytest.mark.parametrize("existing", [True, False])
@pytest.mark.parametrize("count", [1, 10])
def test_put_costs_the_same_queries_however_many_tags_change(
    maya, demo_source, count, existing, django_assert_num_queries
):
    """Session, user, the annotation (not its tags and citations, read again below); then in
    one transaction (a savepoint here, 2): the stored state, its tags and citations, the
    version claim, the revision, the tags (find them, drop the old rows, attach the new
    ones) and the search entry (2); then the answer read back (3)."""
    from taggit.models import Tag

    old = [f"old{i}" for i in range(count)]
    new = [f"new{i}" for i in range(count)]
    if existing:
        Tag.objects.bulk_create([Tag(name=name, slug=name) for name in new])
    created = create(maya, demo_source, start=0, end=2, note="first", tags=old)
    url = created["Location"]
    with django_assert_num_queries(PUT_QUERIES + (0 if existing else NEW_TAG_QUERIES)):
        response = put(maya, url, content(note="second", tags=new), HTTP_IF_MATCH=created["ETag"])
    assert response.status_code == 200, response.content
    assert [b["value"] for b in response.json()["body"][1:]] == new
    annotation = Annotation.objects.get()
    assert [t.name for t in annotation.tags.all()] == new
    assert annotation.search_entry.tags == " ".join(new)
    assert AnnotationRevision.objects.get().tags == old
    assert Tag.objects.filter(name__in=new).count() == count


def test_new_tags_get_the_slugs_taggit_would_give_them(demo_source, member):
    """Made in one INSERT, slugged as taggit's Tag.save slugs them one at a time."""
    from taggit.models import Tag

    Tag.objects.create(name="foo-bar")
    annotation = Annotation.create_anchored(
        author=member,
        source=demo_source,
        start=0,
        end=2,
        tags=["Foo Bar", "foo bar!", "Ärger", "!!!", "x" * 100],
    )
    assert [(t.name, t.slug) for t in annotation.tags.all()] == [
        ("Foo Bar", "foo-bar_1"),
        ("foo bar!", "foo-bar_2"),
        ("Ärger", "ärger"),
        ("!!!", ""),  # no slug of its own: left to taggit, which gives it none
        ("x" * 100, "x" * 100),
    ]
    assert Tag.objects.count() == 6


def test_put_keeps_the_tags_kept_in_place_and_adds_new_ones_after_them(maya, demo_source):
    """As taggit's tags.set: changing some tags does not reorder the others."""
    created = create(maya, demo_source, start=0, end=2, tags=["zeta", "Alpha", "mid"])
    url = created["Location"]
    response = put(maya, url, content(tags=["beta", "MID", "zeta", "beta"]))
    assert response.status_code == 200, response.content
    expected = ["zeta", "mid", "beta"]
    assert [b["value"] for b in response.json()["body"]] == expected
    assert [b["value"] for b in maya.get(url).json()["body"]] == expected
    annotation = Annotation.objects.get()
    assert annotation.search_entry.tags == "zeta mid beta"
    assert AnnotationRevision.objects.get().tags == ["zeta", "Alpha", "mid"]


def test_tags_come_back_in_the_order_given_from_get_and_lists(maya, demo_source):
    """Tagging order, on SQLite as on PostgreSQL (whose DISTINCT in taggit's prefetch
    returned them in no particular order), in the detail and in a list."""
    order = ["zeta", "Alpha", "mid", "beta", "omega", "gamma"]
    created = create(maya, demo_source, start=0, end=2, tags=order)
    create(maya, demo_source, start=2, end=4, tags=list(reversed(order)))
    assert [b["value"] for b in created.json()["body"]] == order
    assert [b["value"] for b in maya.get(created["Location"]).json()["body"]] == order
    listed = maya.get(API, {"source": str(demo_source.uuid)}).json()
    items = listed.get("first", listed).get("items", listed.get("items"))
    by_start = {
        item["target"]["selector"][0].get("start"): [b["value"] for b in item["body"]]
        for item in items
    }
    assert by_start == {0: order, 2: list(reversed(order))}


def test_put_accepts_a_weak_or_wildcard_etag_and_no_if_match_at_all(maya, demo_source):
    created = create(maya, demo_source, start=0, end=2)
    url, etag = created["Location"], created["ETag"]
    assert put(maya, url, content(note="one"), HTTP_IF_MATCH=f"W/{etag}").status_code == 200
    assert put(maya, url, content(note="two"), HTTP_IF_MATCH="*").status_code == 200
    response = put(maya, url, content(note="three"))
    assert response.status_code == 200
    assert Annotation.objects.get().version == 4


def test_put_with_nothing_changed_makes_no_revision(maya, demo_source):
    created = create(maya, demo_source, start=0, end=2, note="same", tags=["t"])
    response = put(maya, created["Location"], created.json(), HTTP_IF_MATCH=created["ETag"])
    assert response.status_code == 200 and response["ETag"] == created["ETag"]
    assert not AnnotationRevision.objects.exists()


def test_put_without_visibility_keeps_it_and_with_one_changes_it(maya, olive, demo_source):
    url = create(maya, demo_source, start=0, end=2, visibility="private")["Location"]
    assert put(maya, url, content(note="n")).json()["visibility"] == "private"
    assert olive.get(url).status_code == 404
    assert put(maya, url, content(note="n", visibility="collection")).status_code == 200
    assert olive.get(url).status_code == 200


@pytest.mark.parametrize(
    "move",
    [
        {"range": (0, 5)},
        {"exact": "Hezbollah"},
        {"source": "other"},
    ],
)
def test_put_cannot_move_the_anchor(maya, demo_source, member, collection, move):
    created = create(maya, demo_source, start=0, end=2)
    doc = created.json()
    if "range" in move:
        doc["target"]["selector"][0]["start"], doc["target"]["selector"][0]["end"] = move["range"]
        doc["target"]["selector"].pop()
    if "exact" in move:
        doc["target"]["selector"] = [{"type": "TextQuoteSelector", "exact": move["exact"]}]
    if "source" in move:
        other = archive_text("On another text", member, collection)
        doc["target"]["source"] = f"http://testserver/sources/{other.uuid}/"
    response = put(maya, created["Location"], doc)
    assert response.status_code == 400
    assert response.json()["field"] == "target"
    assert "cannot change" in response.json()["error"]
    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end, annotation.source) == (0, 2, demo_source)


def test_put_with_bad_input_gets_400_and_changes_nothing(maya, demo_source):
    url = create(maya, demo_source, start=0, end=2, note="kept")["Location"]
    assert maya.put(url, b"{oops", content_type="application/json").status_code == 400
    response = put(maya, url, content(note="x" * 100_001))
    assert response.status_code == 400 and response.json()["field"] == "body.value"
    assert Annotation.objects.get().note == "kept"


def test_get_and_head_have_an_etag_and_unknown_methods_get_405(maya, demo_source):
    created = create(maya, demo_source, start=0, end=2)
    response = maya.get(created["Location"])
    assert response.status_code == 200 and response["ETag"] == created["ETag"]
    assert maya.head(created["Location"])["ETag"] == created["ETag"]
    for response in (
        maya.patch(created["Location"], "{}"),
        maya.post(created["Location"], "{}", content_type="application/json"),
        maya.delete(API),
        maya.put(API, "{}"),
        maya.post(TAGS),
    ):
        assert response.status_code == 405
        assert response.json()["error"] and "GET" in response["Allow"]


# --- Provenance: canonical and via (protocol 5.1, 5.3) -------------------------------------


def test_canonical_and_via_sent_on_post_are_kept_and_returned(maya, demo_source):
    doc = body(
        demo_source,
        0,
        2,
        canonical="urn:uuid:0f6b5cd8-dc1f-454a-8738-a53b1da34f6b",
        via=["https://elsewhere.example/anno/7"],
        id="https://copied-from.example/anno/1",
    )
    created = post(maya, doc)
    assert created.status_code == 201, created.content
    sent_back = created.json()
    assert sent_back["canonical"] == "urn:uuid:0f6b5cd8-dc1f-454a-8738-a53b1da34f6b"
    # The id the client had is the server's now; the old one joins via.
    assert sent_back["id"] == created["Location"] != doc["id"]
    assert sent_back["via"] == [
        "https://elsewhere.example/anno/7",
        "https://copied-from.example/anno/1",
    ]
    assert maya.get(created["Location"]).json() == sent_back
    assert_w3c_annotation(sent_back)
    annotation = Annotation.objects.get()
    assert annotation.canonical == sent_back["canonical"] and annotation.via == sent_back["via"]


def test_an_annotation_without_provenance_says_nothing_of_it(maya, demo_source):
    doc = create(maya, demo_source, start=0, end=2).json()
    assert "canonical" not in doc and "via" not in doc
    one_via = post(maya, body(demo_source, 3, 5, via="https://elsewhere.example/a")).json()
    assert one_via["via"] == "https://elsewhere.example/a"


def test_a_put_keeps_canonical_and_via_and_refuses_to_change_them(maya, demo_source):
    created = post(maya, body(demo_source, 0, 2, canonical="urn:uuid:1", via="https://e.org/a"))
    url = created["Location"]
    same = {**content(note="same links"), "canonical": "urn:uuid:1", "via": ["https://e.org/a"]}
    assert put(maya, url, same).status_code == 200
    left_out = put(maya, url, content(note="links left out"))
    assert left_out.status_code == 200
    assert (left_out.json()["canonical"], left_out.json()["via"]) == (
        "urn:uuid:1",
        "https://e.org/a",
    )
    for field, value in (("canonical", "urn:uuid:2"), ("via", "https://e.org/b")):
        refused = put(maya, url, {**content(note="changed"), field: value})
        assert refused.status_code == 409 and refused.json()["field"] == field
    annotation = Annotation.objects.get()
    assert annotation.note == "links left out"
    assert (annotation.canonical, annotation.via) == ("urn:uuid:1", ["https://e.org/a"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("canonical", "not an iri"), ("canonical", 7), ("via", ["https://ok.example/", "a b"])],
)
def test_canonical_and_via_must_be_absolute_iris(maya, demo_source, field, value):
    response = post(maya, body(demo_source, 0, 2, **{field: value}))
    assert response.status_code == 400 and response.json()["field"] == field
    assert not Annotation.objects.exists()


def test_an_unknown_annotation_is_a_json_404(maya):
    response = maya.get(f"{API}00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and response.json()["error"]


# --- Lists ---------------------------------------------------------------------------------


def test_list_is_a_valid_collection_with_pages_and_filters(maya, olive, demo_source):
    create(maya, demo_source, start=0, end=2, tags=["alpha"])
    create(maya, demo_source, start=3, end=8, tags=["beta"])
    create(olive, demo_source, start=10, end=12, tags=["Alpha"])
    response = maya.get(API, {"source": str(demo_source.uuid)})
    assert response["Content-Type"] == MEDIA_TYPE
    doc = response.json()
    assert_w3c_collection(doc)
    assert_w3c_page(doc)
    assert doc["total"] == 3 and len(doc["first"]["items"]) == 3
    for item in doc["first"]["items"]:
        assert_w3c_annotation({"@context": doc["@context"], **item})
    assert [i["target"]["selector"][0]["start"] for i in doc["first"]["items"]] == [0, 3, 10]
    page = maya.get(API, {"source": str(demo_source.uuid), "page": "first"}).json()
    assert_w3c_page(page)
    assert page["items"] == doc["first"]["items"]


def test_filters_by_tag_and_author_combine(maya, olive, demo_source, member, collection):
    create(maya, demo_source, start=0, end=2, tags=["alpha"])
    create(maya, demo_source, start=3, end=8, tags=["beta"])
    create(olive, demo_source, start=10, end=12, tags=["alpha", "beta"])
    other = archive_text("Another source entirely", member, collection)
    create(maya, other, start=0, end=7, tags=["alpha"])

    def starts(**params):
        doc = maya.get(API, params).json()
        assert doc["total"] == len(doc["first"]["items"])
        return sorted(
            (i["target"]["source"][-37:-1], i["target"]["selector"][0]["start"])
            for i in doc["first"]["items"]
        )

    here, there = str(demo_source.uuid), str(other.uuid)
    assert starts(tag="alpha") == sorted([(here, 0), (here, 10), (there, 0)])
    assert starts(tag="ALPHA", source=here) == [(here, 0), (here, 10)]
    assert starts(author="olive") == [(here, 10)]
    assert starts(author="maya", tag="beta") == [(here, 3)]
    assert starts(author="maya", tag="beta", source=there) == []
    assert starts(tag="nonexistent") == []
    assert starts(source=f"http://testserver/sources/{there}/") == [(there, 0)]


def test_pages_link_first_last_next_and_prev(maya, member, demo_source, monkeypatch):
    monkeypatch.setattr(api, "PAGE_SIZE", 2)
    made = [
        Annotation.create_anchored(author=member, source=demo_source, start=i, end=i + 2)
        for i in range(5)
    ]
    iri = [f"http://testserver{API}{a.uuid}" for a in made]
    params = {"source": str(demo_source.uuid)}
    collection = maya.get(API, params).json()
    assert_w3c_collection(collection)
    assert collection["total"] == 5
    base = f"http://testserver{API}?source={demo_source.uuid}"
    assert collection["id"] == base
    assert collection["first"]["id"] == f"{base}&page=first"
    assert collection["last"] == f"{base}&page=last"
    assert collection["first"]["next"] == f"{base}&after={made[1].uuid}"
    middle = maya.get(collection["first"]["next"]).json()
    assert_w3c_page(middle)
    assert middle["startIndex"] == 2 and [i["id"] for i in middle["items"]] == iri[2:4]
    assert middle["prev"] == f"{base}&before={made[2].uuid}"
    assert middle["next"] == f"{base}&after={made[3].uuid}"
    last = maya.get(middle["next"]).json()
    assert "next" not in last and [i["id"] for i in last["items"]] == iri[4:]
    assert last["startIndex"] == 4
    # Back from the last page, through prev, the pages end where they did going forward.
    assert maya.get(collection["last"]).json()["items"] == last["items"]
    back = maya.get(last["prev"]).json()
    assert back["items"] == middle["items"] and back["startIndex"] == 2
    first = maya.get(back["prev"]).json()
    assert [i["id"] for i in first["items"]] == iri[:2] and first["startIndex"] == 0
    assert "prev" not in first and first["next"] == collection["first"]["next"]


# A page of the list: the session's two reads (session, user), the page, its tags, whether
# any of it cites something, and the pages of its sources that are PDFs; a page that cites
# reads the citations too, and one beyond the first counts where it starts (with the total).
# (An empty page also checks its source.)
LIST_QUERIES = 6


@pytest.mark.parametrize("count", [1, 30])
def test_a_page_of_the_list_costs_the_same_queries_however_many_it_holds(
    maya, member, demo_source, count, django_assert_num_queries
):
    made = [
        Annotation.create_anchored(
            author=member, source=demo_source, start=i, end=i + 2, tags=["a", f"t{i}"]
        )
        for i in range(count)
    ]
    params = {"source": str(demo_source.uuid), "page_size": 100}
    with django_assert_num_queries(LIST_QUERIES):
        doc = maya.get(API, params).json()
    assert len(doc["first"]["items"]) == count
    assert doc["first"]["items"][-1]["body"][-1]["value"] == f"t{count - 1}"
    citing = Annotation.create_anchored(
        author=member,
        source=demo_source,
        start=0,
        end=5,
        citations=Citation.build_all([{"annotation": str(made[0].uuid)}], user=member),
    )
    with django_assert_num_queries(LIST_QUERIES + 1):
        doc = maya.get(API, {**params, "page": "first"}).json()
    cited = [i for i in doc["items"] if i["body"][0].get("purpose") == "linking"]
    assert cited[0]["body"][0]["source"] == f"http://testserver{API}{made[0].uuid}"
    with django_assert_num_queries(LIST_QUERIES + 2):  # the cursor's place, then the counts
        page = maya.get(API, {**params, "after": str(citing.uuid)}).json()
    assert len(page["items"]) == count and page["startIndex"] == 1


def test_page_size_asks_for_larger_pages_up_to_the_cap(maya, member, demo_source, monkeypatch):
    monkeypatch.setattr(api, "MAX_PAGE_SIZE", 3)
    for i in range(5):
        Annotation.create_anchored(author=member, source=demo_source, start=i, end=i + 2)
    base = f"http://testserver{API}?source={demo_source.uuid}"
    doc = maya.get(API, {"source": str(demo_source.uuid), "page_size": 2}).json()
    assert doc["id"] == f"{base}&page_size=2" and len(doc["first"]["items"]) == 2
    following = maya.get(doc["first"]["next"]).json()
    assert len(following["items"]) == 2 and "page_size=2" in following["next"]
    # More than the cap gets the cap, and the IRIs say so.
    doc = maya.get(API, {"source": str(demo_source.uuid), "page_size": 1000}).json()
    assert doc["id"] == f"{base}&page_size=3" and len(doc["first"]["items"]) == 3
    assert doc["total"] == 5 and doc["last"] == f"{base}&page_size=3&page=last"
    assert len(maya.get(doc["last"]).json()["items"]) == 2
    for wrong in ("0", "-1", "many", ""):
        answer = maya.get(API, {"page_size": wrong})
        assert answer.status_code == 400 and answer.json()["field"] == "page_size"


def test_a_page_asked_for_wrongly_is_a_400_naming_the_parameter(maya, member, demo_source):
    made = Annotation.create_anchored(author=member, source=demo_source, start=0, end=2)
    params = {"source": str(demo_source.uuid)}
    for asked, field in (
        ({"page": 2}, "page"),
        ({"page": "two"}, "page"),
        ({"after": "not-a-uuid"}, "after"),
        ({"before": str(uuid.uuid4())}, "before"),
        ({"after": str(made.uuid), "before": str(made.uuid)}, "before"),
        ({"page": "first", "after": str(made.uuid)}, "after"),
    ):
        answer = maya.get(API, {**params, **asked})
        assert answer.status_code == 400, asked
        assert answer.json()["field"] == field, asked


def test_a_page_after_an_annotation_the_filters_leave_out_is_a_400(maya, member, demo_source):
    kept = Annotation.create_anchored(
        author=member, source=demo_source, start=0, end=2, tags=["kept"]
    )
    other = Annotation.create_anchored(author=member, source=demo_source, start=3, end=5)
    assert maya.get(API, {"tag": "kept", "after": str(kept.uuid)}).status_code == 200
    assert maya.get(API, {"tag": "kept", "after": str(other.uuid)}).status_code == 400


def test_a_cursor_naming_an_annotation_a_stranger_cannot_see_teaches_them_nothing(
    member, owner, stranger, demo_source
):
    """A stranger reads a public collection's list; naming, in ``after`` or ``before``, a
    private annotation beside the public one, an annotation in a collection they are not in,
    or none at all gets the same answer, which names none of them."""
    public = Collection.objects.create(slug="open", title="Open", owner=owner, is_public=True)
    public_source = archive_text("A public text of some length.", owner, public)
    seen = Annotation.create_anchored(
        author=owner, source=public_source, start=0, end=2, visibility="public"
    )
    hidden_here = Annotation.create_anchored(
        author=owner, source=public_source, start=1, end=3, visibility="private"
    )
    hidden_elsewhere = Annotation.create_anchored(author=member, source=demo_source, start=0, end=2)
    reader = client_for(stranger)
    assert reader.get(API, {"after": str(seen.uuid)}).json()["items"] == []
    assert reader.get(API, {"before": str(seen.uuid)}).json()["items"] == []
    answers = [
        reader.get(API, {name: str(ref)})
        for ref in (hidden_here.uuid, hidden_elsewhere.uuid, uuid.uuid4())
        for name in ("after", "before")
    ]
    assert {a.status_code for a in answers} == {400}
    assert len({a.content.replace(b"before", b"after") for a in answers}) == 1
    for answer in answers:
        assert str(hidden_here.uuid).encode() not in answer.content
        assert str(hidden_elsewhere.uuid).encode() not in answer.content


def test_list_source_filter_errors(maya, stranger, demo_source):
    response = maya.get(API, {"source": "nonsense"})
    assert response.status_code == 400 and response.json()["field"] == "source"
    response = client_for(stranger).get(API, {"source": str(demo_source.uuid)})
    assert response.status_code == 404 and response.json()["field"] == "source"


def test_a_hidden_source_is_a_404_like_a_missing_one_however_its_list_is_asked_for(
    maya, member, stranger, demo_source
):
    made = Annotation.create_anchored(author=member, source=demo_source, start=0, end=2)
    reader = client_for(stranger)
    for source in (str(demo_source.uuid), str(uuid.uuid4())):
        for asked in (
            {},
            {"page": "first"},
            {"page": "last"},
            {"iris": "1"},
            {"after": str(made.uuid)},
            {"before": str(made.uuid)},
        ):
            answer = reader.get(API, {"source": source, **asked})
            assert answer.status_code == 404, asked
            assert answer.json() == {
                "error": "No source you can see has that UUID.",
                "field": "source",
            }
    # A source one can see with nothing in the list is an empty list, not a 404.
    Annotation.objects.all().delete()
    assert maya.get(API, {"source": str(demo_source.uuid)}).json()["total"] == 0


def test_private_annotations_stay_private_in_list_detail_and_tag_suggestions(
    maya, olive, client, demo_source
):
    url = create(maya, demo_source, start=0, end=2, tags=["secret-tag"], visibility="private")[
        "Location"
    ]
    assert olive.get(url).status_code == 404
    assert olive.get(API, {"source": str(demo_source.uuid)}).json()["total"] == 0
    assert olive.get(API, {"tag": "secret-tag"}).json()["total"] == 0
    assert olive.get(TAGS, {"q": "sec"}).json() == {"tags": []}
    assert olive.get(TAGS).json() == {"tags": []}
    assert maya.get(TAGS, {"q": "sec"}).json() == {"tags": ["secret-tag"]}
    assert maya.get(API, {"source": str(demo_source.uuid)}).json()["total"] == 1


def test_public_annotations_in_a_public_collection_are_readable_by_visitors(
    maya, client, demo_source, collection
):
    collection.is_public = True
    collection.save()
    public = create(maya, demo_source, start=0, end=2, tags=["open"], visibility="public")
    create(maya, demo_source, start=3, end=5, tags=["members-only"])
    assert client.get(public["Location"]).status_code == 200
    doc = client.get(API, {"source": str(demo_source.uuid)}).json()
    assert [i["id"] for i in doc["first"]["items"]] == [public["Location"]]
    assert client.get(TAGS).json() == {"tags": ["open"]}


# --- Tag suggestions ----------------------------------------------------------------------


def test_tag_suggestions_match_prefix_first_then_contains_case_insensitively(maya, demo_source):
    create(maya, demo_source, start=0, end=2, tags=["Dates", "update", "candidate", "other"])
    assert maya.get(TAGS, {"q": "dat"}).json() == {"tags": ["Dates", "candidate", "update"]}
    assert maya.get(TAGS, {"q": "DATE"}).json() == {"tags": ["Dates", "candidate", "update"]}
    assert maya.get(TAGS, {"q": "zzz"}).json() == {"tags": []}


def test_tag_suggestions_are_at_most_twenty(maya, demo_source):
    create(maya, demo_source, start=0, end=2, tags=[f"code-{i:02d}" for i in range(30)])
    names = maya.get(TAGS, {"q": "code"}).json()["tags"]
    assert names == [f"code-{i:02d}" for i in range(20)]
    assert len(maya.get(TAGS).json()["tags"]) == 20
