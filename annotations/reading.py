"""What the reading page shows: the text layer with every visible annotation on it."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape  # Django's escape, without the lazy-string wrapper's cost per call
from typing import TYPE_CHECKING, NamedTuple, TypedDict, cast

from django.contrib.messages import get_messages
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe

from annotations.citekeys import keys_in, resolve_keys
from annotations.models import (
    CODE_COLOURS,
    Annotation,
    AnnotationQuerySet,
    Citation,
    Code,
    Comment,
    TaggedAnnotation,
    TagRef,
    note_html,
)
from annotations.revision_cache import revision_cache, revision_cache_key
from archive.cite import Passage, references
from archive.divisions import Divisions
from archive.models import Capture, Collection, Source
from archive.reader import render_text_layer


def readable_sources(user) -> QuerySet[Source]:
    """Sources ``user`` may read, each with two flags for its reading page: whether an
    annotation on it cites anything (``cites_something``) and whether a citation names it
    (``is_cited``). The queries for citations and backlinks are the page's costliest to
    build (visibility rules inside visibility rules); a page without any skips them. And
    whether it was captured from the web (``was_captured``): a source that was not needs
    no query for its captures. And whether it has replies or notes (``has_comments``)."""
    return (
        Source.objects.visible_to(user)
        .select_related("archived_by")
        .annotate(
            cites_something=Exists(Citation.objects.filter(annotation__source=OuterRef("pk"))),
            is_cited=Exists(
                Citation.objects.filter(kind=Citation.Kind.SOURCE, source=OuterRef("pk"))
            ),
            was_captured=Exists(
                Capture.objects.filter(source=OuterRef("pk"), state=Capture.State.DONE)
            ),
            # Most sources have no replies or notes on the whole: no query for them then.
            has_comments=Exists(Comment.objects.filter(source=OuterRef("pk"))),
        )
    )


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _TargetsVisible(TypedDict):
        source_visible: bool
        cited_visible: bool

    # A citation from CitationQuerySet.for_display, which says whether its targets are visible.
    ShownCitation = WithAnnotations[Citation, _TargetsVisible]


@dataclass(slots=True)
class ReadingRow:
    """One annotation as the reading page shows it: its columns, without a model instance.

    ``uuid`` is text: the page writes it into every highlight run the annotation covers.
    """

    pk: int
    uuid: str
    start: int
    end: int
    exact: str
    note: str
    note_rendered: str | None  # Annotation.note_rendered: no Markdown is parsed here
    visibility: str
    created: datetime
    version: int
    author_id: int
    username: str
    collection_id: int | None = None
    tag_list: list[TagRef] = field(default_factory=list)
    # The colour of its first tag that is a code of its collection with one: its highlight's.
    colour: str = ""

    def get_visibility_display(self) -> str:
        return str(Annotation.Visibility(self.visibility).label)


def reading_rows(on_page: AnnotationQuerySet, tagged: QuerySet[TaggedAnnotation]) -> list:
    """The annotations ``on_page`` in text order, with their tags taken from ``tagged``
    (a superset: a source's tagged rows), in two queries."""
    # Speed device (bench/NOTES.md): rows of values, not model instances with their authors
    # and tags, which for 2,000 annotations cost more than the rest of the page.
    rows = [
        ReadingRow(pk, str(uuid), *values)
        for pk, uuid, *values in on_page.in_text_order().values_list(
            "pk",
            "uuid",
            "start",
            "end",
            "exact",
            "note",
            "note_rendered",
            "visibility",
            "created",
            "version",
            "author_id",
            "author__username",
            "collection_id",
        )
    ]
    by_pk = {row.pk: row for row in rows}
    if rows:
        # The code's colour comes with each tag, in the same query.
        colour = Code.objects.filter(
            collection_id=OuterRef("content_object__collection_id"), tag_id=OuterRef("tag_id")
        ).values("colour")[:1]
        for pk, name, slug, code_colour in (
            tagged.order_by("pk")
            .annotate(code_colour=Subquery(colour))
            .values_list("content_object_id", "tag__name", "tag__slug", "code_colour")
        ):
            if pk in by_pk:
                row = by_pk[pk]
                shade = code_colour if code_colour in CODE_COLOURS else ""
                row.tag_list.append(TagRef(name, slug, shade))
                if shade and not row.colour:
                    row.colour = shade
    return rows


def reading_context(request: HttpRequest, source: Source, mark: tuple[int, int] | None = None):
    """The reading page (or passage page, with ``mark``): a fixed number of queries however
    many annotations, citations, citation keys and backlinks it shows.

    ``source`` from ``readable_sources`` spares the citation queries when there is nothing
    to show; any other source is treated as citing and cited. A ``mark`` outside the text
    is a 404.
    """
    if mark is not None and not 0 <= mark[0] < mark[1] <= len(source.text):
        raise Http404("That passage is outside this source's text.")
    on_page = Annotation.objects.visible_to(request.user).filter(source=source)
    annotations = reading_rows(
        on_page, TaggedAnnotation.objects.filter(content_object__source=source)
    )
    authors = sorted({a.username for a in annotations})
    tags = sorted({t.name for a in annotations for t in a.tag_list}, key=str.lower)
    citations: dict[int, list[ShownCitation]] = {}
    if annotations and getattr(source, "cites_something", True):
        # The source's citations, kept for the annotations shown: cheaper than asking the
        # database to work out again which annotations those are.
        shown = {a.pk for a in annotations}
        for citation in Citation.objects.filter(annotation__source=source).for_display(
            request.user
        ):
            if citation.annotation_id in shown:
                shown_citation = cast("ShownCitation", citation)  # for_display annotated it
                citations.setdefault(citation.annotation_id, []).append(shown_citation)
    keys = resolve_keys({k for a in annotations if a.note for k in keys_in(a.note)}, request.user)
    divisions = source.text_divisions
    replies, source_notes = discussion(request.user, source)
    may_write = Annotation.may_write(request.user, source)
    entries_html = render_entries(annotations, citations, keys, pages=divisions, replies=replies)
    last_check = source.fixity_checks.first() if source.fixity_checked_at else None
    captures, other_captures = (
        Capture.objects.history(source, request.user)
        if getattr(source, "was_captured", True)
        else ([], [])
    )
    permalink = request.build_absolute_uri(source.get_absolute_url())
    passage = None
    if mark is not None:
        passage = Passage(
            mark[0],
            mark[1],
            source.text[mark[0] : mark[1]],
            request.build_absolute_uri(reverse("annotations:passage", args=[source.uuid, *mark])),
        )
    return {
        "source": source,
        "passage": (mark[0], mark[1], source.text[mark[0] : mark[1]]) if mark else None,
        "references": references(source, permalink, passage),
        "backlinks": (
            Citation.objects.backlinks(request.user, source, mark)
            if getattr(source, "is_cited", True)
            else []
        ),
        "text_html": render_text_layer(
            source.text,
            source.blocks,
            annotations,
            mark=mark,
            # A stored text layer never changes (a database trigger refuses it).
            layout_key=(source.uuid, source.sha256),
            pages=divisions.starts(),
        )
        if source.has_text_layer
        else "",
        "annotations": annotations,
        "entries_html": entries_html,
        "source_notes": source_notes,
        "authors": authors,
        "tags": tags,
        "last_check": last_check,
        "captures": captures,
        "other_captures": other_captures,
        "screenshot": next((c for c in reversed(captures) if c.screenshot_name), None),
        "can_annotate": source.has_text_layer and may_write,
        "can_note": may_write,
        "can_edit_metadata": source.can_edit_metadata(request.user),
        "collections": Collection.objects.filter(sources=source)
        if request.user.is_staff
        else Collection.objects.filter(sources=source).visible_to(request.user),
    }


def discussion(user, source: Source) -> tuple[dict[int, list[Comment]], list[Comment]]:
    """The replies ``user`` may read on ``source``, by the pk of the annotation they answer,
    and its notes on the whole source, each with its replies as ``thread``: one query, none
    for a source without any (``has_comments``)."""
    replies: dict[int, list[Comment]] = {}
    notes: list[Comment] = []
    if not getattr(source, "has_comments", True):
        return replies, notes
    comments = list(
        Comment.objects.visible_to(user)
        .filter(source=source)
        .select_related("author")
        .order_by("created", "pk")
    )
    threads: dict[int, list[Comment]] = {}
    for comment in comments:
        if comment.reply_to_annotation_id is not None:
            replies.setdefault(comment.reply_to_annotation_id, []).append(comment)
        elif comment.reply_to_note_id is not None:
            threads.setdefault(comment.reply_to_note_id, []).append(comment)
        else:
            notes.append(comment)
    for note in notes:
        note.thread = threads.get(note.pk, [])  # type: ignore[attr-defined]
        note.thread_html = mark_safe(render_replies(note.thread))  # type: ignore[attr-defined]  # noqa: S308 - escaped there
    return replies, notes


def render_replies(replies: list[Comment]) -> str:
    """A thread under an annotation or a note: each reply's text (its stored HTML), author
    and time; its buttons are made by reader.js."""
    if not replies:
        return ""
    items = []
    for reply in replies:
        uuid = str(reply.uuid)
        username = escape(reply.author.get_username())
        created = reply.created.astimezone(UTC).isoformat()
        edited = " · edited" if reply.version > 1 else ""
        items.append(
            f'<li class="reply" id="c-{uuid}" data-comment="{uuid}" data-author="{username}">'
            f'<div class="note">{reply.note_html}</div>'
            f'<p class="ann-meta"><span class="author">{username}</span> · <time'
            f' datetime="{created}">{created[:10]} {created[11:16]}</time>{edited}</p></li>'
        )
    count = len(replies)
    label = "1 reply" if count == 1 else f"{count} replies"
    return f'<ol class="replies" aria-label="{label}">{"".join(items)}</ol>'


# The content's two big parts stand in the template as these until it is put together.
_SLOT = secrets.token_hex(16)
BIG_PARTS = ("text_html", "entries_html")


class ReadingPage(NamedTuple):
    """What a reading page's cache keeps: the page, as the frame's two halves around its
    content. The frame (the site's header, the logout form) is kept with a stand-in for the
    CSRF token and without messages, which are the request's own."""

    title: str
    has_text_layer: bool
    before: str
    content: bytes  # UTF-8, as it goes out
    after: str


# Fixed, not random: a cache shared between processes holds frames another one made.
CSRF_STAND_IN = "csrf-token-of-the-request"
_CSRF_FIELD = 'name="csrfmiddlewaretoken" value="{}"'


def reading_page(request: HttpRequest, uuid, mark: tuple[int, int] | None = None) -> HttpResponse:
    """The reading page of the source ``uuid`` (with ``mark``, of that passage), for a user
    who may read it; 404 for anyone else, and for a passage outside the text.

    Speed device (bench/NOTES.md): the page is cached under everything that decides it:
    the content revision (``ContentRevision``: any write to sources, collections,
    memberships, annotations, citations, tags or users' standing moves it on), the reader,
    and the URL (source and passage, scheme and host, which its links are built on). So a
    cached page is only ever served to the reader it was made for, and is never older
    than the last write: at most one page made from every revision, per reader. A miss
    costs the access check and the rendering, as if there were no cache; an entry exists
    only for a page that passed the access check at its revision. What belongs to the
    request alone (the CSRF token, messages) is put in for each request.
    """
    key = reading_cache_key(request)
    cache = revision_cache()
    page = cache.get(key) if key else None
    if page is None:
        source = get_object_or_404(readable_sources(request.user), uuid=uuid)
        context = reading_context(request, source, mark)
        content = render_reading_content(request, context)
        before, after = render_frame(
            request,
            source.title,
            source.has_text_layer,
            csrf_token=CSRF_STAND_IN,
            messages=(),
        )
        page = ReadingPage(source.title, source.has_text_layer, before, content, after)
        if key:
            cache.set(key, page)
    return reading_response(request, page)


def reading_cache_key(request: HttpRequest) -> str | None:
    """The cache key of this request's reading page, or None for no caching. The URL in it
    carries the source and passage, and the query string the login link returns to."""
    return revision_cache_key(request, "reading")


def render_reading_content(request: HttpRequest, context: dict) -> bytes:
    """The reading page's content (annotations/_reading.html), with the text layer and the
    annotation entries put in once."""
    # Speed device (bench/NOTES.md): the template renders around a slot for each big part,
    # so megabytes of entries are not joined and copied again at every template level.
    slots = {name: mark_safe(f"<!--{_SLOT}-{name}-->") for name in BIG_PARTS}  # noqa: S308
    page: str = render_to_string("annotations/_reading.html", {**context, **slots}, request)
    chunks: list[str] = []
    for name in BIG_PARTS:
        part = context[name]
        before, found, page = page.partition(slots[name])
        if not found:
            if part:
                raise ValueError(f"annotations/_reading.html must show {{{{ {name} }}}} once.")
            page = before  # not shown (a source without a text layer), and empty
            continue
        chunks.append(before)
        chunks.extend([part] if isinstance(part, str) else part)
    chunks.append(page)
    return "".join(chunks).encode("utf-8")


def render_frame(request: HttpRequest, title: str, has_text_layer: bool, **extra) -> tuple:
    """The page's frame (annotations/source_detail.html) as the two halves around its
    content; ``extra`` stands in for the request's own context (``csrf_token``,
    ``messages``)."""
    slot = mark_safe(f"<!--{_SLOT}-reading-->")  # noqa: S308
    frame = render_to_string(
        "annotations/source_detail.html",
        {"title": title, "has_text_layer": has_text_layer, "reading": slot, **extra},
        request,
    )
    before, _, after = frame.partition(slot)
    return before, after


def reading_response(request: HttpRequest, page: ReadingPage) -> HttpResponse:
    """The whole reading page for this request: its CSRF token, and its messages if any."""
    if len(get_messages(request)):  # counted, not shown: they stay for the frame to show
        before, after = render_frame(request, page.title, page.has_text_layer)
    else:
        before, after = page.before, page.after
        stand_in = _CSRF_FIELD.format(CSRF_STAND_IN)
        if stand_in in before:  # the logout form
            before = before.replace(stand_in, _CSRF_FIELD.format(get_token(request)))
    return HttpResponse(
        b"".join((before.encode("utf-8"), page.content, after.encode("utf-8"))),
        content_type="text/html; charset=utf-8",
    )


def render_entries(
    annotations,
    citations: dict[int, list[ShownCitation]] | None = None,
    keys=None,
    pages: Divisions | None = None,
    replies: dict[int, list[Comment]] | None = None,
) -> list[str]:
    """The side panel's entries, one string of HTML (every value escaped) per entry, the
    same for every reader who sees them."""
    # Speed device (bench/NOTES.md): f-strings rather than a template include per entry,
    # which costs seconds on a page of 2,000 annotations.
    history, _, history_end = reverse("annotations:history", args=[UUID_SLOT]).partition(UUID_SLOT)
    tag_url = reverse("search:tag_detail", args=["slug"])
    # Authors, visibilities and sets of tags repeat across entries: escape each once.
    escaped = functools.cache(escape)

    @functools.cache
    def tag_item(tag: TagRef) -> str:
        href = escape(tag_url.replace("slug", tag.slug))
        swatch = ""
        if tag.colour:  # one of CODE_COLOURS' names (reading_rows keeps no other)
            swatch = f'<span class="swatch code-{tag.colour}" aria-hidden="true"></span>'
        return f'<li><a class="tag" href="{href}">{swatch}{escape(tag.name)}</a></li>'

    @functools.cache
    def tags_html(tags: tuple[TagRef, ...]) -> tuple[str, str]:
        names = escape(chr(31).join(t.name for t in tags))
        if not tags:
            return names, ""
        items = "".join(tag_item(t) for t in tags)
        return names, f'<ul class="tags" aria-label="Tags">{items}</ul>'

    citations = citations or {}
    keys = keys or {}
    replies = replies or {}
    out = []
    for a in annotations:
        uuid = str(a.uuid)
        username = escaped(a.username)
        quote = escape(a.exact if len(a.exact) <= 280 else a.exact[:279] + "…")
        tag_names, tag_list = tags_html(tuple(a.tag_list))
        note = ""
        if a.note:
            note = f'<div class="note">{note_html(a.note, a.note_rendered, keys)}</div>'
        cited = ""
        if a.pk in citations:
            items = "".join(render_citation(c) for c in citations[a.pk])
            cited = f'<ul class="citations" aria-label="Cites">{items}</ul>'
        created = a.created.astimezone(UTC).isoformat()
        on_pages = ""
        if pages:
            on_pages = f'<span class="pages">{escape(pages.locator(a.start, a.end))}</span> · '
        edited = ""
        if a.version > 1:
            edited = f' · <a href="{history}{uuid}{history_end}">edited</a>'
        thread = replies.get(a.pk, [])
        replies_attribute = f' data-replies="{len(thread)}"' if thread else ""
        out.append(
            f'<li class="ann" id="a-{uuid}" data-ann="{uuid}" data-start="{a.start}"'
            f' data-end="{a.end}" data-author="{username}" data-tags="{tag_names}"'
            f"{replies_attribute}"
            # The link inside the quote: a link around a blockquote has no accessible name.
            f' tabindex="-1"><blockquote><a class="ann-quote" href="#hl-{uuid}"'
            f' data-goto="{uuid}">{quote}</a></blockquote>{tag_list}{note}{cited}'
            f'<p class="ann-meta">{on_pages}<span class="author">{username}</span> · <time'
            f' datetime="{created}">{created[:10]} {created[11:16]}</time>{edited}'
            f' · <span class="visibility">{escaped(a.get_visibility_display())}</span></p>'
            f"{render_replies(thread)}"
            # The entry's buttons (copy link, edit, delete) are made by reader.js.
            "</li>"
        )
    return out


UUID_SLOT = "00000000-0000-0000-0000-000000000000"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_citation(c: ShownCitation) -> str:
    """One cited thing under an annotation; hidden targets are named only as hidden."""
    extra = ""
    if c.shown_locator:
        extra += f' <span class="locator">{escape(c.locator_text)}</span>'
    if c.comment:
        extra += f' <span class="cite-comment">— {escape(c.comment)}</span>'
    if c.kind == Citation.Kind.SOURCE:
        if not c.source_visible:
            return f'<li class="cite-hidden">a source you do not have access to{extra}</li>'
        assert c.source is not None, "a source citation has a source (check constraint)"
        title = f'<a href="{escape(c.target_path())}">{escape(c.source.title)}</a>'
        quote = f' <q class="cite-quote">{escape(_short(c.exact))}</q>' if c.is_passage else ""
        return f'<li class="cite-source">{title}{quote}{extra}</li>'
    if c.kind == Citation.Kind.ANNOTATION:
        if c.cited_annotation is None:
            return f'<li class="cite-hidden">a deleted annotation{extra}</li>'
        if not c.cited_visible:
            return f'<li class="cite-hidden">an annotation you do not have access to{extra}</li>'
        target = c.cited_annotation
        return (
            f'<li class="cite-annotation"><a href="{escape(c.target_path())}">Annotation on'
            f" {escape(target.source.title)}</a>"
            f' <q class="cite-quote">{escape(_short(target.exact))}</q>{extra}</li>'
        )
    who = "; ".join(c.creators)
    year = c.date_published[:4]
    label = ". ".join(p for p in (who, year, c.title, c.publisher) if p) or c.external_href
    doi = f' <span class="doi">doi:{escape(c.doi)}</span>' if c.doi else ""
    return (
        f'<li class="cite-external"><a href="{escape(c.external_href)}"'
        f' rel="nofollow noopener noreferrer">{escape(label)}</a>{doi}{extra}</li>'
    )
