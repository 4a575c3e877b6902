"""Searching in real Chromium: from the box in the header, with the keyboard, to the passage."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotations.models import Annotation
from archive.models import Collection, Membership
from tests.conftest import archive_text, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PARAGRAPH = (
    "The committee met again in the spring and went over the accounts of the previous year, "
    "line by line, before anyone was allowed to speak about the harbour."
)


def test_search_from_the_header_and_land_on_the_passage_far_down_a_long_source(
    page, live_server, member, collection
):
    # A long text whose annotated passage lies far below the first screen.
    text = "\n\n".join([PARAGRAPH] * 60 + ["The ledger was found in the customs house cellar."])
    source = archive_text(text, member, collection, metadata={"title": "Harbour Committee"})
    annotation = Annotation.create_anchored(
        author=member,
        source=source,
        exact="customs house cellar",
        tags=["provenance"],
        note="Where the ledger was found.",
    )
    login(page, "maya", "pw-maya-123")

    # The box in the header, by keyboard: type, Enter.
    search = page.get_by_role("searchbox", name="Search the archive")
    search.focus()
    page.keyboard.type("cellar")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search/?q=cellar")
    passages = page.get_by_role("region", name="Passages")
    result = passages.get_by_role("link", name="customs house cellar")
    expect(result.locator("mark")).to_have_text("cellar")  # the matched word is marked

    # Follow the result with the keyboard: the highlight is in view and active, and its
    # entry in the panel has the focus.
    result.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/sources/{source.uuid}/#a-{annotation.uuid}")
    highlight = page.locator(f'#text-layer mark[data-anns~="{annotation.uuid}"]')
    expect(highlight.first).to_have_text("customs house cellar")
    expect(highlight.first).to_have_class(re.compile(r"\bis-active\b"))
    expect(highlight.first).to_be_in_viewport()
    entry = page.locator(f"#a-{annotation.uuid}")
    expect(entry).to_be_focused()
    expect(entry.get_by_role("link", name="customs house cellar")).to_be_visible()


def test_follow_a_pair_of_tags_that_meet_to_their_passages(page, live_server, demo_source, member):
    a = Annotation.create_anchored(
        author=member,
        source=demo_source,
        exact="coordinated series of operations",
        tags=["event-description"],
    )
    b = Annotation.create_anchored(
        author=member,
        source=demo_source,
        exact="series of operations by the 'Axis of Resistance'",
        tags=["named-groups"],
    )
    alone = Annotation.create_anchored(
        author=member,
        source=demo_source,
        exact="Coordinated Strikes Across Borders",
        tags=["event-description"],
    )
    assert a.start < b.start < a.end < b.end < alone.start  # a and b overlap
    login(page, "maya", "pw-maya-123")
    page.goto("/search/tags/cooccurrence/")
    row = page.get_by_role("row").filter(has_text="named-groups")
    expect(row.get_by_role("cell").nth(2)).to_have_text("0")  # never on the same passage
    row.get_by_role("link", name="2 passages where event-description and named-groups meet").click()

    passages = page.get_by_role("region", name="Passages")
    expect(passages.get_by_role("heading")).to_have_text("Passages 2")
    links = passages.locator("blockquote").get_by_role("link")
    expect(links).to_have_text(
        ["series of operations by the 'Axis of Resistance'", "coordinated series of operations"]
    )
    links.first.click()
    page.wait_for_url(f"**/sources/{demo_source.uuid}/#a-{b.uuid}")
    expect(page.locator(f"#a-{b.uuid}")).to_be_focused()


def test_a_passage_link_opens_with_the_passage_in_view(
    page, _playwright_browser, live_server, member, collection
):
    """As search results, citations and "Copy link" give it: with #passage or without, and
    with JavaScript off."""
    text = "\n\n".join([PARAGRAPH] * 60 + ["The ledger was found in the customs house cellar."])
    source = archive_text(text, member, collection, metadata={"title": "Harbour Committee"})
    start = text.index("customs house")
    link = f"/sources/{source.uuid}/passages/{start}-{start + 13}/"
    login(page, "maya", "pw-maya-123")
    no_script = _playwright_browser.new_context(base_url=live_server.url, java_script_enabled=False)
    plain = no_script.new_page()
    login(plain, "maya", "pw-maya-123")
    for reader, url in ((page, link + "#passage"), (page, link), (plain, link + "#passage")):
        reader.goto(url)
        marked = reader.locator("#text-layer [data-passage]")
        expect(marked.first).to_have_text("customs house")
        expect(marked.first).to_be_in_viewport()
    no_script.close()


def test_filter_and_page_through_results_with_the_keyboard(page, live_server, member, collection):
    harbour = Collection.objects.create(slug="harbour", title="Harbour archive", owner=member)
    Membership.objects.create(collection=harbour, user=member, role=Membership.Role.OWNER)
    notes = archive_text(
        "\n\n".join([PARAGRAPH] * 14), member, collection, metadata={"title": "Minutes"}
    )
    customs = archive_text(PARAGRAPH, member, harbour, metadata={"title": "Customs book"})
    for i in range(12):
        start = notes.text.index(PARAGRAPH[:20], i * len(PARAGRAPH))
        Annotation.create_anchored(
            author=member, source=notes, start=start, end=start + 20, note=f"Ledger entry {i}."
        )
    for i in range(3):
        Annotation.create_anchored(
            author=member,
            source=customs,
            start=i * 10,
            end=i * 10 + 8,
            tags=["customs"],
            note=f"Ledger stamp {i}.",
        )
    login(page, "maya", "pw-maya-123")
    page.goto("/search/?q=ledger")
    passages = page.get_by_role("region", name="Passages")
    expect(passages.get_by_role("heading")).to_have_text("Passages 15")
    expect(passages.locator("li.result")).to_have_count(10)
    pages = page.get_by_role("navigation", name="Pages of passages")
    expect(pages).to_contain_text("Page 1 of 2")
    pages.get_by_role("link", name="More passages").focus()
    page.keyboard.press("Enter")
    expect(pages).to_contain_text("Page 2 of 2")
    expect(passages.locator("li.result")).to_have_count(5)

    # The filters, opened and used with the keyboard; the URL carries them.
    page.get_by_text("Filters", exact=True).focus()
    page.keyboard.press("Enter")
    page.get_by_label("Collection").select_option(label="Harbour archive")
    page.get_by_role("button", name="Apply filters").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"collection=harbour"))
    expect(passages.get_by_role("heading")).to_have_text("Passages 3")
    expect(page.get_by_label("Collection")).to_have_value("harbour")
    page.get_by_role("link", name="Clear filters").click()
    page.wait_for_url("**/search/?q=ledger")
    expect(passages.get_by_role("heading")).to_have_text("Passages 15")
