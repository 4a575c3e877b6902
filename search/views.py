from __future__ import annotations

from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, QuerySet, Window
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_safe
from taggit.models import Tag

from annotations.models import Annotation, TagRedirect
from archive.models import Collection, Source
from search.forms import BrowseForm, SearchForm
from search.listing import with_links
from search.query import Filters, QueryError, Results, TagPair, search, tag_cooccurrence


def _page_number(request: HttpRequest, name: str) -> int:
    """The page asked for (past the last one, the search shows the last)."""
    try:
        return min(max(1, int(request.GET.get(name, "1"))), 1_000_000)
    except ValueError:
        return 1


@require_safe
def search_page(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None, user=request.user)
    results, error, within = None, None, None
    if form.is_bound and form.is_valid():
        query, filters = form.cleaned_data["q"], form.filters
        if query is not None or filters:
            try:
                results = search(
                    request.user,
                    query,
                    filters,
                    sort=form.chosen_sort,
                    sources_page=_page_number(request, "sources_page"),
                    passages_page=_page_number(request, "passages_page"),
                )
            except QueryError as exc:
                error = str(exc)
            else:
                _link_results(results, request.GET)
        if filters.source:
            within = (
                Source.objects.visible_to(request.user)
                .for_listing()
                .filter(uuid=filters.source)
                .first()
            )
    collections = Collection.objects.visible_to(request.user).order_by("title")
    return render(
        request,
        "search/search.html",
        {
            "form": form,
            "results": results,
            "error": error,
            "within": within,
            "collections": collections,
            "media_types": Source.media_types(),
        },
    )


def _link_results(results: Results, params: QueryDict) -> None:
    """Each result's links that narrow this search: a source's to search within it, a
    passage's to its author's passages. Made here from the query string encoded once,
    where {% querystring %} copied and encoded it for each result (bench/NOTES.md)."""
    if results.sources:
        within = _query_without(params, "source", "sources_page", "passages_page")
        for source in results.sources:
            source.within_url = within + urlencode({"source": source.source.uuid})
    by_author = _query_without(params, "author", "passages_page")
    for passage in results.passages:
        author = passage.annotation.author.get_username()
        passage.author_url = by_author + urlencode({"author": author})


def _query_without(params: QueryDict, *names: str) -> str:
    """``?`` and the query string without ``names``, ready for one more parameter."""
    kept = params.copy()
    for name in names:
        kept.pop(name, None)
    encoded = kept.urlencode()
    return f"?{encoded}&" if encoded else "?"


@require_safe
def tag_cooccurrence_page(request: HttpRequest) -> HttpResponse:
    collection = request.GET.get("collection", "").strip()[:80]
    pairs = tag_cooccurrence(request.user, collection=collection)
    _link_pairs(pairs, collection)
    collections = Collection.objects.visible_to(request.user).order_by("title")
    return render(
        request,
        "search/tag_cooccurrence.html",
        {"pairs": pairs, "collection": collection, "collections": collections},
    )


def _link_pairs(pairs: list[TagPair], collection: str) -> None:
    """Each pair's links: to its tags' pages, and to the search for the passages its counts
    count. Made here, each tag's once, rather than by four {% url %} tags on each of 200
    rows (bench/NOTES.md)."""
    search_url = reverse("search:search")
    within = f"&collection={quote(collection)}" if collection else ""
    tag_urls: dict[int, str] = {}
    for pair in pairs:
        for tag in (pair.first, pair.second):
            if tag.pk not in tag_urls:
                tag_urls[tag.pk] = reverse("search:tag_detail", args=[tag.slug])
        both = f"{search_url}?tag={quote(pair.first.slug)}&tag={quote(pair.second.slug)}"
        pair.first_url, pair.second_url = tag_urls[pair.first.pk], tag_urls[pair.second.pk]
        pair.same_url, pair.meeting_url = both + within, both + "&overlap=1" + within


# --- Browsing: a collection, the tags, one's own annotations ---------------------------


@require_safe
def collection_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The collection's sources; with annotation filters (tag, author, note, mine), the
    passages annotated in it that match. The filters are the search page's."""
    collection = get_object_or_404(Collection.objects.visible_to(request.user), slug=slug)
    form = BrowseForm(request.GET or None, user=request.user)
    filters = form.browse_filters(collection=collection.slug)
    passages = None
    if filters.only_passages:
        passages = Paginator(
            filters.annotations(request.user)
            .for_listing()
            .order_by("source__title", "source_id", "start"),
            50,
        ).get_page(request.GET.get("page"))
        passages.object_list = with_links(passages.object_list, request.user)
        page = None
    elif form.is_bound and form.is_valid() and filters != Filters(collection=collection.slug):
        sources = filters.sources(request.user).for_listing().order_by("title")
        page = Paginator(sources, 25).get_page(request.GET.get("page"))
    else:
        sources = (
            Source.objects.visible_to(request.user)
            .filter(collections=collection)
            .for_listing()
            .order_by("title")
        )
        page = Paginator(sources, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "search/collection_detail.html",
        {
            "collection": collection,
            "page": page,
            "passages": passages,
            "form": form,
            "media_types": Source.media_types(),
        },
    )


def tag_list(request: HttpRequest) -> HttpResponse:
    """Tags with the number of annotations the user can see carrying each, a page at a time
    (an imported Hypothesis history can bring thousands), found by a part of their name."""
    find = request.GET.get("q", "").strip()[:100]
    tags = Annotation.objects.visible_to(request.user).tag_counts(name_contains=find)
    page = Paginator(tags, 200).get_page(request.GET.get("page"))
    return render(request, "search/tag_list.html", {"page": page, "find": find})


def tag_detail(request: HttpRequest, slug: str) -> HttpResponseBase:
    """Every visible passage with this tag, across sources (retrieving a code), narrowed by
    the search page's filters (collection, author, more tags, dates, note, mine)."""
    tag = Tag.objects.filter(slug=slug).first()
    if tag is None:
        # A tag renamed or merged in a codebook: its old address leads to what it became.
        successor = TagRedirect.target(slug)
        if successor is None:
            raise Http404("No such tag.")
        url = reverse("search:tag_detail", args=[successor.slug])
        query = request.GET.urlencode()
        return redirect(f"{url}?{query}" if query else url)
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
    page.object_list = with_links([found[pk] for pk in page.object_list], request.user)
    collections = Collection.objects.visible_to(request.user).order_by("title")
    return render(
        request,
        "search/tag_detail.html",
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
            counted = ordered.annotate(total=Window(Count("pk"))).values_list("pk", "total")
            rows = list(counted[start : start + per_page])
            if rows:  # else past the last page, or none: counted apart, as below
                paginator.count = rows[0][1]
                return Page([pk for pk, _total in rows], number, paginator)
    return paginator.get_page(number)


@login_required
def my_annotations(request: HttpRequest) -> HttpResponse:
    """Everything the user wrote that they can still see, newest first."""
    mine = Annotation.objects.visible_to(request.user).filter(author=request.user)
    collections = Collection.objects.filter(annotations__in=mine).distinct().order_by("title")
    tags = (
        Tag.objects.filter(annotations_taggedannotation_items__content_object__in=mine)
        .distinct()
        .order_by("name")
    )
    selected = mine
    problems = []
    collection_slug = request.GET.get("collection", "").strip()
    tag_slug = request.GET.get("tag", "").strip()
    if collection_slug:
        selected = selected.filter(collection__slug=collection_slug)
        if not any(c.slug == collection_slug for c in collections):
            problems.append(f"None of your annotations is in a collection “{collection_slug}”.")
    if tag_slug:
        selected = selected.filter(tags__slug=tag_slug)
        if not any(t.slug == tag_slug for t in tags):
            problems.append(f"None of your annotations has the tag “{tag_slug}”.")
    selected = selected.for_listing().order_by("-created", "pk")
    page = Paginator(selected, 25).get_page(request.GET.get("page"))
    page.object_list = with_links(page.object_list, request.user)
    context = {
        "page": page,
        "collections": collections,
        "tags": tags,
        "collection_slug": collection_slug,
        "tag_slug": tag_slug,
        "problems": problems,
    }
    return render(request, "search/my_annotations.html", context)
