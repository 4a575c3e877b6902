from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from taggit.models import Tag

from annotations.citekeys import link_note_keys
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
    page = Paginator(ordered.values_list("pk", flat=True), 50).get_page(request.GET.get("page"))
    if not page.paginator.count and not (
        Annotation.objects.visible_to(request.user).filter(tags=tag).exists()
    ):
        # A tag used only where the user cannot see must not reveal its name.
        raise Http404("No such tag.")
    found = Annotation.objects.for_listing().in_bulk(page.object_list)
    page.object_list = link_note_keys([found[pk] for pk in page.object_list], request.user)
    collections = Collection.objects.visible_to(request.user).order_by("title")
    return render(
        request,
        "annotations/tag_detail.html",
        {"tag": tag, "page": page, "form": form, "collections": collections},
    )


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
