"""Undoing a delete: the author writes a just-deleted annotation back, the same IRI and
history; nobody else can, and learns nothing by trying."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client

from annotations.models import Annotation, AnnotationRevision, Citation, DeletedAnnotation
from archive.models import Membership
from search.models import AnnotationEntry
from tests.test_annotation_api import body, client_for, content, create, post, put

pytestmark = pytest.mark.django_db


def restore_url(url: str) -> str:
    return f"{url}/restore"


@pytest.fixture
def maya(member):
    return client_for(member)


def delete_edited(maya, demo_source, other):
    """An annotation with tags, a citation, a revision and a citation elsewhere that points
    at it; deleted. Return its URL and what it was."""
    cited = f"http://testserver/sources/{other.uuid}/"
    doc = body(demo_source, 3, 11, note="first", tags=["dates", "claims"])
    doc["body"].append({"type": "SpecificResource", "purpose": "linking", "source": cited})
    url = create_doc(maya, doc)
    edited = content(note="second", tags=["claims", "dates"])
    edited["body"].append({"type": "SpecificResource", "purpose": "linking", "source": cited})
    assert put(maya, url, edited).status_code == 200
    citing = body(demo_source, 20, 30, note="see the other")
    citing["body"].append({"type": "SpecificResource", "purpose": "linking", "source": url})
    create_doc(maya, citing)
    before = maya.get(url).json()
    assert maya.delete(url).status_code == 204
    return url, before


def create_doc(client, doc) -> str:
    response = post(client, doc)
    assert response.status_code == 201, response.content
    return response["Location"]


def test_the_author_undoes_a_delete_and_gets_it_back_whole(maya, demo_source, member, collection):
    from tests.conftest import archive_text

    other = archive_text("Another source to cite.", member, collection)
    url, before = delete_edited(maya, demo_source, other)
    assert maya.get(url).status_code == 404  # the delete is a delete until undone
    citing = Citation.objects.get(kind=Citation.Kind.ANNOTATION)
    assert citing.cited_annotation is None

    response = maya.post(restore_url(url))

    assert response.status_code == 201, response.content
    assert response["Location"] == url
    assert maya.get(url).json() == before
    annotation = Annotation.objects.get(uuid=url[-36:])
    assert annotation.version == 2 and annotation.note == "second"
    assert [t.name for t in annotation.tags.all()] == ["dates", "claims"]
    assert [c.source_id for c in annotation.citations.all()] == [other.pk]
    assert list(annotation.revisions.values_list("version", "note")) == [(1, "first")]
    assert AnnotationEntry.objects.filter(annotation=annotation).exists()  # found by search
    citing.refresh_from_db()
    assert citing.cited_annotation == annotation
    assert not DeletedAnnotation.objects.exists()
    # Undone once is undone: a second undo finds nothing to restore.
    assert maya.post(restore_url(url)).status_code == 404


def test_nobody_else_can_undo_and_they_learn_nothing(
    maya, demo_source, owner, stranger, curator, member
):
    url = create(maya, demo_source, start=0, end=2, note="mine")["Location"]
    assert maya.delete(url).status_code == 204
    unknown = f"{url[:-36]}00000000-0000-0000-0000-000000000000"
    for user in (owner, stranger, curator):  # the collection's owner, a stranger, staff
        client = client_for(user)
        refused = client.post(restore_url(url))
        assert refused.status_code == 404, user
        assert refused.json() == client.post(restore_url(unknown)).json()
    assert Client().post(restore_url(url)).status_code == 401
    assert not Annotation.objects.exists()
    assert DeletedAnnotation.objects.get().author == member


def test_undo_is_post_only_and_needs_the_csrf_token(member, demo_source):
    maya = client_for(member)
    url = create(maya, demo_source, start=0, end=2)["Location"]
    assert maya.delete(url).status_code == 204
    assert maya.get(restore_url(url)).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post(restore_url(url)).status_code == 403
    assert not Annotation.objects.exists()


def test_undo_is_refused_once_its_time_has_passed(maya, demo_source):
    url = create(maya, demo_source, start=0, end=2)["Location"]
    assert maya.delete(url).status_code == 204
    deleted = DeletedAnnotation.objects.get()
    deleted.deleted_at -= DeletedAnnotation.UNDO_WINDOW + timedelta(seconds=1)
    deleted.save()
    response = maya.post(restore_url(url))
    assert response.status_code == 409 and "passed" in response.json()["error"]
    assert not Annotation.objects.exists()


def test_a_later_delete_purges_copies_past_their_time(maya, demo_source):
    first = create(maya, demo_source, start=0, end=2)["Location"]
    second = create(maya, demo_source, start=5, end=9)["Location"]
    assert maya.delete(first).status_code == 204
    DeletedAnnotation.objects.update(
        deleted_at=DeletedAnnotation.objects.get().deleted_at - 2 * DeletedAnnotation.UNDO_WINDOW
    )
    assert maya.delete(second).status_code == 204
    assert list(DeletedAnnotation.objects.values_list("uuid", flat=True)) == [
        Annotation._meta.get_field("uuid").to_python(second[-36:])
    ]


def test_an_author_who_lost_their_role_cannot_undo(maya, demo_source, member):
    url = create(maya, demo_source, start=0, end=2)["Location"]
    assert maya.delete(url).status_code == 204
    Membership.objects.filter(user=member).update(role=Membership.Role.VIEWER)
    response = maya.post(restore_url(url))
    assert response.status_code == 409 and "no longer annotate" in response.json()["error"]
    assert not Annotation.objects.exists()


def test_undo_answers_in_json_ld_with_the_restored_annotation(maya, demo_source):
    url = create(maya, demo_source, start=0, end=2, note="n")["Location"]
    etag = maya.get(url)["ETag"]
    assert maya.delete(url).status_code == 204
    response = maya.post(restore_url(url))
    assert response.status_code == 201
    assert response["ETag"] == etag
    assert json.loads(response.content)["id"] == url
    assert AnnotationRevision.objects.count() == 0
