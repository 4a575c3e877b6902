"""Importing a Scholion BagIt package: the collection, its sources and their annotations.

First the bag is verified whole (every checksum) and its two documents read and checked
(``exports.package_documents``); nothing is written until all of that has passed. Then the
import writes in short transactions (a source, or a few hundred annotations, each), so that
other people's writes go on meanwhile, and keeps what it writes hidden until it is complete
(``exports.models.PendingImport``): a failure, or a process killed halfway, leaves nothing
anyone can see, and what was written is deleted. The original bytes go through archive
ingest, so identical bytes are stored once and their SHA-256 is computed again and compared
with the package's.

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
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone

from annotations.models import AnchorError, Annotation, Citation, CitationSpec, Comment
from annotations.w3c import source_uuid_from_ref
from archive.extract.html import HTML_EXTRACTOR
from archive.ingest import ArchiveError, archive_chunks, reusable_source
from archive.models import Collection, FixityCheck, Source, SourceQuerySet, unique_citation_key
from exports.models import (
    ABANDONED_AFTER,
    PENDING_REASON,
    ImportJob,
    PendingImport,
    PendingObject,
)
from exports.package import Package, PackageError, verify_bag
from exports.package_documents import (
    AnnotationRow,
    CommentRow,
    moment,
    read_annotations,
    read_manifest,
)
from search.index import index_source

log = logging.getLogger(__name__)

# Names the UUID a package's object takes here when another person's object holds its own.
DERIVED_UUIDS = uuid.UUID("5c4b61f0-7a0e-4d35-9a51-2b0c7e6f9d13")
# Annotations written in one transaction: short enough that other writers wait well under
# SQLite's busy timeout for the write lock.
ANNOTATIONS_PER_TRANSACTION = 500
HOLD_BEFORE_PAUSE = 0.5
PAUSE_FOR_WRITERS = 0.15


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
    comments_created: int = 0
    comments_existing: int = 0
    comments_skipped: int = 0
    people_created: list[str] = field(default_factory=list)
    # What could not be kept as it was (a REFI-QDA project's): [{"what", "items", "more"}].
    report: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.collection_created
            or self.sources_created
            or self.annotations_created
            or self.comments_created
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
        if self.comments_created or self.comments_existing or self.comments_skipped:
            parts.append(
                f"{self.comments_created} replies and notes on sources added,"
                f" {self.comments_existing} already here"
                + (
                    f", {self.comments_skipped} left out (what they answer is not here)"
                    if self.comments_skipped
                    else ""
                )
            )
        if self.people_created:
            parts.append(
                f"{len(self.people_created)} inactive accounts created for authors:"
                f" {', '.join(self.people_created)}"
            )
        return "; ".join(parts) + "."


# --- Writing -------------------------------------------------------------------------------


class _Importer:
    def __init__(
        self,
        package: Package,
        importer,
        progress: Callable[[str], None] | None,
        job: ImportJob | None,
    ) -> None:
        self.package = package
        self.importer = importer
        self.progress = progress or (lambda text: None)
        self.job = job
        self.people: dict[str, Any] = {}
        # Sources already here that the collection gets when the import is complete.
        self.existing_sources: list[Source] = []
        # Set by run() before anything is written, and read only from then on.
        self.pending: PendingImport
        self.holding = 0.0  # seconds of transactions since the last pause
        # Past PendingImport.complete: the collection is there, and must not be discarded.
        self.completed = False

    @property
    def trusted(self) -> bool:
        """The command line (no importer) and curators may use anything, and may import
        other people's work under their names."""
        return self.importer is None or self.importer.is_staff

    def run(self) -> ImportResult:
        self.progress("Checking the package")
        checksums = verify_bag(self.package)
        manifest = read_manifest(self.package, checksums)
        sources = manifest["sources"]
        comments: list[CommentRow] = []
        annotations = read_annotations(self.package, {s["uuid"] for s in sources}, comments)
        self._check_people(manifest, annotations, comments)
        for abandoned in PendingImport.objects.abandoned(self.job):
            abandoned.discard()
        self._refuse_if_unfinished({s["uuid"] for s in sources})
        self.pending = PendingImport.objects.create(job=self.job, importer=self.importer)
        try:
            collection = self._write(manifest, annotations)
            self.progress("Making the collection visible")
            self.pending.complete(
                collection,
                is_public=manifest["collection"].get("is_public", False),
                existing_sources=self.existing_sources,
            )
            self.completed = True
            if comments:
                self.progress(f"Adding {len(comments):,} replies and notes")
                self._write_comments(comments, collection, manifest)
        except DatabaseError as exc:
            if self.completed:
                raise PackageError(
                    "The collection was imported, but its replies and notes on whole sources"
                    f" could not be written ({exc})."
                ) from None
            self._discard()
            raise PackageError(
                f"The package could not be written to the database ({exc})."
            ) from None
        except BaseException:
            if not self.completed:
                self._discard()
            raise
        return self.result

    def _write_comments(self, rows: list[CommentRow], collection: Collection, manifest) -> None:
        """Replies and notes on whole sources, once the collection is complete, in one
        transaction: written before, a note would hold on to a source that a failed import
        must delete (Comment.source is protected). One already here (the same UUID) is kept
        as it is, so importing a package again adds none twice."""
        details = {
            p["username"]: p
            for p in manifest["people"]
            if isinstance(p, dict) and isinstance(p.get("username"), str)
        }
        with transaction.atomic():
            taken = set(
                Comment.objects.filter(uuid__in=[row.uuid for row in rows]).values_list(
                    "uuid", flat=True
                )
            )
            sources = {
                s.uuid: s for s in Source.objects.filter(collections=collection).only("pk", "uuid")
            }
            package_uuids = {row.reply_to for row in rows if row.reply_to} | {
                row.uuid for row in rows
            }
            # What a reply answers: the annotation the package's UUID names here for the
            # importer (the one imported, or one already here), or a note written here.
            usable = self._visible_annotations().select_related("collection")
            annotations = {a.uuid: a for a in usable.filter(uuid__in=package_uuids)}
            if self.importer is not None:
                derived = {self._derived_uuid(u): u for u in package_uuids - annotations.keys()}
                for a in usable.filter(uuid__in=derived):
                    annotations[derived[a.uuid]] = a
            readable = Comment.objects.all()
            if not self.trusted:
                readable = readable.visible_to(self.importer)
            notes: dict[uuid.UUID, Comment] = {c.uuid: c for c in readable.filter(uuid__in=taken)}
            for row in rows:
                if row.uuid in taken:
                    self.result.comments_existing += 1
                    continue
                fields: dict[str, Any] = {
                    "uuid": row.uuid,
                    "author": self._person(row.author, details),
                    "note": row.note,
                    "created": row.created,
                    "modified": row.modified,
                }
                if row.source_uuid is not None:
                    fields.update(
                        source=sources[row.source_uuid],
                        collection=collection,
                        visibility=row.visibility,
                    )
                elif row.reply_to in annotations and (
                    self.trusted
                    or Comment.may_reply(
                        self.importer,
                        annotations[row.reply_to].collection,
                        annotations[row.reply_to].author_id,
                    )
                ):
                    parent = annotations[row.reply_to]
                    fields.update(source_id=parent.source_id, reply_to_annotation=parent)
                elif row.reply_to in notes:
                    note = notes[row.reply_to]
                    fields.update(source_id=note.source_id, reply_to_note=note)
                else:
                    # What it answers is neither in the package nor here for the importer,
                    # or is not theirs to answer.
                    self.result.comments_skipped += 1
                    continue
                notes[row.uuid] = Comment.objects.create(**fields)
                self.result.comments_created += 1

    def _refuse_if_unfinished(self, uuids: set[uuid.UUID]) -> None:
        """An earlier import of this package by the same person (or any, for a curator),
        stopped halfway a moment ago or still running, holds its sources hidden: wait for it
        to finish or be discarded, rather than import them a second time."""
        earlier = PendingImport.objects.holding(Source, uuids)
        if not self.trusted:
            earlier = earlier.filter(importer=self.importer)
        if earlier.exists():
            minutes = int(ABANDONED_AFTER.total_seconds() // 60)
            raise PackageError(
                "An earlier import of this package has not finished: try again once it has,"
                f" or in {minutes} minutes if it was stopped (what it wrote is then discarded)."
            )

    def _discard(self) -> None:
        try:
            self.pending.discard()
        except Exception:
            # Still hidden; the next import discards it once it is abandoned.
            log.exception("discarding the unfinished import %s failed", self.pending.pk)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One short transaction of the import, noted as progress on its PendingImport."""
        started = time.monotonic()
        with transaction.atomic():
            yield
            self.pending.touch()
        self.holding += time.monotonic() - started
        if self.holding >= HOLD_BEFORE_PAUSE and connection.vendor == "sqlite":
            # SQLite has one write lock and no queue for it: a writer waiting on its busy
            # timeout retries every 100 ms or so, and would never find the lock free between
            # transactions that follow each other at once. A pause lets waiting writers in.
            time.sleep(PAUSE_FOR_WRITERS)
            self.holding = 0.0

    def _check_people(
        self, manifest: dict, annotations: list[AnnotationRow], comments: list[CommentRow]
    ) -> None:
        """Only a curator may import work under other people's names. The refusal names the
        package's people, never whether they have accounts here."""
        if self.trusted:
            return
        named = {row.author for row in annotations} | {row.author for row in comments}
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
            self.pending.record(PendingObject.Kind.PERSON, user)
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
        candidates = [package_uuid]
        if not self.trusted:
            candidates.append(self._derived_uuid(package_uuid))
        for candidate in candidates:
            found = usable.filter(uuid=candidate).first()
            if found is not None:
                return found, candidate
            if not model.objects.filter(uuid=candidate).exists():
                return None, candidate
        raise PackageError(f"{package_uuid} cannot be imported here: its UUID is taken.")

    def _collection(self, spec: dict, details: dict) -> Collection:
        """The collection the package names, or a new one (private until the import is
        complete). A slug held by a collection the importer cannot see is treated as absent:
        the new collection takes a slug derived from it and the importer (the same on every
        import of the package by them)."""
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
                    is_public=False,
                    owner=(self._person(spec["owner"], details) if self.trusted else self.importer),
                    created_at=moment(spec.get("created_at"), "collection.created_at"),
                )
                self.pending.record(PendingObject.Kind.COLLECTION, collection)
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

    def _visible_sources(self) -> SourceQuerySet:
        """Sources the importer may refer to: not another unfinished import's, hidden."""
        sources = Source.objects.exclude(pk__in=PendingImport.unfinished(PendingObject.Kind.SOURCE))
        return sources if self.trusted else sources.visible_to(self.importer)

    def _visible_annotations(self) -> models.QuerySet:
        annotations = Annotation.objects.exclude(
            pk__in=PendingImport.unfinished(PendingObject.Kind.ANNOTATION)
        )
        return annotations if self.trusted else annotations.visible_to(self.importer)

    def _write(self, manifest: dict, annotations: list[AnnotationRow]) -> Collection:
        details = {
            p["username"]: p
            for p in manifest["people"]
            if isinstance(p, dict) and isinstance(p.get("username"), str)
        }
        with self._transaction():
            collection = self._collection(manifest["collection"], details)

        by_uuid: dict[uuid.UUID, Source] = {}
        sources = manifest["sources"]
        for n, spec in enumerate(sources, 1):
            self.progress(f"Archiving sources: {n - 1:,} of {len(sources):,}")
            with self._transaction():
                by_uuid[spec["uuid"]] = self._source(spec, collection, details)

        # The package's annotation UUIDs, and those of annotations already here that the
        # importer can see, name the annotations a citation may point at.
        cited: dict[uuid.UUID, Annotation] = {}
        citing: list[tuple[Annotation, list[tuple[CitationSpec, str]]]] = []
        for start in range(0, len(annotations), ANNOTATIONS_PER_TRANSACTION):
            self.progress(f"Adding annotations: {start:,} of {len(annotations):,}")
            with self._transaction():
                rows = annotations[start : start + ANNOTATIONS_PER_TRANSACTION]
                self._annotations(rows, by_uuid, details, cited, citing)
        for start in range(0, len(citing), ANNOTATIONS_PER_TRANSACTION):
            self.progress(f"Adding citations: {start:,} of {len(citing):,} annotations")
            with self._transaction():
                chunk = citing[start : start + ANNOTATIONS_PER_TRANSACTION]
                self._write_citations(chunk, by_uuid, cited)
        return collection

    def _annotations(
        self,
        rows: list[AnnotationRow],
        sources: dict[uuid.UUID, Source],
        details: dict,
        cited: dict[uuid.UUID, Annotation],
        citing: list[tuple[Annotation, list[tuple[CitationSpec, str]]]],
    ) -> None:
        """Write one transaction's annotations, in no collection until the import is
        complete (so that only their authors see them on sources already here)."""
        taken = set(
            Annotation.objects.filter(uuid__in=[row.uuid for row in rows]).values_list(
                "uuid", flat=True
            )
        )
        visible = self._visible_annotations()
        written = []
        for row in rows:
            claimed = row.uuid
            if row.uuid in taken:
                found, claimed = self._resolve(visible, row.uuid)
                if found is not None:
                    self.result.annotations_existing += 1
                    cited[row.uuid] = found
                    continue
            source = sources[row.source_uuid]
            try:
                quote = Annotation.anchor(source.text, row.start, row.end, row.exact)
            except AnchorError as exc:
                raise PackageError(
                    f"Annotation {row.uuid}: its quote does not match the text of source"
                    f" {row.source_uuid} at {row.start}-{row.end} ({exc.message})"
                ) from None
            # Tags in the order the package lists them (the order they were added in);
            # citations come later, once every annotation they may cite exists.
            annotation, _tags = Annotation.write_anchored(
                quote,
                tags=row.tags,
                uuid=claimed,
                source=source,
                collection=None,
                author=self._person(row.author, details),
                start=row.start,
                end=row.end,
                note=row.note,
                visibility=row.visibility,
                created=row.created,
                modified=row.modified,
                canonical=row.canonical,
                via=row.via,
            )
            written.append(annotation)
            cited[row.uuid] = annotation
            if row.citations:
                citing.append((annotation, row.citations))
        self.pending.record(PendingObject.Kind.ANNOTATION, *written)
        self.result.annotations_created += len(written)

    def _write_citations(
        self,
        citing: list[tuple[Annotation, list[tuple[CitationSpec, str]]]],
        sources: dict[uuid.UUID, Source],
        annotations: dict[uuid.UUID, Annotation],
    ) -> None:
        """The citations of annotations just written, once all of them exist (they may
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
                # A passage has both ends and a source (full_clean checked the constraints).
                source, start, end = citation.source, citation.start, citation.end
                if source is not None and start is not None and end is not None:
                    text = source.text
                    if not (0 <= start < end <= len(text)) or (text[start:end] != citation.exact):
                        raise PackageError(
                            f"{where}: the cited passage {start}-{end} does not"
                            f" match the text of source {source.uuid}."
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
        """The package's source: one already here that the importer may use (added to the
        collection when the import is complete), or a new one, withdrawn until then."""
        provenance = spec["provenance_doc"]
        usable = self._visible_sources()
        if not self.trusted:
            usable = usable.addable_to(collection, self.importer)
        found, claimed = self._resolve(usable, spec["uuid"])
        if found is not None and found.sha256 != spec["sha256"].lower():
            raise PackageError(
                f"Source {spec['uuid']} is already here with other bytes than the"
                f" package's {spec['original']}: refused."
            )
        archived_by = provenance.get("archived_by")
        archiver = self._person(archived_by, details) if archived_by else None
        # The same bytes already archived here under another UUID, as a source the person
        # who archived them may add to this collection: that source is used.
        if found is None:
            # Only one whose text layer the package's annotations were made on.
            extractor = provenance.get("extractor")
            found = reusable_source(
                spec["sha256"].lower(),
                archiver,
                collection,
                extractor=extractor if isinstance(extractor, str) else "",
            )
            if (
                found is not None
                and PendingImport.unfinished(PendingObject.Kind.SOURCE)
                .filter(object_id=found.pk)
                .exists()
            ):
                found = None  # another import's, hidden until that one is complete
        if found is not None:
            self.existing_sources.append(found)
            self.result.sources_existing += 1
            return found
        try:
            archived = archive_chunks(
                self.package.chunks(spec["original"]),
                user=archiver,
                via=(
                    provenance["archived_via"]
                    if provenance.get("archived_via") in Source.Via.values
                    else Source.Via.IMPORT
                ),
                filename=str(provenance.get("original_filename", ""))[:300],
                declared_type=str(provenance.get("declared_media_type", "")),
                original_url=str(provenance.get("original_url", "")),
                source_uuid=claimed,
                archived_at=moment(provenance.get("archived_at"), f"{spec['uuid']} archived_at"),
                reuse=False,
                # The annotations' offsets index the text layer the exporting archive made:
                # a page kept whole there (or archived before articles) is kept whole here.
                whole_page=provenance.get("extractor") == HTML_EXTRACTOR[0],
            )
        except ArchiveError as exc:
            raise PackageError(f"{spec['original']} could not be archived: {exc}") from None
        source = archived.source
        self.pending.record(PendingObject.Kind.SOURCE, source)
        self.pending.record_blob(source.blob_name)
        source.withdrawn_at, source.withdrawn_reason = timezone.now(), PENDING_REASON
        source.save(update_fields=["withdrawn_at", "withdrawn_reason"])
        collection.sources.add(source)
        if source.sha256 != spec["sha256"].lower():
            raise PackageError(
                f"{spec['original']} has SHA-256 {source.sha256}, not the {spec['sha256']}"
                " the package declares: refused."
            )
        self._apply_metadata(source, spec)
        checks = [
            FixityCheck(
                source=source,
                checked_at=moment(c.get("checked_at"), "fixity check"),
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
                fixity_checked_at=moment(provenance["fixity_checked_at"], "fixity_checked_at"),
            )
        self.result.sources_created += 1
        return source

    def _apply_metadata(self, source: Source, spec: dict) -> None:
        metadata = spec["metadata"]
        for name in Source.METADATA_FIELDS:
            if name in metadata:
                setattr(source, name, metadata[name])
        if "source_type" not in metadata:
            # A package from before sources had a type: the type its references assumed.
            source.source_type = source.inferred_type()
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


def import_package(
    package: Package,
    *,
    importer=None,
    progress: Callable[[str], None] | None = None,
    job: ImportJob | None = None,
    into: Collection | None = None,
) -> ImportResult:
    """Import a package: a Scholion bag, or a REFI-QDA project (told apart by content);
    ``importer`` (None on the command line) must be a curator or the owner of the collection
    if it already exists. Raises PackageError. ``progress`` is told how far the import has
    got ("Adding annotations: 1,000 of 40,000"); ``job``, the ImportJob it runs for (an
    earlier run's unfinished writes are discarded first). ``into``: the collection a
    project goes into (a bag brings its own)."""
    # Here, not at the top: exports.qdpx_import builds on this module's _Importer.
    from exports.qdpx_import import import_qdpx, is_qdpx

    if is_qdpx(package):
        return import_qdpx(package, importer=importer, progress=progress, job=job, into=into)
    if into is not None:
        raise PackageError(
            "This is a Scholion package, which brings its own collection: import it without"
            " choosing one."
        )
    return _Importer(package, importer, progress, job).run()
