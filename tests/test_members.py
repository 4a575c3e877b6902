from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from archive.models import Collection, Membership

pytestmark = pytest.mark.django_db


def members_url(collection: Collection) -> str:
    return reverse("accounts:members", args=[collection.slug])


def role_url(collection: Collection, username: str) -> str:
    return reverse("accounts:member_role", args=[collection.slug, username])


def remove_url(collection: Collection, username: str) -> str:
    return reverse("accounts:member_remove", args=[collection.slug, username])


def leave_url(collection: Collection) -> str:
    return reverse("accounts:collection_leave", args=[collection.slug])


def add_url(collection: Collection) -> str:
    return reverse("accounts:member_add", args=[collection.slug])


def roles(collection: Collection) -> dict[str, str]:
    return {
        m.user.username: m.role
        for m in Membership.objects.filter(collection=collection).select_related("user")
    }


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def public_collection(owner):
    c = Collection.objects.create(
        slug="open-notes", title="Open notes", owner=owner, is_public=True
    )
    Membership.objects.create(collection=c, user=owner, role=Membership.Role.OWNER)
    return c


# --- Seeing the member list ------------------------------------------------------------------


def test_owner_sees_every_member_with_role_and_controls(client, owner, collection):
    client.force_login(owner)
    response = client.get(members_url(collection))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-username="olive"' in html and 'data-username="maya"' in html
    assert "Add a member" in html
    assert "Remove maya" in html


def test_member_who_is_not_an_owner_gets_404_and_leaves_from_the_collection_page(
    client, member, collection
):
    client.force_login(member)
    assert client.get(members_url(collection)).status_code == 404
    page = client.get(collection.get_absolute_url()).content.decode()
    assert members_url(collection) not in page
    assert f'action="{leave_url(collection)}"' in page and "Leave collection" in page


def test_stranger_gets_404_for_members_of_private_collection(client, stranger, collection):
    client.force_login(stranger)
    assert client.get(members_url(collection)).status_code == 404
    response = client.post(add_url(collection), {"username": "sam", "role": "owner"})
    assert response.status_code == 404
    assert "sam" not in roles(collection)


def test_stranger_gets_404_for_members_of_public_collection(client, stranger, public_collection):
    client.force_login(stranger)
    assert client.get(members_url(public_collection)).status_code == 404
    response = client.post(add_url(public_collection), {"username": "sam", "role": "owner"})
    assert response.status_code == 404
    assert "sam" not in roles(public_collection)


def test_visitor_is_sent_to_log_in(client, public_collection):
    response = client.get(members_url(public_collection))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_unknown_collection_is_404(client, owner):
    client.force_login(owner)
    assert client.get("/collections/no-such-thing/members/").status_code == 404


def test_curator_sees_and_manages_any_collection(client, curator, stranger, collection):
    client.force_login(curator)
    assert client.get(members_url(collection)).status_code == 200
    client.post(add_url(collection), {"username": "sam", "role": "viewer"})
    assert roles(collection)["sam"] == "viewer"


def test_collection_page_links_members_for_owners_only(client, owner, stranger, public_collection):
    client.force_login(owner)
    page = client.get(public_collection.get_absolute_url()).content.decode()
    assert f'href="{members_url(public_collection)}"' in page
    client.force_login(stranger)
    page = client.get(public_collection.get_absolute_url()).content.decode()
    assert members_url(public_collection) not in page
    assert leave_url(public_collection) not in page


def test_member_list_query_count_does_not_grow_with_members(
    client, owner, collection, django_user_model, django_assert_max_num_queries
):
    client.force_login(owner)
    client.get(members_url(collection))  # warm the session
    for i in range(30):
        user = django_user_model.objects.create_user(f"reader{i}", f"r{i}@example.org", "x")
        collection.add_member(user, "viewer", actor=owner)
        collection.change_role(user, "annotator", actor=owner)
    with django_assert_max_num_queries(8):
        response = client.get(members_url(collection))
    assert response.content.decode().count("data-username=") == 32


# --- Adding ----------------------------------------------------------------------------------


def test_owner_adds_an_existing_user_by_username(client, owner, stranger, collection):
    client.force_login(owner)
    response = client.post(add_url(collection), {"username": "sam", "role": "editor"})
    assert response.status_code == 302
    assert response["Location"] == members_url(collection)
    assert roles(collection)["sam"] == "editor"
    assert "sam joined “Field notes” as editor." in flash(response)


def test_adding_an_unknown_user_says_so(client, owner, collection):
    client.force_login(owner)
    response = client.post(add_url(collection), {"username": "nobody", "role": "viewer"})
    assert response.status_code == 400
    assert "No account has the username “nobody”" in response.content.decode()
    assert set(roles(collection)) == {"olive", "maya"}


def without_csrf_tokens(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


@pytest.mark.parametrize("typed", ["ruth.keller@uni.example", "RUTH.KELLER@Uni.Example"])
def test_adding_by_email_sends_an_invitation_and_reveals_nothing_about_accounts(
    client, owner, collection, django_user_model, mailoutbox, typed
):
    django_user_model.objects.create_user("rk1987", "ruth.keller@uni.example", "pw")
    client.force_login(owner)
    known = client.post(add_url(collection), {"username": typed, "role": "viewer"})
    unknown = client.post(
        add_url(collection), {"username": "nobody.known@uni.example", "role": "viewer"}
    )
    assert known.status_code == unknown.status_code == 302
    said = flash(known)[0]
    assert said == (
        f"An invitation to join as viewer was e-mailed to {typed}. "
        "They appear among the members once they accept it."
    )
    # (Not yet shown, the first message is still there beside the second.)
    assert flash(unknown) == [said, said.replace(typed, "nobody.known@uni.example")]
    # Word for word the same page, but for the address typed.
    pages = [client.get(members_url(collection)).content.decode()]
    assert "rk1987" not in pages[0]
    # Nobody joins until they accept.
    assert set(roles(collection)) == {"olive", "maya"}
    assert [m.to for m in mailoutbox] == [[typed], ["nobody.known@uni.example"]]
    assert "rk1987" not in mailoutbox[0].body


def test_a_username_that_is_an_email_address_is_added_like_any_other(
    client, owner, collection, django_user_model
):
    django_user_model.objects.create_user("ada@lovelace.example", "ada@elsewhere.example", "pw")
    client.force_login(owner)
    response = client.post(
        add_url(collection), {"username": "ada@lovelace.example", "role": "viewer"}
    )
    assert response.status_code == 302
    assert roles(collection)["ada@lovelace.example"] == "viewer"


def test_the_add_form_asks_for_a_username_or_an_address(client, owner, collection):
    client.force_login(owner)
    page = client.get(members_url(collection)).content.decode()
    assert '<label for="id_username">Username or e-mail address</label>' in page
    assert "never says whether an account uses the address" in page


def test_adding_an_existing_member_says_to_change_the_role(client, owner, collection):
    client.force_login(owner)
    response = client.post(add_url(collection), {"username": "maya", "role": "editor"})
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert roles(collection)["maya"] == "annotator"


def test_adding_with_a_role_that_does_not_exist_is_refused(client, owner, stranger, collection):
    client.force_login(owner)
    response = client.post(add_url(collection), {"username": "sam", "role": "emperor"})
    assert response.status_code == 400
    assert "sam" not in roles(collection)


def test_annotator_cannot_add_members(client, member, stranger, collection):
    client.force_login(member)
    response = client.post(add_url(collection), {"username": "sam", "role": "viewer"})
    assert response.status_code == 404
    assert "sam" not in roles(collection)


def test_get_on_change_urls_is_405(client, owner, collection):
    client.force_login(owner)
    assert client.get(add_url(collection)).status_code == 405
    assert client.get(role_url(collection, "maya")).status_code == 405
    assert client.get(remove_url(collection, "maya")).status_code == 405


# --- Roles -----------------------------------------------------------------------------------


def test_owner_changes_a_members_role(client, owner, collection):
    client.force_login(owner)
    response = client.post(role_url(collection, "maya"), {"role": "editor"})
    assert response.status_code == 302
    assert roles(collection)["maya"] == "editor"
    collection.refresh_from_db()
    assert collection.role_of(collection.memberships.get(user__username="maya").user) == "editor"


def test_annotator_cannot_change_roles(client, member, collection):
    client.force_login(member)
    response = client.post(role_url(collection, "maya"), {"role": "owner"})
    assert response.status_code == 404
    assert roles(collection)["maya"] == "annotator"


def test_an_unknown_role_is_refused_with_a_message(client, owner, collection):
    client.force_login(owner)
    response = client.post(role_url(collection, "maya"), {"role": "emperor"})
    assert response.status_code == 302
    assert "Choose one of the roles listed." in flash(response)
    assert roles(collection)["maya"] == "annotator"


def test_changing_the_role_of_a_non_member_says_so(client, owner, stranger, collection):
    client.force_login(owner)
    response = client.post(role_url(collection, "sam"), {"role": "viewer"})
    assert "sam is not a member of “Field notes”." in flash(response)
    assert "sam" not in roles(collection)


def test_last_owner_cannot_demote_themself(client, owner, collection):
    client.force_login(owner)
    response = client.post(role_url(collection, "olive"), {"role": "editor"})
    assert response.status_code == 302
    assert any("olive is the last owner" in m for m in flash(response))
    assert roles(collection)["olive"] == "owner"
    collection.refresh_from_db()
    assert collection.owner_id == owner.pk


def test_owner_of_record_steps_down_and_ownership_passes_on(client, owner, member, collection):
    client.force_login(owner)
    client.post(role_url(collection, "maya"), {"role": "owner"})
    response = client.post(role_url(collection, "olive"), {"role": "editor"})
    assert response.status_code == 302
    collection.refresh_from_db()
    assert collection.owner_id == member.pk
    assert collection.role_of(owner) == "editor"
    assert collection.role_of(member) == "owner"


# --- Removing --------------------------------------------------------------------------------


def test_owner_removes_a_member_who_then_loses_access(client, owner, member, collection):
    client.force_login(owner)
    response = client.post(remove_url(collection, "maya"))
    assert response.status_code == 302
    assert "maya" not in roles(collection)
    client.force_login(member)
    assert client.get(collection.get_absolute_url()).status_code == 404


def test_member_leaves_a_collection(client, member, collection):
    client.force_login(member)
    assert client.get(leave_url(collection)).status_code == 405
    response = client.post(leave_url(collection))
    assert response.status_code == 302
    assert response["Location"] == reverse("archive:collection_list")
    assert "maya" not in roles(collection)


def test_annotator_cannot_remove_someone_else(client, owner, member, collection):
    client.force_login(member)
    assert client.post(remove_url(collection, "olive")).status_code == 404
    assert roles(collection)["olive"] == "owner"


def test_last_owner_cannot_be_removed(client, owner, collection):
    client.force_login(owner)
    response = client.post(remove_url(collection, "olive"))
    assert response.status_code == 302
    assert (
        "olive is the last owner of “Field notes” and cannot be removed. "
        "Make another member an owner first." in flash(response)
    )
    assert roles(collection)["olive"] == "owner"


def test_last_owner_cannot_leave_either(client, owner, collection):
    client.force_login(owner)
    response = client.post(leave_url(collection))
    assert response["Location"] == collection.get_absolute_url()
    assert any("olive is the last owner" in m for m in flash(response))
    assert roles(collection)["olive"] == "owner"


def test_removing_an_unknown_user_is_404(client, owner, collection):
    client.force_login(owner)
    assert client.post(remove_url(collection, "ghost")).status_code == 404


# --- The add_member command ------------------------------------------------------------------


def test_add_member_command_adds_changes_and_removes(capsys, stranger, collection):
    call_command("add_member", "field-notes", "sam", "--role", "viewer")
    assert roles(collection)["sam"] == "viewer"
    call_command("add_member", "field-notes", "sam", "--role", "editor")
    assert roles(collection)["sam"] == "editor"
    call_command("add_member", "field-notes", "sam", "--remove")
    assert "sam" not in roles(collection)
    out = capsys.readouterr().out
    assert "Added sam to field-notes as viewer." in out
    assert "sam is now editor in field-notes." in out
    assert "Removed sam from field-notes." in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "sam", "--role", "viewer"], "No collection with slug 'nope'."),
        (["field-notes", "ghost", "--role", "viewer"], "No user named 'ghost'."),
        (["field-notes", "sam"], "Give either --role ROLE or --remove."),
        (["field-notes", "sam", "--role", "viewer", "--remove"], "Give either --role ROLE"),
        (["field-notes", "olive", "--remove"], "olive is the last owner"),
        (["field-notes", "olive", "--role", "viewer"], "olive is the last owner"),
        (["field-notes", "sam", "--remove"], "sam is not a member"),
    ],
)
def test_add_member_command_explains_what_is_wrong(stranger, collection, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("add_member", *args)
    assert roles(collection) == {"olive": "owner", "maya": "annotator"}


def test_add_member_command_refuses_an_unknown_role(stranger, collection):
    with pytest.raises(CommandError, match="invalid choice: 'emperor'"):
        call_command("add_member", "field-notes", "sam", "--role", "emperor")


def test_add_member_command_has_help():
    from accounts.management.commands.add_member import Command

    text = Command().create_parser("manage.py", "add_member").format_help()
    assert "--remove" in text and "viewer, annotator, editor, owner" in text
