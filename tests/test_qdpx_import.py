"""Importing REFI-QDA projects (issue 31): projects laid out as other tools lay them out,
built here in code; the round trip through Scholion's own export; the report of what could
not be kept; hostile packages refused whole; who may import into which collection."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from annotations.models import Annotation, Code
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
DESCRIPTION = "<Description>A study of the 1709 frost.</Description>"
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
        USERS + NESTED_CODES + variables + cases + sources + notes + DESCRIPTION,
        {f"Sources/{guid(100)}.txt": HARBOUR.encode("utf-8")},
    )


def blob_bytes(source: Source) -> bytes:
    with source.open_original() as f:
        return f.read()


def report_of(result) -> dict[str, list[str]]:
    return {part["what"]: part["items"] for part in result.report}


# --- Other tools' layouts ------------------------------------------------------------------


def test_a_project_with_nested_codes_only_becomes_a_codebook_with_its_hierarchy(owner):
    result = import_bytes(qdpx(USERS + NESTED_CODES), importer=owner)
    collection = result.collection
    assert collection.title == "Harbour study" and collection.owner == owner
    assert Annotation.objects.count() == 0 and Source.objects.count() == 0
    codes = {code.tag.name: code for code in Code.objects.of(collection)}
    assert sorted(codes) == ["Economy", "Prices", "Ships", "Trade", "Weather"]
    parents = {name: code.parent.tag.name if code.parent else None for name, code in codes.items()}
    assert parents == {
        "Economy": None,
        "Prices": "Economy",
        "Trade": "Economy",
        "Ships": "Trade",
        "Weather": None,
    }
    # Importing again changes nothing.
    import_bytes(qdpx(USERS + NESTED_CODES), importer=owner)
    assert Code.objects.filter(collection__title="Harbour study").count() >= 5


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
    assert report["Not imported: Scholion has no place for these yet"] == [
        "cases (1)",
        "variables (1)",
    ]
    assert report["Selections outside their source's text (not imported)"] == [
        "“beyond the end” in “Ledger 1709” (50-500)"
    ]
    mismatch = report[
        "Selections whose name is not the text at their offsets (imported at the offsets given)"
    ]
    assert mismatch == ["“Something else” in “Ledger 1709” (0-3): the text there is “The”"]
    assert result.collection.description.startswith("A study of the 1709 frost.\n\n## Notes")
    # The note attached to nothing is kept on the collection, not dropped.
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


def test_plain_text_content_becomes_the_original_bytes(owner):
    """As QualCoder or NVivo may write it: the text inside the XML, no file beside it; a
    selection counted in UTF-16 units past an emoji is converted, and the report says so."""
    text = "Café 🚢 arrived. The cargo was grain."
    start16 = len("Café 🚢 arrived. ".encode("utf-16-le")) // 2  # one more than code points
    sources = (
        f'<Sources><TextSource guid="{guid(110)}" name="Arrival">'
        "<Description>Interview 3, transcribed by hand.</Description>"
        f"<PlainTextContent>{text}</PlainTextContent>"
        + selection(210, start16, start16 + len("The cargo"), "The cargo", user=1)
        + selection(211, 0, 4, "Café", user=1)
        + "</TextSource></Sources>"
    )
    result = import_bytes(qdpx(USERS + sources), importer=owner)
    source = Source.objects.get(uuid=guid(110))
    assert source.text == text and source.description == "Interview 3, transcribed by hand."
    assert source.original_filename == "Arrival.txt" and source.archived_by == owner
    assert Annotation.objects.get(uuid=guid(210)).exact == "The cargo"
    assert Annotation.objects.get(uuid=guid(211)).exact == "Café"
    assert report_of(result)[
        "Selections whose offsets count UTF-16 units, not code points (converted)"
    ] == [f"“The cargo” in “Arrival” ({start16}-{start16 + 9})"]


def test_windows_line_ends_in_a_text_file_shift_no_selection(curator):
    raw = "First line.\r\nSecond line names the ship.\r\nThird.\r\n"
    start = raw.index("the ship")
    sources = (
        f'<Sources><TextSource guid="{guid(120)}" name="Log"'
        f' plainTextPath="internal://log.txt">'
        + selection(220, start, start + 8, "the ship")
        + "</TextSource></Sources>"
    )
    result = import_bytes(qdpx(USERS + sources, {"Sources/log.txt": raw.encode()}), curator)
    assert Annotation.objects.get(uuid=guid(220)).exact == "the ship"
    assert (
        "“Log”"
        in report_of(result)[
            "Sources with Windows line ends (offsets converted to the text's single line ends)"
        ]
    )


# --- Word transcripts and PDFs ------------------------------------------------------------

# A tool's plain text of tests.docs.make_docx: paragraphs a line each, Windows line ends, no
# footnote mark, and a line the tool's transcriber added that the document lacks.
TRANSCRIPT = (
    "Interview\r\nPart one\r\nThe ship came in at dawn.\r\n"
    "The harbour master said the tolls rose in 1850.\r\nCoal ships\r\nGrain ships\r\n"
    "[inaudible passage]\r\n"
)


def plain_selection(n: int, text: str, quote: str, codes=(), name: str | None = None) -> str:
    start = text.index(quote)
    return selection(n, start, start + len(quote), quote[:30] if name is None else name, codes)


def word_transcript(docx: bytes, *, plain: str | None = TRANSCRIPT) -> bytes:
    """As MAXQDA writes a Word transcript: the DOCX as its rich text, the plain text the
    selections count in beside it."""
    path = f' plainTextPath="internal://{guid(180)}.txt"' if plain is not None else ""
    selections = (
        plain_selection(280, TRANSCRIPT, "The ship came in at dawn.", codes=[13])
        + plain_selection(281, TRANSCRIPT, "said the tolls rose in 1850", codes=[11])
        + plain_selection(282, TRANSCRIPT, "Coal ships\r\nGrain ships", name="Coal ships")
        + plain_selection(283, TRANSCRIPT, "[inaudible passage]")
        if plain is not None
        else selection(280, 21, 46, "The ship came in at dawn.", codes=[13])
    )
    sources = (
        f'<Sources><TextSource guid="{guid(180)}" name="Harbour master"'
        f' richTextPath="internal://{guid(180)}.docx"{path} creatingUser="{guid(1)}"'
        f' creationDateTime="{DATE}">{selections}</TextSource></Sources>'
    )
    files = {f"Sources/{guid(180)}.docx": docx}
    if plain is not None:
        files[f"Sources/{guid(180)}.txt"] = plain.encode("utf-8")
    return qdpx(USERS + NESTED_CODES + sources, files)


def test_a_word_transcript_is_archived_as_such_with_its_codings_on_their_passages(curator):
    from archive.extract.zipped import DOCX_TYPE
    from tests.docs import make_docx

    docx = make_docx("The ship came in at dawn.")
    data = word_transcript(docx)
    result = import_bytes(data, importer=curator)
    source = Source.objects.get(uuid=guid(180))
    assert source.media_type == DOCX_TYPE and source.original_filename == "Harbour master.docx"
    assert source.sha256 == hashlib.sha256(docx).hexdigest() and source.size == len(docx)
    assert blob_bytes(source) == docx
    # Found in Scholion's text of the document, whose paragraphs and footnote marks the
    # tool's plain text does not share offset for offset.
    exact = {a.uuid.hex[-3:]: (a.exact, list(a.tags.names())) for a in Annotation.objects.all()}
    assert exact == {
        "280": ("The ship came in at dawn.", ["Ships"]),
        "281": ("said the tolls rose[1] in 1850", ["Prices"]),
        "282": ("Coal ships\n\nGrain ships", []),
    }
    for annotation in Annotation.objects.all():
        assert source.text[annotation.start : annotation.end] == annotation.exact
    missing = report_of(result)[
        "Selections whose text is not in the source's text layer here (not imported, rather"
        " than attached to the wrong passage)"
    ]
    assert len(missing) == 1 and missing[0].startswith("“[inaudible passage]” in “Harbour master”")

    # Importing again adds nothing.
    before, rows = counts(), list(Annotation.objects.values().order_by("pk"))
    again = import_bytes(data, importer=curator)
    assert not again.changed and again.sources_existing == 1
    assert counts() == before and list(Annotation.objects.values().order_by("pk")) == rows


def test_an_export_of_an_imported_transcript_and_pdf_is_valid_and_imports_as_nothing_new(
    curator, tmp_path
):
    """Scholion exports a Word document or a PDF as its text layer: the export is a valid
    project, and importing it here again finds the originals by the SHA-256 it names."""
    from tests.docs import make_docx
    from tests.pdfs import make_pdf, text_page
    from tests.test_qdpx import assert_valid_project

    import_bytes(word_transcript(make_docx("The ship came in at dawn.")), importer=curator)
    pdf = make_pdf([text_page("A harbour report printed in 1710.")])
    report = (
        f'<Sources><PDFSource guid="{guid(130)}" name="Report" path="internal://report.pdf"/>'
        "</Sources>"
    )
    import_bytes(qdpx(USERS + report, {"Sources/report.pdf": pdf}), importer=curator)
    data = export_qdpx(tmp_path / "out.qdpx", user=curator.username, slug="harbour-study")
    root = assert_valid_project(members(data)["project.qde"])
    assert len(root.findall(f"{{{NS}}}Sources/{{{NS}}}TextSource")) == 2
    before, rows = counts(), list(Annotation.objects.values().order_by("pk"))
    again = import_bytes(data, importer=curator)
    assert not again.changed and again.sources_existing == 2
    assert counts() == before and list(Annotation.objects.values().order_by("pk")) == rows


def test_a_word_transcript_without_plain_text_counts_offsets_in_its_text(curator):
    from tests.docs import make_docx

    docx = make_docx("The ship came in at dawn.")
    import_bytes(word_transcript(docx, plain=None), importer=curator)
    text = Source.objects.get(uuid=guid(180)).text
    assert text[21:46] == "The ship came in at dawn."
    assert Annotation.objects.get(uuid=guid(280)).exact == "The ship came in at dawn."


def test_a_hostile_word_document_is_reported_and_its_plain_text_imported_instead(curator, settings):
    from tests.docs import make_docx
    from tests.test_extract_docx import ENTITIES, rezip

    hostile = rezip(make_docx("The ship came in at dawn."), {"word/document.xml": ENTITIES})
    blobs = blob_files()
    result = import_bytes(word_transcript(hostile), importer=curator)
    source = Source.objects.get(uuid=guid(180))
    assert source.media_type == "text/plain" and source.size == len(TRANSCRIPT.encode())
    [why] = report_of(result)["Word transcripts imported as their plain text"]
    assert why.startswith("“Harbour master”: ") and "declares XML entities" in why
    assert Annotation.objects.get(uuid=guid(283)).exact == "[inaudible passage]"
    assert blob_files() - blobs == {source.blob_name}, "the Word document was stored"

    # Importing again finds the plain text kept the first time, and adds nothing.
    before = counts()
    again = import_bytes(word_transcript(hostile), importer=curator)
    assert not again.changed and again.sources_existing == 1 and counts() == before


def test_a_word_document_without_plain_text_that_cannot_be_read_is_reported(curator, settings):
    from tests.docs import make_docx

    settings.SCHOLION_MAX_ZIP_ENTRIES = 5
    blobs = blob_files()
    result = import_bytes(word_transcript(make_docx("x"), plain=None), importer=curator)
    [why] = report_of(result)["Sources not imported"][:1]
    assert "more than the 5 Scholion unpacks" in why
    assert not Source.objects.filter(uuid=guid(180)).exists()
    assert not Annotation.objects.filter(uuid=guid(280)).exists()
    assert blob_files() == blobs


def test_files_outside_the_package_are_reported_by_path(curator):
    from tests.docs import make_docx

    sources = (
        f'<Sources><TextSource guid="{guid(181)}" name="Notes"'
        ' richTextPath="relative://notes.docx">'
        "<PlainTextContent>Notes from the harbour.</PlainTextContent>"
        + selection(285, 0, 5, "Notes")
        + "</TextSource>"
        f'<PDFSource guid="{guid(182)}" name="Map" path="absolute://C:/maps/map.pdf"/>'
        f'<TextSource guid="{guid(183)}" name="Diary" richTextPath="relative://diary.docx"/>'
        f'<TextSource guid="{guid(184)}" name="Log" richTextPath="internal://gone.docx">'
        "<PlainTextContent>The log, as plain text.</PlainTextContent></TextSource>"
        "</Sources>"
    )
    result = import_bytes(qdpx(USERS + sources, {"Sources/x.docx": make_docx("x")}), curator)
    report = report_of(result)
    assert report["Files outside the package, which an import cannot read"] == [
        "the Word document of “Notes” (relative://notes.docx)",
        "the PDF of “Map” (absolute://C:/maps/map.pdf)",
        "the Word document of “Diary” (relative://diary.docx)",
    ]
    assert report["Sources not imported"] == [
        "“Map”: its PDF is not in the package",
        "“Diary”: the package holds none of its text",
    ]
    assert report["Files the project names that are not in the package"] == [
        "the Word document of “Log” (Sources/gone.docx)"
    ]
    assert report["Word transcripts imported as their plain text"] == [
        "“Log”: its Word document is missing"
    ]
    assert Source.objects.get(uuid=guid(184)).text == "The log, as plain text."
    assert Source.objects.get(uuid=guid(181)).text == "Notes from the harbour."
    assert Annotation.objects.get(uuid=guid(285)).exact == "Notes"
    assert not Source.objects.filter(uuid__in=[guid(182), guid(183)]).exists()


def test_pdf_sources_are_archived_as_pdf_and_only_their_text_selections_anchored(curator):
    from tests.pdfs import make_pdf, text_page

    pdf = make_pdf([text_page("A harbour report printed in 1710.", "The tolls rose in spring.")])
    representation = "A harbour report\nprinted in 1710. The tolls rose in spring.\n"
    sources = (
        f'<Sources><PDFSource guid="{guid(130)}" name="Report" path="internal://report.pdf">'
        f'<PDFSelection guid="{guid(230)}" page="1" firstX="1" firstY="1" secondX="9"'
        ' secondY="9"/>'
        f'<PDFSelection guid="{guid(231)}" page="1" firstX="10" firstY="1" secondX="90"'
        ' secondY="9"/>'
        f'<Representation guid="{guid(132)}" name="Report (text)">'
        f"<PlainTextContent>{representation}</PlainTextContent>"
        + plain_selection(232, representation, "report\nprinted in 1710", codes=[14])
        + "</Representation></PDFSource>"
        f'<PDFSource guid="{guid(133)}" name="Chart" path="internal://chart.pdf">'
        f'<PDFSelection guid="{guid(233)}" page="1" firstX="1" firstY="1" secondX="9"'
        ' secondY="9"/></PDFSource>'
        f'<AudioSource guid="{guid(131)}" name="Interview" path="internal://a.mp3"/>'
        "</Sources>"
    )
    chart = make_pdf([text_page("Tonnage by year.")])
    data = qdpx(
        USERS + NESTED_CODES + sources, {"Sources/report.pdf": pdf, "Sources/chart.pdf": chart}
    )
    result = import_bytes(data, curator)
    source = Source.objects.get(uuid=guid(130))
    assert source.media_type == "application/pdf" and "harbour report" in source.text
    assert blob_bytes(source) == pdf
    annotation = Annotation.objects.get(uuid=guid(232))
    assert annotation.source == source and " ".join(annotation.exact.split()) == (
        "report printed in 1710"
    )
    assert list(annotation.tags.names()) == ["Weather"]
    assert not Annotation.objects.filter(uuid__in=[guid(230), guid(231), guid(233)]).exists()
    report = report_of(result)
    assert report[
        "PDF selections, which mark an area of a page rather than a passage of text (not"
        " imported: Scholion will not guess the words inside an area; the PDF is kept)"
    ] == ["2 in “Report”", "1 in “Chart”"]
    assert report["Not imported: Scholion has no place for these yet"] == [
        "audio source “Interview”"
    ]

    before = counts()
    again = import_bytes(data, curator)
    assert not again.changed and again.sources_existing == 2 and counts() == before


def test_a_collection_owner_imports_a_project_under_their_own_name(owner):
    result = import_bytes(coded_project(), importer=owner)
    assert set(Annotation.objects.values_list("author__username", flat=True)) == {"olive"}
    assert not get_user_model().objects.filter(username__in=["paul", "Ines_Ortega"]).exists()
    assert report_of(result)["People"] == [
        "The project names Ines_Ortega, paul: their work is imported under your name (only"
        " a curator imports work under other people's names)."
    ]


def test_the_command_imports_into_a_chosen_collection_and_prints_the_report(
    collection, tmp_path, capsys
):
    path = tmp_path / "harbour.qdpx"
    path.write_bytes(coded_project())
    call_command("import_collection", str(path), "--collection=field-notes")
    out = capsys.readouterr().out
    assert "Collection “Field notes” (field-notes) already here" in out
    assert "Selections outside their source's text (not imported):\n  - “beyond the end”" in out
    assert Annotation.objects.filter(collection=collection).count() == 3
    description = Collection.objects.get(pk=collection.pk).description
    assert "Did the frost raise prices?" in description
    assert "**Description of the project**:\n\nA study of the 1709 frost." in description
    with pytest.raises(CommandError, match="There is no collection “nowhere”"):
        call_command("import_collection", str(path), "--collection=nowhere")


def test_a_bag_cannot_be_sent_into_a_chosen_collection(owner, annotated, tmp_path):
    from tests.helpers import export_bag

    data = export_bag(tmp_path / "bag.zip")
    with pytest.raises(PackageError, match="brings its own collection"):
        import_bytes_into(data, owner, annotated["collection"])


def import_bytes_into(data: bytes, importer, into):
    from exports.importer import import_package
    from exports.package import open_package

    with open_package(io.BytesIO(data)) as package:
        return import_package(package, importer=importer, into=into)


# --- Who may import into which collection ------------------------------------------------


def test_a_stranger_cannot_import_into_a_collection_they_do_not_own(stranger, collection):
    """The worker checks again what the form checked: the collection may have changed hands
    since the upload. The refusal does not say whose collection it is, or that it exists."""
    Collection.objects.create(slug="sams", title="Sam's", owner=stranger)
    before, blobs = counts(), blob_files()
    with pytest.raises(PackageError) as refused:
        import_bytes_into(coded_project(), stranger, collection)
    assert str(refused.value) == "There is no collection of yours to import this project into."
    assert counts() == before and blob_files() == blobs


@pytest.mark.django_db(transaction=True)
def test_owner_imports_a_project_through_the_page_and_sees_the_report(client, owner, collection):
    client.force_login(owner)
    page = client.get("/import/").content.decode()
    assert '<option value="field-notes">Field notes</option>' in page
    upload = io.BytesIO(coded_project())
    upload.name = "harbour.qdpx"
    response = client.post("/import/", {"package": upload, "collection": "field-notes"})
    assert response.status_code == 302
    run_worker()
    job = ImportJob.objects.get()
    assert job.state == "done" and job.collection == collection
    page = client.get(response["Location"]).content.decode()
    assert "3 annotations added" in page
    assert "What was not kept as it was" in page
    assert "<h3>Selections outside their source&#x27;s text (not imported)</h3>" in page
    assert "<li>“beyond the end” in “Ledger 1709” (50-500)</li>" in page
    status = client.get(f"/import/{job.uuid}/status").json()
    assert status["report"] == job.report and status["state"] == "done"
    assert Annotation.objects.filter(collection=collection).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_member_cannot_choose_a_collection_they_do_not_own_on_the_page(
    client, member, stranger, collection
):
    """maya edits field-notes but does not own it; sam sees nothing of it. Each may import
    (each owns a collection), neither into field-notes, and the answer names nothing."""
    for person in (member, stranger):
        Collection.objects.create(slug=f"own-{person.username}", title="Own", owner=person)
        client.force_login(person)
        assert "field-notes" not in client.get("/import/").content.decode()
        upload = io.BytesIO(coded_project())
        upload.name = "harbour.qdpx"
        response = client.post("/import/", {"package": upload, "collection": "field-notes"})
        assert response.status_code == 400
        page = response.content.decode()
        assert "Select a valid choice" in page and "Field notes" not in page
    assert ImportJob.objects.count() == 0 and Annotation.objects.count() == 0


# --- Malformed and hostile projects: refused whole, nothing left behind -------------------


def assert_refused(data: bytes, importer, message: str) -> None:
    before = counts()
    blobs = blob_files()
    with pytest.raises(PackageError, match=message):
        import_bytes(data, importer=importer)
    assert counts() == before, "something was half-imported"
    assert blob_files() == blobs, "a blob was left behind"


def test_an_external_entity_is_refused_unread(curator, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    xml = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE Project [<!ENTITY leak SYSTEM "file://{secret}">]>\n'
        f'<Project xmlns="{NS}" name="Leak"><Description>&leak;</Description></Project>'
    )
    assert_refused(qdpx(xml), curator, "declares a DTD")
    assert not Collection.objects.filter(description__contains="SECRET").exists()


def test_a_billion_laughs_is_refused(curator):
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
        for n in range(1, 10)
    )
    xml = (
        f'<?xml version="1.0"?><!DOCTYPE Project [{entities}]><Project xmlns="{NS}" name="&lol9;"/>'
    )
    assert_refused(qdpx(xml), curator, "declares a DTD|not well-formed")


def test_malformed_and_invalid_projects_are_refused_by_name(curator):
    assert_refused(qdpx(f'<Project xmlns="{NS}" name="x">'), curator, "not well-formed XML")
    assert_refused(qdpx(f'<Project xmlns="{NS}"/>'), curator, "not a valid REFI-QDA project")
    bad_guid = '<Users><User guid="not-a-guid" name="x"/></Users>'
    assert_refused(qdpx(bad_guid), curator, "not a valid REFI-QDA project")
    assert_refused(b"PK\x03\x04 not a zip", curator, "not a readable zip file")


def test_paths_that_leave_the_package_are_refused(curator):
    climbing = (
        f'<Sources><TextSource guid="{guid(140)}" name="Passwords"'
        ' plainTextPath="internal://../../../etc/passwd"/></Sources>'
    )
    assert_refused(qdpx(climbing), curator, "leaves the bag")
    assert_refused(qdpx("", {"../evil.txt": b"x"}), curator, "leaves the bag")
    assert_refused(qdpx("", {"/etc/evil.txt": b"x"}), curator, "absolute path")


def test_a_zip_bomb_is_refused_before_it_is_inflated(curator):
    bomb = qdpx(
        f'<Sources><TextSource guid="{guid(150)}" name="Bomb"'
        ' plainTextPath="internal://bomb.txt"/></Sources>',
        {"Sources/bomb.txt": b"a" * (20 * 1024 * 1024)},
    )
    assert_refused(bomb, curator, "possible zip bomb")


def test_too_many_members_are_refused(curator, monkeypatch):
    monkeypatch.setattr("exports.qdpx_import.MAX_MEMBERS", 3)
    files = {f"Sources/{n}.txt": b"x" for n in range(4)}
    assert_refused(qdpx("", files), curator, "holds 5 files, more than the 3")


def test_a_failure_halfway_deletes_what_was_written_and_its_blobs(curator):
    """The second source names a source already here with other bytes: refused after the
    first was archived, which is deleted, blob and all."""
    import_bytes(coded_project(), importer=curator)
    sources = (
        f'<Sources><TextSource guid="{guid(160)}" name="New">'
        "<PlainTextContent>Brand new text, never archived.</PlainTextContent></TextSource>"
        f'<TextSource guid="{guid(100)}" name="Clash">'
        "<PlainTextContent>Other bytes under a GUID already here.</PlainTextContent>"
        "</TextSource></Sources>"
    )
    xml = (
        f'<Project xmlns="{NS}" name="Harbour study" creatingUserGUID="{guid(1)}">'
        f"{USERS}{sources}</Project>"
    )
    assert_refused(qdpx(xml), curator, "already here with other bytes")
    assert not Source.objects.filter(uuid=guid(160)).exists()


def test_an_unlisted_user_becomes_an_inactive_account_and_same_named_codes_one_tag(curator):
    codes = (
        "<CodeBook><Codes>"
        f'<Code guid="{guid(20)}" name="Port" isCodable="true">'
        f'<Code guid="{guid(21)}" name="Other" isCodable="true"/></Code>'
        f'<Code guid="{guid(22)}" name="Town" isCodable="true">'
        f'<Code guid="{guid(23)}" name="other" isCodable="true"/></Code>'
        "</Codes></CodeBook>"
    )
    sources = (
        f'<Sources><TextSource guid="{guid(170)}" name="Town book">'
        "<PlainTextContent>The mayor and the harbour master met.</PlainTextContent>"
        + selection(270, 4, 9, "mayor", codes=[21, 23], user=7)
        + "</TextSource></Sources>"
    )
    result = import_bytes(qdpx(USERS + codes + sources), importer=curator)
    annotation = Annotation.objects.get(uuid=guid(270))
    assert annotation.author.username == "qda-user-00000000" and not annotation.author.is_active
    assert "qda-user-00000000" in result.people_created
    assert list(annotation.tags.names()) == ["Other"]
    assert report_of(result)["Codes of the same name, which became one tag"] == [
        "“Other” (2 codes)"
    ]
