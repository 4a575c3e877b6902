"""Annotations as W3C Web Annotation JSON-LD, and back.

One place decides the representation: the API, exports and imports all go through it.
Offsets in selectors are Unicode code points of the source's text layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.urls import reverse

ANNO_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
# Scholion's one extension term, so a representation still validates as a W3C Annotation.
CONTEXT = [ANNO_CONTEXT, {"visibility": "urn:x-scholion:visibility"}]
MEDIA_TYPE = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
MAX_NOTE = 100_000
MAX_TAGS = 100
MAX_TAG_LENGTH = 100
VISIBILITIES = ("private", "collection", "public")
UUID_RE = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.I)


class W3CError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_iri(source, base_url: str) -> str:
    return base_url + reverse("archive:source_detail", args=[source.uuid])


def annotation_iri(annotation, base_url: str) -> str:
    return base_url + reverse("annotations:api_detail", args=[annotation.uuid])


def motivation(note: str, tags: list[str]) -> str:
    if note:
        return "commenting"
    if tags:
        return "tagging"
    return "highlighting"


def annotation_to_jsonld(annotation, base_url: str, *, with_context: bool = True) -> dict:
    """The W3C representation. Expects author, source and tags to be loaded (with_related)."""
    tags = [t.name for t in annotation.tags.all()]
    author = annotation.author
    body: list[dict] = []
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
    doc: dict = {}
    if with_context:
        doc["@context"] = CONTEXT
    doc.update(
        {
            "id": annotation_iri(annotation, base_url),
            "type": "Annotation",
            "motivation": motivation(annotation.note, tags),
            "creator": {
                "type": "Person",
                "nickname": author.get_username(),
                "name": author.get_full_name() or author.get_username(),
            },
            "created": iso_z(annotation.created),
            "modified": iso_z(annotation.modified),
            "target": {
                "source": source_iri(annotation.source, base_url),
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
                ],
            },
            "visibility": annotation.visibility,
        }
    )
    if body:
        doc["body"] = body
    return doc


def collection_document(
    *,
    collection_id: str,
    label: str,
    total: int,
    page_ids: tuple[str, str],
    first_page: dict | None = None,
) -> dict:
    doc = {
        "@context": CONTEXT,
        "id": collection_id,
        "type": "AnnotationCollection",
        "label": label,
        "total": total,
        "first": first_page if first_page is not None else page_ids[0],
        "last": page_ids[1],
    }
    return doc


def page_document(
    *,
    page_id: str,
    collection_id: str,
    items: list[dict],
    start_index: int,
    next_id: str | None,
    prev_id: str | None,
    with_context: bool,
    total: int,
    label: str = "Annotations",
) -> dict:
    doc: dict = {"@context": CONTEXT} if with_context else {}
    # partOf describes the collection (the assertions require an object, not a bare IRI).
    part_of = {"id": collection_id, "label": label, "total": total}
    doc.update(
        {
            "id": page_id,
            "type": "AnnotationPage",
            "partOf": part_of,
            "startIndex": start_index,
            "items": items,
        }
    )
    if next_id:
        doc["next"] = next_id
    if prev_id:
        doc["prev"] = prev_id
    return doc


@dataclass
class ParsedAnnotation:
    source_ref: str | None = None  # IRI or UUID of the target source
    start: int | None = None
    end: int | None = None
    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    note: str = ""
    tags: list[str] = field(default_factory=list)
    visibility: str | None = None
    has_target: bool = False


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_annotation(data, *, require_target: bool = True) -> ParsedAnnotation:
    """Validate a client's W3C annotation; raise W3CError naming the offending field."""
    if not isinstance(data, dict):
        raise W3CError("", "The request body must be a JSON object (a W3C Annotation).")
    parsed = ParsedAnnotation()
    if "type" in data and data["type"] != "Annotation":
        raise W3CError("type", 'type must be "Annotation".')
    target = data.get("target")
    if target is None:
        if require_target:
            raise W3CError("target", "The annotation has no target: say which source and passage.")
    else:
        parsed.has_target = True
        targets = _as_list(target)
        if len(targets) != 1 or not isinstance(targets[0], dict):
            raise W3CError("target", "target must be one object with source and selector.")
        target = targets[0]
        source = target.get("source")
        if not isinstance(source, str) or not source:
            raise W3CError("target.source", "target.source must be the source's IRI or UUID.")
        parsed.source_ref = source
        selectors = _as_list(target.get("selector"))
        if not selectors:
            raise W3CError(
                "target.selector",
                "target.selector is required: a TextPositionSelector and/or a TextQuoteSelector.",
            )
        for selector in selectors:
            _parse_selector(selector, parsed)
    for body in _as_list(data.get("body")):
        if not isinstance(body, dict):
            raise W3CError("body", "Each body must be an object (a TextualBody).")
        if body.get("type", "TextualBody") != "TextualBody":
            raise W3CError("body", f"Unsupported body type {body.get('type')!r}: use TextualBody.")
        value = body.get("value")
        if not isinstance(value, str):
            raise W3CError("body.value", "A TextualBody needs a string value.")
        purpose = body.get("purpose", "commenting")
        if purpose == "tagging":
            tag = value.strip()
            if not tag:
                raise W3CError("body.value", "A tag cannot be empty.")
            if len(tag) > MAX_TAG_LENGTH:
                raise W3CError("body.value", f"A tag can be at most {MAX_TAG_LENGTH} characters.")
            if "," in tag or '"' in tag:
                raise W3CError("body.value", "A tag cannot contain commas or double quotes.")
            if tag.lower() not in (t.lower() for t in parsed.tags):
                parsed.tags.append(tag)
        elif purpose in ("commenting", "describing"):
            if parsed.note:
                raise W3CError("body", "Send at most one note (commenting body).")
            if len(value) > MAX_NOTE:
                raise W3CError("body.value", f"The note is longer than {MAX_NOTE:,} characters.")
            parsed.note = value
        else:
            raise W3CError("body.purpose", f"Unsupported body purpose {purpose!r}.")
    if len(parsed.tags) > MAX_TAGS:
        raise W3CError("body", f"An annotation can have at most {MAX_TAGS} tags.")
    if "bodyValue" in data:
        raise W3CError("bodyValue", "Use body with a TextualBody instead of bodyValue.")
    visibility = data.get("visibility")
    if visibility is not None:
        if visibility not in VISIBILITIES:
            raise W3CError("visibility", f"visibility must be one of {', '.join(VISIBILITIES)}.")
        parsed.visibility = visibility
    return parsed


def _parse_selector(selector, parsed: ParsedAnnotation) -> None:
    if not isinstance(selector, dict):
        raise W3CError("target.selector", "Each selector must be an object.")
    kind = selector.get("type")
    if kind == "TextPositionSelector":
        start, end = selector.get("start"), selector.get("end")
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise W3CError(name, f"{name} must be a whole number of code points.")
        parsed.start, parsed.end = start, end
    elif kind == "TextQuoteSelector":
        exact = selector.get("exact")
        if not isinstance(exact, str) or not exact:
            raise W3CError("exact", "A TextQuoteSelector needs a non-empty exact quote.")
        for name in ("prefix", "suffix"):
            if name in selector and not isinstance(selector[name], str):
                raise W3CError(name, f"{name} must be a string.")
        parsed.exact = exact
        parsed.prefix = selector.get("prefix")
        parsed.suffix = selector.get("suffix")
    else:
        raise W3CError(
            "target.selector",
            f"Unsupported selector type {kind!r}: use TextPositionSelector or TextQuoteSelector.",
        )


def source_uuid_from_ref(ref: str) -> str | None:
    """The UUID in a source IRI (…/sources/<uuid>/) or a bare UUID."""
    path = urlsplit(ref).path if "://" in ref else ref
    match = UUID_RE.search(path)
    return match.group(1).lower() if match else None


def find_quote(text: str, exact: str, prefix: str | None, suffix: str | None) -> int | None:
    """Where a quote sits in the text, preferring the occurrence whose context matches."""
    best, best_score = None, -1
    position = text.find(exact)
    seen = 0
    while position != -1 and seen < 10_000:
        score = 0
        if prefix and text[max(0, position - len(prefix)) : position] == prefix:
            score += 2
        if suffix and text[position + len(exact) : position + len(exact) + len(suffix)] == suffix:
            score += 2
        if score > best_score:
            best, best_score = position, score
        position = text.find(exact, position + 1)
        seen += 1
    return best
