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


# --- Who reaches the team pages --------------------------------------------------------------


def team_requests(slug: str) -> list[tuple[str, str, dict]]:
    """Every way into a collection's team: (method, URL, data). Extended as features land."""
    return [
        ("get", reverse("accounts:members", args=[slug]), {}),
        ("post", reverse("accounts:member_add", args=[slug]), {"username": "sam", "role": "owner"}),
        ("post", reverse("accounts:member_role", args=[slug, "maya"]), {"role": "owner"}),
        ("post", reverse("accounts:member_remove", args=[slug, "olive"]), {}),
    ]


def _send(client: Client, method: str, url: str, data: dict):
    return getattr(client, method)(url, data)


@pytest.fixture
def public_collection(collection):
    collection.is_public = True
    collection.save()
    return collection


@pytest.mark.parametrize("who", ["stranger", "member"])
@pytest.mark.parametrize("visibility", ["private", "public"])
def test_only_owners_reach_the_team_pages_and_others_learn_nothing(
    client, request, collection, stranger, who, visibility
):
    if visibility == "public":
        collection.is_public = True
        collection.save()
    client.force_login(request.getfixturevalue(who))
    before = (roles(collection), CollectionEvent.objects.count())
    for method, url, data in team_requests(collection.slug):
        response = _send(client, method, url, data)
        missing = _send(client, method, url.replace("/field-notes/", "/no-such-thing/"), data)
        assert response.status_code == missing.status_code == 404, url
    collection.refresh_from_db()
    assert (roles(collection), CollectionEvent.objects.count()) == before
    assert collection.owner.username == "olive"


def test_visitors_are_sent_to_log_in_for_every_team_page(client, public_collection):
    for method, url, data in team_requests(public_collection.slug):
        response = _send(client, method, url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next=")
    assert roles(public_collection) == {"olive": "owner", "maya": "annotator"}


def test_every_team_change_needs_the_csrf_token(owner, collection, stranger):
    client = csrf_client(owner)
    for method, url, data in team_requests(collection.slug):
        if method == "post":
            assert client.post(url, data).status_code == 403, url
    assert roles(collection) == {"olive": "owner", "maya": "annotator"}


def test_get_on_every_team_change_is_405(client, owner, collection):
    client.force_login(owner)
    for method, url, _data in team_requests(collection.slug):
        if method == "post":
            assert client.get(url).status_code == 405, url


def test_a_curator_reaches_the_team_pages_of_any_collection(client, curator, collection):
    client.force_login(curator)
    assert client.get(reverse("accounts:members", args=[collection.slug])).status_code == 200


# --- History ---------------------------------------------------------------------------------


def test_the_owner_sees_who_changed_the_team_and_when(client, owner, member, stranger):
    client.force_login(owner)
    client.post(CREATE_URL, {"title": "Harbour"})
    collection = Collection.objects.get(title="Harbour")
    members_url = reverse("accounts:members", args=[collection.slug])
    client.post(
        reverse("accounts:member_add", args=[collection.slug]),
        {"username": "maya", "role": "viewer"},
    )
    client.post(reverse("accounts:member_role", args=[collection.slug, "maya"]), {"role": "owner"})
    client.post(
        reverse("accounts:member_add", args=[collection.slug]),
        {"username": "sam", "role": "annotator"},
    )
    client.post(reverse("accounts:member_remove", args=[collection.slug, "sam"]))
    client.post(
        reverse("accounts:member_role", args=[collection.slug, "olive"]), {"role": "editor"}
    )
    client.force_login(member)
    page = client.get(members_url).content.decode()
    history = page[page.index('id="history"') :]
    sentences = [
        "olive made maya the collection’s owner in place of olive.",
        "olive changed olive’s role from owner to editor.",
        "olive removed sam (annotator).",
        "olive added sam as annotator.",
        "olive changed maya’s role from viewer to owner.",
        "olive added maya as viewer.",
        "olive created the collection.",
    ]
    positions = [history.index(s) for s in sentences]
    assert positions == sorted(positions)  # newest first
    # Olive, no longer an owner, no longer reaches the page.
    client.force_login(owner)
    assert client.get(members_url).status_code == 404


def test_changes_on_the_command_line_are_recorded_as_a_curators(
    client, owner, collection, stranger
):
    from django.core.management import call_command

    call_command("add_member", "field-notes", "sam", "--role", "viewer")
    client.force_login(owner)
    page = client.get(reverse("accounts:members", args=[collection.slug])).content.decode()
    assert "A curator added sam as viewer." in page


def test_members_page_reads_a_fixed_number_of_queries(
    client, owner, collection, django_user_model, django_assert_num_queries
):
    url = reverse("accounts:members", args=[collection.slug])
    client.force_login(owner)

    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    collection.add_member(django_user_model.objects.create_user("first", "", "x"), "viewer")
    few = count()
    for i in range(40):
        user = django_user_model.objects.create_user(f"reader{i}", f"r{i}@example.org", "x")
        collection.add_member(user, "viewer", actor=owner)
        collection.change_role(user, "editor", actor=user)
    with django_assert_num_queries(few):
        response = client.get(url)
    assert response.content.decode().count("data-username=") == 43
