"""A collection's codebook: codes with a description, a colour and a parent, curated by its
editors and owners (add, change, rename, merge, delete), read by whoever reads it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from taggit.models import Tag

from annotations.models import CODE_COLOURS, Annotation, Code, CodebookError, TagRedirect
from archive.models import Collection, CollectionEvent, Membership
from search.models import AnnotationEntry
from tests.conftest import archive_text

pytestmark = pytest.mark.django_db

TEXT = "Prices rose in spring. Wages fell in summer. Rents held in autumn. " * 3


@pytest.fixture
def editor(django_user_model, collection):
    user = django_user_model.objects.create_user("eddie", "eddie@example.org", "pw-eddie-123")
    Membership.objects.create(collection=collection, user=user, role=Membership.Role.EDITOR)
    return user


@pytest.fixture
def source(owner, collection):
    return archive_text(TEXT, owner, collection)


def note(source, author, start: int, tags: list[str], visibility: str = "collection"):
    return Annotation.create_anchored(
        author=author,
        source=source,
        start=start,
        end=start + 6,
        tags=tags,
        visibility=visibility,
    )


@pytest.fixture
def coded(owner, member, collection, source):
    """Codes "prices" (3 passages) and "money" (2, one shared with prices) in field-notes."""
    note(source, member, 0, ["prices"])
    note(source, owner, 23, ["prices", "money"])
    note(source, member, 45, ["prices"])
    note(source, owner, 70, ["money"])
    prices = Code.add(collection, "prices", actor=owner, description="What things cost.")
    money = Code.add(collection, "money", actor=owner)
    return {"prices": prices, "money": money}


def url(name: str, collection: Collection, *args) -> str:
    return reverse(f"annotations:{name}", args=[collection.slug, *args])


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def tags_of(annotation: Annotation) -> list[str]:
    return sorted(annotation.tags.names())


def changes(slug: str, tag: str, other: str) -> list[tuple[str, str, dict]]:
    base = f"/collections/{slug}/codebook"
    return [
        ("post", f"{base}/add", {"name": "new"}),
        ("post", f"{base}/{tag}/edit", {"description": "x", "colour": "red", "parent": ""}),
        ("post", f"{base}/{tag}/rename", {"name": "renamed"}),
        ("post", f"{base}/{tag}/merge", {"with": other, "survivor": tag}),
        ("post", f"{base}/{tag}/delete", {"confirmed": "3"}),
    ]


def state(collection) -> tuple:
    return (
        sorted(Code.objects.filter(collection=collection).values_list("tag__name", "description")),
        sorted(Tag.objects.values_list("name", flat=True)),
        CollectionEvent.objects.count(),
    )


# --- Who reads, who curates ----------------------------------------------------------------


def test_the_collection_page_links_its_codebook(client, owner, collection):
    client.force_login(owner)
    page = client.get(collection.get_absolute_url()).content.decode()
    assert f'href="{url("codebook", collection)}"' in page


@pytest.mark.parametrize("who", ["owner", "editor"])
def test_owners_and_editors_see_the_codes_and_the_tools(client, request, coded, collection, who):
    client.force_login(request.getfixturevalue(who))
    page = client.get(url("codebook", collection)).content.decode()
    assert "What things cost." in page
    assert "3 passages" in page and "2 passages" in page
    assert "Add a code" in page and "Rename" in page


def test_a_member_reads_the_codebook_without_the_tools(client, member, coded, collection):
    client.force_login(member)
    response = client.get(url("codebook", collection))
    assert response.status_code == 200
    page = response.content.decode()
    assert "What things cost." in page
    assert "Add a code" not in page and "Rename" not in page and "Delete" not in page


def test_a_stranger_and_a_visitor_get_404_and_learn_nothing(client, stranger, coded, collection):
    for who in (stranger, None):
        if who:
            client.force_login(who)
        for path in (url("codebook", collection), f"/collections/{collection.slug}/codebook.csv"):
            response = client.get(path)
            missing = client.get(path.replace("field-notes", "no-such-thing"))
            assert response.status_code == missing.status_code == 404
            assert "prices" not in response.content.decode()


def test_a_stranger_changes_nothing_and_gets_404(client, stranger, coded, collection):
    client.force_login(stranger)
    before = state(collection)
    for method, path, data in changes(collection.slug, "prices", "money"):
        assert getattr(client, method)(path, data).status_code == 404, path
    assert state(collection) == before


def test_a_member_changes_nothing_and_gets_403(client, member, coded, collection):
    client.force_login(member)
    before = state(collection)
    for method, path, data in changes(collection.slug, "prices", "money"):
        assert getattr(client, method)(path, data).status_code == 403, path
    assert client.get(url("code_merge", collection, "prices") + "?with=money").status_code == 403
    assert client.get(url("code_delete", collection, "prices")).status_code == 403
    assert state(collection) == before


def test_a_visitor_is_sent_to_log_in_for_every_change(client, coded, collection):
    collection.is_public = True
    collection.save()
    assert client.get(url("codebook", collection)).status_code == 200
    for method, path, data in changes(collection.slug, "prices", "money"):
        response = getattr(client, method)(path, data)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_every_change_needs_the_csrf_token(owner, coded, collection):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = state(collection)
    for method, path, data in changes(collection.slug, "prices", "money"):
        assert getattr(client, method)(path, data).status_code == 403, path
    assert state(collection) == before


def test_get_on_the_post_only_changes_is_405(client, owner, coded, collection):
    client.force_login(owner)
    for _method, path, _data in changes(collection.slug, "prices", "money")[:3]:
        assert client.get(path).status_code == 405, path


def test_an_archived_collections_codebook_is_read_only(client, owner, coded, collection):
    collection.set_archived(True, actor=owner)
    client.force_login(owner)
    assert client.post(url("code_add", collection), {"name": "late"}).status_code == 403
    assert not Code.objects.filter(tag__name="late").exists()


# --- Adding and changing -------------------------------------------------------------------


def test_an_editor_adds_a_code_with_description_colour_and_parent(
    client, editor, coded, collection
):
    client.force_login(editor)
    response = client.post(
        url("code_add", collection),
        {"name": "Rent", "description": "Housing costs.", "colour": "teal", "parent": "prices"},
    )
    assert response.status_code == 302
    assert response["Location"].endswith("#code-rent")
    code = Code.objects.get(tag__name="Rent")
    assert (code.description, code.colour, code.parent) == (
        "Housing costs.",
        "teal",
        coded["prices"],
    )
    page = client.get(url("codebook", collection)).content.decode()
    # Shown indented under its parent, with its colour named (not only shown).
    assert re.search(r'class="code depth-1" id="code-rent"', page)
    assert "Teal" in page
    event = CollectionEvent.objects.filter(kind="code_added").latest("pk")
    assert event.sentence == "eddie added the code “Rent”."
    assert "eddie added the code “Rent”." in page


def test_a_bad_code_says_why_and_adds_nothing(client, owner, coded, collection):
    client.force_login(owner)
    for data, problem in (
        ({"name": "!!!"}, "needs a letter or a digit"),
        ({"name": "ok", "colour": "chartreuse"}, "Select a valid choice"),
        ({"name": "PRICES"}, "already in this codebook"),
    ):
        response = client.post(url("code_add", collection), data)
        assert response.status_code == 400
        assert problem in response.content.decode()
    assert Code.objects.count() == 2


def test_a_personal_tag_used_here_is_offered_and_added(client, owner, source, collection):
    note(source, owner, 0, ["hunch"])
    client.force_login(owner)
    page = client.get(url("codebook", collection)).content.decode()
    assert "Add “hunch” to the codebook" in page
    client.post(url("code_add", collection), {"name": "hunch"})
    assert Code.objects.get().tag.name == "hunch"
    assert (
        "Add “hunch” to the codebook"
        not in client.get(url("codebook", collection)).content.decode()
    )


def test_tags_only_on_others_private_passages_are_not_offered(
    client, owner, member, source, collection
):
    note(source, member, 0, ["my-secret"], visibility="private")
    client.force_login(owner)
    assert "my-secret" not in client.get(url("codebook", collection)).content.decode()


def test_editing_a_code_changes_it_and_says_what_changed(client, owner, coded, collection):
    client.force_login(owner)
    response = client.post(
        url("code_edit", collection, "money"),
        {"description": "Cash.", "colour": "green", "parent": "prices"},
        follow=True,
    )
    assert "Changed the description and colour and parent of “money”." in flash(response)
    money = Code.objects.get(pk=coded["money"].pk)
    assert (money.description, money.colour, money.parent_id) == (
        "Cash.",
        "green",
        coded["prices"].pk,
    )


def test_a_code_cannot_go_under_itself_or_its_own_sub_codes(client, owner, coded, collection):
    prices, money = coded["prices"], coded["money"]
    money.edit(description="", colour="", parent=prices, actor=owner)
    client.force_login(owner)
    for parent in ("money", "prices"):
        response = client.post(
            url("code_edit", collection, "prices"),
            {"description": "What things cost.", "colour": "", "parent": parent},
            follow=True,
        )
        assert any(
            "cannot be placed under itself" in m or "not changed" in m for m in flash(response)
        )
    prices.refresh_from_db()
    assert prices.parent_id is None
    with pytest.raises(CodebookError, match="under itself"):
        prices.check_parent(money)


def test_a_parent_from_another_collection_is_refused(owner, coded, collection):
    other = Collection.create_owned_by(owner, title="Other")
    elsewhere = Code.add(other, "elsewhere", actor=owner)
    with pytest.raises(CodebookError, match="same codebook"):
        coded["prices"].check_parent(elsewhere)


# --- Renaming --------------------------------------------------------------------------------


def test_renaming_retags_the_passages_and_the_old_page_redirects(
    client, owner, member, coded, collection
):
    client.force_login(owner)
    response = client.post(url("code_rename", collection, "prices"), {"name": "Costs"}, follow=True)
    assert "Renamed “prices” to “Costs” on 3 passages of this collection." in flash(response)
    assert sorted(
        Annotation.objects.filter(tags__name="Costs").values_list("start", flat=True)
    ) == [
        0,
        23,
        45,
    ]
    assert not Tag.objects.filter(name="prices").exists()
    assert Code.objects.get(pk=coded["prices"].pk).tag.name == "Costs"
    old_page = client.get("/tags/prices/?author=maya")
    assert old_page.status_code == 302
    assert old_page["Location"] == "/tags/costs/?author=maya"
    assert "Costs" in client.get("/tags/costs/").content.decode()
    # Search finds the passages by their new name.
    assert {e.tags for e in AnnotationEntry.objects.filter(annotation__start__in=[0, 45])} == {
        "costs"
    }
    assert CollectionEvent.objects.filter(kind="code_renamed").get().sentence == (
        "olive renamed the code “prices” to “Costs”."
    )


def test_renaming_leaves_other_collections_passages_alone(client, owner, coded, collection):
    other = Collection.create_owned_by(owner, title="Elsewhere")
    there = archive_text("Another text about prices and more.", owner, other)
    kept = note(there, owner, 0, ["prices"])
    client.force_login(owner)
    client.post(url("code_rename", collection, "prices"), {"name": "Costs"})
    assert tags_of(kept) == ["prices"]
    # The old tag lives on for the other collection: its page is not redirected.
    assert client.get("/tags/prices/").status_code == 200
    assert not TagRedirect.objects.exists()


def test_renaming_onto_a_code_of_the_codebook_points_to_merge(client, owner, coded, collection):
    client.force_login(owner)
    response = client.post(url("code_rename", collection, "prices"), {"name": "Money"}, follow=True)
    assert any("merge the two instead" in m for m in flash(response))
    assert Tag.objects.filter(name="prices").exists()


def test_a_change_of_case_renames_in_place(client, owner, coded, collection):
    client.force_login(owner)
    client.post(url("code_rename", collection, "prices"), {"name": "Prices"})
    tag = Code.objects.get(pk=coded["prices"].pk).tag
    assert (tag.name, tag.slug) == ("Prices", "prices")


# --- Merging ---------------------------------------------------------------------------------


def test_merging_asks_first_naming_each_codes_passages(client, owner, coded, collection):
    client.force_login(owner)
    response = client.get(url("code_merge", collection, "prices") + "?with=money")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Keep “prices” (3 passages)" in page
    assert "Keep “money” (2 passages)" in page
    assert Code.objects.count() == 2  # nothing changed yet


def test_merging_keeps_the_survivor_chosen(client, owner, coded, collection, source):
    both = Annotation.objects.get(start=23)
    client.force_login(owner)
    response = client.post(
        url("code_merge", collection, "prices"), {"with": "money", "survivor": "money"}, follow=True
    )
    assert "Merged “prices” into “money”: 3 passages moved." in flash(response)
    assert list(Code.objects.values_list("tag__name", flat=True)) == ["money"]
    assert Annotation.objects.filter(tags__name="money").count() == 4
    assert tags_of(both) == ["money"]
    assert client.get("/tags/prices/")["Location"] == "/tags/money/"
    assert CollectionEvent.objects.filter(kind="codes_merged").get().sentence == (
        "olive merged the code “prices” into “money”."
    )


def test_merging_without_a_survivor_asks_again(client, owner, coded, collection):
    client.force_login(owner)
    response = client.post(url("code_merge", collection, "prices"), {"with": "money"})
    assert response.status_code == 302
    assert Code.objects.count() == 2


def test_merging_with_a_code_of_another_collection_is_refused(client, owner, coded, collection):
    other = Collection.create_owned_by(owner, title="Other")
    Code.add(other, "foreign", actor=owner)
    client.force_login(owner)
    response = client.post(
        url("code_merge", collection, "prices"),
        {"with": "foreign", "survivor": "prices"},
        follow=True,
    )
    assert any("Choose another code" in m for m in flash(response))
    assert Code.objects.count() == 3


def test_merging_a_parent_into_its_child_keeps_the_tree(owner, coded):
    prices, money = coded["prices"], coded["money"]
    money.edit(description="", colour="", parent=prices, actor=owner)
    money.refresh_from_db()
    money.merge(prices, actor=owner)
    money.refresh_from_db()
    assert money.parent_id is None


# --- Deleting --------------------------------------------------------------------------------


def test_an_unused_code_is_deleted_at_once(client, owner, coded, collection):
    Code.add(collection, "idle", actor=owner)
    client.force_login(owner)
    response = client.post(url("code_delete", collection, "idle"), follow=True)
    assert "Deleted the code “idle”." in flash(response)
    assert not Code.objects.filter(tag__name="idle").exists()
    assert not Tag.objects.filter(name="idle").exists()


def test_a_used_code_is_deleted_only_after_a_confirmation_naming_its_passages(
    client, owner, coded, collection
):
    client.force_login(owner)
    asked = client.post(url("code_delete", collection, "prices"))
    assert asked["Location"] == url("code_delete", collection, "prices")
    page = client.get(asked["Location"]).content.decode()
    assert "removes “prices” from 3 passages" in page
    assert Code.objects.filter(tag__name="prices").exists()
    # A confirmation for a different count (someone tagged more meanwhile) asks again.
    assert (
        client.post(url("code_delete", collection, "prices"), {"confirmed": "2"}).status_code == 302
    )
    assert Code.objects.filter(tag__name="prices").exists()
    response = client.post(
        url("code_delete", collection, "prices"), {"confirmed": "3"}, follow=True
    )
    assert "Deleted the code “prices” and removed it from 3 passages." in flash(response)
    assert not Annotation.objects.filter(tags__name="prices").exists()
    assert Annotation.objects.count() == 4
    assert CollectionEvent.objects.filter(kind="code_deleted").get().sentence == (
        "olive deleted the code “prices”."
    )


# --- Reading the codebook ------------------------------------------------------------------


def test_the_codebook_page_reads_a_fixed_number_of_queries(
    client, owner, source, collection, django_assert_num_queries
):
    client.force_login(owner)
    page = url("codebook", collection)
    parent = Code.add(collection, "root", actor=owner)
    note(source, owner, 0, ["root", "personal-0"])

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(page).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(15):
        code = Code.add(collection, f"code-{i}", actor=owner, parent=parent, colour="blue")
        parent = code if i % 3 == 0 else parent
        note(source, owner, 6 * i + 1, [f"code-{i}", f"personal-{i + 1}"])
    with django_assert_num_queries(few):
        response = client.get(page)
    assert response.content.decode().count('class="code depth-') == 16


def test_the_codebook_downloads_as_csv(client, member, owner, coded, collection):
    coded["money"].edit(description="=cash()", colour="green", parent=coded["prices"], actor=owner)
    client.force_login(member)
    response = client.get(f"/collections/{collection.slug}/codebook.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="field-notes-codebook.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["name", "parent", "description", "colour", "passages"],
        ["prices", "", "What things cost.", "", "3"],
        ["money", "prices", "'=cash()", "green", "2"],
    ]
    page = client.get(url("codebook", collection)).content.decode()
    assert f'href="/collections/{collection.slug}/codebook.csv"' in page


# --- Colours -------------------------------------------------------------------------------


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_colour_keeps_text_readable_and_its_underline_visible():
    ink, paper = "#1f2328", "#fdfcf9"
    css = Path(settings.BASE_DIR, "static", "css", "scholion.css").read_text()
    for name, colour in CODE_COLOURS.items():
        assert contrast(ink, colour.background) >= 7, name
        assert contrast(colour.border, paper) >= 3, name
        assert contrast(colour.border, colour.background) >= 3, name
        assert (
            f"mark.hl:where(.code-{name}) {{ background: {colour.background}; "
            f"border-bottom-color: {colour.border}; }}"
        ) in css


def test_a_codes_colour_marks_its_highlights_and_its_name_stays_on_the_card(
    client, owner, coded, collection, source
):
    coded["money"].edit(description="", colour="purple", parent=None, actor=owner)
    client.force_login(owner)
    page = client.get(source.get_absolute_url()).content.decode()
    alone = Annotation.objects.get(start=70)
    marks = re.findall(r'<mark class="([^"]+)"[^>]*data-anns="([^"]+)"', page)
    assert ("hl hl-1 code-purple", str(alone.uuid)) in marks
    # "prices" has no colour: its passages keep the usual highlight.
    plain = Annotation.objects.get(start=0)
    assert ("hl hl-1", str(plain.uuid)) in marks
    card = page[page.index(f'id="a-{alone.uuid}"') :]
    card = card[: card.index("</li></ul>")]
    assert 'class="swatch code-purple"' in card and ">money</a>" in card
    # Changing the colour refreshes the cached reading page.
    coded["money"].edit(description="", colour="red", parent=None, actor=owner)
    page = client.get(source.get_absolute_url()).content.decode()
    assert ("hl hl-1 code-red", str(alone.uuid)) in re.findall(
        r'<mark class="([^"]+)"[^>]*data-anns="([^"]+)"', page
    )


# --- Suggestions in the editor ---------------------------------------------------------------


def test_the_editor_suggests_the_codebook_first_with_descriptions(
    client, owner, coded, collection, source
):
    other = Collection.create_owned_by(owner, title="Other")
    elsewhere = archive_text("Something else entirely, with a passage.", owner, other)
    note(elsewhere, owner, 0, ["aardvark", "money-talk"])
    client.force_login(owner)
    answer = client.get("/api/tags/", {"q": "", "source": str(source.uuid)}).json()
    assert answer["tags"][:2] == ["money", "prices"]
    assert "aardvark" in answer["tags"][2:]
    assert {"name": "prices", "description": "What things cost.", "colour": ""} in answer["codes"]
    # Without a source (or one the user cannot see), the plain list in name order.
    assert client.get("/api/tags/", {"q": "mon"}).json() == {"tags": ["money", "money-talk"]}


def test_a_stranger_gets_no_codes_for_a_source_they_cannot_see(client, stranger, coded, source):
    client.force_login(stranger)
    answer = client.get("/api/tags/", {"source": str(source.uuid)}).json()
    assert answer == {"tags": [], "codes": []}


# --- What a curator cannot read, a curator neither counts nor changes ----------------------


@pytest.fixture
def with_private(member, coded, source):
    """A member's private passage, and one for the collection only, both "prices"."""
    return {
        "private": note(source, member, 90, ["prices"], visibility="private"),
        "members": note(source, member, 110, ["prices"], visibility="collection"),
    }


def test_counts_are_of_the_passages_the_reader_may_read(
    client, owner, member, coded, collection, with_private
):
    collection.is_public = True
    collection.save()
    client.force_login(owner)
    assert "4 passages" in client.get(url("codebook", collection)).content.decode()
    csv_url = f"/collections/{collection.slug}/codebook.csv"
    rows = csv.reader(io.StringIO(client.get(csv_url).content.decode()))
    assert {row[0]: row[4] for row in rows}["prices"] == "4"
    assert (
        client.get(url("code_merge", collection, "prices") + "?with=money")
        .content.decode()
        .count("Keep “prices” (4 passages)")
        == 1
    )
    # Its author counts the private one; a stranger only the public passages (none here).
    client.force_login(member)
    assert "5 passages" in client.get(url("codebook", collection)).content.decode()
    stranger = Client()
    page = stranger.get(url("codebook", collection)).content.decode()
    assert "What things cost." in page and "0 passages" in page
    assert "4 passages" not in page and "5 passages" not in page


def test_a_rename_leaves_a_members_private_passage_its_tag(
    client, owner, member, coded, collection, with_private
):
    client.force_login(owner)
    response = client.post(url("code_rename", collection, "prices"), {"name": "Costs"}, follow=True)
    assert "Renamed “prices” to “Costs” on 4 passages of this collection." in flash(response)
    assert tags_of(Annotation.objects.get(pk=with_private["private"].pk)) == ["prices"]
    assert tags_of(Annotation.objects.get(pk=with_private["members"].pk)) == ["Costs"]
    # The old tag lives on for its private passage: its page does not redirect.
    assert not TagRedirect.objects.filter(old_slug="prices").exists()
    client.force_login(member)
    assert client.get("/tags/prices/").status_code == 200


def test_merge_and_delete_change_only_what_the_curator_reads(
    client, owner, member, coded, collection, with_private
):
    client.force_login(owner)
    client.post(url("code_merge", collection, "prices"), {"with": "money", "survivor": "money"})
    assert tags_of(Annotation.objects.get(pk=with_private["private"].pk)) == ["prices"]
    assert tags_of(Annotation.objects.get(pk=with_private["members"].pk)) == ["money"]
    page = client.get(url("code_delete", collection, "money")).content.decode()
    assert "removes “money” from 5 passages" in page
    client.post(url("code_delete", collection, "money"), {"confirmed": "5"})
    assert not Code.objects.filter(collection=collection).exists()
    assert tags_of(Annotation.objects.get(pk=with_private["private"].pk)) == ["prices"]
    assert tags_of(Annotation.objects.get(pk=with_private["members"].pk)) == []


def test_a_retagged_passage_gets_a_new_version_and_its_history_names_the_curator(
    client, owner, member, coded, collection, source
):
    passage = Annotation.objects.get(start=0)
    before = passage.version
    client.force_login(owner)
    client.post(url("code_rename", collection, "prices"), {"name": "Costs"})
    passage.refresh_from_db()
    assert passage.version == before + 1
    revision = passage.revisions.get()
    assert (revision.version, revision.tags, revision.edited_by) == (before, ["prices"], owner)
    # Its author sees who changed the tags, and a client editing from the old version is
    # told it changed (412), not allowed to put the old tag back unseen.
    client.force_login(member)
    history = client.get(reverse("annotations:history", args=[passage.uuid])).content.decode()
    assert "olive" in history and "prices" in history
    response = client.put(
        f"/api/annotations/{passage.uuid}",
        data="{}",
        content_type="application/ld+json",
        headers={"If-Match": f'"{before}"'},
    )
    assert response.status_code == 412


def test_a_merge_indexes_again_every_passage_it_retags_a_batch_at_a_time(
    owner, coded, django_assert_max_num_queries
):
    from search.index import reindex_annotations

    coded["money"].merge(coded["prices"], actor=owner)
    # Search finds every passage by the surviving name, the one that carried both included.
    assert {
        e.annotation.start: e.tags for e in AnnotationEntry.objects.select_related("annotation")
    } == {0: "money", 23: "money", 45: "money", 70: "money"}
    pks = list(Annotation.objects.values_list("pk", flat=True))
    AnnotationEntry.objects.all().delete()
    # Four statements a batch (annotations, their tags, delete, insert), however many it holds.
    with django_assert_max_num_queries(8):
        reindex_annotations(pks, batch_size=2)
    assert AnnotationEntry.objects.count() == 4
    assert set(AnnotationEntry.objects.values_list("tags", flat=True)) == {"money"}
