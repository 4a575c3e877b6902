"""The annotations as an Excel workbook (XLSX): the CSV's rows, which every spreadsheet opens
with its accents intact, where a CSV needs the right import filter (LibreOffice guesses its
encoding; Excel needs a byte-order mark).

XlsxWriter writes the workbook around the rows (styles, column widths, the frozen and
filterable header, the properties) with a header row only; the rows are then streamed into
its worksheet as the zip is sent, written here in the very form XlsxWriter gives them in its
constant-memory mode (a test compares the two byte for byte). Writing every cell through
XlsxWriter ran at about 2,000 rows a second and sent nothing until the whole file was built,
past a proxy's or gunicorn's timeout for a large collection; streamed, the first bytes leave
at once and memory stays flat (``bench/export.py``). The tests read the result with openpyxl
and LibreOffice, which share no code with either.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from exports.bag import _Sink
from exports.formats import CSV_COLUMNS, TIME_COLUMNS, spreadsheet_rows
from exports.scope import ExportScope

SHEET_NAME = "Annotations"
SHEET_PATH = "xl/worksheets/sheet1.xml"
SEND_BYTES = 256 * 1024
ROWS_PER_WRITE = 200
# Excel's limits: rows in a sheet (the header is one), and UTF-16 units in a cell.
MAX_ROWS = 1_048_576
MAX_CELL_UNITS = 32_767
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
    "pages": 8,
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
OPTIONS = {
    "constant_memory": True,
    "in_memory": True,
    # Text is text: a note reading "=HYPERLINK(...)", "0012" or "http://..." is a string
    # cell, which no spreadsheet evaluates, so unlike the CSV nothing needs a leading quote.
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
}
_TIMES = tuple(CSV_COLUMNS.index(c) for c in TIME_COLUMNS)
_LETTERS = [xl_col_to_name(i) for i in range(len(CSV_COLUMNS))]
_EPOCH = datetime(1899, 12, 31)
# ECMA-376 22.9.2.19: XML cannot hold control characters, so they are written _xHHHH_, and a
# literal "_xHHHH_" gets its underscore escaped (as Excel and XlsxWriter do).
_ESCAPED_LOOKALIKE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
_XML_SPECIAL = re.compile(r"[&<>]")
_EDGE_SPACE = re.compile(r"^\s|\s$")


def _fit(text: str) -> str:
    """The text, cut to Excel's cell limit (counted in UTF-16 units) with a note saying so."""
    if len(text) <= MAX_CELL_UNITS // 2:
        return text
    encoded = text.encode("utf-16-le")
    if len(encoded) // 2 <= MAX_CELL_UNITS:
        return text
    room = (MAX_CELL_UNITS - len(TRUNCATED)) * 2
    return encoded[:room].decode("utf-16-le", "ignore") + TRUNCATED


def _string_cell(ref: str, text: str) -> str:
    text = _fit(text)
    if "_x" in text:
        text = _ESCAPED_LOOKALIKE.sub(r"_x005F\1", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", text)
    text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    space = ' xml:space="preserve"' if _EDGE_SPACE.search(text) else ""
    if _XML_SPECIAL.search(text):
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{text}</t></is></c>'


def _excel_time(moment: datetime) -> float:
    """A spreadsheet's serial date: days since 1899-12-31, in UTC (a spreadsheet's dates have
    no zone; the cell format says UTC), to the second as in the CSV and the W3C export."""
    delta = moment.astimezone(UTC).replace(tzinfo=None, microsecond=0) - _EPOCH
    serial = delta.days + delta.seconds / 86400
    return serial + 1 if serial > 59 else serial  # Excel's 29 February 1900


def row_xml(row: int, values: list, time_style: int) -> str:
    """One worksheet row (1-based ``row``) of ``spreadsheet_rows``."""
    cells = []
    for col, value in enumerate(values):
        ref = f"{_LETTERS[col]}{row}"
        if isinstance(value, str):
            if value:
                cells.append(_string_cell(ref, value))
        elif col in _TIMES:
            cells.append(f'<c r="{ref}" s="{time_style}"><v>{_excel_time(value):.16G}</v></c>')
        else:
            cells.append(f'<c r="{ref}"><v>{value:.16G}</v></c>')
    return f'<row r="{row}">{"".join(cells)}</row>'


def frame(scope: ExportScope, rows: int) -> tuple[list[tuple[zipfile.ZipInfo, bytes]], int]:
    """The workbook XlsxWriter writes with the header row alone, its filter and dimension
    covering ``rows`` data rows: its zip members, and the style of the time cells."""
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, OPTIONS)
    workbook.set_properties(
        {"title": scope.collection.title, "comments": f"Exported from {scope.collection_iri()}"}
    )
    header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    # Real dates rather than ISO text, so that a spreadsheet sorts, filters and subtracts
    # them; the format names the zone.
    moment = workbook.add_format({"num_format": 'yyyy-mm-dd hh:mm:ss "UTC"'})
    sheet = workbook.add_worksheet(SHEET_NAME)
    for col, name in enumerate(CSV_COLUMNS):
        sheet.set_column(col, col, WIDTHS[name], moment if col in _TIMES else None)
    sheet.write_row(0, 0, CSV_COLUMNS, header)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(rows, 1), len(CSV_COLUMNS) - 1)
    workbook.close()
    with zipfile.ZipFile(out) as package:
        members = [(info, package.read(info)) for info in package.infolist()]
    dimension = f'<dimension ref="A1:{_LETTERS[-1]}{rows + 1}"/>'.encode()
    members = [
        (info, re.sub(rb'<dimension ref="[^"]*"/>', dimension, data, count=1))
        if info.filename == SHEET_PATH
        else (info, data)
        for info, data in members
    ]
    return members, moment.xf_index


def xlsx_chunks(scope: ExportScope) -> Iterator[bytes]:
    """The workbook as a stream of bytes, its rows written as the annotations are read."""
    rows = min(scope.count(), MAX_ROWS - 1)
    members, time_style = frame(scope, rows)
    sink = _Sink()
    # The sink cannot seek, so each member's sizes follow its bytes (a data descriptor).
    package = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)
    for info, data in members:
        member = zipfile.ZipInfo(info.filename, date_time=info.date_time)
        member.compress_type = zipfile.ZIP_DEFLATED
        if info.filename != SHEET_PATH:
            package.writestr(member, data)
            continue
        head, tail = data.split(b"</sheetData>", 1)
        with package.open(member, "w") as out:
            out.write(head)
            pending: list[str] = []
            row = 1
            for values in spreadsheet_rows(scope):
                if row == MAX_ROWS:
                    break  # rows past Excel's limit: the CSV holds them
                row += 1
                pending.append(row_xml(row, values, time_style))
                if len(pending) == ROWS_PER_WRITE:
                    out.write("".join(pending).encode("utf-8"))
                    pending = []
                    if sink.size >= SEND_BYTES:
                        yield sink.drain()
            out.write("".join(pending).encode("utf-8"))
            out.write(b"</sheetData>" + tail)
        yield sink.drain()
    package.close()
    yield sink.drain()
