from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from taggit.models import Tag

from annotations.citekeys import link_note_keys
from annotations.models import Annotation
from archive.models import Collection
from search.forms import BrowseForm


def tag_list(request: HttpRequest) -> HttpResponse:
    """Tags with the number of annotations the user can see carrying each."""
    visible = Annotation.objects.visible_to(request.user)
    tags = (
        Tag.objects.annotate(
            count=Count(
                "annotations_taggedannotation_items",
                filter=Q(annotations_taggedannotation_items__content_object__in=visible),
            )
        )
        .filter(count__gt=0)
        .order_by("name")
    )
    return render(request, "annotations/tag_list.html", {"tags": tags})


def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Every visible passage with this tag, across sources (retrieving a code), narrowed by
    the search page's filters (collection, author, more tags, dates, note, mine)."""
    tag = get_object_or_404(Tag, slug=slug)
    form = BrowseForm(request.GET or None, user=request.user)
    filters = form.browse_filters(tags=[tag.slug])
    if not Annotation.objects.visible_to(request.user).filter(tags=tag).exists():
        # A tag used only where the user cannot see must not reveal its name.
        raise Http404("No such tag.")
    annotations = (
        filters.annotations(request.user)
        .with_related()
        .order_by("source__title", "source_id", "start")
    )
    page = Paginator(annotations, 50).get_page(request.GET.get("page"))
    page.object_list = link_note_keys(page.object_list, request.user)
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
