from __future__ import annotations

import pytest

from archive.extract import ExtractionError, extract
from archive.extract.html import extract_html, normalise_date

ARTICLE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tab title</title>
<meta name="citation_title" content="Citation title">
<meta name="citation_author" content="Smith, Jane"><meta name="citation_author" content="Doe, John">
<meta name="citation_doi" content="10.1234/abc.def"><meta property="og:site_name" content="The Site">
<meta property="article:published_time" content="2024-03-31T10:00:00Z">
<meta name="description" content="A description."><link rel="canonical" href="https://example.org/a">
<script>document.write('SCRIPTTEXT')</script><style>p{color:red}</style></head>
<body onload="evil()"><h1>Main  heading</h1>
<p onclick="steal()">First <b>para</b> with <a href="/rel">a link</a>, <a href="java\tscript:alert(1)">bad</a>
and <a href="data:text/html,x">data</a>.</p>
<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul><blockquote><p>quoted</p></blockquote>
<pre>  code
  block</pre><table><caption>Cap</caption><tr><th>H</th><td>D</td></tr><tr><td>R2</td></tr></table>
<figure><img src="http://tracker.example/p.gif" alt="ALTTEXT"><figcaption>Fig cap</figcaption></figure>
<iframe src="x">FRAMETEXT</iframe><noscript>NOSCRIPTTEXT</noscript>
<form><input value="INPUTVALUE"><button>BUTTONTEXT</button><textarea>AREATEXT</textarea>kept</form>
<svg><text>SVGTEXT</text></svg>line<br>break</body></html>"""


def blocks_by_text(extraction):
    return {extraction.text[b["s"] : b["e"]]: b for b in extraction.blocks}


def assert_invariants(extraction):
    text = extraction.text
    previous_end = None
    for block in extraction.blocks:
        assert 0 <= block["s"] < block["e"] <= len(text)
        if previous_end is not None:
            assert text[previous_end : block["s"]] == "\n\n"
        previous_end = block["e"]
        for s, e, _ in block.get("links", []):
            assert block["s"] <= s < e <= block["e"]
    assert previous_end == len(text)


def test_structure_is_kept_and_offsets_index_the_text_layer():
    e = extract_html(ARTICLE, base_url="https://example.org/news/item.html")
    assert_invariants(e)
    blocks = blocks_by_text(e)
    assert blocks["Main heading"]["t"] == "h1"
    assert blocks["one"]["t"] == "li" and blocks["one"]["depth"] == 1
    assert blocks["nested"]["depth"] == 2
    assert "quote" in blocks["quoted"]
    assert blocks["  code\n  block"]["t"] == "pre"
    assert blocks["Cap"]["t"] == "caption"
    assert blocks["H"]["t"] == "th" and blocks["R2"]["row"] == 1
    assert blocks["Fig cap"]["t"] == "figcaption"
    assert blocks["line\nbreak"]["t"] == "p"


def test_links_are_resolved_and_unsafe_schemes_dropped():
    e = extract_html(ARTICLE, base_url="https://example.org/news/item.html")
    links = [link for b in e.blocks for link in b.get("links", [])]
    assert [(e.text[s:end], href) for s, end, href in links] == [
        ("a link", "https://example.org/rel")
    ]


def test_scripts_styles_frames_forms_and_images_never_reach_the_text():
    e = extract_html(ARTICLE)
    for hidden in (
        "SCRIPTTEXT",
        "color:red",
        "FRAMETEXT",
        "NOSCRIPTTEXT",
        "INPUTVALUE",
        "BUTTONTEXT",
        "AREATEXT",
        "SVGTEXT",
        "ALTTEXT",
        "evil",
        "steal",
        "javascript",
    ):
        assert hidden not in e.text
    assert "kept" in e.text


def test_metadata_is_taken_from_citation_tags_first():
    meta = extract_html(ARTICLE).metadata
    assert meta["title"] == "Citation title"
    assert meta["creators"] == ["Smith, Jane", "Doe, John"]
    assert meta["publisher"] == "The Site"
    assert meta["date_published"] == "2024-03-31"
    assert meta["doi"] == "10.1234/abc.def"
    assert meta["language"] == "en"
    assert meta["description"] == "A description."
    assert meta["url"] == "https://example.org/a"


def test_json_ld_and_title_fallbacks_and_malformed_json_ld_is_ignored():
    doc = b"""<html><head><title>Plain title</title>
    <script type="application/ld+json">{not json</script>
    <script type="application/ld+json">{"@graph": [{"@type": "NewsArticle", "headline": "LD headline",
      "author": [{"name": "Ana Author"}, "Bo Writer"], "datePublished": "2023/07/04",
      "publisher": {"name": "LD Publisher"}}]}</script></head><body><p>Body</p></body></html>"""
    meta = extract_html(doc).metadata
    assert meta["title"] == "LD headline"
    assert meta["creators"] == ["Ana Author", "Bo Writer"]
    assert meta["date_published"] == "2023-07-04"
    assert meta["publisher"] == "LD Publisher"
    assert extract_html(b"<title> Only  title </title><p>x</p>").metadata["title"] == "Only title"


def test_one_hundred_thousand_levels_of_nesting_extract_without_error():
    e = extract_html(b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000)
    assert e.text == "deep"


def test_a_ten_megabyte_single_line_paragraph():
    e = extract_html(b"<p>" + b"word " * 2_000_000 + b"</p>")
    assert len(e.text) == 10_000_000 - 1
    assert len(e.blocks) == 1


@pytest.mark.parametrize(
    ("data", "encoding", "expected"),
    [
        ("<p>Caf\u00e9 \U0001f642</p>".encode("utf-16"), "utf-16", "Caf\u00e9 \U0001f642"),
        (
            b'<meta charset="windows-1252"><p>\x93quoted\x94</p>',
            "windows-1252",
            "\u201cquoted\u201d",
        ),
        (b'<meta charset="iso-8859-1"><p>\x93q\x94</p>', "windows-1252", "\u201cq\u201d"),
        (b"<p>undeclared \x93cp1252\x94</p>", "windows-1252", "undeclared \u201ccp1252\u201d"),
        ("<p>Caf\u00e9</p>".encode(), "utf-8", "Caf\u00e9"),
    ],
)
def test_encodings(data, encoding, expected):
    e = extract_html(data)
    assert e.encoding == encoding
    assert e.encoding_note
    assert e.text == expected


@pytest.mark.parametrize(
    ("content_type", "encoding", "note"),
    [
        # The server's word comes before the page's own, as in a browser.
        ("text/html; charset=utf-8", "utf-8", "utf-8: declared by the server (Content-Type)"),
        ('text/html; charset="UTF-8"', "utf-8", "utf-8: declared by the server (Content-Type)"),
        # No charset, an unknown one, or one the bytes do not decode in: the page's <meta>.
        ("text/html", "windows-1252", "windows-1252: declared in <meta charset>"),
        ("text/html; charset=klingon", "windows-1252", "windows-1252: declared in <meta charset>"),
        # As browsers do, US-ASCII and Latin-1 labels are read as Windows-1252.
        (
            "text/html; charset=us-ascii",
            "windows-1252",
            "windows-1252: declared by the server (Content-Type)",
        ),
    ],
)
def test_the_charset_the_server_declared_comes_first(content_type, encoding, note):
    # A page saved as UTF-8 that still declares the Latin-1 it was written in.
    data = '<meta charset="iso-8859-1"><p>Sanci\u00f3n</p>'.encode()
    e = extract(data, content_type)
    assert (e.encoding, e.encoding_note) == (encoding, note)
    assert e.text == ("Sanci\u00f3n" if encoding == "utf-8" else "Sanci\u00c3\u00b3n")


def test_code_point_offsets_around_emoji_and_right_to_left_text():
    e = extract_html(
        '<p>\U0001f642 <a href="https://x.org/">\u05e9\u05dc\u05d5\u05dd \U0001f30d</a> e\u0301</p>'.encode()
    )
    ((s, end, _),) = e.blocks[0]["links"]
    assert e.text[s:end] == "\u05e9\u05dc\u05d5\u05dd \U0001f30d"
    assert e.text == "\U0001f642 \u05e9\u05dc\u05d5\u05dd \U0001f30d e\u0301"


def test_a_page_with_no_readable_text_is_refused():
    with pytest.raises(ExtractionError, match="no readable text"):
        extract_html(b"<html><head><script>x()</script></head><body> </body></html>")


def test_sniffing_sends_html_to_the_html_extractor_whatever_it_was_called():
    assert (
        extract(b"<!DOCTYPE html><p>Hi</p>", declared_type="text/plain").media_type == "text/html"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024", "2024"),
        ("2024-3", "2024-03"),
        ("2024/03/05", "2024-03-05"),
        ("2024-13-01", "2024"),
        ("2024-02-40", "2024-02"),
        ("May 2024", ""),
    ],
)
def test_dates_are_normalised(raw, expected):
    assert normalise_date(raw) == expected


def page(head: str) -> bytes:
    return f"<html><head><title>T</title>{head}</head><body><p>Body</p></body></html>".encode()


@pytest.mark.parametrize(
    ("head", "source_type"),
    [
        (
            '<script type="application/ld+json">{"@type": "NewsArticle"}</script>',
            "article-newspaper",
        ),
        (
            '<script type="application/ld+json">{"@graph": [{"@type": ["WebPage"]},'
            ' {"@type": "ScholarlyArticle"}]}</script>',
            "webpage",
        ),
        (
            '<script type="application/ld+json">{"@type": "ScholarlyArticle"}</script>',
            "article-journal",
        ),
        ('<script type="application/ld+json">{"@type": "Report"}</script>', "report"),
        ('<script type="application/ld+json">{"@type": "Dataset"}</script>', "dataset"),
        ('<script type="application/ld+json">{"@type": "Thesis"}</script>', "thesis"),
        ('<meta property="og:type" content="article">', "article-newspaper"),
        ('<meta property="og:type" content="website">', "webpage"),
        ('<meta property="og:type" content="book">', "book"),
        ('<meta name="citation_dissertation_institution" content="University of Lagos">', "thesis"),
        ('<meta name="citation_technical_report_number" content="TR-7">', "report"),
        # A publisher's citation tags say more than its generic Open Graph type.
        (
            '<meta property="og:type" content="article">'
            '<meta name="citation_journal_title" content="Journal of Ports">',
            "article-journal",
        ),
    ],
)
def test_the_type_of_work_is_taken_from_the_page(head, source_type):
    assert extract_html(page(head)).metadata["source_type"] == source_type


def test_a_page_that_says_nothing_of_its_type_gets_none_from_extraction():
    assert "source_type" not in extract_html(page("")).metadata


def test_a_journal_article_page_gives_its_journal_volume_issue_and_pages():
    meta = extract_html(
        page(
            '<meta name="citation_title" content="Grain Prices">'
            '<meta name="citation_journal_title" content="Journal of  Ports">'
            '<meta name="citation_publisher" content="Tide Press">'
            '<meta name="citation_volume" content="12"><meta name="citation_issue" content="3">'
            '<meta name="citation_firstpage" content="45"><meta name="citation_lastpage" content="67">'
        )
    ).metadata
    assert meta["source_type"] == "article-journal"
    assert meta["container_title"] == "Journal of Ports"
    assert meta["publisher"] == "Tide Press"
    assert (meta["volume"], meta["issue"], meta["pages"]) == ("12", "3", "45–67")


def test_a_chapter_page_gives_its_book_and_editors():
    meta = extract_html(
        page(
            '<meta name="citation_title" content="The Strike">'
            '<meta name="citation_inbook_title" content="Ports of Europe">'
            '<meta name="citation_editor" content="Ruiz, Ana">'
            '<meta name="citation_editor" content="Lund, Per">'
            '<meta name="citation_isbn" content="978-0-306-40615-7">'
        )
    ).metadata
    assert (meta["source_type"], meta["container_title"]) == ("chapter", "Ports of Europe")
    assert meta["editors"] == ["Ruiz, Ana", "Lund, Per"]
