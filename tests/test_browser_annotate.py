"""Annotating in real Chromium: select with mouse or keyboard, tag, note, edit, delete."""

from __future__ import annotations

import pytest

from annotations.models import Annotation
from tests.conftest import archive_text, drag_select, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_source(page, live_server, source, username="maya", password="pw-maya-123"):  # noqa: S107
    login(page, username, password)
    page.goto(f"/sources/{source.uuid}/")


def annotate(page, tags=(), note=""):
    before = page.locator("#ann-list .ann").count()
    page.get_by_role("button", name="Annotate").click()
    tag_box = page.locator("#editor-tags")
    for tag in tags:
        tag_box.fill(tag)
        tag_box.press("Enter")
    if note:
        page.get_by_label("Note (Markdown)").fill(note)
    page.get_by_role("button", name="Save").click()
    page.wait_for_function(
        "n => document.querySelectorAll('#ann-list .ann').length > n", arg=before
    )


def test_select_tag_note_reload_edit_and_delete(page, live_server, demo_source):
    open_source(page, live_server, demo_source)
    text = demo_source.text
    start = text.index("coordinated series")
    end = start + len("coordinated series of operations")
    drag_select(page, start, end)
    annotate(
        page, tags=["event-description", "dates"], note="Describes the operations as *coordinated*."
    )

    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end) == (start, end)
    assert annotation.exact == "coordinated series of operations"
    assert sorted(t.name for t in annotation.tags.all()) == ["dates", "event-description"]
    mark = page.locator(f'mark[data-anns~="{annotation.uuid}"]')
    assert mark.first.inner_text().startswith("coordinated")
    entry = page.locator(f"#a-{annotation.uuid}")
    assert entry.locator("em").inner_text() == "coordinated"

    page.reload()
    assert page.locator(f'mark[data-anns~="{annotation.uuid}"]').count() >= 1

    entry.get_by_role("button", name="Edit").click()
    assert page.get_by_label("Note (Markdown)").input_value().startswith("Describes")
    page.get_by_label("Note (Markdown)").fill("Edited note.")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="updated").wait_for()
    annotation.refresh_from_db()
    assert annotation.note == "Edited note." and annotation.version == 2
    assert "Edited note." in entry.inner_text()

    entry.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    page.get_by_role("status").filter(has_text="deleted").wait_for()
    assert Annotation.objects.count() == 0
    assert page.locator("mark[data-anns]").count() == 0


def test_overlapping_highlights_read_as_several(page, live_server, demo_source):
    open_source(page, live_server, demo_source)
    drag_select(page, 0, 40)
    annotate(page, tags=["first"])
    drag_select(page, 20, 60)
    annotate(page, tags=["second"])
    assert Annotation.objects.count() == 2
    overlap = page.locator("mark.hl-2")
    assert overlap.count() >= 1
    assert len(overlap.first.get_attribute("data-anns").split()) == 2


def test_a_selection_across_paragraphs_keeps_the_paragraph_break(page, live_server, demo_source):
    text = demo_source.text
    first_break = text.index("\n\n")
    open_source(page, live_server, demo_source)
    drag_select(page, first_break - 12, first_break + 14)
    annotate(page, note="Spans two paragraphs.")
    annotation = Annotation.objects.get()
    assert "\n\n" in annotation.exact
    assert annotation.exact == text[annotation.start : annotation.end]
    assert (annotation.start, annotation.end) == (first_break - 12, first_break + 14)


PROGRAMMATIC_SELECT_JS = """
([start, end]) => {
  // A selection set by code-point offsets, as assistive tools and scripts make them.
  const runs = [...document.querySelectorAll('#text-layer [data-o]')];
  function point(offset) {
    for (const run of runs) {
      const node = run.firstChild; const base = Number(run.dataset.o); const chars = [...node.data];
      if (offset >= base && offset <= base + chars.length)
        return [node, chars.slice(0, offset - base).join('').length];
    }
  }
  const range = document.createRange();
  range.setStart(...point(start)); range.setEnd(...point(end));
  getSelection().removeAllRanges(); getSelection().addRange(range);
  document.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
}
"""


def test_emoji_and_combining_marks_anchor_exactly(page, live_server, member, collection):
    text = "Before \U0001f642 emoji and e\u0301 combining marks here."
    source = archive_text(text, member, collection)
    open_source(page, live_server, source)
    start = text.index("\U0001f642")
    end = text.index(" here")
    drag_select(page, start, end)
    annotate(page, tags=["script-mix"])
    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end) == (start, end)
    assert annotation.exact == text[start:end] == "\U0001f642 emoji and e\u0301 combining marks"


def test_right_to_left_text_after_astral_characters_anchors_exactly(
    page, live_server, member, collection
):
    text = (
        "\U0001f642\U0001f30d \u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd"
        " and \u0645\u0631\u062d\u0628\u0627 end"
    )
    source = archive_text(text, member, collection)
    open_source(page, live_server, source)
    start = text.index("\u05e2")
    end = text.index(" end")
    page.evaluate(PROGRAMMATIC_SELECT_JS, [start, end])
    annotate(page, tags=["rtl"])
    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end) == (start, end)
    assert annotation.exact == text[start:end]


def test_keyboard_selection_and_shortcut_open_the_editor(page, live_server, demo_source):
    open_source(page, live_server, demo_source)
    page.locator("#text-layer").focus()
    for _ in range(11):
        page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("a")
    tag_box = page.locator("#editor-tags")
    assert tag_box.evaluate("el => el === document.activeElement")
    tag_box.fill("keyboard")
    tag_box.press("Enter")
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="saved").wait_for()
    annotation = Annotation.objects.get()
    assert annotation.start == 0 and annotation.exact == demo_source.text[: annotation.end]
    assert annotation.end >= 5


def test_tag_suggestions_and_moving_between_highlights_and_entries(
    page, live_server, demo_source, member
):
    existing = Annotation.create_anchored(
        author=member, source=demo_source, start=100, end=140, tags=["casualty-figures"], note="n"
    )
    open_source(page, live_server, demo_source)
    drag_select(page, 0, 30)
    page.get_by_role("button", name="Annotate").click()
    page.locator("#editor-tags").fill("casu")
    option = page.locator("#editor-suggestions").get_by_role("option", name="casualty-figures")
    option.wait_for()
    page.locator("#editor-tags").press("ArrowDown")
    page.locator("#editor-tags").press("Enter")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="saved").wait_for()
    new = Annotation.objects.exclude(pk=existing.pk).get()
    assert [t.name for t in new.tags.all()] == ["casualty-figures"]

    page.locator(f'mark[data-anns~="{existing.uuid}"]').first.click()
    entry = page.locator(f"#a-{existing.uuid}")
    assert "is-active" in entry.get_attribute("class")
    page.locator(f"#a-{new.uuid} [data-goto]").click()
    assert "is-active" in page.locator(f'mark[data-anns~="{new.uuid}"]').first.get_attribute(
        "class"
    )

    Annotation.create_anchored(
        author=member, source=demo_source, start=200, end=220, tags=["other"]
    )
    page.reload()
    page.get_by_label("Tag", exact=True).select_option("other")
    assert page.locator(f"#a-{existing.uuid}").is_hidden()
    assert page.locator(".ann:not([hidden])").count() == 1


def test_a_late_suggestion_list_keeps_the_tag_the_user_highlighted(
    page, live_server, demo_source, member
):
    """The editor fetches suggestions for the empty box when it opens. If the user types, moves
    into that first list and the list for what they typed arrives only then, Enter still adds
    the tag they highlighted, not the letters typed so far."""
    for start, tag in ((100, "casualty-figures"), (200, "dates")):
        Annotation.create_anchored(
            author=member, source=demo_source, start=start, end=start + 20, tags=[tag]
        )
    held = []
    page.route("**/api/tags/?q=casu&*", lambda route: held.append(route))
    open_source(page, live_server, demo_source)
    drag_select(page, 0, 30)
    page.get_by_role("button", name="Annotate").click()
    listbox = page.locator("#editor-suggestions")
    listbox.get_by_role("option", name="dates").wait_for()  # the list for the empty box
    with page.expect_request("**/api/tags/?q=casu&*"):
        page.locator("#editor-tags").fill("casu")
    page.locator("#editor-tags").press("ArrowDown")
    highlighted = listbox.locator('[aria-selected="true"]')
    assert highlighted.all_inner_texts() == ["casualty-figures"]

    held[0].continue_()
    listbox.get_by_role("option", name="dates").wait_for(state="detached")
    assert highlighted.all_inner_texts() == ["casualty-figures"]
    assert page.locator("#editor-tags").get_attribute(
        "aria-activedescendant"
    ) == highlighted.get_attribute("id")
    page.locator("#editor-tags").press("Enter")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="saved").wait_for()
    new = Annotation.objects.filter(start=0).get()
    assert [t.name for t in new.tags.all()] == ["casualty-figures"]


def test_reading_works_without_javascript(_playwright_browser, live_server, demo_source, member):
    Annotation.create_anchored(author=member, source=demo_source, start=3, end=11, note="Date.")
    context = _playwright_browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    assert page.locator("mark[data-anns]").first.inner_text() == "March 31"
    assert "Date." in page.locator(".ann-panel").inner_text()
    context.close()


def test_the_annotate_button_goes_away_once_the_editor_opens(page, live_server, demo_source):
    open_source(page, live_server, demo_source)
    drag_select(page, 0, 20)
    button = page.get_by_role("button", name="Annotate")
    assert button.is_visible()
    page.keyboard.press("a")
    page.locator("#editor-tags").wait_for()
    assert button.is_hidden()
    page.keyboard.press("Escape")
    assert page.locator("form.editor").count() == 0
