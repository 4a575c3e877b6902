"""The annotation list's cache (annotations.api.read_collection): a client is served a list
made for its reader, never anyone else's, and never one older than the last write.

These tests commit (transactional_db), as a server does: inside a test's transaction the
cache stands aside (annotations.revision_cache).
"""

from __future__ import annotations

import json

import pytest
from django.core.cache import caches
from django.test import Client

from accounts.models import ApiToken
from annotations.models import Annotation
from archive.models import Membership

pytestmark = pytest.mark.django_db(transaction=True)

MEDIA_TYPE = "application/ld+json"
# The token with its user, and the content revision: what a list served from the cache costs.
CACHED_LIST_QUERIES = 2


@pytest.fixture(autouse=True)
def empty_cache():
    caches["reading"].clear()
    yield
    caches["reading"].clear()


def script(user) -> Client:
    _, key = ApiToken.issue(user, "script", ApiToken.Scope.READ)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ACCEPT=MEDIA_TYPE)


def notes(client: Client, source, **headers) -> list[str]:
    response = client.get(f"/api/annotations/?source={source.uuid}", headers=headers)
    assert response.status_code == 200
    document = json.loads(response.content)
    return [item["body"][0]["value"] for item in document["first"]["items"] if item.get("body")]


def note(source, author, text: str, **kwargs) -> Annotation:
    return Annotation.create_anchored(
        author=author, source=source, start=10, end=30, note=text, **kwargs
    )


def test_a_second_read_is_served_from_the_cache(demo_source, member, django_assert_num_queries):
    note(demo_source, member, "First reading")
    client = script(member)
    first = client.get(f"/api/annotations/?source={demo_source.uuid}")
    with django_assert_num_queries(CACHED_LIST_QUERIES):
        second = client.get(f"/api/annotations/?source={demo_source.uuid}")
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]
    assert second["Content-Type"] == first["Content-Type"]
    # Each reader's own list: no shared cache in between may keep one for another.
    assert "Authorization" in second["Vary"]


def test_each_reader_gets_their_own_list_never_anothers(demo_source, member, owner):
    note(demo_source, member, "Maya's note")
    note(demo_source, member, "Maya's private thought", visibility="private")
    assert "Maya's private thought" in notes(script(member), demo_source)
    assert notes(script(owner), demo_source) == ["Maya's note"]


def test_a_stranger_gets_404_after_a_member_was_served_the_list(demo_source, member, stranger):
    note(demo_source, member, "Members only")
    assert notes(script(member), demo_source) == ["Members only"]
    response = script(stranger).get(f"/api/annotations/?source={demo_source.uuid}")
    assert response.status_code == 404
    assert b"Members only" not in response.content


def test_an_ex_member_no_longer_sees_the_collections_annotations(
    demo_source, member, owner, collection
):
    note(demo_source, owner, "Shared note")
    client = script(member)
    assert notes(client, demo_source) == ["Shared note"]
    Membership.objects.filter(collection=collection, user=member).delete()
    response = client.get(f"/api/annotations/?source={demo_source.uuid}")
    assert response.status_code == 404
    assert b"Shared note" not in response.content


def test_new_edited_and_deleted_annotations_show_at_once(demo_source, member, owner):
    client = script(owner)
    assert notes(client, demo_source) == []
    annotation = note(demo_source, member, "A new thought")
    assert notes(client, demo_source) == ["A new thought"]
    annotation.update_content(
        editor=member, note="A second thought", tags=[], visibility="collection"
    )
    assert notes(client, demo_source) == ["A second thought"]
    Annotation.objects.filter(pk=annotation.pk).delete()
    assert notes(client, demo_source) == []


def test_the_prefer_header_gets_its_own_answer(demo_source, member):
    note(demo_source, member, "A note")
    client = script(member)
    assert notes(client, demo_source) == ["A note"]
    prefer = 'return=representation;include="http://www.w3.org/ns/oa#PreferContainedIRIs"'
    response = client.get(
        f"/api/annotations/?source={demo_source.uuid}", headers={"Prefer": prefer}
    )
    document = json.loads(response.content)
    assert all(isinstance(item, str) for item in document["first"]["items"])
    assert "Preference-Applied" in response
    assert notes(client, demo_source) == ["A note"]


# --- The export downloads (exports.views.download) -----------------------------------------


def kept_keys() -> list[str]:
    return list(caches["reading"]._cache)  # type: ignore[attr-defined]  # LocMemCache's


def csv_download(client: Client, collection) -> str:
    response = client.get(f"/collections/{collection.slug}/export/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment")
    return response.getvalue().decode()


def test_a_second_export_is_the_kept_one_until_something_changes(
    demo_source, member, collection, django_assert_max_num_queries
):
    note(demo_source, member, "First reading")
    client = Client()
    client.force_login(member)
    first = csv_download(client, collection)
    with django_assert_max_num_queries(CACHED_LIST_QUERIES + 1):  # session, user, revision
        assert csv_download(client, collection) == first
    note(demo_source, member, "Second reading")
    assert "Second reading" in csv_download(client, collection)


def test_a_kept_export_is_never_anothers(demo_source, member, owner, stranger, collection):
    note(demo_source, member, "Maya's private thought", visibility="private")
    maya = Client()
    maya.force_login(member)
    assert "Maya's private thought" in csv_download(maya, collection)
    olive = Client()
    olive.force_login(owner)
    assert "Maya's private thought" not in csv_download(olive, collection)
    visitor = Client()
    visitor.force_login(stranger)
    response = visitor.get(f"/collections/{collection.slug}/export/csv")
    assert response.status_code == 404
    Membership.objects.filter(collection=collection, user=member).delete()
    assert maya.get(f"/collections/{collection.slug}/export/csv").status_code == 404


def test_an_export_longer_than_the_limit_is_not_kept(demo_source, member, collection, settings):
    settings.SCHOLION_EXPORT_CACHE_BYTES = 10
    note(demo_source, member, "First reading")
    client = Client()
    client.force_login(member)
    csv_download(client, collection)
    assert not any(key.startswith(":1:export-") for key in kept_keys())
    settings.SCHOLION_EXPORT_CACHE_BYTES = 1024 * 1024
    csv_download(client, collection)
    assert any(key.startswith(":1:export-csv") for key in kept_keys())
