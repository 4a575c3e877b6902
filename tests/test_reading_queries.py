"""The reading page's query count does not grow with the number of annotations on it."""

from __future__ import annotations

import pytest
from django.test import Client

from annotations.models import Annotation

pytestmark = pytest.mark.django_db

PAGE_QUERIES = 8  # a member's reading page; see the last test


def annotate(source, authors, first: int, count: int) -> None:
    """``count`` annotations, alternating authors, each with a note and two or three tags."""
    for i in range(first, first + count):
        Annotation.create_anchored(
            author=authors[i % 2],
            source=source,
            start=i,
            end=i + 5,
            note=f"Note *{i}*" if i % 3 else "",
            tags=[f"code-{i % 7}", "all", *(["extra"] if i % 2 else [])],
            visibility="public" if i % 4 == 0 else "collection",
        )


def page_queries(client: Client, source, expected_entries: int, limit: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/sources/{source.uuid}/")
    assert response.status_code == 200
    assert response.content.decode().count('class="ann"') == expected_entries
    assert len(queries.captured_queries) <= limit, "\n".join(
        q["sql"][:200] for q in queries.captured_queries
    )
    return len(queries.captured_queries)


@pytest.mark.parametrize("reader", ["author", "other_author", "curator"])
def test_reading_page_queries_are_the_same_for_5_and_50_annotations(
    reader, demo_source, member, owner, curator, django_assert_max_num_queries
):
    authors = [member, owner]
    client = Client()
    client.force_login({"author": member, "other_author": owner, "curator": curator}[reader])
    annotate(demo_source, authors, 0, 5)
    with django_assert_max_num_queries(25) as five:
        response = client.get(f"/sources/{demo_source.uuid}/")
    assert response.status_code == 200
    assert response.content.decode().count('class="ann"') == 5
    annotate(demo_source, authors, 5, 45)
    with django_assert_max_num_queries(len(five.captured_queries)):
        response = client.get(f"/sources/{demo_source.uuid}/")
    page = response.content.decode()
    assert page.count('class="ann"') == 50
    # What the queries are for: every author, tag and note is on the page.
    assert "maya" in page and "olive" in page
    assert "code-6" in page and "extra" in page and "<em>49</em>" in page


def test_a_visitors_reading_page_queries_do_not_grow_either(
    client, demo_source, member, owner, collection
):
    collection.is_public = True
    collection.save()
    annotate(demo_source, [member, owner], 0, 8)  # 2 of them public
    few = page_queries(client, demo_source, expected_entries=2, limit=25)
    annotate(demo_source, [member, owner], 8, 42)  # 13 of 50 public
    page_queries(client, demo_source, expected_entries=13, limit=few)


def test_the_reading_page_costs_a_pinned_number_of_queries(
    demo_source, member, owner, collection, django_assert_max_num_queries
):
    """Session, user, the source (with whether it cites or is cited, and its archiver),
    the annotations, their tags, the reader's role (may annotate, may edit) and the
    collections shown. Citations and backlinks cost one query each, and only on a source
    that has some. (11 before citations were skipped and tags read by source.)"""
    from annotations.models import Citation

    client = Client()
    client.force_login(member)
    annotate(demo_source, [member, owner], 0, 20)
    with django_assert_max_num_queries(PAGE_QUERIES):
        response = client.get(f"/sources/{demo_source.uuid}/")
    assert response.content.decode().count('class="ann"') == 20
    citing = Annotation.objects.filter(source=demo_source).first()
    assert citing is not None
    citing.replace_citations(
        Citation.build_all([{"source": str(demo_source.uuid)}], user=member, citing=citing)
    )
    with django_assert_max_num_queries(PAGE_QUERIES + 2):
        page = client.get(f"/sources/{demo_source.uuid}/").content.decode()
    assert 'class="cite-source"' in page and 'class="cited-by"' in page
