"""Importing a Scholion BagIt package: the collection, its sources and their annotations.

First the bag is verified whole (every checksum) and its two JSON documents read and checked;
then everything is written in one transaction. The original bytes go through archive ingest,
so identical bytes are stored once and their SHA-256 is computed again and compared with the
package's. If anything fails, the transaction is rolled back and the blobs this import wrote
are deleted: a bad package leaves nothing behind.

Sources and annotations keep their UUIDs, so importing the same package again finds them and
changes nothing.

An import may refer only to what the person importing can see, and what the package itself
brings. A source or annotation they cannot see is treated as absent, whatever exists: a
citation of it becomes an external reference, and a package object whose UUID another
person's object already holds takes a UUID of its own, derived from the importer and the
package's UUID. Nothing an import answers depends on what others have archived.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import ijson
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import DatabaseError, models, transaction
from django.utils.dateparse import parse_datetime

from annotations.models import AnchorError, Annotation, Citation
from annotations.w3c import UUID_RE, W3CError, parse_annotation, source_uuid_from_ref
from archive.blobstore import archive_storage
from archive.ingest import ArchiveError, archive_chunks
from archive.models import Collection, FixityCheck, Source, unique_citation_key
from exports.bag import ANNOTATIONS_PATH, MANIFEST_PATH, PACKAGE_FORMAT, PACKAGE_VERSION
from exports.package import Package, PackageError, verify_bag
from search.index import index_annotation, index_source

# Names the UUID a package's object takes here when another person's object holds its own.
DERIVED_UUIDS = uuid.UUID("5c4b61f0-7a0e-4d35-9a51-2b0c7e6f9d13")
# Deeper than any document Scholion writes (annotations.jsonld nests about eight levels).
MAX_JSON_DEPTH = 64


def may_import(user) -> bool:
    """Curators, and people who own a collection, may import packages."""
    if not user.is_authenticated:
        return False
    return user.is_staff or Collection.objects.filter(owner=user).exists()


@dataclass
class ImportResult:
    collection: Collection
    collection_created: bool = False
    sources_created: int = 0
    sources_existing: int = 0
    annotations_created: int = 0
    annotations_existing: int = 0
    citations_created: int = 0
    people_created: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.collection_created
            or self.sources_created
            or self.annotations_created
            or self.people_created
        )

    def summary(self) -> str:
        parts = [
            f"Collection “{self.collection.title}” ({self.collection.slug})"
            + (" created" if self.collection_created else " already here"),
            f"{self.sources_created} sources archived, {self.sources_existing} already here",
            f"{self.annotations_created} annotations added,"
            f" {self.annotations_existing} already here",
            f"{self.citations_created} citations added",
        ]
        if self.people_created:
            parts.append(
                f"{len(self.people_created)} inactive accounts created for authors:"
                f" {', '.join(self.people_created)}"
            )
        return "; ".join(parts) + "."


# --- Reading and checking the package's documents ----------------------------------------


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


def _uuid(value: Any, where: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise PackageError(f"{where} is not a UUID: {value!r}.") from None


def _moment(value: Any, where: str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise PackageError(f"{where} is not a date and time with a zone: {value!r}.")
    return parsed


@dataclass
class _AnnotationRow:
    uuid: uuid.UUID
    source_uuid: uuid.UUID
    author: str
    created: datetime
    modified: datetime
    start: int
    end: int
    exact: str
    note: str
    tags: list[str]
    visibility: str
    citations: list[tuple[dict, str]] = field(default_factory=list)  # (spec, linked IRI)


def _read_annotations(package: Package, source_uuids: set[uuid.UUID]) -> list[_AnnotationRow]:
    """Every annotation of the package, checked, read item by item as the file streams."""
    seen: dict[str, Any] = {"type": None, "items": False}

    def watched(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
        for prefix, event, value in events:
            if prefix == "type" and event == "string":
                seen["type"] = value
            elif prefix == "first.items" and event == "start_array":
                seen["items"] = True
            yield prefix, event, value

    items = ijson.items(watched(_json_events(package, ANNOTATIONS_PATH)), "first.items.item")
    rows = [_annotation_row(item, n, source_uuids) for n, item in enumerate(items)]
    if seen["type"] != "AnnotationCollection":
        raise PackageError(f"{ANNOTATIONS_PATH} is not a W3C AnnotationCollection.")
    if not seen["items"]:
        raise PackageError(f"{ANNOTATIONS_PATH} has no embedded page of items.")
    return rows


def _annotation_row(item: Any, n: int, source_uuids: set[uuid.UUID]) -> _AnnotationRow:
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
    if source_ref is None or uuid.UUID(source_ref) not in source_uuids:
        raise PackageError(f"{where}: its target is not one of the package's sources.")
    if parsed["start"] is None or parsed["end"] is None or parsed["exact"] is None:
        raise PackageError(f"{where}: it needs both a position and a quote selector.")
    creator = item.get("creator")
    author = creator.get("nickname") if isinstance(creator, dict) else None
    if not isinstance(author, str) or not author:
        raise PackageError(f"{where}: its creator has no nickname (username).")
    return _AnnotationRow(
        uuid=uuid.UUID(match.group(1)),
        source_uuid=uuid.UUID(source_ref),
        author=author,
        created=_moment(item.get("created"), f"{where}: created"),
        modified=_moment(item.get("modified"), f"{where}: modified"),
        start=parsed["start"],
        end=parsed["end"],
        exact=parsed["exact"],
        note=parsed["note"],
        tags=parsed["tags"],
        visibility=parsed["visibility"] or Annotation.Visibility.COLLECTION,
        citations=list(zip(parsed["citations"], _linked_iris(item), strict=True)),
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
    _moment(spec.get("created_at"), "collection.created_at")


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


# --- Writing -------------------------------------------------------------------------------


class _Importer:
    def __init__(self, package: Package, importer) -> None:
        self.package = package
        self.importer = importer
        self.written_blobs: list[str] = []
        self.people: dict[str, Any] = {}

    @property
    def trusted(self) -> bool:
        """The command line (no importer) and curators may use anything, and may import
        other people's work under their names."""
        return self.importer is None or self.importer.is_staff

    def run(self) -> ImportResult:
        checksums = verify_bag(self.package)
        manifest = read_manifest(self.package, checksums)
        sources = manifest["sources"]
        annotations = _read_annotations(self.package, {s["uuid"] for s in sources})
        self._check_people(manifest, annotations)
        try:
            with transaction.atomic():
                return self._write(manifest, annotations)
        except DatabaseError as exc:
            self._delete_written_blobs()
            raise PackageError(
                f"The package could not be written to the database ({exc})."
            ) from None
        except BaseException:
            self._delete_written_blobs()
            raise

    def _check_people(self, manifest: dict, annotations: list[_AnnotationRow]) -> None:
        """Only a curator may import work under other people's names. The refusal names the
        package's people, never whether they have accounts here."""
        if self.trusted:
            return
        named = {row.author for row in annotations}
        named.update(
            spec["provenance_doc"]["archived_by"]
            for spec in manifest["sources"]
            if spec["provenance_doc"].get("archived_by")
        )
        others = sorted(named - {self.importer.get_username()})
        if others:
            raise PackageError(
                f"The package attributes work to {', '.join(others[:10])}"
                f"{' and others' if len(others) > 10 else ''}: only a curator may import"
                " other people's annotations and sources under their names."
            )

    def _person(self, username: str, details: dict[str, dict]) -> Any:
        if username in self.people:
            return self.people[username]
        if not self.trusted:
            # _check_people let through only the importer's own name.
            assert username == self.importer.get_username()
            self.people[username] = self.importer
            return self.importer
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            try:
                UnicodeUsernameValidator()(username)
            except ValidationError:
                raise PackageError(f"{username!r} is not a valid username.") from None
            info = details.get(username, {})
            user = User.objects.create_user(
                username,
                password=None,  # unusable: the account exists to carry authorship
                is_active=False,
                first_name=str(info.get("first_name", ""))[:150],
                last_name=str(info.get("last_name", ""))[:150],
            )
            self.result.people_created.append(username)
        self.people[username] = user
        return user

    def _derived_uuid(self, package_uuid: uuid.UUID) -> uuid.UUID:
        return uuid.uuid5(DERIVED_UUIDS, f"{self.importer.pk}:{package_uuid}")

    def _resolve(
        self, usable: models.QuerySet, package_uuid: uuid.UUID
    ) -> tuple[Any | None, uuid.UUID]:
        """What the package's UUID names here for the importer: the object, if they may use
        it; else None and the UUID a new object takes. Another person's object holding the
        UUID is treated as absent: the new one takes a derived UUID, the same on every
        import of the package by this person, so importing it again finds it."""
        model = usable.model
        candidates = (
            [package_uuid] if self.trusted else [package_uuid, self._derived_uuid(package_uuid)]
        )
        for candidate in candidates:
            found = usable.filter(uuid=candidate).first()
            if found is not None:
                return found, candidate
            if not model.objects.filter(uuid=candidate).exists():
                return None, candidate
        raise PackageError(f"{package_uuid} cannot be imported here: its UUID is taken.")

    def _collection(self, spec: dict, details: dict) -> Collection:
        """The collection the package names, or a new one. A slug held by a collection the
        importer cannot see is treated as absent: the new collection takes a slug derived
        from it and the importer (the same on every import of the package by them)."""
        self.result = ImportResult(collection=None)  # type: ignore[arg-type]
        slug = spec["slug"]
        candidates = [slug]
        if not self.trusted:
            suffix = hashlib.sha256(f"{self.importer.pk}:{slug}".encode()).hexdigest()[:8]
            candidates.append(f"{slug[: 80 - len(suffix) - 1]}-{suffix}")
        for candidate in candidates:
            found = Collection.objects.filter(slug=candidate).first()
            if found is None:
                collection = Collection.objects.create(
                    slug=candidate,
                    title=spec["title"],
                    description=spec.get("description", ""),
                    is_public=spec.get("is_public", False),
                    owner=(self._person(spec["owner"], details) if self.trusted else self.importer),
                    created_at=_moment(spec.get("created_at"), "collection.created_at"),
                )
                self.result.collection_created = True
                break
            if self.trusted or found.owner_id == self.importer.pk:
                collection = found
                break
            if Collection.objects.visible_to(self.importer).filter(pk=found.pk).exists():
                raise PackageError(
                    f"A collection “{found.slug}” already exists and is not yours: only its"
                    " owner or a curator may import into it."
                )
        else:
            raise PackageError(f"The collection “{slug}” cannot be imported here.")
        self.result.collection = collection
        return collection

    def _visible_sources(self) -> models.QuerySet:
        sources = Source.objects.all()
        return sources if self.trusted else sources.visible_to(self.importer)

    def _visible_annotations(self) -> models.QuerySet:
        annotations = Annotation.objects.all()
        return annotations if self.trusted else annotations.visible_to(self.importer)

    def _write(self, manifest: dict, annotations: list[_AnnotationRow]) -> ImportResult:
        details = {
            p["username"]: p
            for p in manifest["people"]
            if isinstance(p, dict) and isinstance(p.get("username"), str)
        }
        collection = self._collection(manifest["collection"], details)

        by_uuid: dict[uuid.UUID, Source] = {}
        for spec in manifest["sources"]:
            by_uuid[spec["uuid"]] = self._source(spec, collection, details)

        # The package's annotation UUIDs, and those of annotations already here that the
        # importer can see, name the annotations a citation may point at.
        cited: dict[uuid.UUID, Annotation] = {}
        citing: list[tuple[Annotation, list[tuple[dict, str]]]] = []
        visible = self._visible_annotations()
        for row in annotations:
            found, claimed = self._resolve(visible, row.uuid)
            if found is not None:
                self.result.annotations_existing += 1
                cited[row.uuid] = found
                continue
            source = by_uuid[row.source_uuid]
            try:
                quote = Annotation.anchor(source.text, row.start, row.end, row.exact)
            except AnchorError as exc:
                raise PackageError(
                    f"Annotation {row.uuid}: its quote does not match the text of source"
                    f" {row.source_uuid} at {row.start}-{row.end} ({exc.message})"
                ) from None
            annotation = Annotation.objects.create(
                uuid=claimed,
                source=source,
                collection=collection,
                author=self._person(row.author, details),
                start=row.start,
                end=row.end,
                note=row.note,
                visibility=row.visibility,
                created=row.created,
                modified=row.modified,
                **quote,
            )
            # In the order the package lists them (the order they were added in).
            tags = annotation.add_first_tags(row.tags) if row.tags else []
            index_annotation(annotation, [t.name for t in tags], new=True)
            self.result.annotations_created += 1
            cited[row.uuid] = annotation
            if row.citations:
                citing.append((annotation, row.citations))
        self._write_citations(citing, by_uuid, cited)
        return self.result

    def _write_citations(
        self,
        citing: list[tuple[Annotation, list[tuple[dict, str]]]],
        sources: dict[uuid.UUID, Source],
        annotations: dict[uuid.UUID, Annotation],
    ) -> None:
        """The citations of the annotations just written, once all of them exist (they may
        cite each other). A source or annotation that is neither in the package nor one the
        importer can see here becomes an external reference to the IRI it had, so the link
        is not lost (and nothing is learnt of what the importer cannot see)."""
        wanted = {
            uuid.UUID(spec["annotation"])
            for _, specs in citing
            for spec, _ in specs
            if spec.get("annotation")
        }
        known_annotations = {
            a.uuid: a
            for a in self._visible_annotations().filter(uuid__in=wanted - set(annotations))
        }
        known_annotations.update(annotations)
        source_uuids = {
            uuid.UUID(ref)
            for _, specs in citing
            for spec, _ in specs
            if spec.get("source") and (ref := source_uuid_from_ref(spec["source"]))
        }
        known = self._visible_sources().in_bulk(
            list(source_uuids - set(sources)), field_name="uuid"
        )
        known.update(sources)
        rows = []
        for annotation, specs in citing:
            for position, (spec, iri) in enumerate(specs):
                where = f"Annotation {annotation.uuid}, citation {position + 1}"
                citation = self._citation(spec, iri, annotation, position, known, known_annotations)
                try:
                    citation.full_clean(exclude=["annotation", "source", "cited_annotation"])
                except ValidationError as exc:
                    raise PackageError(f"{where}: {'; '.join(exc.messages)}") from None
                if citation.start is not None:
                    text = citation.source.text
                    if not (0 <= citation.start < citation.end <= len(text)) or (
                        text[citation.start : citation.end] != citation.exact
                    ):
                        raise PackageError(
                            f"{where}: the cited passage {citation.start}-{citation.end} does not"
                            f" match the text of source {citation.source.uuid}."
                        )
                rows.append(citation)
        Citation.objects.bulk_create(rows)
        self.result.citations_created += len(rows)

    @staticmethod
    def _citation(spec, iri, annotation, position, sources, annotations) -> Citation:
        common = {
            "annotation": annotation,
            "position": position,
            "locator": str(spec.get("locator", "")),
            "locator_label": str(spec.get("locator_label", "") or Citation.LocatorLabel.PAGE),
            "comment": str(spec.get("comment", "")),
        }
        if spec.get("source"):
            ref = source_uuid_from_ref(spec["source"])
            source = sources.get(uuid.UUID(ref)) if ref else None
            if source is not None:
                exact = spec.get("exact", "")
                start, end = spec.get("start"), spec.get("end")
                return Citation(
                    kind=Citation.Kind.SOURCE,
                    source=source,
                    start=start,
                    end=end,
                    exact=exact,
                    **common,
                )
            title = "An archived source that is not in this package"
            return Citation(kind=Citation.Kind.EXTERNAL, url=iri, title=title, **common)
        if spec.get("annotation"):
            cited = annotations.get(uuid.UUID(spec["annotation"]))
            if cited is not None:
                return Citation(kind=Citation.Kind.ANNOTATION, cited_annotation=cited, **common)
            title = "An annotation that is not in this package"
            return Citation(kind=Citation.Kind.EXTERNAL, url=iri, title=title, **common)
        accessed = spec.get("date_accessed") or None
        if accessed:
            try:
                accessed = date.fromisoformat(str(accessed))
            except ValueError:
                raise PackageError(
                    f"Annotation {annotation.uuid}, citation {position + 1}: dateAccessed"
                    f" “{accessed}” is not a date (YYYY-MM-DD)."
                ) from None
        doi = str(spec.get("doi", ""))
        doi = re.sub(r"^https?://(dx\.)?doi\.org/", "", doi, flags=re.I)
        return Citation(
            kind=Citation.Kind.EXTERNAL,
            url=str(spec.get("url", "")),
            doi=doi,
            title=str(spec.get("title", "")),
            creators=[str(c) for c in spec.get("creators", []) if c],
            publisher=str(spec.get("publisher", "")),
            date_published=str(spec.get("date_published", "")),
            date_accessed=accessed,
            reference_type=str(spec.get("reference_type", "") or Citation.ReferenceType.WEBPAGE),
            **common,
        )

    def _source(self, spec: dict, collection: Collection, details: dict) -> Source:
        provenance = spec["provenance_doc"]
        usable = self._visible_sources()
        if not self.trusted:
            usable = usable.addable_to(collection, self.importer)
        found, claimed = self._resolve(usable, spec["uuid"])
        if found is not None:
            if found.sha256 != spec["sha256"].lower():
                raise PackageError(
                    f"Source {spec['uuid']} is already here with other bytes than the"
                    f" package's {spec['original']}: refused."
                )
            collection.sources.add(found)
            self.result.sources_existing += 1
            return found
        archived_by = provenance.get("archived_by")
        try:
            archived = archive_chunks(
                self.package.chunks(spec["original"]),
                user=self._person(archived_by, details) if archived_by else None,
                via=(
                    provenance["archived_via"]
                    if provenance.get("archived_via") in Source.Via.values
                    else Source.Via.IMPORT
                ),
                filename=str(provenance.get("original_filename", ""))[:300],
                declared_type=str(provenance.get("declared_media_type", "")),
                original_url=str(provenance.get("original_url", "")),
                collection=collection,
                source_uuid=claimed,
                archived_at=_moment(provenance.get("archived_at"), f"{spec['uuid']} archived_at"),
            )
        except ArchiveError as exc:
            raise PackageError(f"{spec['original']} could not be archived: {exc}") from None
        source = archived.source
        if archived.created:
            self.written_blobs.append(source.blob_name)
        if source.sha256 != spec["sha256"]:
            raise PackageError(
                f"{spec['original']} has SHA-256 {source.sha256}, not the {spec['sha256']}"
                " the package declares: refused."
            )
        if not archived.created:
            # The same bytes were already archived here under another UUID: use that source.
            self.result.sources_existing += 1
            return source
        self._apply_metadata(source, spec)
        checks = [
            FixityCheck(
                source=source,
                checked_at=_moment(c.get("checked_at"), "fixity check"),
                ok=bool(c.get("ok")),
                observed_sha256=str(c.get("observed_sha256", ""))[:64],
                error=str(c.get("error", "")),
            )
            for c in provenance.get("fixity_checks", [])
            if isinstance(c, dict)
        ]
        FixityCheck.objects.bulk_create(checks)
        if provenance.get("fixity_checked_at"):
            Source.objects.filter(pk=source.pk).update(
                fixity_status=(
                    provenance["fixity_status"]
                    if provenance.get("fixity_status") in Source.Fixity.values
                    else Source.Fixity.UNCHECKED
                ),
                fixity_checked_at=_moment(provenance["fixity_checked_at"], "fixity_checked_at"),
            )
        self.result.sources_created += 1
        return source

    def _apply_metadata(self, source: Source, spec: dict) -> None:
        metadata = spec["metadata"]
        for name in Source.METADATA_FIELDS:
            if name in metadata:
                setattr(source, name, metadata[name])
        source.citation_key = unique_citation_key(str(source.citation_key), exclude_pk=source.pk)
        try:
            source.clean_fields(
                exclude=[
                    f.name for f in Source._meta.fields if f.name not in Source.METADATA_FIELDS
                ]
            )
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise PackageError(
                f"Source {spec['uuid']} has invalid metadata ({problems})."
            ) from None
        source.save(update_fields=list(Source.METADATA_FIELDS))
        index_source(source)

    def _delete_written_blobs(self) -> None:
        storage = archive_storage()
        for name in self.written_blobs:
            sha256 = name.rsplit("/", 1)[-1]
            # Another archive of the same bytes may have committed meanwhile: keep its blob.
            if not Source.objects.filter(sha256=sha256).exists():
                with contextlib.suppress(OSError):
                    storage.delete(name)


def import_package(
    package: Package, *, importer=None, progress: Callable[[str], None] | None = None
) -> ImportResult:
    """Import a verified package; ``importer`` (None on the command line) must be a curator
    or the owner of the collection if it already exists. Raises PackageError. ``progress``
    will be told how far the import has got ("1,200 of 40,000 annotations"); not yet called."""
    return _Importer(package, importer).run()
