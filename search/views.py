from __future__ import annotations

from urllib.parse import quote, urlencode

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from archive.models import Collection, Source
from search.forms import SearchForm
from search.query import QueryError, Results, TagPair, search, tag_cooccurrence


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
                tag_urls[tag.pk] = reverse("annotations:tag_detail", args=[tag.slug])
        both = f"{search_url}?tag={quote(pair.first.slug)}&tag={quote(pair.second.slug)}"
        pair.first_url, pair.second_url = tag_urls[pair.first.pk], tag_urls[pair.second.pk]
        pair.same_url, pair.meeting_url = both + within, both + "&overlap=1" + within
