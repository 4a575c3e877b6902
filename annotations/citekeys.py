"""Pandoc-style citation keys in notes: ``[@key]``, ``[@key, p. 4]``, ``[see @a; -@b]``.

The parser is pure (no database): it finds bracketed citation groups and the keys in them.
``resolve_keys`` then looks up every key of a page at once, among the sources a user may see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# Pandoc's grammar: a key starts with a letter, digit or _, and may carry single internal
# punctuation characters (:.#$%&-+?<>~/) between alphanumerics; trailing punctuation is not
# part of it (so "[@smith2024.]" cites smith2024).
KEY = r"[^\W](?:[^\W]|[:.#$%&\-+?<>~/](?=[^\W]))*"
KEY_RE = re.compile(KEY)
# A group: brackets holding at least one @, no nested brackets, not a link ("](" or "][").
GROUP_RE = re.compile(r"\[([^\[\]\n]*?@[^\[\]]*?)\](?![(\[])")
ITEM_RE = re.compile(rf"^(?P<prefix>.*?)(?P<minus>-?)@(?P<key>{KEY})(?P<suffix>.*)$", re.S)
MAX_KEYS_RESOLVED = 2000


class CiteItem(NamedTuple):
    prefix: str  # "see "
    key: str
    suffix: str  # ", p. 4"
    suppress_author: bool  # -@key


class KeyTarget(NamedTuple):
    """What a resolved key links to."""

    href: str
    label: str  # "Smith 2024"
    title: str


def parse_group(content: str) -> list[CiteItem] | None:
    """The items of one bracketed group's content, or None if it is not a citation group.

    Every ``;``-separated item must hold exactly one key, preceded by the start of the item,
    a space or punctuation (so an e-mail address is not a citation).
    """
    items = []
    for part in content.split(";"):
        match = ITEM_RE.match(part.strip())
        if match is None:
            return None
        prefix = match.group("prefix")
        if prefix and (prefix[-1].isalnum() or prefix[-1] == "_"):
            return None
        if "@" in match.group("suffix") and KEY_RE.match(match.group("suffix").split("@", 1)[1]):
            return None  # two keys without a ";" between them
        items.append(
            CiteItem(
                prefix=prefix,
                key=match.group("key"),
                suffix=match.group("suffix"),
                suppress_author=bool(match.group("minus")),
            )
        )
    return items or None


def find_groups(text: str) -> list[tuple[int, int, list[CiteItem]]]:
    """Every citation group in a text: (start, end, items)."""
    found = []
    for match in GROUP_RE.finditer(text):
        items = parse_group(match.group(1))
        if items:
            found.append((match.start(), match.end(), items))
    return found


def key_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, key) of each ``@key`` in the text's citation groups, in order."""
    spans: list[tuple[int, int, str]] = []
    if "@" not in text:
        return spans
    for group_start, group_end, items in find_groups(text):
        pos = group_start
        for item in items:
            at = text.find(f"@{item.key}", pos, group_end)
            if at != -1:
                pos = at + 1 + len(item.key)
                spans.append((at, pos, item.key))
    return spans


def keys_in(text: str) -> list[str]:
    """The distinct keys a note cites, in order of first use."""
    seen: dict[str, None] = {}
    if "@" not in text:
        return []
    for _start, _end, items in find_groups(text):
        for item in items:
            seen.setdefault(item.key, None)
    return list(seen)


def short_label(creators: list[str], date_published: str, title: str) -> str:
    """Author-date: "Smith 2024", "Smith and Jones 2024", "Smith et al. 2024"."""

    def family(name: str) -> str:
        name = name.strip()
        return name.split(",")[0].strip() if "," in name else (name.split() or [""])[-1]

    year = date_published[:4] if date_published else "n.d."
    if not creators:
        short = title if len(title) <= 40 else title[:39] + "…"
        return f"{short} {year}"
    if len(creators) == 1:
        who = family(creators[0])
    elif len(creators) == 2:
        who = f"{family(creators[0])} and {family(creators[1])}"
    else:
        who = f"{family(creators[0])} et al."
    return f"{who} {year}"


def resolve_keys(keys: Iterable[str], user: User | AnonymousUser) -> dict[str, KeyTarget]:
    """The sources ``user`` may see for these keys, in one query; unknown keys are left out."""
    from django.urls import reverse

    from archive.models import Source

    wanted = sorted(set(keys))[:MAX_KEYS_RESOLVED]
    if not wanted:
        return {}
    rows = (
        Source.objects.visible_to(user)
        .filter(citation_key__in=wanted)
        .values_list("citation_key", "uuid", "title", "creators", "date_published")
    )
    return {
        key: KeyTarget(
            href=reverse("annotations:source_detail", args=[uuid]),
            label=short_label(creators or [], date_published, title),
            title=title,
        )
        for key, uuid, title, creators, date_published in rows
    }


def link_note_keys(annotations: Iterable, user: User | AnonymousUser) -> list:
    """The annotations (a page of them) as a list, each with ``note_keys``: the citation keys
    of all their notes resolved for ``user`` in one query, so ``note_html`` links them."""
    annotations = list(annotations)
    keys = resolve_keys({k for a in annotations if a.note for k in keys_in(a.note)}, user)
    for annotation in annotations:
        annotation.note_keys = keys
    return annotations
