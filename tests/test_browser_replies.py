"""Replying to an annotation and writing a note on a whole source, in real Chromium."""

from __future__ import annotations

import pytest

from annotations.models import Annotation, Comment
from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reply_to_an_annotation_see_it_edit_it_and_delete_the_thread(
    page, live_server, demo_source, owner, member
):
    annotation = Annotation.create_anchored(
        author=owner, source=demo_source, start=0, end=20, note="Is this date right?"
    )
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    entry = page.locator(f"#a-{annotation.uuid}")
    entry.get_by_role("button", name="Reply to this annotation").click()
    page.get_by_label("Your reply").fill("Checked it: the *wire* report agrees.")
    page.get_by_role("button", name="Post reply").click()
    page.get_by_role("status").filter(has_text="Reply posted.").wait_for()

    reply = Comment.objects.get()
    assert (reply.reply_to_annotation, reply.author) == (annotation, member)
    shown = page.locator(f"#a-{annotation.uuid} .replies #c-{reply.uuid}")
    assert shown.locator("em").inner_text() == "wire"
    assert "maya" in shown.inner_text()
    assert page.evaluate("document.activeElement.id") == f"c-{reply.uuid}"

    page.reload()
    shown.get_by_role("button", name="Edit this reply").click()
    assert page.get_by_label("Edit your reply").input_value().startswith("Checked it")
    page.get_by_label("Edit your reply").fill("Checked twice.")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("status").filter(has_text="Reply updated.").wait_for()
    reply.refresh_from_db()
    assert reply.note == "Checked twice."
    assert "Checked twice." in shown.inner_text()

    # The annotation's author deletes it: the question names the reply that goes with it.
    page.context.clear_cookies()
    login(page, "olive", "pw-olive-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    page.locator(f"#a-{annotation.uuid} > .ann-actions").get_by_role(
        "button", name="Delete"
    ).click()
    dialog = page.get_by_role("dialog")
    assert "Its 1 reply will be deleted with it." in dialog.inner_text()
    dialog.get_by_role("button", name="Delete").click()
    page.get_by_role("status").filter(has_text="Annotation deleted.").wait_for()
    assert not Annotation.objects.exists() and not Comment.objects.exists()


def test_a_note_on_the_whole_source_is_written_from_its_page_and_answered(
    page, live_server, demo_source, owner, member
):
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    section = page.get_by_role("region", name="Notes on this source")
    section.get_by_role("button", name="Add a note on this source").click()
    page.get_by_label("Note on this source").fill("The article never names its **sources**.")
    page.get_by_label("Who can see it").select_option("collection")
    page.get_by_role("button", name="Save note").click()
    page.get_by_role("status").filter(has_text="Note saved.").wait_for()
    note = Comment.objects.get()
    assert (note.source, note.is_reply, note.visibility) == (demo_source, False, "collection")
    assert section.locator("strong").inner_text() == "sources"

    page.context.clear_cookies()
    login(page, "olive", "pw-olive-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    page.get_by_role("button", name="Reply to this note").click()
    page.get_by_label("Your reply").fill("Agreed.")
    page.get_by_role("button", name="Post reply").click()
    page.get_by_role("status").filter(has_text="Reply posted.").wait_for()
    assert note.replies.get().note == "Agreed."
    assert "Agreed." in section.locator(f"#c-{note.uuid} .replies").inner_text()


def test_a_source_without_a_text_layer_is_discussed_in_notes(
    page, live_server, owner, member, collection, settings
):
    """A file too long to read in the browser has no passage to select; a note on all of it
    is written from its page as on any other, and its page stays free of script errors."""
    from archive.ingest import archive_chunks

    settings.SCHOLION_MAX_TEXT_BYTES = 1024
    ledger = "Harbour ledger 1911\n\n" + "Entry: tonnage, quay and dues.\n" * 200
    source = archive_chunks(
        iter([ledger.encode()]), user=owner, collection=collection, filename="ledger.txt"
    ).source
    assert not source.has_text_layer
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{source.uuid}/")
    assert page.locator("#no-text-layer").is_visible()
    section = page.get_by_role("region", name="Notes on this source")
    section.get_by_role("button", name="Add a note on this source").click()
    page.get_by_label("Note on this source").fill("The 1911 dues column is blank.")
    page.get_by_role("button", name="Save note").click()
    page.get_by_role("status").filter(has_text="Note saved.").wait_for()
    assert Comment.objects.get().source == source
    assert "The 1911 dues column is blank." in section.inner_text()
    assert (
        page.get_by_role("button", name="Annotate").count() == 0
        or not page.get_by_role("button", name="Annotate").is_visible()
    )
    assert errors == []
