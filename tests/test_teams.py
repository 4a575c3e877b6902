"""Teams from the interface: creating collections, members, invitations, ownership, history."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from archive.models import Collection, CollectionEvent, Invitation, Membership

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
        ("post", reverse("accounts:invitation_create", args=[slug]), INVITATION_FORM),
        ("post", reverse("accounts:invitation_revoke", args=[slug, REVOKE_UUID]), {}),
        (
            "post",
            reverse("accounts:collection_transfer", args=[slug]),
            {"new_owner": "maya", "previous_owner_role": "viewer"},
        ),
        ("post", reverse("accounts:collection_archive", args=[slug]), {}),
        ("post", reverse("accounts:collection_reopen", args=[slug]), {}),
        ("post", reverse("accounts:collection_delete", args=[slug]), {"confirm": slug}),
    ]


INVITATION_FORM = {"role": "owner", "valid_for": "7", "max_uses": "5"}
REVOKE_UUID = "6f1c1f9e-5d2a-4a53-9a8e-111111111111"


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
    client, request, collection, stranger, owner, who, visibility
):
    if visibility == "public":
        collection.is_public = True
        collection.save()
    invitation, _key = Invitation.issue(
        collection, role="viewer", created_by=owner, valid_for=timedelta(days=1)
    )
    Invitation.objects.filter(pk=invitation.pk).update(uuid=REVOKE_UUID)
    client.force_login(request.getfixturevalue(who))
    before = (roles(collection), CollectionEvent.objects.count(), Invitation.objects.count())
    for method, url, data in team_requests(collection.slug):
        response = _send(client, method, url, data)
        missing = _send(client, method, url.replace("/field-notes/", "/no-such-thing/"), data)
        assert response.status_code == missing.status_code == 404, url
    collection.refresh_from_db()
    assert (
        roles(collection),
        CollectionEvent.objects.count(),
        Invitation.objects.count(),
    ) == before
    assert Invitation.objects.get().revoked_at is None
    assert collection.owner.username == "olive"
    assert collection.archived_at is None


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


# --- Invitation links ------------------------------------------------------------------------


def join_url(key: str) -> str:
    return reverse("accounts:join", args=[key])


def invite(collection, owner, role="annotator", days=7, uses=1, email="") -> str:
    _invitation, key = Invitation.issue(
        collection,
        role=role,
        created_by=owner,
        valid_for=timedelta(days=days),
        max_uses=uses,
        email=email,
    )
    return key


def test_owner_makes_a_link_shown_once_and_stored_only_as_its_hash(client, owner, collection):
    client.force_login(owner)
    url = reverse("accounts:invitation_create", args=[collection.slug])
    response = client.post(url, {"role": "viewer", "valid_for": "30", "max_uses": "3"})
    assert response.status_code == 302
    assert response["Location"].endswith("/members/#invitations")
    page = client.get(response["Location"]).content.decode()
    found = re.search(r'id="new-invitation-link" type="text" readonly value="([^"]+)"', page)
    assert found is not None
    link = found[1]
    key = link.rsplit("/", 2)[-2]
    assert link == "http://testserver" + join_url(key)
    invitation = Invitation.objects.get()
    assert (invitation.role, invitation.max_uses, invitation.uses) == ("viewer", 3, 0)
    assert invitation.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = [str(getattr(invitation, f.attname)) for f in Invitation._meta.concrete_fields]
    assert not any(key in value for value in stored)
    assert f"{invitation.prefix}…" in page and "0 of 3" in page
    # Not shown again.
    assert key not in client.get(response["Location"]).content.decode()
    assert "made invitation link" in page


def test_a_bad_invitation_form_says_what_is_wrong(client, owner, collection):
    client.force_login(owner)
    url = reverse("accounts:invitation_create", args=[collection.slug])
    response = client.post(url, {"role": "viewer", "valid_for": "3650", "max_uses": "0"})
    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 1." in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_signed_in_user_joins_through_a_link(client, owner, collection, stranger):
    key = invite(collection, owner, role="annotator", uses=2)
    client.force_login(stranger)
    page = client.get(join_url(key))
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "strict-origin"
    html = page.content.decode()
    assert "Join “Field notes”" in html and "olive invites you" in html
    assert "Join as sam" in html
    response = client.post(join_url(key))
    assert response.status_code == 302
    assert response["Location"] == collection.get_absolute_url()
    assert "You joined “Field notes” as annotator." in flash(response)
    assert roles(collection)["sam"] == "annotator"
    assert Invitation.objects.get().uses == 1
    # Opening it again spends nothing.
    again = client.post(join_url(key))
    assert "You already belong to this collection, as annotator." in again.content.decode()
    assert Invitation.objects.get().uses == 1
    client.force_login(owner)
    page = client.get(reverse("accounts:members", args=[collection.slug])).content.decode()
    assert re.search(r"sam joined as annotator through invitation link \S+… \(as annotator", page)


def test_someone_without_an_account_signs_up_through_a_link_with_registration_off(
    client, owner, collection, settings, django_user_model
):
    settings.SCHOLION_SELF_REGISTRATION = False
    assert client.get(reverse("accounts:register")).status_code == 404
    key = invite(collection, owner, role="viewer")
    page = client.get(join_url(key)).content.decode()
    assert "Log in to join" in page and f"?next={join_url(key)}" in page
    form = {
        "username": "newcomer",
        "email": "newcomer@example.org",
        "password1": "a-long-pass-phrase-42",
        "password2": "a-long-pass-phrase-42",
    }
    response = client.post(join_url(key), form)
    assert response.status_code == 302
    assert response["Location"] == collection.get_absolute_url()
    assert "Welcome, newcomer. You joined “Field notes” as viewer." in flash(response)
    assert roles(collection)["newcomer"] == "viewer"
    assert client.get(collection.get_absolute_url()).status_code == 200  # logged in
    # Used up: the next person is told so, and learns nothing of the collection.
    client.logout()
    closed = client.post(join_url(key), {**form, "username": "second", "email": "s@example.org"})
    assert closed.status_code == 410
    assert "already been used as many times as it allows" in closed.content.decode()
    assert "Field notes" not in closed.content.decode()
    assert not django_user_model.objects.filter(username="second").exists()


def test_a_sign_up_with_mistakes_makes_no_account_and_spends_nothing(
    client, owner, collection, django_user_model
):
    key = invite(collection, owner)
    response = client.post(
        join_url(key),
        {"username": "x", "email": "olive@example.org", "password1": "a", "password2": "b"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "didn’t match" in page or "didn't match" in page
    # Another account's address is not refused, nor named as taken.
    assert "already" not in page
    assert not django_user_model.objects.filter(username="x").exists()
    assert Invitation.objects.get().uses == 0


@pytest.mark.parametrize(
    ("close", "words"),
    [
        ("revoke", "This invitation link has been withdrawn by the person who made it."),
        ("expire", "This invitation link expired on"),
        ("use", "already been used as many times as it allows"),
    ],
)
def test_closed_links_say_why_without_naming_the_collection(
    client, owner, collection, member, stranger, close, words
):
    key = invite(collection, owner)
    invitation = Invitation.objects.get()
    if close == "revoke":
        client.force_login(owner)
        client.post(reverse("accounts:invitation_revoke", args=[collection.slug, invitation.uuid]))
        assert Invitation.objects.get().revoked_at is not None
    elif close == "expire":
        Invitation.objects.update(expires_at=invitation.created_at - timedelta(seconds=1))
    else:
        Invitation.objects.update(uses=1)
    for who in (None, stranger):
        client.logout()
        if who:
            client.force_login(who)
        for response in (client.get(join_url(key)), client.post(join_url(key))):
            html = response.content.decode()
            assert response.status_code == 410
            assert words in html and "Ask whoever sent it for a new one." in html
            assert "Field notes" not in html and "olive" not in html
    assert "sam" not in roles(collection)


def test_revoking_is_recorded_and_the_link_leaves_the_list(client, owner, collection):
    invite(collection, owner)
    invitation = Invitation.objects.get()
    client.force_login(owner)
    url = reverse("accounts:invitation_revoke", args=[collection.slug, invitation.uuid])
    response = client.post(url)
    assert f"Invitation link {invitation.prefix}… is revoked." in flash(response)
    page = client.get(reverse("accounts:members", args=[collection.slug])).content.decode()
    assert "No invitation links are open." in page
    assert f"olive revoked invitation link {invitation.prefix}…" in page


def test_an_invitation_of_another_collection_cannot_be_revoked_from_this_one(
    client, owner, collection
):
    other = Collection.create_owned_by(owner, title="Other")
    invite(other, owner)
    invitation = Invitation.objects.get()
    client.force_login(owner)
    url = reverse("accounts:invitation_revoke", args=[collection.slug, invitation.uuid])
    assert client.post(url).status_code == 404
    assert Invitation.objects.get().revoked_at is None


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        "x" * 43,
        # The right selector with the wrong rest: compared in constant time, still refused.
        "SELECTOR" + "A" * 35,
    ],
)
def test_a_wrong_key_is_404_and_names_nothing(client, owner, collection, stranger, key):
    real = invite(collection, owner)
    if key.startswith("SELECTOR"):
        key = real[:12] + ("A" if real[12] != "A" else "B") + real[13:]
    client.force_login(stranger)
    for response in (client.get(join_url(key)), client.post(join_url(key))):
        assert response.status_code == 404
        assert "This invitation link is not valid." in response.content.decode()
        assert "Field notes" not in response.content.decode()
    assert "sam" not in roles(collection)


def test_joining_needs_the_csrf_token(owner, collection, stranger):
    key = invite(collection, owner)
    assert csrf_client(stranger).post(join_url(key)).status_code == 403
    visitor = Client(enforce_csrf_checks=True)
    form = {
        "username": "forged",
        "email": "f@example.org",
        "password1": "p-42-long-x",
        "password2": "p-42-long-x",
    }
    assert visitor.post(join_url(key), form).status_code == 403
    assert set(roles(collection)) == {"olive", "maya"}
    assert Invitation.objects.get().uses == 0


def test_an_emailed_invitation_is_accepted_once_from_the_mail(
    client, owner, collection, mailoutbox, django_user_model
):
    client.force_login(owner)
    client.post(
        reverse("accounts:member_add", args=[collection.slug]),
        {"username": "ruth@uni.example", "role": "editor"},
    )
    mail = mailoutbox[0]
    assert mail.subject == "An invitation to join “Field notes” on Scholion"
    assert (
        "olive invites you to join the collection “Field notes” on Scholion as editor." in mail.body
    )
    found = re.search(r"http://testserver(/join/\S+/)", mail.body)
    assert found is not None
    link = found[1]
    page = client.get(reverse("accounts:members", args=[collection.slug])).content.decode()
    assert "e-mailed to ruth@uni.example" in page
    assert "olive made an invitation e-mailed to ruth@uni.example (as editor)." in page
    client.logout()
    page = client.get(link).content.decode()
    assert 'value="ruth@uni.example"' in page
    response = client.post(
        link,
        {
            "username": "ruth",
            "email": "ruth@uni.example",
            "password1": "a-long-pass-phrase-42",
            "password2": "a-long-pass-phrase-42",
        },
    )
    assert response.status_code == 302
    assert roles(collection)["ruth"] == "editor"
    client.logout()
    assert client.get(link).status_code == 410


def test_owners_can_email_only_so_many_invitations_a_day(client, owner, collection, mailoutbox):
    from archive.models import INVITATIONS_EMAILED_PER_DAY

    client.force_login(owner)
    url = reverse("accounts:member_add", args=[collection.slug])
    for i in range(INVITATIONS_EMAILED_PER_DAY):
        assert (
            client.post(url, {"username": f"p{i}@x.example", "role": "viewer"}).status_code == 302
        )
    response = client.post(url, {"username": "one.more@x.example", "role": "viewer"})
    assert response.status_code == 400
    assert "send more tomorrow" in response.content.decode()
    assert len(mailoutbox) == INVITATIONS_EMAILED_PER_DAY


def test_the_last_use_goes_to_one_person_only(owner, collection, stranger, member):
    from archive.models import InvitationClosed

    invite(collection, owner, uses=1)
    invitation = Invitation.objects.get()
    stale = Invitation.objects.get()  # as a second request read it, before the first joined
    invitation.accept(stranger)
    with pytest.raises(InvitationClosed):
        stale.accept(owner.__class__.objects.create_user("late", "", "x"))
    assert Invitation.objects.get().uses == 1


# --- Curators in the admin -------------------------------------------------------------------


def test_curators_see_invitations_and_history_in_the_admin_and_revoke_there(
    client, curator, owner, collection
):
    invite(collection, owner)
    invitation = Invitation.objects.get()
    client.force_login(curator)
    assert client.get("/admin/archive/invitation/").status_code == 200
    assert client.get(f"/admin/archive/invitation/{invitation.pk}/change/").status_code == 200
    page = client.get("/admin/archive/collectionevent/").content.decode()
    assert "olive made invitation link" in page
    response = client.post(
        "/admin/archive/invitation/",
        {"action": "revoke", "_selected_action": [invitation.pk]},
    )
    assert response.status_code == 302
    assert Invitation.objects.get().revoked_at is not None
    assert CollectionEvent.objects.filter(kind="invitation_revoked", actor=curator).exists()


def test_membership_changes_in_the_admin_join_the_history(
    client, curator, owner, member, collection, stranger
):
    client.force_login(curator)
    maya = Membership.objects.get(collection=collection, user=member)
    olive = Membership.objects.get(collection=collection, user=owner)
    data = {
        "slug": collection.slug,
        "title": collection.title,
        "description": "",
        "owner": owner.pk,
        "memberships-TOTAL_FORMS": "3",
        "memberships-INITIAL_FORMS": "2",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": olive.pk,
        "memberships-0-collection": collection.pk,
        "memberships-0-user": owner.pk,
        "memberships-0-role": "owner",
        "memberships-1-id": maya.pk,
        "memberships-1-collection": collection.pk,
        "memberships-1-user": member.pk,
        "memberships-1-role": "editor",
        "memberships-2-collection": collection.pk,
        "memberships-2-user": stranger.pk,
        "memberships-2-role": "viewer",
    }
    response = client.post(f"/admin/archive/collection/{collection.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert roles(collection) == {"olive": "owner", "maya": "editor", "sam": "viewer"}
    sentences = {e.sentence for e in CollectionEvent.objects.for_history()}
    assert sentences == {
        "cora added sam as viewer.",
        "cora changed maya’s role from annotator to editor.",
    }


# --- Ownership, archiving, deleting ----------------------------------------------------------


def test_owner_hands_the_collection_to_a_member(client, owner, member, collection):
    client.force_login(owner)
    url = reverse("accounts:collection_transfer", args=[collection.slug])
    response = client.post(url, {"new_owner": "maya", "previous_owner_role": "annotator"})
    assert response.status_code == 302
    assert "maya now owns “Field notes”." in flash(response)
    collection.refresh_from_db()
    assert collection.owner == member
    assert roles(collection) == {"olive": "annotator", "maya": "owner"}
    # Olive no longer manages the team: back to the collection's page, and the members page is
    # now 404 to her; Maya sees the transfer in the history.
    assert response["Location"] == collection.get_absolute_url()
    assert client.get(reverse("accounts:members", args=[collection.slug])).status_code == 404
    client.force_login(member)
    page = client.get(reverse("accounts:members", args=[collection.slug])).content.decode()
    assert (
        "olive made maya the collection’s owner in place of olive, who stays as annotator." in page
    )


def test_ownership_goes_only_to_a_member(client, owner, collection, stranger):
    client.force_login(owner)
    url = reverse("accounts:collection_transfer", args=[collection.slug])
    response = client.post(url, {"new_owner": "sam", "previous_owner_role": "editor"})
    assert response.status_code == 400
    assert (
        "Select a valid choice. sam is not one of the available choices."
        in response.content.decode()
    )
    collection.refresh_from_db()
    assert collection.owner == owner and "sam" not in roles(collection)


def test_owner_archives_and_reopens_and_members_cannot_annotate_meanwhile(
    client, owner, member, collection, demo_source
):
    from annotations.models import Annotation

    assert Annotation.can_annotate(member, demo_source)
    client.force_login(owner)
    response = client.post(reverse("accounts:collection_archive", args=[collection.slug]))
    assert response.status_code == 302
    collection.refresh_from_db()
    assert collection.archived_at is not None
    assert not Annotation.can_annotate(member, demo_source)
    assert not Collection.objects.writable_by(owner).filter(pk=collection.pk).exists()
    page = client.get(collection.get_absolute_url()).content.decode()
    assert "closed to new annotations" in page
    # The reading page offers no editor to the member.
    client.force_login(member)
    assert client.get(collection.get_absolute_url()).status_code == 200
    client.force_login(owner)
    client.post(reverse("accounts:collection_reopen", args=[collection.slug]))
    collection.refresh_from_db()
    assert collection.archived_at is None
    assert Annotation.can_annotate(member, demo_source)
    kinds = list(CollectionEvent.objects.values_list("kind", flat=True))
    assert kinds[:2] == ["reopened", "archived"]


def test_an_archived_collection_refuses_new_annotations_through_the_api(
    client, member, collection, demo_source
):
    import json

    collection.set_archived(True)
    client.force_login(member)
    doc = {
        "type": "Annotation",
        "target": {
            "source": f"http://testserver/sources/{demo_source.uuid}/",
            "selector": [{"type": "TextPositionSelector", "start": 0, "end": 4}],
        },
    }
    response = client.post("/api/annotations/", json.dumps(doc), content_type="application/json")
    assert response.status_code == 403


def test_owner_deletes_an_empty_collection_after_typing_its_name(client, owner, collection):
    invite(collection, owner)
    client.force_login(owner)
    url = reverse("accounts:collection_delete", args=[collection.slug])
    wrong = client.post(url, {"confirm": "field"})
    assert wrong.status_code == 400
    assert (
        "Type “field-notes” to delete the collection; nothing was deleted."
        in wrong.content.decode()
    )
    assert Collection.objects.filter(pk=collection.pk).exists()
    response = client.post(url, {"confirm": "field-notes"})
    assert response.status_code == 302
    assert response["Location"] == reverse("archive:collection_list")
    assert "“Field notes” is deleted." in flash(response)
    assert not Collection.objects.exists()
    assert not Invitation.objects.exists() and not Membership.objects.exists()


def test_a_collection_with_sources_is_not_deleted(client, owner, collection, demo_source):
    client.force_login(owner)
    page = client.get(reverse("accounts:members", args=[collection.slug])).content.decode()
    assert "Only an empty collection can be deleted" in page
    url = reverse("accounts:collection_delete", args=[collection.slug])
    response = client.post(url, {"confirm": "field-notes"})
    assert (
        "“Field notes” holds 1 source: only an empty collection can be deleted."
        in flash(response)[0]
    )
    assert Collection.objects.filter(pk=collection.pk).exists()


def test_a_collection_whose_annotations_remain_is_not_deleted(owner, collection, demo_source):
    from annotations.models import Annotation
    from archive.models import MembershipError

    Annotation.create_anchored(author=owner, source=demo_source, start=0, end=4)
    collection.sources.clear()
    with pytest.raises(MembershipError, match="Annotations still belong to “Field notes”"):
        collection.delete_if_empty()
    assert Collection.objects.filter(pk=collection.pk).exists()


# --- Leaving ---------------------------------------------------------------------------------


def test_leaving_is_for_members_only_and_needs_the_csrf_token(client, collection, member, stranger):
    url = reverse("accounts:collection_leave", args=[collection.slug])
    # A visitor is sent to log in; a stranger to a private collection gets its 404.
    response = client.post(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(stranger)
    assert client.post(url).status_code == 404
    assert csrf_client(member).post(url).status_code == 403
    assert roles(collection) == {"olive": "owner", "maya": "annotator"}
    client.force_login(member)
    response = client.post(url)
    assert response["Location"] == reverse("archive:collection_list")
    assert roles(collection) == {"olive": "owner"}
    event = CollectionEvent.objects.get()
    assert event.sentence == "maya left the collection (annotator)."


def test_a_stranger_cannot_leave_a_public_collection_they_never_joined(
    client, stranger, public_collection
):
    client.force_login(stranger)
    response = client.post(reverse("accounts:collection_leave", args=[public_collection.slug]))
    assert response.status_code == 302
    assert "You are not a member of “Field notes”." in flash(response)
    assert not CollectionEvent.objects.exists()


def test_a_link_closing_while_the_form_is_sent_makes_no_account(
    client, owner, collection, django_user_model, monkeypatch
):
    from archive.models import InvitationClosed

    key = invite(collection, owner)

    def closed_meanwhile(self, user):
        raise InvitationClosed("This invitation link has been withdrawn by the person who made it.")

    monkeypatch.setattr(Invitation, "accept", closed_meanwhile)
    form = {
        "username": "late",
        "email": "late@example.org",
        "password1": "a-long-pass-phrase-42",
        "password2": "a-long-pass-phrase-42",
    }
    response = client.post(join_url(key), form)
    assert response.status_code == 410
    assert not django_user_model.objects.filter(username="late").exists()
    assert "_auth_user_id" not in client.session
