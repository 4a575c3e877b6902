"""The annotations as an Excel workbook (XLSX): the CSV's rows, which every spreadsheet opens
with its accents intact, where a CSV needs the right import filter (LibreOffice guesses its
encoding; Excel needs a byte-order mark).

Written by XlsxWriter in its constant-memory mode: each row goes to a temporary file as soon
as it is complete, and the zip is assembled in SCHOLION_TMP_DIR and sent in chunks, so memory
stays flat however many annotations there are (``bench/export.py``). The first byte leaves
only once the whole workbook is written: a zip's parts cannot be sent before they are done.
The tests read the file back with openpyxl and LibreOffice, two readers that share no code
with the writer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC

import xlsxwriter
from django.conf import settings

from exports.formats import CSV_COLUMNS, TIME_COLUMNS, annotation_values
from exports.scope import ExportScope

SHEET_NAME = "Annotations"
SEND_BYTES = 256 * 1024
# Excel refuses a cell longer than this (XlsxWriter would cut it without a word).
MAX_CELL_CHARS = 32_767
TRUNCATED = "… [cut at Excel's limit of 32,767 characters; the CSV and JSON-LD hold it whole]"
# Widths in characters: wide for what people read, narrow for identifiers.
WIDTHS = {
    "collection": 18,
    "source_title": 30,
    "source_creators": 22,
    "source_date_published": 12,
    "source_url": 28,
    "citation_key": 18,
    "source_uuid": 12,
    "sha256": 12,
    "start": 8,
    "end": 8,
    "quote": 50,
    "note": 50,
    "tags": 20,
    "citations": 30,
    "author": 12,
    "visibility": 11,
    "created": 22,
    "modified": 22,
    "passage_link": 30,
}
_TIMES = tuple(CSV_COLUMNS.index(c) for c in TIME_COLUMNS)


def _cell_text(value: str) -> str:
    if len(value) > MAX_CELL_CHARS:
        return value[: MAX_CELL_CHARS - len(TRUNCATED)] + TRUNCATED
    return value


def write_workbook(scope: ExportScope, out) -> None:
    """Write the workbook to ``out``, a binary file open for writing."""
    workbook = xlsxwriter.Workbook(
        out,
        {
            "constant_memory": True,
            "tmpdir": str(settings.SCHOLION_TMP_DIR),
            # Text is text: a note reading "=HYPERLINK(...)", "0012" or "http://..." is
            # stored as a string cell, which no spreadsheet evaluates, so unlike the CSV
            # nothing needs a leading quote and every cell holds exactly what was written.
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            # Excel wants naive times; they are written in UTC and the format says so.
            "remove_timezone": True,
        },
    )
    workbook.set_properties(
        {"title": scope.collection.title, "comments": f"Exported from {scope.collection_iri()}"}
    )
    header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    # Real dates (not ISO text) so that a spreadsheet sorts, filters and subtracts them;
    # the format shows the zone, since a spreadsheet's dates have none.
    moment = workbook.add_format({"num_format": 'yyyy-mm-dd hh:mm:ss "UTC"'})
    sheet = workbook.add_worksheet(SHEET_NAME)
    for col, name in enumerate(CSV_COLUMNS):
        sheet.set_column(col, col, WIDTHS[name], moment if col in _TIMES else None)
    sheet.write_row(0, 0, CSV_COLUMNS, header)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(scope.count(), 1), len(CSV_COLUMNS) - 1)

    for row, annotation in enumerate(scope.iter_annotations(), 1):
        for col, value in enumerate(annotation_values(scope, annotation)):
            if isinstance(value, str):
                if value:
                    sheet.write_string(row, col, _cell_text(value))
            elif col in _TIMES:
                # Seconds, as in the CSV and the W3C export.
                sheet.write_datetime(row, col, value.astimezone(UTC).replace(microsecond=0), moment)
            else:
                sheet.write_number(row, col, value)
    workbook.close()


def xlsx_chunks(scope: ExportScope) -> Iterator[bytes]:
    """The workbook as a stream of bytes, from a temporary file deleted when it is sent (or
    when the download is abandoned and the generator closed)."""
    with tempfile.TemporaryFile(dir=settings.SCHOLION_TMP_DIR, suffix=".xlsx") as out:
        write_workbook(scope, out)
        out.seek(0)
        while chunk := out.read(SEND_BYTES):
            yield chunk
