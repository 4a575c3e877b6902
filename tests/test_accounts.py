from __future__ import annotations

import io
import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from annotations.models import Annotation
from archive.models import Collection, Membership
from tests.conftest import archive_text, login

pytestmark = pytest.mark.django_db

LOGIN_URL = "/accounts/login/"


def logged_in_as(client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


# --- Logging in and out ------------------------------------------------------------------


def test_login_page_offers_password_reset_and_explains_invitations(client):
    page = client.get(LOGIN_URL).content.decode()
    assert f'href="{reverse("password_reset")}"' in page
    assert "Accounts are by invitation" in page
    assert "/accounts/register/" not in page


def test_user_logs_in_with_the_form_and_logs_out(client, owner):
    response = client.post(LOGIN_URL, {"username": "olive", "password": "pw-olive-123"})
    assert response.status_code == 302
    assert logged_in_as(client) == owner.pk
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert logged_in_as(client) is None


def test_test_client_login_still_works_beside_the_lockout_backend(client, owner):
    assert client.login(username="olive", password="pw-olive-123")
    assert logged_in_as(client) == owner.pk


def test_header_links_the_account_pages(client, owner):
    client.force_login(owner)
    page = client.get("/sources/").content.decode()
    for url in ("/me/annotations/", "/settings/tokens/", reverse("password_change")):
        assert f'href="{url}"' in page
    assert "My annotations" in page and "API tokens" in page and "Change password" in page


def test_visitor_header_has_no_account_links(client):
    page = client.get("/sources/").content.decode()
    assert "/settings/tokens/" not in page and "Log in" in page


# --- Passwords ---------------------------------------------------------------------------


def test_password_change_needs_the_old_password(client, owner):
    client.force_login(owner)
    url = reverse("password_change")
    wrong = client.post(
        url,
        {
            "old_password": "nope",
            "new_password1": "a-better-pw-42",
            "new_password2": "a-better-pw-42",
        },
    )
    assert wrong.status_code == 200
    assert "Your old password was entered incorrectly" in wrong.content.decode()
    right = client.post(
        url,
        {
            "old_password": "pw-olive-123",
            "new_password1": "a-better-pw-42",
            "new_password2": "a-better-pw-42",
        },
    )
    assert right.status_code == 302 and right["Location"] == reverse("password_change_done")
    owner.refresh_from_db()
    assert owner.check_password("a-better-pw-42")
    assert "Password changed" in client.get(right["Location"]).content.decode()


def test_password_reset_mails_a_link_that_sets_a_new_password(client, owner, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "OLIVE@example.org"})
    assert response.status_code == 302
    assert "Check your e-mail" in client.get(response["Location"]).content.decode()
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["olive@example.org"]
    assert "Choose a password for Scholion" in mail.subject
    found = re.search(r"https?://testserver(/accounts/reset/\S+)", mail.body)
    assert found is not None
    link = found.group(1)
    set_page = client.get(link, follow=True)
    assert "Choose a password" in set_page.content.decode()
    form_url = set_page.redirect_chain[-1][0]
    done = client.post(
        form_url, {"new_password1": "fresh-pw-2024x", "new_password2": "fresh-pw-2024x"}
    )
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("fresh-pw-2024x")
    # The link works once.
    reused = client.get(link, follow=True).content.decode()
    assert "expired or has already been used" in reused


def test_password_reset_for_an_unknown_address_sends_nothing(client, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert response.status_code == 302
    assert mailoutbox == []


# --- create_account ----------------------------------------------------------------------


def test_create_account_prints_a_link_that_lets_the_user_choose_a_password(
    client, capsys, django_user_model
):
    call_command("create_account", "ines", "--email", "ines@example.org")
    out = capsys.readouterr().out
    assert "Created account ines <ines@example.org>." in out
    user = django_user_model.objects.get(username="ines")
    assert user.email == "ines@example.org" and not user.is_staff
    found = re.search(r"https?://[^/\s]+(/accounts/reset/\S+)", out)
    assert found is not None
    link = found.group(1)
    form = client.get(link, follow=True)
    assert "Set password" in form.content.decode()
    client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "ines-own-pw-77", "new_password2": "ines-own-pw-77"},
    )
    response = client.post(LOGIN_URL, {"username": "ines", "password": "ines-own-pw-77"})
    assert response.status_code == 302 and logged_in_as(client) == user.pk


def test_create_account_generates_a_password_on_request(client, capsys):
    call_command("create_account", "ines", "--email", "ines@example.org", "--generate-password")
    found = re.search(r"Password: (\S+)", capsys.readouterr().out)
    assert found is not None
    password = found.group(1)
    client.post(LOGIN_URL, {"username": "ines", "password": password})
    assert logged_in_as(client) is not None


def test_create_account_reads_a_password_from_stdin(client, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("correct-horse-42\n"))
    call_command("create_account", "ines", "--email", "ines@example.org", "--password-stdin")
    assert "correct-horse-42" not in capsys.readouterr().out
    client.post(LOGIN_URL, {"username": "ines", "password": "correct-horse-42"})
    assert logged_in_as(client) is not None


def test_create_account_staff_makes_a_curator(django_user_model):
    call_command("create_account", "cur", "--email", "cur@example.org", "--staff")
    user = django_user_model.objects.get(username="cur")
    assert user.is_staff and user.is_superuser


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["olive", "--email", "new@example.org"], "", "An account named 'olive' already exists."),
        (["ines", "--email", "OLIVE@example.org"], "", "An account already uses"),
        (["ines", "--email", "not-an-address"], "", "'not-an-address' is not an e-mail address."),
        (["in es", "--email", "ines@example.org"], "", "Username 'in es': Enter a valid username"),
        (["ines", "--email", "ines@example.org", "--password-stdin"], "\n", "No password"),
        (["ines", "--email", "ines@example.org", "--password-stdin"], "123\n", "too short"),
        (["ines", "--email", "i@example.org", "--base-url", "example.org"], "", "not an http"),
    ],
)
def test_create_account_explains_what_is_wrong(
    owner, monkeypatch, django_user_model, args, stdin, message
):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with pytest.raises(CommandError, match=message):
        call_command("create_account", *args)
    assert not django_user_model.objects.filter(username="ines").exists()


def test_create_account_has_help():
    from accounts.management.commands.create_account import Command

    text = Command().create_parser("manage.py", "create_account").format_help()
    assert "--email" in text and "--staff" in text and "--password-stdin" in text


# --- Self-registration -------------------------------------------------------------------


def test_self_registration_is_404_when_off(client):
    assert client.get("/accounts/register/").status_code == 404
    response = client.post(
        "/accounts/register/",
        {
            "username": "x",
            "email": "x@example.org",
            "password1": "a-good-pw-77",
            "password2": "a-good-pw-77",
        },
    )
    assert response.status_code == 404


def test_self_registration_creates_an_account_and_logs_in(client, settings, django_user_model):
    settings.SCHOLION_SELF_REGISTRATION = True
    assert 'href="/accounts/register/"' in client.get(LOGIN_URL).content.decode()
    response = client.post(
        "/accounts/register/",
        {
            "username": "newbie",
            "email": "newbie@example.org",
            "password1": "a-good-pw-77",
            "password2": "a-good-pw-77",
        },
    )
    assert response.status_code == 302
    user = django_user_model.objects.get(username="newbie")
    assert user.email == "newbie@example.org" and not user.is_staff
    assert logged_in_as(client) == user.pk


def test_self_registration_refuses_a_weak_password(client, settings, owner, django_user_model):
    settings.SCHOLION_SELF_REGISTRATION = True
    response = client.post(
        "/accounts/register/",
        {"username": "newbie", "email": "Olive@example.org", "password1": "12", "password2": "12"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "too short" in page
    assert not django_user_model.objects.filter(username="newbie").exists()


def test_self_registration_never_says_whether_an_address_has_an_account(
    client, settings, owner, django_user_model
):
    settings.SCHOLION_SELF_REGISTRATION = True
    form = {"email": "Olive@example.org", "password1": "a-good-pw-77", "password2": "a-good-pw-77"}
    taken = client.post("/accounts/register/", {"username": "newbie", **form})
    client.logout()
    free = client.post(
        "/accounts/register/", {"username": "other", **form, "email": "new@example.org"}
    )
    # The same answer for an address in use and a free one: an account, logged in.
    assert taken.status_code == free.status_code == 302
    assert django_user_model.objects.filter(email__iexact="olive@example.org").count() == 2


# --- Failed-login throttling -------------------------------------------------------------


def fail_login(client, username: str, address: str = "198.51.100.7"):
    return client.post(
        LOGIN_URL,
        {"username": username, "password": "wrong"},
        HTTP_X_FORWARDED_FOR=address,
    )


def test_five_failed_logins_lock_the_account_with_a_clear_message(client, owner):
    for _ in range(4):
        assert fail_login(client, "olive").status_code == 200
    locked = fail_login(client, "olive")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "Try again in 15 minutes" in page
    # Even the right password is refused while locked, from another address too.
    right = client.post(
        LOGIN_URL,
        {"username": "olive", "password": "pw-olive-123"},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert right.status_code == 429
    assert logged_in_as(client) is None


def test_failures_from_one_address_lock_that_address_for_every_account(
    client, owner, member, stranger
):
    for name in ["olive", "maya", "sam", "olive", "maya"]:
        fail_login(client, name, "198.51.100.7")
    blocked = client.post(
        LOGIN_URL,
        {"username": "sam", "password": "pw-sam-123"},
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert blocked.status_code == 429
    elsewhere = client.post(
        LOGIN_URL, {"username": "sam", "password": "pw-sam-123"}, HTTP_X_FORWARDED_FOR="192.0.2.44"
    )
    assert elsewhere.status_code == 302
    assert logged_in_as(client) == stranger.pk


def test_client_address_comes_from_the_proxy_header_not_the_proxy(client, owner):
    fail_login(client, "olive", "198.51.100.7")
    attempt = AccessAttempt.objects.get()
    assert attempt.ip_address == "198.51.100.7"


def test_a_successful_login_clears_earlier_failures(client, owner):
    for _ in range(3):
        fail_login(client, "olive")
    client.post(LOGIN_URL, {"username": "olive", "password": "pw-olive-123"})
    assert logged_in_as(client) == owner.pk
    client.post(reverse("logout"))
    for _ in range(3):
        assert fail_login(client, "olive").status_code == 200


def test_admin_login_is_throttled_too(client, curator):
    for _ in range(5):
        response = client.post(
            "/admin/login/",
            {"username": "cora", "password": "wrong", "next": "/admin/"},
            HTTP_X_FORWARDED_FOR="198.51.100.8",
        )
    assert response.status_code == 429
    ok = client.post(
        "/admin/login/",
        {"username": "cora", "password": "pw-cora-123", "next": "/admin/"},
        HTTP_X_FORWARDED_FOR="192.0.2.1",
    )
    assert ok.status_code == 429
    assert logged_in_as(client) is None


def test_admin_login_works(client, curator):
    response = client.post(
        "/admin/login/", {"username": "cora", "password": "pw-cora-123", "next": "/admin/"}
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


# --- My annotations ----------------------------------------------------------------------


def annotate(source, author, collection, start=0, end=10, tags=(), note="", visibility="private"):
    anchor = Annotation.anchor(source.text, start, end)
    annotation = Annotation.objects.create(
        source=source,
        author=author,
        collection=collection,
        start=start,
        end=end,
        note=note,
        visibility=visibility,
        **anchor,
    )
    if tags:
        annotation.tags.add(*tags)
    return annotation


@pytest.fixture
def second_collection(owner):
    c = Collection.objects.create(slug="letters", title="Letters", owner=owner)
    Membership.objects.create(collection=c, user=owner, role=Membership.Role.OWNER)
    return c


def test_my_annotations_lists_what_i_wrote_and_links_to_each_passage(
    client, owner, member, demo_source, collection
):
    mine = annotate(demo_source, owner, collection, 0, 8, tags=["method"], note="*first*")
    theirs = annotate(demo_source, member, collection, 20, 30, visibility="collection")
    client.force_login(owner)
    page = client.get("/me/annotations/").content.decode()
    assert f'data-annotation="{mine.uuid}"' in page
    assert f'data-annotation="{theirs.uuid}"' not in page
    assert f'href="{mine.get_absolute_url()}"' in page
    assert f'Open in source<span class="visually-hidden">: “{mine.exact}”</span></a>' in page
    assert mine.exact in page and "<em>first</em>" in page
    assert "1 annotation" in page


def test_my_annotations_filters_by_collection_and_tag(
    client, owner, demo_source, collection, second_collection
):
    letter = archive_text("Dear friend, the weather is fine.\n", owner, second_collection)
    in_field = annotate(demo_source, owner, collection, 0, 8, tags=["method"])
    in_letters = annotate(letter, owner, second_collection, 0, 4, tags=["greeting"])
    both_tags = annotate(demo_source, owner, collection, 40, 50, tags=["method", "greeting"])
    client.force_login(owner)

    def shown(**params):
        page = client.get("/me/annotations/", params).content.decode()
        return {a for a in (in_field, in_letters, both_tags) if str(a.uuid) in page}

    assert shown() == {in_field, in_letters, both_tags}
    assert shown(collection="letters") == {in_letters}
    assert shown(tag="method") == {in_field, both_tags}
    assert shown(collection="field-notes", tag="greeting") == {both_tags}


def test_my_annotations_explains_an_unknown_filter(client, owner, demo_source, collection):
    annotate(demo_source, owner, collection)
    client.force_login(owner)
    response = client.get("/me/annotations/", {"tag": "nope", "collection": "nowhere"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "None of your annotations has the tag “nope”." in page
    assert "None of your annotations is in a collection “nowhere”." in page
    assert "0 annotations" in page


def test_my_annotations_hides_annotations_on_withdrawn_sources(
    client, owner, demo_source, collection
):
    hidden = annotate(demo_source, owner, collection)
    demo_source.withdraw("Duplicate of another source.")
    client.force_login(owner)
    assert str(hidden.uuid) not in client.get("/me/annotations/").content.decode()


def test_my_annotations_is_paginated_with_filters_kept(client, owner, demo_source, collection):
    for i in range(30):
        annotate(demo_source, owner, collection, i, i + 5, tags=["method"])
    client.force_login(owner)
    first = client.get("/me/annotations/", {"tag": "method"}).content.decode()
    assert first.count("data-annotation=") == 25
    assert "?collection=&amp;tag=method&amp;page=2" in first
    second = client.get("/me/annotations/", {"tag": "method", "page": 2}).content.decode()
    assert second.count("data-annotation=") == 5


def test_my_annotations_query_count_does_not_grow_with_annotations(
    client, owner, demo_source, collection, django_assert_max_num_queries
):
    for i in range(3):
        annotate(demo_source, owner, collection, i, i + 5, tags=["a", "b"])
    client.force_login(owner)
    with django_assert_max_num_queries(7) as few:  # the list's citations are never loaded
        client.get("/me/annotations/")
    for i in range(3, 25):
        annotate(demo_source, owner, collection, i, i + 5, tags=["a", "b", f"t{i}"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/me/annotations/").content.decode()
    assert page.count("data-annotation=") == 25


def test_visitor_is_sent_to_log_in_for_my_annotations(client):
    response = client.get("/me/annotations/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_accounts_has_no_pending_migrations():
    call_command("makemigrations", "accounts", "--check", "--dry-run", verbosity=0)


# --- In the browser ----------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_login_then_account_menu_and_token_shown_once(page, owner):
    login(page, "olive", "pw-olive-123")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Read and write").check()
    page.get_by_role("button", name="Create token").click()
    key = page.get_by_label("Token").input_value()
    assert key.startswith("sch_")
    page.reload()
    assert page.get_by_label("Token").count() == 0
    assert page.get_by_role("button", name="Revoke laptop").is_visible()
    page.get_by_role("link", name="My annotations").click()
    assert page.get_by_role("heading", name="My annotations").is_visible()
