"""The W3C Web Annotation API. The reading page uses it; so can scripts (with a token).

It speaks the W3C Web Annotation Protocol: ``/api/annotations/`` is the Annotation Container
and each annotation its own resource. Every answer is JSON: W3C JSON-LD for annotations,
collections and pages; ``{"error": ..., "field": ...}`` for a refusal, never an HTML page or a
redirect to the login form. (OPTIONS answers with headers alone, and DELETE with 204.)
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid as uuid_module
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import RequestDataTooBig
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags, parse_header_parameters
from django.views.decorators.csrf import csrf_exempt
from taggit.models import Tag

from accounts.decorators import accepts_api_token
from annotations.models import (
    UUID_ONLY_RE,
    AnchorError,
    Annotation,
    AnnotationGone,
    Citation,
    CitationError,
    Code,
    Comment,
    CommentError,
    DeletedAnnotation,
    RestoreRefused,
    StaleAnnotation,
    TaggedAnnotation,
    tags_and_citations,
)
from annotations.revision_cache import revision_cache, revision_cache_key
from annotations.w3c import (
    ANNO_CONTEXT,
    MAX_NOTE,
    MEDIA_TYPE,
    AnnotationValues,
    ListPage,
    ParsedAnnotation,
    ParsedComment,
    W3CError,
    annotation_collection,
    annotation_to_jsonld,
    collection_page,
    comment_to_jsonld,
    is_comment,
    parse_annotation,
    parse_comment,
    source_uuid_from_ref,
)
from archive.divisions import Divisions
from archive.forms import capture_url, too_many_waiting
from archive.models import Capture, Collection, Source

PAGE_SIZE = 100
# The most annotations a page holds, whatever ?page_size= asks (a larger request gets this
# many): a page is built in memory, and 1,000 W3C annotations are about 1 MB of JSON.
MAX_PAGE_SIZE = 1000
# What asks for a page rather than the container (protocol 4.3).
PAGE_PARAMETERS = ("page", "after", "before")
# The list's order; the primary key breaks ties, so that each annotation has one place in it
# (POSITION), from which the next page reads on.
LIST_ORDER = ("source_id", "start", "-end", "pk")
REVERSED_ORDER = ("-source_id", "-start", "end", "-pk")
POSITION = ("source_id", "start", "end", "pk")
# An annotation's W3C document as a row of plain values (AnnotationValues without the tags
# and citations), never the source's text layer or metadata.
ROW_FIELDS = (
    "pk",
    "uuid",
    "source__uuid",
    "start",
    "end",
    "exact",
    "prefix",
    "suffix",
    "note",
    "visibility",
    "created",
    "modified",
    "canonical",
    "via",
    "author__username",
    "author__first_name",
    "author__last_name",
    "source_id",  # for a PDF's pages
)
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_TAG_SUGGESTIONS = 20
LDP_RESOURCE = '<http://www.w3.org/ns/ldp#Resource>; rel="type"'
LDP_CONTAINER = (
    '<http://www.w3.org/ns/ldp#BasicContainer>; rel="type", '
    '<http://www.w3.org/TR/annotation-protocol/>; rel="http://www.w3.org/ns/ldp#constrainedBy"'
)
# Container representation preferences (protocol 4.2), sent as
# Prefer: return=representation; include="<IRI> <IRI>" (RFC 7240, LDP 7.2).
PREFER_MINIMAL_CONTAINER = "http://www.w3.org/ns/ldp#PreferMinimalContainer"
PREFER_CONTAINED_IRIS = "http://www.w3.org/ns/oa#PreferContainedIRIs"
PREFER_CONTAINED_DESCRIPTIONS = "http://www.w3.org/ns/oa#PreferContainedDescriptions"


# --- Plumbing ------------------------------------------------------------------------------


def error(status: int, message: str, field: str = "") -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


def ld_response(
    data: dict[str, Any], status: int = 200, *, etag: str | None = None, link: str = ""
) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False), status=status, content_type=MEDIA_TYPE
    )
    if etag:
        response["ETag"] = etag
    if link:
        response["Link"] = link
    # The same URL answers differently for different users.
    patch_vary_headers(response, ("Cookie", "Authorization"))
    return response


def content_etag(content: bytes) -> str:
    """A strong ETag for a representation with no version of its own (a container)."""
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def json_ld_acceptable(accept: str | None) -> bool:
    """Whether an Accept header admits the one representation served: JSON-LD in the Web
    Annotation profile (JSON-LD being JSON, ``application/json`` admits it too).

    The most specific media range that matches decides, with its q (RFC 9110 12.5.1):
    ``*/*``, then ``application/*``, then the type, then ``application/ld+json`` with a
    profile list that names anno.jsonld. A profile list without it does not match.
    """
    if not accept or not accept.strip():
        return True
    best_specificity, best_quality = -1, 0.0
    for media_range in accept.split(","):
        if not media_range.strip():
            continue
        full_type, params = parse_header_parameters(media_range)
        main, _, sub = full_type.lower().partition("/")
        if (main, sub) == ("*", "*"):
            specificity = 0
        elif main != "application" or sub not in ("*", "json", "ld+json"):
            continue
        elif sub == "*":
            specificity = 1
        elif sub == "ld+json" and "profile" in params:
            if ANNO_CONTEXT not in params["profile"].split():
                continue
            specificity = 3
        else:
            specificity = 2
        try:
            quality = float(params.get("q", 1))
        except ValueError:
            quality = 1.0
        if specificity > best_specificity:
            best_specificity, best_quality = specificity, quality
        elif specificity == best_specificity:
            best_quality = max(best_quality, quality)
    return best_quality > 0


def serves_json_ld_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """406 when the Accept header rules out JSON-LD, the only representation Scholion serves
    (protocol 4: JSON-LD is required; Turtle is only recommended, and would need an RDF
    library at run time). Every answer then varies on Accept, for caches."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # OPTIONS and DELETE answer with no representation to negotiate.
        if request.method in ("OPTIONS", "DELETE") or json_ld_acceptable(
            request.headers.get("Accept")
        ):
            response = view(request, *args, **kwargs)
        else:
            response = error(
                406,
                f"This API answers only in JSON-LD ({MEDIA_TYPE}), which the Accept header "
                "rules out.",
            )
        patch_vary_headers(response, ("Accept",))
        return response

    return wrapper


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    return re.findall(rf'(?:[^{separator}"]|"[^"]*")+', text)


def requested_inclusions(prefer: str) -> set[str] | None:
    """The IRIs of ``Prefer: return=representation; include="…"`` (RFC 7240, LDP 7.2), or
    None when the client expressed no such preference."""
    for preference in _split_outside_quotes(prefer, ","):
        name, *parameters = (p.strip() for p in _split_outside_quotes(preference, ";"))
        token, _, value = name.partition("=")
        if token.strip().lower() != "return" or value.strip().strip('"') != "representation":
            continue
        included: set[str] = set()
        for parameter in parameters:
            key, _, iris = parameter.partition("=")
            if key.strip().lower() == "include":
                included.update(iris.strip().strip('"').split())
        return included
    return None


def allow(*methods: str) -> Callable:
    """Like require_http_methods, with a JSON 405 (and the Allow header) for the rest."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response: HttpResponse
            if request.method not in methods:
                response = error(
                    405, f"{request.method} is not allowed here; use {', '.join(methods)}."
                )
            else:
                response = view(request, *args, **kwargs)
            response["Allow"] = ", ".join(methods)
            return response

        return wrapper

    return decorator


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _no_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    """Enforce CSRF for cookie sessions only, after authentication, as DRF does.

    The views are csrf_exempt so an anonymous or token request gets a JSON 401/403 rather than
    Django's HTML CSRF page; token requests are marked exempt by the token middleware.
    """
    check = CsrfViewMiddleware(_no_response)
    check.process_request(request)
    # Any view not marked csrf_exempt: the check is wanted whichever view this is.
    refused = check.process_view(request, _no_response, (), {})
    if refused is not None:
        return error(
            403, "CSRF check failed: send the X-CSRFToken header with the csrftoken cookie."
        )
    return None


def read_json(request: HttpRequest) -> Any:
    """The request body as JSON that the database can store, or W3CError."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    try:
        if declared > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
            raise W3CError("", f"The request body is larger than {MAX_BODY_BYTES:,} bytes.")
        data = json.loads(request.body.decode("utf-8"))
        _check_strings(data)
    except RequestDataTooBig:
        raise W3CError("", f"The request body is larger than {MAX_BODY_BYTES:,} bytes.") from None
    except RecursionError:
        raise W3CError("", "The JSON is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, W3CError):
            raise
        raise W3CError("", "The request body is not valid JSON (UTF-8).") from None
    return data


def _check_strings(value: Any) -> None:
    # JSON may spell NUL and lone surrogates (\u0000, \ud800); neither can be stored as text.
    if isinstance(value, str):
        if "\x00" in value:
            raise W3CError("", "Text cannot contain the NUL character (\\u0000).")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise W3CError("", "Text contains a lone surrogate (invalid Unicode).") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def if_match_refusal(request: HttpRequest, annotation: Annotation) -> HttpResponse | None:
    """412 unless If-Match (when sent) names the current version.

    Compared weakly: a compressing proxy may turn the ETag into W/"…" on its way out.
    """
    header = request.headers.get("If-Match")
    if not header:
        return None
    tags = [t.removeprefix("W/") for t in parse_etags(header)]
    if "*" in tags or annotation.etag in tags:
        return None
    return stale()


def citation_error(exc: CitationError) -> JsonResponse:
    return error(
        400, f"Citation {exc.index + 1}: {exc.message}", f"citations[{exc.index}].{exc.field}"
    )


def not_found() -> JsonResponse:
    return error(404, "No annotation you can see has that id.")


def stale() -> JsonResponse:
    return error(
        412,
        "The annotation was changed since you loaded it (perhaps in another tab). "
        "Reload it and apply your change again.",
    )


# --- /api/annotations/ ---------------------------------------------------------------------


@accepts_api_token
@csrf_exempt
@allow("GET", "HEAD", "OPTIONS", "POST")
@serves_json_ld_only
def annotation_collection_view(request: HttpRequest) -> HttpResponse:
    """The Annotation Container (protocol 4), or one of its pages when ``page`` is given."""
    if request.method == "POST":
        return create(request)
    if request.method == "OPTIONS":
        response = HttpResponse()
    else:
        response = read_collection(request)
        if any(name in request.GET for name in PAGE_PARAMETERS):
            # A page is not the container (protocol 4.3): no container type, no preferences.
            return response
    # Every answer of the container says what it is, what it takes and what it varies on.
    response["Link"] = LDP_CONTAINER
    response["Accept-Post"] = MEDIA_TYPE
    patch_vary_headers(response, ("Prefer",))
    return response


def read_collection(request: HttpRequest) -> HttpResponse:
    """GET/HEAD: the collection with its first page (or as the client's Prefer header asks),
    or one of its pages: ``page=first``, ``page=last``, or the pages ``after`` and ``before``
    an annotation that ``next`` and ``prev`` link to. ``iris=1`` lists annotations by IRI, in
    the collection and its pages; ``page_size`` asks for up to MAX_PAGE_SIZE a page.

    Speed device (bench/NOTES.md, issue 28): a list is made once per content revision per
    reader (annotations.revision_cache), under its URL and the Prefer header that shapes it;
    a client reading the same list again before anything changed gets the kept answer.
    """
    key = revision_cache_key(request, "annotations", request.headers.get("Prefer", ""))
    cache = revision_cache()
    kept = cache.get(key) if key else None
    if kept is not None:
        return kept
    response = list_annotations(request)
    if key and response.status_code == 200:
        cache.set(key, response)
    return response


def list_annotations(request: HttpRequest) -> HttpResponse:
    """read_collection's answer, made from the database."""
    annotations = Annotation.objects.visible_to(request.user)
    params = request.GET
    source = None
    if params.get("source"):
        source = source_uuid_from_ref(params["source"])
        if source is None:
            return error(400, "source must be a source UUID or IRI.", "source")
        annotations = annotations.filter(source__uuid=source)
    if params.get("tag"):
        annotations = annotations.filter(
            Exists(
                TaggedAnnotation.objects.filter(
                    content_object=OuterRef("pk"), tag__name__iexact=params["tag"]
                )
            )
        )
    if params.get("author"):
        annotations = annotations.filter(author__username=params["author"])
    size = PAGE_SIZE
    if "page_size" in params:
        try:
            size = min(int(params["page_size"]), MAX_PAGE_SIZE)
        except ValueError:
            size = 0
        if size < 1:
            return error(400, "page_size must be a whole number from 1.", "page_size")
    query = params.copy()
    asked = [name for name in PAGE_PARAMETERS if name in query]
    for name in asked:
        query.pop(name)
    if "page_size" in query:
        query["page_size"] = str(size)
    if len(asked) > 1:
        return error(400, "Ask for one page: page, after or before.", asked[1])
    # The client asks for the container once; its pages carry the answer in ``iris``, so
    # Prefer is read on the container only (protocol 4.3: clients should not send it there).
    included = None if asked else requested_inclusions(request.headers.get("Prefer", ""))
    applied: list[str] = []
    if included is not None:
        if PREFER_MINIMAL_CONTAINER in included:
            applied.append(PREFER_MINIMAL_CONTAINER)
        # The two are exclusive (protocol 4.2): a client asking for both gets the default.
        if PREFER_CONTAINED_IRIS in included and PREFER_CONTAINED_DESCRIPTIONS not in included:
            query["iris"] = "1"
            applied.append(PREFER_CONTAINED_IRIS)
        elif PREFER_CONTAINED_DESCRIPTIONS in included and PREFER_CONTAINED_IRIS not in included:
            query.pop("iris", None)
            applied.append(PREFER_CONTAINED_DESCRIPTIONS)
    iris = query.get("iris") == "1"
    # The IRI of this representation: the filters, the page size and iris=1 when
    # annotations are IRIs, so that each kind of list has an IRI of its own (protocol 4.1).
    collection_id = request.build_absolute_uri(request.path)
    if query:
        collection_id += "?" + query.urlencode()
    joiner = "&" if query else "?"
    page = read_page(
        annotations,
        asked=(asked[0], params[asked[0]]) if asked else ("page", "first"),
        size=size,
        iris=iris,
        viewer=request.user,
        page_iri=lambda name, value: f"{collection_id}{joiner}{name}={value}",
    )
    # A source the user cannot see is a 404, as one that does not exist. Asked only of an
    # empty page (or an unknown cursor): a page that holds an annotation shows its source
    # visible, since visible_to requires it. One query fewer for almost every list.
    if (
        source is not None
        and (isinstance(page, HttpResponse) or not page.items)
        and not Source.objects.visible_to(request.user).filter(uuid=source).exists()
    ):
        return error(404, "No source you can see has that UUID.", "source")
    if isinstance(page, HttpResponse):
        return page
    base = base_url(request)
    if asked:
        response = ld_response(
            collection_page(page, base_url=base, collection_id=collection_id, iris=iris)
        )
    else:
        doc = annotation_collection(
            page,
            container=True,
            minimal=PREFER_MINIMAL_CONTAINER in applied,
            base_url=base,
            collection_id=collection_id,
            iris=iris,
        )
        response = ld_response(doc)
        response["Content-Location"] = collection_id
    if applied:
        response["Preference-Applied"] = f'return=representation; include="{" ".join(applied)}"'
    response["ETag"] = content_etag(response.content)
    return response


def beyond(position: tuple[int, int, int, int], *, after: bool) -> Q:
    """The annotations after (or before) the one at ``position`` (its POSITION values) in
    LIST_ORDER."""
    source_id, start, end, pk = position
    later, earlier = ("gt", "lt") if after else ("lt", "gt")
    return (
        Q(**{f"source_id__{later}": source_id})
        | Q(source_id=source_id, **{f"start__{later}": start})
        | Q(source_id=source_id, start=start, **{f"end__{earlier}": end})
        | Q(source_id=source_id, start=start, end=end, **{f"pk__{later}": pk})
    )


def as_values(rows: list[tuple], viewer: Any) -> Iterator[AnnotationValues]:
    """Rows of ROW_FIELDS as the values of their W3C documents, with their tags, citations
    and (a PDF's) pages."""
    related = tags_and_citations([row[0] for row in rows], viewer)
    pages = {
        pk: Divisions(divisions)
        for pk, divisions in Source.objects.filter(pk__in={row[-1] for row in rows})
        .exclude(divisions={})
        .values_list("pk", "divisions")
    }
    names: dict[tuple[str, str, str], tuple[str, str]] = {}
    for pk, *fields, username, first_name, last_name, source_id in rows:
        author = (username, first_name, last_name)
        if author not in names:
            # The User model's own rules for a name, once per author.
            user = get_user_model()(username=username, first_name=first_name, last_name=last_name)
            names[author] = (user.get_username(), user.get_full_name() or user.get_username())
        tags, citations = related[pk]
        start, end = fields[2], fields[3]
        page = pages[source_id].pdf_fragment(start, end) if source_id in pages else ""
        yield AnnotationValues._make(
            (*fields, *names[author], [t.name for t in tags], citations, page)
        )


def read_page(
    annotations: QuerySet[Annotation],
    *,
    asked: tuple[str, str],
    size: int,
    iris: bool,
    viewer: Any,
    page_iri: Callable[[str, str], str],
) -> ListPage | HttpResponse:
    """The page ``asked`` (a parameter and its value) of ``annotations``, read by position:
    ``after`` and ``before`` name an annotation of the list, found through ``annotations``
    (so only one the viewer can see, and that the filters keep), and the page is the
    annotations that follow or precede it. A page far into the list no longer reads and
    drops every annotation before it, as an OFFSET did (the count behind ``total`` and
    ``startIndex`` still reads the list, as it always has), and an annotation added or
    deleted meanwhile neither repeats nor skips one at the pages' seams."""
    name, value = asked
    anchor = None
    if name in ("after", "before"):
        if UUID_ONLY_RE.match(value):
            anchor = annotations.filter(uuid=value).values_list(*POSITION).first()
        if anchor is None:
            # The same answer for an annotation that is hidden, filtered out, deleted since
            # the link was made, or never was: the list has no such place.
            return error(
                400,
                f"{name} must name an annotation of this list, as the next and prev links "
                "do; start again from the first page.",
                name,
            )
    elif value not in ("first", "last"):
        return error(
            400, "page must be first or last; follow next and prev for the others.", "page"
        )
    rows = annotations.values_list("pk", "uuid") if iris else annotations.values_list(*ROW_FIELDS)
    forward, backward = rows.order_by(*LIST_ORDER), rows.order_by(*REVERSED_ORDER)
    total = following = preceding = None
    if value == "first":
        items = list(forward[: size + 1])
        if len(items) <= size:
            total = len(items)  # all of them: no need to count
    elif name == "after":
        assert anchor is not None
        items = list(forward.filter(beyond(anchor, after=True))[: size + 1])
        counts = annotations.aggregate(
            total=Count("pk"), following=Count("pk", filter=beyond(anchor, after=True))
        )
        total, following = counts["total"], counts["following"]
    elif name == "before":
        assert anchor is not None
        items = list(backward.filter(beyond(anchor, after=False))[: size + 1])
        counts = annotations.aggregate(
            total=Count("pk"), preceding=Count("pk", filter=beyond(anchor, after=False))
        )
        total, preceding = counts["total"], counts["preceding"]
    if total is None:
        total = annotations.count()
    if value == "last":
        # As long as the last page reached through next: pages read back through prev
        # from here end where those read forward do.
        items = list(backward[: (total - 1) % size + 1]) if total else []
        items.reverse()
        start_index = total - len(items)
        has_next, has_prev = False, start_index > 0
    elif name == "before":
        has_prev, has_next = len(items) > size, True
        items = items[:size][::-1]
        start_index = max(0, (preceding or 0) - len(items))
    else:
        has_next, items = len(items) > size, items[:size]
        start_index = total - following if following is not None else 0
        has_prev = start_index > 0
    first_uuid, last_uuid = (str(items[0][1]), str(items[-1][1])) if items else ("", "")
    return ListPage(
        items=[uuid for _, uuid in items] if iris else list(as_values(items, viewer)),
        id=page_iri(name, value),
        start_index=max(0, start_index),
        total=total,
        first=page_iri("page", "first"),
        last=page_iri("page", "last"),
        # An empty page (its neighbours deleted since) links back into the list.
        next=(page_iri("after", last_uuid) if items else page_iri("page", "first"))
        if has_next
        else None,
        prev=(page_iri("before", first_uuid) if items else page_iri("page", "last"))
        if has_prev
        else None,
    )


def create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return error(401, "Log in or send an API token to create annotations.")
    if refused := csrf_refusal(request):
        return refused
    try:
        data = read_json(request)
        if is_comment(data):
            return create_comment(request, parse_comment(data))
        parsed = parse_annotation(data, base_url=base_url(request))
    except W3CError as exc:
        return error(400, exc.message, exc.field)
    uuid = source_uuid_from_ref(parsed["source"] or "")
    if uuid is None:
        return error(
            400,
            "target.source must be a source's IRI (…/sources/<uuid>/) or UUID.",
            "target.source",
        )
    # The text layer is needed to anchor; the blocks (paragraph structure) are not.
    source = Source.objects.visible_to(request.user).defer("blocks").filter(uuid=uuid).first()
    if source is None:
        return error(404, "No source you can see has that IRI.", "target.source")
    collection = Annotation.collection_for(request.user, source)
    if not source.has_text_layer:
        return error(400, source.no_text_layer_reason, "target.source")
    if collection is None and not Annotation.can_annotate(request.user, source):
        return error(403, "Your role does not allow annotating this source.")
    try:
        citations = Citation.build_all(parsed["citations"], user=request.user)
    except CitationError as exc:
        return citation_error(exc)
    try:
        annotation = Annotation.create_anchored(
            author=request.user,
            source=source,
            collection=collection,
            start=parsed["start"],
            end=parsed["end"],
            exact=parsed["exact"],
            prefix=parsed["prefix"],
            suffix=parsed["suffix"],
            note=parsed["note"],
            tags=parsed["tags"],
            visibility=parsed["visibility"],
            citations=citations,
            canonical=parsed["canonical"],
            via=via_on_creation(parsed),
            # No read-back: every cited target was looked up through visible_to(request.user),
            # so what was written is what with_related(request.user) would load.
            keep_related=True,
        )
    except AnchorError as exc:
        return error(400, exc.message, exc.field)
    doc = annotation_to_jsonld(annotation, base_url(request))
    response = ld_response(doc, status=201, etag=annotation.etag, link=LDP_RESOURCE)
    response["Location"] = doc["id"]
    return response


def via_on_creation(parsed: ParsedAnnotation) -> list[str] | None:
    """The via links a new annotation keeps: those sent, and the IRI the client had given it
    in ``id`` (protocol 5.1: the server assigns its own id and copies the old one to via)."""
    via = list(parsed["via"] or [])
    if parsed["sent_id"] and parsed["sent_id"] not in via:
        via.append(parsed["sent_id"])
    return via or None


def provenance_conflict(parsed: ParsedAnnotation, annotation: Annotation) -> HttpResponse | None:
    """409 for a PUT that would change canonical or via: they are kept as they were created
    (protocol 5.3: servers should refuse to change them). Leaving them out keeps them."""
    for field, sent, kept in (
        ("canonical", parsed["canonical"], annotation.canonical or None),
        ("via", parsed["via"], annotation.via or None),
    ):
        if sent is not None and sent != kept:
            return error(
                409,
                f"{field} is kept as it was when the annotation was created: send it unchanged "
                "or leave it out.",
                field,
            )
    return None


# --- /api/annotations/<uuid> ---------------------------------------------------------------


@accepts_api_token
@csrf_exempt
@allow("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
@serves_json_ld_only
def annotation_detail(request: HttpRequest, uuid) -> HttpResponse:
    writing = request.method in ("PUT", "DELETE")
    if writing:
        # Before the lookup: the same 401 whether or not the annotation exists.
        if not request.user.is_authenticated:
            return error(401, "Log in or send an API token to change annotations.")
        if refused := csrf_refusal(request):
            return refused
    found = Annotation.objects.visible_to(request.user).filter(uuid=uuid)
    if request.method == "OPTIONS":
        # What may be done with it (the Allow header), for one the caller can see.
        if not found.exists() and not Comment.objects.visible_to(request.user).filter(uuid=uuid):
            return not_found()
        response = HttpResponse()
        response["Link"] = LDP_RESOURCE
        patch_vary_headers(response, ("Cookie", "Authorization"))
        return response
    if writing:  # a write reads the tags and citations again, under its lock
        found = found.select_related("source").defer("source__text", "source__blocks")
    else:
        found = found.with_related(request.user)
    annotation = found.first()
    if annotation is None:
        return comment_detail(request, uuid, writing)
    if not writing:
        return ld_response(
            annotation_to_jsonld(annotation, base_url(request)),
            etag=annotation.etag,
            link=LDP_RESOURCE,
        )
    if annotation.author_id != request.user.pk:
        return error(403, "Only the author can change or delete an annotation.")
    if refused := if_match_refusal(request, annotation):
        return refused
    expected = annotation.version if request.headers.get("If-Match") else None
    if request.method == "DELETE":
        try:
            annotation.delete_if_current(expected)
        except AnnotationGone:
            return not_found()
        except StaleAnnotation:
            return stale()
        return HttpResponse(status=204)
    return replace(request, annotation, expected)


@accepts_api_token
@csrf_exempt
@allow("POST")
@serves_json_ld_only
def annotation_restore(request: HttpRequest, uuid) -> HttpResponse:
    """Undo a DELETE: write the annotation back, the same IRI and history, for a few minutes
    after its author deleted it. Not part of the W3C protocol, whose DELETE stays a delete:
    until this is called, the annotation answers 404 like any other deleted one."""
    if not request.user.is_authenticated:
        return error(401, "Log in or send an API token to restore annotations.")
    if refused := csrf_refusal(request):
        return refused
    # Only its author's own deletes are found: anyone else learns nothing, not even that it was.
    deleted = DeletedAnnotation.objects.filter(uuid=uuid, author=request.user).first()
    if deleted is None:
        return error(404, "No annotation you deleted has that id.")
    try:
        deleted.restore(request.user)
    except RestoreRefused as exc:
        return error(409, str(exc))
    restored = Annotation.objects.with_related(request.user).get(uuid=uuid)
    doc = annotation_to_jsonld(restored, base_url(request))
    response = ld_response(doc, status=201, etag=restored.etag, link=LDP_RESOURCE)
    response["Location"] = doc["id"]
    return response


def replace(request: HttpRequest, annotation: Annotation, expected: int | None) -> HttpResponse:
    """PUT: a new note, tags and visibility; the anchor never changes."""
    try:
        parsed = parse_annotation(
            read_json(request), require_target=False, base_url=base_url(request)
        )
    except W3CError as exc:
        return error(400, exc.message, exc.field)
    if refused := provenance_conflict(parsed, annotation):
        return refused
    if parsed["has_target"]:
        moved = [
            name
            for name, changed in (
                (
                    "target.source",
                    source_uuid_from_ref(parsed["source"] or "") != str(annotation.source.uuid),
                ),
                (
                    "start/end",
                    parsed["start"] is not None
                    and (parsed["start"], parsed["end"]) != (annotation.start, annotation.end),
                ),
                ("exact", parsed["exact"] is not None and parsed["exact"] != annotation.exact),
            )
            if changed
        ]
        if moved:
            return error(
                400,
                f"An annotation's target cannot change ({', '.join(moved)} differ): only its "
                "note, tags and visibility can be edited. To annotate another passage, create "
                "a new annotation.",
                "target",
            )
    try:
        citations = Citation.build_all(parsed["citations"], user=request.user, citing=annotation)
        annotation.update_content(
            editor=request.user,
            note=parsed["note"],
            tags=parsed["tags"],
            visibility=parsed["visibility"] or annotation.visibility,
            expected_version=expected,
            citations=citations,
        )
    except CitationError as exc:
        return citation_error(exc)
    except AnnotationGone:
        return not_found()
    except StaleAnnotation:
        return stale()
    # A DELETE without If-Match may commit between the edit and this read: the edit went
    # with the annotation, and the client learns what it would learn on its next request.
    edited = Annotation.objects.with_related(request.user).filter(pk=annotation.pk).first()
    if edited is None:
        return not_found()
    return ld_response(
        annotation_to_jsonld(edited, base_url(request)), etag=edited.etag, link=LDP_RESOURCE
    )


# --- Replies and notes on a whole source (annotations.models.Comment) ----------------------


def create_comment(request: HttpRequest, parsed: ParsedComment) -> HttpResponse:
    """POST of a reply (target: the annotation answered) or of a note on a whole source
    (target: the source). What the caller cannot see is a 404 whether or not it exists;
    what they see but may not answer or annotate, a 403."""
    try:
        if parsed["reply_to"] is not None:
            answered: Annotation | Comment | None = (
                Annotation.objects.visible_to(request.user)
                .select_related("collection")
                .filter(uuid=parsed["reply_to"])
                .first()
            )
            if answered is None:
                answered = (
                    Comment.objects.visible_to(request.user)
                    .select_related("collection", "reply_to_annotation__collection")
                    .select_related("reply_to_note__collection")
                    .filter(uuid=parsed["reply_to"])
                    .first()
                )
            if answered is None:
                return error(404, "No annotation you can see has that id.", "target")
            comment = Comment.reply(author=request.user, to=answered, note=parsed["note"])
        else:
            source = (
                Source.objects.visible_to(request.user)
                .defer("text", "blocks")
                .filter(uuid=parsed["source"])
                .first()
            )
            if source is None:
                return error(404, "No source you can see has that IRI.", "target")
            comment = Comment.note_on(
                author=request.user,
                source=source,
                note=parsed["note"],
                visibility=parsed["visibility"],
            )
    except CommentError as exc:
        return error(exc.status, exc.message, "target" if exc.status == 403 else "body")
    comment = loaded_comments().get(pk=comment.pk)
    doc = comment_to_jsonld(comment, base_url(request))
    response = ld_response(doc, status=201, etag=comment.etag, link=LDP_RESOURCE)
    response["Location"] = doc["id"]
    return response


def loaded_comments() -> QuerySet[Comment]:
    """What a comment's W3C document reads, in one query."""
    return Comment.objects.select_related(
        "author", "source", "reply_to_annotation", "reply_to_note"
    ).defer(
        "source__text",
        "source__blocks",
        "reply_to_annotation__exact",
        "reply_to_annotation__note",
        "reply_to_note__note",
    )


def comment_detail(request: HttpRequest, uuid, writing: bool) -> HttpResponse:
    """GET, PUT or DELETE of a reply or a note on a whole source (an id that is not a
    passage annotation's)."""
    comment = (
        loaded_comments()
        .filter(pk__in=Comment.objects.visible_to(request.user).filter(uuid=uuid).values("pk"))
        .first()
    )
    if comment is None:
        return not_found()
    if not writing:
        return ld_response(
            comment_to_jsonld(comment, base_url(request)), etag=comment.etag, link=LDP_RESOURCE
        )
    if comment.author_id != request.user.pk:
        return error(403, "Only the author can change or delete a reply or note.")
    header = request.headers.get("If-Match")
    if header:
        tags = [t.removeprefix("W/") for t in parse_etags(header)]
        if "*" not in tags and comment.etag not in tags:
            return stale()
    if request.method == "DELETE":
        comment.delete()  # and its replies, if it is a note
        return HttpResponse(status=204)
    try:
        parsed = parse_comment(read_json(request), require_target=False)
    except W3CError as exc:
        return error(400, exc.message, exc.field)
    answers = comment.reply_to_annotation or comment.reply_to_note
    sent_target = parsed["reply_to"] or parsed["source"]
    if sent_target is not None and sent_target != str(
        answers.uuid if answers else comment.source.uuid
    ):
        return error(400, "A reply's or note's target cannot change.", "target")
    try:
        comment.change(note=parsed["note"], visibility=parsed["visibility"])
    except CommentError as exc:
        return error(exc.status, exc.message, "body")
    return ld_response(
        comment_to_jsonld(comment, base_url(request)), etag=comment.etag, link=LDP_RESOURCE
    )


# --- Helpers for the reading page's editor ------------------------------------------------


@accepts_api_token
@allow("GET", "HEAD")
def tag_suggestions(request: HttpRequest) -> JsonResponse:
    """Tag names for the editor, drawn only from annotations the user can see.

    Tags used only where the user cannot see must not leak their names. Names that start with
    the query come first, then names that contain it. With ``source`` (a UUID), the codes of
    the collection a new annotation there would join come before all others, each in
    ``codes`` with its description and colour.
    """
    query = request.GET.get("q", "").strip()[:100]

    def ranked(tags: QuerySet, name: str = "name") -> QuerySet:
        if query:
            return tags.filter(**{f"{name}__icontains": query}).annotate(
                rank=Case(
                    When(**{f"{name}__istartswith": query}, then=Value(0)),
                    default=Value(1),
                    output_field=IntegerField(),
                )
            )
        return tags.annotate(rank=Value(0, output_field=IntegerField()))

    codes: list[dict] = []
    collection = _codebook_for(request)
    if collection is not None:
        found = ranked(Code.objects.of(collection), "tag__name").order_by("rank", "tag__name")
        codes = [
            {"name": c.tag.name, "description": c.description, "colour": c.colour}
            for c in found[:MAX_TAG_SUGGESTIONS]
        ]
    visible = Annotation.objects.visible_to(request.user)
    tags = Tag.objects.filter(
        Exists(TaggedAnnotation.objects.filter(tag=OuterRef("pk"), content_object__in=visible))
    )
    if codes:
        tags = tags.exclude(name__in=[c["name"] for c in codes])
    room = MAX_TAG_SUGGESTIONS - len(codes)
    names = list(ranked(tags).order_by("rank", "name").values_list("name", flat=True)[:room])
    body: dict[str, list] = {"tags": [c["name"] for c in codes] + names}
    if "source" in request.GET:  # the editor's question, which shows what codes mean
        body["codes"] = codes
    return JsonResponse(body)


def _codebook_for(request: HttpRequest) -> Collection | None:
    """The collection a new annotation on the ``source`` asked about would join, if any."""
    try:
        source_uuid = uuid_module.UUID(request.GET.get("source", ""))
    except ValueError:
        return None
    source = Source.objects.visible_to(request.user).filter(uuid=source_uuid).only("pk").first()
    if source is None or not request.user.is_authenticated:
        return None
    return Annotation.collection_for(request.user, source)


MAX_SOURCE_RESULTS = 20


@accepts_api_token
@csrf_exempt
@allow("GET", "HEAD", "POST")
def sources(request: HttpRequest) -> HttpResponse:
    """GET: sources to cite (the editor's "Cite" box). POST: capture a web page by its URL."""
    if request.method == "POST":
        return capture_create(request)
    return source_search(request)


def source_search(request: HttpRequest) -> JsonResponse:
    """Sources to cite, for the editor's "Cite" box: visible ones whose title, creators or
    citation key contain the query."""
    query = request.GET.get("q", "").strip()[:200]
    sources = Source.objects.visible_to(request.user).for_listing()
    if UUID_ONLY_RE.match(query):
        sources = sources.filter(uuid=query)
    elif query:
        sources = sources.filter(
            Q(title__icontains=query)
            | Q(citation_key__icontains=query)
            | Q(creators__icontains=query)
        )
    rows = sources.order_by("title", "pk").values_list(
        "uuid", "title", "creators", "date_published", "citation_key"
    )[:MAX_SOURCE_RESULTS]
    return JsonResponse(
        {
            "sources": [
                {
                    "uuid": str(uuid),
                    "title": title,
                    "creators": creators,
                    "year": date_published[:4],
                    "citation_key": key,
                    "url": reverse("annotations:source_detail", args=[uuid]),
                }
                for uuid, title, creators, date_published, key in rows
            ]
        }
    )


def capture_create(request: HttpRequest) -> HttpResponse:
    """Queue the capture of ``{"url": ..., "collection": "<slug>", "whole_page": false}``:
    202 Accepted, with the capture's status to poll at ``Location``."""
    if not request.user.is_authenticated:
        return error(401, "Log in or send an API token to archive sources.")
    if refused := csrf_refusal(request):
        return refused
    try:
        data = read_json(request)
    except W3CError as exc:
        return error(400, exc.message, exc.field)
    if not isinstance(data, dict):
        return error(400, 'Send a JSON object: {"url": "https://…"}.')
    url = capture_url(data["url"]) if isinstance(data.get("url"), str) else None
    if url is None:
        return error(400, "url must be a web address (http or https).", "url")
    whole_page = data.get("whole_page", False)
    if not isinstance(whole_page, bool):
        return error(400, "whole_page must be true or false.", "whole_page")
    collection = None
    if data.get("collection") is not None:
        slug = data["collection"]
        # The same answer whether the collection is hidden, missing or not open to this person.
        collection = (
            Collection.objects.writable_by(request.user).filter(slug=slug).first()
            if isinstance(slug, str)
            else None
        )
        if collection is None:
            return error(404, "No collection you may add sources to has that slug.", "collection")
    if not Capture.room_for(request.user):
        return error(429, too_many_waiting(0))
    capture = Capture.submit(request.user, url, collection=collection, whole_page=whole_page)
    response = capture_response(request, capture, status=202)
    response["Location"] = response["Content-Location"]
    return response


def capture_response(request: HttpRequest, capture: Capture, status: int = 200) -> JsonResponse:
    body = capture.status()
    body["id"] = request.build_absolute_uri(reverse("annotations:api_capture", args=[capture.uuid]))
    body["page"] = request.build_absolute_uri(capture.get_absolute_url())
    if body["source"] is not None:
        body["source"]["url"] = request.build_absolute_uri(body["source"]["url"])
    response = JsonResponse(body, status=status)
    response["Content-Location"] = body["id"]
    if not capture.finished:
        response["Retry-After"] = "2"
    response["Cache-Control"] = "no-store"
    return response


@accepts_api_token
@allow("GET", "HEAD")
def capture_detail(request: HttpRequest, uuid) -> HttpResponse:
    """A capture's state, for the script that asked for it: the source's URL once done."""
    if not request.user.is_authenticated:
        return error(401, "Log in or send an API token.")
    capture = Capture.objects.visible_to(request.user).select_related("source").filter(uuid=uuid)
    found = capture.first()
    if found is None:
        return error(404, "No capture of yours has that id.")
    return capture_response(request, found)


@accepts_api_token
@csrf_exempt
@allow("POST")
def note_preview(request: HttpRequest) -> HttpResponse:
    """The note editor's preview: exactly the server's sanitised Markdown rendering."""
    from annotations.citekeys import keys_in, resolve_keys
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
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        return error(400, f'Send {{"note": "..."}} of at most {MAX_NOTE:,} characters.', "note")
    keys = resolve_keys(keys_in(note), request.user)
    unresolved = [key for key in keys_in(note) if key not in keys]
    return JsonResponse({"html": str(render_markdown(note, keys)), "unresolved": unresolved})
