"""Article extractor: the text a reader came for, without the site around it.

trafilatura, a maintained main-content extraction library, chooses the article (headings,
paragraphs, lists, quotes, tables, captions) and leaves out the site's navigation, header,
footer, comments, share buttons and "related" lists. It writes the article out as plain
HTML, and that HTML is rendered by the same sanitising renderer as a whole page
(archive.extract.html): the text layer is exactly what the renderer makes of the HTML
trafilatura gives, with the same block structure and the same guarantees.

When there is no article (a short page, a page that is not an article) the whole page is
kept, and the source records the ``html`` extractor, which made its text.

trafilatura is pinned to one release in pyproject.toml: ``article`` 1 is what that release
makes of a page. A stored text layer is never re-extracted, but an import re-derives it from
the bytes, so a new trafilatura release that changes its output means ``article`` 2.
"""

from __future__ import annotations

import copy

import lxml.html
import trafilatura
from lxml.etree import ParserError
from lxml.html import HtmlElement
from trafilatura.readability_lxml import is_probably_readerable
from trafilatura.settings import DEFAULT_CONFIG

from archive.extract import ARTICLE_EXTRACTOR, Extraction
from archive.extract.html import (
    HTML_EXTRACTOR,
    WHITESPACE,
    decode_html,
    page_extraction,
    page_metadata,
    render,
)

# Below trafilatura's own threshold for a main text worth the name, the whole page is kept.
MIN_ARTICLE_CHARS = DEFAULT_CONFIG.getint("DEFAULT", "MIN_EXTRACTED_SIZE")
# A larger page is kept whole, so that an upload is not held for long: trafilatura takes
# about 4 s for a page of 4 MiB of text, 19 s for 14 MiB, and real articles are far smaller
# (the largest news page in bench/extraction.py's corpus is 2.2 MB, scripts and all).
MAX_ARTICLE_PAGE_BYTES = 4 * 1024 * 1024


def extract_article(
    data: bytes, base_url: str = "", *, whole_page: bool = False, content_type: str = ""
) -> Extraction:
    """The article in an HTML page as a text layer, or the whole page (``whole_page``, a
    page over MAX_ARTICLE_PAGE_BYTES, or when no article is found). Metadata comes from the
    whole page either way."""
    html, encoding, note = decode_html(data, content_type)
    page = render(html, base_url)
    tree = _load(html) if len(data) <= MAX_ARTICLE_PAGE_BYTES else None
    metadata = page_metadata(page, _library_metadata(tree, page.base_url))
    # is_probably_readerable (Mozilla Readability's test, as trafilatura ships it) tells a
    # page holding an article from a list of links, a form or a few lines; on those
    # trafilatura would fall back to a dump of all of the page's text in one paragraph.
    if not whole_page and tree is not None and is_probably_readerable(tree):
        article_html = _article_html(tree, page.base_url)
        if article_html is not None:
            article = render(article_html, page.base_url)
            if sum(len(part) for part in article.text_parts) >= MIN_ARTICLE_CHARS:
                return page_extraction(article, encoding, note, ARTICLE_EXTRACTOR, metadata)
    return page_extraction(page, encoding, note, HTML_EXTRACTOR, metadata)


def _load(html: str) -> HtmlElement | None:
    try:
        return trafilatura.load_html(html)
    except (ParserError, ValueError):
        return None


def _article_html(tree: HtmlElement, url: str) -> str | None:
    """The article as HTML written by trafilatura, or None when it finds none."""
    tree = copy.deepcopy(tree)  # trafilatura and the caption marking below change the tree
    figure_captions = _mark_figure_captions(tree)
    table_captions = {_words(c) for c in tree.iter("caption")}
    result = trafilatura.extract(
        tree,
        url=url or None,
        output_format="html",
        include_comments=False,
        include_tables=True,
        include_images=True,  # keeps <figure>, and so the captions of images
        include_links=True,
        include_formatting=True,
        deduplicate=False,
        with_metadata=False,
        # Where its extractor finds little, trafilatura's other modes fall back to all of the
        # page's text in one paragraph; the whole page is better kept here, with its structure.
        # On real news pages precision keeps 99% of the text balanced mode does.
        favor_precision=True,
    )
    if not result:
        return None
    return _restore_captions(result, figure_captions, table_captions)


def _words(element: HtmlElement) -> str:
    return WHITESPACE.sub(" ", "".join(element.itertext())).strip()


def _mark_figure_captions(tree: HtmlElement) -> set[str]:
    """trafilatura drops <figcaption> but keeps paragraphs inside a figure: make each
    caption a paragraph, and return their texts so they become captions again."""
    captions = set()
    for caption in list(tree.iter("figcaption")):
        captions.add(_words(caption))
        caption.tag = "p"
    captions.discard("")
    return captions


def _restore_captions(html: str, figure_captions: set[str], table_captions: set[str]) -> str:
    """Give back the caption kind trafilatura's output flattens: a paragraph that was a
    figure's caption, and the first row (one header cell) it makes of a table's caption."""
    if not figure_captions and not table_captions:
        return html
    root = lxml.html.document_fromstring(html)
    for paragraph in root.iter("p"):
        if _words(paragraph) in figure_captions:
            paragraph.tag = "figcaption"
    for table in root.iter("table"):
        rows = table.findall("tr")
        if not rows:
            continue
        cells = [c for c in rows[0] if _words(c)]
        if len(cells) == 1 and cells[0].tag == "th" and _words(cells[0]) in table_captions:
            caption = lxml.html.Element("caption")
            caption.text = _words(cells[0])
            table.replace(rows[0], caption)
    return lxml.html.tostring(root, encoding="unicode")


def _library_metadata(tree: HtmlElement | None, url: str) -> dict:
    """What trafilatura finds in the page (including bylines written in its text), in the
    fields page_metadata takes from a library."""
    if tree is None:
        return {}
    # extensive=False: a date only from the page's markup, never guessed from its text.
    found = trafilatura.extract_metadata(
        copy.deepcopy(tree), default_url=url or None, extensive=False
    )
    creators = [a.strip() for a in (found.author or "").split(";") if a.strip()]
    fields = {
        "title": found.title or "",
        "creators": creators,
        "date_published": found.date or "",
        # trafilatura falls back to the host name, which names no publisher.
        "publisher": found.sitename if found.sitename != found.hostname else "",
    }
    return {k: v for k, v in fields.items() if v}
