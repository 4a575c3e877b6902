"""The search page's filters drive the browse pages too: the collection page and tag pages."""

from __future__ import annotations

import pytest

from tests.conftest import archive_text
from tests.helpers import ARCHIVE_TEXT, RIVER_TEXT, annotate

pytestmark = pytest.mark.django_db


@pytest.fixture
def sources(owner, collection):
    archive = archive_text(ARCHIVE_TEXT, user=owner, collection=collection)
    river = archive_text(
        RIVER_TEXT, user=owner, collection=collection, metadata={"date_published": "1998"}
    )
    return archive, river


@pytest.fixture
def passages(sources, owner, member):
    archive, river = sources
    return {
        "clerks": annotate(archive, owner, "clerks wrote", note="who", tags=["labour", "margins"]),
        "strike": annotate(archive, member, "strike spread", tags=["labour"]),
        "ledgers": annotate(river, member, "ledgers of crossings", tags=["margins"]),
        "private": annotate(river, owner, "river floods", tags=["labour"], visibility="private"),
    }


def quotes(response):
    return [a.exact for a in response.context["passages"]]


def test_collection_page_lists_passages_that_match_a_tag_and_author(client, member, passages):
    client.force_login(member)
    response = client.get("/collections/field-notes/?tag=labour")
    assert response.status_code == 200
    # olive's private annotation is not maya's to see.
    assert sorted(quotes(response)) == ["clerks wrote", "strike spread"]
    assert "2 passages annotated in this collection match" in response.text
    response = client.get("/collections/field-notes/?tag=labour&author=maya")
    assert quotes(response) == ["strike spread"]
    response = client.get("/collections/field-notes/?has_note=yes")
    assert quotes(response) == ["clerks wrote"]
    response = client.get("/collections/field-notes/?mine=1")
    assert sorted(quotes(response)) == ["ledgers of crossings", "strike spread"]


def test_collection_page_narrows_sources_by_date_published(client, member, sources):
    client.force_login(member)
    response = client.get("/collections/field-notes/?published_from=1990&published_to=1999")
    assert [s.title for s in response.context["page"]] == ["Notes on the River"]
    response = client.get("/collections/field-notes/")
    assert len(response.context["page"]) == 2


def test_bad_filter_values_are_explained_not_fatal(client, member, sources):
    client.force_login(member)
    response = client.get("/collections/field-notes/?published_from=someday&archived_to=x")
    assert response.status_code == 200
    assert "Published from:" in response.text and "Archived to:" in response.text
    assert len(response.context["page"]) == 2  # the list is still there, unfiltered


def test_tag_page_is_narrowed_by_the_same_filters(client, member, passages):
    client.force_login(member)
    response = client.get("/tags/labour/")
    assert sorted(a.exact for a in response.context["page"]) == ["clerks wrote", "strike spread"]
    response = client.get("/tags/labour/?author=olive")
    assert [a.exact for a in response.context["page"]] == ["clerks wrote"]
    response = client.get("/tags/labour/?tag=margins")  # labour and margins
    assert [a.exact for a in response.context["page"]] == ["clerks wrote"]
    assert "1 passage" in response.text


def test_tag_page_lists_passages_by_source_title_then_place_in_the_text(
    client, owner, passages, django_assert_max_num_queries
):
    client.force_login(owner)
    with django_assert_max_num_queries(9):  # the list's citations are never loaded
        response = client.get("/tags/labour/")
    # "Notes on the River" before "On Resistance in the Archive"; in each, text order.
    assert [a.exact for a in response.context["page"]] == [
        "river floods",
        "clerks wrote",
        "strike spread",
    ]
    assert "3 passages" in response.text


def test_every_list_of_passages_links_each_ones_source_tags_and_place(client, owner, passages):
    clerks, floods = passages["clerks"], passages["private"]
    client.force_login(owner)
    for url in (
        "/tags/labour/",
        "/collections/field-notes/?tag=labour",
        "/me/annotations/?tag=labour",
    ):
        html = client.get(url).content.decode()
        for passage in (clerks, floods):
            source = f"/sources/{passage.source.uuid}/"
            assert f'<a href="{source}">{passage.source.title}</a>' in html, url
            assert f'<a href="{source}#a-{passage.uuid}">Open in source' in html, url
        assert ">margins</a>" in html and 'href="/tags/margins/"' in html, url
        assert html.count('href="/tags/labour/"') >= 2, url  # on each passage tagged so


def test_tag_page_filters_survive_pagination(client, owner, member, sources):
    archive, _ = sources
    for _ in range(51):
        annotate(archive, member, "railway line", tags=["many"])
    annotate(archive, owner, "railway line", tags=["many"])
    client.force_login(member)
    response = client.get("/tags/many/?author=maya")
    assert response.context["page"].paginator.count == 51
    assert 'href="?author=maya&amp;page=2"' in response.text
    assert len(response.context["page"]) == 50
    second = client.get("/tags/many/?author=maya&page=2")
    assert [a.author.username for a in second.context["page"]] == ["maya"]
    assert "51 passages" in second.text and "Page 2 of 2" in second.text
    # Past the last page, the last; a page that is not a number, the first.
    for asked, shown, items in (("3", 2, 1), ("99", 2, 1), ("x", 1, 50), ("0", 2, 1)):
        page = client.get(f"/tags/many/?author=maya&page={asked}").context["page"]
        assert (page.number, len(page), page.paginator.count) == (shown, items, 51)


def test_a_tag_only_used_privately_by_others_stays_hidden(client, stranger, member, passages):
    client.force_login(stranger)
    assert client.get("/tags/labour/").status_code == 404
    assert client.get("/tags/labour/?author=olive").status_code == 404
    # A tag the user can see keeps its page when the filters leave nothing.
    client.force_login(member)
    response = client.get("/tags/labour/?author=nobody")
    assert response.status_code == 200
    assert "No passages match these filters." in response.text


def test_filtered_pages_do_not_query_per_passage(client, member, sources):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    archive, river = sources
    annotate(archive, member, "railway line", tags=["labour", "x"])
    client.force_login(member)
    counts = []
    for extra in (0, 20):
        for _ in range(extra):
            annotate(river, member, "ledgers", tags=["labour", "y"], note="*n*")
        for url in ("/tags/labour/?author=maya", "/collections/field-notes/?tag=labour"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            counts.append(len(queries))
    assert counts[:2] == counts[2:]
