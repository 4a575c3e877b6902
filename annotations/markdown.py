"""Notes are Markdown, rendered without raw HTML and then sanitised: no field can carry script.

Pandoc-style citations (``[see @key, p. 4]``) become links to the cited sources: the keys a
page needs are resolved beforehand in one query (``annotations.citekeys.resolve_keys``) and
passed in; a key that is not among them is shown as unresolved, never as an error.

A note is rendered once, when it is written (``render_note``, kept on the row): parsing a
note takes up to a second for a pathological one, too long to do for every note of every
page read. The stored HTML keeps each citation as a placeholder, which ``link_citations``
turns into what this reader may see without parsing any Markdown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from annotations.citekeys import GROUP_RE, KeyTarget, keys_in, parse_group


def _citation_rule(state, silent: bool) -> bool:
    # Runs before "link", so "[@key]" is a citation while "[text](url)" stays a link.
    if state.src[state.pos] != "[":
        return False
    match = GROUP_RE.match(state.src, state.pos)
    if match is None or match.end() > state.posMax:
        return False
    items = parse_group(match.group(1))
    if not items:
        return False
    if not silent:
        token = state.push("citation", "", 0)
        token.meta = {"items": items}
        token.content = match.group(0)
    state.pos = match.end()
    return True


def _render_citation(self, tokens, idx, options, env) -> str:
    # A placeholder for each key, which link_citations fills in for the reader. Markdown
    # here has raw HTML off, so no note's text can make a tag, and so no placeholder.
    parts = []
    for item in tokens[idx].meta["items"]:
        suppress = " cite-suppress" if item.suppress_author else ""
        inner = f'<span class="cite-key{suppress}">@{escapeHtml(item.key)}</span>'
        parts.append(f"{escapeHtml(item.prefix)}{inner}{escapeHtml(item.suffix)}")
    return "(" + "; ".join(parts) + ")"


_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)
_md.inline.ruler.before("link", "citation", _citation_rule)
_md.add_render_rule("citation", _render_citation)

ALLOWED_TAGS = {
    "p",
    "br",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
    "s",
    "span",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "span": {"class", "title"},
    "th": {"align"},
    "td": {"align"},
}


class RenderedNote(NamedTuple):
    """A note as it is stored beside its Markdown."""

    html: str  # sanitised, with citation placeholders for ``link_citations``
    plain: str  # ``plain_text``'s one line


@lru_cache(maxsize=16)
def render_note(text: str) -> RenderedNote:
    """Parse a note once into its stored HTML and plain text. Memoised for a few notes, so
    that a writer can render before taking a lock and its ``save`` inside finds it done."""
    tokens = _md.parse(text)
    return RenderedNote(_clean(_md.renderer.render(tokens, _md.options, {})), _plain(tokens))


# A placeholder in stored HTML: the class says whether the author is suppressed (-@key),
# the text is the key as nh3 escaped it, so "<" never occurs in it.
_PLACEHOLDER = re.compile(r'<span class="cite-key( cite-suppress)?">@([^<]*)</span>')


def link_citations(stored: str, keys: Mapping[str, KeyTarget] | None) -> SafeString:
    """Stored HTML (``render_note``) as ``keys`` (this reader's resolved citation keys, or
    None where they were not looked up) show it: the same as ``render_markdown`` gives, at
    the cost of one regular expression pass and no Markdown parse."""
    if "cite-key" not in stored:
        return mark_safe(stored)  # noqa: S308 - sanitised when it was written
    target_of = keys or {}

    def fill(match: re.Match) -> str:
        key = html.unescape(match.group(2))
        target = None if keys is None else target_of.get(key)
        return _citation(key, bool(match.group(1)), keys is not None, target)

    return mark_safe(_PLACEHOLDER.sub(fill, stored))  # noqa: S308 - sanitised, and each part too


@lru_cache(maxsize=4096)
def _citation(key: str, suppress_author: bool, looked_up: bool, target: KeyTarget | None) -> str:
    """One citation key as a reader sees it. Everything from the key or its source is
    escaped, and the result goes through the sanitiser as the note did."""
    if not looked_up:
        # Keys were not looked up for this page: show them plainly, claiming nothing.
        inner = f'<span class="cite-key">@{escapeHtml(key)}</span>'
    elif target is None:
        why = escapeHtml(f"No source you can see has the citation key {key}")
        inner = f'<span class="cite-unresolved" title="{why}">@{escapeHtml(key)}</span>'
    else:
        label = target.label
        if suppress_author:
            label = label.rsplit(" ", 1)[-1]
        title = escapeHtml(f"{target.title} [@{key}]")
        inner = (
            f'<a class="cite" href="{escapeHtml(target.href)}" title="{title}">'
            f"{escapeHtml(label)}</a>"
        )
    return _clean(inner)


def render_markdown(text: str, keys: Mapping[str, KeyTarget] | None = None) -> SafeString:
    """A note as safe HTML; ``keys`` are the citation keys resolved for this reader. Parses
    the Markdown: for a draft (the preview); a written note's pages read ``render_note``'s
    stored form through ``link_citations``."""
    return link_citations(render_note(text).html, keys)


def plain_text(text: str) -> str:
    """A note as one line of the text a reader sees, without Markdown's marks: for search
    results, which show a snippet of it. Citations stay as written (``[see @key, p. 4]``),
    so that ``citekeys.key_spans`` finds them in it; images give their alt text."""
    return render_note(text).plain


def _plain(tokens) -> str:
    parts: list[str] = []
    for token in tokens:
        if token.type == "inline":
            for child in token.children or ():
                if child.type in {"text", "code_inline", "citation", "image"}:
                    parts.append(child.content)
                elif child.type in {"softbreak", "hardbreak"}:
                    parts.append(" ")
        elif token.type in {"fence", "code_block"}:
            parts.append(token.content)
        if token.nesting == -1 or token.type in {"fence", "code_block"}:
            parts.append(" ")  # between blocks
    return " ".join("".join(parts).split())


def unresolved_keys(text: str, keys: Mapping[str, KeyTarget]) -> list[str]:
    return [k for k in keys_in(text) if k not in keys]


def _clean(html_text: str) -> str:
    return nh3.clean(
        html_text,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener",
    )
