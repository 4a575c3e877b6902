"""Importing REFI-QDA projects (issue 31): projects laid out as other tools lay them out,
built here in code; the round trip through Scholion's own export; the report of what could
not be kept; hostile packages refused whole; who may import into which collection."""

from __future__ import annotations

import io
import re
import uuid
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from lxml import etree

from annotations.models import Annotation
from archive.models import Collection, Source
from exports.models import ImportJob
from exports.package import PackageError
from tests.conftest import run_worker
from tests.helpers import blob_files, counts, empty_everything, import_bytes, members

pytestmark = pytest.mark.django_db

NS = "urn:QDA-XML:project:1.0"
DATE = "2024-03-01T10:00:00Z"


def guid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def qdpx(project: str, files: dict[str, bytes] | None = None) -> bytes:
    """A .qdpx zip of ``project`` (the XML inside <Project>) and ``files``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        xml = project if project.lstrip().startswith("<?xml") or "<Project" in project else ""
        if not xml:
            xml = (
                '<?xml version="1.0" encoding="utf-8"?>\n'
                f'<Project xmlns="{NS}" name="Harbour study" origin="MAXQDA 2022"'
                f' creatingUserGUID="{guid(1)}" creationDateTime="{DATE}">{project}</Project>'
            )
        zf.writestr("project.qde", xml.encode("utf-8"))
        for name, data in (files or {}).items():
            zf.writestr(name, data)
    return out.getvalue()


USERS = (
    f'<Users><User guid="{guid(1)}" name="Ines Ortega"/>'
    f'<User guid="{guid(2)}" name="paul"/></Users>'
)
NESTED_CODES = (
    "<CodeBook><Codes>"
    f'<Code guid="{guid(10)}" name="Economy" isCodable="true" color="#aa0000">'
    f'<Code guid="{guid(11)}" name="Prices" isCodable="true"/>'
    f'<Code guid="{guid(12)}" name="Trade" isCodable="true">'
    f'<Code guid="{guid(13)}" name="Ships" isCodable="true"/></Code></Code>'
    f'<Code guid="{guid(14)}" name="Weather" isCodable="true"/>'
    "</Codes></CodeBook>"
)
HARBOUR = "The harbour froze in 1709.\nBread was dear, said the ledger.\n"


def selection(n, start, end, name, codes=(), notes=(), user=2) -> str:
    codings = "".join(
        f'<Coding guid="{guid(900 + n * 10 + i)}" creatingUser="{guid(user)}">'
        f'<CodeRef targetGUID="{guid(c)}"/></Coding>'
        for i, c in enumerate(codes)
    )
    refs = "".join(f'<NoteRef targetGUID="{guid(m)}"/>' for m in notes)
    return (
        f'<PlainTextSelection guid="{guid(n)}" name="{name}" startPosition="{start}"'
        f' endPosition="{end}" creatingUser="{guid(user)}" creationDateTime="{DATE}">'
        f"{codings}{refs}</PlainTextSelection>"
    )


def coded_project() -> bytes:
    """As MAXQDA or ATLAS.ti lay it out: users, nested codes, a text source in Sources/,
    selections with codings and a note, a note on the project, a case and a variable."""
    sources = (
        f'<Sources><TextSource guid="{guid(100)}" name="Ledger 1709"'
        f' plainTextPath="internal://{guid(100)}.txt" creatingUser="{guid(1)}"'
        f' creationDateTime="{DATE}">'
        + selection(200, 4, 26, "harbour froze in 1709", codes=[14, 13], notes=[300])
        + selection(201, 27, 41, "Bread was dear", codes=[11])
        + selection(202, 0, 3, "Something else")  # a name that is not its text
        + selection(203, 50, 500, "beyond the end")
        + "</TextSource></Sources>"
    )
    notes = (
        f'<Notes><Note guid="{guid(300)}" name="Memo" creatingUser="{guid(2)}">'
        "<PlainTextContent>Check against the port records.</PlainTextContent></Note>"
        f'<Note guid="{guid(301)}" name="Research question">'
        "<PlainTextContent>Did the frost raise prices?</PlainTextContent></Note></Notes>"
    )
    cases = f'<Cases><Case guid="{guid(400)}" name="Port"/></Cases>'
    variables = (
        f'<Variables><Variable guid="{guid(401)}" name="Year" typeOfVariable="Integer"/>'
        "</Variables>"
    )
    return qdpx(
        USERS + NESTED_CODES + variables + cases + sources + notes,
        {f"Sources/{guid(100)}.txt": HARBOUR.encode("utf-8")},
    )


def report_of(result) -> dict[str, list[str]]:
    return {part["what"]: part["items"] for part in result.report}


# --- Other tools' layouts ------------------------------------------------------------------


def test_a_project_with_nested_codes_only_reports_them_kept_flat(owner):
    result = import_bytes(qdpx(USERS + NESTED_CODES), importer=owner)
    collection = result.collection
    assert collection.title == "Harbour study" and collection.owner == owner
    assert Annotation.objects.count() == 0 and Source.objects.count() == 0
    report = report_of(result)
    flat = report["Nested codes kept flat (Scholion's tags have no parents yet)"]
    assert flat == ["Economy › Prices", "Economy › Trade", "Economy › Trade › Ships"]
    unused = report["Codes no selection uses (Scholion's tags exist on passages: not kept as tags)"]
    assert unused == ["“Economy”", "“Prices”", "“Trade”", "“Ships”", "“Weather”"]


def test_text_sources_selections_codings_and_notes_become_sources_and_annotations(curator):
    result = import_bytes(coded_project(), importer=curator)
    source = Source.objects.get(uuid=guid(100))
    assert source.title == "Ledger 1709" and source.original_filename == "Ledger 1709.txt"
    assert source.text == HARBOUR and source.media_type == "text/plain"
    ines = get_user_model().objects.get(username="Ines_Ortega")
    assert source.archived_by == ines and not ines.is_active and not ines.has_usable_password()
    assert result.collection.owner == ines and result.collection.slug == "harbour-study"

    froze = Annotation.objects.get(uuid=guid(200))
    # A name that is the start of its text (tools cut names short) matches.
    assert froze.exact == "harbour froze in 1709." and (froze.start, froze.end) == (4, 26)
    assert list(froze.tags.names()) == ["Weather", "Ships"]  # in the order of the codings
    assert froze.note == "Check against the port records."
    assert froze.author.username == "paul" and froze.collection == result.collection
    assert froze.created.isoformat() == "2024-03-01T10:00:00+00:00"
    bread = Annotation.objects.get(uuid=guid(201))
    assert bread.exact == "Bread was dear" and list(bread.tags.names()) == ["Prices"]
    assert not Annotation.objects.filter(uuid=guid(203)).exists()  # outside the text

    report = report_of(result)
    assert report["Not imported: Scholion has no place for these yet"] == ["1 cases", "1 variables"]
    assert report["Selections outside their source's text (not imported)"] == [
        "“beyond the end” in “Ledger 1709” (50-500)"
    ]
    mismatch = report[
        "Selections whose name is not the text at their offsets (imported at the offsets given)"
    ]
    assert mismatch == ["“Something else” in “Ledger 1709” (0-3): the text there is “The”"]
    # The note on the project as a whole is kept on the collection, not dropped.
    assert "Did the frost raise prices?" in result.collection.description
    assert "**Research question** (attached to nothing)" in result.collection.description
    assert report["Notes kept in the collection's description"] == [
        "“Research question” (attached to nothing)"
    ]
    assert "harbour-study" in result.summary() and "3 annotations added" in result.summary()


# --- Round trip ----------------------------------------------------------------------------


def export_qdpx(path, user: str = "olive", slug: str = "field-notes") -> bytes:
    call_command("export_collection", slug, "--format=qdpx", "-o", str(path), f"--user={user}")
    return path.read_bytes()


def undated(project: bytes) -> bytes:
    """project.qde without the date of its export (the Project's creationDateTime)."""
    return re.sub(rb'(<Project [^>]*?) creationDateTime="[^"]*"', rb"\1", project, count=1)


def test_export_import_export_gives_the_same_project(owner, annotated, tmp_path, capsys):
    first = members(export_qdpx(tmp_path / "first.qdpx"))
    empty_everything()
    assert counts() == (0, 0, 0, 0, 0)

    call_command("import_collection", str(tmp_path / "first.qdpx"))
    out = capsys.readouterr().out
    assert "Collection “Field notes” (field-notes) created" in out
    assert "2 sources archived" in out and "4 annotations added" in out
    imported = Annotation.objects.get(uuid=annotated["a"]["olive-collection"].uuid)
    assert imported.note == 'Line one\nLine two, with "quotes" and a comma'
    assert sorted(imported.tags.names()) == ["claims", "dates"]
    alpha = Source.objects.get(uuid=annotated["alpha"].uuid)
    assert alpha.sha256 == annotated["alpha"].sha256  # the text file's bytes are the original
    assert (
        alpha.creators == ["Ada Lovelace"] and alpha.citation_key == annotated["alpha"].citation_key
    )
    assert alpha.archived_by is not None and alpha.archived_by.username == "olive"
    # Times are written to the second.
    assert alpha.archived_at == annotated["alpha"].archived_at.replace(microsecond=0)

    second = members(export_qdpx(tmp_path / "second.qdpx"))
    assert set(first) == set(second)
    for name in first:
        if name != "project.qde":
            assert first[name] == second[name], f"{name} differs after the round trip"
    assert b"creationDateTime" in first["project.qde"].split(b">", 2)[1]
    assert undated(first["project.qde"]) == undated(second["project.qde"])


def test_importing_the_same_project_again_changes_nothing(curator):
    data = coded_project()
    first = import_bytes(data, importer=curator)
    assert first.changed
    before = counts()
    rows = list(Annotation.objects.values().order_by("pk"))
    description = Collection.objects.get(slug="harbour-study").description
    again = import_bytes(data, importer=curator)
    assert not again.changed
    assert again.sources_existing == 1 and again.annotations_existing == 3
    assert counts() == before
    assert list(Annotation.objects.values().order_by("pk")) == rows
    assert Collection.objects.get(slug="harbour-study").description == description
