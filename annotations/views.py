from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, QuerySet, Window
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from taggit.models import Tag

from annotations.citekeys import link_note_keys
from annotations.listing import listed
from annotations.models import Annotation
from archive.models import Collection
from search.forms import BrowseForm


def tag_list(request: HttpRequest) -> HttpResponse:
    """Tags with the number of annotations the user can see carrying each."""
    tags = Annotation.objects.visible_to(request.user).tag_counts()
    return render(request, "annotations/tag_list.html", {"tags": tags})


def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Every visible passage with this tag, across sources (retrieving a code), narrowed by
    the search page's filters (collection, author, more tags, dates, note, mine)."""
    tag = get_object_or_404(Tag, slug=slug)
    form = BrowseForm(request.GET or None, user=request.user)
    filters = form.browse_filters(tags=[tag.slug])
    # The page's ids first, sorted from narrow rows; then only its 50 annotations in full.
    ordered = filters.annotations(request.user).order_by("source__title", "source_id", "start")
    page = _page_of_ids(ordered, request.GET.get("page"), 50)
    if not page.paginator.count and not (
        Annotation.objects.visible_to(request.user).filter(tags=tag).exists()
    ):
        # A tag used only where the user cannot see must not reveal its name.
        raise Http404("No such tag.")
    found = Annotation.objects.for_listing().in_bulk(page.object_list)
    page.object_list = listed([found[pk] for pk in page.object_list], request.user)
    collections = Collection.objects.visible_to(request.user).order_by("title")
    return render(
        request,
        "annotations/tag_detail.html",
        {"tag": tag, "page": page, "form": form, "collections": collections},
    )


def _page_of_ids(ordered: QuerySet, number, per_page: int) -> Page:
    """The page ``number`` (as ``Paginator.get_page`` takes it) of the ids of ``ordered``.

    On SQLite the page and the count come from one statement (COUNT(*) OVER ()): apart,
    each read every row the filters let through (bench/NOTES.md). PostgreSQL's plan for the
    page stops at its last row, which a count over the window would undo: there they stay
    apart.
    """
    paginator = Paginator(ordered.values_list("pk", flat=True), per_page)
    if connection.vendor == "sqlite":
        try:
            number = int(number)
        except (TypeError, ValueError):
            number = 1
        if number >= 1:
            start = (number - 1) * per_page
            counted = ordered.annotate(listed=Window(Count("pk"))).values_list("pk", "listed")
            rows = list(counted[start : start + per_page])
            if rows:  # else past the last page, or none: counted apart, as below
                paginator.count = rows[0][1]
                return Page([pk for pk, _listed in rows], number, paginator)
    return paginator.get_page(number)


def history(request: HttpRequest, uuid) -> HttpResponse:
    annotation = get_object_or_404(
        Annotation.objects.visible_to(request.user).with_related(), uuid=uuid
    )
    revisions = annotation.revisions.select_related("edited_by")
    link_note_keys([annotation], request.user)
    return render(
        request,
        "annotations/history.html",
        {"annotation": annotation, "revisions": revisions},
    )
