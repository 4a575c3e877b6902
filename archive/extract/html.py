"""HTML extractor: a structural, script-free text layer and metadata from an archived page.

It emits no HTML at all, only text and the block structure described in archive.extract, so
nothing executable in the original can reach a reader. The standard library's event-based
HTMLParser is used because it never recurses: a page nested 100,000 levels deep is just a long
stream of events, handled in linear time.
"""

from __future__ import annotations

import html
import json
import re
from email.message import Message
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from archive.extract import (
    DECLARED_NOTE,
    TRANSPORT_NOTE,
    Extraction,
    ExtractionError,
    bom_encoding,
    decode_plain,
    normalise_newlines,
)

HTML_EXTRACTOR = ("html", "2")

# Elements whose content never reaches the text layer: executable, embedded, tracking, or form UI.
DROPPED = {
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "canvas",
    "audio",
    "video",
    "select",
    "textarea",
    "button",
    "option",
    "optgroup",
    "datalist",
    "map",
    "picture",
    "source",
    "track",
    "dialog",
}
# Elements that give their text a block kind of its own.
KINDS = {
    "p": "p",
    "h1": "h1",
    "h2": "h2",
    "h3": "h3",
    "h4": "h4",
    "h5": "h5",
    "h6": "h6",
    "li": "li",
    "pre": "pre",
    "td": "td",
    "th": "th",
    "caption": "caption",
    "figcaption": "figcaption",
    "dt": "p",
    "dd": "p",
    "summary": "p",
    "address": "p",
    "listing": "pre",
    "xmp": "pre",
    "plaintext": "pre",
}
# Elements that end the current block without a kind of their own.
BREAKS = {
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "nav",
    "aside",
    "blockquote",
    "ul",
    "ol",
    "menu",
    "dl",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "figure",
    "hr",
    "form",
    "fieldset",
    "legend",
    "details",
    "body",
    "html",
    "center",
    "hgroup",
    "search",
} | set(KINDS)
VOID = {
    "br",
    "hr",
    "img",
    "input",
    "meta",
    "link",
    "area",
    "base",
    "col",
    "embed",
    "param",
    "source",
    "track",
    "wbr",
    "keygen",
}
STRUCTURE_DEPTH_LIMIT = 200  # deeper structure is flattened; its text is kept
WHITESPACE = re.compile(r"[ \t\n\r\f]+")  # HTML's ASCII whitespace; NBSP is content
CHARSET_RE = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
LATIN1_LABELS = {
    "latin-1",
    "latin1",
    "iso-8859-1",
    "iso8859-1",
    "l1",
    "us-ascii",
    "ascii",
    "iso_8859-1",
    "cp819",
    "ibm819",
    "windows-1252",
    "cp1252",
    "x-cp1252",
}
ALLOWED_SCHEMES = {"http", "https", "mailto"}
# schema.org types (lower-cased) as Scholion's source types (Source.Type's CSL values).
SCHEMA_ORG_TYPES = {
    "newsarticle": "article-newspaper",
    "reportagenewsarticle": "article-newspaper",
    "analysisnewsarticle": "article-newspaper",
    "opinionnewsarticle": "article-newspaper",
    "backgroundnewsarticle": "article-newspaper",
    "reviewnewsarticle": "article-newspaper",
    "askpublicnewsarticle": "article-newspaper",
    "scholarlyarticle": "article-journal",
    "medicalscholarlyarticle": "article-journal",
    "report": "report",
    "book": "book",
    "chapter": "chapter",
    "thesis": "thesis",
    "dataset": "dataset",
    "article": "webpage",
    "blogposting": "webpage",
    "techarticle": "webpage",
    "webpage": "webpage",
}
# The JSON-LD objects that describe the page's work (its title, authors, date).
ARTICLE_TYPES = set(SCHEMA_ORG_TYPES)
# Open Graph's og:type as source types; "article" is what news sites declare.
OPEN_GRAPH_TYPES = {"article": "article-newspaper", "book": "book", "website": "webpage"}
DATE_RE = re.compile(r"^\s*(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?")
DOI_RE = re.compile(r"(10\.\d{4,9}/\S+)")


def decode_html(data: bytes, content_type: str = "") -> tuple[str, str, str]:
    """Decode as a browser would: BOM, then the charset the server declared in its
    Content-Type (``content_type``), then a <meta> charset, then UTF-8, then 1252."""
    encoding = bom_encoding(data)
    if encoding:
        return decode_plain(data)
    for declared, note in (
        (transport_charset(content_type), TRANSPORT_NOTE),
        (declared_charset(data), DECLARED_NOTE),
    ):
        if declared:
            codec, name = declared
            try:
                return data.decode(codec), name, note.format(name)
            except (LookupError, UnicodeDecodeError):
                pass
    text, enc, note = decode_plain(data)
    return text, enc, note


def transport_charset(content_type: str) -> tuple[str, str] | None:
    """(Python codec, name to record) of the charset in a Content-Type header's value."""
    if "charset" not in content_type.lower():
        return None
    header = Message()
    header["Content-Type"] = content_type
    label = header.get_content_charset()
    return _charset(label) if label else None


def declared_charset(head: bytes) -> tuple[str, str] | None:
    """(Python codec, name to record) of a <meta> charset near the start of the page."""
    match = CHARSET_RE.search(head[:4096])
    if not match:
        return None
    return _charset(match.group(1).decode("ascii", "ignore"))


def _charset(label: str) -> tuple[str, str] | None:
    label = label.strip().lower()
    codec = "cp1252" if label in LATIN1_LABELS else label
    # A page cannot declare UTF-16 in its own ASCII-compatible <meta>: the standard says
    # UTF-8. A server declaring it for bytes without a BOM is as wrong.
    if codec.startswith(("utf-16", "utf16", "utf-32", "utf32")):
        return None
    return codec, "windows-1252" if codec == "cp1252" else label


class _Block:
    __slots__ = ("kind", "pieces", "attrs", "pre")

    def __init__(self, kind: str, attrs: dict, pre: bool) -> None:
        self.kind = kind
        self.pieces: list[tuple[str, str | None, bool]] = []  # (text, href, literal newline)
        self.attrs = attrs
        self.pre = pre


class _Parser(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url if urlsplit(base_url).scheme in ("http", "https") else ""
        self.text_parts: list[str] = []
        self.length = 0
        self.blocks: list[dict] = []
        self.current: _Block | None = None
        self.dropped: list[str] = []
        self.kind_stack: list[str] = []  # open elements that give a kind (capped)
        self.containers: list[tuple[str, int]] = []  # open ul/ol/blockquote/table (capped)
        self.rows: dict[int, int] = {}
        self.next_id = 0
        self.hrefs: list[str | None] = []
        self.in_head = False
        self.in_title = False
        self.title: list[str] = []
        self.meta: dict[str, list[str]] = {}
        self.ld_json: list[str] = []
        self.in_ld_json = False
        self.lang = ""
        self.canonical = ""

    # --- events -------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "html" and a.get("lang") and not self.lang:
            self.lang = a["lang"].strip()
        if tag == "head":
            self.in_head = True
            return
        if tag == "meta":
            self._meta(a)
            return
        if tag == "link":
            if "canonical" in a.get("rel", "").lower().split() and not self.canonical:
                self.canonical = a.get("href", "")
            return
        if tag == "base":
            href = a.get("href", "")
            if urlsplit(href).scheme in ("http", "https"):
                self.base_url = href
            return
        if tag == "title" and not self.dropped:
            self.in_title = True
            return
        if tag == "script" and a.get("type", "").lower().strip() == "application/ld+json":
            self.in_ld_json = True
        if tag in DROPPED:
            if tag not in VOID:
                self.dropped.append(tag)
            return
        if self.dropped:
            return
        if tag == "body" or tag in BREAKS:
            self.in_head = False
        if tag == "br":
            self._piece("\n", literal=True)
            return
        if tag == "a":
            self.hrefs.append(self._safe_href(a.get("href", "")))
            return
        if tag in BREAKS:
            self._flush()
            if tag in ("ul", "ol", "menu", "blockquote", "table"):
                self._push_container("ul" if tag == "menu" else tag)
            elif tag == "tr":
                table = self._top("table")
                if table is not None:
                    self.rows[table] = self.rows.get(table, -1) + 1
            if tag in KINDS and len(self.kind_stack) < STRUCTURE_DEPTH_LIMIT:
                self.kind_stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False
            return
        if tag == "title":
            self.in_title = False
            return
        if self.dropped:
            if tag == self.dropped[-1]:
                self.dropped.pop()
                if tag == "script":
                    self.in_ld_json = False
            return
        if tag == "a":
            if self.hrefs:
                self.hrefs.pop()
            return
        if tag in BREAKS:
            self._flush()
            if tag in ("ul", "ol", "menu", "blockquote", "table"):
                self._pop_container("ul" if tag == "menu" else tag)
            if tag in KINDS:
                for i in range(len(self.kind_stack) - 1, -1, -1):
                    if self.kind_stack[i] == tag:
                        del self.kind_stack[i:]
                        break

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
            return
        if self.dropped:
            if self.in_ld_json:
                self.ld_json.append(data)
            return
        if self.in_head:
            return
        self._piece(data)

    # --- blocks -------------------------------------------------------------------------
    def _piece(self, text: str, literal: bool = False) -> None:
        if self.current is None:
            kind = KINDS[self.kind_stack[-1]] if self.kind_stack else "p"
            pre = any(KINDS[k] == "pre" for k in self.kind_stack)
            self.current = _Block(kind, self._block_attrs(kind), pre)
        href = next((h for h in reversed(self.hrefs) if h), None) if self.hrefs else None
        self.current.pieces.append((text, href, literal))

    def _block_attrs(self, kind: str) -> dict:
        attrs: dict = {}
        quote = next((cid for name, cid in self.containers if name == "blockquote"), None)
        if quote is not None:
            attrs["quote"] = quote
        lists = [(name, cid) for name, cid in self.containers if name in ("ul", "ol")]
        if kind == "li" and lists:
            attrs["list"] = list(lists[-1])
            attrs["depth"] = len(lists)
        table = self._top("table")
        if table is not None and kind in ("td", "th", "caption"):
            attrs["table"] = table
            attrs["row"] = max(self.rows.get(table, 0), 0)
        return attrs

    def _flush(self) -> None:
        block, self.current = self.current, None
        if block is None:
            return
        out: list[str] = []
        size = 0
        links: list[list] = []
        last = "\n"  # so leading whitespace is dropped
        for text, href, literal in block.pieces:
            start = size
            if literal or block.pre:
                chunk = normalise_newlines(text)
            else:
                chunk = WHITESPACE.sub(" ", text)
                if chunk.startswith(" ") and last in (" ", "\n"):
                    chunk = chunk[1:]
            if not chunk:
                continue
            out.append(chunk)
            size += len(chunk)
            last = chunk[-1]
            if href:
                if links and links[-1][2] == href and links[-1][1] == start:
                    links[-1][1] = size
                else:
                    links.append([start, size, href])
        text = "".join(out)
        if block.pre:
            text = text.strip("\n")
            lead = len("".join(out)) - len("".join(out).lstrip("\n"))
        else:
            stripped = text.lstrip(" \n")
            lead = len(text) - len(stripped)
            text = stripped.rstrip(" \n")
        if not text.strip():
            return
        offset = self.length + (2 if self.blocks else 0)
        if self.blocks:
            self.text_parts.append("\n\n")
        self.text_parts.append(text)
        block_dict: dict = {"t": block.kind, "s": offset, "e": offset + len(text)}
        kept = []
        for s, e, href in links:
            s, e = max(s - lead, 0), min(e - lead, len(text))
            if e > s:
                kept.append([offset + s, offset + e, href])
        if kept:
            block_dict["links"] = kept
        block_dict.update(block.attrs)
        self.blocks.append(block_dict)
        self.length = offset + len(text)

    def _push_container(self, name: str) -> None:
        if len(self.containers) < STRUCTURE_DEPTH_LIMIT:
            self.containers.append((name, self.next_id))
            self.next_id += 1

    def _pop_container(self, name: str) -> None:
        for i in range(len(self.containers) - 1, -1, -1):
            if self.containers[i][0] == name:
                del self.containers[i:]
                return

    def _top(self, name: str) -> int | None:
        for cname, cid in reversed(self.containers):
            if cname == name:
                return cid
        return None

    # --- links and metadata -------------------------------------------------------------
    def _safe_href(self, href: str) -> str | None:
        # Browsers ignore tabs and newlines inside URLs ("java\tscript:"); so must we.
        href = re.sub(r"[\t\n\r]", "", href).strip()
        if not href or href.startswith("#"):
            return None
        scheme = urlsplit(href).scheme.lower()
        if not scheme:
            if not self.base_url:
                return None
            href = urljoin(self.base_url, href)
            scheme = urlsplit(href).scheme.lower()
        return href if scheme in ALLOWED_SCHEMES else None

    def _meta(self, a: dict) -> None:
        key = (a.get("name") or a.get("property") or a.get("itemprop") or "").strip().lower()
        content = a.get("content", "").strip()
        if key and content:
            self.meta.setdefault(key, []).append(content)
        elif "charset" in a or a.get("http-equiv"):
            return

    def close_all(self) -> None:
        self.close()
        self._flush()


def _first(meta: dict[str, list[str]], *keys: str) -> str:
    for key in keys:
        for value in meta.get(key, []):
            if value.strip():
                return value.strip()
    return ""


def normalise_date(value: str) -> str:
    match = DATE_RE.match(value or "")
    if not match:
        return ""
    year, month, day = match.groups()
    if month and not 1 <= int(month) <= 12:
        return year
    if day and not 1 <= int(day) <= 31:
        return f"{year}-{int(month):02d}"
    if day:
        return f"{year}-{int(month):02d}-{int(day):02d}"
    if month:
        return f"{year}-{int(month):02d}"
    return year


def _ld_objects(raw_scripts: list[str]) -> list[dict]:
    found: list[dict] = []
    for raw in raw_scripts:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        stack = [data]
        while stack and len(found) < 100:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                found.append(item)
                if isinstance(item.get("@graph"), list):
                    stack.extend(item["@graph"])
    return found


def _ld_types(obj: dict) -> set[str]:
    kind = obj.get("@type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    return {str(k).lower() for k in kinds}


def _names(value) -> list[str]:
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("name")
        names.append(_ld_text(item))
    return [n for n in names if n]


def _article_object(raw_scripts: list[str]) -> dict:
    """The JSON-LD object describing the page's work: an article type before a bare WebPage,
    whose name is often the browser tab's title, site name and all."""
    objects = [o for o in _ld_objects(raw_scripts) if _ld_types(o) & ARTICLE_TYPES]
    specific = [o for o in objects if _ld_types(o) - {"webpage"}]
    return (specific or objects or [{}])[0]


# Soft hyphens, zero-width spaces and joiners, byte-order marks: invisible in a title.
INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")


def _clean(value: str) -> str:
    return WHITESPACE.sub(" ", INVISIBLE.sub("", value)).strip()


def _ld_text(value) -> str:
    """A JSON-LD string as text: many sites write HTML character references into it."""
    return _clean(html.unescape(value)) if isinstance(value, str) else ""


# "A, B and C": one string naming several people (a single comma is "Family, Given").
NAME_JOINERS = re.compile(r"\s+(?:and|und|og|och|&)\s+", re.IGNORECASE)


def _people(names: list[str]) -> list[str]:
    """Names as separate people, without e-mail addresses and URLs, each once."""
    split: list[str] = []
    for name in map(_clean, names):
        if NAME_JOINERS.search(name):
            split += re.split(r"\s*,\s*|" + NAME_JOINERS.pattern, name, flags=re.IGNORECASE)
        else:
            split.append(name)
    seen: set[str] = set()
    unique = []
    for name in map(_clean, split):
        if not name or "@" in name or urlsplit(name).scheme or name.lower().startswith("www."):
            continue
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append(name)
    return unique[:50]


# What separates a page's title from the site's name in <title> and og:title.
TITLE_SEPARATORS = re.compile(r"\s+[-|–—:·•»/]\s+|\s+::\s+")


def _comparable(name: str) -> str:
    return re.sub(r"\W+", "", name.casefold())


def strip_site_name(
    title: str, site_names: list[str], url: str = "", others: list[str] | None = None
) -> str:
    """The title without a site name before or after it (" - Example Wire", "The Site | ").

    What goes: the part another of the page's titles (``others``: its <title>, og:title,
    ...) leaves out ("Rivers rise | Sport | The Site" beside "Rivers rise"), or else a part
    that is one of ``site_names`` or a short name ending in the URL's host name ("Die Neue
    Zeitung" on zeitung.example). Letters and digits are compared, case ignored.
    """
    parts = TITLE_SEPARATORS.split(title)
    if len(parts) < 2:
        return title
    separators = TITLE_SEPARATORS.findall(title)

    def joined(start: int, end: int) -> str:
        kept = parts[start]
        for sep, part in zip(separators[start : end - 1], parts[start + 1 : end], strict=True):
            kept += sep + part
        return kept.strip()

    shorter = {_comparable(o) for o in others or []} - {""}
    for size in range(len(parts) - 1, 0, -1):
        for start in (0, len(parts) - size):
            if _comparable(joined(start, start + size)) in shorter:
                return joined(start, start + size)

    names = {_comparable(n) for n in site_names if n}
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    label = _comparable(host.split(".")[-2]) if host.count(".") >= 1 else ""
    names |= {_comparable(host), label}
    names.discard("")

    def is_site(part: str) -> bool:
        name = _comparable(part)
        return name in names or (
            len(label) >= 4 and name.endswith(label) and len(part.split()) <= 5
        )

    start, end = 0, len(parts)
    if is_site(parts[-1]):
        end -= 1
    if end - start > 1 and is_site(parts[0]):
        start += 1
    return joined(start, end) or title


# A topic line before a headline ("Olympische Spiele: ...", "«Evnukkmakeren»: ..."): a few
# words and a colon. Longer, the part before the colon is the headline's own first half.
KICKER = re.compile(r"^(.{1,60}?):\s+(?=\S)")


def strip_kicker(title: str, others: list[str]) -> str:
    """The title without a topic line before it ("Olympische Spiele: Deutscher Erfolg"),
    when another of the page's titles (``others``) is the same without it. Letters and
    digits are compared, case ignored; a colon alone is no reason to cut a title."""
    match = KICKER.match(title)
    if not match:
        return title
    rest = title[match.end() :].strip()
    shorter = {_comparable(o) for o in others} - {""}
    return rest if _comparable(rest) in shorter else title


def page_metadata(p: _Parser, library: dict | None = None) -> dict:
    """The page's metadata, each field from the first of these that has it: schema.org
    JSON-LD, Google Scholar's citation_* tags, Dublin Core, Open Graph (and plain <meta>
    author and date), ``library`` (what an extraction library found in the page: title,
    creators, date_published, publisher), and last the page's own <title> and lang."""
    m = p.meta
    ld = _article_object(p.ld_json)
    library = library or {}
    meta: dict = {}

    publisher = (
        (_names(ld.get("publisher")) or [""])[0]
        or _first(m, "citation_publisher")
        or _first(m, "citation_dissertation_institution", "citation_technical_report_institution")
        or _first(m, "dc.publisher", "dcterms.publisher")
        or _first(m, "og:site_name")
        or library.get("publisher", "")
    )
    if publisher:
        meta["publisher"] = _clean(publisher)

    titles = [
        _ld_text(ld.get("headline")),
        _ld_text(ld.get("name")),
        _first(m, "citation_title"),
        _first(m, "dc.title", "dcterms.title"),
        _first(m, "og:title"),
        _clean(library.get("title", "")),
        _clean("".join(p.title)),
    ]
    title = next((_clean(t) for t in titles if t), "")
    if title:
        site_names = [publisher, _first(m, "og:site_name"), _first(m, "application-name")]
        url = p.canonical or _first(m, "og:url") or p.base_url
        others = [_clean(t) for t in [*titles, _first(m, "twitter:title")] if t]
        meta["title"] = strip_kicker(strip_site_name(title, site_names, url, others), others)

    creators = (
        _people(_names(ld.get("author")))
        or _people(m.get("citation_author", []))
        or _people(m.get("dc.creator", []) + m.get("dcterms.creator", []))
        or _people(m.get("article:author", []))
        or _people(m.get("author", []))
        or _people(library.get("creators", []))
    )
    if creators:
        meta["creators"] = creators

    meta.update(_work(m, p.ld_json))

    date = (
        _ld_text(ld.get("datePublished"))
        or _first(m, "citation_publication_date", "citation_date")
        or _first(m, "dc.date", "dcterms.date", "dcterms.issued", "dc.date.issued")
        or _first(m, "article:published_time", "date")
        or library.get("date_published", "")
    )
    date = normalise_date(date)
    if date:
        meta["date_published"] = date

    lang = (
        _ld_text(ld.get("inLanguage"))
        or _first(m, "citation_language")
        or _first(m, "dc.language", "dcterms.language")
        or _first(m, "og:locale")
        or p.lang
    )
    if lang:
        meta["language"] = lang.replace("_", "-")[:35]
    description = _first(m, "description", "og:description", "dc.description")
    if not description and isinstance(ld.get("description"), str):
        description = ld["description"]
    if description:
        meta["description"] = description.strip()
    for value in [_first(m, "citation_doi", "prism.doi"), *m.get("dc.identifier", [])]:
        found = DOI_RE.search(value or "")
        if found:
            meta["doi"] = found.group(1).rstrip(".,;")
            break
    isbn = _first(m, "citation_isbn")
    if isbn:
        meta["isbn"] = isbn[:20]
    for url in (p.canonical, _first(m, "og:url"), _first(m, "citation_public_url")):
        if url and urlsplit(url).scheme in ("http", "https"):
            meta["url"] = url
            break
    return meta


def _work(m: dict[str, list[str]], ld_json: list[str]) -> dict:
    """What kind of work the page is and where it was published, from Google Scholar's
    citation_* tags first (a publisher's own description), then schema.org JSON-LD, then
    Open Graph. Nothing when none says: archiving then types the source as references did
    before types (Source.inferred_type)."""
    work: dict = {}
    container = _first(m, "citation_journal_title")
    book = _first(m, "citation_inbook_title", "citation_book_title")
    if container:
        work["source_type"] = "article-journal"
    elif book and book != _first(m, "citation_title"):
        work["source_type"], container = "chapter", book
    elif _first(m, "citation_dissertation_institution"):
        work["source_type"] = "thesis"
    elif _first(m, "citation_technical_report_institution", "citation_technical_report_number"):
        work["source_type"] = "report"
    else:
        for obj in _ld_objects(ld_json):
            kind = next((SCHEMA_ORG_TYPES[t] for t in _ld_types(obj) if t in SCHEMA_ORG_TYPES), "")
            if kind:
                work["source_type"] = kind
                break
        else:
            kind = OPEN_GRAPH_TYPES.get(_first(m, "og:type").lower(), "")
            if kind:
                work["source_type"] = kind
    if container:
        work["container_title"] = WHITESPACE.sub(" ", container)
    for key, name in (("volume", "citation_volume"), ("issue", "citation_issue")):
        if _first(m, name):
            work[key] = _first(m, name)
    first, last = _first(m, "citation_firstpage"), _first(m, "citation_lastpage")
    if first:
        work["pages"] = f"{first}–{last}" if last and last != first else first
    editors = [WHITESPACE.sub(" ", e).strip() for e in m.get("citation_editor", [])]
    if any(editors):
        work["editors"] = [e for e in editors if e][:50]
    return work


def head_metadata(head: str, base_url: str = "") -> dict:
    """Metadata from the start of a page too long for a text layer (its <head>, usually)."""
    parser = _Parser(base_url)
    parser.feed(normalise_newlines(head))
    parser.close_all()
    return page_metadata(parser)


def render(markup: str, base_url: str = "") -> _Parser:
    """Parse HTML into the text layer, its blocks and the page's metadata tags."""
    parser = _Parser(base_url)
    parser.feed(normalise_newlines(markup))
    parser.close_all()
    return parser


def page_extraction(
    parser: _Parser, encoding: str, note: str, extractor: tuple[str, str], metadata: dict
) -> Extraction:
    layer = "".join(parser.text_parts)
    if not layer.strip():
        raise ExtractionError(
            "The HTML page holds no readable text (after dropping scripts, styles and frames)."
        )
    return Extraction(
        media_type="text/html",
        encoding=encoding,
        encoding_note=note,
        text=layer,
        blocks=parser.blocks,
        extractor=extractor[0],
        extractor_version=extractor[1],
        metadata=metadata,
    )


def extract_html(data: bytes, base_url: str = "") -> Extraction:
    """The whole page as text (the ``html`` extractor)."""
    text, encoding, note = decode_html(data)
    parser = render(text, base_url)
    return page_extraction(parser, encoding, note, HTML_EXTRACTOR, page_metadata(parser))
