"""The article extractor: a page's article as its text layer, the page's metadata in the
order a reader would trust it, and the whole page when asked for or when there is no
article."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotations.models import Annotation
from archive.extract import extract
from archive.extract.html import extract_html, strip_site_name
from archive.ingest import archive_chunks
from archive.models import Source
from tests.conftest import archive_text
from tests.helpers import annotate, empty_everything, export_bag, import_bytes

PARAGRAPHS = [
    "The river rose two metres overnight, flooding the lower town and closing the old"
    " bridge for the first time in forty years, officials said on Tuesday morning after"
    " a night in which the rain never stopped and the gauges at the weir broke their"
    " previous record by more than half a metre.",
    "The council opened three shelters and asked residents of the riverside streets to"
    " leave their homes before nightfall, when the water is expected to peak, and sent"
    " volunteers from door to door to help older people carry what they could not leave"
    " behind to the vans waiting on the high ground.",
    "Engineers will inspect the bridge once the water falls, which may take several days"
    " according to the forecast from the national weather service, and the council said"
    " it would publish their findings before deciding whether the bridge can open again"
    " to traffic before the end of the month.",
]

# What a news site puts around its article, each piece with a marker word that must not
# reach the text layer.
NAV = "<header><nav><ul><li><a href='/'>NAVHOME</a></li><li><a href='/world'>NAVWORLD</a></li>"
NAV += "<li><a href='/sport'>NAVSPORT</a></li></ul></nav></header>"
SHARE = (
    "<div class='share-buttons'><a href='https://twitter.com/share'>SHARETWITTER</a>"
    " <a href='https://facebook.com/share'>SHAREFACEBOOK</a></div>"
)
RELATED = (
    "<aside class='related'><h3>RELATEDHEADING</h3><ul>"
    "<li><a href='/a'>RELATEDONE storm hits the coast</a></li>"
    "<li><a href='/b'>RELATEDTWO dam holds firm</a></li></ul></aside>"
)
COMMENTS = (
    "<section id='comments' class='comments'><h3>COMMENTSHEADING</h3>"
    "<div class='comment'><p>COMMENTONE What a great article, thanks for sharing it with"
    " all of us here.</p></div></section>"
)
FOOTER = (
    "<footer><p>FOOTERCOPYRIGHT 2026 Example Wire.</p><a href='/privacy'>FOOTERPRIVACY</a></footer>"
)
BOILERPLATE = [
    "NAVHOME",
    "NAVWORLD",
    "SHAREFACEBOOK",
    "SHARETWITTER",
    "RELATEDHEADING",
    "RELATEDONE",
    "COMMENTSHEADING",
    "COMMENTONE",
    "FOOTERCOPYRIGHT",
    "FOOTERPRIVACY",
]

ARTICLE = f"""
<h1>Rivers rise across the valley</h1>
<p>{PARAGRAPHS[0]}</p>
<h2>What the council said</h2>
<p onclick="steal()">{PARAGRAPHS[1]} <a href="javascript:alert(1)">Shelters</a>.</p>
<ul><li>Shelter at the school hall</li><li>Shelter at the library</li></ul>
<blockquote><p>We have never seen the water this high in living memory.</p></blockquote>
<table><caption>River levels</caption><tr><th>Day</th><th>Level</th></tr>
<tr><td>Monday</td><td>3.1 m</td></tr></table>
<figure><img src="/flood.jpg" alt="ALTTEXT"><figcaption>Water covers the high street.</figcaption>
</figure>
<p>{PARAGRAPHS[2]} <a href="/report">The full report</a>.</p>
<script>document.write('SCRIPTTEXT')</script>
"""


def page(head: str = "", article: str = ARTICLE, lang: str = "en") -> bytes:
    return (
        f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>{head}</head><body>"
        f"{NAV}{SHARE}<main><article>{article}</article></main>{RELATED}{COMMENTS}{FOOTER}"
        "</body></html>"
    ).encode()


def by_text(extraction) -> dict[str, dict]:
    return {extraction.text[b["s"] : b["e"]]: b for b in extraction.blocks}


def test_only_the_article_is_kept_with_its_structure():
    e = extract(page(), "text/html", "https://example.org/news/rivers")
    assert e.extractor == "article" and e.extractor_version == "2"
    for word in [*BOILERPLATE, "SCRIPTTEXT", "ALTTEXT"]:
        assert word not in e.text
    blocks = by_text(e)
    assert blocks["Rivers rise across the valley"]["t"] == "h1"
    assert blocks["What the council said"]["t"] == "h2"
    assert blocks[PARAGRAPHS[0]]["t"] == "p"
    # Archived HTML stays inert: a javascript: link keeps only its text.
    assert "links" not in blocks[PARAGRAPHS[1] + " Shelters."]
    assert "steal" not in e.text and "alert" not in e.text
    first, second = blocks["Shelter at the school hall"], blocks["Shelter at the library"]
    assert first["t"] == second["t"] == "li" and first["list"] == second["list"]
    assert "quote" in blocks["We have never seen the water this high in living memory."]
    assert blocks["River levels"]["t"] == "caption"
    assert blocks["Day"]["t"] == "th" and blocks["Monday"]["t"] == "td"
    assert blocks["Monday"]["table"] == blocks["River levels"]["table"]
    assert blocks["Water covers the high street."]["t"] == "figcaption"
    last = blocks[PARAGRAPHS[2] + " The full report."]
    assert last["links"] == [
        [last["e"] - len("The full report."), last["e"] - 1, "https://example.org/report"]
    ]
    # The block structure indexes the text layer (annotations anchor to its code points).
    assert e.text == "\n\n".join(e.text[b["s"] : b["e"]] for b in e.blocks)


def test_the_same_bytes_always_give_the_same_text_layer():
    first, second = extract(page()), extract(page())
    assert (first.text, first.blocks) == (second.text, second.blocks)


def test_whole_page_keeps_todays_html_extractor():
    data = page("<title>Rivers rise</title>")
    e = extract(data, "text/html", "https://example.org/news/rivers", whole_page=True)
    whole = extract_html(data, "https://example.org/news/rivers")
    assert (e.extractor, e.extractor_version) == ("html", "2")
    assert (e.text, e.blocks) == (whole.text, whole.blocks)
    assert "NAVHOME" in e.text and "COMMENTONE" in e.text
    # The metadata is the page's, whichever text is kept.
    article = extract(data, "text/html", "https://example.org/news/rivers")
    assert e.metadata == article.metadata


@pytest.mark.parametrize(
    "body",
    [
        "<p>Closed for the holidays.</p>",  # a short page
        "<h1>All stories</h1><ul>"  # a list of links, not an article
        + "".join(f"<li><a href='/s{i}'>Story {i} about the river</a></li>" for i in range(40))
        + "</ul>",
    ],
)
def test_a_page_without_an_article_is_kept_whole(body):
    data = page("<title>Example Wire</title>", article=body)
    e = extract(data, "text/html", "https://example.org/")
    assert (e.extractor, e.extractor_version) == ("html", "2")
    assert e.text == extract_html(data, "https://example.org/").text
    assert "NAVHOME" in e.text


def test_a_page_over_the_size_limit_is_kept_whole(monkeypatch):
    from archive.extract import article

    data = page()
    monkeypatch.setattr(article, "MAX_ARTICLE_PAGE_BYTES", len(data) - 1)
    assert extract(data).extractor == "html"
    monkeypatch.setattr(article, "MAX_ARTICLE_PAGE_BYTES", len(data))
    assert extract(data).extractor == "article"


LAYERS = [
    (
        "json-ld",
        '<script type="application/ld+json">{"@context": "https://schema.org", "@graph": ['
        '{"@type": "WebPage", "name": "WebPage name - Example Wire"},'
        '{"@type": "NewsArticle", "headline": "LD &amp; headline",'
        ' "author": [{"@type": "Person", "name": "Ana Ld"}, {"@type": "Person", "name": "Bo Ld"}],'
        ' "datePublished": "2024-05-01T08:00:00Z", "inLanguage": "de",'
        ' "publisher": {"@type": "Organization", "name": "LD Wire"}}]}</script>',
        {
            "title": "LD & headline",
            "creators": ["Ana Ld", "Bo Ld"],
            "date_published": "2024-05-01",
            "publisher": "LD Wire",
            "language": "de",
        },
    ),
    (
        "citation",
        '<meta name="citation_title" content="Citation title">'
        '<meta name="citation_author" content="Citer, Cy">'
        '<meta name="citation_publication_date" content="2024/05/02">'
        '<meta name="citation_publisher" content="Citation Press">'
        '<meta name="citation_language" content="fr">',
        {
            "title": "Citation title",
            "creators": ["Citer, Cy"],
            "date_published": "2024-05-02",
            "publisher": "Citation Press",
            "language": "fr",
        },
    ),
    (
        "dublin-core",
        '<meta name="DC.title" content="DC title"><meta name="DC.creator" content="Dee Core">'
        '<meta name="DC.date" content="2024-05-03"><meta name="DC.publisher" content="DC Press">'
        '<meta name="DC.language" content="it">',
        {
            "title": "DC title",
            "creators": ["Dee Core"],
            "date_published": "2024-05-03",
            "publisher": "DC Press",
            "language": "it",
        },
    ),
    (
        "open-graph",
        '<meta property="og:title" content="OG title | OG Site">'
        '<meta property="og:site_name" content="OG Site">'
        '<meta property="article:author" content="Olga Graph">'
        '<meta property="article:published_time" content="2024-05-04T10:00:00+02:00">'
        '<meta property="og:locale" content="es_ES">',
        {
            "title": "OG title",
            "creators": ["Olga Graph"],
            "date_published": "2024-05-04",
            "publisher": "OG Site",
            "language": "es-ES",
        },
    ),
]
# Beneath them all: the byline in the article's text (found by trafilatura), and <title>.
BYLINE_ARTICLE = ARTICLE.replace(
    "</h1>", "</h1><p class='byline'>By <span class='author'>Tess Byline</span></p>"
)


def test_metadata_comes_from_json_ld_then_citation_then_dublin_core_then_open_graph():
    for n, (name, _, expected) in enumerate(LAYERS):
        head = "<title>Tab title</title>" + "".join(markup for _, markup, _ in LAYERS[n:])
        meta = extract(page(head, BYLINE_ARTICLE, lang="en"), "text/html").metadata
        assert {k: meta.get(k) for k in expected} == expected, name


def test_without_metadata_tags_the_library_finds_the_byline_and_title_comes_last():
    meta = extract(page("<title>Tab title</title>", BYLINE_ARTICLE)).metadata
    assert meta["creators"] == ["Tess Byline"]
    assert meta["language"] == "en"  # <html lang>
    # trafilatura takes its title from the page's own heading before <title>.
    assert meta["title"] == "Rivers rise across the valley"
    no_heading = BYLINE_ARTICLE.replace("<h1>Rivers rise across the valley</h1>", "")
    assert extract(page("<title>Tab title</title>", no_heading)).metadata["title"] == "Tab title"


def test_names_are_people_without_addresses():
    head = (
        '<meta name="author" content="desk@example.org">'
        '<meta name="author" content="Ana Smith, Bo Jones and Cy Lee">'
    )
    assert extract(page(head)).metadata["creators"] == ["Ana Smith", "Bo Jones", "Cy Lee"]
    # A single comma is "Family, Given": one person.
    head = '<meta name="citation_author" content="Smith, Ana">'
    assert extract(page(head)).metadata["creators"] == ["Smith, Ana"]


@pytest.mark.parametrize(
    ("title", "site", "url", "expected"),
    [
        ("Rivers rise - Example Wire", "Example Wire", "", "Rivers rise"),
        ("Rivers rise | The Site", "The Site", "", "Rivers rise"),
        ("The Site | Rivers rise", "The Site", "", "Rivers rise"),
        ("Rivers rise – EXAMPLE WIRE", "Example Wire", "", "Rivers rise"),
        ("Rivers rise | Example Wire", "", "https://www.examplewire.com/a", "Rivers rise"),
        ("Rivers rise - Die Neue Wire", "", "https://wire.example/a", "Rivers rise"),
        (
            "Rivers rise - Example of a flood",
            "",
            "https://example.org/a",
            "Rivers rise - Example of a flood",
        ),
        # A dash that is part of the title stays.
        (
            "Left - right: a history",
            "Example Wire",
            "https://example.org/",
            "Left - right: a history",
        ),
        ("Rivers rise", "Example Wire", "", "Rivers rise"),
    ],
)
def test_a_site_name_around_the_title_is_removed(title, site, url, expected):
    assert strip_site_name(title, [site], url) == expected


def test_a_part_another_of_the_pages_titles_leaves_out_is_removed():
    ld = {"@type": "NewsArticle", "headline": "Rivers rise | Sport | 2024-05-01"}
    head = (
        f'<script type="application/ld+json">{json.dumps(ld)}</script>'
        '<meta property="og:title" content="Rivers rise">'
    )
    assert extract(page(head)).metadata["title"] == "Rivers rise"
    head = "<title>Rivers rise - Example Wire</title><meta property='og:site_name' content='Example Wire'>"
    assert (
        extract(
            page(head, BYLINE_ARTICLE.replace("<h1>Rivers rise across the valley</h1>", ""))
        ).metadata["title"]
        == "Rivers rise"
    )


def news_page(headline: str, og_title: str = "", heading: str = "") -> bytes:
    ld = {"@type": "NewsArticle", "headline": headline}
    head = f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    if og_title:
        head += f'<meta property="og:title" content="{og_title}">'
    article = ARTICLE.replace("Rivers rise across the valley", heading or headline)
    return page(head, article)


@pytest.mark.parametrize(
    ("headline", "og_title", "expected"),
    [
        # A topic line the Open Graph title leaves out.
        (
            "Floods: Rivers rise in the valley",
            "Rivers rise in the valley",
            "Rivers rise in the valley",
        ),
        ("«Spring floods»: Rivers rise again", "Rivers rise again", "Rivers rise again"),
        # No other title without it: the colon may be the headline's own.
        ("Floods: Rivers rise in the valley", "", "Floods: Rivers rise in the valley"),
        ("Floods: Rivers rise in the valley", "Rivers rise", "Floods: Rivers rise in the valley"),
        # Before a colon, a whole clause is the headline's first half, not a topic line.
        (
            "What the council said after the river rose higher than ever before in May: "
            "Shelters open",
            "Shelters open",
            "What the council said after the river rose higher than ever before in May: "
            "Shelters open",
        ),
    ],
)
def test_a_topic_line_another_of_the_pages_titles_leaves_out_is_removed(
    headline, og_title, expected
):
    assert extract(news_page(headline, og_title)).metadata["title"] == expected


def test_the_json_ld_headline_stays_first_when_the_page_shows_another():
    # The issue's order. Taking instead the <h1> that Open Graph repeats ("the headline the
    # reader sees") got fewer of bench/extraction.py's real pages right (bench/NOTES.md).
    data = news_page("Rivers rise, and the council opens shelters", "Rivers rise", "Rivers rise")
    assert extract(data).metadata["title"] == "Rivers rise, and the council opens shelters"


# --- archiving: the default, the form's checkbox and the command's flag -----------------


def unique_page() -> bytes:
    # Distinct bytes per test: blobs outlive each test's rolled-back rows.
    return page(f"<title>Rivers rise {uuid.uuid4()}</title>")


@pytest.mark.django_db
def test_archived_html_keeps_its_article_by_default_and_the_whole_page_when_asked(owner):
    data = unique_page()
    article = archive_chunks(iter([data]), user=owner, filename="rivers.html")
    assert article.created and article.source.extractor == "article"
    assert "NAVHOME" not in article.source.text
    # The same bytes kept whole: the article is not what was asked for, so a second source.
    whole = archive_chunks(iter([data]), user=owner, filename="rivers.html", whole_page=True)
    assert whole.created and whole.source.extractor == "html"
    assert "NAVHOME" in whole.source.text
    again = archive_chunks(iter([data]), user=owner, filename="rivers.html", whole_page=True)
    assert not again.created and again.source == whole.source
    # A source keeps the text layer it was archived with.
    article.source.refresh_from_db()
    assert article.source.extractor == "article" and "NAVHOME" not in article.source.text


@pytest.mark.django_db
@pytest.mark.parametrize(("checked", "extractor"), [(False, "article"), (True, "html")])
def test_the_archive_form_keeps_the_whole_page_when_its_box_is_ticked(
    client, owner, checked, extractor
):
    client.force_login(owner)
    form = client.get("/sources/new/")
    assert form.status_code == 200
    assert 'name="whole_page"' in form.text and "Keep the whole page" in form.text
    fields: dict[str, object] = {
        "file": SimpleUploadedFile("rivers.html", unique_page(), content_type="text/html")
    }
    if checked:
        fields["whole_page"] = "on"
    response = client.post("/sources/new/", fields)
    assert response.status_code == 302
    source = Source.objects.get()
    assert source.extractor == extractor
    assert ("NAVHOME" in source.text) is checked


@pytest.mark.django_db
@pytest.mark.parametrize(("flag", "extractor"), [((), "article"), (("--whole-page",), "html")])
def test_the_archive_command_keeps_the_whole_page_with_its_flag(tmp_path, flag, extractor):
    path = tmp_path / "rivers.html"
    path.write_bytes(unique_page())
    out = StringIO()
    call_command("archive", str(path), *flag, stdout=out, stderr=StringIO())
    source_uuid = out.getvalue().split("\t")[0]
    source = Source.objects.get(uuid=source_uuid)
    assert source.extractor == extractor
    assert ("NAVHOME" in source.text) is bool(flag)


@pytest.mark.django_db
@pytest.mark.parametrize("whole_page", [False, True])
def test_an_imported_page_gets_the_text_layer_its_annotations_were_made_on(
    owner, collection, tmp_path, whole_page
):
    exported = archive_text(
        unique_page(), owner, collection, filename="rivers.html", whole_page=whole_page
    )
    # Anchored after the navigation when the whole page is kept: offsets that only the
    # same text layer matches.
    annotation = annotate(exported, owner, "What the council said")
    export_bag(tmp_path / "package.zip")
    empty_everything()
    import_bytes((tmp_path / "package.zip").read_bytes())
    source = Source.objects.get(uuid=exported.uuid)
    assert source.extractor == exported.extractor == ("html" if whole_page else "article")
    assert source.text == exported.text
    imported = Annotation.objects.get(uuid=annotation.uuid)
    assert source.text[imported.start : imported.end] == "What the council said"


@pytest.mark.django_db
def test_an_import_does_not_take_the_same_bytes_with_another_text_layer(
    owner, collection, tmp_path
):
    data = unique_page()
    exported = archive_text(data, owner, collection, filename="rivers.html", whole_page=True)
    annotation = annotate(exported, owner, "What the council said")
    export_bag(tmp_path / "package.zip")
    Annotation.objects.all().delete()
    exported.delete()
    article = archive_text(data, owner, collection, filename="rivers.html")
    assert article.extractor == "article"
    import_bytes((tmp_path / "package.zip").read_bytes())
    imported = Annotation.objects.get(uuid=annotation.uuid)
    assert imported.source != article and imported.source.extractor == "html"
    assert imported.source.text[imported.start : imported.end] == "What the council said"
