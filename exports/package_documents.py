"""Reading a Scholion package's two documents, scholion.json and annotations.jsonld, and
checking them whole before an import writes anything.

JSON is parsed as it streams (ijson), never held whole, and refused past MAX_JSON_DEPTH
levels of nesting. Each annotation becomes a compact AnnotationRow as it is read.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import ijson
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.utils.dateparse import parse_datetime

from annotations.models import Annotation, CitationSpec
from annotations.w3c import (
    UUID_RE,
    W3CError,
    is_comment,
    parse_annotation,
    parse_comment,
    source_uuid_from_ref,
)
from archive.models import Collection, Source
from exports.bag import ANNOTATIONS_PATH, MANIFEST_PATH, PACKAGE_FORMAT, PACKAGE_VERSION
from exports.package import Package, PackageError

# Deeper than any document Scholion writes (annotations.jsonld nests about eight levels).
MAX_JSON_DEPTH = 64


class _ChunkReader(io.RawIOBase):
    """A package member as a file, read chunk by chunk (for the streaming JSON parser)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.pending = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            self.pending = next(self.chunks, b"")
            if not self.pending:
                return 0
        n = min(len(buffer), len(self.pending))
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        return n


def _json_events(package: Package, path: str) -> Iterator[tuple[str, str, Any]]:
    """The parse events of a JSON member, read as it streams (a large document is never
    held whole), refused past MAX_JSON_DEPTH levels of nesting."""
    if path not in package.names():
        raise PackageError(f"The package has no {path}.")
    depth = 0
    try:
        for prefix, event, value in ijson.parse(_ChunkReader(package.chunks(path)), use_float=True):
            if event in ("start_map", "start_array"):
                depth += 1
                if depth > MAX_JSON_DEPTH:
                    raise PackageError(
                        f"{path} is nested more than {MAX_JSON_DEPTH} levels deep: refused."
                    )
            elif event in ("end_map", "end_array"):
                depth -= 1
            yield prefix, event, value
    except ijson.JSONError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "it ends too soon"
        raise PackageError(f"{path} is not valid JSON ({reason}).") from None
    except UnicodeDecodeError as exc:
        raise PackageError(f"{path} is not UTF-8 text ({exc}).") from None


def _load_json(package: Package, path: str) -> Any:
    for document in ijson.items(_json_events(package, path), ""):
        return document
    raise PackageError(f"{path} is not valid JSON (it is empty).")


def _require(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise PackageError(f"{where} is missing or malformed in {MANIFEST_PATH}.")
    return value


def _uuid(value: Any, where: str) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise PackageError(f"{where} is not a UUID: {value!r}.") from None


def moment(value: Any, where: str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise PackageError(f"{where} is not a date and time with a zone: {value!r}.")
    return parsed


@dataclass
class AnnotationRow:
    uuid: UUID
    source_uuid: UUID
    author: str
    created: datetime
    modified: datetime
    start: int
    end: int
    exact: str
    note: str
    tags: list[str]
    visibility: str
    citations: list[tuple[CitationSpec, str]] = field(default_factory=list)  # (spec, linked IRI)
    canonical: str | None = None
    via: list[str] | None = None


@dataclass
class CommentRow:
    """A reply (``reply_to``: the package's UUID of what it answers) or a note on a whole
    source (``source_uuid``), as the package holds it."""

    uuid: UUID
    author: str
    created: datetime
    modified: datetime
    note: str
    reply_to: UUID | None = None
    source_uuid: UUID | None = None
    visibility: str = ""


def read_annotations(
    package: Package, source_uuids: set[UUID], comments: list[CommentRow] | None = None
) -> list[AnnotationRow]:
    """Every passage annotation of the package, checked, read item by item as the file
    streams; its replies and notes on whole sources go to ``comments`` (skipped without)."""
    seen: dict[str, Any] = {"type": None, "items": False}

    def watched(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
        for prefix, event, value in events:
            if prefix == "type" and event == "string":
                seen["type"] = value
            elif prefix == "first.items" and event == "start_array":
                seen["items"] = True
            yield prefix, event, value

    items = ijson.items(watched(_json_events(package, ANNOTATIONS_PATH)), "first.items.item")
    rows = []
    for n, item in enumerate(items):
        if is_comment(item):
            if comments is not None:
                comments.append(_comment_row(item, n, source_uuids))
        else:
            rows.append(_annotation_row(item, n, source_uuids))
    if seen["type"] != "AnnotationCollection":
        raise PackageError(f"{ANNOTATIONS_PATH} is not a W3C AnnotationCollection.")
    if not seen["items"]:
        raise PackageError(f"{ANNOTATIONS_PATH} has no embedded page of items.")
    return rows


def _annotation_row(item: Any, n: int, source_uuids: set[UUID]) -> AnnotationRow:
    where = f"{ANNOTATIONS_PATH}, annotation {n + 1}"
    if not isinstance(item, dict):
        raise PackageError(f"{where}: it is not a JSON object.")
    try:
        parsed = parse_annotation(item)
    except W3CError as exc:
        raise PackageError(f"{where}: {exc.message}") from None
    match = UUID_RE.search(str(item.get("id", "")))
    if not match:
        raise PackageError(f"{where}: its id holds no UUID.")
    source_ref = source_uuid_from_ref(parsed["source"] or "")
    if source_ref is None or UUID(source_ref) not in source_uuids:
        raise PackageError(f"{where}: its target is not one of the package's sources.")
    if parsed["start"] is None or parsed["end"] is None or parsed["exact"] is None:
        raise PackageError(f"{where}: it needs both a position and a quote selector.")
    creator = item.get("creator")
    author = creator.get("nickname") if isinstance(creator, dict) else None
    if not isinstance(author, str) or not author:
        raise PackageError(f"{where}: its creator has no nickname (username).")
    return AnnotationRow(
        uuid=UUID(match.group(1)),
        source_uuid=UUID(source_ref),
        author=author,
        created=moment(item.get("created"), f"{where}: created"),
        modified=moment(item.get("modified"), f"{where}: modified"),
        start=parsed["start"],
        end=parsed["end"],
        exact=parsed["exact"],
        note=parsed["note"],
        tags=parsed["tags"],
        visibility=parsed["visibility"] or Annotation.Visibility.COLLECTION,
        citations=list(zip(parsed["citations"], _linked_iris(item), strict=True)),
        # The package's id is this same annotation's, not a copy's: it does not become via.
        canonical=parsed["canonical"],
        via=parsed["via"],
    )


def _comment_row(item: dict, n: int, source_uuids: set[UUID]) -> CommentRow:
    where = f"{ANNOTATIONS_PATH}, annotation {n + 1}"
    try:
        parsed = parse_comment(item)
    except W3CError as exc:
        raise PackageError(f"{where}: {exc.message}") from None
    match = UUID_RE.search(str(item.get("id", "")))
    if not match:
        raise PackageError(f"{where}: its id holds no UUID.")
    if parsed["source"] is not None and UUID(parsed["source"]) not in source_uuids:
        raise PackageError(f"{where}: its target is not one of the package's sources.")
    creator = item.get("creator")
    author = creator.get("nickname") if isinstance(creator, dict) else None
    if not isinstance(author, str) or not author:
        raise PackageError(f"{where}: its creator has no nickname (username).")
    return CommentRow(
        uuid=UUID(match.group(1)),
        author=author,
        created=moment(item.get("created"), f"{where}: created"),
        modified=moment(item.get("modified"), f"{where}: modified"),
        note=parsed["note"],
        reply_to=UUID(parsed["reply_to"]) if parsed["reply_to"] else None,
        source_uuid=UUID(parsed["source"]) if parsed["source"] else None,
        visibility=(parsed["visibility"] or Annotation.Visibility.COLLECTION)
        if parsed["source"]
        else "",
    )


def _linked_iris(item: dict) -> list[str]:
    """The IRI each linking body (citation) points at, in order."""
    bodies = item.get("body")
    bodies = bodies if isinstance(bodies, list) else [bodies]
    iris = []
    for body in bodies:
        if isinstance(body, dict) and body.get("purpose") == "linking":
            target = body.get("source")
            iris.append(str(target.get("id", "") if isinstance(target, dict) else target))
    return iris


def _check_collection(spec: dict) -> None:
    """The collection's fields as the admin would accept them, before anything is written."""
    fields = {
        "slug": Collection._meta.get_field("slug"),
        "title": Collection._meta.get_field("title"),
    }
    for name, model_field in fields.items():
        try:
            model_field.clean(spec[name], None)
            if name == "slug":
                validate_slug(spec[name])
        except ValidationError as exc:
            raise PackageError(
                f"collection.{name} {spec[name][:100]!r} cannot be used here:"
                f" {' '.join(exc.messages)}"
            ) from None
    if not isinstance(spec.get("description", ""), str):
        raise PackageError(f"collection.description is malformed in {MANIFEST_PATH}.")
    if not isinstance(spec.get("is_public", False), bool):
        raise PackageError(f"collection.is_public is malformed in {MANIFEST_PATH}.")
    moment(spec.get("created_at"), "collection.created_at")


def _check_metadata(spec: dict) -> None:
    """A source's metadata as the metadata form would accept it (its citation key may
    still change if another source holds it)."""
    metadata = spec["metadata"]
    source = Source(**{k: v for k, v in metadata.items() if k in Source.METADATA_FIELDS})
    try:
        source.clean_fields(
            exclude=[f.name for f in Source._meta.fields if f.name not in Source.METADATA_FIELDS]
        )
    except (ValidationError, TypeError) as exc:
        problems = (
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        raise PackageError(f"Source {spec['uuid']} has invalid metadata ({problems}).") from None


def read_manifest(package: Package, checksums: dict[str, str]) -> dict[str, Any]:
    """scholion.json, checked whole before anything is written. ``checksums``: the verified
    manifest's SHA-256 of each payload file, which each source's declared SHA-256 must
    match (the bytes that will be archived are the package's own, whatever exists here)."""
    manifest = _load_json(package, MANIFEST_PATH)
    if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
        raise PackageError(f"{MANIFEST_PATH} does not describe a Scholion collection export.")
    if manifest.get("version") != PACKAGE_VERSION:
        raise PackageError(
            f"The package is format version {manifest.get('version')!r}; this Scholion reads"
            f" version {PACKAGE_VERSION}."
        )
    collection = _require(manifest.get("collection"), dict, "collection")
    _require(collection.get("slug"), str, "collection.slug")
    _require(collection.get("title"), str, "collection.title")
    _require(collection.get("owner"), str, "collection.owner")
    _check_collection(collection)
    _require(manifest.get("people"), list, "people")
    for n, source in enumerate(_require(manifest.get("sources"), list, "sources")):
        where = f"sources[{n}]"
        _require(source, dict, where)
        source["uuid"] = _uuid(source.get("uuid"), f"{where}.uuid")
        _require(source.get("sha256"), str, f"{where}.sha256")
        _require(source.get("original"), str, f"{where}.original")
        _require(source.get("provenance"), str, f"{where}.provenance")
        _require(source.get("metadata"), dict, f"{where}.metadata")
        original = source["original"]
        if original not in checksums:
            raise PackageError(f"{where}.original names {original!r}, which is not in the bag.")
        if checksums[original] != source["sha256"].lower():
            raise PackageError(
                f"{original} has SHA-256 {checksums[original]}, not the {source['sha256']}"
                " the package declares: refused."
            )
        _check_metadata(source)
        provenance = _require(
            _load_json(package, source["provenance"]), dict, f"{where}.provenance"
        )
        if provenance.get("archived_by") is not None:
            _require(provenance["archived_by"], str, f"{where}.provenance archived_by")
        source["provenance_doc"] = provenance
    return manifest
