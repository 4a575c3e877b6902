"""Identical bytes archived by different people: stored once, but never one shared source.

A source (its title, collections, visibility) belongs to the people who may see it. Someone
who uploads bytes that are already archived in another person's private collection gets a
source of their own over the same stored blob, and learns nothing of the other one: not its
title, not that it exists.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from archive.blobstore import archive_storage
from archive.models import Collection, Membership, Source
from tests.conftest import archive_text
from tests.helpers import run_at_once

pytestmark = pytest.mark.django_db

CONFIDENTIAL = "Interview 7, confidential"


@pytest.fixture
def interview(owner, collection):
    """A private interview transcript in olive's private collection."""
    text = f"Interviewer: where were you?\nRespondent: PIN 4711 Confide. {uuid.uuid4()}\n"
    return archive_text(text, owner, collection, metadata={"title": CONFIDENTIAL})


@pytest.fixture
def strangers_public(stranger):
    return Collection.objects.create(
        slug="sams-open", title="Sam's open archive", owner=stranger, is_public=True
    )


def upload(client, data: bytes, **fields):
    file = SimpleUploadedFile("copy.txt", data, content_type="text/plain")
    return client.post("/sources/new/", {"file": file, **fields}, follow=True)


def shown(response) -> str:
    return response.content.decode()


def source_in(response) -> Source:
    path = response.redirect_chain[-1][0]
    match = re.search(r"/sources/([0-9a-f-]{36})/", path)
    assert match, path
    return Source.objects.get(uuid=match.group(1))


def original_bytes(source: Source) -> bytes:
    with source.open_original() as fh:
        return fh.read()


def test_a_stranger_uploading_private_bytes_gets_a_source_of_their_own(
    client, stranger, strangers_public, interview
):
    data = original_bytes(interview)
    client.force_login(stranger)

    response = upload(client, data, collection=strangers_public.pk)

    assert response.status_code == 200
    page = shown(response)
    assert CONFIDENTIAL not in page
    assert "already archived" not in page
    assert str(interview.uuid) not in page
    own = source_in(response)
    assert own.pk != interview.pk
    assert own.archived_by == stranger
    assert list(strangers_public.sources.all()) == [own]
    # One blob on disk for both, each source's fixity intact.
    assert own.sha256 == interview.sha256 and own.blob_name == interview.blob_name
    assert original_bytes(own) == data
    assert own.verify_fixity().ok and interview.verify_fixity().ok


def test_the_private_source_stays_private_and_unchanged(
    client, stranger, strangers_public, interview
):
    client.force_login(stranger)
    own = source_in(upload(client, original_bytes(interview), collection=strangers_public.pk))
    # The stranger edits their copy's metadata: the owner's source keeps its own.
    response = client.post(
        f"/sources/{own.uuid}/edit/", {"title": "Sam's copy", "citation_key": "samcopy"}
    )
    assert response.status_code == 302

    interview.refresh_from_db()
    assert interview.title == CONFIDENTIAL
    assert list(interview.collections.all()) == [Collection.objects.get(slug="field-notes")]
    visitor = Client()
    assert visitor.get(f"/sources/{interview.uuid}/").status_code == 404
    assert visitor.get(f"/sources/{interview.uuid}/original").status_code == 404
    assert visitor.get(f"/sources/{own.uuid}/").status_code == 200
    assert client.get(f"/sources/{interview.uuid}/").status_code == 404
    assert client.get(f"/sources/{interview.uuid}/edit/").status_code == 404


def test_a_stranger_uploading_without_a_collection_learns_nothing_either(
    client, stranger, interview
):
    client.force_login(stranger)
    response = upload(client, original_bytes(interview))
    assert CONFIDENTIAL not in shown(response)
    assert "already archived" not in shown(response)
    assert source_in(response).pk != interview.pk


def test_the_archiver_uploading_the_same_bytes_again_is_led_to_their_source(
    client, owner, interview
):
    client.force_login(owner)
    response = upload(client, original_bytes(interview))
    assert source_in(response) == interview
    assert "already archived" in shown(response)
    assert Source.objects.filter(sha256=interview.sha256).count() == 1


def test_a_viewer_cannot_publish_a_private_source_by_uploading_its_bytes(
    client, django_user_model, collection, interview
):
    """A viewer may read the private source, but not add it to a collection of theirs:
    their upload into their public collection makes a source of their own."""
    viewer = django_user_model.objects.create_user("vera", password="pw-vera-123")
    Membership.objects.create(collection=collection, user=viewer, role=Membership.Role.VIEWER)
    public = Collection.objects.create(slug="veras", title="V", owner=viewer, is_public=True)
    client.force_login(viewer)

    response = upload(client, original_bytes(interview), collection=public.pk)

    own = source_in(response)
    assert own.pk != interview.pk
    assert list(public.sources.all()) == [own]
    assert Client().get(f"/sources/{interview.uuid}/").status_code == 404
    # Without a collection, the viewer is led to the source they can already read.
    response = upload(client, original_bytes(interview))
    assert source_in(response) in {interview, own}
    assert "already archived" in shown(response)


def test_an_editor_adding_the_same_bytes_to_another_collection_reuses_the_source(
    client, django_user_model, collection, interview
):
    editor = django_user_model.objects.create_user("eddie", password="pw-eddie-123")
    Membership.objects.create(collection=collection, user=editor, role=Membership.Role.EDITOR)
    other = Collection.objects.create(slug="eddies", title="E", owner=editor)
    client.force_login(editor)

    response = upload(client, original_bytes(interview), collection=other.pk)

    assert source_in(response) == interview
    assert set(interview.collections.all()) == {collection, other}
    assert Source.objects.filter(sha256=interview.sha256).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_people_uploading_the_same_bytes_at_once_get_one_source_each(
    owner, stranger, collection
):
    from archive.ingest import archive_chunks

    data = f"Simultaneous\n\nBoth upload this. {uuid.uuid4()}\n".encode()
    people = [owner, stranger] * 3

    results, errors = run_at_once(
        lambda i: archive_chunks(iter([data]), user=people[i]), count=len(people)
    )

    assert errors == []
    sources = Source.objects.filter(archived_by__in=[owner, stranger])
    assert sorted(s.archived_by.username for s in sources) == ["olive", "sam"]
    for person in (owner, stranger):
        mine = {r.source.pk for r, p in zip(results, people, strict=True) if p == person}
        assert len(mine) == 1
        assert Source.objects.get(pk=mine.pop()).archived_by == person
    assert archive_storage().exists(sources[0].blob_name)
