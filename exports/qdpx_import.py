"""Importing a REFI-QDA project (``.qdpx``) that another tool made: ATLAS.ti, MAXQDA, NVivo,
QualCoder, or Scholion itself (``exports.qdpx``).

The package is read as a bag is (``exports.package``: paths, sizes and compression checked
from the zip's headers and again while reading) and refused whole when it is malformed or
hostile: ``project.qde`` is parsed without a DTD, entities or network access, and validated
against the vendored REFI-QDA Project schema before anything is written. Then it is written
with the bag importer's machinery (``exports.importer``): short transactions, everything
hidden until the last one, everything deleted if it fails.

What Scholion has no place for is never dropped silently: the import's report lists it
(``ImportResult.report``, shown on the import's page and printed by ``import_collection``).
A text source's Word document (``richTextPath``) and a PDF source are archived as such, with
Scholion's own text layer; selections counted in the tool's plain text of them are found there
by their quote, as Hypothesis annotations are (``exports.hypothesis.anchor_quote``); PDF area
selections, which name no text, are reported. GUIDs are UUIDs, and sources and selections keep
theirs, so that exporting an imported project names everything as the first export did
(``exports.qdpx``'s naming functions).
"""

from __future__ import annotations

import bisect
import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Field
from django.utils import timezone
from django.utils.text import slugify
from lxml import etree

from annotations.models import Annotation, Code
from annotations.w3c import MAX_TAG_LENGTH, tag_name_error
from archive.extract import decode_plain
from archive.extract.zipped import DOCX_TYPE
from archive.ingest import ArchiveError, archive_chunks, reusable_source
from archive.models import Collection, Source, unique_citation_key
from exports.hypothesis import Orphan, anchor_quote
from exports.importer import ANNOTATIONS_PER_TRANSACTION, ImportResult, _Importer
from exports.models import PENDING_REASON, ImportJob, PendingImport, PendingObject
from exports.package import Package, PackageError, check_member_path
from exports.qdpx import PROJECT_NS, PROJECT_PATH
from search.index import index_source

SCHEMA_PATH = settings.BASE_DIR / "exports" / "schemas" / "Project-mrt2019.xsd"
# A project's XML is parsed whole (to be validated), so it is bounded on its own; the text
# files are bounded by the package's limits and SCHOLION_MAX_UPLOAD_BYTES, as bags are.
MAX_PROJECT_BYTES = 256 * 1024 * 1024
# More members than any project needs (a source and its rich text each): a zip of millions
# of empty members is refused before they are listed one by one.
MAX_MEMBERS = 200_000
# Characters either side of a quote read from a plain text, to choose between places it occurs.
QUOTE_CONTEXT = 32
# Items shown per kind of problem in the report: the rest are counted.
REPORT_ITEMS = 50
Q = f"{{{PROJECT_NS}}}"


def is_qdpx(package: Package) -> bool:
    """A REFI-QDA project, recognised by its content: ``project.qde`` at the top, no bag."""
    names = package.names()
    return PROJECT_PATH in names and "bagit.txt" not in names


# --- Reading and checking the XML ----------------------------------------------------------


@lru_cache(maxsize=1)
def project_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), _safe_parser()))


def _safe_parser() -> etree.XMLParser:
    # No DTD is loaded and no entity expanded or fetched: a project needs none, and they are
    # how XML reads local files (XXE), calls out, or inflates (billion laughs).
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def read_project(package: Package) -> etree._Element:
    """``project.qde``, parsed safely and valid against the REFI-QDA Project schema."""
    names = package.names()
    if len(names) > MAX_MEMBERS:
        raise PackageError(
            f"The project holds {len(names):,} files, more than the {MAX_MEMBERS:,} an import"
            " reads: refused."
        )
    for name in names:
        check_member_path(name)
    data = b"".join(_bounded(package.chunks(PROJECT_PATH)))
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise PackageError(f"project.qde is not well-formed XML ({exc}).") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise PackageError(
            "project.qde declares a DTD (which can define entities that read files or expand"
            " without end); a REFI-QDA project has none: refused."
        )
    schema = project_schema()
    if not schema.validate(root):
        error = schema.error_log[0]
        raise PackageError(
            f"project.qde is not a valid REFI-QDA project (line {error.line}: {error.message})."
        )
    return root


def _bounded(chunks: Iterable[bytes]) -> Iterable[bytes]:
    read = 0
    for chunk in chunks:
        read += len(chunk)
        if read > MAX_PROJECT_BYTES:
            raise PackageError(
                f"project.qde is larger than {MAX_PROJECT_BYTES:,} bytes, more than a project"
                " import reads: refused."
            )
        yield chunk


def _when(value: str | None) -> datetime | None:
    """An xsd:dateTime as an aware datetime (UTC when it names no zone), or None."""
    if not value:
        return None
    # Python reads at most six decimals of a second; some tools write seven.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _guid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value.strip("{}")) if value else None


def _attr(element: etree._Element, name: str) -> str:
    """An attribute the schema requires (the project was validated)."""
    value = element.get(name)
    assert value is not None, f"{element.tag!r} without {name} passed the schema"
    return value


def _id(element: etree._Element, name: str = "guid") -> uuid.UUID:
    return uuid.UUID(_attr(element, name).strip("{}"))


def _child(element: etree._Element, name: str) -> etree._Element:
    found = element.find(Q + name)
    assert found is not None, f"{element.tag!r} without {name} passed the schema"
    return found


def _refs(element: etree._Element, name: str) -> list[uuid.UUID]:
    return [_id(ref, "targetGUID") for ref in element.findall(Q + name)]


# --- What the project holds ----------------------------------------------------------------


@dataclass
class QdaCode:
    guid: uuid.UUID
    name: str
    parent: uuid.UUID | None
    notes: list[uuid.UUID]


@dataclass
class QdaSelection:
    guid: uuid.UUID
    name: str
    start: int
    end: int
    user: uuid.UUID | None
    created: datetime | None
    modified: datetime | None
    codes: list[uuid.UUID]
    notes: list[uuid.UUID]
    coding_notes: list[tuple[uuid.UUID, uuid.UUID]]  # (code, note)


@dataclass
class QdaSource:
    guid: uuid.UUID
    name: str
    kind: str  # "text", "docx" (a Word transcript) or "pdf"
    path: str | None  # the member holding the bytes, or None with ``content``
    content: str | None
    user: uuid.UUID | None
    created: datetime | None
    description: str
    selections: list[QdaSelection]
    notes: list[uuid.UUID]
    # The plain text the selections' offsets count in, when the bytes archived are not that
    # text (a Word transcript's plain text, a PDF's text representation): a member, or the
    # text itself. Neither: the offsets count in the text layer Scholion derives.
    plain_path: str | None = None
    plain_content: str | None = None

    @property
    def has_plain(self) -> bool:
        return self.plain_path is not None or self.plain_content is not None

    def plain_instead(self) -> QdaSource | None:
        """The source as its plain text, for a Word transcript that cannot be archived as
        such (outside the package, missing, unreadable); None without a plain text."""
        if self.kind != "docx" or not self.has_plain:
            return None
        return QdaSource(
            guid=self.guid,
            name=self.name,
            kind="text",
            path=self.plain_path,
            content=self.plain_content,
            user=self.user,
            created=self.created,
            description=self.description,
            selections=self.selections,
            notes=self.notes,
        )


@dataclass
class QdaNote:
    guid: uuid.UUID
    name: str
    text: str


@dataclass
class QdaProject:
    name: str
    description: str
    creating_user: uuid.UUID | None
    created: datetime | None
    users: dict[uuid.UUID, str]
    codes: dict[uuid.UUID, QdaCode]
    sources: list[QdaSource]
    notes: dict[uuid.UUID, QdaNote]
    project_notes: list[uuid.UUID]


class Report:
    """What the import could not keep as it was, by kind, for the person who imported."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, item: str) -> None:
        self.items[kind].append(item)

    def as_list(self) -> list[dict[str, Any]]:
        return [
            {"what": kind, "items": items[:REPORT_ITEMS], "more": max(0, len(items) - REPORT_ITEMS)}
            for kind, items in self.items.items()
        ]


# Kinds of things in the report, in words.
NOT_KEPT = "Not imported: Scholion has no place for these yet"
MISMATCH = "Selections whose name is not the text at their offsets (imported at the offsets given)"
UTF16 = "Selections whose offsets count UTF-16 units, not code points (converted)"
OUT_OF_RANGE = "Selections outside their source's text (not imported)"
NOT_FOUND = (
    "Selections whose text is not in the source's text layer here (not imported, rather"
    " than attached to the wrong passage)"
)
PDF_AREAS = (
    "PDF selections, which mark an area of a page rather than a passage of text (not"
    " imported: Scholion will not guess the words inside an area; the PDF is kept)"
)
DOCX_AS_PLAIN = "Word transcripts imported as their plain text"
OUTSIDE = "Files outside the package, which an import cannot read"
MISSING = "Files the project names that are not in the package"
SOURCES_SKIPPED = "Sources not imported"
RENAMED = "Codes renamed to be tags"
MERGED = "Codes of the same name, which became one tag"
PEOPLE = "People"
NOTES_KEPT = "Notes kept in the collection's description"
CODING_NOTES = "Notes on codings, added to their passage's note"
LINE_ENDS = "Sources with Windows line ends (offsets converted to the text's single line ends)"


def _text(element: etree._Element, name: str) -> str:
    found = element.find(Q + name)
    return (found.text or "") if found is not None else ""


def _internal(path: str | None, what: str) -> str | None:
    """The zip member an ``internal://`` path names; others are outside the package."""
    if not path or not path.startswith("internal://"):
        return None
    name = path[len("internal://") :]
    check_member_path(name)  # refuses ../ and absolute paths, naming the package hostile
    if not name:
        raise PackageError(f"{what} has an empty internal:// path.")
    return f"Sources/{name}"


def parse_project(root: etree._Element, report: Report) -> QdaProject:
    """The parts of a valid project Scholion keeps; everything else goes to ``report``."""
    users = {
        _id(u): (u.get("name") or u.get("id") or "") for u in root.iterfind(f"{Q}Users/{Q}User")
    }
    codes: dict[uuid.UUID, QdaCode] = {}

    def walk(element: etree._Element, parent: uuid.UUID | None) -> None:
        for code in element.iterfind(Q + "Code"):
            guid = _id(code)
            codes[guid] = QdaCode(guid, code.get("name", ""), parent, _refs(code, "NoteRef"))
            walk(code, guid)

    codebook = root.find(f"{Q}CodeBook/{Q}Codes")
    if codebook is not None:
        walk(codebook, None)

    sources: list[QdaSource] = []
    for element in root.iterfind(f"{Q}Sources/*"):
        kind = etree.QName(element).localname
        name = element.get("name") or "Untitled source"
        if kind == "TextSource":
            sources.append(_text_source(element, name, report))
        elif kind == "PDFSource":
            sources.append(_pdf_source(element, name, report))
        else:
            label = kind.removesuffix("Source").lower()
            report.add(NOT_KEPT, f"{label} source “{name}”")
    notes = {}
    for element in root.iterfind(f"{Q}Notes/{Q}Note"):
        guid = _id(element)
        text = _text(element, "PlainTextContent")
        path = element.get("plainTextPath")
        notes[guid] = QdaNote(guid, element.get("name") or "", text)
        if not text and path:
            notes[guid].text = path  # read from the package by the importer
        if element.find(Q + "PlainTextSelection") is not None:
            report.add(NOT_KEPT, f"selections inside the note “{element.get('name') or guid}”")
    for part, label in (
        ("Cases", "cases"),
        ("Variables", "variables"),
        ("Sets", "sets"),
        ("Graphs", "graphs"),
        ("Links", "links"),
    ):
        found = root.find(Q + part)
        if found is not None:
            report.add(NOT_KEPT, f"{label} ({len(found)})")
    return QdaProject(
        name=root.get("name", "").strip() or "Imported project",
        description=_text(root, "Description"),
        creating_user=_guid(root.get("creatingUserGUID")),
        created=_when(root.get("creationDateTime")),
        users=users,
        codes=codes,
        sources=sources,
        notes=notes,
        project_notes=_refs(root, "NoteRef"),
    )


def _selections(element: etree._Element, source_name: str, report: Report) -> list[QdaSelection]:
    found = []
    for s in element.iterfind(Q + "PlainTextSelection"):
        codings = s.findall(Q + "Coding")
        found.append(
            QdaSelection(
                guid=_id(s),
                name=s.get("name") or "",
                start=int(_attr(s, "startPosition")),
                end=int(_attr(s, "endPosition")),
                user=_guid(s.get("creatingUser")),
                created=_when(s.get("creationDateTime")),
                modified=_when(s.get("modifiedDateTime")),
                codes=[_id(_child(c, "CodeRef"), "targetGUID") for c in codings],
                notes=_refs(s, "NoteRef"),
                coding_notes=[
                    (_id(_child(c, "CodeRef"), "targetGUID"), note)
                    for c in codings
                    for note in _refs(c, "NoteRef")
                ],
            )
        )
        if _text(s, "Description"):
            report.add(NOT_KEPT, f"the description of a selection in “{source_name}”")
    if element.find(Q + "Coding") is not None:
        report.add(NOT_KEPT, f"codes of the whole source “{source_name}” (tags mark passages)")
    if element.find(Q + "VariableValue") is not None:
        report.add(NOT_KEPT, f"variable values of “{source_name}”")
    return found


def _text_source(
    element: etree._Element, name: str, report: Report, *, representation: bool = False
) -> QdaSource:
    """A TextSource: its plain text (``plainTextPath`` or ``PlainTextContent``), and the
    Word document it was transcribed in (``richTextPath``), which is what is archived when
    the package holds it: the plain text then says where the selections lie."""
    content_element = element.find(Q + "PlainTextContent")
    content = (content_element.text or "") if content_element is not None else None
    plain = element.get("plainTextPath")
    plain_member = _internal(plain, f"Source “{name}”")
    rich = element.get("richTextPath")
    rich_member = _internal(rich, f"Source “{name}”")
    if plain and plain_member is None:
        report.add(OUTSIDE, f"the plain text of “{name}” ({plain})")
    if rich and rich_member is None:
        report.add(OUTSIDE, f"the Word document of “{name}” ({rich})")
    source = QdaSource(
        guid=_id(element),
        name=name,
        kind="text",
        path=plain_member,
        content=content,
        user=_guid(element.get("creatingUser")),
        created=_when(element.get("creationDateTime")),
        description=_text(element, "Description"),
        selections=_selections(element, name, report),
        notes=_refs(element, "NoteRef"),
    )
    if rich_member is not None:
        source.kind, source.path, source.content = "docx", rich_member, None
        source.plain_path, source.plain_content = plain_member, content
    elif plain_member is None and content is None and not representation:
        report.add(SOURCES_SKIPPED, f"“{name}”: the package holds none of its text")
    return source


def _pdf_source(element: etree._Element, name: str, report: Report) -> QdaSource:
    path = element.get("path")
    member = _internal(path, f"Source “{name}”")
    if path and member is None:
        report.add(OUTSIDE, f"the PDF of “{name}” ({path})")
        report.add(SOURCES_SKIPPED, f"“{name}”: its PDF is not in the package")
    areas = element.findall(Q + "PDFSelection")
    if areas:
        report.add(PDF_AREAS, f"{len(areas)} in “{name}”")
    source = QdaSource(
        guid=_id(element),
        name=name,
        kind="pdf",
        path=member,
        content=None,
        user=_guid(element.get("creatingUser")),
        created=_when(element.get("creationDateTime")),
        description=_text(element, "Description"),
        selections=[],
        notes=_refs(element, "NoteRef"),
    )
    representation = element.find(Q + "Representation")
    if representation is not None:
        # The tool's own text of the PDF: its selections are anchored by their quote in
        # the text layer Scholion reads from the PDF, which need not match it offset for
        # offset. A representation without its text gives no quote to look for.
        text = _text_source(
            representation, f"{name} (text representation)", report, representation=True
        )
        if text.kind == "docx":
            text.path, text.content = text.plain_path, text.plain_content
        if text.path is None and text.content is None:
            if text.selections:
                report.add(
                    SOURCES_SKIPPED,
                    f"the {len(text.selections)} selections of the text representation of"
                    f" “{name}”, whose text is not in the package",
                )
        else:
            source.selections = text.selections
            source.plain_path, source.plain_content = text.path, text.content
    return source


# --- Scholion's own descriptions, read back ------------------------------------------------


def _metadata_labels() -> dict[str, str]:
    """exports.qdpx writes a source's metadata as "Label: value" lines; label -> field."""
    labels = {}
    for name in Source.METADATA_FIELDS:
        label = str(Source._meta.get_field(name).verbose_name)  # type: ignore[union-attr]
        labels[f"{label[:1].upper()}{label[1:]}"] = name
    return labels


SCHOLION_LINES = ("Original file", "Original URL", "Media type", "SHA-256", "Archived copy")


def read_description(description: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The metadata and provenance a Scholion export wrote in a source's description, or
    None when another tool wrote it (then it is the source's description as it stands)."""
    if "\nSHA-256: " not in f"\n{description}" or "\nArchived copy: " not in description:
        return None
    labels = _metadata_labels()
    metadata: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    current: tuple[dict, str] | None = None
    for line in description.split("\n"):
        label, _, value = line.partition(": ")
        if label in labels and _:
            current = (metadata, labels[label])
            metadata[labels[label]] = value
        elif label in SCHOLION_LINES and _:
            current = (provenance, label)
            provenance[label] = value
        elif line.startswith("Scholion has no text layer"):
            current = None
        elif current is not None:
            target, key = current
            target[key] += "\n" + line
    for name in ("creators", "editors"):
        if name in metadata:
            metadata[name] = [part for part in metadata[name].split("; ") if part]
    return metadata, provenance


# --- Offsets -------------------------------------------------------------------------------


def line_end_mapping(raw: str) -> Callable[[int], int] | None:
    """How offsets in the text file (with ``\\r\\n``) become offsets in its text layer,
    where each ``\\r\\n`` is one ``\\n`` (archive.extract.normalise_newlines); None if the
    file has no ``\\r\\n``."""
    removed = [m.start() for m in re.finditer("\r\n", raw)]
    if not removed:
        return None
    return lambda offset: offset - bisect.bisect_left(removed, offset)


def code_points_from_utf16(text: str, unit: int) -> int | None:
    """The code-point offset of a UTF-16 offset in ``text``, or None if it splits a pair."""
    units = 0
    for index, char in enumerate(text):
        if units == unit:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
        if units > unit:
            return None
    return len(text) if units == unit else None


def _names_text(name: str, selected: str) -> bool:
    """Whether a selection's name is its text, whole or cut short (as tools name them)."""
    core = name.strip().removesuffix("…").removesuffix("...").strip()
    if not core:
        return True
    squeeze = " ".join
    return squeeze(selected.split()).startswith(squeeze(core.split()))


# --- Writing -------------------------------------------------------------------------------


def keep_codebook(
    collection: Collection, codes: dict[uuid.UUID, QdaCode], tag_names: dict[uuid.UUID, str]
) -> None:
    """Every code of the project becomes a code of the collection's codebook, under the
    parent it had, used by a selection or not (a codebook lists the codes a team may use)."""
    tags = {tag.name.casefold(): tag for tag in Annotation.tags_named(list(tag_names.values()))}
    made = {
        guid: Code.objects.get_or_create(collection=collection, tag=tags[name.casefold()])[0]
        for guid, name in tag_names.items()
    }
    for guid, code in made.items():
        parent = codes[guid].parent
        if parent in made and code.parent_id is None:
            code.parent = made[parent]
            code.save(update_fields=["parent"])


def _exports_text_of(spec: QdaSource, source: Source) -> bool:
    """Whether ``spec`` is Scholion's export of ``source`` as its text layer (a PDF, a Word
    document, a web page): its description names the archived original's SHA-256."""
    scholion = read_description(spec.description)
    return (
        scholion is not None
        and spec.kind == "text"
        and source.sha256 != ""
        and scholion[1].get("SHA-256", "").strip() == source.sha256
    )


# What each kind of source is declared as, and the ending its file is named with.
DECLARED = {
    "text": ("text/plain", ".txt"),
    "docx": (DOCX_TYPE, ".docx"),
    "pdf": ("application/pdf", ".pdf"),
}


@dataclass
class _Placed:
    source: Source
    layer_offsets: Callable[[int], int] | None = None
    # The text the selections' offsets count in, when it is not the source's text layer:
    # each selection's quote is read from it and looked for in the text layer.
    plain: str | None = None
    selections: list[QdaSelection] = field(default_factory=list)


class QdpxImporter(_Importer):
    def __init__(
        self,
        package: Package,
        importer,
        progress: Callable[[str], None] | None,
        job: ImportJob | None,
        into: Collection | None,
    ) -> None:
        super().__init__(package, importer, progress, job)
        self.into = into
        self.report = Report()
        self.named_others: set[str] = set()
        self.used_notes: set[uuid.UUID] = set()

    def run(self) -> ImportResult:
        self.progress("Checking the project")
        root = read_project(self.package)
        project = parse_project(root, self.report)
        self._check_members(project)
        for abandoned in PendingImport.objects.abandoned(self.job):
            abandoned.discard()
        self._refuse_if_unfinished({s.guid for s in project.sources})
        self.pending = PendingImport.objects.create(job=self.job, importer=self.importer)
        try:
            collection, appendix = self._write_project(project)
            self.progress("Making the collection visible")
            with transaction.atomic():
                if appendix:
                    collection.refresh_from_db(fields=["description"])
                    collection.description = (collection.description + appendix).strip()
                    collection.save(update_fields=["description"])
                self.pending.complete(
                    collection, is_public=False, existing_sources=self.existing_sources
                )
        except DatabaseError as exc:
            self._discard()
            raise PackageError(
                f"The project could not be written to the database ({exc})."
            ) from None
        except BaseException:
            self._discard()
            raise
        if self.named_others:
            self.report.add(
                PEOPLE,
                f"The project names {', '.join(sorted(self.named_others)[:10])}: their work"
                " is imported under your name (only a curator imports work under other"
                " people's names).",
            )
        self.result.report = self.report.as_list()
        return self.result

    def _check_members(self, project: QdaProject) -> None:
        """Every file the project names is in the package (a missing one is reported, not
        guessed at); the paths were checked when the project was read."""
        names = set(self.package.names())
        for n, source in enumerate(project.sources):
            if source.plain_path is not None and source.plain_path not in names:
                self.report.add(MISSING, f"the plain text of “{source.name}” ({source.plain_path})")
                source.plain_path = None
            if source.path is None or source.path in names:
                continue
            plain = source.plain_instead()
            if plain is not None:
                self.report.add(MISSING, f"the Word document of “{source.name}” ({source.path})")
                self.report.add(DOCX_AS_PLAIN, f"“{source.name}”: its Word document is missing")
                project.sources[n] = plain
            else:
                self.report.add(
                    SOURCES_SKIPPED, f"“{source.name}”: {source.path} is not in the package"
                )
                source.path = None
        for note in project.notes.values():
            if note.text.startswith("internal://"):
                member = _internal(note.text, f"Note “{note.name}”")
                note.text = (
                    self.package.read_bytes(member).decode("utf-8", "replace")
                    if member in names
                    else ""
                )

    # --- People ----------------------------------------------------------------------

    def _username(self, project: QdaProject, guid: uuid.UUID | None) -> str | None:
        """The username a project's user GUID becomes: its name, made a valid username,
        or, for a GUID the project lists no user for, a name derived from the GUID."""
        if guid is None:
            return None
        name = project.users.get(guid, "")
        username = re.sub(r"[^\w.@+-]", "_", name.strip())[:150].strip("_")
        return username or f"qda-user-{str(guid)[:8]}"

    def _author(self, project: QdaProject, guid: uuid.UUID | None, fallback) -> Any:
        username = self._username(project, guid)
        if username is None:
            return fallback
        if not self.trusted:
            if username != self.importer.get_username():
                self.named_others.add(username)
            return self.importer
        return self._person(username, {})

    # --- The collection ----------------------------------------------------------------

    def _target(self, project: QdaProject) -> Collection:
        if self.into is not None:
            self.result = ImportResult(collection=self.into)
            found = Collection.objects.filter(pk=self.into.pk)
            if not self.trusted:
                found = found.filter(owner=self.importer)
            collection = found.first()
            if collection is None:
                raise PackageError("There is no collection of yours to import this project into.")
            self.result.collection = collection
            return collection
        owner = self._username(project, project.creating_user)
        if not self.trusted:
            owner = self.importer.get_username()
        elif owner is None:
            if self.importer is not None:
                owner = self.importer.get_username()
            elif project.users:
                owner = self._username(project, next(iter(project.users)))
        if owner is None:
            raise PackageError(
                "The project names no user to own a new collection: import it into an"
                " existing collection (import_collection --collection SLUG)."
            )
        spec = {
            "slug": slugify(project.name)[:80].strip("-") or "qda-project",
            "title": project.name[:300],
            "description": project.description,
            "owner": owner,
            "created_at": (project.created or timezone.now()).isoformat(),
        }
        return self._collection(spec, {})

    # --- Sources ---------------------------------------------------------------------

    def _write_project(self, project: QdaProject) -> tuple[Collection, str]:
        with self._transaction():
            collection = self._target(project)
        self.default_author = self.importer if self.importer is not None else collection.owner
        placed: list[_Placed] = []
        for n, spec in enumerate(project.sources, 1):
            self.progress(f"Archiving sources: {n - 1:,} of {len(project.sources):,}")
            with self._transaction():
                found = self._qda_source(spec, project, collection)
            if found is not None:
                placed.append(found)

        tag_names = self._tag_names(project)
        rows = [(p, s) for p in placed for s in p.selections]
        for start in range(0, len(rows), ANNOTATIONS_PER_TRANSACTION):
            self.progress(f"Adding annotations: {start:,} of {len(rows):,}")
            with self._transaction():
                for where, selection in rows[start : start + ANNOTATIONS_PER_TRANSACTION]:
                    self._selection(where, selection, project, tag_names)
        keep_codebook(collection, project.codes, tag_names)
        return collection, self._appendix(project, collection)

    def _qda_source(
        self, spec: QdaSource, project: QdaProject, collection: Collection
    ) -> _Placed | None:
        if spec.content is None and spec.path is None:
            self._skip_selections(spec)  # why was reported when the project was read
            return None
        if spec.content is not None:
            content = spec.content.encode("utf-8")
            sha256, size = hashlib.sha256(content).hexdigest(), len(content)
            chunks: Callable[[], Iterator[bytes]] = lambda: iter([content])  # noqa: E731
        else:
            path = spec.path
            assert path is not None
            sha256, size = self.package.sha256(path)
            chunks = lambda: self.package.chunks(path)  # noqa: E731
        if size == 0:
            self.report.add(SOURCES_SKIPPED, f"“{spec.name}”: its text is empty")
            self._skip_selections(spec)
            return None
        archiver = self._author(project, spec.user, self.default_author)
        usable = self._visible_sources()
        if not self.trusted:
            usable = usable.addable_to(collection, self.importer)
        found, claimed = self._resolve(usable, spec.guid)
        exported_text = (
            found is not None and found.sha256 != sha256 and _exports_text_of(spec, found)
        )
        if found is not None and found.sha256 != sha256 and not exported_text:
            plain = spec.plain_instead()
            if plain is not None:
                # An earlier import kept the transcript as its plain text (its Word document
                # could not be read then): the same source, found again by its plain text.
                return self._qda_source(plain, project, collection)
            raise PackageError(
                f"Source {spec.guid} (“{spec.name}”) is already here with other bytes: refused."
            )
        if found is None:
            # The same bytes already archived, as a source the archiver may add here.
            found = reusable_source(sha256, archiver, collection)
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
            source = found
        else:
            try:
                source = self._archive(spec, chunks(), archiver, claimed)
            except ArchiveError as exc:
                plain = spec.plain_instead()
                if plain is not None:
                    # A transcript whose Word document cannot be read is still its text.
                    self.report.add(DOCX_AS_PLAIN, f"“{spec.name}”: {exc}")
                    return self._qda_source(plain, project, collection)
                self.report.add(SOURCES_SKIPPED, f"“{spec.name}”: {exc}")
                self._skip_selections(spec)
                return None
            collection.sources.add(source)
        place = _Placed(source)
        if spec.selections and not source.text:
            self.report.add(
                SOURCES_SKIPPED,
                f"the {len(spec.selections)} selections of “{spec.name}”, which has no text"
                " layer here",
            )
            return place
        if exported_text:
            pass  # its offsets count in the text layer they were exported from
        elif spec.kind == "text" and spec.content is None:
            place.layer_offsets = self._line_ends(spec, b"".join(chunks()))
        elif spec.has_plain:
            place.plain = self._plain_text(spec)
            if place.plain is None:
                self._skip_selections(spec)
                return place
        elif spec.kind == "pdf" and spec.selections:
            # A PDF has no text of its own a tool's offsets could count in.
            self._skip_selections(spec)
            return place
        place.selections = spec.selections
        return place

    def _plain_text(self, spec: QdaSource) -> str | None:
        """The plain text a source's selections count their offsets in, or None (reported)
        when it cannot be read: larger than a text layer may be, or not text."""
        if spec.plain_content is not None:
            return spec.plain_content
        assert spec.plain_path is not None
        limit = settings.SCHOLION_MAX_TEXT_BYTES
        _sha256, size = self.package.sha256(spec.plain_path)
        if size > limit:
            self.report.add(
                SOURCES_SKIPPED,
                f"“{spec.name}”: its plain text is larger than the {limit:,} bytes a text"
                " layer may hold, so its selections cannot be placed",
            )
            return None
        try:
            return decode_plain(self.package.read_bytes(spec.plain_path))[0]
        except ValueError as exc:
            self.report.add(SOURCES_SKIPPED, f"“{spec.name}”: its plain text is not text ({exc})")
            return None

    def _skip_selections(self, spec: QdaSource) -> None:
        if spec.selections:
            self.report.add(
                SOURCES_SKIPPED, f"the {len(spec.selections)} selections of “{spec.name}”"
            )

    def _line_ends(self, spec: QdaSource, data: bytes) -> Callable[[int], int] | None:
        try:
            raw = decode_plain(data)[0]
        except ValueError:
            return None
        mapping = line_end_mapping(raw)
        if mapping is not None:
            self.report.add(LINE_ENDS, f"“{spec.name}”")
        return mapping

    def _archive(
        self, spec: QdaSource, chunks: Iterator[bytes], archiver, claimed: uuid.UUID
    ) -> Source:
        """The source's bytes, archived and hidden until the import completes; raises
        ArchiveError (nothing written) for bytes that cannot be archived."""
        scholion = read_description(spec.description)
        metadata, provenance = scholion if scholion is not None else ({}, {})
        declared, suffix = DECLARED[spec.kind]
        if scholion is not None:
            # Scholion's export names the original file when there was one, and only then.
            filename = provenance.get("Original file", "")
        else:
            filename = spec.name if spec.name.lower().endswith(suffix) else spec.name + suffix
        archived = archive_chunks(
            chunks,
            user=archiver,
            via=Source.Via.IMPORT,
            filename=filename[:300],
            declared_type=declared,
            original_url=provenance.get("Original URL", ""),
            source_uuid=claimed,
            archived_at=spec.created,
            reuse=False,
        )
        source = archived.source
        self.pending.record(PendingObject.Kind.SOURCE, source)
        self.pending.record_blob(source.blob_name)
        source.withdrawn_at, source.withdrawn_reason = timezone.now(), PENDING_REASON
        source.save(update_fields=["withdrawn_at", "withdrawn_reason"])
        self._describe(source, spec, metadata)
        self.result.sources_created += 1
        return source

    def _describe(self, source: Source, spec: QdaSource, metadata: dict[str, Any]) -> None:
        """The source's title is its name in the project; Scholion's own description gives
        back the metadata it was written from; another tool's is the description."""
        values: dict[str, Any] = dict(metadata)
        if not metadata:
            values = {"title": spec.name[:500]}
            if spec.description:
                values["description"] = spec.description
        for name, value in values.items():
            setattr(source, name, value)
        source.citation_key = unique_citation_key(str(source.citation_key), exclude_pk=source.pk)
        try:
            source.clean_fields(
                exclude=[f.name for f in Source._meta.fields if f.name not in values]
            )
        except ValidationError as exc:
            for name in exc.message_dict:
                if name != "title":
                    default = Source._meta.get_field(name)
                    assert isinstance(default, Field)
                    setattr(source, name, default.get_default())
            self.report.add(
                NOT_KEPT,
                f"metadata of “{spec.name}” that Scholion does not accept"
                f" ({', '.join(sorted(exc.message_dict))})",
            )
        source.save(update_fields=list(Source.METADATA_FIELDS))
        index_source(source)

    # --- Selections ------------------------------------------------------------------

    def _tag_names(self, project: QdaProject) -> dict[uuid.UUID, str]:
        names = {}
        for guid, code in project.codes.items():
            name = code.name.strip().replace(",", ";").replace('"', "'")[:MAX_TAG_LENGTH]
            if tag_name_error(name):
                name = f"code-{str(guid)[:8]}"
            if name != code.name:
                self.report.add(RENAMED, f"“{code.name}” became “{name}”")
            names[guid] = name
        # Tags are matched by name regardless of case: codes that differ only under
        # different parents (two "Other"s) become one tag, which the report says.
        spelled: dict[str, list[uuid.UUID]] = defaultdict(list)
        for guid, name in names.items():
            spelled[name.upper()].append(guid)
        for guids in spelled.values():
            if len(guids) > 1:
                self.report.add(MERGED, f"“{names[guids[0]]}” ({len(guids)} codes)")
        return names

    def _place(self, where: _Placed, s: QdaSelection) -> tuple[int, int] | None:
        if where.plain is not None:
            return self._place_by_quote(where, where.plain, s)
        return self._place_at_offsets(where, where.source.text, s)

    def _place_by_quote(
        self, where: _Placed, plain: str, s: QdaSelection
    ) -> tuple[int, int] | None:
        """A selection counted in another text than the text layer (a Word transcript's
        plain text, a PDF's text representation): its quote, read there, is looked for in
        the text layer, exactly, then ignoring whitespace, then approximately near the
        same offsets; one that cannot be found with confidence is reported, not guessed."""
        found = self._place_at_offsets(where, plain, s)
        if found is None:
            return None
        start, end = found
        context = QUOTE_CONTEXT
        # Where to look for a changed quote: the same share of the way through the text
        # layer, which a different reading of the same document need not match offset for
        # offset, and drifts from in proportion.
        scale = len(where.source.text) / len(plain)
        try:
            anchor = anchor_quote(
                where.source.text,
                plain[start:end],
                plain[max(0, start - context) : start],
                plain[end : end + context],
                (round(start * scale), round(end * scale)),
            )
        except Orphan as exc:
            label = f"“{s.name[:60]}” in “{where.source.title[:60]}” ({s.start}-{s.end})"
            self.report.add(NOT_FOUND, f"{label}: {exc}")
            return None
        return anchor.start, anchor.end

    def _place_at_offsets(
        self, where: _Placed, text: str, s: QdaSelection
    ) -> tuple[int, int] | None:
        """A selection's offsets in ``text``, checked against its name (which tools make of
        its first words)."""
        start, end = s.start, s.end
        if where.layer_offsets is not None:
            start, end = where.layer_offsets(start), where.layer_offsets(end)
        label = f"“{s.name[:60]}” in “{where.source.title[:60]}” ({s.start}-{s.end})"
        if not (0 <= start < end <= len(text)):
            self.report.add(OUT_OF_RANGE, label)
            return None
        if _names_text(s.name, text[start:end]):
            return start, end
        if any(ord(c) > 0xFFFF for c in text):
            a, b = code_points_from_utf16(text, start), code_points_from_utf16(text, end)
            if a is not None and b is not None and a < b and _names_text(s.name, text[a:b]):
                self.report.add(UTF16, label)
                return a, b
        self.report.add(MISMATCH, f"{label}: the text there is “{text[start:end][:60]}”")
        return start, end

    def _selection(
        self,
        where: _Placed,
        s: QdaSelection,
        project: QdaProject,
        tag_names: dict[uuid.UUID, str],
    ) -> None:
        claimed = s.guid
        if Annotation.objects.filter(uuid=s.guid).exists():
            found, claimed = self._resolve(self._visible_annotations(), s.guid)
            if found is not None:
                self.result.annotations_existing += 1
                self._kept(s, tag_names)
                return
        placed = self._place(where, s)
        if placed is None:
            return
        self._kept(s, tag_names)
        start, end = placed
        quote = Annotation.anchor(where.source.text, start, end)
        tags = []
        for code in s.codes:
            if code in tag_names:
                tags.append(tag_names[code])
            else:
                self.report.add(NOT_KEPT, f"a coding with a code the codebook lacks ({code})")
        notes = [project.notes[n].text for n in s.notes if n in project.notes]
        for code, note in s.coding_notes:
            if note in project.notes:
                label = tag_names.get(code, str(code))
                notes.append(f"On “{label}”: {project.notes[note].text}")
                self.report.add(CODING_NOTES, f"on “{label}” in “{where.source.title[:60]}”")
        created = s.created or timezone.now()
        annotation, _tags = Annotation.write_anchored(
            quote,
            tags=list(dict.fromkeys(tags)),
            uuid=claimed,
            source=where.source,
            collection=None,
            author=self._author(project, s.user or project.creating_user, self.default_author),
            start=start,
            end=end,
            note="\n\n".join(n for n in notes if n),
            visibility=Annotation.Visibility.COLLECTION,
            created=created,
            modified=s.modified or created,
        )
        self.pending.record(PendingObject.Kind.ANNOTATION, annotation)
        self.result.annotations_created += 1

    def _kept(self, s: QdaSelection, tag_names: dict[uuid.UUID, str]) -> None:
        """The selection's notes and codes are kept on its annotation (written now, or by
        an earlier import of the project)."""
        self.used_notes.update(s.notes)
        self.used_notes.update(note for _, note in s.coding_notes)

    def _appendix(self, project: QdaProject, collection: Collection) -> str:
        """Notes on nothing Scholion keeps (the project, a source, a code, or nothing at
        all), as a section added to the collection's description: kept where everyone who
        reads the collection sees them, once (importing again adds nothing)."""
        attached: dict[uuid.UUID, str] = {}
        for ref in project.project_notes:
            attached[ref] = "on the project"
        for source in project.sources:
            for ref in source.notes:
                attached[ref] = f"on the source “{source.name}”"
        for code in project.codes.values():
            for ref in code.notes:
                attached[ref] = f"on the code “{code.name}”"
        blocks = []
        if self.into is not None and project.description.strip():
            # A new collection takes the project's description as its own.
            block = f"**Description of the project**:\n\n{project.description.strip()}"
            if block not in collection.description:
                blocks.append(block)
                self.report.add(NOTES_KEPT, "the description of the project")
        for guid, note in project.notes.items():
            if guid in self.used_notes or not note.text.strip():
                continue
            heading = note.name or "Note"
            where = attached.get(guid, "attached to nothing")
            block = f"**{heading}** ({where}):\n\n{note.text.strip()}"
            if block in collection.description:
                continue
            blocks.append(block)
            self.report.add(NOTES_KEPT, f"“{heading}” ({where})")
        if not blocks:
            return ""
        title = f"Notes from the REFI-QDA project “{project.name}”"
        return "\n\n" + "\n\n".join([f"## {title}", *blocks])


def import_qdpx(
    package: Package,
    *,
    importer=None,
    progress: Callable[[str], None] | None = None,
    job: ImportJob | None = None,
    into: Collection | None = None,
) -> ImportResult:
    """Import a REFI-QDA project into a new collection named after it, or ``into`` one the
    importer owns (any, for a curator or the command line). Raises PackageError."""
    return QdpxImporter(package, importer, progress, job, into).run()
