"""Importing Hypothesis annotations (exports.hypothesis): both file shapes, every way a quote
is anchored or orphaned, authors, visibility, a second import, refusals, the command and
the collection's upload page (replies: test_hypothesis_replies.py)."""

from __future__ import annotations

import io
import json
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from annotations.models import Annotation, Comment
from archive.models import Capture, Membership
from exports.hypothesis import (
    HYPOTHESIS_UUIDS,
    HypothesisError,
    Orphan,
    anchor_quote,
    import_hypothesis,
    normalise_url,
)
from tests.conftest import archive_text
from tests.helpers import found

pytestmark = pytest.mark.django_db

PAGE = "https://news.example.org/river/"
TEXT = (
    "Notes on the River\n\n"
    "The river floods each spring. Ferrymen kept ledgers of crossings and tolls.\n\n"
    "A resistant strain of wheat was planted along the banks. The banks held.\n\n"
    "In the archive, the ledgers of the ferrymen survive in part."
)


@pytest.fixture
def source(owner, collection):
    return archive_text(
        TEXT, user=owner, collection=collection, original_url=PAGE, declared_type="text/plain"
    )


@pytest.fixture
def editor(django_user_model, collection):
    user = django_user_model.objects.create_user("eddie", "eddie@example.org", "pw-eddie-123")
    Membership.objects.create(collection=collection, user=user, role=Membership.Role.EDITOR)
    return user


def row(
    hid: str,
    exact: str | None,
    *,
    prefix: str = "",
    suffix: str = "",
    position: tuple[int, int] | None = None,
    user: str = "acct:olive@hypothes.is",
    text: str = "",
    tags: tuple[str, ...] = (),
    read: list[str] | None = None,
    references: tuple[str, ...] = (),
    uri: str = "https://news.example.org/river#section-2",
    created: str = "2023-04-05T06:07:08.123456+00:00",
) -> dict:
    """One annotation as Hypothesis' API answers it (GET /api/search)."""
    selectors: list[dict] = [
        {
            "type": "RangeSelector",
            "endOffset": 9,
            "startOffset": 0,
            "endContainer": "/main[1]/p[2]",
            "startContainer": "/main[1]/p[2]",
        }
    ]
    if position is not None:
        selectors.append({"type": "TextPositionSelector", "start": position[0], "end": position[1]})
    if exact is not None:
        selectors.append(
            {"type": "TextQuoteSelector", "exact": exact, "prefix": prefix, "suffix": suffix}
        )
    target: dict = {"source": uri}
    if exact is not None and not references:
        target["selector"] = selectors
    return {
        "id": hid,
        "created": created,
        "updated": created.replace("2023-04-05", "2023-04-06"),
        "user": user,
        "uri": uri,
        "text": text,
        "tags": list(tags),
        "group": "__world__",
        "permissions": {
            "read": read if read is not None else ["group:__world__"],
            "admin": [user],
            "update": [user],
            "delete": [user],
        },
        "target": [target],
        "document": {"title": ["Notes on the River"]},
        "links": {
            "html": f"https://hypothes.is/a/{hid}",
            "incontext": f"https://hyp.is/{hid}/news.example.org/river",
            "json": f"https://hypothes.is/api/annotations/{hid}",
        },
        "user_info": {"display_name": None},
        "flagged": False,
        "hidden": False,
        "references": list(references),
    }


def api_file(*rows: dict) -> bytes:
    return json.dumps({"total": len(rows), "rows": list(rows)}).encode()


def client_export(*rows: dict, exporter: str = "acct:olive@hypothes.is") -> bytes:
    """The Hypothesis client's export file (its AnnotationsExporter)."""
    return json.dumps(
        {
            "export_date": "2024-02-03T10:11:12.000Z",
            "export_userid": exporter,
            "client_version": "1.1400.0",
            "annotations": list(rows),
        }
    ).encode()


def imported(collection) -> Annotation:
    return Annotation.objects.get(collection=collection)


def hid_uuid(collection, hid: str) -> uuid.UUID:
    return uuid.uuid5(HYPOTHESIS_UUIDS, f"{collection.pk}:{hid}")


# --- Both shapes, and what each annotation keeps ------------------------------------------------


def test_api_search_results_become_annotations_with_note_tags_dates_and_author(
    source, collection, owner
):
    data = api_file(
        row(
            "AbC123",
            "Ferrymen kept ledgers",
            prefix="The river floods each spring. ",
            suffix=" of crossings",
            text="Who kept *these*?",
            tags=("ferries", "records"),
        )
    )
    result = import_hypothesis(data, collection)

    annotation = imported(collection)
    assert annotation.source == source
    assert TEXT[annotation.start : annotation.end] == "Ferrymen kept ledgers"
    assert annotation.note == "Who kept *these*?"
    assert list(annotation.tags.names()) == ["ferries", "records"]
    assert annotation.author == owner
    assert annotation.created.isoformat() == "2023-04-05T06:07:08.123456+00:00"
    assert annotation.modified.isoformat() == "2023-04-06T06:07:08.123456+00:00"
    assert annotation.visibility == Annotation.Visibility.COLLECTION
    assert annotation.uuid == hid_uuid(collection, "AbC123")
    assert annotation.canonical == "https://hypothes.is/a/AbC123"
    assert result.anchored == {"exact": 1}
    assert "1 annotation added (1 by their exact quote)" in result.summary()
    assert "API search results" in result.summary()


def test_client_export_file_is_read_too(source, collection, owner):
    result = import_hypothesis(client_export(row("x1", "The banks held.")), collection)

    assert imported(collection).exact == "The banks held."
    assert "Hypothesis client export" in result.summary()


def test_annotation_is_indexed_for_search(source, collection, owner, client):
    import_hypothesis(api_file(row("s1", "resistant strain", tags=("wheat",))), collection)
    client.force_login(owner)

    _titles, passages = found(client, q="wheat")

    assert passages == ["resistant strain"]


# --- Anchoring ----------------------------------------------------------------------------------


def test_shifted_quote_is_found_where_the_text_moved_it(source, collection):
    # Recorded at offset 900 of the live page (its navigation came first): the quote is
    # still found exactly, and the position is not needed.
    result = import_hypothesis(
        api_file(row("m1", "planted along the banks", position=(900, 923))), collection
    )

    annotation = imported(collection)
    assert annotation.start == TEXT.index("planted along the banks")
    assert result.anchored == {"exact": 1}


def test_whitespace_changed_quote_is_anchored_ignoring_whitespace(source, collection):
    quote = "Ferrymen kept\n  ledgers of crossings and tolls.A resistant"  # block text run on
    result = import_hypothesis(api_file(row("w1", quote)), collection)

    annotation = imported(collection)
    assert annotation.exact == "Ferrymen kept ledgers of crossings and tolls.\n\nA resistant"
    assert result.anchored == {"whitespace": 1}
    assert "1 ignoring whitespace" in result.summary()


def test_whitespace_changed_quote_occurring_twice_is_placed_by_its_context():
    text = "the  ledgers of\nthe ferrymen; the ledgers\nof the church"
    found = anchor_quote(text, "ledgers of the", "the", " church", None)

    assert (found.how, text[found.start : found.end]) == ("whitespace", "ledgers\nof the")
    assert found.start == text.rindex("ledgers")


def test_withdrawn_source_takes_no_annotations(source, collection):
    source.withdraw("Taken down on request.")
    result = import_hypothesis(api_file(row("wd", "The banks held.")), collection)

    assert not Annotation.objects.exists()
    assert "no source in the collection" in result.orphans[0]


def test_fuzzy_quote_is_anchored_near_its_position(source, collection):
    at = TEXT.index("A resistant strain")
    quote = "A resistant strain of wheat were planted along the bank."  # edited since
    result = import_hypothesis(
        api_file(row("f1", quote, position=(at + 40, at + 40 + len(quote)))), collection
    )

    annotation = imported(collection)
    assert annotation.exact == "A resistant strain of wheat was planted along the banks."
    assert result.anchored == {"fuzzy": 1}
    assert "by a fuzzy match near their position" in result.summary()


def test_fuzzy_match_needs_a_position(source, collection):
    quote = "A resistant strain of wheat were planted along the bank."
    result = import_hypothesis(api_file(row("f2", quote)), collection)

    assert not Annotation.objects.exists()
    assert "no position to look near" in result.orphans[0]


def test_missing_quote_is_an_orphan_listed_and_attached_nowhere(source, collection):
    result = import_hypothesis(
        api_file(
            row(
                "gone1", "A paragraph the publisher has since deleted entirely.", position=(60, 110)
            )
        ),
        collection,
    )

    assert not Annotation.objects.exists()
    assert len(result.orphans) == 1
    orphan = result.orphans[0]
    assert orphan.startswith("https://hypothes.is/a/gone1 “A paragraph the publisher")
    assert "nothing near its position is like it" in orphan
    assert "1 orphan" in result.summary()


def test_ambiguous_quote_is_placed_by_its_context():
    text = "the ledgers of the ferrymen ... the ledgers of the church"
    found = anchor_quote(text, "the ledgers", "... ", " of the church", None)

    assert found.start == text.rindex("the ledgers")


def test_ambiguous_quote_is_placed_by_its_position_when_context_ties():
    text = "ledgers here, ledgers there, ledgers everywhere"
    found = anchor_quote(text, "ledgers", "", "", (16, 23))

    assert found.start == 14


def test_quote_that_context_and_position_cannot_place_is_an_orphan():
    text = "ledgers here, ledgers here"
    with pytest.raises(Orphan, match="occurs 2 times"):
        anchor_quote(text, "ledgers here", "", "", None)
    with pytest.raises(Orphan, match="occurs 2 times"):
        # Halfway between the two: no nearer one either.
        anchor_quote("ab ledgers ab xx ledgers ab", "ledgers", "", "", (10, 17))


def test_two_fuzzy_candidates_alike_make_an_orphan():
    text = "x" * 50 + " the river floods in spring " + "y" * 20 + " the river floods in spring "
    with pytest.raises(Orphan, match="two passages"):
        anchor_quote(text, "the river flooded in spring", "", "", (60, 87))


def test_annotations_ambiguous_in_the_source_are_orphans_not_guesses(source, collection):
    result = import_hypothesis(api_file(row("amb", "banks")), collection)

    assert not Annotation.objects.exists()
    assert "neither its context nor its position" in result.orphans[0]


def test_page_note_without_quote_becomes_a_note_on_its_source_once(source, collection):
    result = import_hypothesis(api_file(row("pn", None, text="A note on the page")), collection)

    assert not Annotation.objects.exists() and not result.orphans
    note = Comment.objects.get()
    assert (note.source, note.note, note.is_reply) == (source, "A note on the page", False)
    assert note.visibility == "collection" and note.collection == collection
    assert "1 page note kept as notes on their source" in result.summary()
    again = import_hypothesis(api_file(row("pn", None, text="A note on the page")), collection)
    assert Comment.objects.count() == 1 and again.existing == 1 and again.page_notes == 0


# --- Matching pages ----------------------------------------------------------------------------


def test_urls_are_compared_without_fragment_trailing_slash_case_or_proxy():
    assert normalise_url("HTTPS://News.Example.org:443/river/#p2") == normalise_url(PAGE)
    assert normalise_url("https://via.hypothes.is/https://news.example.org/river") == (
        normalise_url(PAGE)
    )
    assert normalise_url("https://news.example.org/river?page=2") != normalise_url(PAGE)


def test_annotation_matches_a_capture_by_its_final_url(owner, collection):
    captured = archive_text(
        "Captured page about tolls and ferries.", user=owner, collection=collection
    )
    Capture.objects.create(
        user=owner,
        url="http://example.net/short",
        url_final="https://example.net/articles/tolls",
        state=Capture.State.DONE,
        source=captured,
    )
    data = api_file(row("c1", "tolls and ferries", uri="https://example.net/articles/tolls/"))
    import_hypothesis(data, collection)

    assert imported(collection).source == captured


def test_page_without_source_is_queued_for_capture_and_reported(source, collection, owner):
    data = api_file(
        row("u1", "Some words", uri="https://elsewhere.example.com/story#x"),
        row("u2", "More words", uri="https://elsewhere.example.com/story/"),
    )
    result = import_hypothesis(data, collection)

    capture = Capture.objects.get()
    assert capture.url == "https://elsewhere.example.com/story"
    assert capture.collection == collection
    assert result.captures == ["https://elsewhere.example.com/story"]
    assert "queued for capture" in result.summary()
    assert not Annotation.objects.exists()

    import_hypothesis(data, collection)  # while the capture waits: not queued again
    assert Capture.objects.count() == 1


def test_page_that_cannot_be_captured_is_reported(source, collection):
    data = api_file(row("p1", "Some words", uri="urn:x-pdf:6b3f0c0c0a0e4b4a"))
    result = import_hypothesis(data, collection)

    assert result.unmatched == ["urn:x-pdf:6b3f0c0c0a0e4b4a"]
    assert not Capture.objects.exists()


# --- Authors and visibility --------------------------------------------------------------------


def test_unknown_author_becomes_an_inactive_account(source, collection):
    result = import_hypothesis(
        api_file(row("a1", "The banks held.", user="acct:rhea_k@hypothes.is")), collection
    )

    rhea = get_user_model().objects.get(username="rhea_k")
    assert not rhea.is_active
    assert not rhea.has_usable_password()
    assert imported(collection).author == rhea
    assert "rhea_k" in result.summary()


def test_account_of_another_hypothesis_service_keeps_its_authority(source, collection):
    import_hypothesis(
        api_file(row("a2", "The banks held.", user="acct:olive@lms.hypothes.is")), collection
    )

    assert imported(collection).author.username == "olive@lms.hypothes.is"


def test_private_hypothesis_annotation_stays_private(source, collection, owner, member):
    user = "acct:olive@hypothes.is"
    import_hypothesis(api_file(row("priv", "The banks held.", read=[user])), collection)

    annotation = imported(collection)
    assert annotation.visibility == Annotation.Visibility.PRIVATE
    assert Annotation.objects.visible_to(owner).filter(pk=annotation.pk).exists()
    assert not Annotation.objects.visible_to(member).filter(pk=annotation.pk).exists()


def test_private_page_note_stays_private(source, collection, owner, member):
    user = "acct:olive@hypothes.is"
    import_hypothesis(api_file(row("privnote", None, text="Mine alone", read=[user])), collection)

    note = Comment.objects.get()
    assert note.visibility == Annotation.Visibility.PRIVATE
    assert Comment.objects.visible_to(owner).filter(pk=note.pk).exists()
    assert not Comment.objects.visible_to(member).filter(pk=note.pk).exists()


def test_shared_annotation_is_seen_by_collection_members(source, collection, member):
    import_hypothesis(api_file(row("pub", "The banks held.")), collection)

    annotation = imported(collection)
    assert annotation.visibility == Annotation.Visibility.COLLECTION
    assert Annotation.objects.visible_to(member).filter(pk=annotation.pk).exists()


def test_editor_imports_their_own_annotations_and_not_other_peoples(source, collection, editor):
    data = client_export(
        row("e1", "The banks held.", user="acct:eddie_h@hypothes.is"),
        row("e2", "resistant strain", user="acct:olive@hypothes.is"),
        exporter="acct:eddie_h@hypothes.is",
    )
    result = import_hypothesis(data, collection, editor)

    annotation = imported(collection)
    assert annotation.author == editor
    assert annotation.exact == "The banks held."
    assert result.others_skipped == 1
    assert not get_user_model().objects.filter(username="eddie_h").exists()


# --- Importing again ----------------------------------------------------------------------------


def test_second_import_adds_nothing(source, collection, owner):
    rows = [
        row("one", "The banks held.", tags=("banks",)),
        row("two", "Ferrymen kept ledgers"),
        row("re", None, text="Indeed.", references=("one",)),
    ]
    import_hypothesis(api_file(*rows), collection)
    before = list(Annotation.objects.values_list("uuid", "note", "version").order_by("pk"))

    result = import_hypothesis(client_export(*rows), collection)

    assert list(Annotation.objects.values_list("uuid", "note", "version").order_by("pk")) == before
    assert result.created == 0
    assert result.existing == 2
    assert result.replies_added == 0
    assert result.replies_existing == 1


# --- Refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"rows": [', "not valid JSON (line 1, column 11"),
        (b"\xff\xfe\x00", "not text"),
        (b'{"annotations": []}', "This is not a Hypothesis file"),
        (b"[1, 2]", "This is not a Hypothesis file"),
        (b'{"rows": [{"id": "a"}]}', "Annotation 1 (a): “user” must be a string"),
        (b'{"rows": [7]}', "Annotation 1 is not an object"),
    ],
)
def test_malformed_files_are_refused_and_leave_nothing(source, collection, data, message):
    with pytest.raises(HypothesisError, match=re.escape(message)):
        import_hypothesis(data, collection)
    assert not Annotation.objects.exists()
    assert not Capture.objects.exists()


def test_one_bad_row_refuses_the_whole_file(source, collection):
    good = row("ok", "The banks held.")
    bad = row("bad", "The banks held.", tags=("x" * 101,))
    with pytest.raises(HypothesisError, match="longer than 100"):
        import_hypothesis(api_file(good, bad), collection)
    assert not Annotation.objects.exists()


def test_huge_file_is_refused_before_it_is_read(source, collection, settings):
    settings.SCHOLION_HYPOTHESIS_MAX_BYTES = 1000
    with pytest.raises(HypothesisError, match="more than the 1,000"):
        import_hypothesis(
            api_file(*[row(f"h{n}", "The banks held.") for n in range(10)]), collection
        )
    assert not Annotation.objects.exists()


def test_archived_collection_takes_nothing(source, collection):
    collection.set_archived(True)
    with pytest.raises(HypothesisError, match="is archived"):
        import_hypothesis(api_file(row("z", "The banks held.")), collection)


# --- The command --------------------------------------------------------------------------------


def test_command_imports_and_reports(source, collection, tmp_path):
    path = tmp_path / "hypothesis.json"
    path.write_bytes(api_file(row("k1", "The banks held."), row("k2", "Not in it at all.")))
    out = io.StringIO()

    call_command("import_hypothesis", str(path), "--collection", "field-notes", stdout=out)

    assert "1 annotation added (1 by their exact quote)" in out.getvalue()
    assert "Orphans (not attached to any passage):" in out.getvalue()
    assert Annotation.objects.count() == 1


def test_command_refuses_bad_input_clearly(source, collection, tmp_path, stranger):
    path = tmp_path / "bad.json"
    path.write_text("not json")
    with pytest.raises(CommandError, match="Nothing was imported: The file is not valid JSON"):
        call_command("import_hypothesis", str(path), "--collection", "field-notes")
    with pytest.raises(CommandError, match="No collection has the slug"):
        call_command("import_hypothesis", str(path), "--collection", "nope")
    with pytest.raises(CommandError, match="is not a file"):
        call_command("import_hypothesis", str(tmp_path / "x"), "--collection", "field-notes")
    with pytest.raises(CommandError, match="sam may not import into"):
        call_command("import_hypothesis", str(path), "--collection", "field-notes", "--user", "sam")
    assert not Annotation.objects.exists()


def test_command_has_help(capsys):
    with pytest.raises(SystemExit):
        call_command("import_hypothesis", "--help")
    assert "--collection SLUG" in capsys.readouterr().out
