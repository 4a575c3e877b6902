"""Full-text search over sources and annotations: /search/ and /search/tags/cooccurrence/.

Run on SQLite and on PostgreSQL (DATABASE_URL): the behaviour must be the same on both.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import re

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotations.models import Annotation
from archive.models import Collection, Membership, Source
from search.index import (
    index_annotation,
    index_source,
    index_words,
    text_stretches,
    unindex_annotation,
    unindexed_sources,
)
from search.models import AnnotationEntry, SourceSegment, SourceVocabulary
from search.query import Filters, QueryError, parse_query
from search.query.parsing import MAX_QUERY_LENGTH
from tests.conftest import archive_text, login, run_worker
from tests.helpers import ARCHIVE_TEXT, RIVER_TEXT, annotate, found, make_source, search


@pytest.fixture
def archive_source(owner, collection):
    return make_source(
        ARCHIVE_TEXT,
        owner,
        collection,
        title="On Resistance in the Archive",
        creators=["Ngũgĩ, Wanjiru", "Okafor, Chidi"],
        publisher="Lagos University Press",
        date_published="2019-05",
    )


@pytest.fixture
def river_source(owner, collection):
    return make_source(RIVER_TEXT, owner, collection, title="Notes on the River")


# --- Reading what people type ------------------------------------------------------------


def test_query_is_read_as_words_phrases_prefixes_and_exclusions():
    query = parse_query('Strike "colonial Administration" resist* -weather -"river floods"')
    assert [str(c) for c in query.clauses] == [
        "strike",
        "“colonial administration”",
        "resist*",
        "-weather",
        "-“river floods”",
    ]
    assert [c.words for c in query.include] == [
        ("strike",),
        ("colonial", "administration"),
        ("resist",),
    ]
    assert query.include[2].prefix and not query.include[0].prefix


def test_search_syntax_characters_are_only_separators():
    query = parse_query('NEAR(strike railway) OR title:"x" ^y AND {z} col:* \\ ;--')
    assert [c.words for c in query.clauses] == [
        ("near", "strike"),
        ("railway",),
        ("title",),
        ("x",),
        ("y",),
        ("z",),
        ("col",),
    ]


def test_unclosed_quotation_mark_searches_the_phrase_to_its_end():
    query = parse_query('strike "colonial administration')
    assert query.clauses[-1].words == ("colonial", "administration")
    assert "not closed" in query.notices[0]


def test_common_words_are_left_out_unless_quoted_and_alone_are_refused():
    query = parse_query("the strike of")
    assert [c.words for c in query.clauses] == [("strike",)]
    assert query.notices == ["Left out very common words: the, of."]
    assert parse_query('"the"').clauses[0].words == ("the",)
    with pytest.raises(QueryError, match="only very common words"):
        parse_query("the of and")


@pytest.mark.parametrize(
    "text, message",
    [
        ("x" * (MAX_QUERY_LENGTH + 1), "too long"),
        ("a*", "too short for a prefix search"),
        ("*** ()", "has no words"),
        (" ".join(f"w{i}" for i in range(20)), "at most"),
    ],
)
def test_unusable_queries_are_refused_with_a_reason(text, message):
    with pytest.raises(QueryError, match=message):
        parse_query(text)


def test_text_and_queries_fold_to_the_same_words():
    assert index_words("Résistance, NAÏVE ﬁnance; don't") == [
        "resistance",
        "naive",
        "finance",
        "don",
        "t",
    ]
    assert parse_query("RESISTANCE").clauses[0].words == ("resistance",)


def test_long_texts_are_indexed_in_stretches_of_whole_paragraphs():
    paragraph = " ".join(["word"] * 250)
    text = "\n\n".join([paragraph] * 12)
    blocks, pos = [], 0
    for _ in range(12):
        blocks.append({"t": "p", "s": pos, "e": pos + len(paragraph)})
        pos += len(paragraph) + 2
    stretches = text_stretches(text, blocks)
    assert len(stretches) == 4  # 600 words reached after every third paragraph
    assert stretches[0][0] == 0 and stretches[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(stretches, stretches[1:], strict=False))
    assert all(text[e - 1] == "d" for _, e in stretches)  # cut at a paragraph's end


# --- Query forms ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_word_finds_source_and_snippet_marks_it(client, owner, archive_source, river_source):
    client.force_login(owner)
    response = search(client, q="railway")
    results = response.context["results"]
    assert [r.source for r in results.sources] == [archive_source]
    snippet = results.sources.items[0].snippet_html
    assert "<mark>railway</mark>" in snippet
    assert "<mark>railway</mark>" in response.content.decode()
    assert "1 source and 0 passages found" in response.content.decode()


@pytest.mark.django_db
def test_words_match_regardless_of_case_and_accents(client, owner, archive_source):
    client.force_login(owner)
    response = search(client, q="RESISTANCE")
    assert [r.source for r in response.context["results"].sources] == [archive_source]
    assert "<mark>Résistance</mark>" in response.content.decode()
    assert found(client, q="ngugi")[0] == ["On Resistance in the Archive"]


@pytest.mark.django_db
def test_phrase_matches_only_those_words_in_that_order(client, owner, archive_source, river_source):
    client.force_login(owner)
    assert found(client, q='"colonial administration"')[0] == [archive_source.title]
    assert found(client, q='"administration colonial"')[0] == []
    response = search(client, q='"the strike spread"')
    assert "<mark>the strike spread</mark>" in response.content.decode()


@pytest.mark.django_db
def test_prefix_finds_every_word_that_starts_with_it(client, owner, archive_source, river_source):
    client.force_login(owner)
    titles, _ = found(client, q="resist*")
    assert sorted(titles) == sorted([archive_source.title, river_source.title])
    assert found(client, q="resista")[0] == []  # without the star, a whole word
    response = search(client, q="resist*", source=river_source.uuid)
    assert "<mark>resistant</mark>" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("most_words", [100, 1])
def test_a_long_prefix_shows_each_source_at_a_stretch_of_text_that_matches(
    client, owner, archive_source, river_source, monkeypatch, most_words
):
    # To score sources, SQLite names the words a prefix of four letters or more stands for
    # (resistance, resistant) when there are at most MAX_PREFIX_WORDS, and otherwise leaves
    # the prefix to FTS5: either way, each source is scored and shown where its text matches.
    monkeypatch.setattr("search.query.sqlite.SQLiteEngine.MAX_PREFIX_WORDS", most_words)
    client.force_login(owner)
    results = search(client, q="resist*").context["results"]
    snippets = {r.source.title: str(r.snippet_html) for r in results.sources}
    assert "<mark>resistant</mark> strain" in snippets[river_source.title]
    assert "<mark>Resistance</mark>" in snippets[archive_source.title]
    assert found(client, q="resistan*")[0] == found(client, q="resist*")[0]
    assert found(client, q="resistanx*") == ([], [])


@pytest.mark.django_db
def test_excluded_word_leaves_out_sources_and_passages_that_contain_it(
    client, owner, archive_source, river_source
):
    annotate(archive_source, owner, "colonial administration", note="about resistance")
    annotate(river_source, owner, "resistant strain", note="wheat")
    client.force_login(owner)
    titles, quotes = found(client, q="resist* -railway")
    assert titles == [river_source.title]
    titles, quotes = found(client, q="resist* -wheat")
    assert titles == [archive_source.title] and quotes == ["colonial administration"]
    assert found(client, q='resist* -"railway line"')[0] == [river_source.title]


@pytest.mark.django_db
def test_every_word_must_match_but_anywhere_in_the_source(client, owner, archive_source):
    client.force_login(owner)
    # "okafor" is a creator, "strike" in one paragraph, "weather" in another.
    assert found(client, q="okafor strike weather")[0] == [archive_source.title]
    assert found(client, q="okafor ferrymen")[0] == []


@pytest.mark.django_db
def test_metadata_title_creators_publisher_and_citation_key_are_searched(
    client, owner, archive_source
):
    client.force_login(owner)
    for q in ["chidi", "lagos", archive_source.citation_key]:
        assert found(client, q=q)[0] == [archive_source.title], q
    response = search(client, q="lagos")
    assert response.context["results"].sources.items[0].url == archive_source.get_absolute_url()


@pytest.mark.django_db
def test_the_journal_or_book_a_source_is_published_in_is_searched(client, owner):
    source = archive_text(
        "An article about grain.",
        owner,
        metadata={"title": "Grain Prices", "container_title": "Journal of Maritime Tolls"},
    )
    client.force_login(owner)
    assert found(client, q="maritime tolls")[0] == [source.title]


@pytest.mark.django_db
def test_passages_match_quote_note_and_tags(client, owner, archive_source):
    passage = annotate(
        archive_source,
        owner,
        "Workers organised a strike",
        note="Compare the **dock** strike.",
        tags=["labour history"],
    )
    client.force_login(owner)
    for q in ["organised", "dock", "labour", '"labour history"']:
        assert found(client, q=q)[1] == [passage.exact], q
    response = search(client, q="dock labour")
    html = response.content.decode()
    assert "<mark>dock</mark>" in html and "<mark>labour</mark> history" in html
    assert response.context["results"].passages.items[0].url == passage.get_absolute_url()


@pytest.mark.django_db
def test_phrase_in_a_passage_stays_within_quote_note_or_tags(client, owner, archive_source):
    annotate(archive_source, owner, "Workers organised a strike", note="railway dispute")
    client.force_login(owner)
    assert found(client, q='"strike railway"')[1] == []  # end of quote, start of note
    assert found(client, q='"railway dispute"')[1] == ["Workers organised a strike"]


@pytest.mark.django_db
def test_text_match_links_to_the_matched_words_in_the_source(client, owner, archive_source):
    client.force_login(owner)
    result = search(client, q="railway").context["results"].sources.items[0]
    start = archive_source.text.index("railway")
    end = start + len("railway")
    assert result.url == f"/sources/{archive_source.uuid}/passages/{start}-{end}/#passage"
    assert f'href="{result.url}"' in search(client, q="railway").content.decode()


@pytest.mark.django_db
def test_snippets_escape_markup_in_source_text_titles_and_notes(client, owner, collection):
    hostile = make_source(
        'Plain text: <script>alert("text")</script> resistance <img src=x onerror=alert(1)>',
        owner,
        collection,
        title="<b>resistance</b> title",
    )
    annotate(
        hostile,
        owner,
        "resistance",
        note="<script>alert('note')</script> resistance",
        tags=["<i>resistance</i>"],
    )
    client.force_login(owner)
    html = search(client, q="resistance").content.decode()
    main = html[html.index('<main id="main"') :]
    assert "<script>" not in main and "<img" not in main and "<b>" not in main
    assert "&lt;script&gt;alert(&quot;text&quot;)&lt;/script&gt; <mark>resistance</mark>" in main
    assert "&lt;script&gt;alert(&#x27;note&#x27;)&lt;/script&gt; <mark>resistance</mark>" in main
    assert "&lt;b&gt;<mark>resistance</mark>&lt;/b&gt; title" in main


@pytest.mark.django_db
def test_cited_keys_in_a_note_link_to_their_sources_in_the_results(
    client, owner, stranger, collection, archive_source, river_source
):
    secret = make_source("Private papers.", stranger, title='Kept "apart" <private>')
    archive_source.citation_key, secret.citation_key = "okafor2019", "hidden2020"
    archive_source.title = 'On "Resistance" <in> the Archive'
    archive_source.save()
    secret.save()
    note = "Tolls compared [see @okafor2019, p. 2; -@hidden2020] and [@okafor2019]."
    annotate(river_source, owner, "ledgers of crossings", note=note)
    client.force_login(owner)
    title = "On &quot;Resistance&quot; &lt;in&gt; the Archive"
    link = f'<a href="/sources/{archive_source.uuid}/" title="{title}">'
    for params in ({"q": "tolls"}, {"q": "okafor2019"}, {"collection": "field-notes"}):
        (result,) = search(client, **params).context["results"].passages
        html = str(result.note_html)
        # The key the owner may follow is linked wherever it is cited; the other is text.
        assert html.count(link) == 2 and html.count("</a>") == 2
        assert "-@hidden2020]" in html and "hidden2020</a>" not in html
    html = str(search(client, q="okafor2019").context["results"].passages.items[0].note_html)
    assert f"[see {link}@<mark>okafor2019</mark></a>, p. 2;" in html
    html = str(search(client, q="tolls").context["results"].passages.items[0].note_html)
    assert html.startswith("<mark>Tolls</mark> compared [see " + link + "@okafor2019</a>")


@pytest.mark.django_db
def test_a_note_is_shown_in_the_results_as_read_not_as_its_markdown(client, owner, river_source):
    note = "Compare **tolls** with [the ledger](https://example.org/ledger).\n\n- one `item`"
    annotate(river_source, owner, "ledgers of crossings", note=note)
    client.force_login(owner)
    (result,) = search(client, q="tolls").context["results"].passages
    assert str(result.note_html) == "Compare <mark>tolls</mark> with the ledger. one item"


# --- Visibility ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_private_annotation_words_never_match_for_another_user(
    client, owner, member, archive_source
):
    annotate(archive_source, owner, "clerks wrote", note="marginalia", visibility="private")
    client.force_login(member)
    assert found(client, q="marginalia")[1] == []
    assert found(client, tag="x", q="marginalia") == (None, [])
    client.force_login(owner)
    assert found(client, q="marginalia")[1] == ["clerks wrote"]


@pytest.mark.django_db
def test_collection_annotations_are_found_by_members_not_strangers(
    client, owner, member, stranger, archive_source
):
    annotate(archive_source, owner, "clerks wrote", note="marginalia")
    client.force_login(member)
    assert found(client, q="marginalia")[1] == ["clerks wrote"]
    client.force_login(stranger)
    assert found(client, q="marginalia") == ([], [])
    assert found(client, q="railway")[0] == []  # the collection is private


@pytest.mark.django_db
def test_public_collection_is_searchable_by_visitors(client, owner, collection, archive_source):
    annotate(archive_source, owner, "clerks wrote", note="marginalia", visibility="public")
    assert found(client, q="marginalia") == ([], [])
    Collection.objects.filter(pk=collection.pk).update(is_public=True)
    assert found(client, q="marginalia") == ([], ["clerks wrote"])
    assert found(client, q="railway")[0] == [archive_source.title]


@pytest.mark.django_db
def test_withdrawn_source_and_its_passages_are_never_found(client, owner, curator, archive_source):
    annotate(archive_source, owner, "clerks wrote", note="marginalia")
    archive_source.withdraw("Rights claim.")
    for user in (owner, curator):
        client.force_login(user)
        assert found(client, q="railway") == ([], [])
        assert found(client, q="marginalia") == ([], [])
    archive_source.reinstate()
    assert found(client, q="railway")[0] == [archive_source.title]


# --- Filters -----------------------------------------------------------------------------------


@pytest.fixture
def two_collections(owner, member, collection, archive_source, river_source):
    other = Collection.objects.create(slug="rivers", title="Rivers", owner=owner)
    Membership.objects.create(collection=other, user=member, role=Membership.Role.ANNOTATOR)
    other.sources.add(river_source)
    collection.sources.remove(river_source)
    return collection, other


@pytest.mark.django_db
def test_collection_filter(client, owner, two_collections, archive_source, river_source):
    field_notes, rivers = two_collections
    annotate(river_source, owner, "resistant strain", note="seed", collection=rivers)
    annotate(archive_source, owner, "Résistance appears", note="seed", collection=field_notes)
    client.force_login(owner)
    assert found(client, q="resist* seed", collection="rivers") == ([], ["resistant strain"])
    assert found(client, q="resist*", collection="rivers")[0] == [river_source.title]
    assert found(client, q="resist*", collection="field-notes")[0] == [archive_source.title]
    assert found(client, q="resist*", collection="nonexistent") == ([], [])


@pytest.mark.django_db
def test_a_collections_newest_passages_are_read_in_order_not_sorted(
    client, owner, two_collections, archive_source, river_source
):
    """A search by collection alone lists its passages newest first: on SQLite, read in that
    order from an index and stopped at the listing's end, rather than all read and sorted."""
    from django.db import connection

    field_notes, rivers = two_collections
    made = [
        annotate(archive_source, owner, needle, collection=field_notes)
        for needle in ("colonial administration", "Workers organised", "the strike spread")
    ]
    annotate(river_source, owner, "resistant strain", collection=rivers)
    client.force_login(owner)
    assert found(client, collection="field-notes")[1] == [a.exact for a in reversed(made)]
    listing = (
        Filters(collection="field-notes")
        .annotations(owner)
        .order_by("-created", "-pk")
        .values_list("pk", flat=True)[:1001]
    )
    sql, params = listing.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(row[-1] for row in cursor.fetchall())
            assert "annotation_collection_new_idx" in plan and "ORDER BY" not in plan, plan
        else:
            # PostgreSQL's planner, which reckons reads out of order dear, sorts what it
            # reads; it must still read only the collection's passages, by an index of
            # their collection (this one or the foreign key's), or, when the statistics
            # earlier tests left say the readable sources are few, of each source's.
            cursor.execute("SET LOCAL enable_seqscan = off")  # (the table is tiny)
            cursor.execute(f"EXPLAIN {sql}", params)
            steps = [row[0].strip() for row in cursor.fetchall()]
            (read,) = [i for i, step in enumerate(steps) if "on annotations_annotation " in step]
            assert "Index Scan using annotation" in steps[read], steps
            assert steps[read + 1].startswith(
                ("Index Cond: (collection_id = ", "Index Cond: (source_id = ")
            ), steps


@pytest.mark.django_db
def test_tag_filter_lists_passages_with_every_given_tag(client, owner, archive_source):
    both = annotate(archive_source, owner, "colonial administration", tags=["state", "labour"])
    annotate(archive_source, owner, "Workers organised", tags=["labour"])
    client.force_login(owner)
    assert found(client, tag="labour")[1] == ["Workers organised", both.exact]
    assert found(client, tag=["state", "labour"]) == (None, [both.exact])
    assert found(client, tag="LABOUR", q="workers") == (None, ["Workers organised"])
    assert found(client, tag="no such tag") == (None, [])
    assert found(client, tag=["labour", "no such tag"], q="workers") == (None, [])
    html = search(client, tag="labour").content.decode()
    assert "Only passages are listed" in html


@pytest.mark.django_db
def test_words_with_a_tag_filter_find_exactly_the_passages_carrying_the_tag(
    client, owner, archive_source
):
    # The engine first sieves by the tag's words; the tag filter itself still decides.
    tagged = annotate(archive_source, owner, "colonial administration", tags=["Labour history"])
    annotate(
        archive_source, owner, "Workers organised", note="colonial", tags=["labour", "history"]
    )
    both = annotate(
        archive_source, owner, "records of colonial", tags=["Archives", "Labour history"]
    )
    client.force_login(owner)
    expected = (None, [both.exact, tagged.exact])
    assert found(client, q="colonial", tag="labour-history", sort="newest") == expected
    assert found(client, q="colonial", tag="LABOUR HISTORY", sort="newest") == expected
    assert found(client, q="colonial", tag=["archives", "labour history"]) == (None, [both.exact])
    assert found(client, q="colonial", tag="labour") == (None, ["Workers organised"])
    assert found(client, q="colonial", tag="history labour") == (None, [])


@pytest.mark.django_db
def test_author_and_mine_filters(client, owner, member, archive_source):
    annotate(archive_source, owner, "colonial administration", note="strike")
    annotate(archive_source, member, "Workers organised", note="strike")
    client.force_login(member)
    assert found(client, q="strike", author="olive")[1] == ["colonial administration"]
    assert found(client, q="strike", mine="1")[1] == ["Workers organised"]
    client.logout()
    response = search(client, q="strike", mine="1")
    assert "Log in to search your own annotations." in response.content.decode()
    assert response.context["results"] is None


@pytest.mark.django_db
def test_has_note_filter(client, owner, archive_source):
    annotate(archive_source, owner, "colonial administration", note="a note")
    annotate(archive_source, owner, "Workers organised")
    client.force_login(owner)
    assert found(client, has_note="yes")[1] == ["colonial administration"]
    assert found(client, has_note="no")[1] == ["Workers organised"]


@pytest.mark.django_db
def test_source_filter_searches_within_one_source(client, owner, archive_source, river_source):
    annotate(river_source, owner, "resistant strain")
    client.force_login(owner)
    response = search(client, q="resist*", source=str(river_source.uuid))
    assert found(client, q="resist*", source=str(river_source.uuid)) == (
        [river_source.title],
        ["resistant strain"],
    )
    assert "Within <a" in response.content.decode()
    html = search(client, q="resist*").content.decode()
    assert f"source={river_source.uuid}" in html  # "Search within this source" link


@pytest.mark.django_db
def test_result_links_keep_the_search_and_lead_to_the_places_shown(
    client, owner, collection, archive_source, river_source
):
    from html import unescape
    from urllib.parse import parse_qs, urlsplit

    strain = annotate(river_source, owner, "resistant strain", tags=["Crop varieties"])
    client.force_login(owner)
    html = unescape(
        search(
            client, q="resist*", collection=collection.slug, sources_page="1", passages_page="1"
        ).content.decode()
    )

    def query_of(href: str) -> dict:
        assert href.startswith("?"), href
        return parse_qs(urlsplit(href).query)

    within = re.findall(r'<a href="([^"]*)">Search within this source</a>', html)
    assert len(within) == 2  # both sources match
    river = f"source={river_source.uuid}"
    within_river = next(href for href in within if river in href)
    # The search and its filters, within the source, from its first page.
    assert query_of(within_river) == {
        "q": ["resist*"],
        "collection": [collection.slug],
        "source": [str(river_source.uuid)],
    }
    assert found(client, **{k: v[0] for k, v in query_of(within_river).items()}) == (
        [river_source.title],
        ["resistant strain"],
    )
    by_author = re.search(r'<a href="([^"]*)" title="Passages annotated by olive">olive</a>', html)
    assert by_author is not None
    assert query_of(by_author[1]) == {
        "q": ["resist*"],
        "collection": [collection.slug],
        "sources_page": ["1"],
        "author": ["olive"],
    }
    assert f'<a class="result-quote" href="/sources/{river_source.uuid}/#a-{strain.uuid}">' in html
    assert f'on <a href="/sources/{river_source.uuid}/">Notes on the River</a>' in html
    assert '<a class="tag" href="/tags/crop-varieties/">Crop varieties</a>' in html
    assert f'<a class="result-title" href="/sources/{river_source.uuid}/">' in html


@pytest.mark.django_db
def test_media_type_and_date_filters(client, owner, archive_source, river_source):
    river_source.date_published = "2001"
    river_source.save()
    today = timezone.now().date()
    client.force_login(owner)
    both = sorted([archive_source.title, river_source.title])
    assert sorted(found(client, q="resist*", media_type="text/plain")[0]) == both
    assert found(client, q="resist*", media_type="text/html")[0] == []
    assert sorted(found(client, q="resist*", archived_from=today, archived_to=today)[0]) == both
    assert found(client, q="resist*", archived_to=today - dt.timedelta(days=1))[0] == []
    assert found(client, q="resist*", archived_from=today + dt.timedelta(days=1))[0] == []
    assert found(client, q="resist*", published_from="2010")[0] == [archive_source.title]
    assert found(client, q="resist*", published_to="2001")[0] == [river_source.title]
    assert found(client, q="resist*", published_from="2019-05", published_to="2019")[0] == [
        archive_source.title
    ]


@pytest.mark.django_db
def test_sort_by_relevance_or_newest(client, owner, collection):
    make_source("strike strike strike strike", owner, collection, title="Many strikes")
    make_source("one strike among many other words here", owner, collection, title="One")
    client.force_login(owner)
    assert found(client, q="strike")[0] == ["Many strikes", "One"]
    assert found(client, q="strike", sort="newest")[0] == ["One", "Many strikes"]
    assert search(client).context["results"] is None  # nothing asked, nothing searched


@pytest.mark.django_db
def test_results_are_paginated_and_counted(client, owner, collection):
    for i in range(12):
        make_source(f"Ledger number {i} mentions tolls.", owner, collection, title=f"Ledger {i}")
    client.force_login(owner)
    first = search(client, q="tolls")
    assert first.context["results"].sources.count == 12
    assert len(first.context["results"].sources.items) == 10
    html = first.content.decode()
    assert "12 sources and 0 passages found" in html
    assert "sources_page=2" in html
    second = search(client, q="tolls", sources_page="2").context["results"].sources
    assert len(second.items) == 2 and second.number == 2
    first_titles = {r.source.title for r in first.context["results"].sources}
    assert first_titles.isdisjoint({r.source.title for r in second})
    beyond = search(client, q="tolls", sources_page="99").context["results"].sources
    assert beyond.number == 2 and len(beyond.items) == 2
    newest = search(client, q="", collection="field-notes", sources_page="99")
    assert newest.context["results"].sources.number == 2


@pytest.mark.django_db
def test_tags_that_meet_on_overlapping_passages(client, owner, member, stranger, archive_source):
    annotate(archive_source, owner, "colonial administration", tags=["state", "labour"])
    annotate(archive_source, owner, "records of colonial", tags=["archives"])  # overlaps
    annotate(archive_source, owner, "Workers organised a strike", tags=["labour"])
    annotate(archive_source, owner, "railway line", tags=["archives"], visibility="private")
    annotate(archive_source, owner, "spread along the railway", tags=["labour"])
    client.force_login(member)
    response = client.get("/search/tags/cooccurrence/")
    assert response.status_code == 200
    pairs = {(p.first.name, p.second.name): (p.same, p.meeting) for p in response.context["pairs"]}
    # owner's private "railway line" (archives) overlaps a labour passage, unseen by member.
    assert pairs == {
        ("archives", "labour"): (0, 2),
        ("archives", "state"): (0, 2),
        ("labour", "state"): (1, 1),
    }
    html = response.content.decode()
    assert "/search/?tag=archives&amp;tag=labour&amp;overlap=1" in html
    assert "/search/?tag=labour&amp;tag=state" in html
    assert found(client, tag=["archives", "labour"], overlap="1")[1] == [
        "records of colonial",
        "colonial administration",
    ]
    assert found(client, tag=["archives", "no-such-tag"], overlap="1")[1] == []
    assert found(client, tag=["no-such-tag"], q="colonial")[1] == []
    client.force_login(owner)
    meetings = {(p.first.name, p.second.name): p.meeting for p in tag_pairs(client)}
    assert meetings[("archives", "labour")] == 4
    client.force_login(stranger)
    assert tag_pairs(client) == []


def tag_pairs(client):
    return list(client.get("/search/tags/cooccurrence/").context["pairs"])


def pairs_by_hand(annotations):
    """Tag pairs counted the slow, obvious way: every passage against every other."""
    same: dict[tuple[str, ...], set[int]] = {}
    meeting: dict[tuple[str, ...], set[int]] = {}
    for x in annotations:
        for y in annotations:
            overlap = y.source_id == x.source_id and y.start < x.end and x.start < y.end
            if not overlap:
                continue
            for a in x.tag_names:
                for b in y.tag_names:
                    if a != b:
                        pair = tuple(sorted((a, b)))
                        meeting.setdefault(pair, set()).add(x.pk)
                        if x.pk == y.pk:
                            same.setdefault(pair, set()).add(x.pk)
    return {pair: (len(same.get(pair, ())), len(ids)) for pair, ids in meeting.items()}


@pytest.mark.django_db
def test_tags_that_meet_are_counted_as_every_pair_of_passages_would_count_them(
    client, owner, member, archive_source, river_source
):
    """Many passages on few places, so that they share starts, nest, touch end to start
    and repeat one another exactly; some private to their author."""
    rng = random.Random(8)
    for _ in range(60):
        source = rng.choice([archive_source, river_source])
        start = rng.randrange(0, 60, 4)
        end = start + rng.choice([1, 4, 8, 12, 30])
        Annotation.objects.create(
            source=source,
            author=rng.choice([owner, member]),
            collection=source.collections.first(),
            start=start,
            end=end,
            visibility=rng.choice(["collection", "collection", "private"]),
            **Annotation.anchor(source.text, start, end, source.text[start:end]),
        ).tags.set(rng.sample(["archives", "labour", "state", "land", "trade"], rng.randint(0, 3)))
    for user in (member, owner):
        visible = list(Annotation.objects.visible_to(user).prefetch_related("tags"))
        for annotation in visible:
            annotation.tag_names = [t.name for t in annotation.tags.all()]
        client.force_login(user)
        pairs = tag_pairs(client)
        assert {(p.first.name, p.second.name): (p.same, p.meeting) for p in pairs} == (
            pairs_by_hand(visible)
        )
        assert [(p.meeting, p.same) for p in pairs] == sorted(
            [(p.meeting, p.same) for p in pairs], reverse=True
        )


@pytest.mark.django_db
def test_search_page_links_to_tags_that_meet_and_every_page_has_the_search_box(client, owner):
    client.force_login(owner)
    html = search(client).content.decode()
    assert 'href="/search/tags/cooccurrence/"' in html
    page = client.get("/sources/").content.decode()
    assert re.search(r'<form role="search" action="/search/"[^>]*>', page)
    assert '<label for="site-search-q"' in page


# --- Keeping the index in step -------------------------------------------------------------------


@pytest.mark.django_db
def test_index_follows_annotation_create_edit_and_delete(client, owner, archive_source):
    client.force_login(owner)
    annotation = annotate(archive_source, owner, "clerks wrote", note="palimpsest")
    assert found(client, q="palimpsest")[1] == ["clerks wrote"]

    annotation.note = "erasure"
    annotation.save()
    annotation.tags.set(["redaction"])
    index_annotation(annotation)
    assert found(client, q="palimpsest")[1] == []
    assert found(client, q="erasure redaction")[1] == ["clerks wrote"]

    annotation.delete()
    assert not AnnotationEntry.objects.exists()
    assert found(client, q="erasure") == ([], [])
    unindex_annotation(annotation.pk)  # harmless when already gone


@pytest.mark.django_db
def test_annotations_made_and_edited_through_the_model_are_searchable(
    client, owner, archive_source
):
    client.force_login(owner)
    start = archive_source.text.index("clerks wrote")
    annotation = Annotation.create_anchored(
        author=owner, source=archive_source, start=start, end=start + 12, note="palimpsest"
    )
    assert found(client, q="palimpsest")[1] == ["clerks wrote"]
    annotation.update_content(
        editor=owner, note="erasure", tags=["redaction"], visibility="private"
    )
    assert found(client, q="palimpsest")[1] == []
    assert found(client, q="erasure redaction")[1] == ["clerks wrote"]


@pytest.mark.django_db
def test_editing_metadata_reindexes_the_source(client, owner, archive_source):
    client.force_login(owner)
    response = client.post(
        f"/sources/{archive_source.uuid}/edit/",
        {
            "title": "Clerks and Margins",
            "creators": "Okafor, Chidi",
            "citation_key": archive_source.citation_key,
            "date_published": "2019",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    archive_source.refresh_from_db()
    assert archive_source.title == "Clerks and Margins"
    assert found(client, q="margins clerks")[0] == ["Clerks and Margins"]
    assert found(client, q="ngugi")[0] == []
    assert found(client, q="railway")[0] == ["Clerks and Margins"]  # text still indexed
    kinds = list(archive_source.search_segments.values_list("kind", flat=True))
    assert kinds.count("meta") == 1 and kinds.count("text") >= 1


@pytest.mark.django_db
def test_words_find_sources_through_their_vocabulary_and_phrases_through_their_text(
    client, owner, archive_source, river_source
):
    vocabulary = SourceVocabulary.objects.get(source=archive_source)
    assert vocabulary.text_words.split() == sorted(set(index_words(ARCHIVE_TEXT)))
    assert "lagos" in vocabulary.metadata_words.split()
    client.force_login(owner)
    assert found(client, q="railway strike")[0] == [archive_source.title]
    # (In either order: SQLite scores each word a prefix stands for as a word of its own.)
    both = sorted([archive_source.title, river_source.title])
    assert sorted(found(client, q="resist*")[0]) == both
    assert found(client, q="lagos")[0] == [archive_source.title]
    # A word is looked up in the vocabulary alone, a phrase in the stretches of text.
    SourceVocabulary.objects.filter(source=archive_source).delete()
    assert found(client, q="railway")[0] == []
    assert found(client, q="resist*")[0] == [river_source.title]
    assert found(client, q='"railway line"')[0] == [archive_source.title]
    assert found(client, q="spring -railway")[0] == [river_source.title]


@pytest.mark.django_db
def test_a_source_found_by_its_vocabulary_alone_is_still_listed(client, owner, archive_source):
    # As while an index cut short awaits rebuild_search_index --missing: nothing to score.
    SourceSegment.objects.filter(source=archive_source).delete()
    client.force_login(owner)
    results = search(client, q="railway").context["results"]
    assert results.sources.count == 1
    assert [r.source.title for r in results.sources] == [archive_source.title]


@pytest.mark.django_db
def test_the_migration_gives_sources_indexed_before_it_their_vocabulary(owner, archive_source):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("search.migrations.0003_source_vocabulary")
    written = SourceVocabulary.objects.get(source=archive_source)
    SourceVocabulary.objects.all().delete()
    migration.fill(apps, None)
    filled = SourceVocabulary.objects.get(source=archive_source)
    assert (filled.text_words, filled.metadata_words) == (
        written.text_words,
        written.metadata_words,
    )


@pytest.mark.django_db
def test_an_edit_rewrites_the_metadata_words_of_the_vocabulary_only(owner, archive_source):
    before = SourceVocabulary.objects.get(source=archive_source)
    archive_source.title = "Ledger of Tolls"
    archive_source.save()
    index_source(archive_source)
    after = SourceVocabulary.objects.get(source=archive_source)
    assert after.text_words == before.text_words
    assert after.metadata_words.split()[:3] == ["ledger", "of", "tolls"]
    assert "resistance" not in after.metadata_words.split()


@pytest.mark.django_db
def test_deleting_a_source_removes_it_from_the_index(client, owner, river_source):
    client.force_login(owner)
    river_source.delete()
    assert not SourceSegment.objects.exists() and not SourceVocabulary.objects.exists()
    assert found(client, q="ferrymen") == ([], [])


@pytest.mark.django_db
def test_rebuild_command_rewrites_the_index(client, owner, archive_source):
    annotate(archive_source, owner, "clerks wrote", note="palimpsest", tags=["margins"])
    SourceVocabulary.objects.all().delete()
    SourceSegment.objects.all().delete()
    AnnotationEntry.objects.all().delete()
    client.force_login(owner)
    assert found(client, q="railway") == ([], [])
    out = io.StringIO()
    call_command("rebuild_search_index", stdout=out)
    assert "Indexed 1 source" in out.getvalue() and "1 annotation" in out.getvalue()
    assert found(client, q="railway")[0] == [archive_source.title]
    assert found(client, q="palimpsest margins")[1] == ["clerks wrote"]
    call_command("rebuild_search_index", stdout=io.StringIO())  # again, over a full index
    assert found(client, q="railway")[0] == [archive_source.title]
    assert SourceSegment.objects.filter(kind="meta").count() == 1
    assert SourceVocabulary.objects.count() == 1


@pytest.mark.django_db
def test_an_index_cut_short_is_completed_by_rebuild_missing(client, owner, archive_source):
    # A crash after some text rows were written leaves no metadata row (it is written last).
    SourceSegment.objects.filter(source=archive_source, kind="meta").delete()
    assert list(unindexed_sources()) == [archive_source]
    out = io.StringIO()
    call_command("rebuild_search_index", "--missing", stdout=out)
    assert "Indexed 1 source that had no complete index" in out.getvalue()
    client.force_login(owner)
    assert found(client, q="railway")[0] == [archive_source.title]
    assert SourceSegment.objects.filter(kind="meta").count() == 1
    text_rows = SourceSegment.objects.filter(kind="text").count()
    call_command("rebuild_search_index", "--missing", stdout=io.StringIO())  # nothing to do
    assert SourceSegment.objects.filter(kind="text").count() == text_rows


@pytest.mark.django_db
def test_a_source_is_indexed_in_the_transaction_that_archives_it(owner, monkeypatch):
    def broken(source):
        raise RuntimeError("index unavailable")

    monkeypatch.setattr("search.index.index_source", broken)
    with pytest.raises(RuntimeError):
        make_source(RIVER_TEXT, owner)
    assert not Source.objects.exists()  # no source without its index


@pytest.mark.django_db(transaction=True)
def test_a_very_long_text_is_archived_and_searchable_once_the_worker_indexes_it(owner, monkeypatch):
    monkeypatch.setattr("archive.ingest.INLINE_INDEX_CHARS", 10)  # RIVER_TEXT counts as long
    source = make_source(RIVER_TEXT, owner)
    # Archived and readable at once; indexed by the background worker, not in the request.
    assert list(unindexed_sources()) == [source]
    run_worker()
    assert not list(unindexed_sources())
    assert SourceSegment.objects.filter(source=source, kind="text").exists()


@pytest.mark.django_db(transaction=True)
def test_a_very_long_text_is_archived_even_when_indexing_fails(owner, monkeypatch, caplog):
    def broken(source):
        raise RuntimeError("index unavailable")

    monkeypatch.setattr("archive.ingest.INLINE_INDEX_CHARS", 10)  # RIVER_TEXT counts as long
    monkeypatch.setattr("search.index.index_source", broken)
    source = make_source(RIVER_TEXT, owner)
    run_worker()
    assert source.pk and not SourceSegment.objects.filter(source=source).exists()
    assert "rebuild_search_index --missing" in caplog.text
    assert list(unindexed_sources()) == [source]


@pytest.mark.django_db(transaction=True)
def test_a_very_long_text_is_indexed_in_batches_after_its_source_commits(owner, monkeypatch):
    monkeypatch.setattr("archive.ingest.INLINE_INDEX_CHARS", 1000)
    monkeypatch.setattr("search.index.INDEX_BATCH", 3)
    paragraph = " ".join(["word"] * 300)
    source = make_source("\n\n".join([paragraph] * 40), owner)
    run_worker()
    text_rows = SourceSegment.objects.filter(source=source, kind="text")
    assert text_rows.count() == 20  # 600 words per stretch
    assert SourceSegment.objects.filter(source=source, kind="meta").count() == 1


def test_rebuild_command_explains_itself(capsys):
    with pytest.raises(SystemExit):
        call_command("rebuild_search_index", "--help")
    assert "Rebuild the full-text search index" in capsys.readouterr().out


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params, message",
    [
        ({"q": '"unbalanced quote'}, "was not closed"),
        ({"q": "x" * 600}, "too long"),
        ({"q": "the of and"}, "only very common words"),
        ({"q": "*"}, "has no words"),
        ({"q": "-"}, "has no words"),
        ({"q": "NEAR( OR AND"}, " found"),
        ({"q": "'; DROP TABLE archive_source; --"}, " found"),
        ({"q": '") OR 1=1 --'}, " found"),
        ({"q": "a*"}, "too short"),
        ({"q": "-railway"}, "only -exclusions"),
        ({"q": "\x00railway"}, "Null characters are not allowed"),
        ({"q": "railway", "archived_from": "yesterday"}, "Enter a valid date"),
        ({"q": "railway", "archived_from": "2024-02-01", "archived_to": "2024-01-01"}, "before"),
        ({"q": "railway", "published_from": "20xx"}, "YYYY"),
        ({"q": "railway", "source": "not-a-uuid"}, "valid UUID"),
        ({"q": "railway", "collection": "not a slug!"}, "valid “slug”"),
        ({"q": "railway", "sort": "bogus"}, "Select a valid choice"),
        ({"q": "railway", "tag": "one", "overlap": "1"}, "exactly two tags"),
        ({"q": "railway", "sources_page": "abc"}, " found"),
        ({"q": "railway", "passages_page": "1" + "0" * 30}, " found"),
    ],
)
def test_bad_queries_get_a_clear_message_not_an_error(
    client, owner, archive_source, params, message
):
    client.force_login(owner)
    response = search(client, **params)
    assert message in response.content.decode()


@pytest.mark.django_db
def test_only_exclusions_list_everything_else_when_a_filter_is_given(client, owner, archive_source):
    annotate(archive_source, owner, "clerks wrote", tags=["margins"], note="quiet")
    annotate(archive_source, owner, "Workers organised", tags=["margins"], note="loud")
    client.force_login(owner)
    assert found(client, q="-loud", tag="margins") == (None, ["clerks wrote"])


@pytest.mark.django_db
def test_search_is_read_only(client, owner):
    client.force_login(owner)
    assert client.post("/search/", {"q": "x"}).status_code == 405
    assert client.post("/search/tags/cooccurrence/").status_code == 405


@pytest.mark.django_db
def test_query_count_does_not_grow_with_results(
    client, owner, collection, django_assert_max_num_queries
):
    def make(n):
        for i in range(n):
            source = make_source(f"Ledger {i} of tolls and crossings.", owner, collection)
            annotate(source, owner, "tolls", note=f"tolls {i}", tags=["ledger", f"t{i}"])

    from django.db import connection

    make(2)
    client.force_login(owner)
    # PostgreSQL reads the range of ids of sources and of annotations, and the planner's
    # estimate of how many match, for its windows of the newest (search.query.engine.NewestIds).
    most = 10 if connection.vendor == "sqlite" else 14
    with django_assert_max_num_queries(most):
        small = search(client, q="tolls", collection="field-notes")
    make(10)
    with django_assert_max_num_queries(most):
        large = search(client, q="tolls", collection="field-notes")
    assert small.context["results"].passages.count == 2
    assert large.context["results"].passages.count == 12


@pytest.mark.django_db
def test_passage_results_read_what_they_show_not_their_authors_password_hashes(
    client, owner, collection
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    source = make_source("Ledger of tolls and crossings.", owner, collection)
    annotate(source, owner, "tolls", note="Kept by season.", tags=["ledger"])
    client.force_login(owner)
    with CaptureQueriesContext(connection) as queries:
        response = search(client, q="tolls")
    text = re.sub(r"\s+", " ", response.content.decode())
    assert "Kept by season." in text and 'title="Passages annotated by olive"' in text
    read = " ".join(q["sql"] for q in queries.captured_queries)
    # The logged-in user's own row is read once, for the request; no result reads another.
    assert read.count('"auth_user"."password"') == 1


# --- In the browser --------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_header_search_box_finds_and_marks_words(page, owner, archive_source):
    login(page, "olive", "pw-olive-123")
    page.goto("/sources/")
    page.get_by_label("Search the archive").fill('"strike spread"')
    page.get_by_label("Search the archive").press("Enter")
    page.wait_for_url("**/search/?q=*")
    sources = page.get_by_role("region", name="Sources")
    assert sources.locator("mark").first.inner_text() == "strike spread"
    sources.locator(".snippet a").click()
    start = archive_source.text.index("strike spread")
    assert page.url.endswith(
        f"/sources/{archive_source.uuid}/passages/{start}-{start + 13}/#passage"
    )
    marked = page.locator("#text-layer [data-passage]")
    assert "".join(marked.all_inner_texts()) == "strike spread"


@pytest.mark.django_db
def test_past_the_ranked_matches_the_rest_follow_newest_first(
    client, owner, collection, monkeypatch
):
    monkeypatch.setattr("search.query.limits.MAX_RANKED_SOURCES", 2)
    monkeypatch.setattr("search.query.limits.MAX_RANKED_PASSAGES", 2)
    texts = ["tolls " * 5, "tolls once", "tolls tolls tolls", "tolls and more", "tolls here"]
    sources = [
        make_source(f"{text} {i}", owner, collection, title=f"S{i}") for i, text in enumerate(texts)
    ]
    for source in sources:
        annotate(source, owner, "tolls", note="tolls " * (1 + source.pk % 3))
    client.force_login(owner)
    results = search(client, q="tolls").context["results"]
    assert results.sources.count == 5 and results.passages.count == 5  # every match counted
    titles = [r.source.title for r in results.sources]
    # The two newest (S4, S3) are ranked by relevance, then the others newest first.
    assert sorted(titles[:2]) == ["S3", "S4"]
    assert titles[2:] == ["S2", "S1", "S0"]
    assert len({r.annotation.pk for r in results.passages}) == 5


@pytest.mark.django_db
def test_passages_are_paged_best_first(client, owner, collection, monkeypatch):
    monkeypatch.setattr("search.query.limits.PER_PAGE", 2)
    source = make_source("Ledgers of tolls and fares.", owner, collection)
    for k in (3, 1, 5, 2, 4):  # made in this order; the more "tolls", the better the match
        annotate(source, owner, "tolls", note=" ".join(["tolls"] * k + ["paid"] * (5 - k)))
    client.force_login(owner)
    pages = [
        search(client, q="tolls", passages_page=n).context["results"].passages for n in (1, 2, 3)
    ]
    notes = [r.annotation.note.count("tolls") for page in pages for r in page]
    assert notes == [5, 4, 3, 2, 1]
    assert [page.number for page in pages] == [1, 2, 3] and pages[0].num_pages == 3
    # Past the last page, the last page.
    assert search(client, q="tolls", passages_page=9).context["results"].passages.number == 3


@pytest.mark.django_db
def test_a_source_whose_title_matches_comes_first(client, owner, collection):
    make_source("tolls tolls tolls tolls and more tolls", owner, collection, title="Ledger")
    make_source("one mention of tolls", owner, collection, title="Tolls", creators=["Ade"])
    make_source("tolls tolls tolls", owner, collection, title="Book of Ade")
    client.force_login(owner)
    titles = found(client, q="tolls")[0]
    assert titles[0] == "Tolls" and sorted(titles[1:]) == ["Book of Ade", "Ledger"]
    # Every word must be in the metadata: "Ade" alone is not enough.
    assert found(client, q="tolls ade")[0] == ["Tolls", "Book of Ade"]
    assert found(client, q="tolls", sort="newest")[0] == ["Book of Ade", "Tolls", "Ledger"]


@pytest.mark.django_db
def test_sources_whose_metadata_matches_are_listed_first_however_old(
    client, owner, member, stranger, collection, monkeypatch
):
    """Past the sources that are scored (the most recently added), those whose title,
    creators, publisher or key match are found in an index of metadata alone."""
    monkeypatch.setattr("search.query.limits.MAX_RESULTS", 3)
    monkeypatch.setattr("search.query.limits.MAX_RANKED_SOURCES", 2)
    oldest = make_source("tolls once", owner, collection, title="Tolls of the river")
    make_source("tolls kept", stranger, title="Tolls of a stranger")  # not for maya
    for i in range(5):
        make_source(f"tolls tolls tolls {i}", owner, collection, title=f"S{i}")
    make_source("tolls", owner, collection, title="Tolls again")
    client.force_login(member)

    response = search(client, q="tolls")
    results = response.context["results"]
    titles = [r.source.title for r in results.sources]
    assert sorted(titles[:2]) == ["Tolls again", "Tolls of the river"]
    assert titles[2:] == ["S4"]  # then the newest (of the three listed in all)
    assert (results.sources.count, results.sources.more) == (3, True)
    marked = [str(r.title_html) for r in results.sources if r.source == oldest]
    assert marked == ["<mark>Tolls</mark> of the river"]
    assert "Tolls of a stranger" not in response.content.decode()
    # Exclusions and filters hold for them too.
    assert "Tolls of the river" not in found(client, q="tolls -river")[0]
    assert found(client, q="tolls", sort="newest")[0] == ["Tolls again", "S4", "S3"]

    # The index follows an edit of the metadata.
    client.force_login(owner)
    response = client.post(
        f"/sources/{oldest.uuid}/edit/",
        {"title": "A river crossing", "citation_key": oldest.citation_key},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    client.force_login(member)
    assert "A river crossing" not in found(client, q="tolls")[0]
    assert found(client, q="river tolls")[0][0] == "A river crossing"


@pytest.mark.django_db
def test_past_the_limit_the_newest_matches_are_listed_and_the_count_says_more(
    client, owner, member, collection, monkeypatch
):
    monkeypatch.setattr("search.query.limits.MAX_RESULTS", 3)
    # Five of fourteen sources match, spread out: the newest ids hold fewer than the limit,
    # so PostgreSQL's window of newest ids has to widen (_count_and_rank).
    sources = [
        make_source(f"{'tolls' if i % 3 == 0 else 'fares'} {i}", owner, collection, title=f"S{i}")
        for i in range(14)
    ]
    for source in sources:
        word = source.text.split()[0]
        # The newest match is private to olive: it must not count for maya.
        annotate(
            source, owner, word, visibility="private" if source.title == "S12" else "collection"
        )
    client.force_login(member)

    response = search(client, q="tolls")
    results = response.context["results"]
    assert {r.source.title for r in results.sources} == {"S12", "S9", "S6"}
    assert [r.annotation.source.title for r in results.passages] == ["S9", "S6", "S3"]
    assert (results.sources.count, results.sources.more) == (3, True)
    text = re.sub(r"\s+", " ", response.content.decode())
    assert "More than 3 sources and more than 3 passages found." in text
    assert 'Sources <span class="count">3+</span>' in text
    assert "Only the 3 most recently added passages are listed." in text
    assert "Only 3 sources are listed: those whose title, creators, publisher or" in text

    # Read in windows of the newest ids (as PostgreSQL does): the first holds too few, the
    # next is wider, and the answer is the same.
    from django.db.models import Max, Min

    from search.query.engine import NewestIds
    from search.query.finding import current_engine

    def narrow(model):
        def window(self, clauses, tag_words=None, tag_ids=None):
            ids = model.objects.aggregate(first=Min("pk"), newest=Max("pk"))
            return NewestIds(ids["first"], ids["newest"], width=6)

        return window

    engine = type(current_engine())
    monkeypatch.setattr(engine, "source_window", narrow(Source))
    monkeypatch.setattr(engine, "passage_window", narrow(Annotation))
    windowed = search(client, q="tolls").context["results"]
    assert [r.source for r in windowed.sources] == [r.source for r in results.sources]
    assert [r.annotation for r in windowed.passages] == [r.annotation for r in results.passages]
    assert windowed.sources.more and windowed.passages.more
    monkeypatch.undo()
    monkeypatch.setattr("search.query.limits.MAX_RESULTS", 3)

    newest = search(client, q="tolls", sort="newest").context["results"]
    assert [r.source.title for r in newest.sources] == ["S12", "S9", "S6"]
    assert newest.passages.more and newest.passages.count == 3
    listing = search(client, collection="field-notes").context["results"]  # no words
    assert (listing.sources.count, listing.sources.more) == (3, True)

    # At the limit, not past it: an exact count.
    monkeypatch.setattr("search.query.limits.MAX_RESULTS", 4)
    response = search(client, q="tolls")
    results = response.context["results"]
    assert (results.sources.count, results.sources.more) == (4, True)
    assert (results.passages.count, results.passages.more) == (4, False)
    text = re.sub(r"\s+", " ", response.content.decode())
    assert "More than 4 sources and 4 passages found." in text
    assert "Only 4 sources are listed: those whose title, creators, publisher or" in text
    assert "passages are listed" not in text


@pytest.mark.django_db
def test_media_types_are_listed_from_an_index_not_the_source_rows(owner, collection):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_source("Some words.", owner, collection)
    html = archive_text(b"<p>Words</p>", owner, collection, filename="page.html")
    csv = archive_text(b"a,b\n1,2\n", owner, collection, filename="table.csv")
    kinds = sorted({html.media_type, csv.media_type, "text/plain"})
    assert Source.media_types() == kinds
    csv.withdraw("A duplicate.")
    with CaptureQueriesContext(connection) as queries:
        assert Source.media_types() == sorted({html.media_type, "text/plain"})
    # One index seek per kind: the plan reads archive_source_media_idx, never the rows.
    (sql,) = (q["sql"] for q in queries.captured_queries)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert (
                "COVERING INDEX archive_source_media_idx (withdrawn_at=? AND media_type>?)" in plan
            )
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")  # (the table is tiny)
            cursor.execute(f"EXPLAIN {sql}")
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "Index Only Scan using archive_source_media_idx" in plan
            assert "Sort" not in plan  # read in the index's order, one row per kind


@pytest.mark.django_db
def test_a_tag_filter_looks_its_tag_up_once_then_reads_by_id(owner, archive_source):
    """So that PostgreSQL plans for how often that tag is used, and with words each match
    is checked with one probe of the (annotation, tag) index, not by reading the tag."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    annotate(archive_source, owner, "clerks wrote", tags=["Labour", "margins"])
    annotate(archive_source, owner, "railway line", tags=["transport"])
    filters = Filters(tags=["labour"])  # by name, in any case
    with CaptureQueriesContext(connection) as queries:
        listed = filters.annotations(owner)
        by_words = filters.annotations(owner, by_words=True)
    assert len(queries) == 1  # the tag, once
    assert [a.exact for a in listed] == [a.exact for a in by_words] == ["clerks wrote"]
    sql, params = by_words.query.sql_with_params()
    assert "taggit_tag" not in sql
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "COVERING INDEX annotations_tagged_with_tag (content_object_id=? AND" in plan
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")  # (the table is tiny)
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "Index Only Scan using annotations_tagged_with_tag" in plan


@pytest.mark.django_db
def test_the_rule_checked_one_row_at_a_time_lets_through_the_same_rows(
    owner, member, stranger, curator, collection
):
    """Search's probe-shaped access rule (``search.query.access``) is ``visible_to`` in
    another shape: the same rows for everyone."""
    from django.contrib.auth.models import AnonymousUser

    from search.query.access import annotations_visible_by_probe, sources_visible_by_probe

    shared = make_source("tolls in the shared collection", owner, collection, title="Shared")
    own = make_source("tolls of maya's own", member, title="Own")  # in no collection
    gone = make_source("tolls withdrawn", owner, collection, title="Gone")
    public = Collection.objects.create(slug="open", title="Open", owner=stranger, is_public=True)
    elsewhere = make_source("tolls in the open", stranger, public, title="Elsewhere")
    for source in (shared, gone):
        annotate(source, owner, "tolls", visibility="collection")
        annotate(source, member, "tolls", visibility="private")
    annotate(own, member, "tolls", visibility="private", collection=collection)
    annotate(elsewhere, stranger, "tolls", visibility="public")
    annotate(elsewhere, stranger, "open", visibility="collection")
    Source.objects.filter(pk=gone.pk).update(withdrawn_at=timezone.now())
    seen = {}
    for user in (owner, member, stranger, curator, AnonymousUser()):
        sources = set(Source.objects.visible_to(user))
        annotations = set(Annotation.objects.visible_to(user))
        assert set(sources_visible_by_probe(user)) == sources, user
        assert set(annotations_visible_by_probe(user)) == annotations, user
        seen[str(user)] = ({s.title for s in sources}, len(annotations))
    # Each user sees a different part, so the comparisons above are not all empty sets.
    assert seen[str(member)][0] == {"Shared", "Own", "Elsewhere"}
    assert seen[str(stranger)][0] == {"Elsewhere"}
    assert seen[str(AnonymousUser())] == ({"Elsewhere"}, 1)
    assert seen[str(curator)] == ({"Shared", "Own", "Gone", "Elsewhere"}, 7)


@pytest.mark.django_db
def test_sqlite_reads_the_newest_matches_from_the_index_and_checks_each_in_turn(
    client, owner, member, collection
):
    """Rather than first listing every source the user may see (SQLite plans as written)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: PostgreSQL reads windows of the newest ids")
    source = make_source("tolls and fares", owner, collection, title="Ledger")
    annotate(source, owner, "tolls")
    client.force_login(member)
    with CaptureQueriesContext(connection) as queries:
        assert found(client, q="tolls") == (["Ledger"], ["tolls"])
    statements = [q["sql"] for q in queries if q["sql"].startswith("WITH search_found")]
    indexes = ["search_vocabulary_fts", "search_annotation_fts"]  # sources, then passages
    for sql, index in zip(statements, indexes, strict=True):
        assert sql.startswith(f"WITH search_found AS MATERIALIZED (SELECT {index}.rowid")
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        # Each row's source: one probe of the collection's sources, not a list of them all.
        assert "(collection_id=? AND source_id=?)" in plan
        assert "SEARCH V0 USING COVERING INDEX" in plan


@pytest.mark.django_db
def test_postgresql_connections_run_without_jit():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


@pytest.mark.django_db
def test_postgresql_estimates_a_tags_use_from_its_own_rows(owner, archive_source, monkeypatch):
    # The planner takes the words of a tag's name ("labour history", on a tenth of the
    # entries) as found apart, and guessed a tenth of a tenth: the window of newest ids to
    # read a word and a tag in then took in every id. Counted from the tag's own rows, it
    # holds about as many as the page needs.
    from django.db import connection

    from search.forms import SearchForm
    from search.query.filters import tag_words
    from search.query.finding import current_engine

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite reads matches newest first")
    for i in range(100):
        annotate(archive_source, owner, "strike", tags=["labour history"] if i % 10 == 0 else ())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE search_annotationentry, annotations_taggedannotation")
        cursor.execute("ANALYZE annotations_annotation")
    monkeypatch.setattr("search.query.limits.MAX_RESULTS", 2)
    form = SearchForm({"q": "strike", "tag": "labour history"}, user=owner)
    assert form.is_valid(), form.errors
    filters, clauses = form.filters, form.cleaned_data["q"].include
    engine = current_engine()
    window = engine.passage_window(clauses, tag_words(filters), filters.tag_ids())
    assert not window.is_every_id
    assert engine.passage_window(clauses, tag_words(filters)).width > 100  # as it was
