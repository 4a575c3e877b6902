"""What the reading page shows: the text layer with every visible annotation on it."""

from __future__ import annotations

import functools
from datetime import UTC
from html import escape  # Django's escape, without the lazy-string wrapper's cost per call

from django.http import HttpRequest
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from annotations.models import Annotation
from archive.cite import bibtex, plain_reference
from archive.models import Source
from archive.reader import render_text_layer


def reading_context(request: HttpRequest, source: Source, mark: tuple[int, int] | None = None):
    annotations = (
        Annotation.objects.visible_to(request.user)
        .filter(source=source)
        .in_text_order()
        .reading_rows()
    )
    authors = sorted({a.username for a in annotations})
    tags = sorted({t.name for a in annotations for t in a.tag_list}, key=str.lower)
    entries_html = render_entries(annotations, request.user)
    last_check = source.fixity_checks.first() if source.fixity_checked_at else None
    permalink = request.build_absolute_uri(source.get_absolute_url())
    return {
        "source": source,
        "reference": plain_reference(source, permalink),
        "bibtex": bibtex(source, permalink),
        "text_html": render_text_layer(source.text, source.blocks, annotations, mark=mark),
        "annotations": annotations,
        "entries_html": entries_html,
        "authors": authors,
        "tags": tags,
        "last_check": last_check,
        "can_annotate": Annotation.can_annotate(request.user, source),
        "can_edit_metadata": source.can_edit_metadata(request.user),
        "collections": source.collections.all()
        if request.user.is_staff
        else source.collections.visible_to(request.user),
    }


def render_entries(annotations, user) -> SafeString:
    """The side panel's entries, built in Python rather than with a template include per entry.

    bench/reader.py measured 2,000 template includes at over a second per page; this is
    the same markup (every value escaped) at a small fraction of that.
    """
    history = reverse("annotations:history", args=["00000000-0000-0000-0000-000000000000"])
    tag_url = reverse("annotations:tag_detail", args=["slug"])
    # Authors and tags repeat across entries: escape each once.
    escaped = functools.cache(escape)
    own_pk = user.pk if user.is_authenticated else None
    out = []
    for a in annotations:
        tags = a.tag_list
        uuid = str(a.uuid)
        username = escaped(a.username)
        quote = escape(a.exact if len(a.exact) <= 280 else a.exact[:279] + "…")
        parts = [
            f'<li class="ann" id="a-{uuid}" data-ann="{uuid}" data-start="{a.start}"'
            f' data-end="{a.end}" data-author="{username}"'
            f' data-tags="{escaped(chr(31).join(t.name for t in tags))}" tabindex="-1">',
            f'<a class="ann-quote" href="#hl-{uuid}" data-goto="{uuid}"><blockquote>{quote}'
            "</blockquote></a>",
        ]
        if tags:
            items = "".join(
                f'<li><a class="tag" href="{escaped(tag_url.replace("slug", t.slug))}">'
                f"{escaped(t.name)}</a></li>"
                for t in tags
            )
            parts.append(f'<ul class="tags" aria-label="Tags">{items}</ul>')
        if a.note:
            parts.append(f'<div class="note">{a.note_html}</div>')
        created = a.created.astimezone(UTC)
        edited = ""
        if a.version > 1:
            link = history.replace("00000000-0000-0000-0000-000000000000", uuid)
            edited = f' · <a href="{link}">edited</a>'
        parts.append(
            f'<p class="ann-meta"><span class="author">{username}</span> · '
            f'<time datetime="{created.isoformat()}">{created:%Y-%m-%d %H:%M}</time>{edited}'
            f' · <span class="visibility">{escaped(a.get_visibility_display())}</span></p>'
        )
        if a.author_id == own_pk:
            parts.append(
                f'<p class="ann-actions"><button type="button" class="link" data-edit="{uuid}">'
                f'Edit</button> <button type="button" class="link danger" data-delete="{uuid}">'
                "Delete</button></p>"
            )
        parts.append("</li>")
        out.append("".join(parts))
    return mark_safe("".join(out))  # noqa: S308 - every value above is escaped
