"""The text layer's HTML: runs that carry their offsets, flat highlights, the passage mark."""

from __future__ import annotations

from dataclasses import dataclass

from archive import reader
from archive.reader import render_text_layer

TEXT = "Tom & Jerry\n\nsee <here> now"
BLOCKS = [
    {"t": "h1", "s": 0, "e": 11},
    {"t": "li", "s": 13, "e": 27, "list": ["ul", 1], "links": [[17, 23, "https://e.org/?a=1&b=2"]]},
]
PLAIN = (
    '<h2 class="blk" data-s="0" data-e="11"><span data-o="0">Tom &amp; Jerry</span></h2>'
    '<ul><li class="blk" data-s="13" data-e="27"><span data-o="13">see </span>'
    '<a href="https://e.org/?a=1&amp;b=2" rel="nofollow noopener noreferrer">'
    '<span data-o="17">&lt;here&gt;</span></a><span data-o="23"> now</span></li></ul>'
)


@dataclass
class Highlight:
    start: int
    end: int
    uuid: str


def test_overlapping_highlights_become_flat_runs_that_name_every_covering_annotation():
    highlights = [Highlight(0, 5, "a"), Highlight(2, 11, "b"), Highlight(15, 25, "c")]
    html = render_text_layer(TEXT, BLOCKS, highlights, mark=(20, 27))
    assert html == (
        '<h2 class="blk" data-s="0" data-e="11">'
        '<mark class="hl hl-1" data-o="0" data-anns="a">To</mark>'
        '<mark class="hl hl-2" data-o="2" data-anns="a b">m &amp;</mark>'
        '<mark class="hl hl-1" data-o="5" data-anns="b"> Jerry</mark></h2>'
        '<ul><li class="blk" data-s="13" data-e="27"><span data-o="13">se</span>'
        '<mark class="hl hl-1" data-o="15" data-anns="c">e </mark>'
        '<a href="https://e.org/?a=1&amp;b=2" rel="nofollow noopener noreferrer">'
        '<mark class="hl hl-1" data-o="17" data-anns="c">&lt;he</mark>'
        '<mark class="hl hl-1" data-o="20" data-anns="c" id="passage" data-passage="">re&gt;</mark></a>'
        '<mark class="hl hl-1" data-o="23" data-anns="c" data-passage=""> n</mark>'
        '<mark class="passage" data-o="25" data-passage="">ow</mark></li></ul>'
    )


def test_a_remembered_layout_renders_each_pages_highlights_and_never_another_source(
    monkeypatch,
):
    monkeypatch.setattr(reader, "_layouts", type(reader._layouts)())
    assert render_text_layer(TEXT, BLOCKS, layout_key="one") == PLAIN
    highlighted = render_text_layer(TEXT, BLOCKS, [Highlight(0, 3, "x")], layout_key="one")
    assert highlighted == render_text_layer(TEXT, BLOCKS, [Highlight(0, 3, "x")])
    assert '<mark class="hl hl-1" data-o="0" data-anns="x">Tom</mark>' in highlighted
    other = render_text_layer("Other", [{"t": "p", "s": 0, "e": 5}], layout_key="two")
    assert other == '<p class="blk" data-s="0" data-e="5"><span data-o="0">Other</span></p>'
    assert render_text_layer(TEXT, BLOCKS, layout_key="one") == PLAIN


def test_remembered_layouts_are_bounded_by_the_size_of_their_texts(monkeypatch):
    monkeypatch.setattr(reader, "_layouts", type(reader._layouts)())
    monkeypatch.setattr(reader, "_layouts_size", 0)
    monkeypatch.setattr(reader, "LAYOUT_CACHE_CHARS", 100)
    text = "x" * 20
    for key in range(10):
        render_text_layer(text, [{"t": "p", "s": 0, "e": 20}], layout_key=key)
    assert list(reader._layouts) == [5, 6, 7, 8, 9]
    render_text_layer("y" * 26, [{"t": "p", "s": 0, "e": 26}], layout_key="too big to keep")
    assert "too big to keep" not in reader._layouts
