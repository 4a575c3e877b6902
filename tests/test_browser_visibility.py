"""Two researchers in one collection, in two real browsers, and a stranger."""

from __future__ import annotations

import pytest

from annotations.models import Annotation
from archive.models import Membership
from tests.conftest import drag_select, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def annotate_with(page, tag: str, visibility_label: str) -> None:
    before = page.locator("#ann-list .ann").count()
    page.get_by_role("button", name="Annotate").click()
    page.locator("#editor-tags").fill(tag)
    page.locator("#editor-tags").press("Enter")
    page.get_by_label("Visible to").select_option(label=visibility_label)
    page.get_by_role("button", name="Save").click()
    page.wait_for_function(
        "n => document.querySelectorAll('#ann-list .ann').length > n", arg=before
    )


def test_members_see_collection_annotations_but_not_private_ones(
    page, _playwright_browser, live_server, demo_source, owner, stranger
):
    url = f"/sources/{demo_source.uuid}/"
    login(page, "maya", "pw-maya-123")
    page.goto(url)
    drag_select(page, 0, 11)
    annotate_with(page, "shared-code", "Collection members")
    drag_select(page, 30, 50)
    annotate_with(page, "my-private-code", "Private (only me)")
    shared = Annotation.objects.get(tags__name="shared-code")
    private = Annotation.objects.get(tags__name="my-private-code")
    assert private.visibility == "private" and shared.visibility == "collection"
    assert "Private (only me)" in page.locator(f"#a-{private.uuid}").inner_text()

    other = _playwright_browser.new_context(base_url=live_server.url)
    olive = other.new_page()
    login(olive, "olive", "pw-olive-123")
    olive.goto(url)
    assert olive.locator(f"#a-{shared.uuid}").is_visible()
    assert "shared-code" in olive.locator(".ann-panel").inner_text()
    assert olive.locator(f'mark[data-anns~="{shared.uuid}"]').count() >= 1
    assert olive.locator(f"#a-{private.uuid}").count() == 0
    assert "my-private-code" not in olive.content()
    # Olive annotates too; Maya sees it after a reload.
    drag_select(olive, 60, 80)
    annotate_with(olive, "olive-code", "Collection members")
    page.reload()
    assert "olive-code" in page.locator(".ann-panel").inner_text()
    other.close()

    outsider = _playwright_browser.new_context(base_url=live_server.url)
    sam = outsider.new_page()
    login(sam, "sam", "pw-sam-123")
    response = sam.goto(url)
    assert response.status == 404
    assert demo_source.title not in sam.content()
    outsider.close()


def test_a_viewer_reads_but_is_not_offered_annotate(
    page, live_server, demo_source, collection, django_user_model
):
    viewer = django_user_model.objects.create_user("vera", password="pw-vera-123")
    Membership.objects.create(collection=collection, user=viewer, role=Membership.Role.VIEWER)
    login(page, "vera", "pw-vera-123")
    page.goto(f"/sources/{demo_source.uuid}/")
    assert page.locator("#text-layer").is_visible()
    drag_select(page, 0, 11)
    assert page.get_by_role("button", name="Annotate").is_hidden()
