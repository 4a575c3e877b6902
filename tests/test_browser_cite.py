"""Citing in real Chromium: pick a passage of another source, follow it, see the backlink."""

from __future__ import annotations

import json
import os

import pytest

from annotations.models import Annotation
from tests.conftest import archive_text, drag_select, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CITED_TEXT = (
    "The harbour strike began on a Tuesday. Dockers refused to unload the grain ships, "
    "and within a week the city had run short of bread."
)
SCREENSHOTS = os.environ.get("SCHOLION_SCREENSHOTS", "")


@pytest.fixture
def cited(owner, collection):
    return archive_text(
        CITED_TEXT,
        owner,
        collection,
        metadata={
            "title": "The Harbour Strike",
            "creators": ["Okafor, Ada"],
            "date_published": "1998",
        },
    )


def test_cite_a_passage_with_the_picker_follow_it_and_see_the_backlink(
    page, live_server, demo_source, cited
):
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    text = demo_source.text
    start = text.index("coordinated series")
    drag_select(page, start, start + len("coordinated series"))
    page.get_by_role("button", name="Annotate").click()
    page.get_by_label("Note (Markdown)").fill(f"Compare the strike [@{cited.citation_key}, p. 2].")

    # Find the source by typing, choose it with the keyboard.
    page.get_by_role("button", name="Cite a source…").click()
    search = page.get_by_role("combobox", name="Find a source")
    search.fill("harb")
    page.get_by_role("option", name="The Harbour Strike").wait_for()
    search.press("ArrowDown")
    search.press("Enter")

    # Pick the passage in the cited source's own text.
    page.get_by_role("button", name="Pick a passage…").click()
    dialog = page.get_by_role("dialog", name="Pick a passage of “The Harbour Strike”")
    dialog.wait_for()
    s, e = CITED_TEXT.index("grain ships"), CITED_TEXT.index("grain ships") + len("grain ships")
    drag_select(page, s, e, within="dialog.picker .picker-layer")
    dialog.get_by_text("Selected: “grain ships”").wait_for()
    dialog.get_by_role("button", name="Use this passage").click()
    page.get_by_label("Locator", exact=True).fill("2")
    page.get_by_label("Comment").fill("the same week")
    page.get_by_role("button", name="Add citation").click()
    page.get_by_role("list", name="Citations in this annotation").get_by_text(
        "The Harbour Strike: “grain ships”"
    ).wait_for()
    if SCREENSHOTS:
        page.locator("form.editor").screenshot(path=f"{SCREENSHOTS}/editor.png")
    page.get_by_role("button", name="Save").click()
    page.wait_for_function("() => document.querySelectorAll('#ann-list .ann').length === 1")

    annotation = Annotation.objects.get()
    citation = annotation.citations.get()
    assert (citation.source_id, citation.start, citation.end) == (cited.pk, s, e)
    assert (citation.locator, citation.comment) == ("2", "the same week")

    entry = page.locator(f"#a-{annotation.uuid}")
    # The inline key is a link to the source; the citation lists the passage.
    key_link = entry.locator("a.cite")
    assert key_link.inner_text() == "Okafor 1998"
    assert key_link.get_attribute("href") == f"/sources/{cited.uuid}/"
    cite_link = entry.get_by_role("list", name="Cites").get_by_role("link")
    assert cite_link.inner_text() == "The Harbour Strike"
    if SCREENSHOTS:
        page.locator(".ann-panel").screenshot(path=f"{SCREENSHOTS}/panel-citations.png")

    # Copy link copies the highlight's passage URL.
    entry.get_by_role("button", name="Copy link to this passage").click()
    page.get_by_role("status").filter(has_text="Link copied").wait_for(state="attached")

    # Follow the citation: the cited passage is marked, and the backlink is there.
    cite_link.click()
    page.wait_for_url(f"**/sources/{cited.uuid}/passages/{s}-{e}/")
    marked = page.locator("#text-layer [data-passage]")
    assert "".join(marked.all_inner_texts()) == "grain ships"
    cited_by = page.get_by_role("region", name="Citing this passage")
    assert "coordinated series" in cited_by.inner_text()
    cited_by.get_by_role("link", name=demo_source.title).wait_for()
    page.goto(f"/sources/{cited.uuid}/")
    cited_by = page.get_by_role("region", name="Cited by")
    assert "coordinated series" in cited_by.inner_text()
    if SCREENSHOTS:
        page.locator(".cited-by").screenshot(path=f"{SCREENSHOTS}/cited-by.png")
        page.get_by_text("Cite this source").click()
        page.screenshot(path=f"{SCREENSHOTS}/cited-source.png", full_page=True)

    # Back to the citing annotation through the backlink.
    cited_by.get_by_role("link", name=demo_source.title).click()
    page.wait_for_url(f"**/sources/{demo_source.uuid}/#a-{annotation.uuid}")


def test_an_external_reference_and_a_pasted_passage_link(page, live_server, demo_source, cited):
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    drag_select(page, 0, 12)
    page.get_by_role("button", name="Annotate").click()
    page.get_by_role("button", name="Cite a source…").click()
    s = CITED_TEXT.index("Dockers")
    link = f"{live_server.url}/sources/{cited.uuid}/passages/{s}-{s + 7}/"
    page.get_by_role("combobox", name="Find a source").fill(link)
    page.get_by_text("Passage: “Dockers”").wait_for()
    page.get_by_role("button", name="Add citation").click()

    page.get_by_role("button", name="External reference…").click()
    page.get_by_label("URL").fill("javascript:alert(1)")
    page.get_by_label("Title").fill("Bad link")
    page.get_by_role("button", name="Add reference").click()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").filter(has_text="http").wait_for()
    assert not Annotation.objects.exists()

    # Fix it: remove the bad reference, add a good one.
    page.get_by_role("button", name="Remove citation Bad link").click()
    page.get_by_role("button", name="External reference…").click()
    page.get_by_label("DOI").fill("10.1000/xyz")
    page.get_by_label("Title").fill("Bread and Ports")
    page.get_by_role("button", name="Add reference").click()
    page.get_by_role("button", name="Save").click()
    page.wait_for_function("() => document.querySelectorAll('#ann-list .ann').length === 1")
    annotation = Annotation.objects.get()
    assert [c.as_text() for c in annotation.citations.all()] == [
        f"The Harbour Strike [@{cited.citation_key}], “Dockers” ({s}–{s + 7})",
        "Bread and Ports <https://doi.org/10.1000/xyz>",
    ]
    external = page.get_by_role("link", name="Bread and Ports")
    assert external.get_attribute("href") == "https://doi.org/10.1000/xyz"

    # Editing keeps the citations (they round-trip through the editor).
    page.get_by_role("button", name="Edit").click()
    page.get_by_role("list", name="Citations in this annotation").get_by_text(
        "Bread and Ports"
    ).wait_for()
    page.get_by_label("Note (Markdown)").fill("Edited.")
    page.get_by_role("button", name="Save").click()
    page.locator(f"#a-{annotation.uuid} .note").get_by_text("Edited.").wait_for()
    assert annotation.citations.count() == 2


def test_a_late_source_list_keeps_the_source_the_user_highlighted(
    page, live_server, demo_source, cited, owner, collection
):
    """Typing on while the user moves through the list: the list for the longer query arrives
    after they highlighted a source, and Enter still chooses the source they highlighted."""
    archive_text("Ledgers.", owner, collection, metadata={"title": "Harbour Accounts"})
    held = []
    page.route("**/api/sources/?q=harbour%20s", lambda route: held.append(route))
    login(page, "maya", "pw-maya-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    drag_select(page, 0, 12)
    page.get_by_role("button", name="Annotate").click()
    page.get_by_role("button", name="Cite a source…").click()
    search = page.get_by_role("combobox", name="Find a source")
    listbox = page.get_by_role("listbox", name="Sources")
    search.fill("harb")
    listbox.get_by_role("option", name="Harbour Accounts").wait_for()
    with page.expect_request("**/api/sources/?q=harbour%20s"):
        search.fill("harbour s")
    search.press("ArrowDown")
    search.press("ArrowDown")
    highlighted = listbox.locator('[aria-selected="true"]')
    assert [t.split("\n")[0] for t in highlighted.all_inner_texts()] == ["The Harbour Strike"]

    held[0].continue_()
    listbox.get_by_role("option", name="Harbour Accounts").wait_for(state="detached")
    assert [t.split("\n")[0] for t in highlighted.all_inner_texts()] == ["The Harbour Strike"]
    search.press("Enter")
    page.get_by_role("button", name="Add citation").click()
    page.get_by_role("list", name="Citations in this annotation").get_by_text(
        "The Harbour Strike"
    ).wait_for()


# --- "Cite this source": copying each format -------------------------------------------------


@pytest.fixture
def journal_article(owner, collection):
    return archive_text(
        CITED_TEXT,
        owner,
        collection,
        metadata={
            "title": "Grain Prices in 1900",
            "source_type": "article-journal",
            "creators": ["Okafor, Ada"],
            "date_published": "1998",
            "container_title": "Journal of Ports",
            "volume": "12",
            "issue": "3",
            "pages": "45–67",
            "doi": "10.1234/jaeh.1998.042_3",
        },
    )


@pytest.fixture
def clipboard_page(_playwright_browser, live_server):
    """A page whose context may read and write the clipboard, as a person's browser does."""
    context = _playwright_browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1366, "height": 850},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_each_format_in_the_cite_box_copies_exactly_the_text_shown(clipboard_page, journal_article):
    from archive.cite import bibtex

    page = clipboard_page
    login(page, "olive", "pw-olive-123")
    page.goto(f"/sources/{journal_article.uuid}/")
    page.get_by_text("Cite this source").click()
    status = page.locator(".cite-status")

    page.get_by_role("button", name="Copy Chicago reference").click()
    status.filter(has_text="Copied Chicago reference").wait_for(state="attached")
    chicago = page.evaluate("navigator.clipboard.readText()")
    assert chicago == page.locator("#cite-chicago-text").text_content()
    assert chicago.startswith("Okafor, Ada. 1998. “Grain Prices in 1900.” Journal of Ports 12 (3)")

    # With the keyboard: focus the button, press Enter.
    page.get_by_role("button", name="Copy BibTeX").focus()
    page.keyboard.press("Enter")
    status.filter(has_text="Copied BibTeX").wait_for(state="attached")
    permalink = f"{page.url.split('/sources/')[0]}/sources/{journal_article.uuid}/"
    assert page.evaluate("navigator.clipboard.readText()") == bibtex(journal_article, permalink)

    page.get_by_role("button", name="Copy APA reference").click()
    status.filter(has_text="Copied APA reference").wait_for(state="attached")
    assert (
        page.evaluate("navigator.clipboard.readText()")
        == page.locator("#cite-apa-text").text_content()
    )

    page.get_by_text("CSL-JSON", exact=True).click()
    page.get_by_role("button", name="Copy CSL-JSON").click()
    status.filter(has_text="Copied CSL-JSON").wait_for(state="attached")
    items = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert items[0]["type"] == "article-journal" and items[0]["volume"] == "12"
    if SCREENSHOTS:
        page.locator("#cite-box").screenshot(path=f"{SCREENSHOTS}/cite-box-copied.png")


def test_without_the_clipboard_api_copy_selects_the_text_and_says_so(page, journal_article):
    # As on a page served over plain HTTP from another host: no navigator.clipboard.
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    login(page, "olive", "pw-olive-123")
    page.goto(f"/sources/{journal_article.uuid}/")
    page.get_by_text("Cite this source").click()
    page.get_by_role("button", name="Copy APA reference").click()
    status = page.locator(".cite-status")
    status.filter(has_text="APA reference").wait_for(state="attached")
    assert (
        page.evaluate("window.getSelection().toString()")
        == page.locator("#cite-apa-text").text_content()
    )
