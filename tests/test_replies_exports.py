"""Replies and notes on whole sources in exports, and through an export and import."""

from __future__ import annotations

import csv
import io
import json

import pytest

from annotations.models import Annotation, Comment
from tests.conftest import archive_text
from tests.helpers import download, empty_everything, export_bag, import_bytes, members
from tests.w3c import assert_w3c_annotation

pytestmark = pytest.mark.django_db


@pytest.fixture
def discussed(annotated, owner, member, stranger):
    """A reply on olive's shared annotation, one on maya's private one (never exported to
    anyone else), a note on alpha with a reply, and olive's private note on alpha."""
    shared = annotated["a"]["olive-collection"]
    return {
        **annotated,
        "reply": Comment.reply(author=member, to=shared, note="REPLYTEXT from maya"),
        "hidden": Comment.reply(
            author=member, to=annotated["a"]["maya-private"], note="HIDDENREPLY"
        ),
        "note": (
            note := Comment.note_on(
                author=member, source=annotated["alpha"], note="NOTETEXT on the whole report"
            )
        ),
        "note-reply": Comment.reply(author=owner, to=note, note="NOTEREPLY from olive"),
        "olive-private-note": Comment.note_on(
            author=owner, source=annotated["alpha"], note="OLIVEPRIVATE", visibility="private"
        ),
    }


def test_the_jsonld_export_holds_replies_and_notes_as_w3c_annotations(client, owner, discussed):
    client.force_login(owner)
    response, body = download(client, "jsonld")
    assert response.status_code == 200
    doc = json.loads(body)
    items = doc["first"]["items"]
    assert doc["total"] == len(items)
    by_text = {
        item["body"][0]["value"]: item
        for item in items
        if item.get("motivation") in ("replying",) or isinstance(item.get("target"), str)
    }
    assert set(by_text) == {
        "REPLYTEXT from maya",
        "NOTETEXT on the whole report",
        "NOTEREPLY from olive",
        "OLIVEPRIVATE",
    }
    reply = by_text["REPLYTEXT from maya"]
    assert reply["motivation"] == "replying"
    assert reply["target"].endswith(f"/api/annotations/{discussed['a']['olive-collection'].uuid}")
    note = by_text["NOTETEXT on the whole report"]
    assert note["target"].endswith(f"/sources/{discussed['alpha'].uuid}/")
    for item in by_text.values():
        assert_w3c_annotation({"@context": doc["@context"], **item})
    assert b"HIDDENREPLY" not in body


def test_another_members_export_leaves_out_private_notes_and_replies_to_private_work(
    client, member, discussed
):
    client.force_login(member)
    for fmt in ("jsonld", "markdown"):
        response, body = download(client, fmt)
        assert response.status_code == 200
        text = body.decode()
        assert "NOTETEXT" in text and "REPLYTEXT" in text and "NOTEREPLY" in text
        assert "OLIVEPRIVATE" not in text
        # maya's own private annotation and its reply are hers to export.
        assert "HIDDENREPLY" in text


def test_the_markdown_report_shows_notes_under_their_source_and_replies_under_passages(
    client, owner, discussed
):
    client.force_login(owner)
    _, body = download(client, "markdown")
    text = body.decode()
    alpha = text.index("## Alpha report")
    assert alpha < text.index("### Notes on this source") < text.index("NOTETEXT")
    assert text.index("NOTETEXT") < text.index("NOTEREPLY")
    assert "> **Reply by maya**" in text
    assert text.index("The first passage") < text.index("REPLYTEXT")
    assert "HIDDENREPLY" not in text


def test_every_other_format_still_exports(client, owner, discussed):
    client.force_login(owner)
    for fmt in ("csv", "xlsx", "bagit", "qdpx", "pandoc", "bibtex", "csljson", "qdc"):
        response, body = download(client, fmt)
        assert response.status_code == 200, fmt
        assert body
    _, body = download(client, "csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert len(rows) == 1 + 4  # one row per passage: replies and notes are in the JSON-LD


def test_replies_and_notes_survive_the_bag_round_trip(owner, discussed, tmp_path):
    first = members(export_bag(tmp_path / "first.zip"))
    empty_everything()
    result = import_bytes((tmp_path / "first.zip").read_bytes())
    assert result.comments_created == 4
    assert "4 replies and notes on sources added" in result.summary()
    reply = Comment.objects.get(uuid=discussed["reply"].uuid)
    assert reply.reply_to_annotation == Annotation.objects.get(
        uuid=discussed["a"]["olive-collection"].uuid
    )
    assert reply.author.username == "maya" and reply.note == "REPLYTEXT from maya"
    assert reply.created == discussed["reply"].created.replace(microsecond=0)
    note = Comment.objects.get(uuid=discussed["note"].uuid)
    assert note.collection is not None
    assert (note.collection.slug, note.visibility) == ("field-notes", "collection")
    assert note.replies.get().note == "NOTEREPLY from olive"
    assert not Comment.objects.filter(note="HIDDENREPLY").exists()
    second = members(export_bag(tmp_path / "second.zip"))
    assert second["data/annotations.jsonld"] == first["data/annotations.jsonld"]
    again = import_bytes((tmp_path / "first.zip").read_bytes())
    assert (again.comments_created, again.comments_existing) == (0, 4)
    assert Comment.objects.count() == 4


def test_an_importer_cannot_put_a_reply_under_someone_elses_name(
    owner, member, discussed, tmp_path
):
    from exports.package import PackageError

    data = export_bag(tmp_path / "bag.zip")
    empty_everything()
    from django.contrib.auth import get_user_model

    newcomer = get_user_model().objects.create_user("nina", password="pw-nina-123")
    archive_text("x", newcomer)
    with pytest.raises(PackageError) as refused:
        import_bytes(data, importer=newcomer)
    assert "maya" in str(refused.value)
    assert not Comment.objects.exists()
