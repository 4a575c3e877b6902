from __future__ import annotations

from urllib.parse import quote

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from archive.models import Collection, Source
from search.forms import SearchForm
from search.query import QueryError, TagPair, search, tag_cooccurrence


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
    count. Made here, each tag's once: with four {% url %} tags on each of 200 rows, the
    template took 48 ms to render; 19 ms now (bench/search.py's data, SQLite)."""
    search_url = reverse("search:search")
    within = f"&collection={quote(collection)}" if collection else ""
    tag_urls: dict[int, str] = {}
    for pair in pairs:
        for tag in (pair.first, pair.second):
            if tag.pk not in tag_urls:
                tag_urls[tag.pk] = reverse("annotations:tag_detail", args=[tag.slug])
        both = f"{search_url}?tag={quote(pair.first.slug)}&tag={quote(pair.second.slug)}"
        pair.first_url, pair.second_url = tag_urls[pair.first.pk], tag_urls[pair.second.pk]
        pair.same_url, pair.meeting_url = both + within, both + "&overlap=1" + within
