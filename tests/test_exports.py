"""Exporting a collection: every format, what each person gets, filters, tokens, the command,
the admin actions and a query count that does not grow with the number of annotations."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import zipfile
from datetime import UTC
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import bagit
import bibtexparser
import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from openpyxl.cell.cell import Cell
from openpyxl.utils import get_column_letter

from accounts.models import ApiToken
from annotations.models import Annotation, Citation
from annotations.w3c import CONTEXT
from archive.cite import plain_reference
from tests.conftest import program
from tests.helpers import assert_csl_json, cite_everything, download, export_url, only_sheet
from tests.w3c import assert_w3c_annotation, assert_w3c_collection, assert_w3c_page

pytestmark = pytest.mark.django_db
BASE = "http://testserver"


def uuids_in(doc: dict) -> set[str]:
    return {item["id"].rsplit("/", 1)[-1] for item in doc["first"]["items"]}


def expected(annotated, *names) -> set[str]:
    return {str(annotated["a"][n].uuid) for n in names}


OLIVE_SEES = ("olive-collection", "olive-private", "maya-collection", "maya-public")


# --- W3C JSON-LD ---------------------------------------------------------------------------


def test_jsonld_export_passes_every_must_assertion_and_holds_what_olive_may_see(
    client, owner, annotated
):
    client.force_login(owner)
    response, body = download(client, "jsonld")
    assert response.status_code == 200 and response.streaming
    assert (
        response["Content-Disposition"] == 'attachment; filename="field-notes-annotations.jsonld"'
    )
    assert response["Content-Type"].startswith("application/ld+json")
    doc = json.loads(body)
    assert_w3c_collection(doc)
    assert_w3c_page(doc)  # the embedded first page, checked through its collection
    for item in doc["first"]["items"]:
        assert_w3c_annotation({"@context": CONTEXT, **item})
    assert doc["total"] == 4 == len(doc["first"]["items"])
    assert uuids_in(doc) == expected(annotated, *OLIVE_SEES)
    assert b"MAYAPRIVATE" not in body
    # Text order: by source title, then position.
    starts = [
        (i["target"]["source"], i["target"]["selector"][0]["start"]) for i in doc["first"]["items"]
    ]
    assert starts == sorted(
        starts, key=lambda s: (0 if str(annotated["alpha"].uuid) in s[0] else 1, s[1])
    )


def test_the_exported_page_is_a_fragment_of_the_export_that_resolves_to_it(
    client, owner, annotated
):
    client.force_login(owner)
    for query in ("", "tag=dates"):
        _, body = download(client, "jsonld", query)
        doc = json.loads(body)
        page = doc["first"]
        assert doc["id"] == BASE + export_url("jsonld", query)
        assert page["id"] == doc["last"] == doc["id"] + "#page-1"
        assert page["partOf"] == {"id": doc["id"]}
        assert_w3c_page({"@context": doc["@context"], **page})  # on its own, too
        # A client fetches a fragment's document: the export, which holds that page.
        iri, fragment = urldefrag(page["id"])
        _, fetched = download(client, "jsonld", urlsplit(iri).query)
        again = json.loads(fetched)
        assert fragment and again["first"]["id"] == page["id"]
        assert again["first"]["items"] == page["items"]


def test_private_annotations_of_others_never_appear_even_for_a_curator(
    client, curator, member, annotated
):
    client.force_login(curator)
    _, body = download(client, "jsonld")
    assert uuids_in(json.loads(body)) == expected(
        annotated, "olive-collection", "maya-collection", "maya-public"
    )
    client.force_login(member)
    _, body = download(client, "csv")
    assert b"MAYAPRIVATE" in body and b"HYPERLINK" not in body


def test_stranger_and_visitor_get_404_for_a_private_collection(client, stranger, annotated):
    assert client.get(export_url("csv")).status_code == 404
    client.force_login(stranger)
    for fmt in ("jsonld", "xlsx", "csv", "markdown", "pandoc", "bibtex", "csljson", "bagit"):
        assert client.get(export_url(fmt)).status_code == 404


def test_visitor_gets_only_public_annotations_of_a_public_collection(client, annotated):
    annotated["collection"].is_public = True
    annotated["collection"].save()
    _, body = download(client, "jsonld")
    assert uuids_in(json.loads(body)) == expected(annotated, "maya-public")


def test_unknown_format_is_404_and_post_is_405(client, owner, annotated):
    client.force_login(owner)
    assert client.get(export_url("docx")).status_code == 404
    assert client.post(export_url("csv")).status_code == 405


# --- CSV -----------------------------------------------------------------------------------


def test_csv_reads_back_with_the_csv_module_and_neutralises_formulas(client, owner, annotated):
    alpha = annotated["alpha"]
    alpha.creators = ["Ada Lovelace", "Babbage, Charles"]
    alpha.url = "https://example.org/sketch"
    alpha.save()
    client.force_login(owner)
    response, body = download(client, "csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert not body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    assert len(rows) == 4
    first = annotated["a"]["olive-collection"]
    row = next(r for r in rows if r["quote"] == "The first passage")
    assert row == {
        "collection": "Field notes",
        "source_title": "Alpha report",
        "source_creators": "Ada Lovelace; Babbage, Charles",
        "source_date_published": "1843",
        "source_url": "https://example.org/sketch",
        "citation_key": annotated["alpha"].citation_key,
        "source_uuid": str(annotated["alpha"].uuid),
        "sha256": annotated["alpha"].sha256,
        "start": str(first.start),
        "end": str(first.end),
        "pages": "",  # a plain text has no pages
        "quote": "The first passage",
        "note": 'Line one\nLine two, with "quotes" and a comma',
        "tags": "dates, claims",  # the order they were given in
        "citations": "",
        "author": "olive",
        "visibility": "collection",
        "created": first.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "modified": first.modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "passage_link": f"{BASE}/sources/{annotated['alpha'].uuid}/passages/{first.start}-{first.end}/",
    }
    notes = {r["note"] for r in rows}
    assert '\'=HYPERLINK("http://evil")' in notes and "'-minus first" in notes
    assert "'=SUM(A1)" in {r["quote"] for r in rows}


def test_csv_for_excel_starts_with_a_byte_order_mark(client, owner, annotated):
    client.force_login(owner)
    _, body = download(client, "csv", "bom=1")
    assert body.startswith(b"\xef\xbb\xbfcollection,")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert len(rows) == 4


def test_head_answers_the_headers_without_writing_the_export(rf, owner, annotated):
    from exports.views import download as download_view

    request = rf.head("/collections/field-notes/export/csv")
    request.user = owner
    response = download_view(request, "field-notes", "csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert isinstance(response, StreamingHttpResponse)
    assert response.getvalue() == b""


# --- XLSX ----------------------------------------------------------------------------------

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook_rows(body: bytes) -> tuple[list, list[tuple]]:
    """The header and the data rows of the workbook's one sheet, as openpyxl reads them."""
    sheet = only_sheet(body)
    rows = [tuple(c.value for c in row) for row in sheet.iter_rows()]
    return list(rows[0]), rows[1:]


def add_note(author, source, quote: str, note: str, **kwargs) -> Annotation:
    start = source.text.index(quote)
    return Annotation.create_anchored(
        author=author, source=source, start=start, end=start + len(quote), note=note, **kwargs
    )


def test_xlsx_holds_the_csv_rows_with_numbers_and_dates_a_spreadsheet_can_sort(
    client, owner, annotated
):
    alpha = annotated["alpha"]
    alpha.url = "https://example.org/sketch"
    alpha.save()
    client.force_login(owner)
    response, body = download(client, "xlsx")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == XLSX_TYPE
    assert response["Content-Disposition"] == 'attachment; filename="field-notes-annotations.xlsx"'
    workbook = openpyxl.load_workbook(io.BytesIO(body))
    assert workbook.sheetnames == ["Annotations"]
    sheet = only_sheet(body)
    assert sheet.freeze_panes == "A2"  # the header stays in view
    assert sheet.auto_filter.ref == "A1:T5"
    assert sheet.column_dimensions["L"].width > sheet.column_dimensions["I"].width  # quote, start
    header, rows = workbook_rows(body)
    _, csv_body = download(client, "csv")
    csv_rows = list(csv.reader(io.StringIO(csv_body.decode(), newline="")))
    assert header == csv_rows[0]
    assert len(rows) == 4 == len(csv_rows) - 1
    first = annotated["a"]["olive-collection"]
    values = next(r for r in rows if r[header.index("quote")] == "The first passage")
    by_name = dict(zip(header, values, strict=True))
    assert by_name == {
        "collection": "Field notes",
        "source_title": "Alpha report",
        "source_creators": "Ada Lovelace",
        "source_date_published": "1843",  # text: a year alone is not a day
        "source_url": "https://example.org/sketch",
        "citation_key": alpha.citation_key,
        "source_uuid": str(alpha.uuid),
        "sha256": alpha.sha256,
        "start": first.start,
        "end": first.end,
        "pages": None,  # an empty cell: a plain text has no pages
        "quote": "The first passage",
        "note": 'Line one\nLine two, with "quotes" and a comma',
        "tags": "dates, claims",
        "citations": None,  # an empty cell
        "author": "olive",
        "visibility": "collection",
        "created": first.created.astimezone(UTC).replace(tzinfo=None, microsecond=0),
        "modified": first.modified.astimezone(UTC).replace(tzinfo=None, microsecond=0),
        "passage_link": f"{BASE}/sources/{alpha.uuid}/passages/{first.start}-{first.end}/",
    }
    cell = sheet.cell(row=2, column=header.index("created") + 1)
    assert isinstance(cell, Cell)
    assert cell.is_date and cell.number_format == 'yyyy-mm-dd hh:mm:ss "UTC"'
    # Every other cell is the CSV's, less the quote mark the CSV needs against formulas.
    for row, csv_row in zip(rows, csv_rows[1:], strict=True):
        for name, value, text in zip(header, row, csv_row, strict=True):
            if name not in ("created", "modified"):
                assert ("" if value is None else str(value)) == text.removeprefix("'"), name


def test_xlsx_keeps_accents_emoji_line_breaks_and_formula_like_notes_as_written(
    client, owner, annotated
):
    alpha = annotated["alpha"]
    alpha.creators = ["Ramón y Cajal, Santiago"]
    alpha.save()
    add_note(owner, alpha, "second one", "Nota en español 🦜\nsegunda línea", tags=["économie"])
    add_note(owner, alpha, "other things", "#N/A")
    add_note(owner, alpha, "alpha text", "x" * 40_000)
    add_note(owner, alpha, "A line", "🦜" * 20_000)  # 40,000 UTF-16 units, as Excel counts
    add_note(owner, alpha, "mentions", "<r>not rich text</r>")  # XlsxWriter writes it as XML
    client.force_login(owner)
    _, body = download(client, "xlsx")
    sheet = only_sheet(body)
    header = [c.value for c in sheet[1]]
    notes = {c.value: c for c in sheet[get_column_letter(header.index("note") + 1)]}
    assert "Nota en español 🦜\nsegunda línea" in notes
    assert "économie" in [c.value for c in sheet["N"]]
    assert "Ramón y Cajal, Santiago" in [c.value for c in sheet["C"]]
    # Stored as text, never as a formula or an error value: no spreadsheet evaluates them,
    # and unlike the CSV they need no leading quote.
    for text in ('=HYPERLINK("http://evil")', "#N/A", "-minus first"):
        assert notes[text].data_type == "s", text
    quotes = {c.value: c for c in sheet["L"]}
    assert quotes["=SUM(A1)"].data_type == "s"
    assert "<r>not rich text</r>" in notes
    cut = {n[0]: n for n in notes if isinstance(n, str) and n.endswith("hold it whole]")}
    units = {first: len(n.encode("utf-16-le")) // 2 for first, n in cut.items()}
    assert units == {"x": 32_767, "🦜": 32_766}  # a 🦜 is two units: one would not fit


def test_xlsx_rows_are_streamed_exactly_as_xlsxwriter_writes_them(owner, annotated, tmp_path):
    """The rows are written by hand so that they can be streamed: they must be the very XML
    XlsxWriter writes for the same values in its constant-memory mode."""
    import re

    import xlsxwriter

    from exports.formats import spreadsheet_rows
    from exports.forms import export_scope
    from exports.xlsx import _TIMES, OPTIONS, SHEET_PATH, frame, xlsx_chunks

    add_note(owner, annotated["alpha"], "second one", " español 🦜 & <b> _x0041_ \x07\n")
    scope = export_scope(annotated["collection"], owner, BASE)
    streamed = b"".join(xlsx_chunks(scope))
    _, time_style = frame(scope, scope.count())

    reference = tmp_path / "reference.xlsx"
    workbook = xlsxwriter.Workbook(str(reference), {**OPTIONS, "in_memory": False})
    moment = workbook.add_format({"num_format": 'yyyy-mm-dd hh:mm:ss "UTC"'})
    sheet = workbook.add_worksheet()
    for row, values in enumerate(spreadsheet_rows(scope), 1):
        for col, value in enumerate(values):
            if isinstance(value, str):
                if value:  # an empty cell, rather than an empty string
                    sheet.write_string(row, col, value)
            elif col in _TIMES:
                value = value.astimezone(UTC).replace(tzinfo=None, microsecond=0)
                sheet.write_datetime(row, col, value, moment)
            else:
                sheet.write_number(row, col, value)
    workbook.close()
    assert moment.xf_index == time_style

    def data_rows(data: bytes) -> list[bytes]:
        sheet_xml = zipfile.ZipFile(io.BytesIO(data)).read(SHEET_PATH)
        return re.findall(rb'<row r="(?:[2-9]|\d\d+)".*?</row>', sheet_xml, re.S)

    rows = data_rows(streamed)
    assert len(rows) == 5 and b"espa\xc3\xb1ol" in b"".join(rows)
    assert rows == data_rows(reference.read_bytes())


@pytest.mark.tools
def test_libreoffice_reads_the_xlsx_with_its_accents_intact(client, owner, annotated, tmp_path):
    soffice = program("soffice", "libreoffice-calc-nogui")
    add_note(owner, annotated["alpha"], "second one", "Nota en español 🦜, ça va")
    # XML cannot hold control characters: the file escapes them as _x0007_ (ECMA-376),
    # and a literal "_x0041_" too, which LibreOffice (like Excel) reads back as written.
    # (openpyxl shows such escapes undecoded, so it is not the oracle here.)
    add_note(owner, annotated["alpha"], "the end", "bell \x07, form feed \x0c, _x0041_ stay")
    client.force_login(owner)
    _, body = download(client, "xlsx")
    (tmp_path / "export.xlsx").write_bytes(body)
    # A profile of its own, so that no other LibreOffice running on the machine interferes.
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path}/profile",
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1",  # comma, quote, UTF-8, from row 1
            "--outdir",
            str(tmp_path / "out"),
            str(tmp_path / "export.xlsx"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    text = (tmp_path / "out" / "export.csv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    notes = {r["note"] for r in rows}
    assert "Nota en español 🦜, ça va" in notes
    assert 'Line one\nLine two, with "quotes" and a comma' in notes
    assert '=HYPERLINK("http://evil")' in notes  # text, not a formula LibreOffice ran
    assert "bell \x07, form feed \x0c, _x0041_ stay" in notes
    assert "MAYAPRIVATE" not in text


def test_xlsx_never_holds_another_persons_private_annotation(client, curator, member, annotated):
    client.force_login(curator)
    _, body = download(client, "xlsx")
    header, rows = workbook_rows(body)
    notes = {r[header.index("note")] for r in rows}
    assert "MAYAPRIVATE" not in notes and '=HYPERLINK("http://evil")' not in notes
    assert len(rows) == 3
    client.force_login(member)
    header, rows = workbook_rows(download(client, "xlsx")[1])
    notes = {r[header.index("note")] for r in rows}
    assert "MAYAPRIVATE" in notes and '=HYPERLINK("http://evil")' not in notes


def test_xlsx_of_an_empty_selection_is_a_header_row(client, owner, annotated):
    client.force_login(owner)
    header, rows = workbook_rows(download(client, "xlsx", "archived_to=2000-01-01")[1])
    assert header[:2] == ["collection", "source_title"] and rows == []


# --- Markdown, BibTeX, CSL-JSON ------------------------------------------------------------


def test_markdown_report_gives_each_source_its_reference_and_passages_in_text_order(
    client, owner, annotated
):
    client.force_login(owner)
    response, body = download(client, "markdown")
    assert response["Content-Disposition"].endswith('field-notes-report.md"')
    text = body.decode()
    alpha, beta = annotated["alpha"], annotated["beta"]
    alpha_ref = plain_reference(alpha, f"{BASE}/sources/{alpha.uuid}/")
    beta_ref = plain_reference(beta, f"{BASE}/sources/{beta.uuid}/")
    assert text.startswith("# Field notes\n")
    assert text.index("## Alpha report") < text.index(alpha_ref) < text.index("## Beta notes")
    assert (
        text.index("> The first passage") < text.index("> =SUM(A1)") < text.index("## Beta notes")
    )
    assert "> the harbour froze in 1709" in text and "tags: `dates`, `claims`" in text
    assert "Line one\nLine two" in text and "MAYAPRIVATE" not in text
    bibliography = text[text.index("## Bibliography") :]
    assert bibliography.index(f"- {alpha_ref}") < bibliography.index(f"- {beta_ref}")


def test_bibtex_parses_back_with_one_entry_per_source(client, owner, annotated):
    client.force_login(owner)
    _, body = download(client, "bibtex")
    database = bibtexparser.loads(body.decode())
    entries = {e["ID"]: e for e in database.entries}
    alpha, beta = annotated["alpha"], annotated["beta"]
    assert set(entries) == {alpha.citation_key, beta.citation_key}
    assert entries[alpha.citation_key]["author"] == "Lovelace, Ada"
    assert entries[beta.citation_key]["publisher"] == r"Ledger \& Co"
    assert alpha.sha256 in entries[alpha.citation_key]["note"]


def test_csl_json_lists_every_source(client, owner, annotated):
    client.force_login(owner)
    _, body = download(client, "csljson")
    items = json.loads(body)
    assert {i["id"] for i in items} == {
        annotated["alpha"].citation_key,
        annotated["beta"].citation_key,
    }
    alpha = next(i for i in items if i["title"] == "Alpha report")
    assert alpha["author"] == [{"family": "Lovelace", "given": "Ada"}]
    assert alpha["issued"] == {"date-parts": [[1843]]}


# --- BagIt ---------------------------------------------------------------------------------


def test_bagit_package_validates_with_the_bagit_library_and_holds_the_exact_bytes(
    client, owner, annotated, tmp_path
):
    client.force_login(owner)
    response, body = download(client, "bagit")
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="field-notes-bag.zip"'
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        zf.extractall(tmp_path / "bag")
    bag = bagit.Bag(str(tmp_path / "bag"))
    bag.validate()  # raises on any checksum, Payload-Oxum or completeness problem
    assert bag.info["Source-Organization"] == "Scholion"
    assert bag.info["Bag-Software-Agent"].startswith("Scholion")
    assert "Field notes" in bag.info["External-Description"] and "Bagging-Date" in bag.info
    root = tmp_path / "bag"
    for source in (annotated["alpha"], annotated["beta"]):
        originals = list((root / "data" / "originals").glob(f"{source.uuid}-*"))
        assert len(originals) == 1
        with source.open_original() as fh:
            assert originals[0].read_bytes() == fh.read()
        provenance = json.loads((root / "data" / "provenance" / f"{source.uuid}.json").read_text())
        assert provenance["sha256"] == source.sha256
        assert provenance["archived_by"] == source.archived_by.username
    assert (root / "data" / "originals" / f"{annotated['alpha'].uuid}-alpha_report.txt").exists()
    for name in (
        "annotations.jsonld",
        "annotations.csv",
        "report.md",
        "sources.bib",
        "sources.json",
    ):
        assert (root / "data" / name).stat().st_size > 0
    assert b"MAYAPRIVATE" not in b"".join(
        p.read_bytes() for p in (root / "data").rglob("*") if p.is_file()
    )
    assert set(bag.payload_files()) >= {"data/scholion.json", "data/annotations.jsonld"}


def test_bag_records_the_fixity_history(client, owner, annotated, tmp_path):
    check = annotated["alpha"].verify_fixity()
    client.force_login(owner)
    _, body = download(client, "bagit")
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        provenance = json.loads(zf.read(f"data/provenance/{annotated['alpha'].uuid}.json"))
    assert provenance["fixity_status"] == "ok"
    assert provenance["fixity_checks"] == [
        {
            "checked_at": check.checked_at.isoformat(),
            "ok": True,
            "observed_sha256": annotated["alpha"].sha256,
            "error": "",
        }
    ]


# --- Filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("tag=dates", ("olive-collection",)),
        ("tag=claims", ("olive-collection", "maya-collection")),
        ("tag=claims&tag=dates", ("olive-collection",)),
        ("author=maya", ("maya-collection", "maya-public")),
        ("archived_from=2000-01-01", OLIVE_SEES),
        ("archived_to=2000-01-01", ()),
    ],
)
def test_filters_are_the_search_filters(client, owner, annotated, query, names):
    client.force_login(owner)
    _, body = download(client, "jsonld", query)
    doc = json.loads(body)
    assert uuids_in(doc) == expected(annotated, *names)
    assert doc["id"] == f"{BASE}{export_url('jsonld', query)}"


def test_source_filter_narrows_the_report_and_references(client, owner, annotated):
    client.force_login(owner)
    _, body = download(client, "markdown", f"source={annotated['beta'].uuid}")
    assert "## Beta notes" in body.decode() and "## Alpha report" not in body.decode()
    _, body = download(client, "bibtex", "tag=dates")
    assert [e["ID"] for e in bibtexparser.loads(body.decode()).entries] == [
        annotated["alpha"].citation_key
    ]


def test_a_bad_filter_is_a_400_naming_it(client, owner, annotated):
    client.force_login(owner)
    response = client.get(export_url("csv", "archived_from=yesterday"))
    assert response.status_code == 400 and "archived_from" in response.content.decode()


def test_export_menu_on_the_collection_page_links_every_format(client, owner, annotated):
    client.force_login(owner)
    page = client.get("/collections/field-notes/").content.decode()
    for fmt in ("jsonld", "xlsx", "csv", "markdown", "pandoc", "bibtex", "csljson"):
        assert f'href="/collections/field-notes/export/{fmt}"' in page
    # The package of originals is prepared by the worker (tests/test_export_jobs.py).
    assert 'action="/collections/field-notes/export/bagit/prepare"' in page
    filtered = client.get("/collections/field-notes/?tag=dates&author=olive&page=2").text
    assert 'href="/collections/field-notes/export/csv?tag=dates&amp;author=olive"' in filtered
    response = client.get("/collections/field-notes/export/?format=csv&tag=dates&author=")
    assert response.status_code == 302
    assert response["Location"] == "/collections/field-notes/export/csv?tag=dates"


# --- Tokens --------------------------------------------------------------------------------


def test_a_bearer_token_downloads_an_export_without_a_session(client, owner, annotated):
    _, key = ApiToken.issue(owner, "backup script")
    response, body = download(client, "csv", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert len(list(csv.reader(io.StringIO(body.decode(), newline="")))) == 5
    revoked, key = ApiToken.issue(owner, "old")
    revoked.revoke()
    assert client.get(export_url("csv"), HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


# --- Queries -------------------------------------------------------------------------------


def _queries_for(client, fmt: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        _, body = download(client, fmt)
    assert body
    return len(ctx.captured_queries)


@pytest.mark.parametrize("fmt", ["jsonld", "xlsx", "csv", "markdown", "pandoc", "bagit"])
def test_query_count_does_not_grow_with_the_number_of_annotations(client, owner, annotated, fmt):
    client.force_login(owner)
    alpha = annotated["alpha"]
    Annotation.objects.all().delete()
    for i in range(5):
        Annotation.create_anchored(author=owner, source=alpha, start=i, end=i + 3, tags=[f"t{i}"])
    few = _queries_for(client, fmt)
    for i in range(5, 50):
        Annotation.create_anchored(
            author=owner, source=alpha, start=i, end=i + 3, tags=[f"t{i}", "x"], note="n"
        )
    assert _queries_for(client, fmt) == few


# The session's two reads (session, user), the collection, the count that decides whether the
# export fits in its request (exports/prepared.py), then the rows, their sources, their tags
# and whether any of them cites something (and if so, the citations).
CSV_QUERIES = 8


@pytest.mark.parametrize("count", [5, 50])
def test_the_csv_is_read_in_a_fixed_number_of_queries(
    client, owner, annotated, count, django_assert_num_queries
):
    client.force_login(owner)
    alpha = annotated["alpha"]
    Annotation.objects.all().delete()
    for i in range(count):
        Annotation.create_anchored(author=owner, source=alpha, start=i, end=i + 3, tags=[f"t{i}"])
    with django_assert_num_queries(CSV_QUERIES):
        _, body = download(client, "csv")
    assert body.count(b"\r\n") == count + 1
    Annotation.create_anchored(
        author=owner,
        source=alpha,
        start=0,
        end=9,
        citations=Citation.build_all([{"url": "https://example.org/cited"}], user=owner),
    )
    with django_assert_num_queries(CSV_QUERIES + 1):
        _, body = download(client, "csv")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    assert len(rows) == count + 1
    [cited] = [r["citations"] for r in rows if r["citations"]]
    assert cited.startswith("https://example.org/cited")


# --- The command and the admin -------------------------------------------------------------


def test_command_writes_each_format_to_a_file(owner, annotated, tmp_path):
    for fmt in ("jsonld", "xlsx", "csv", "markdown", "bibtex", "csljson", "bagit"):
        out = tmp_path / f"export.{fmt}"
        call_command("export_collection", "field-notes", "--format", fmt, "--output", str(out))
        assert out.stat().st_size > 100
    doc = json.loads((tmp_path / "export.jsonld").read_text())
    assert uuids_in(doc) == expected(annotated, *OLIVE_SEES)  # the owner's view by default
    assert doc["first"]["items"][0]["id"].startswith("http://localhost:8000/api/annotations/")
    assert zipfile.ZipFile(tmp_path / "export.bagit").testzip() is None
    header, rows = workbook_rows((tmp_path / "export.xlsx").read_bytes())
    assert len(rows) == 4 and rows[0][header.index("passage_link")].startswith("http://localhost")


def test_command_filters_user_and_stdout(owner, member, annotated, capsys):
    call_command(
        "export_collection",
        "field-notes",
        "--format=csv",
        "--output=-",
        "--user=maya",
        "--tag=claims",
        "--base-url=https://scholion.example/",
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out, newline="")))
    assert [r["quote"] for r in rows] == ["The first passage", "the harbour froze in 1709"]
    assert rows[0]["passage_link"].startswith("https://scholion.example/sources/")
    call_command("export_collection", "field-notes", "--format=csv", "-o", "-", "--from=2999-01-01")
    assert len(capsys.readouterr().out.splitlines()) == 1  # the header only


def test_command_refuses_a_bag_on_stdout_and_names_bad_input(annotated):
    with pytest.raises(CommandError, match="zip file: give --output PATH"):
        call_command("export_collection", "field-notes", "--format=bagit", "--output=-")
    with pytest.raises(CommandError, match="field-notes-annotations.xlsx"):
        call_command("export_collection", "field-notes", "--format=xlsx", "--output=-")
    with pytest.raises(CommandError, match="No collection with slug 'nope'"):
        call_command("export_collection", "nope", "--format=csv", "--output=-")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("export_collection", "field-notes", "--format=csv", "-o", "-", "--user=ghost")
    with pytest.raises(CommandError, match="archived_from"):
        call_command("export_collection", "field-notes", "--format=csv", "-o", "-", "--from=soon")


def test_commands_explain_themselves_in_help():
    from exports.management.commands import export_collection, import_collection

    text = export_collection.Command().create_parser("manage.py", "export_collection").format_help()
    for word in (
        "--format",
        "--output",
        "--tag",
        "--author",
        "--source",
        "--from",
        "--to",
        "bagit",
        "xlsx",
        "pandoc --citeproc",
    ):
        assert word in text
    parser = import_collection.Command().create_parser("manage.py", "import_collection")
    assert "BagIt" in parser.format_help() and "changes nothing" in parser.format_help()
    for command in (export_collection, import_collection):
        parser = command.Command().create_parser("manage.py", "x")
        assert all(action.help for action in parser._actions), "an argument has no help text"


def test_admin_action_downloads_a_collection_export(client, curator, annotated):
    client.force_login(curator)
    response = client.post(
        "/admin/archive/collection/",
        {"action": "export_csv", "_selected_action": [annotated["collection"].pk]},
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "The first passage" in body and "harbour" in body
    assert "MAYAPRIVATE" not in body and "=SUM" not in body  # private ones of others stay out
    response = client.post(
        "/admin/archive/collection/",
        {"action": "export_xlsx", "_selected_action": [annotated["collection"].pk]},
    )
    assert response["Content-Disposition"].endswith('field-notes-annotations.xlsx"')
    header, rows = workbook_rows(b"".join(response.streaming_content))
    assert {r[header.index("quote")] for r in rows} == {
        "The first passage",
        "the harbour froze in 1709",
        "Bread was dear",
    }


def test_admin_actions_export_selected_sources_and_annotations(client, curator, annotated):

    client.force_login(curator)
    alpha, beta = annotated["alpha"], annotated["beta"]
    selected = {"_selected_action": [alpha.pk, beta.pk]}
    response = client.post(
        "/admin/archive/source/", {"action": "export_sources_bibtex", **selected}
    )
    entries = bibtexparser.loads(b"".join(response.streaming_content).decode()).entries
    assert {e["ID"] for e in entries} == {alpha.citation_key, beta.citation_key}
    response = client.post(
        "/admin/archive/source/", {"action": "export_sources_csljson", **selected}
    )
    items = json.loads(b"".join(response.streaming_content))
    assert_csl_json(items)
    assert {i["title"] for i in items} == {"Alpha report", "Beta notes"}

    chosen = [annotated["a"]["olive-collection"], annotated["a"]["maya-public"]]
    response = client.post(
        "/admin/annotations/annotation/",
        {"action": "export_annotations_jsonld", "_selected_action": [a.pk for a in chosen]},
    )
    assert response["Content-Disposition"] == 'attachment; filename="annotations.jsonld"'
    page = json.loads(b"".join(response.streaming_content))
    assert {i["id"].rsplit("/", 1)[-1] for i in page["items"]} == {str(a.uuid) for a in chosen}
    for item in page["items"]:
        assert_w3c_annotation({"@context": CONTEXT, **item})


def test_bag_export_of_a_missing_original_fails_in_the_command(owner, annotated, tmp_path):
    from archive.blobstore import archive_storage

    path = Path(archive_storage().path(annotated["beta"].blob_name))
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(CommandError, match="no longer match their SHA-256"):
        call_command(
            "export_collection", "field-notes", "--format=bagit", "-o", str(tmp_path / "b.zip")
        )


# --- Citations -----------------------------------------------------------------------------


def test_citations_reach_every_format_and_hidden_targets_stay_hidden(
    client, owner, member, annotated
):

    citing, outside = cite_everything(owner, annotated)
    client.force_login(owner)
    _, body = download(client, "jsonld")
    doc = json.loads(body)
    item = next(i for i in doc["first"]["items"] if i["id"].endswith(str(citing.uuid)))
    assert_w3c_annotation({"@context": CONTEXT, **item})
    linking = [b for b in item["body"] if b.get("purpose") == "linking"]
    assert [b["source"] for b in linking] == [
        f"{BASE}/sources/{annotated['beta'].uuid}/",
        f"{BASE}/api/annotations/{annotated['a']['maya-collection'].uuid}",
        "https://doi.org/10.1234/abc.def",
        f"{BASE}/sources/{outside.uuid}/",
    ]
    assert linking[0]["selector"][1]["exact"] == "the harbour froze"

    _, body = download(client, "csv")
    rows = {r["quote"]: r for r in csv.DictReader(io.StringIO(body.decode(), newline=""))}
    cell = rows["The first passage"]["citations"]
    assert "Beta notes" in cell and "“the harbour froze”" in cell and "Winters of the North" in cell

    _, body = download(client, "bibtex")
    entries = {e["ID"]: e for e in bibtexparser.loads(body.decode()).entries}
    reference = next(e for e in entries.values() if e.get("title") == "Winters of the North")
    assert reference["ENTRYTYPE"] == "article" and reference["doi"] == "10.1234/abc.def"
    assert reference["author"] == "Jansen, Pieter"

    _, body = download(client, "csljson")
    items = json.loads(body)
    assert_csl_json(items)
    assert {i["title"] for i in items} >= {"Winters of the North", "Alpha report"}

    # maya is a member of field-notes but not of "elsewhere": olive's citation of the
    # outside source reaches her export only as a source she does not have access to.
    client.force_login(member)
    _, body = download(client, "csv")
    rows = {r["quote"]: r for r in csv.DictReader(io.StringIO(body.decode(), newline=""))}
    cell = rows["The first passage"]["citations"]
    assert "a source you do not have access to" in cell
    assert "A source kept in another collection" not in body.decode()
