"""Replies to annotations and notes on a whole source: who reads, writes and deletes them,
through the W3C API and on the reading page."""

from __future__ import annotations

import json

import pytest
from django.core.cache import caches
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotations.models import Annotation, Comment
from annotations.w3c import MEDIA_TYPE
from archive.models import Membership
from tests.jsonld import expand, relative_iris
from tests.w3c import assert_w3c_annotation

pytestmark = pytest.mark.django_db
API = "/api/annotations/"
SECRET = "the-secret-passage-note"


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def post(client, doc):
    return client.post(API, json.dumps(doc), content_type="application/ld+json")


def reply_doc(target: str, text: str = "I disagree: see paragraph 3.") -> dict:
    return {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "Annotation",
        "motivation": "replying",
        "target": target,
        "body": {"type": "TextualBody", "value": text, "format": "text/markdown"},
    }


def note_doc(source, text: str = "The whole article leans on one survey.", **extra) -> dict:
    return {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "Annotation",
        "target": f"http://testserver/sources/{source.uuid}/",
        "body": {"type": "TextualBody", "value": text, "purpose": "commenting"},
        **extra,
    }


def iri(thing) -> str:
    return f"http://testserver{API}{thing.uuid}"


@pytest.fixture
def viewer(django_user_model, collection):
    user = django_user_model.objects.create_user("vic", "vic@example.org", "pw-vic-123")
    Membership.objects.create(collection=collection, user=user, role=Membership.Role.VIEWER)
    return user


@pytest.fixture
def shared(demo_source, owner, collection):
    """An annotation the collection's members see."""
    return Annotation.create_anchored(
        author=owner, source=demo_source, start=0, end=10, note="Shared note"
    )


@pytest.fixture
def private(demo_source, owner):
    """An annotation only its author sees."""
    return Annotation.create_anchored(
        author=owner, source=demo_source, start=20, end=30, note=SECRET, visibility="private"
    )


# --- Replies through the API ---------------------------------------------------------------


def test_a_member_replies_to_an_annotation_and_the_reply_is_a_valid_w3c_annotation(shared, member):
    response = post(client_for(member), reply_doc(iri(shared)))
    assert response.status_code == 201, response.content
    doc = response.json()
    assert doc["motivation"] == "replying"
    assert doc["target"] == iri(shared)
    assert doc["body"][0]["value"] == "I disagree: see paragraph 3."
    assert response["Location"] == doc["id"]
    assert_w3c_annotation(doc)
    for mode in ("json-ld-1.0", "json-ld-1.1"):
        expanded = expand(doc, mode)
        assert relative_iris(expanded) == []
        node = expanded[0]
        assert node["http://www.w3.org/ns/oa#motivatedBy"] == [
            {"@id": "http://www.w3.org/ns/oa#replying"}
        ]
        assert node["http://www.w3.org/ns/oa#hasTarget"] == [{"@id": iri(shared)}]
    reply = Comment.objects.get()
    assert (reply.reply_to_annotation, reply.author, reply.source) == (
        shared,
        member,
        shared.source,
    )
    again = client_for(member).get(doc["id"], HTTP_ACCEPT=MEDIA_TYPE)
    assert again.status_code == 200
    assert again.json() == doc


def test_a_stranger_cannot_reply_to_what_they_cannot_see_and_learns_nothing(
    shared, private, stranger, member, owner
):
    unknown = post(
        client_for(stranger),
        reply_doc(f"http://testserver{API}{'0' * 8}-0000-0000-0000-{'0' * 12}"),
    )
    for target in (shared, private):
        response = post(client_for(stranger), reply_doc(iri(target)))
        assert response.status_code == 404
        assert response.json() == unknown.json()
    # A member sees the shared annotation but not the owner's private one.
    assert post(client_for(member), reply_doc(iri(private))).status_code == 404
    assert SECRET not in post(client_for(member), reply_doc(iri(private))).content.decode()
    assert post(client_for(None), reply_doc(iri(shared))).status_code == 401
    assert not Comment.objects.exists()
    # Nor may they read, change or delete a reply they cannot see: the same 404 as for none.
    reply = Comment.reply(author=owner, to=private, note="Thread " + SECRET)
    nothing = client_for(stranger).get(f"{API}{'0' * 8}-0000-0000-0000-{'0' * 12}")
    for user in (stranger, member):
        client = client_for(user)
        for response in (
            client.get(iri(reply), HTTP_ACCEPT=MEDIA_TYPE),
            client.options(iri(reply)),
            client.delete(iri(reply)),
            client.put(iri(reply), "{}", content_type="application/ld+json"),
        ):
            assert response.status_code == 404
            assert response.json() == nothing.json()
            assert SECRET not in response.content.decode()
    assert Comment.objects.get().note == "Thread " + SECRET


def test_a_viewer_reads_a_reply_but_may_not_write_one(shared, member, viewer):
    reply = Comment.reply(author=member, to=shared, note="A reply")
    assert client_for(viewer).get(iri(reply), HTTP_ACCEPT=MEDIA_TYPE).status_code == 200
    response = post(client_for(viewer), reply_doc(iri(shared)))
    assert response.status_code == 403
    assert Comment.objects.count() == 1


def test_a_reply_is_read_by_exactly_whoever_reads_what_it_answers(
    shared, owner, member, stranger, viewer, curator
):
    reply = Comment.reply(author=member, to=shared, note="Only as wide as its parent")
    readers = {
        u.username
        for u in (owner, member, stranger, viewer, curator)
        if Comment.objects.visible_to(u).filter(pk=reply.pk).exists()
    }
    assert readers == {"olive", "maya", "vic", "cora"}
    # The parent made private: the reply goes with it, even from its own author.
    shared.update_content(editor=owner, note=shared.note, tags=[], visibility="private")
    assert not Comment.objects.visible_to(member).filter(pk=reply.pk).exists()
    assert not Comment.objects.visible_to(viewer).filter(pk=reply.pk).exists()
    assert client_for(member).get(iri(reply), HTTP_ACCEPT=MEDIA_TYPE).status_code == 404
    assert Comment.objects.visible_to(owner).filter(pk=reply.pk).exists()


def test_a_reply_to_a_public_annotation_in_a_public_collection_is_public(
    shared, owner, member, collection, stranger
):
    collection.is_public = True
    collection.save()
    shared.update_content(editor=owner, note=shared.note, tags=[], visibility="public")
    reply = Comment.reply(author=member, to=shared, note="Seen by all")
    anonymous = client_for(None).get(iri(reply), HTTP_ACCEPT=MEDIA_TYPE)
    assert anonymous.status_code == 200
    # Reading is not replying: a visitor of a public collection may not post in it.
    response = post(client_for(stranger), reply_doc(iri(shared)))
    assert response.status_code == 403


def test_only_the_author_edits_or_deletes_a_reply(shared, member, owner, stranger):
    reply = Comment.reply(author=member, to=shared, note="First words")
    url = iri(reply)
    change = json.dumps({"type": "Annotation", "body": {"type": "TextualBody", "value": "Better"}})
    # The owner sees it but did not write it; the stranger does not see it.
    assert client_for(owner).put(url, change, content_type="application/ld+json").status_code == 403
    assert (
        client_for(stranger).put(url, change, content_type="application/ld+json").status_code == 404
    )
    assert client_for(stranger).delete(url).status_code == 404
    assert client_for(owner).delete(url).status_code == 403
    reply.refresh_from_db()
    assert reply.note == "First words"
    edited = client_for(member).put(url, change, content_type="application/ld+json")
    assert edited.status_code == 200
    assert edited.json()["body"][0]["value"] == "Better"
    reply.refresh_from_db()
    assert (reply.note, reply.version) == ("Better", 2)
    assert client_for(member).delete(url).status_code == 204
    assert not Comment.objects.exists()


def test_an_empty_reply_is_refused_and_nothing_is_written(shared, member):
    response = post(client_for(member), reply_doc(iri(shared), text="   "))
    assert response.status_code == 400
    assert "empty" in response.json()["error"]
    assert not Comment.objects.exists()


def test_a_reply_to_a_reply_joins_the_thread_it_is_in(shared, member, owner):
    first = Comment.reply(author=member, to=shared, note="First")
    response = post(client_for(owner), reply_doc(iri(first), text="Answering the first"))
    assert response.status_code == 201
    assert response.json()["target"] == iri(shared)


def test_deleting_an_annotation_deletes_its_replies(shared, member, owner):
    Comment.reply(author=member, to=shared, note="One")
    Comment.reply(author=owner, to=shared, note="Two")
    assert client_for(owner).delete(iri(shared)).status_code == 204
    assert not Comment.objects.exists()


def test_the_database_refuses_a_comment_that_is_both_note_and_reply(shared, member):
    with pytest.raises(IntegrityError), transaction.atomic():
        Comment.objects.create(
            source=shared.source,
            author=member,
            note="x",
            reply_to_annotation=shared,
            visibility="public",
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Comment.objects.create(source=shared.source, author=member, note="x", visibility="")


# --- Notes on a whole source -----------------------------------------------------------------


def test_a_member_writes_a_note_on_the_whole_source(demo_source, member, collection):
    response = post(client_for(member), note_doc(demo_source))
    assert response.status_code == 201, response.content
    doc = response.json()
    assert doc["motivation"] == "commenting"
    assert doc["target"] == f"http://testserver/sources/{demo_source.uuid}/"
    assert doc["visibility"] == "collection"
    assert_w3c_annotation(doc)
    note = Comment.objects.get()
    assert (note.source, note.collection, note.is_reply) == (demo_source, collection, False)


def test_notes_on_a_source_follow_their_visibility(demo_source, owner, member, stranger, viewer):
    private = Comment.note_on(author=owner, source=demo_source, note=SECRET, visibility="private")
    shared = Comment.note_on(author=owner, source=demo_source, note="For the team")
    for user, expected in ((owner, {private, shared}), (member, {shared}), (viewer, {shared})):
        assert set(Comment.objects.visible_to(user)) == expected
    assert not Comment.objects.visible_to(stranger).exists()
    # A reply to the private note is as private as the note.
    reply = Comment.reply(author=owner, to=private, note="Reminder to myself")
    assert not Comment.objects.visible_to(member).filter(pk=reply.pk).exists()
    assert post(client_for(member), reply_doc(iri(private))).status_code == 404
    assert post(client_for(member), reply_doc(iri(shared))).status_code == 201


def test_a_stranger_or_a_viewer_cannot_write_a_note_on_a_source(demo_source, stranger, viewer):
    refused = post(client_for(stranger), note_doc(demo_source))
    assert refused.status_code == 404
    assert refused.json()["error"] == "No source you can see has that IRI."
    assert post(client_for(viewer), note_doc(demo_source)).status_code == 403
    assert not Comment.objects.exists()


# --- The reading page --------------------------------------------------------------------------


def test_the_reading_page_threads_replies_under_their_annotation(
    demo_source, shared, private, owner, member, stranger
):
    Comment.reply(author=member, to=shared, note="A *reply* <script>alert(1)</script>")
    Comment.reply(author=owner, to=private, note="Private thread " + SECRET)
    Comment.note_on(author=member, source=demo_source, note="About **all** of it")
    page = client_for(member).get(demo_source.get_absolute_url()).content.decode()
    assert "<em>reply</em>" in page
    assert "<script>alert(1)" not in page
    assert 'aria-label="1 reply"' in page
    assert "Notes on this source" in page
    assert "<strong>all</strong>" in page
    assert SECRET not in page
    mine = client_for(owner).get(demo_source.get_absolute_url()).content.decode()
    assert "Private thread" in mine
    assert client_for(stranger).get(demo_source.get_absolute_url()).status_code == 404


def test_the_reading_page_queries_do_not_grow_with_replies(demo_source, shared, owner, member):
    client = client_for(member)
    Comment.reply(author=member, to=shared, note="one")
    caches["reading"].clear()
    with CaptureQueriesContext(connection) as few:
        client.get(demo_source.get_absolute_url())
    for i in range(5):
        Comment.reply(author=owner, to=shared, note=f"more {i}")
        Comment.note_on(author=owner, source=demo_source, note=f"note {i}")
    caches["reading"].clear()
    with CaptureQueriesContext(connection) as many:
        page = client.get(demo_source.get_absolute_url()).content.decode()
    assert "more 4" in page and "note 4" in page
    assert len(many) == len(few)


def test_a_curator_reads_and_moderates_replies_in_the_admin(shared, member, curator):
    reply = Comment.reply(author=member, to=shared, note="Needs moderating")
    client = client_for(curator)
    listing = client.get("/admin/annotations/comment/")
    assert listing.status_code == 200
    assert "Needs moderating" in listing.content.decode()
    change = client.get(f"/admin/annotations/comment/{reply.pk}/change/")
    assert change.status_code == 200
    assert client_for(member).get("/admin/annotations/comment/").status_code == 302
