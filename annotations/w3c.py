"""Annotations as W3C Web Annotation JSON-LD, and back.

One place decides the representation: the API, exports and imports all go through it.
Offsets in selectors are Unicode code points of the source's text layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, cast
from urllib.parse import quote, urlsplit

from django.urls import get_script_prefix, reverse

if TYPE_CHECKING:
    from annotations.models import Annotation, CitationSpec, Comment
    from archive.models import Source

ANNO_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
LDP_CONTEXT = "http://www.w3.org/ns/ldp.jsonld"
SCHEMA = "http://schema.org/"
# Visibility is Scholion's one extension term. The W3C assertions accept an @context that is
# a list containing the anno.jsonld IRI, so a local term definition keeps every document a
# valid Annotation while ``visibility`` stays a plain key for clients (the reading page uses
# it as is) and still expands to an IRI of its own for JSON-LD processors.
VISIBILITY_IRI = "urn:x-scholion:visibility"
# A citation's reference type (CSL's name, as the editor and citation styles use it) written
# as the schema.org class it is: ``"type": "book"`` expands to schema:Book.
REFERENCE_TYPE_CLASSES = {
    "webpage": SCHEMA + "WebPage",
    "article-journal": SCHEMA + "ScholarlyArticle",
    "article-newspaper": SCHEMA + "NewsArticle",
    "report": SCHEMA + "Report",
    "book": SCHEMA + "Book",
    "document": SCHEMA + "CreativeWork",
}
# A citation is a SpecificResource body with purpose "linking"; its locator and comment are
# Scholion terms. A reference outside the archive carries a bibliographic description, the
# work the body cites (schema:citation), in ordinary terms that JSON-LD 1.0 and 1.1 processors
# both read. (``reference`` was once typed @json, which JSON-LD 1.0 rejects; the document's
# shape did not change with its context, so packages written before import as they did.)
SCHOLION_TERMS: dict[str, Any] = {
    "visibility": VISIBILITY_IRI,
    "locator": "urn:x-scholion:locator",
    "locatorLabel": "urn:x-scholion:locatorLabel",
    "comment": "urn:x-scholion:comment",
    "reference": SCHEMA + "citation",
    "title": SCHEMA + "name",
    "creators": {"@id": SCHEMA + "author", "@container": "@list"},
    "publisher": SCHEMA + "publisher",
    "datePublished": SCHEMA + "datePublished",
    # Neither schema.org nor Dublin Core has a term for when a web page was consulted.
    "dateAccessed": {
        "@id": "urn:x-scholion:dateAccessed",
        "@type": "http://www.w3.org/2001/XMLSchema#date",
    },
    "url": {"@id": SCHEMA + "url", "@type": "@id"},
    # schema.org has no DOI property; the Bibliographic Ontology's is the one in use.
    "doi": "http://purl.org/ontology/bibo/doi",
    **REFERENCE_TYPE_CLASSES,
}
CONTEXT: list[Any] = [ANNO_CONTEXT, SCHOLION_TERMS]
# The API's container is also an LDP Basic Container (protocol section 4.1), so its own
# document adds the LDP context, as the protocol's examples do.
CONTAINER_CONTEXT: list[Any] = [ANNO_CONTEXT, LDP_CONTEXT, SCHOLION_TERMS]
MEDIA_TYPE = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
MAX_NOTE = 100_000
MAX_TAGS = 100
MAX_TAG_LENGTH = 100


def tag_name_error(tag: str) -> str | None:
    """Why ``tag`` (stripped) cannot be a tag's name, or None: the API and the admin agree."""
    if not tag:
        return "A tag cannot be empty."
    if not any(c.isalnum() for c in tag):
        # Its slug, and so the address of its page, would be empty.
        return f"A tag needs a letter or a digit: “{tag}” has none."
    if len(tag) > MAX_TAG_LENGTH:
        return f"A tag can be at most {MAX_TAG_LENGTH} characters."
    # Commas and quotes are taggit's separators in the admin's tag field.
    if "," in tag or '"' in tag:
        return "A tag cannot contain commas or double quotes."
    return None


VISIBILITIES = ("private", "collection", "public")
UUID_RE = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.I)


class W3CError(ValueError):
    """A client document that is not an annotation Scholion accepts; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- Out: model -> JSON-LD ----------------------------------------------------------------


def iso_z(moment: datetime) -> str:
    """UTC written with Z, as the model requires (section 3.3.1)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SAMPLE_UUID = "00000000-0000-0000-0000-000000000000"
_route_parts: dict[tuple[str, str], tuple[str, str]] = {}


def _uuid_route(name: str, uuid: object) -> str:
    """reverse(name, args=[uuid]), with the route reversed once per script prefix: reverse()
    costs more than the rest of an annotation, which an export of 100,000 notices. (Scholion
    has one URLconf; a per-request ``request.urlconf`` would need it in the key.)"""
    key = (name, get_script_prefix())
    parts = _route_parts.get(key)
    if parts is None:
        before, _, after = reverse(name, args=[_SAMPLE_UUID]).partition(_SAMPLE_UUID)
        parts = _route_parts[key] = (before, after)
    return f"{parts[0]}{uuid}{parts[1]}"


def source_iri(source: Source, base_url: str) -> str:
    """The target of an annotation: the source's reading page."""
    return base_url + _uuid_route("annotations:source_detail", source.uuid)


def annotation_iri(annotation: Annotation, base_url: str) -> str:
    return base_url + _uuid_route("annotations:api_detail", annotation.uuid)


def safe_iri(value: str) -> str:
    """Percent-encode what an IRI may not carry raw (spaces, quotes, braces, stray %)."""
    value = quote(value, safe=":/?#[]@!$&'()*+,;=%~")
    return re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", value)


def citation_body(citation: Any, base_url: str) -> dict[str, Any] | None:
    """A citation as a SpecificResource body with purpose "linking" (None: nothing to link).

    A cited source the viewer may not see keeps its (opaque) IRI but loses its selectors,
    so no quote of it leaks (see ``CitationQuerySet.for_display``).
    """
    body: dict[str, Any] = {"type": "SpecificResource", "purpose": "linking"}
    kind = citation.kind
    if kind == "source":
        body["source"] = source_iri(citation.source, base_url)
        if citation.start is not None and getattr(citation, "source_visible", True):
            body["selector"] = [
                {"type": "TextPositionSelector", "start": citation.start, "end": citation.end},
                {"type": "TextQuoteSelector", "exact": citation.exact},
            ]
    elif kind == "annotation":
        if citation.cited_annotation is None:
            return None
        body["source"] = annotation_iri(citation.cited_annotation, base_url)
    else:
        body["source"] = safe_iri(citation.external_href)
        reference = {
            key: value
            for key, value in (
                ("type", citation.reference_type),
                ("title", citation.title),
                ("creators", citation.creators),
                ("publisher", citation.publisher),
                ("datePublished", citation.date_published),
                (
                    "dateAccessed",
                    citation.date_accessed.isoformat() if citation.date_accessed else "",
                ),
                ("url", citation.url),
                ("doi", citation.doi),
            )
            if value
        }
        body["reference"] = reference
    if citation.shown_locator:
        body["locator"] = citation.locator
        body["locatorLabel"] = citation.locator_label
    if citation.comment:
        body["comment"] = citation.comment
    return body


# A PDF's page, as RFC 3778 names it in a fragment ("page=12": physical pages from 1).
RFC_3778 = "http://tools.ietf.org/rfc/rfc3778"


def page_selector(fragment: str) -> list[dict[str, str]]:
    """The page a passage of a PDF starts on (``Divisions.pdf_fragment``), as a
    FragmentSelector (none for other sources): a PDF viewer opens the original there, where
    code points mean nothing."""
    if not fragment:
        return []
    return [{"type": "FragmentSelector", "conformsTo": RFC_3778, "value": fragment}]


def motivation(note: str, tags: Sequence[str]) -> str:
    if note:
        return "commenting"
    if tags:
        return "tagging"
    return "highlighting"


class AnnotationValues(NamedTuple):
    """What an annotation's W3C document is made of, as plain values: taken from a loaded
    Annotation (``annotation_to_jsonld``) or straight from a query's rows (the API's list,
    where building model instances cost more than writing the documents, bench/NOTES.md)."""

    uuid: object
    source_uuid: object
    start: int
    end: int
    exact: str
    prefix: str
    suffix: str
    note: str
    visibility: str
    created: datetime
    modified: datetime
    canonical: str | None
    via: list[str] | None
    nickname: str  # the author's
    name: str
    tags: Sequence[str]
    citations: Iterable[Any]  # Citation, flagged by CitationQuerySet.for_display
    page: str = ""  # a PDF passage's page as an RFC 3778 fragment ("page=12"), else ""


def annotation_to_jsonld(
    annotation: Annotation, base_url: str, *, with_context: bool = True
) -> dict[str, Any]:
    """The W3C representation.

    ``base_url`` is scheme and host without a trailing slash (``https://scholion.example``).
    Expects author, source and tags loaded (``Annotation.objects.with_related()``), or one
    query per call for each. Items inside a page leave out the @context (``with_context``).
    """
    return values_to_jsonld(values_of(annotation), base_url, with_context=with_context)


def values_of(annotation: Annotation) -> AnnotationValues:
    author = annotation.author
    return AnnotationValues(
        uuid=annotation.uuid,
        source_uuid=annotation.source.uuid,
        start=annotation.start,
        end=annotation.end,
        exact=annotation.exact,
        prefix=annotation.prefix,
        suffix=annotation.suffix,
        note=annotation.note,
        visibility=annotation.visibility,
        created=annotation.created,
        modified=annotation.modified,
        canonical=annotation.canonical,
        via=annotation.via,
        nickname=author.get_username(),
        name=author.get_full_name() or author.get_username(),
        tags=[t.name for t in annotation.tags.all()],
        citations=annotation.citations.all(),
        page=annotation.source.text_divisions.pdf_fragment(annotation.start, annotation.end),
    )


def values_to_jsonld(
    annotation: AnnotationValues, base_url: str, *, with_context: bool = True
) -> dict[str, Any]:
    """The W3C representation of an annotation given as plain values."""
    tags = annotation.tags
    body: list[dict[str, str]] = []
    if annotation.note:
        body.append(
            {
                "type": "TextualBody",
                "value": annotation.note,
                "format": "text/markdown",
                "purpose": "commenting",
            }
        )
    body.extend({"type": "TextualBody", "value": tag, "purpose": "tagging"} for tag in tags)
    for citation in annotation.citations:
        linking = citation_body(citation, base_url)
        if linking is not None:
            body.append(linking)
    doc: dict[str, Any] = {"@context": CONTEXT} if with_context else {}
    doc.update(
        {
            "id": base_url + _uuid_route("annotations:api_detail", annotation.uuid),
            "type": "Annotation",
            "motivation": motivation(annotation.note, tags),
            "creator": {"type": "Person", "nickname": annotation.nickname, "name": annotation.name},
            "created": iso_z(annotation.created),
            "modified": iso_z(annotation.modified),
        }
    )
    if annotation.canonical:
        doc["canonical"] = annotation.canonical
    if annotation.via:
        doc["via"] = annotation.via[0] if len(annotation.via) == 1 else annotation.via
    doc.update(
        {
            "target": {
                "source": base_url
                + _uuid_route("annotations:source_detail", annotation.source_uuid),
                "selector": [
                    {
                        "type": "TextPositionSelector",
                        "start": annotation.start,
                        "end": annotation.end,
                    },
                    {
                        "type": "TextQuoteSelector",
                        "exact": annotation.exact,
                        "prefix": annotation.prefix,
                        "suffix": annotation.suffix,
                    },
                    *page_selector(annotation.page),
                ],
            },
            "visibility": annotation.visibility,
        }
    )
    if body:
        doc["body"] = body
    return doc


@dataclass
class ListPage:
    """One page of a list of annotations, as the W3C documents describe it: its items, its
    IRI and its neighbours', where it starts, and the list's total, first and last pages."""

    items: Sequence[AnnotationValues] | Sequence[object]  # with iris, their UUIDs
    id: str
    start_index: int
    total: int
    first: str
    last: str
    next: str | None = None
    prev: str | None = None


def collection_page(
    page: ListPage,
    *,
    base_url: str,
    collection_id: str,
    label: str = "Annotations",
    embedded: bool = False,
    iris: bool = False,
) -> dict[str, Any]:
    """One AnnotationPage of a list of annotations (model section 5.2).

    An ``embedded`` page is the ``first`` of its collection's document: no @context of its
    own, and ``partOf`` names the collection by ``id`` alone. (The model also allows a bare
    IRI there, but the W3C suite's page assertions read ``partOf`` as an object: seven of
    them fail a page that has a string.)
    """
    doc: dict[str, Any] = {} if embedded else {"@context": CONTEXT}
    doc["id"] = page.id
    doc["type"] = "AnnotationPage"
    if embedded:
        doc["partOf"] = {"id": collection_id}
    else:
        doc["partOf"] = {
            "id": collection_id,
            "type": "AnnotationCollection",
            "label": label,
            "total": page.total,
            "first": page.first,
            "last": page.last,
        }
    doc["startIndex"] = page.start_index
    if page.next:
        doc["next"] = page.next
    if page.prev:
        doc["prev"] = page.prev
    if iris:
        doc["items"] = [
            base_url + _uuid_route("annotations:api_detail", uuid) for uuid in page.items
        ]
    else:
        doc["items"] = [
            values_to_jsonld(cast(AnnotationValues, a), base_url, with_context=False)
            for a in page.items
        ]
    return doc


def annotation_collection(
    first_page: ListPage,
    *,
    base_url: str,
    collection_id: str,
    label: str = "Annotations",
    container: bool = False,
    minimal: bool = False,
    iris: bool = False,
) -> dict[str, Any]:
    """An AnnotationCollection (model section 5.1) with its first page embedded.

    A ``container`` (the API's, protocol 4.1) is also an LDP Basic Container, with the LDP
    context. ``minimal`` links its first page rather than embedding it (protocol 4.2.1,
    PreferMinimalContainer); ``iris`` lists the annotations by IRI (PreferContainedIRIs).
    """
    doc: dict[str, Any] = {
        "@context": CONTAINER_CONTEXT if container else CONTEXT,
        "id": collection_id,
        "type": ["BasicContainer", "AnnotationCollection"] if container else "AnnotationCollection",
        "label": label,
        "total": first_page.total,
    }
    if minimal:
        doc["first"] = first_page.first
    else:
        doc["first"] = collection_page(
            first_page,
            base_url=base_url,
            collection_id=collection_id,
            label=label,
            embedded=True,
            iris=iris,
        )
    doc["last"] = first_page.last
    return doc


# --- In: JSON-LD -> validated values -------------------------------------------------------


class ParsedAnnotation(TypedDict):
    """What parse_annotation found; None where the client sent nothing."""

    has_target: bool
    source: str | None  # the target source's IRI or UUID
    start: int | None
    end: int | None
    exact: str | None
    prefix: str | None
    suffix: str | None
    note: str
    tags: list[str]
    visibility: str | None
    citations: list[CitationSpec]  # for Citation.build_all
    canonical: str | None
    via: list[str] | None
    sent_id: str | None  # the client's own id for it, when an absolute IRI


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_annotation(
    data: Any, *, require_target: bool = True, base_url: str | None = None
) -> ParsedAnnotation:
    """Validate a client's W3C annotation; raise W3CError naming the offending field.

    Only what a client may set is read: target (source and selectors), the note and tag
    bodies, visibility, and the provenance links canonical and via (with the client's own
    ``id``, which protocol 5.1 copies to ``via``). id, creator, created, modified and
    motivation are the server's.
    Anchoring against the text layer happens later (``Annotation.anchor``), and so does
    checking what citations (linking bodies) point at (``Citation.build_all``). With
    ``base_url``, only IRIs on this server count as archived sources and annotations.
    """
    if not isinstance(data, dict):
        raise W3CError("", "The request body must be a JSON object (a W3C Annotation).")
    parsed = ParsedAnnotation(
        has_target=False,
        source=None,
        start=None,
        end=None,
        exact=None,
        prefix=None,
        suffix=None,
        note="",
        tags=[],
        visibility=None,
        citations=[],
        canonical=None,
        via=None,
        sent_id=None,
    )
    if "type" in data and data["type"] != "Annotation":
        raise W3CError("type", 'type must be "Annotation".')
    if "bodyValue" in data:
        raise W3CError("bodyValue", "Use body with a TextualBody instead of bodyValue.")
    _parse_target(data.get("target"), parsed, require_target)
    _parse_bodies(data.get("body"), parsed, base_url)
    visibility = data.get("visibility")
    if visibility is not None:
        if not isinstance(visibility, str) or visibility not in VISIBILITIES:
            raise W3CError("visibility", f"visibility must be one of {', '.join(VISIBILITIES)}.")
        parsed["visibility"] = visibility
    if data.get("canonical") is not None:
        parsed["canonical"] = _provenance_iri(data["canonical"], "canonical")
    if data.get("via") is not None:
        vias = _as_list(data["via"])
        if len(vias) > MAX_VIA:
            raise W3CError("via", f"Send at most {MAX_VIA} via IRIs.")
        parsed["via"] = list(dict.fromkeys(_provenance_iri(v, "via") for v in vias)) or None
    if isinstance(data.get("id"), str) and IRI_RE.match(data["id"]):
        parsed["sent_id"] = data["id"]
    return parsed


MAX_IRI = 2000
MAX_VIA = 20
# An absolute IRI: a scheme, then no spaces, controls, quotes or angle brackets.
IRI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f]+$")


def _provenance_iri(value: Any, field: str) -> str:
    if not isinstance(value, str) or not IRI_RE.match(value) or len(value) > MAX_IRI:
        raise W3CError(field, f"{field} must be an absolute IRI of at most {MAX_IRI:,} characters.")
    return value


def _parse_target(target: Any, parsed: ParsedAnnotation, required: bool) -> None:
    if target is None:
        if required:
            raise W3CError("target", "The annotation has no target: say which source and passage.")
        return
    parsed["has_target"] = True
    targets = _as_list(target)
    if len(targets) != 1 or not isinstance(targets[0], dict):
        raise W3CError("target", "target must be one object with source and selector.")
    target = targets[0]
    source = target.get("source")
    if not isinstance(source, str) or not source:
        raise W3CError("target.source", "target.source must be the source's IRI or UUID.")
    parsed["source"] = source
    selectors = _as_list(target.get("selector"))
    if not selectors:
        raise W3CError(
            "target.selector",
            "target.selector is required: a TextPositionSelector and/or a TextQuoteSelector.",
        )
    seen: list[str] = []
    for selector in selectors:
        seen.append(_parse_selector(selector, parsed))
        if seen.count(seen[-1]) > 1:
            raise W3CError("target.selector", f"Send at most one {seen[-1]}.")


def _parse_selector(selector: Any, parsed: ParsedAnnotation) -> str:
    if not isinstance(selector, dict):
        raise W3CError("target.selector", "Each selector must be an object.")
    kind = selector.get("type")
    if kind == "TextPositionSelector":
        for name in ("start", "end"):
            value = selector.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise W3CError(name, f"{name} must be a whole number of code points.")
        parsed["start"], parsed["end"] = selector["start"], selector["end"]
    elif kind == "TextQuoteSelector":
        exact = selector.get("exact")
        if not isinstance(exact, str) or not exact:
            raise W3CError("exact", "A TextQuoteSelector needs a non-empty exact quote.")
        for name in ("prefix", "suffix"):
            if selector.get(name) is not None and not isinstance(selector[name], str):
                raise W3CError(name, f"{name} must be a string.")
        parsed["exact"] = exact
        parsed["prefix"] = selector.get("prefix")
        parsed["suffix"] = selector.get("suffix")
    elif kind == "FragmentSelector":
        pass  # a PDF's page, written beside the text selectors, which anchor the passage
    else:
        raise W3CError(
            "target.selector",
            f"Unsupported selector type {kind!r}: use TextPositionSelector or TextQuoteSelector.",
        )
    return kind


def _parse_bodies(bodies: Any, parsed: ParsedAnnotation, base_url: str | None = None) -> None:
    if bodies is not None and not isinstance(bodies, dict | list):
        raise W3CError("body", "body must be a TextualBody object or a list of them.")
    seen_tags: set[str] = set()
    for body in _as_list(bodies):
        if not isinstance(body, dict):
            raise W3CError("body", "Each body must be an object (a TextualBody).")
        if body.get("type") == "SpecificResource":
            spec = _parse_citation(body, len(parsed["citations"]), base_url)
            # Its keys are CitationSpec's (and a quote's prefix and suffix, which build_all
            # reads too), picked by name in loops that mypy cannot follow.
            parsed["citations"].append(cast("CitationSpec", spec))
            continue
        if body.get("type", "TextualBody") != "TextualBody":
            raise W3CError(
                "body",
                f"Unsupported body type {body.get('type')!r}: use TextualBody, or a "
                'SpecificResource with purpose "linking" for a citation.',
            )
        value = body.get("value")
        if not isinstance(value, str):
            raise W3CError("body.value", "A TextualBody needs a string value.")
        purpose = body.get("purpose", "commenting")
        if purpose == "tagging":
            tag = value.strip()
            if problem := tag_name_error(tag):
                raise W3CError("body.value", problem)
            if tag.casefold() in seen_tags:
                continue
            # Checked as tags arrive, so a huge list costs no more than 101 tags.
            if len(seen_tags) == MAX_TAGS:
                raise W3CError("body", f"An annotation can have at most {MAX_TAGS} tags.")
            seen_tags.add(tag.casefold())
            parsed["tags"].append(tag)
        elif purpose in ("commenting", "describing"):
            if parsed["note"]:
                raise W3CError("body", "Send at most one note (commenting body).")
            if len(value) > MAX_NOTE:
                raise W3CError("body.value", f"The note is longer than {MAX_NOTE:,} characters.")
            parsed["note"] = value
        else:
            raise W3CError("body.purpose", f"Unsupported body purpose {purpose!r}.")


MAX_CITATION_BODIES = 100


def _parse_citation(body: dict[str, Any], index: int, base_url: str | None) -> dict[str, Any]:
    """A linking body as a CitationSpec: this server's source or annotation, or elsewhere."""
    where = f"body[citation {index + 1}]"
    if index >= MAX_CITATION_BODIES:
        raise W3CError("body", f"An annotation can cite at most {MAX_CITATION_BODIES} things.")
    if body.get("type") != "SpecificResource" or body.get("purpose") != "linking":
        raise W3CError(where, 'A citation is a SpecificResource with purpose "linking".')
    source = body.get("source")
    if isinstance(source, dict):
        source = source.get("id")
    if not isinstance(source, str) or not source.strip():
        raise W3CError(f"{where}.source", "A citation needs a source: an IRI.")
    source = source.strip()
    spec: dict[str, Any] = {}
    for key, name in (
        ("locator", "locator"),
        ("locatorLabel", "locator_label"),
        ("comment", "comment"),
    ):
        if key in body:
            if not isinstance(body[key], str):
                raise W3CError(f"{where}.{key}", f"{key} must be a string.")
            spec[name] = body[key]
    path = urlsplit(source).path if "://" in source else ""
    local = "://" in source and (base_url is None or source.startswith(base_url + "/"))
    if local and (match := re.match(r"^/sources/" + UUID_RE.pattern + r"/", path, re.I)):
        spec["source"] = match.group(1).lower()
        for selector in _as_list(body.get("selector")):
            if not isinstance(selector, dict):
                raise W3CError(f"{where}.selector", "Each selector must be an object.")
            if selector.get("type") == "TextPositionSelector":
                for name in ("start", "end"):
                    value = selector.get(name)
                    if not isinstance(value, int) or isinstance(value, bool):
                        raise W3CError(
                            f"{where}.selector", f"{name} must be a whole number of code points."
                        )
                    spec[name] = value
            elif selector.get("type") == "TextQuoteSelector":
                exact = selector.get("exact")
                if not isinstance(exact, str) or not exact:
                    raise W3CError(f"{where}.selector", "A TextQuoteSelector needs an exact quote.")
                spec["exact"] = exact
                for name in ("prefix", "suffix"):
                    if isinstance(selector.get(name), str):
                        spec[name] = selector[name]
            elif selector.get("type") == "FragmentSelector":
                pass  # a PDF's page, beside the text selectors
            else:
                raise W3CError(
                    f"{where}.selector",
                    "A cited passage uses a TextPositionSelector and/or a TextQuoteSelector.",
                )
        if "/passages/" in path and "start" not in spec:
            spec["source"] = source  # a passage link: its offsets come from the path
        return spec
    if local and (match := re.match(r"^/api/annotations/" + UUID_RE.pattern + "$", path, re.I)):
        spec["annotation"] = match.group(1).lower()
        return spec
    reference = body.get("reference") or {}
    if not isinstance(reference, dict):
        raise W3CError(f"{where}.reference", "reference must be an object.")
    for key, name in (
        ("type", "reference_type"),
        ("title", "title"),
        ("creators", "creators"),
        ("publisher", "publisher"),
        ("datePublished", "date_published"),
        ("dateAccessed", "date_accessed"),
        ("url", "url"),
        ("doi", "doi"),
    ):
        if key in reference:
            spec[name] = reference[key]
    if re.match(r"^https?://(dx\.)?doi\.org/", source, re.I):
        spec.setdefault("doi", source)
    else:
        spec.setdefault("url", source)
    return spec


def source_uuid_from_ref(ref: str) -> str | None:
    """The UUID in a source IRI (…/sources/<uuid>/) or a bare UUID."""
    path = urlsplit(ref).path if "://" in ref else ref
    match = UUID_RE.search(path)
    return match.group(1).lower() if match else None


# --- Comments: replies and notes on a whole source ------------------------------------------


def comment_to_jsonld(comment: Comment, base_url: str, *, with_context: bool = True) -> dict:
    """A reply (motivation "replying", target: the IRI of what it answers) or a note on a
    whole source (motivation "commenting", target: the source's IRI, with no selector).

    Expects author, source and what it answers loaded (``select_related``)."""
    author = comment.author
    replying = comment.is_reply
    doc: dict[str, Any] = {"@context": CONTEXT} if with_context else {}
    doc.update(
        {
            "id": base_url + _uuid_route("annotations:api_detail", comment.uuid),
            "type": "Annotation",
            "motivation": "replying" if replying else "commenting",
            "creator": {
                "type": "Person",
                "nickname": author.get_username(),
                "name": author.get_full_name() or author.get_username(),
            },
            "created": iso_z(comment.created),
            "modified": iso_z(comment.modified),
            "body": [
                {
                    "type": "TextualBody",
                    "value": comment.note,
                    "format": "text/markdown",
                    "purpose": "replying" if replying else "commenting",
                }
            ],
        }
    )
    if replying:
        parent = comment.reply_to_annotation or comment.reply_to_note
        assert parent is not None
        doc["target"] = base_url + _uuid_route("annotations:api_detail", parent.uuid)
    else:
        doc["target"] = base_url + _uuid_route("annotations:source_detail", comment.source.uuid)
        doc["visibility"] = comment.visibility
    return doc


class ParsedComment(TypedDict):
    """A client's reply or note on a whole source, as ``parse_comment`` found it."""

    reply_to: str | None  # the UUID of what it answers, for a reply
    source: str | None  # the UUID of the source, for a note on a whole source
    note: str
    visibility: str | None


ANNOTATION_PATH_RE = re.compile(r"/api/annotations/([0-9a-f-]{36})$", re.I)


def _target_ref(target: Any) -> tuple[str | None, bool]:
    """The IRI a target names, and whether it has a selector (then it is a passage)."""
    targets = _as_list(target)
    if len(targets) != 1:
        return None, False
    only = targets[0]
    if isinstance(only, str):
        return only, False
    if isinstance(only, dict):
        if only.get("selector") is not None:
            return None, True
        ref = only.get("source") or only.get("id")
        return (ref if isinstance(ref, str) else None), False
    return None, False


def is_comment(data: Any) -> bool:
    """Whether a client's annotation is a reply or a note on a whole source, not a passage
    annotation: its motivation is "replying", or its target names no passage."""
    if not isinstance(data, dict):
        return False
    if data.get("motivation") == "replying":
        return True
    ref, has_selector = _target_ref(data.get("target"))
    return ref is not None and not has_selector


def parse_comment(data: dict[str, Any], *, require_target: bool = True) -> ParsedComment:
    """Validate a reply or a note on a whole source; raise W3CError naming the field.

    A reply's target is the IRI of the annotation it answers (…/api/annotations/<uuid>; a
    bare UUID with motivation "replying"); a note's target is the source's IRI, without a
    selector. The body is one TextualBody (purpose "replying" or "commenting"): a reply or a
    note carries text, not tags or citations."""
    parsed = ParsedComment(reply_to=None, source=None, note="", visibility=None)
    if "type" in data and data["type"] != "Annotation":
        raise W3CError("type", 'type must be "Annotation".')
    if data.get("target") is not None or require_target:
        ref, has_selector = _target_ref(data.get("target"))
        if ref is None or has_selector:
            raise W3CError(
                "target",
                "A reply's target is the IRI of the annotation it answers; a note on a whole "
                "source's target is the source's IRI, without a selector.",
            )
        path = urlsplit(ref).path if "://" in ref else ref
        answered = ANNOTATION_PATH_RE.search(path)
        if answered:
            parsed["reply_to"] = answered.group(1).lower()
        elif data.get("motivation") == "replying":
            if not UUID_RE_BARE.match(ref):
                raise W3CError("target", "A reply's target is the IRI of an annotation.")
            parsed["reply_to"] = ref.lower()
        else:
            parsed["source"] = source_uuid_from_ref(ref)
            if parsed["source"] is None:
                raise W3CError("target", "target must be a source's IRI or an annotation's IRI.")
    if data.get("motivation") not in (None, "replying", "commenting"):
        raise W3CError("motivation", 'motivation must be "replying" or "commenting" here.')
    bodies = _as_list(data.get("body"))
    if data.get("bodyValue") is not None:
        bodies.append({"type": "TextualBody", "value": data["bodyValue"]})
    if len(bodies) != 1 or not isinstance(bodies[0], dict):
        raise W3CError("body", "Send one TextualBody: the text of the reply or note.")
    body = bodies[0]
    if body.get("type", "TextualBody") != "TextualBody" or body.get("purpose", "replying") not in (
        "replying",
        "commenting",
    ):
        raise W3CError(
            "body", 'A reply or note is one TextualBody (purpose "replying" or "commenting").'
        )
    value = body.get("value")
    if not isinstance(value, str) or not value.strip():
        raise W3CError("body.value", "Write something: a reply or note cannot be empty.")
    if len(value) > MAX_NOTE:
        raise W3CError("body.value", f"The text is longer than {MAX_NOTE:,} characters.")
    parsed["note"] = value
    visibility = data.get("visibility")
    if visibility is not None:
        if not isinstance(visibility, str) or visibility not in VISIBILITIES:
            raise W3CError("visibility", f"visibility must be one of {', '.join(VISIBILITIES)}.")
        parsed["visibility"] = visibility
    return parsed


UUID_RE_BARE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
