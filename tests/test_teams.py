"""Teams from the interface: creating collections, members, invitations, ownership, history."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from archive.models import Collection, CollectionEvent, Membership

pytestmark = pytest.mark.django_db


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def roles(collection: Collection) -> dict[str, str]:
    return {
        m.user.username: m.role
        for m in Membership.objects.filter(collection=collection).select_related("user")
    }


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


# --- Creating a collection -------------------------------------------------------------------

CREATE_URL = "/collections/new/"


def test_create_url_is_the_one_the_collections_page_links(client, stranger):
    assert reverse("archive:collection_create") == CREATE_URL
    client.force_login(stranger)
    page = client.get(reverse("archive:collection_list")).content.decode()
    assert f'href="{CREATE_URL}"' in page
    assert client.get(CREATE_URL).status_code == 200


def test_any_signed_in_user_creates_a_private_collection_and_owns_it(client, stranger, owner):
    client.force_login(stranger)
    response = client.post(
        CREATE_URL, {"title": "Études côtières", "description": "Coastal press, 1990s."}
    )
    collection = Collection.objects.get(title="Études côtières")
    assert response.status_code == 302
    assert response["Location"] == collection.get_absolute_url()
    assert collection.slug == "etudes-cotieres"
    assert collection.owner == stranger
    assert not collection.is_public
    assert collection.description == "Coastal press, 1990s."
    assert roles(collection) == {"sam": "owner"}
    assert "“Études côtières” is created, and you are its owner." in flash(response)[0]
    page = client.get(collection.get_absolute_url()).content.decode()
    assert "Private collection" in page
    # Nobody else sees a private collection.
    client.force_login(owner)
    assert client.get(collection.get_absolute_url()).status_code == 404
    assert "Études côtières" not in client.get(reverse("archive:collection_list")).content.decode()


def test_a_public_collection_is_read_by_visitors(client, stranger):
    client.force_login(stranger)
    client.post(CREATE_URL, {"title": "Open press", "is_public": "on"})
    collection = Collection.objects.get(title="Open press")
    assert collection.is_public
    client.logout()
    assert client.get(collection.get_absolute_url()).status_code == 200


def test_slugs_are_unique_and_never_shadow_the_create_page(client, stranger, collection):
    client.force_login(stranger)
    for title in ["Field notes", "Field notes", "New", "!!!"]:
        assert client.post(CREATE_URL, {"title": title}).status_code == 302
    slugs = set(Collection.objects.filter(owner=stranger).values_list("slug", flat=True))
    assert slugs == {"field-notes-2", "field-notes-3", "new-2", "collection"}


def test_a_collection_needs_a_title(client, stranger):
    client.force_login(stranger)
    response = client.post(CREATE_URL, {"title": "  ", "description": "x"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Collection.objects.filter(owner=stranger).exists()


def test_visitor_is_sent_to_log_in_and_creates_nothing(client):
    for response in (client.get(CREATE_URL), client.post(CREATE_URL, {"title": "Spam"})):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    assert not Collection.objects.exists()
    page = client.get(reverse("archive:collection_list")).content.decode()
    assert CREATE_URL not in page


def test_creating_needs_the_csrf_token(stranger):
    response = csrf_client(stranger).post(CREATE_URL, {"title": "Forged"})
    assert response.status_code == 403
    assert not Collection.objects.exists()


def test_creating_is_recorded(client, stranger):
    client.force_login(stranger)
    client.post(CREATE_URL, {"title": "Logged"})
    event = CollectionEvent.objects.get(collection__title="Logged")
    assert (event.kind, event.actor) == ("created", stranger)
