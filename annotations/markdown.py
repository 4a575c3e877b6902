"""Notes are Markdown, rendered without raw HTML and then sanitised: no field can carry script.

Pandoc-style citations (``[see @key, p. 4]``) become links to the cited sources: the keys a
page needs are resolved beforehand in one query (``annotations.citekeys.resolve_keys``) and
passed in; a key that is not among them is shown as unresolved, never as an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

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
    targets: Mapping[str, KeyTarget] | None = env.get("cite")
    parts = []
    for item in tokens[idx].meta["items"]:
        target = targets.get(item.key) if targets is not None else None
        if targets is None:
            # Keys were not looked up for this page: show them plainly, claiming nothing.
            inner = f'<span class="cite-key">@{escapeHtml(item.key)}</span>'
        elif target is None:
            why = escapeHtml(f"No source you can see has the citation key {item.key}")
            inner = f'<span class="cite-unresolved" title="{why}">@{escapeHtml(item.key)}</span>'

        else:
            label = target.label
            if item.suppress_author:
                label = label.rsplit(" ", 1)[-1]
            title = escapeHtml(f"{target.title} [@{item.key}]")
            inner = (
                f'<a class="cite" href="{escapeHtml(target.href)}" title="{title}">'
                f"{escapeHtml(label)}</a>"
            )
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


def render_markdown(text: str, keys: Mapping[str, KeyTarget] | None = None) -> SafeString:
    """A note as safe HTML; ``keys`` are the citation keys resolved for this reader."""
    if keys is None:
        return _render(text, None)
    cited = keys_in(text)
    return _render(text, tuple(sorted((k, keys[k]) for k in cited if k in keys)))


@lru_cache(maxsize=8192)
def plain_text(text: str) -> str:
    """A note as one line of the text a reader sees, without Markdown's marks: for search
    results, which show a snippet of it. Citations stay as written (``[see @key, p. 4]``),
    so that ``citekeys.key_spans`` finds them in it; images give their alt text."""
    parts: list[str] = []
    for token in _md.parse(text):
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


@lru_cache(maxsize=8192)
def _render(text: str, resolved: tuple[tuple[str, KeyTarget], ...] | None) -> SafeString:
    # Memoised: a reading page renders every note on it, and notes repeat across requests.
    html = _md.render(text, {"cite": None if resolved is None else dict(resolved)})
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener",
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
