"""REFI-QDA exchange (issue 31): a collection as a .qdpx project and its tags as a .qdc
codebook, each validated against the vendored REFI-QDA Project schema."""

from __future__ import annotations

import io
import zipfile
from functools import cache

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from lxml import etree

from annotations.models import Annotation
from tests.conftest import archive_text
from tests.helpers import download, export_url

pytestmark = pytest.mark.django_db
SCHEMA_PATH = settings.BASE_DIR / "exports" / "schemas" / "Project-mrt2019.xsd"
PROJECT_NS = "urn:QDA-XML:project:1.0"


@cache
def project_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def assert_valid_project(document: bytes) -> etree._Element:
    """The parsed project.qde, after checking it against the REFI-QDA Project schema."""
    root = etree.fromstring(document)
    schema = project_schema()
    assert schema.validate(root), schema.error_log
    return root


def test_the_vendored_schema_keeps_its_licence_and_tells_valid_from_invalid():
    assert "MIT license" in SCHEMA_PATH.read_text(encoding="utf-8")
    assert_valid_project(f'<Project xmlns="{PROJECT_NS}" name="p"/>'.encode())
    with pytest.raises(AssertionError):
        assert_valid_project(f'<Project xmlns="{PROJECT_NS}"/>'.encode())  # no name


# --- The project --------------------------------------------------------------------------


def _q(name: str) -> str:
    return f"{{{PROJECT_NS}}}{name}"


def at(element: etree._Element, name: str) -> str:
    value = element.get(name)
    assert value is not None, f"{element.tag!r} has no {name}"
    return value


def text_of(element: etree._Element, child: str) -> str:
    value = element.findtext(child)
    assert value is not None, f"{element.tag!r} has no {child}"
    return value


def read_qdpx(body: bytes) -> tuple[etree._Element, dict[str, bytes]]:
    """The validated project.qde and the package's other members by name."""
    with zipfile.ZipFile(io.BytesIO(body)) as package:
        assert package.testzip() is None
        members = {name: package.read(name) for name in package.namelist()}
    return assert_valid_project(members.pop("project.qde")), members


def selections(root: etree._Element) -> dict[str, etree._Element]:
    return {at(s, "guid"): s for s in root.iter(_q("PlainTextSelection"))}


def test_qdpx_holds_sources_codes_codings_and_notes_of_what_olive_may_see(client, owner, annotated):
    client.force_login(owner)
    response, body = download(client, "qdpx")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="field-notes-project.qdpx"'
    root, files = read_qdpx(body)
    assert at(root, "name") == "Field notes"
    alpha, beta = annotated["alpha"], annotated["beta"]
    assert set(files) == {f"Sources/{alpha.uuid}.txt", f"Sources/{beta.uuid}.txt"}

    users = {at(u, "name"): at(u, "guid") for u in root.iter(_q("User"))}
    assert set(users) == {"olive", "maya"}
    assert at(root, "creatingUserGUID") == users["olive"]
    codes = {at(c, "name"): at(c, "guid") for c in root.iter(_q("Code"))}
    assert sorted(codes) == ["claims", "dates", "prices"]

    sources = {at(s, "name"): s for s in root.iter(_q("TextSource"))}
    assert set(sources) == {"Alpha report", "Beta notes"}
    alpha_xml = sources["Alpha report"]
    assert at(alpha_xml, "guid") == str(alpha.uuid)
    assert at(alpha_xml, "plainTextPath") == f"internal://{alpha.uuid}.txt"
    assert at(alpha_xml, "creatingUser") == users["olive"]
    description = text_of(alpha_xml, _q("Description"))
    assert "Ada Lovelace" in description and alpha.sha256 in description
    assert "alpha report.txt" in description
    assert "Ledger & Co" in text_of(sources["Beta notes"], _q("Description"))

    a = annotated["a"]
    found = selections(root)
    assert set(found) == {
        str(a[n].uuid)
        for n in ("olive-collection", "olive-private", "maya-collection", "maya-public")
    }
    first = found[str(a["olive-collection"].uuid)]
    assert at(first, "creatingUser") == users["olive"]
    assert at(first, "creationDateTime").endswith("Z")
    assert [at(ref, "targetGUID") for ref in first.iter(_q("CodeRef"))] == [
        codes["dates"],
        codes["claims"],
    ]
    notes = {at(n, "guid"): n for n in root.iter(_q("Note"))}
    (ref,) = first.iter(_q("NoteRef"))
    assert text_of(notes[at(ref, "targetGUID")], _q("PlainTextContent")) == (
        'Line one\nLine two, with "quotes" and a comma'
    )
    assert at(found[str(a["maya-public"].uuid)], "creatingUser") == users["maya"]
    assert not list(found[str(a["maya-public"].uuid)].iter(_q("NoteRef")))  # it has no note
    assert len(notes) == 3


def test_private_annotations_of_others_are_not_in_the_qdpx_even_for_a_curator(
    client, curator, annotated
):
    client.force_login(curator)
    _, body = download(client, "qdpx")
    root, _ = read_qdpx(body)
    a = annotated["a"]
    assert set(selections(root)) == {
        str(a[n].uuid) for n in ("olive-collection", "maya-collection", "maya-public")
    }
    assert b"MAYAPRIVATE" not in body and b"HYPERLINK" not in body
    assert "cora" in {at(u, "name") for u in root.iter(_q("User"))}  # the exporter


def test_stranger_and_visitor_get_404_for_the_qdpx_and_qdc_of_a_private_collection(
    client, stranger, annotated
):
    for fmt in ("qdpx", "qdc"):
        response = client.get(export_url(fmt))
        assert response.status_code == 404 and b"Field notes" not in response.content
    client.force_login(stranger)
    for fmt in ("qdpx", "qdc"):
        response = client.get(export_url(fmt))
        assert response.status_code == 404 and b"Field notes" not in response.content
        assert b"claims" not in response.content


def test_visitor_gets_only_the_public_annotation_of_a_public_collection(client, annotated):
    annotated["collection"].is_public = True
    annotated["collection"].save()
    _, body = download(client, "qdpx")
    root, _ = read_qdpx(body)
    assert set(selections(root)) == {str(annotated["a"]["maya-public"].uuid)}
    assert "creatingUserGUID" not in root.attrib
    assert [at(c, "name") for c in root.iter(_q("Code"))] == ["prices"]


def test_filters_narrow_the_qdpx_as_they_narrow_the_other_exports(client, owner, annotated):
    client.force_login(owner)
    _, body = download(client, "qdpx", "tag=claims")
    root, files = read_qdpx(body)
    a = annotated["a"]
    assert set(selections(root)) == {
        str(a[n].uuid) for n in ("olive-collection", "maya-collection")
    }
    assert len(files) == 2  # both sources hold a passage tagged "claims"


def test_two_exports_name_everything_with_the_same_guids(client, owner, annotated):
    client.force_login(owner)
    first, _ = read_qdpx(download(client, "qdpx")[1])
    second, _ = read_qdpx(download(client, "qdpx")[1])

    def guids(root):
        return [(e.tag, e.get("guid"), e.get("targetGUID")) for e in root.iter()]

    assert guids(first) == guids(second)
    assert len({g for _, g, _ in guids(first) if g}) > 10


def test_each_selection_points_at_its_quote_in_the_source_text_file(client, owner, annotated):
    client.force_login(owner)
    root, files = read_qdpx(download(client, "qdpx")[1])
    exact = {str(a.uuid): a.exact for a in annotated["a"].values()}
    for source in root.iter(_q("TextSource")):
        path = at(source, "plainTextPath").removeprefix("internal://")
        text = files[f"Sources/{path}"].decode("utf-8")
        for selection in source.iter(_q("PlainTextSelection")):
            start, end = int(at(selection, "startPosition")), int(at(selection, "endPosition"))
            assert text[start:end] == exact[at(selection, "guid")]


def test_offsets_count_code_points_past_emoji_and_right_to_left_text(client, owner, collection):
    text = "👩🏽‍🔬 مرحبا بالعالم — the lab 🧪 said: «نعم» 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 end.\n"
    source = archive_text(text, owner, collection, metadata={"title": "Unicode ✓ نص"})
    quotes = ["مرحبا", "«نعم»", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🧪"]
    for quote in quotes:
        start = source.text.index(quote)
        Annotation.create_anchored(
            author=owner, source=source, start=start, end=start + len(quote), tags=["عربي 🙂"]
        )
    client.force_login(owner)
    root, files = read_qdpx(download(client, "qdpx")[1])
    stored = files[f"Sources/{source.uuid}.txt"]
    assert stored.decode("utf-8") == source.text  # UTF-8, no byte-order mark
    decoded = stored.decode("utf-8")
    seen = [
        decoded[int(at(s, "startPosition")) : int(at(s, "endPosition"))]
        for s in root.iter(_q("PlainTextSelection"))
    ]
    assert sorted(seen) == sorted(quotes)
    assert [at(c, "name") for c in root.iter(_q("Code"))] == ["عربي 🙂"]
    (source_xml,) = root.iter(_q("TextSource"))
    assert at(source_xml, "name") == "Unicode ✓ نص"


def test_control_characters_in_a_note_do_not_break_the_xml(client, owner, collection):
    source = archive_text("Some text to mark.", owner, collection)
    Annotation.create_anchored(
        author=owner, source=source, start=0, end=4, note="bell\x07 and form feed\x0c here"
    )
    client.force_login(owner)
    root, _ = read_qdpx(download(client, "qdpx")[1])
    (note,) = root.iter(_q("Note"))
    assert text_of(note, _q("PlainTextContent")) == "bell\ufffd and form feed\ufffd here"


def test_a_collection_without_annotations_is_still_a_valid_project(client, owner, collection):
    archive_text("Nothing marked here.", owner, collection, metadata={"title": "Quiet"})
    client.force_login(owner)
    root, files = read_qdpx(download(client, "qdpx")[1])
    assert [at(s, "name") for s in root.iter(_q("TextSource"))] == ["Quiet"]
    assert not list(root.iter(_q("CodeBook"))) and not list(root.iter(_q("Notes")))
    assert list(files.values()) == [b"Nothing marked here."]


def test_two_sources_with_one_title_get_distinct_names(client, owner, collection):
    archive_text("One text.", owner, collection, metadata={"title": "Minutes"})
    archive_text("Another text.", owner, collection, metadata={"title": "Minutes"})
    client.force_login(owner)
    root, _ = read_qdpx(download(client, "qdpx")[1])
    assert sorted(at(s, "name") for s in root.iter(_q("TextSource"))) == [
        "Minutes",
        "Minutes (2)",
    ]


def test_elements_carry_no_namespace_prefix(client, owner, annotated):
    """Some tools match element names without resolving prefixes: every element is in the
    default namespace, as in the exports of QualCoder and ATLAS.ti."""
    client.force_login(owner)
    _, body = download(client, "qdpx")
    with zipfile.ZipFile(io.BytesIO(body)) as package:
        project = package.read("project.qde")
    assert project.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert b"ns0:" not in project and b"<Project " in project and b"<PlainTextSelection " in project


def _queries_for(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        _, body = download(client, "qdpx")
    read_qdpx(body)
    return len(ctx.captured_queries)


def test_query_count_grows_neither_with_annotations_nor_with_sources(client, owner, collection):
    client.force_login(owner)
    alpha = archive_text("Alpha text for the query count.", owner, collection)
    for i in range(3):
        Annotation.create_anchored(author=owner, source=alpha, start=i, end=i + 3, tags=[f"t{i}"])
    few = _queries_for(client)
    for n in range(4):
        source = archive_text(f"Another text, number {n}.", owner, collection)
        for i in range(10):
            Annotation.create_anchored(
                author=owner, source=source, start=i, end=i + 3, tags=[f"t{i}", "x"], note="n"
            )
    assert _queries_for(client) == few


# --- Where it is offered -------------------------------------------------------------------


def test_the_export_menu_offers_the_qdpx(client, owner, annotated):
    client.force_login(owner)
    page = client.get("/collections/field-notes/?tag=claims").text
    # Prepared by the worker (tests/test_export_jobs.py), the page's filters kept.
    assert 'action="/collections/field-notes/export/qdpx/prepare"' in page
    assert '<input type="hidden" name="tag" value="claims">' in page
    assert "QDA project (REFI-QDA, .qdpx)" in page
    response = client.get("/collections/field-notes/export/?format=qdpx&tag=claims")
    assert response["Location"] == "/collections/field-notes/export/qdpx?tag=claims"


def test_the_command_writes_a_qdpx_of_what_the_given_user_may_see(member, annotated, tmp_path):
    out = tmp_path / "field-notes.qdpx"
    call_command(
        "export_collection", "field-notes", "--format=qdpx", f"--output={out}", "--user=maya"
    )
    root, files = read_qdpx(out.read_bytes())
    a = annotated["a"]
    assert set(selections(root)) == {
        str(a[n].uuid)
        for n in ("olive-collection", "maya-private", "maya-collection", "maya-public")
    }
    assert len(files) == 2
    with pytest.raises(CommandError, match="zip file: give --output PATH"):
        call_command("export_collection", "field-notes", "--format=qdpx", "--output=-")


def test_the_bag_holds_the_same_project(client, owner, annotated):
    client.force_login(owner)
    _, body = download(client, "bagit")
    with zipfile.ZipFile(io.BytesIO(body)) as bag:
        inner = bag.read("data/project.qdpx")
        manifest = bag.read("manifest-sha256.txt").decode()
    assert "data/project.qdpx" in manifest
    root, _ = read_qdpx(inner)
    standalone, _ = read_qdpx(download(client, "qdpx")[1])
    assert set(selections(root)) == set(selections(standalone))
    # Undated, so that the bag's payload comes back byte for byte from an import.
    assert "creationDateTime" in standalone.attrib and "creationDateTime" not in root.attrib
    with zipfile.ZipFile(io.BytesIO(inner)) as package:
        assert {i.date_time for i in package.infolist()} == {(1980, 1, 1, 0, 0, 0)}


# --- The codebook alone --------------------------------------------------------------------

CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"


def assert_valid_codebook(document: bytes) -> etree._Element:
    """The parsed .qdc, checked as far as the schemas at hand allow.

    No faithful copy of the REFI-QDA Codebook.xsd is available (exports/schemas/README.md):
    its root is a CodeBook in the codebook namespace, with an optional origin, holding Codes
    (then optional Sets); its Codes are the project schema's. So the root is checked here by
    hand, and its Codes, moved into the project namespace inside a Project's CodeBook, are
    validated against the vendored project schema.
    """
    root = etree.fromstring(document)
    assert root.tag == f"{{{CODEBOOK_NS}}}CodeBook"
    assert set(root.attrib) <= {"origin"}
    assert [child.tag for child in root] == [f"{{{CODEBOOK_NS}}}Codes"]
    project = etree.fromstring(
        f'<Project xmlns="{PROJECT_NS}" name="codebook"><CodeBook/></Project>'.encode()
    )
    codes = etree.fromstring(document.replace(CODEBOOK_NS.encode(), PROJECT_NS.encode()))[0]
    project[0].append(codes)
    assert_valid_project(etree.tostring(project))
    return root


def codes_in(root: etree._Element, ns: str = CODEBOOK_NS) -> dict[str, str]:
    return {at(c, "name"): at(c, "guid") for c in root.iter(f"{{{ns}}}Code")}


def test_qdc_holds_the_tags_of_what_the_user_may_see_with_the_projects_guids(
    client, owner, member, annotated
):
    client.force_login(owner)
    response, body = download(client, "qdc")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="field-notes-codebook.qdc"'
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    codebook = assert_valid_codebook(body)
    project, _ = read_qdpx(download(client, "qdpx")[1])
    assert codes_in(codebook) == codes_in(project, PROJECT_NS)
    assert sorted(codes_in(codebook)) == ["claims", "dates", "prices"]
    assert codes_in(assert_valid_codebook(download(client, "qdc")[1])) == codes_in(codebook)

    _, narrowed = download(client, "qdc", "tag=prices")
    assert sorted(codes_in(assert_valid_codebook(narrowed))) == ["prices"]


def test_a_tag_only_on_someone_elses_private_annotation_stays_out_of_the_qdc(
    client, owner, member, annotated
):
    annotated["a"]["maya-private"].tags.add("secret-theme")
    client.force_login(owner)
    _, body = download(client, "qdc")
    assert "secret-theme" not in codes_in(assert_valid_codebook(body))
    client.force_login(member)
    _, body = download(client, "qdc")
    assert "secret-theme" in codes_in(assert_valid_codebook(body))


def test_the_command_writes_the_qdc_to_standard_output(owner, annotated, capsys):
    call_command("export_collection", "field-notes", "--format=qdc", "--output=-")
    out = capsys.readouterr().out.encode("utf-8")
    assert sorted(codes_in(assert_valid_codebook(out))) == ["claims", "dates", "prices"]


def test_an_empty_codebook_is_still_a_valid_qdc(client, owner, collection):
    """The schemas ask for at least one Code: an empty codebook holds one that is not codable
    and says why, rather than an empty Codes that no tool may accept."""
    client.force_login(owner)
    _, body = download(client, "qdc")
    root = assert_valid_codebook(body)
    (code,) = root.iter(f"{{{CODEBOOK_NS}}}Code")
    assert at(code, "isCodable") == "false"
    assert "no codes" in text_of(code, f"{{{CODEBOOK_NS}}}Description")


def test_the_codebook_exports_nested_with_descriptions_and_colours(
    client, owner, member, annotated
):
    from annotations.models import Code

    themes = Code.add(annotated["collection"], "Themes", actor=owner, description="Big ideas.")
    prices = Code.add(
        annotated["collection"],
        "prices",
        actor=owner,
        description="Money & cost <anything>.",
        colour="teal",
        parent=themes,
    )
    Code.add(annotated["collection"], "unused", actor=owner, parent=prices)
    client.force_login(owner)
    for body, ns in (
        (download(client, "qdc")[1], CODEBOOK_NS),
        (etree.tostring(read_qdpx(download(client, "qdpx")[1])[0]), PROJECT_NS),
    ):
        root = assert_valid_codebook(body) if ns == CODEBOOK_NS else etree.fromstring(body)
        (top,) = [c for c in root.iter(f"{{{ns}}}Code") if at(c, "name") == "Themes"]
        assert text_of(top, f"{{{ns}}}Description") == "Big ideas."
        (child,) = top.findall(f"{{{ns}}}Code")
        assert at(child, "name") == "prices"
        assert at(child, "color") == "#99f6e4"
        assert text_of(child, f"{{{ns}}}Description") == "Money & cost <anything>."
        assert [at(c, "name") for c in child.findall(f"{{{ns}}}Code")] == ["unused"]
        # Tags outside the codebook stay, flat.
        assert {"claims", "dates"} <= set(codes_in(root, ns))
    # A narrowed export keeps the codes its passages carry and their parents.
    narrowed = assert_valid_codebook(download(client, "qdc", "tag=prices")[1])
    assert sorted(codes_in(narrowed)) == ["Themes", "prices"]


def test_a_source_without_a_text_layer_has_an_empty_text_file_and_says_why(
    client, owner, collection, settings
):
    settings.SCHOLION_MAX_TEXT_BYTES = 64
    source = archive_text("A ledger far longer than the text limit. " * 4, owner, collection)
    assert not source.has_text_layer
    client.force_login(owner)
    root, files = read_qdpx(download(client, "qdpx")[1])
    assert files == {f"Sources/{source.uuid}.txt": b""}
    (source_xml,) = root.iter(_q("TextSource"))
    assert "no text layer" in text_of(source_xml, _q("Description"))
