"""Helpers every export in the product uses (CSV and XLSX downloads).

`spreadsheet_safe` stops CSV/formula injection: a cell that starts with =, +, -, @, a tab or
a carriage return is run as a formula by Excel and WPS (=HYPERLINK(…), +cmd|…), so it gets a
leading apostrophe, which spreadsheets show as text and do not display. django-import-export's
own option only escapes "=". A valid phone number (+8613800138000, "+86 138-0013-8000") is
data, not a formula, and is written as it is: made of digits, spaces, dashes, dots and
parentheses it can call no function and reach no other cell or program, and an apostrophe in
front would corrupt it for the SMS vendor or importer that reads the file (our own included).

`xlsx_row` writes XLSX cells as typed strings (inline strings, never formulas), so an XLSX
file needs no apostrophe at all: its cells hold exactly the data.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

import phonenumbers

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PHONE_TEXT = re.compile(r"\+[0-9][0-9 ().\-]{4,30}")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def is_phone_number(text: str) -> bool:
    """True for a phone number in E.164 form (how profiles store them: "+" and 8 to 15
    digits, checked by shape alone, as exports write tens of thousands) or a valid
    international number written with "+" and only digits, spaces, dashes, dots and
    parentheses."""
    if _E164.fullmatch(text):
        return True
    if not _PHONE_TEXT.fullmatch(text):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, None))
    except phonenumbers.NumberParseException:
        return False


def spreadsheet_safe(value):
    """`value` unchanged unless it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not is_phone_number(value):
        return "'" + value
    return value


def xlsx_row(sheet, values: Iterable) -> list:
    """Values for `sheet.append` on a write-only openpyxl sheet, with text as typed strings
    (data type "s": shown as text, never run, whatever it starts with) and the characters
    XML cannot hold removed; numbers stay numbers. openpyxl would read text starting with
    "=" as a formula and "#N/A" and the like as errors: those become cells typed by hand,
    the rest stay plain values (a cell object per value would double the time)."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE

    cells = []
    for value in values:
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)
            if value.startswith("=") or value in ERROR_CODES:
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"
                value = cell
        cells.append(value)
    return cells


def csv_lines(rows: Iterable[Iterable], *, bom: bool = True) -> Iterator[str]:
    """CSV text, one line at a time (for a StreamingHttpResponse), every cell made
    spreadsheet-safe; UTF-8 with a BOM so that Excel opens Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if bom:
        yield "\ufeff"
    for row in rows:
        writer.writerow([spreadsheet_safe("" if cell is None else cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def csv_bytes(columns: list[str], rows: Iterable[dict]) -> bytes:
    """A whole (small) CSV file: a header of `columns`, then each dict's values in that
    order (missing keys blank), formula-safe, UTF-8 with a BOM."""
    lines = csv_lines([columns, *([row.get(column, "") for column in columns] for row in rows)])
    return "".join(lines).encode("utf-8")
