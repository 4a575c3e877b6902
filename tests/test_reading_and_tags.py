from __future__ import annotations

import re

import pytest
from django.test import Client

from annotations.markdown import render_markdown
from annotations.models import Annotation

pytestmark = pytest.mark.django_db


def test_notes_are_markdown_without_raw_html_scripts_or_unsafe_links():
    html = str(
        render_markdown(
            "**bold** <script>alert(1)</script> <img src=x onerror=alert(1)>"
            " [ok](https://example.org) [bad](javascript:alert(1))"
        )
    )
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "<img" not in html  # shown as text, never as markup
    assert "&lt;script&gt;" in html
    assert 'href="https://example.org"' in html and 'rel="nofollow noopener"' in html
    assert 'href="javascript' not in html


def test_reading_page_renders_highlights_and_panel_without_javascript(client, member, demo_source):
    note = Annotation.create_anchored(
        author=member,
        source=demo_source,
        start=3,
        end=11,
        note="<b>x</b> *Date* of events",
        tags=["dates"],
    )
    client.force_login(member)
    body = client.get(f"/sources/{demo_source.uuid}/").content.decode()
    assert f'data-anns="{note.uuid}"' in body and ">March 31</mark>" in body
    assert "<em>Date</em>" in body and "<b>x</b>" not in body
    assert 'href="/tags/dates/"' in body
    assert 'aria-label="Archived text"' in body


def test_tag_list_counts_only_visible_annotations_and_tag_pages_show_context(
    member, owner, demo_source
):
    Annotation.create_anchored(author=member, source=demo_source, start=3, end=11, tags=["dates"])
    Annotation.create_anchored(
        author=owner, source=demo_source, start=20, end=40, tags=["dates"], visibility="private"
    )
    Annotation.create_anchored(
        author=owner,
        source=demo_source,
        start=50,
        end=60,
        tags=["secret-code"],
        visibility="private",
    )
    client = Client()
    client.force_login(member)
    tags_page = client.get("/tags/").content.decode()
    assert "dates" in tags_page and "secret-code" not in tags_page
    assert 'aria-label="1 passage"' in tags_page
    assert '<a href="/search/tags/cooccurrence/">Tags that meet' in tags_page
    detail = client.get("/tags/dates/").content.decode()
    assert "<mark>March 31</mark>" in detail and demo_source.title in detail
    assert "#a-" in detail
    # Each passage's link says which passage it opens, for a screen reader's list of links.
    assert 'Open in source<span class="visually-hidden">: “March 31”</span></a>' in detail
    assert client.get("/tags/secret-code/").status_code == 404
    owner_client = Client()
    owner_client.force_login(owner)
    assert owner_client.get("/tags/secret-code/").status_code == 200


def test_the_tag_list_counts_in_a_fixed_number_of_queries(
    client, member, owner, demo_source, django_assert_num_queries
):
    for n, tags in enumerate([["dates", "places"], ["dates"], ["people", "places"]]):
        Annotation.create_anchored(
            author=member, source=demo_source, start=n * 10, end=n * 10 + 5, tags=tags
        )
    Annotation.create_anchored(
        author=owner, source=demo_source, start=60, end=65, tags=["dates"], visibility="private"
    )
    client.force_login(member)
    client.get("/tags/")  # the session, once
    # Session, user, the counts, the tags: however many tags there are.
    with django_assert_num_queries(4):
        page = client.get("/tags/").content.decode()
    counts = dict(re.findall(r'>([a-z]+)</a> <span class="count"[^>]*>(\d+)<', page))
    assert counts == {"dates": "2", "people": "1", "places": "2"}


def test_the_tag_list_decides_visibility_without_reading_annotation_rows(member, demo_source):
    """On SQLite the tag list's count reads each visible source's annotations from an index
    that holds what visibility is decided by, never the annotations' own rows (quote and
    note): migration search/0007."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Annotation.create_anchored(author=member, source=demo_source, start=3, end=11, tags=["dates"])
    with CaptureQueriesContext(connection) as captured:
        counts = Annotation.objects.visible_to(member).tag_counts()
    assert [(tag.name, tag.count) for tag in counts] == [("dates", 1)]
    (counting,) = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"]]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {counting}")
            steps = [row[-1] for row in cursor.fetchall()]
            annotation_reads = [step for step in steps if "annotations_annotation" in step]
            assert annotation_reads == [
                "SEARCH annotations_annotation USING COVERING INDEX search_annotation_access"
                " (source_id=?)"
            ], steps
        else:
            # PostgreSQL keeps long quotes and notes out of line, so reading a row costs
            # little; it must still reach each visible source's annotations by its index.
            cursor.execute("SET LOCAL enable_seqscan = off")  # (the table is tiny)
            cursor.execute(f"EXPLAIN {counting}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            reads = [
                line.strip() for line in plan.splitlines() if "annotations_annotation " in line
            ]
            assert len(reads) == 1 and reads[0].startswith("->  Index Scan using"), plan
            assert "Index Cond: (source_id = " in plan, plan


def test_a_passage_link_marks_any_range_even_without_an_annotation(client, member, demo_source):
    client.force_login(member)
    response = client.get(f"/sources/{demo_source.uuid}/passages/3-11/")
    body = response.content.decode()
    assert response.status_code == 200
    assert '<mark class="passage" data-o="3" id="passage" data-passage="">March 31</mark>' in body
    assert "Showing the passage at 3–11" in body
    outside = len(demo_source.text) + 5
    assert client.get(f"/sources/{demo_source.uuid}/passages/3-{outside}/").status_code == 404
    assert client.get(f"/sources/{demo_source.uuid}/passages/9-3/").status_code == 404


def test_a_passage_list_shows_its_context_in_whole_words(client, member, demo_source):
    def tagged(exact):
        return Annotation.create_anchored(
            author=member, source=demo_source, exact=exact, tags=["context"]
        )

    first, middle, last = (
        tagged(q) for q in ("coordinated series", "Hezbollah's operations", "of concern.")
    )
    assert middle.prefix == "s and mortar shells. Meanwhile, "
    assert middle.suffix == " in Lebanon targeted Israeli mil"
    assert (middle.lead_in, middle.lead_out) == (
        "…and mortar shells. Meanwhile, ",
        " in Lebanon targeted Israeli…",
    )
    assert first.lead_in == first.prefix == "On March 31, a "  # the text starts there
    assert last.lead_out == last.suffix == ""  # and ends there
    client.force_login(member)
    page = client.get("/tags/context/").content.decode()
    assert "…and mortar shells. Meanwhile, </span><mark>Hezbollah&#x27;s operations</mark>" in page
    assert '<mark>of concern.</mark><span class="context"></span>' in page
    assert "mil…" not in page and "…On March" not in page


def test_the_tag_list_comes_a_page_at_a_time_and_finds_a_tag_by_name(
    client, member, owner, demo_source
):
    names = [f"code-{n:03}" for n in range(230)]
    Annotation.create_anchored(author=member, source=demo_source, start=3, end=11, tags=names)
    Annotation.create_anchored(
        author=owner,
        source=demo_source,
        start=20,
        end=30,
        tags=["code-secret"],
        visibility="private",
    )
    client.force_login(member)
    first = client.get("/tags/").content.decode()
    shown = re.findall(r'class="tag" href="[^"]+">([^<]+)</a>', first)
    assert shown == names[:200]
    assert "Page 1 of 2" in first and 'href="?page=2" rel="next"' in first
    second = client.get("/tags/?page=2").content.decode()
    assert re.findall(r'class="tag" href="[^"]+">([^<]+)</a>', second) == names[200:]
    found = client.get("/tags/", {"q": "CODE-1"}).content.decode()
    assert re.findall(r'class="tag" href="[^"]+">([^<]+)</a>', found) == names[100:200]
    assert "100 tags with “CODE-1” in their name." in found
    # Another's private tag is not found by its name: the list says none has it.
    hidden = client.get("/tags/", {"q": "secret"}).content.decode()
    assert "code-secret" not in hidden and "0 tags with “secret” in their name." in hidden
    assert '<label for="tag-find">Find a tag</label>' in hidden
