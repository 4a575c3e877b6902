"""A team forms in real Chromium: an owner creates a collection and an invitation link; a
newcomer opens it, signs up (self-registration is off) and annotates a source there."""

from __future__ import annotations

import pytest

from annotations.models import Annotation
from archive.models import Collection
from tests.conftest import archive_text, drag_select, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "The harbour board met on Tuesday and voted to close the east quay to fishing boats.\n"


def test_owner_invites_a_newcomer_by_link_who_signs_up_and_annotates(
    page, _playwright_browser, live_server, owner, settings
):
    settings.SCHOLION_SELF_REGISTRATION = False
    login(page, "olive", "pw-olive-123")
    page.goto("/collections/")
    page.get_by_role("link", name="New collection").click()
    page.get_by_label("Title").fill("Harbour board")
    page.get_by_label("Description").fill("Minutes and press on the harbour.")
    page.get_by_role("button", name="Create collection").click()
    page.get_by_role("heading", name="Harbour board").wait_for()
    collection = Collection.objects.get(title="Harbour board")
    source = archive_text(TEXT, user=owner, collection=collection, via="paste")

    page.get_by_role("link", name="Members").click()
    page.get_by_label("Role", exact=True).last.select_option("annotator")
    page.get_by_label("Number of people").fill("2")
    page.get_by_role("button", name="Make invitation link").click()
    link = page.get_by_label("Your new invitation link").input_value()
    assert "/join/" in link

    context = _playwright_browser.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 850}
    )
    context.set_default_timeout(10_000)
    newcomer = context.new_page()
    try:
        newcomer.goto(link)
        newcomer.get_by_role("heading", name="Join “Harbour board”").wait_for()
        assert "olive invites you" in newcomer.content()
        newcomer.get_by_label("Username").fill("nadia")
        newcomer.get_by_label("E-mail address").fill("nadia@example.org")
        newcomer.get_by_label("Password", exact=True).fill("harbour-quay-1998")
        newcomer.get_by_label("Password confirmation").fill("harbour-quay-1998")
        newcomer.get_by_role("button", name="Create account and join").click()
        newcomer.get_by_text("Welcome, nadia. You joined “Harbour board” as annotator.").wait_for()
        newcomer.get_by_role("link", name=source.title).click()
        start = TEXT.index("voted")
        end = start + len("voted to close the east quay")
        drag_select(newcomer, start, end)
        newcomer.get_by_role("button", name="Annotate").click()
        newcomer.get_by_role("button", name="Save").click()
        newcomer.locator("#ann-list .ann").first.wait_for()
    finally:
        context.close()
    annotation = Annotation.objects.get()
    assert annotation.author.username == "nadia"
    assert annotation.exact == "voted to close the east quay"
    assert annotation.collection == collection

    page.reload()
    assert "nadia joined as annotator through invitation link" in page.content()
