"""Metadata benchmark: how often the HTML extraction gets a real news page's title, byline and
date right, on pages with ground truth that no one here wrote.

    .venv/bin/python bench/extraction.py CORPUS_DIR [--misses]

CORPUS_DIR is the parser test data of fundus (https://github.com/flairNLP/fundus, MIT
licence), ``tests/resources/parser/test_data``: real news pages from about 150 publishers
in 40 countries (``<country>/<Publisher>_<date>.html.gz``), each with the title, authors and
publishing date that fundus's hand-written parser for that publisher reads
(``<Publisher>.json``, one entry per parser version, the oldest for the oldest page) and the
page's URL (``meta.info``). The pages are the publishers', so they are not committed here:
clone fundus and pass that directory.

A title is right when it equals the expected one, case, spacing, invisible characters, quote
and dash styles aside. A byline is right when the set of names equals the expected set the
same way ("Family, Given" read as "Given Family"). Pages without an expected byline are
counted apart: there, giving none is right. The text layer is compared with the article's
text fundus reads (summary, section headings, paragraphs) word by word: precision is the
share of the layer's words that are the article's, recall the share of the article's words
in the layer; the whole page's text is measured the same way beside it. Prints figures;
asserts nothing. Titles are also counted on the even- and odd-numbered pages apart, so that a
rule fitted to one half shows on the other.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archive.extract import extract  # noqa: E402

# fundus stores each page as the text it decoded, written out in UTF-8 (a page's <meta> may
# still name the charset the publisher sent it in): what a server would declare for these bytes.
FUNDUS_TYPE = "text/html; charset=utf-8"


@dataclass
class Page:
    name: str
    html: bytes
    url: str
    title: str
    authors: list[str]
    date: str = ""  # YYYY-MM-DD, when known
    body: str = ""  # the article's text: summary, section headings and paragraphs


def fundus_pages(root: Path) -> Iterator[Page]:
    for expected_path in sorted(root.glob("*/*.json")):
        if expected_path.name == "meta.info":
            continue
        publisher = expected_path.stem
        versions = json.loads(expected_path.read_text("utf-8"))
        meta_path = expected_path.parent / "meta.info"
        meta = json.loads(meta_path.read_text("utf-8")) if meta_path.exists() else {}
        pages = sorted(expected_path.parent.glob(f"{publisher}_*.html.gz"))
        # One page per parser version, the oldest page for the oldest version.
        entries = [versions[k] for k in sorted(versions, key=_version_order)]
        if len(entries) != len(pages):
            print(f"skipped {publisher}: {len(pages)} pages, {len(entries)} versions")
            continue
        for page_path, entry in zip(pages, entries, strict=True):
            if not entry.get("title"):
                continue
            yield Page(
                name=f"{expected_path.parent.name}/{page_path.name}",
                html=gzip.decompress(page_path.read_bytes()),
                url=meta.get(page_path.name, {}).get("url", ""),
                title=entry["title"],
                authors=list(entry.get("authors") or []),
                date=(entry.get("publishing_date") or "")[:10],
                body=_body_text(entry.get("body") or {}),
            )


def _body_text(body: dict) -> str:
    parts = list(body.get("summary") or [])
    for section in body.get("sections") or []:
        parts += list(section.get("headline") or []) + list(section.get("paragraphs") or [])
    return "\n".join(parts)


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))


def overlap(got: str, expected: str) -> tuple[int, int, int]:
    """(words in both, words extracted, words expected), each word counted as often as it
    occurs."""
    g, e = words(got), words(expected)
    return sum((g & e).values()), sum(g.values()), sum(e.values())


def _version_order(key: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", key)) or (0,)


def _day(day: str, days: int) -> str:
    try:
        return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
    except ValueError:
        return ""


QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\xa0": " "})


def norm(value: str) -> str:
    value = unicodedata.normalize("NFKC", value).translate(QUOTES).casefold()
    # Invisible characters (soft hyphens, zero-width spaces) are not part of what one reads.
    value = "".join(c for c in value if unicodedata.category(c) != "Cf")
    return " ".join(value.split()).strip(" .")


def name_set(names: list[str]) -> set[str]:
    # "Family, Given" (citation_author's form) names the same person as "Given Family".
    names = [" ".join(reversed(n.split(", "))) if n.count(", ") == 1 else n for n in names]
    return {norm(n) for n in names if norm(n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--misses", action="store_true", help="print each wrong title and byline")
    args = parser.parse_args()
    root: Path = args.corpus
    pages = list(fundus_pages(root))
    if not pages:
        raise SystemExit(f"No pages with ground truth found under {root}.")

    # Titles right on the even- and odd-numbered pages: a rule that holds on one half and not
    # on the other is fitted to these pages, not to news pages.
    title_halves = [0, 0]
    titles = bylines = with_byline = without_byline = none_given = dates = with_date = 0
    extractors: dict[str, int] = {}
    # Words of the expected article text in the text layer, and in the whole page's.
    layer_words = [0, 0, 0]
    page_words = [0, 0, 0]
    started = time.perf_counter()
    for index, page in enumerate(pages):
        try:
            extraction = extract(page.html, FUNDUS_TYPE, page.url)
        except Exception as exc:  # a page the extractor refuses counts as wrong
            print(f"{page.name}: {exc}")
            continue
        extractors[extraction.extractor] = extractors.get(extraction.extractor, 0) + 1
        if page.body:
            whole = extract(page.html, FUNDUS_TYPE, page.url, whole_page=True).text
            for total, text in ((layer_words, extraction.text), (page_words, whole)):
                for i, n in enumerate(overlap(text, page.body)):
                    total[i] += n
        meta = extraction.metadata
        if norm(meta.get("title", "")) == norm(page.title):
            titles += 1
            title_halves[index % 2] += 1
        elif args.misses:
            print(f"title  {page.name}: {meta.get('title')!r} != {page.title!r}")
        got, expected = name_set(meta.get("creators", [])), name_set(page.authors)
        if expected:
            with_byline += 1
            if got == expected:
                bylines += 1
            elif args.misses:
                print(f"byline {page.name}: {sorted(got)} != {sorted(expected)}")
        else:
            without_byline += 1
            none_given += not got
        if page.date:
            with_date += 1
            # The expected date is in UTC; the page's own is its local day: either is right.
            expected_days = {_day(page.date, -1), page.date, _day(page.date, 1)}
            if meta.get("date_published") in expected_days:
                dates += 1
            elif args.misses:
                print(f"date   {page.name}: {meta.get('date_published')!r} != {page.date!r}")
    elapsed = time.perf_counter() - started

    n = len(pages)
    print(f"fundus parser test pages: {n} pages from {root}")
    print(f"titles right:  {titles}/{n} = {titles / n:.1%}")
    even, odd = (n + 1) // 2, n // 2
    print(
        f"  even pages {title_halves[0]}/{even} = {title_halves[0] / even:.1%},"
        f" odd pages {title_halves[1]}/{odd} = {title_halves[1] / odd:.1%}"
    )
    if with_byline:
        print(f"bylines right: {bylines}/{with_byline} = {bylines / with_byline:.1%}")
    if with_date:
        print(
            f"dates right:   {dates}/{with_date} = {dates / with_date:.1%} (the day, UTC or local)"
        )
    if without_byline:
        print(f"no byline expected, none given: {none_given}/{without_byline}")
    for name, (both, got_n, expected_n) in (
        ("text layer", layer_words),
        ("whole page", page_words),
    ):
        print(
            f"article words, {name}: precision {both / got_n:.1%}, recall {both / expected_n:.1%}"
        )
    print(
        "text layer by extractor: " + ", ".join(f"{k} {v}" for k, v in sorted(extractors.items()))
    )
    print(f"{elapsed / n * 1000:.0f} ms per page")


if __name__ == "__main__":
    main()
