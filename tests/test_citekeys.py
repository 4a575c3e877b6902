"""Pandoc-style citation keys in notes: parsing (pure) and rendering (sanitised links)."""

from __future__ import annotations

import pytest

from annotations.citekeys import KeyTarget, find_groups, keys_in, parse_group, short_label
from annotations.markdown import plain_text, render_markdown, unresolved_keys

SMITH = KeyTarget("/sources/1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed/", "Smith 2024", "Resistance")


def test_a_single_key_is_found():
    assert keys_in("As shown [@smith2024].") == ["smith2024"]


def test_locator_prefix_and_several_keys_are_split_into_items():
    items = parse_group("see @smith2024, p. 4; also -@doe99, chap. 2")
    assert items is not None
    assert [(i.prefix, i.key, i.suffix, i.suppress_author) for i in items] == [
        ("see ", "smith2024", ", p. 4", False),
        ("also ", "doe99", ", chap. 2", True),
    ]


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("[@smith2024.]", ["smith2024"]),  # trailing punctuation is not part of the key
        ("[@a:b.c-d/e]", ["a:b.c-d/e"]),  # internal punctuation is
        ("[@müller2020]", ["müller2020"]),  # letters beyond ASCII
        ("[@_x]", ["_x"]),
        ("[@smith2024][@smith2024]", ["smith2024"]),  # distinct, in order
        ("write to [me at x@y.com]", []),  # an e-mail address is not a citation
        ("[text](https://e.org/@x)", []),  # a link stays a link
        ("[@x](https://e.org/)", []),
        ("[@]", []),
        ("[@-]", []),
        ("[@a @b]", []),  # two keys need a ";"
        ("[no key here]", []),
        ("[@a;]", []),  # an empty item
        ("[ok @a; and @b]", ["a", "b"]),
    ],
)
def test_odd_characters(text, keys):
    assert keys_in(text) == keys


def test_hundreds_of_keys_in_one_note():
    note = " ".join(f"[@key{i}, p. {i}]" for i in range(500))
    assert keys_in(note) == [f"key{i}" for i in range(500)]
    assert len(find_groups(note)) == 500
    html = str(render_markdown(note, {}))
    assert html.count('class="cite-unresolved"') == 500


def test_a_known_key_becomes_a_link_to_the_source():
    html = str(render_markdown("As argued [@smith2024, p. 4].", {"smith2024": SMITH}))
    assert f'<a class="cite" href="{SMITH.href}"' in html
    assert ">Smith 2024</a>, p. 4)" in html


def test_an_unknown_key_is_marked_unresolved_and_never_fails():
    html = str(render_markdown("[see @nobody; @smith2024]", {"smith2024": SMITH}))
    assert '<span class="cite-unresolved"' in html and "@nobody</span>" in html
    assert unresolved_keys("[see @nobody; @smith2024]", {"smith2024": SMITH}) == ["nobody"]


def test_keys_inside_code_are_left_alone():
    html = str(render_markdown("`[@smith2024]`", {"smith2024": SMITH}))
    assert "<code>[@smith2024]</code>" in html and "cite" not in html


def test_without_resolution_keys_are_shown_plainly():
    html = str(render_markdown("[@smith2024]"))
    assert '<span class="cite-key">@smith2024</span>' in html


@pytest.mark.parametrize(
    "note",
    [
        '[@a"onmouseover=alert(1)]',
        "[<script>alert(1)</script> @a]",
        "[@a, <img src=x onerror=alert(1)>]",
        "[@a](javascript:alert(1))",
    ],
)
def test_no_markup_gets_through_a_citation(note):
    target = KeyTarget('/s/"><script>', '<b>"x"</b>', '"><script>alert(1)</script>')
    html = str(render_markdown(note, {"a": target}))
    tags, attrs = elements(html)
    assert tags <= {"p", "a", "span"}, html
    assert set(attrs) <= {"class", "href", "title", "rel"}, html
    assert not any(v.lower().startswith("javascript:") for v in attrs.get("href", [])), html


def elements(html: str) -> tuple[set[str], dict[str, list[str]]]:
    """Every tag name and attribute (with its values) in an HTML fragment, as parsed."""
    from html.parser import HTMLParser

    tags: set[str] = set()
    attrs: dict[str, list[str]] = {}

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attributes):
            tags.add(tag)
            for name, value in attributes:
                attrs.setdefault(name, []).append(value or "")

    Collect().feed(html)
    return tags, attrs


def test_short_labels_follow_author_date():
    assert short_label(["Smith, Jane"], "2024-03", "T") == "Smith 2024"
    assert short_label(["Jane Smith", "Li Wei"], "2024", "T") == "Smith and Wei 2024"
    assert short_label(["A", "B", "C"], "", "T") == "A et al. n.d."
    assert short_label([], "2020", "A title") == "A title 2020"


def test_a_notes_plain_text_keeps_its_words_and_citations_and_drops_the_marks():
    note = (
        "# Tolls\nCompare **ledgers** [see @okafor2019, p. 2] with ![a map](https://e.org/m.png)"
        " and `code`.\n\n> quoted &amp; kept\n\n```\nfenced\n```\n\n<b>not html</b>"
    )
    assert plain_text(note) == (
        "Tolls Compare ledgers [see @okafor2019, p. 2] with a map and code. quoted & kept"
        " fenced <b>not html</b>"
    )
    assert keys_in(plain_text(note)) == keys_in(note) == ["okafor2019"]
