"""Helpers every export in the product uses (CSV and XLSX downloads).

`spreadsheet_safe` stops CSV/formula injection: a cell that starts with =, +, -, @, a tab or
a carriage return is run as a formula by Excel and WPS (=HYPERLINK(…), +cmd|…), so it gets a
leading apostrophe, which spreadsheets show as text and do not display. django-import-export's
own option only escapes "=".
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """`value` unchanged unless it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


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
