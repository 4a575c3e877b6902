"""A collection as a REFI-QDA project (``.qdpx``) and its tags as a codebook (``.qdc``), for
ATLAS.ti, MAXQDA, NVivo, QualCoder and the other tools that speak QDA-XML 1.0.

A ``.qdpx`` is a zip of ``project.qde`` (QDA-XML, ``exports/schemas/Project-mrt2019.xsd``) and
``Sources/<guid>.txt``, each source's text layer as UTF-8. Selections count Unicode code points
in that text, the units of Scholion's anchors and of QualCoder (whose positions are Python string
indices). The zip is written as it is sent, as the bag is: the text files one by one, then the
XML element by element (lxml's incremental writer), so memory holds one text layer and one
chunk of annotations at a time.

Every GUID is derived from something an import keeps, so that a second export, or an export of
an imported copy, names the same things alike: a source or a selection is its Scholion UUID; a
note and a coding are named from their annotation's UUID; a code from its tag's name and a user
from their username (neither has a UUID). An import reads the mapping back through these functions.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
import zipfile
from collections.abc import Generator, Iterator
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from django.db.models import Field, QuerySet
from django.utils import timezone
from lxml import etree
from taggit.models import Tag

from annotations.models import CODE_COLOURS, Annotation, Code, TaggedAnnotation
from annotations.w3c import iso_z
from archive.models import Source
from exports.bag import _Sink
from exports.scope import CHUNK_SIZE, SOURCE_ORDER, ExportScope

if TYPE_CHECKING:
    from lxml.etree._serializer import _IncrementalFileWriter

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
# Every element written on its own declares the default namespace again, rather than take an
# "ns0:" prefix: some tools read the names without resolving prefixes.
NSMAP = {None: PROJECT_NS}
PROJECT_PATH = "project.qde"
SOFTWARE = "Scholion 0.1.0 (exports.qdpx)"
EMPTY_CODEBOOK = "(empty codebook)"
SEND_BYTES = 256 * 1024
SELECTION_NAME_CHARS = 80
# Text layers read at a time: each may be up to SCHOLION_MAX_TEXT_BYTES.
TEXTS_PER_FETCH = 4
# The names of things that have no UUID of their own (users, codes, notes, codings). A name,
# never fetched; changing it would rename everything that an earlier export named.
GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://scholion.org/ns/refi-qda")
# XML 1.0 cannot hold these at all, not even escaped; a note or title with one (pasted from a
# terminal, say) keeps a visible replacement instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# --- Names ---------------------------------------------------------------------------------


def user_guid(username: str) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, f"user:{username}"))


@lru_cache(maxsize=4096)  # a tag's name is hashed once, not once per coding
def code_guid(tag_name: str) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, f"code:{tag_name}"))


def source_guid(source_uuid: uuid.UUID) -> str:
    return str(source_uuid)


def selection_guid(annotation_uuid: uuid.UUID) -> str:
    return str(annotation_uuid)


def coding_guid(annotation_uuid: uuid.UUID, tag_name: str) -> str:
    return str(uuid.uuid5(annotation_uuid, f"coding:{tag_name}"))


def note_guid(annotation_uuid: uuid.UUID) -> str:
    return str(uuid.uuid5(annotation_uuid, "note"))


def text_path(source_uuid: uuid.UUID) -> str:
    """The zip member that holds a source's text; ``internal://`` names it in the XML."""
    return f"Sources/{source_guid(source_uuid)}.txt"


# --- Pieces --------------------------------------------------------------------------------


def xml_text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _when(moment: datetime) -> str:
    return iso_z(moment)


def _source_description(scope: ExportScope, source: Source, has_text: bool) -> str:
    """The source's metadata, original and archived copy, one "Label: value" line each."""
    lines = []
    for name in Source.METADATA_FIELDS:
        value = getattr(source, name)
        if isinstance(value, list):
            value = "; ".join(value)
        if value:
            field = Source._meta.get_field(name)
            assert isinstance(field, Field)
            label = str(field.verbose_name)
            lines.append(f"{label[:1].upper()}{label[1:]}: {value}")
    lines += [
        f"Original file: {source.original_filename}" if source.original_filename else "",
        f"Original URL: {source.original_url}" if source.original_url else "",
        f"Media type: {source.media_type}",
        f"SHA-256: {source.sha256}",
        f"Archived copy: {scope.source_iri(source)}",
    ]
    if not has_text:
        lines.append("Scholion has no text layer of this source (its text file is empty).")
    return xml_text("\n".join(line for line in lines if line))


def exported_tags(scope: ExportScope) -> QuerySet[Tag]:
    """The tags the exported annotations carry, in name order: the project's codes."""
    tagged = TaggedAnnotation.objects.filter(
        content_object__in=scope.annotations().order_by().values("pk")
    )
    return Tag.objects.filter(pk__in=tagged.values("tag_id")).order_by("name")


def _codes(scope: ExportScope, namespace: str) -> etree._Element | None:
    """The export's codes: the collection's codebook, nested as its hierarchy is, each with
    its description and colour; then the other tags its annotations carry, flat. None when
    there are none (``Codes`` must hold at least one ``Code``)."""
    codebook = Code.tree(list(Code.objects.of(scope.collection)))
    tag_names = list(exported_tags(scope).values_list("name", flat=True))
    if dataclasses.replace(scope.filters, collection=""):
        # A narrowed export holds the codes its passages carry, and their parents.
        by_pk = {code.pk: code for code, _depth in codebook}
        kept: set[int] = set()
        for code, _depth in codebook:
            if code.tag.name in tag_names:
                step: Code | None = code
                while step is not None and step.pk not in kept:
                    kept.add(step.pk)
                    step = by_pk.get(step.parent_id) if step.parent_id else None
        codebook = [(code, depth) for code, depth in codebook if code.pk in kept]
    if not codebook and not tag_names:
        return None
    codes = etree.Element(f"{{{namespace}}}Codes", nsmap={None: namespace})
    placed: dict[int, etree._Element] = {}
    for code, _depth in codebook:
        attributes = {
            "guid": code_guid(code.tag.name),
            "name": xml_text(code.tag.name),
            "isCodable": "true",
        }
        if code.colour:
            attributes["color"] = CODE_COLOURS[code.colour].background
        parent = placed.get(code.parent_id) if code.parent_id else None
        element = etree.SubElement(
            parent if parent is not None else codes, f"{{{namespace}}}Code", attributes
        )
        if code.description:
            # The schema's order: Description, then sub-codes.
            etree.SubElement(element, f"{{{namespace}}}Description").text = xml_text(
                code.description
            )
        placed[code.pk] = element
    in_codebook = {code.tag.name for code, _depth in codebook}
    for name in tag_names:
        if name not in in_codebook:  # a personal tag: flat, as Scholion's tags were
            etree.SubElement(
                codes,
                f"{{{namespace}}}Code",
                guid=code_guid(name),
                name=xml_text(name),
                isCodable="true",
            )
    return codes


def _label(quote: str) -> str:
    """A selection's or a note's name: its quote, cut short."""
    if len(quote) > SELECTION_NAME_CHARS:
        quote = quote[: SELECTION_NAME_CHARS - 1] + "…"
    return xml_text(quote)


def _selection(annotation: Annotation, author_guid: str) -> etree._Element:
    q = f"{{{PROJECT_NS}}}"
    created = _when(annotation.created)
    selection = etree.Element(
        f"{q}PlainTextSelection",
        guid=selection_guid(annotation.uuid),
        name=_label(annotation.exact),
        startPosition=str(annotation.start),
        endPosition=str(annotation.end),
        creatingUser=author_guid,
        creationDateTime=created,
        modifiedDateTime=_when(annotation.modified),
        nsmap=NSMAP,
    )
    for tag in annotation.tags.all():
        coding = etree.SubElement(
            selection,
            f"{q}Coding",
            guid=coding_guid(annotation.uuid, tag.name),
            creatingUser=author_guid,
            creationDateTime=created,
        )
        etree.SubElement(coding, f"{q}CodeRef", targetGUID=code_guid(tag.name))
    if annotation.note:
        etree.SubElement(selection, f"{q}NoteRef", targetGUID=note_guid(annotation.uuid))
    return selection


def _note(row: tuple, author_guid: str) -> etree._Element:
    annotation_uuid, note, _, created, modified, exact = row
    q = f"{{{PROJECT_NS}}}"
    element = etree.Element(
        f"{q}Note",
        guid=note_guid(annotation_uuid),
        name=f"Note on “{_label(exact)}”",
        creatingUser=author_guid,
        creationDateTime=_when(created),
        modifiedDateTime=_when(modified),
        nsmap=NSMAP,
    )
    etree.SubElement(element, f"{q}PlainTextContent").text = xml_text(note)
    return element


# --- The package ---------------------------------------------------------------------------


class _ZipStream:
    def __init__(self, dated: bool) -> None:
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED)
        self.now = timezone.now()
        # Undated, the members carry zip's earliest time, as reproducible builds do.
        self.stamp = self.now.timetuple()[:6] if dated else (1980, 1, 1, 0, 0, 0)

    def info(self, path: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def pending(self) -> Iterator[bytes]:
        if self.sink.size >= SEND_BYTES:
            yield self.sink.drain()


def qdpx_chunks(scope: ExportScope, *, dated: bool = True) -> Iterator[bytes]:
    """The ``.qdpx`` zip as a stream of bytes. Undated, nothing in it says when it was
    exported: the BagIt package, which says so itself, holds it undated, so that its payload
    comes back byte for byte from an import (as the round-trip test requires)."""
    out = _ZipStream(dated)
    sources = scope.source_list()
    archivers, empty = yield from _text_files(out, sources)
    authors = scope.authors()
    author_guids = {pk: user_guid(u.get_username()) for pk, u in authors.items()}
    exporter = scope.user.get_username() if scope.user.is_authenticated else None
    usernames = {u.get_username() for u in authors.values()} | set(archivers.values())
    usernames |= {exporter} if exporter else set()

    q = f"{{{PROJECT_NS}}}"
    project = {"name": xml_text(scope.collection.title), "origin": SOFTWARE}
    if exporter:
        project["creatingUserGUID"] = user_guid(exporter)
    if dated:
        project["creationDateTime"] = _when(out.now)
    member = out.zip.open(out.info(PROJECT_PATH), "w", force_zip64=True)
    with member, etree.xmlfile(member, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(f"{q}Project", project, nsmap=NSMAP):
            # The schema's order: Users, CodeBook, (Variables, Cases), Sources, Notes.
            users = etree.Element(f"{q}Users", nsmap=NSMAP)
            for username in sorted(usernames):
                etree.SubElement(
                    users, f"{q}User", guid=user_guid(username), name=xml_text(username)
                )
            xf.write(users)
            codes = _codes(scope, PROJECT_NS)
            if codes is not None:
                codebook = etree.Element(f"{q}CodeBook", nsmap=NSMAP)
                codebook.append(codes)
                xf.write(codebook)
            if sources:
                with xf.element(f"{q}Sources"):
                    yield from _text_sources(xf, out, scope, archivers, empty, author_guids)
            notes = _note_rows(scope).iterator(chunk_size=CHUNK_SIZE)
            row = next(notes, None)
            if row is not None:
                with xf.element(f"{q}Notes"):
                    while row is not None:
                        xf.write(_note(row, author_guids[row[2]]))
                        row = next(notes, None)
                        yield from out.pending()
    out.zip.close()
    yield out.sink.drain()


def _text_files(
    out: _ZipStream, sources: list[Source]
) -> Generator[bytes, None, tuple[dict[int, str], set[int]]]:
    """Write each source's text layer as ``Sources/<guid>.txt``, a few read at a time;
    return who archived each source and which have no text (by primary key)."""
    archivers: dict[int, str] = {}
    empty: set[int] = set()
    texts = (
        Source.objects.filter(pk__in=[s.pk for s in sources])
        .order_by(*SOURCE_ORDER)
        .values_list("pk", "uuid", "text", "archived_by__username")
    )
    for pk, source_uuid, text, archiver in texts.iterator(chunk_size=TEXTS_PER_FETCH):
        if archiver:
            archivers[pk] = archiver
        if not text:
            empty.add(pk)
        out.zip.writestr(out.info(text_path(source_uuid)), text.encode("utf-8"))
        yield from out.pending()
    return archivers, empty


def _text_sources(
    xf: _IncrementalFileWriter,
    out: _ZipStream,
    scope: ExportScope,
    archivers: dict[int, str],
    empty: set[int],
    author_guids: dict[int, str],
) -> Iterator[bytes]:
    """Each source as a TextSource holding its selections; the annotations come in the
    sources' order (both sorted by title, then UUID), so one pass reads them all."""
    q = f"{{{PROJECT_NS}}}"
    annotations = scope.iter_annotations()
    pending = next(annotations, None)
    names: set[str] = set()
    for source in scope.source_list():
        attributes = {
            "guid": source_guid(source.uuid),
            "name": _unique(xml_text(source.title), names),
            "plainTextPath": f"internal://{source_guid(source.uuid)}.txt",
        }
        if source.pk in archivers:
            attributes["creatingUser"] = user_guid(archivers[source.pk])
        attributes["creationDateTime"] = _when(source.archived_at)
        with xf.element(f"{q}TextSource", attributes):
            description = etree.Element(f"{q}Description", nsmap=NSMAP)
            description.text = _source_description(scope, source, source.pk not in empty)
            xf.write(description)
            while pending is not None and pending.source_id == source.pk:
                xf.write(_selection(pending, author_guids[pending.author_id]))
                pending = next(annotations, None)
                yield from out.pending()


def _unique(name: str, taken: set[str]) -> str:
    """The name, numbered if another source has it: tools that name files after their
    sources (QualCoder) refuse a second source of the same name."""
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name} ({n})"
    taken.add(unique)
    return unique


def _note_rows(scope: ExportScope) -> QuerySet:
    return (
        scope.annotations()
        .exclude(note="")
        .values_list("uuid", "note", "author_id", "created", "modified", "exact")
    )


# --- The codebook alone --------------------------------------------------------------------


def qdc_codebook(scope: ExportScope) -> Iterator[str]:
    """The tags of the export as a REFI-QDA codebook (``.qdc``), for tools that import only
    codes. Small (one element per tag), so it is built whole."""
    root = etree.Element(f"{{{CODEBOOK_NS}}}CodeBook", origin=SOFTWARE, nsmap={None: CODEBOOK_NS})
    codes = _codes(scope, CODEBOOK_NS)
    if codes is None:
        # The schema wants at least one code: an empty codebook is one code that says so,
        # not codable, so that no tool offers to code with it.
        codes = etree.Element(f"{{{CODEBOOK_NS}}}Codes", nsmap={None: CODEBOOK_NS})
        empty = etree.SubElement(
            codes,
            f"{{{CODEBOOK_NS}}}Code",
            guid=code_guid(EMPTY_CODEBOOK),
            name=EMPTY_CODEBOOK,
            isCodable="false",
        )
        etree.SubElement(empty, f"{{{CODEBOOK_NS}}}Description").text = xml_text(
            f"“{scope.collection.title}” had no codes and no tagged passages when exported."
        )
    root.append(codes)
    yield etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode(
        "utf-8"
    )
