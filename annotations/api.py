"""The W3C Web Annotation API. The reading page uses it; so can scripts (with a token)."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from taggit.models import Tag

from annotations.models import AnchorError, Annotation
from annotations.w3c import (
    CONTEXT,
    MEDIA_TYPE,
    W3CError,
    annotation_to_jsonld,
    collection_document,
    find_quote,
    page_document,
    parse_annotation,
    source_uuid_from_ref,
)
from archive.models import Source

PAGE_SIZE = 100
MAX_BODY_BYTES = 2 * 1024 * 1024


def ld_response(data: dict, status: int = 200, etag: str | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False), status=status, content_type=MEDIA_TYPE
    )
    if etag:
        response["ETag"] = etag
    response["Vary"] = "Cookie, Authorization"
    return response


def error(status: int, message: str, field: str = "") -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    """Enforce CSRF for cookie sessions only, after authentication, as DRF does.

    The views are csrf_exempt so an anonymous or token request gets a JSON 401/403 rather than
    Django's HTML CSRF page; token requests are marked exempt by the token middleware.
    """
    check = CsrfViewMiddleware(lambda req: None)
    check.process_request(request)
    refused = check.process_view(request, None, (), {})
    if refused is not None:
        return error(
            403, "CSRF check failed: send the X-CSRFToken header with the csrftoken cookie."
        )
    return None


def read_json(request: HttpRequest):
    if len(request.body) > MAX_BODY_BYTES:
        raise W3CError("", "The request body is too large.")
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise W3CError("", "The request body is not valid JSON.") from None


@csrf_exempt
@require_http_methods(["GET", "POST"])
def annotation_collection(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return create(request)
    annotations = Annotation.objects.visible_to(request.user).with_related()
    params = request.GET
    if params.get("source"):
        uuid = source_uuid_from_ref(params["source"])
        if uuid is None:
            return error(400, "source must be a source UUID or IRI.", "source")
        if not Source.objects.visible_to(request.user).filter(uuid=uuid).exists():
            return error(404, "No source you can see has that UUID.", "source")
        annotations = annotations.filter(source__uuid=uuid)
    if params.get("tag"):
        annotations = annotations.filter(tags__name__iexact=params["tag"])
    if params.get("author"):
        annotations = annotations.filter(author__username=params["author"])
    annotations = annotations.order_by("source_id", "start", "-end", "pk")
    paginator = Paginator(annotations, PAGE_SIZE)
    try:
        number = int(params.get("page", "1"))
    except ValueError:
        return error(400, "page must be a whole number.", "page")
    if number < 1 or (number > paginator.num_pages and paginator.count):
        return error(404, "No such page.", "page")
    page = paginator.get_page(number)
    base = base_url(request)
    query = params.copy()
    query.pop("page", None)
    collection_id = request.build_absolute_uri(request.path) + (
        "?" + query.urlencode() if query else ""
    )
    joiner = "&" if query else "?"

    def page_id(n: int) -> str:
        return f"{collection_id}{joiner}page={n}"

    items = [annotation_to_jsonld(a, base, with_context=False) for a in page.object_list]
    page_doc = page_document(
        page_id=page_id(page.number),
        collection_id=collection_id,
        items=items,
        start_index=page.start_index() - 1 if paginator.count else 0,
        next_id=page_id(page.next_page_number()) if page.has_next() else None,
        prev_id=page_id(page.previous_page_number()) if page.has_previous() else None,
        with_context=False,
        total=paginator.count,
    )
    if "page" in params:
        return ld_response({"@context": CONTEXT, **page_doc})
    doc = collection_document(
        collection_id=collection_id,
        label="Annotations",
        total=paginator.count,
        page_ids=(page_id(1), page_id(paginator.num_pages)),
        first_page=page_doc,
    )
    return ld_response(doc)


def create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return error(401, "Log in or send an API token to create annotations.")
    if refused := csrf_refusal(request):
        return refused
    try:
        parsed = parse_annotation(read_json(request))
    except W3CError as exc:
        return error(400, exc.message, exc.field)
    uuid = source_uuid_from_ref(parsed.source_ref or "")
    source = Source.objects.visible_to(request.user).filter(uuid=uuid).first() if uuid else None
    if source is None:
        return error(404, "No source you can see has that IRI.", "target.source")
    if not Annotation.can_annotate(request.user, source):
        return error(403, "Your role does not allow annotating this source.")
    start, end = parsed.start, parsed.end
    if start is None:
        if parsed.exact is None:
            return error(
                400, "Send a TextPositionSelector or a TextQuoteSelector.", "target.selector"
            )
        found = find_quote(source.text, parsed.exact, parsed.prefix, parsed.suffix)
        if found is None:
            return error(400, "The quote (exact) does not occur in the source's text.", "exact")
        start, end = found, found + len(parsed.exact)
    try:
        annotation = Annotation.create_anchored(
            author=request.user,
            source=source,
            start=start,
            end=end,
            exact=parsed.exact,
            note=parsed.note,
            tags=parsed.tags,
            visibility=parsed.visibility,
        )
    except AnchorError as exc:
        return error(400, exc.message, exc.field)
    annotation = Annotation.objects.with_related().get(pk=annotation.pk)
    doc = annotation_to_jsonld(annotation, base_url(request))
    response = ld_response(doc, status=201, etag=annotation.etag)
    response["Location"] = doc["id"]
    return response


@csrf_exempt
@require_http_methods(["GET", "HEAD", "PUT", "DELETE"])
def annotation_detail(request: HttpRequest, uuid) -> HttpResponse:
    annotation = get_object_or_404(
        Annotation.objects.visible_to(request.user).with_related(), uuid=uuid
    )
    if request.method in ("GET", "HEAD"):
        return ld_response(
            annotation_to_jsonld(annotation, base_url(request)), etag=annotation.etag
        )
    if not request.user.is_authenticated:
        return error(401, "Log in or send an API token to change annotations.")
    if refused := csrf_refusal(request):
        return refused
    if annotation.author_id != request.user.pk:
        return error(403, "Only the author can change or delete an annotation.")
    if_match = request.headers.get("If-Match")
    if if_match and if_match.strip() not in ("*", annotation.etag):
        return error(412, "The annotation was changed since you loaded it. Reload and try again.")
    if request.method == "DELETE":
        annotation.delete()
        return HttpResponse(status=204)
    try:
        parsed = parse_annotation(read_json(request), require_target=False)
    except W3CError as exc:
        return error(400, exc.message, exc.field)
    if parsed.has_target and (
        (
            parsed.start is not None
            and (parsed.start, parsed.end) != (annotation.start, annotation.end)
        )
        or (parsed.exact is not None and parsed.exact != annotation.exact)
        or source_uuid_from_ref(parsed.source_ref or "") != str(annotation.source.uuid)
    ):
        return error(
            400, "An annotation's target cannot change; create a new annotation.", "target"
        )
    annotation.update_content(
        editor=request.user,
        note=parsed.note,
        tags=parsed.tags,
        visibility=parsed.visibility or annotation.visibility,
    )
    annotation = Annotation.objects.with_related().get(pk=annotation.pk)
    return ld_response(annotation_to_jsonld(annotation, base_url(request)), etag=annotation.etag)


@require_GET
def tag_suggestions(request: HttpRequest) -> JsonResponse:
    """Tag names for the editor, drawn only from annotations the user can see."""
    query = request.GET.get("q", "").strip()[:100]
    visible = Annotation.objects.visible_to(request.user)
    tags = Tag.objects.filter(annotations_taggedannotation_items__content_object__in=visible)
    if query:
        tags = tags.filter(Q(name__istartswith=query) | Q(name__icontains=query))
    names = list(tags.values_list("name", flat=True).distinct().order_by("name")[:20])
    return JsonResponse({"tags": names})


@csrf_exempt
@require_http_methods(["POST"])
def note_preview(request: HttpRequest) -> HttpResponse:
    """The note editor's preview: exactly the server's sanitised Markdown rendering."""
    from annotations.markdown import render_markdown

    if not request.user.is_authenticated:
        return error(401, "Log in to preview notes.")
    if refused := csrf_refusal(request):
        return refused
    try:
        data = read_json(request)
    except W3CError as exc:
        return error(400, exc.message, exc.field)
    note = data.get("note") if isinstance(data, dict) else None
    if not isinstance(note, str) or len(note) > 100_000:
        return error(400, 'Send {"note": "..."} of at most 100,000 characters.', "note")
    return JsonResponse({"html": str(render_markdown(note))})
