"""The annotate flow on every screen, in real Chromium: a phone with touch, the desktop editor,
a keyboard caret, undoing a delete, and the home page a visitor sees first."""

from __future__ import annotations

import pytest

from annotations.models import Annotation
from tests.conftest import drag_select, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the system does when a finger long-presses a word and drags the handles: a selection,
# and no mouse or key event at all.
TOUCH_SELECT_JS = """
([start, end]) => {
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
}
"""
BOX_JS = "el => { const r = el.getBoundingClientRect(); return [r.top, r.bottom, innerHeight]; }"
PASSAGE_BOX_JS = """() => {
  const h = CSS.highlights.get('scholion-passage'); if (!h) return null;
  const range = [...h][0]; const r = range.getBoundingClientRect();
  return {text: range.toString(), top: r.top, bottom: r.bottom};
}"""


@pytest.fixture
def phone(_playwright_browser, live_server):
    context = _playwright_browser.new_context(
        base_url=live_server.url,
        viewport={"width": 390, "height": 844},
        has_touch=True,
        is_mobile=True,
    )
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_annotating_on_a_phone_by_touch(phone, live_server, demo_source, member):
    login(phone, "maya", "pw-maya-123")
    phone.goto(f"/sources/{demo_source.uuid}/")
    text = demo_source.text
    start = text.index("Coordinated Strikes")
    end = start + len("Coordinated Strikes Across Borders")
    phone.evaluate(TOUCH_SELECT_JS, [start, end])

    button = phone.get_by_role("button", name="Annotate")
    button.wait_for()
    top, bottom, height = button.evaluate(BOX_JS)
    assert top >= 0 and bottom <= height  # in reach at the bottom of the screen, whatever scrolled
    button.tap()

    sheet = phone.get_by_role("form", name="New annotation")
    sheet_top, sheet_bottom, height = sheet.evaluate(BOX_JS)
    assert sheet_bottom == pytest.approx(height, abs=1) and sheet_top > height / 3
    passage = phone.evaluate(PASSAGE_BOX_JS)
    assert passage["text"] == "Coordinated Strikes Across Borders"
    assert passage["top"] >= 0 and passage["bottom"] <= sheet_top  # marked, above the sheet
    phone.locator("#editor-tags").fill("headings")
    phone.locator("#editor-tags").press("Enter")
    phone.get_by_role("button", name="Save").tap()
    phone.get_by_role("status").filter(has_text="saved").wait_for()

    annotation = Annotation.objects.get()
    assert (annotation.start, annotation.end) == (start, end)
    card = phone.locator(f"#a-{annotation.uuid}")
    assert "headings" in card.inner_text()
    card_top, card_bottom, height = card.evaluate(BOX_JS)
    assert card_bottom <= height + 1 and card_top > 0
    mark = phone.locator(f'#text-layer mark[data-anns~="{annotation.uuid}"]').first
    mark_top, mark_bottom, _ = mark.evaluate(BOX_JS)
    assert mark_top >= 0 and mark_bottom <= card_top  # the highlight, next to its card

    card.get_by_role("button", name="Close this annotation").tap()
    assert card.evaluate(BOX_JS)[0] > height  # back in the list below the text
    mark.tap()
    card_top, card_bottom, height = card.evaluate(BOX_JS)
    assert card_top > 0 and card_bottom <= height + 1


def test_the_header_folds_behind_a_menu_button_on_a_phone(phone, live_server, member):
    login(phone, "maya", "pw-maya-123")
    menu = phone.get_by_role("button", name="Menu")
    assert menu.get_attribute("aria-expanded") == "false"
    collections = phone.get_by_role("link", name="Collections")
    assert collections.is_hidden()
    menu.focus()
    phone.keyboard.press("Enter")
    assert menu.get_attribute("aria-expanded") == "true"
    assert collections.is_visible()
    collections.focus()
    phone.keyboard.press("Escape")
    assert menu.get_attribute("aria-expanded") == "false" and collections.is_hidden()
    assert menu.evaluate("el => el === document.activeElement")


def test_on_a_laptop_screen_save_is_in_sight_and_the_passage_stays_marked(
    page, live_server, demo_source, member
):
    Annotation.create_anchored(
        author=member, source=demo_source, start=400, end=420, tags=["casualty-figures"]
    )
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    text = demo_source.text
    for quote in ("coordinated series of operations", "Coordinated Strikes Across Borders"):
        start = text.index(quote)
        drag_select(page, start, start + len(quote))
        page.get_by_role("button", name="Annotate").click()
        top, bottom, height = page.get_by_role("button", name="Save").evaluate(BOX_JS)
        assert top >= 0 and bottom <= height, quote
        passage = page.evaluate(PASSAGE_BOX_JS)
        assert passage["text"] == quote and passage["top"] >= 0 and passage["bottom"] <= height

        # The suggestion list closes when the focus leaves it.
        suggestions = page.locator("#editor-suggestions")
        suggestions.get_by_role("option", name="casualty-figures").wait_for()
        page.keyboard.press("Tab")
        assert suggestions.is_hidden()

        # The citation search opens in view.
        page.get_by_role("button", name="Cite a source…").click()
        top, bottom, height = page.locator("#cite-search").evaluate(BOX_JS)
        assert top >= 0 and bottom <= height
        page.get_by_role("button", name="Cancel").click()
        assert page.evaluate(PASSAGE_BOX_JS) is None  # unmarked with its editor closed


def test_a_late_suggestion_list_stays_shut_once_the_focus_left(
    page, live_server, demo_source, member
):
    Annotation.create_anchored(author=member, source=demo_source, start=400, end=420, tags=["x"])
    held = []
    page.route("**/api/tags/?q=&*", lambda route: held.append(route))
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    drag_select(page, 0, 20)
    with page.expect_request("**/api/tags/?q=&*"):
        page.get_by_role("button", name="Annotate").click()
    page.keyboard.press("Tab")
    held[0].continue_()
    page.wait_for_timeout(300)
    assert page.locator("#editor-suggestions").is_hidden()


def test_a_keyboard_caret_starts_a_selection_in_the_middle_of_the_text(
    page, live_server, demo_source
):
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    page.locator("#text-layer").focus()
    for _ in range(8):
        page.keyboard.press("ArrowDown")
    assert page.locator(".reading-caret").is_visible()
    page.keyboard.press("Control+ArrowRight")
    for _ in range(12):
        page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("a")
    page.locator("#editor-tags").fill("caret")
    page.locator("#editor-tags").press("Enter")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="saved").wait_for()
    annotation = Annotation.objects.get()
    assert annotation.start > 300  # eight lines down, not the top of the text or screen
    assert annotation.end - annotation.start == 12
    assert annotation.exact == demo_source.text[annotation.start : annotation.end]


def test_undoing_a_delete_brings_the_annotation_back(page, live_server, demo_source, member):
    annotation = Annotation.create_anchored(
        author=member, source=demo_source, start=3, end=11, note="Keep me.", tags=["dates"]
    )
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    entry = page.locator(f"#a-{annotation.uuid}")
    entry.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    undo = page.get_by_role("button", name="Undo")
    undo.wait_for()
    assert page.locator("mark[data-anns]").count() == 0
    assert not Annotation.objects.exists()
    assert undo.evaluate("el => el === document.activeElement")
    undo.click()
    page.get_by_role("status").filter(has_text="restored").wait_for()
    restored = Annotation.objects.get()
    assert restored.uuid == annotation.uuid and restored.note == "Keep me."
    assert page.locator(f'mark[data-anns~="{annotation.uuid}"]').first.inner_text() == "March 31"
    assert "Keep me." in entry.inner_text()
    assert undo.is_hidden()


def test_the_logged_out_home_page_says_what_scholion_is(page, live_server, demo_source):
    page.goto("/")
    welcome = page.get_by_role("region", name="Scholion: archive sources, annotate them together")
    assert "W3C Web Annotations" in welcome.inner_text()
    assert "demo login" in welcome.inner_text()
    assert "0 sources" not in page.locator("main").inner_text()
    assert "log in to see your collections' sources" in page.locator("main").inner_text()


def test_the_caret_works_in_the_passage_picker_too(page, live_server, demo_source, member):
    from tests.conftest import archive_text

    cited = archive_text(
        "First line of the cited text.\n\nSecond paragraph, where the quote is.", member
    )
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    drag_select(page, 0, 20)
    page.get_by_role("button", name="Annotate").click()
    page.get_by_role("button", name="Cite a source…").click()
    search = page.get_by_role("combobox", name="Find a source")
    search.fill("cited text")
    page.get_by_role("option", name=cited.title).wait_for()
    search.press("ArrowDown")
    search.press("Enter")
    page.get_by_role("button", name="Pick a passage…").click()
    dialog = page.locator("dialog.picker")
    dialog.wait_for()
    page.keyboard.press("ArrowDown")
    caret = dialog.locator(".reading-caret")
    assert caret.is_visible()
    page.keyboard.press("Home")
    for _ in range(6):
        page.keyboard.press("Shift+ArrowRight")
    dialog.get_by_text("Selected: “Second”").wait_for()
    assert caret.is_hidden()  # a selection, no caret
