"""A codebook curated in real Chromium: from the collection, an owner takes tags into the
codebook, renames one and merges two, each through its confirmation; the reading page shows
a code's colour beside its name."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotations.models import Annotation, Code
from tests.conftest import archive_text, login, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "Bread cost more in May. Wages fell in June. Rents held firm all through July.\n"


def test_owner_renames_and_merges_tags_from_the_collection(page, owner, member, collection):
    source = archive_text(TEXT, user=owner, collection=collection, via="paste")
    for start, tags in ((0, ["prices"]), (24, ["prices", "money"]), (44, ["money"])):
        Annotation.create_anchored(
            author=owner, source=source, start=start, end=start + 5, tags=tags
        )
    login(page, "olive", "pw-olive-123")
    page.goto(collection.get_absolute_url())
    page.get_by_role("link", name="Codebook").click()
    page.get_by_role("heading", name="Codebook of Field notes").wait_for()
    page.get_by_role("button", name="Add “prices” to the codebook").click()
    page.get_by_text("“prices” is now in the codebook.").wait_for()
    page.get_by_role("button", name="Add “money” to the codebook").click()
    page.get_by_text("“money” is now in the codebook.").wait_for()

    # Rename, with a colour: the tag's passages follow, its old page leads to the new one.
    code = page.locator("#code-prices")
    code.get_by_text("Change “prices”").click()
    code.get_by_label("Colour").select_option("teal")
    code.get_by_label("Description").fill("What things cost.")
    code.get_by_role("button", name="Save “prices”").click()
    page.get_by_text("Changed the description and colour of “prices”.").wait_for()
    code = page.locator("#code-prices")
    code.get_by_text("Change “prices”").click()
    code.get_by_label("New name").fill("Costs")
    code.get_by_role("button", name="Rename").click()
    page.get_by_text("Renamed “prices” to “Costs” on 2 passages of this collection.").wait_for()
    page.goto("/tags/prices/")
    page.get_by_role("heading", name="Tag: Costs").wait_for()
    assert page.url.endswith("/tags/costs/")

    # Merge: a confirmation that names each code's passages and lets the owner choose.
    page.goto(collection.get_absolute_url())
    page.get_by_role("link", name="Codebook").click()
    code = page.locator("#code-costs")
    code.get_by_text("Change “Costs”").click()
    code.get_by_label("Merge with").select_option("money")
    code.get_by_role("button", name="Merge…").click()
    page.get_by_role("heading", name="Merge “Costs” and “money”").wait_for()
    page.get_by_label("Keep “money” (2 passages)").check()
    assert page.get_by_label("Keep “Costs” (2 passages)").is_visible()
    page.get_by_role("button", name="Merge the two codes").click()
    page.get_by_text("Merged “Costs” into “money”: 2 passages moved.").wait_for()
    assert list(Code.objects.values_list("tag__name", flat=True)) == ["money"]
    assert Annotation.objects.filter(tags__name="money").count() == 3
    assert "olive merged the code “Costs” into “money”." in page.content()

    # The survivor takes a colour; the reading page shows it, and the name stays on the card.
    code = page.locator("#code-money")
    code.get_by_text("Change “money”").click()
    code.get_by_label("Colour").select_option("purple")
    code.get_by_role("button", name="Save “money”").click()
    page.get_by_text("Changed the colour of “money”.").wait_for()
    page.goto(source.get_absolute_url())
    alone = Annotation.objects.get(start=44)
    mark = page.locator(f'mark[data-anns="{alone.uuid}"]')
    assert "code-purple" in (mark.get_attribute("class") or "")
    assert mark.evaluate("m => getComputedStyle(m).backgroundColor") == "rgb(233, 213, 255)"
    assert page.locator(f"#a-{alone.uuid} .tags").inner_text().strip() == "money"


def test_a_rename_of_many_passages_is_followed_on_its_page_until_done(
    page, owner, collection, settings
):
    settings.SCHOLION_CODEBOOK_INLINE_PASSAGES = 2
    settings.SCHOLION_CODEBOOK_BATCH_PASSAGES = 2
    source = archive_text(TEXT, user=owner, collection=collection, via="paste")
    for start in (0, 24, 44):
        Annotation.create_anchored(
            author=owner, source=source, start=start, end=start + 5, tags=["prices"]
        )
    Code.add(collection, "prices", actor=owner)
    login(page, "olive", "pw-olive-123")
    page.goto("/collections/field-notes/codebook/")
    code = page.locator("#code-prices")
    code.get_by_text("Change “prices”").click()
    code.get_by_label("New name").fill("Costs")
    code.get_by_role("button", name="Rename").click()
    page.wait_for_url("**/codebook-jobs/*-*/")
    page.get_by_role("heading", name="Renaming “prices” to “Costs”").wait_for()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Queued")
    page.evaluate("window.stillTheSamePage = true")  # gone if the page were reloaded

    run_worker()

    expect(status).to_contain_text("Renamed “prices” to “Costs” on 3 passages of this collection.")
    expect(page.get_by_text("This page follows the change by itself.")).to_be_hidden()
    assert page.evaluate("window.stillTheSamePage") is True
    page.get_by_role("link", name="Back to the codebook").click()
    page.get_by_role("heading", name="Codebook of Field notes").wait_for()
    assert page.locator("#code-costs .code-name").inner_text() == "Costs"
    expect(page.locator(".codebook-jobs")).to_contain_text("Renaming “prices” to “Costs”")
