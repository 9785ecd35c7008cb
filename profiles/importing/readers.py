"""Reading import files row by row: CSV, TSV, XLSX and JSON, never the whole file at once.

Encodings: a BOM decides (UTF-8, UTF-16 LE/BE, as Excel writes them); otherwise strict
UTF-8 is tried over the whole file first (a cheap streaming pass) and GB18030 second —
never the other way round, because GB18030 decodes any bytes, so a UTF-8 file read as
GB18030 would silently become mojibake. UTF-16 without a BOM is recognised by its NUL
bytes. The encoding used is reported on the job.

Every reader yields `(row_number, cells)`: row numbers are the ones a spreadsheet shows
(the header is row 1), cells are strings (XLSX numbers and dates keep their type).
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from django.utils.translation import gettext as _

from .files import local_path

FORMATS = ("csv", "tsv", "xlsx", "json")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".xlsx": "xlsx", ".xlsm": "xlsx",
               ".json": "json", ".jsonl": "json", ".ndjson": "json"}
# An XLSX sheet that "ends" in a million formatted but empty rows: stop after this many
# blank rows in a row instead of walking all of them.
XLSX_BLANK_ROWS_END = 1000
_CHUNK = 1 << 20


class ReadError(ValueError):
    """The file cannot be read at all; the message says what to do (translated)."""


@dataclass
class Table:
    """An opened import file: headers now, rows lazily (`rows()` can be called again)."""

    path: str
    format: str
    encoding: str  # "" for XLSX (a zip of XML, always Unicode)
    headers: list[str]
    size: int
    delimiter: str = ","
    kind: str = "profiles"  # which part of a subject export (below) the rows come from
    _bytes_read: int = 0
    _rows_read: int = 0
    _rows_estimate: int = 0

    def rows(self) -> Iterator[tuple[int, list]]:
        self._bytes_read = self._rows_read = 0
        reader = {"csv": self._text_rows, "tsv": self._text_rows, "xlsx": self._xlsx_rows, "json": self._json_rows}
        yield from reader[self.format]()

    def progress(self) -> float:
        """How far `rows()` has got, 0..1 (by bytes for text files, by rows for XLSX)."""
        if self.format == "xlsx":
            return min(1.0, self._rows_read / self._rows_estimate) if self._rows_estimate else 0.0
        return min(1.0, self._bytes_read / self.size) if self.size else 1.0

    # --- CSV / TSV ---
    def _text_rows(self) -> Iterator[tuple[int, list]]:
        with _CountingFile(self.path, self) as raw:
            text = io.TextIOWrapper(raw, encoding=self.encoding, newline="")
            reader = csv.reader(text, delimiter=self.delimiter)
            try:
                next(reader, None)  # the header row
                for cells in reader:
                    if any(cell.strip() for cell in cells):
                        yield reader.line_num, cells
            except csv.Error as error:
                raise ReadError(_("Row %(row)s cannot be read as CSV: %(error)s") % {
                    "row": reader.line_num, "error": error}) from error
            except UnicodeDecodeError as error:
                raise ReadError(_("The file changed encoding half-way through (row %(row)s); save it again as "
                                  "UTF-8.") % {"row": reader.line_num}) from error

    # --- XLSX ---
    def _xlsx_rows(self) -> Iterator[tuple[int, list]]:
        workbook = _open_workbook(self.path)
        try:
            rows = workbook.active.iter_rows(values_only=True)
            next(rows, None)
            blank_run = 0
            for number, cells in enumerate(rows, start=2):
                self._rows_read = number
                if not any(cell is not None and str(cell).strip() for cell in cells):
                    blank_run += 1
                    if blank_run >= XLSX_BLANK_ROWS_END:
                        return
                    continue
                blank_run = 0
                yield number, ["" if cell is None else cell for cell in cells]
        finally:
            workbook.close()

    # --- JSON: an array of objects, or one object per line (JSON Lines) ---
    def _json_rows(self) -> Iterator[tuple[int, list]]:
        for number, record in _json_records(self.path, self.encoding, self, self.kind):
            yield number, [_json_cell(record.get(header)) for header in self.headers]


class _CountingFile(io.RawIOBase):
    """A binary file that tells its Table how many bytes were read (for progress)."""

    def __init__(self, path: str, table: Table):
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._table = table

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._file.readinto(buffer)
        self._table._bytes_read += count or 0
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def open_table(path: str, *, name: str = "", format: str = "", kind: str = "profiles") -> Table:
    """Open `path` (uploaded as `name`), detect format and encoding, read the headers.
    `kind` (profiles, events, consent) picks the rows of a subject export file. `path` may
    be an upload's storage name: it is read from a local copy (see files.py)."""
    path = local_path(path)
    size = os.path.getsize(path)
    if size == 0:
        raise ReadError(_("The file is empty."))
    format = format or detect_format(name or path)
    if format == "xlsx":
        return _open_xlsx(path, size)
    encoding = detect_encoding(path)
    if format == "json":
        headers: dict[str, None] = {}
        for _number, record in _json_records(path, encoding, None, kind):  # every key of every record is a column
            headers.update(dict.fromkeys(str(key) for key in record))
        if not headers:
            raise ReadError(_("The JSON file holds no records: use an array of objects or one object per line."))
        return Table(path=path, format=format, encoding=encoding, headers=list(headers), size=size, kind=kind)
    with open(path, encoding=encoding, newline="") as text:
        first_line = text.readline()
    delimiter = "\t" if format == "tsv" else _sniff_delimiter(first_line)
    headers = next(csv.reader([first_line], delimiter=delimiter), [])
    return Table(path=path, format=format, encoding=encoding, headers=_clean_headers(headers), size=size,
                 delimiter=delimiter)


def detect_format(name: str) -> str:
    extension = os.path.splitext(name.lower())[1]
    if extension == ".xls":
        raise ReadError(_("Old Excel files (.xls) are not supported: save the sheet as .xlsx or CSV."))
    try:
        return _EXTENSIONS[extension]
    except KeyError:
        raise ReadError(_("“%(name)s” is not a file we can import: use CSV, TSV, XLSX or JSON.") % {
            "name": os.path.basename(name)}) from None


def detect_encoding(path: str) -> str:
    """"utf-8-sig", "utf-16" or "gb18030" (see the module docstring)."""
    with open(path, "rb") as file:
        head = file.read(4096)
        if head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        elif len(head) >= 4 and head.count(0) >= len(head) // 4:
            # ASCII-range text in UTF-16 is half NUL bytes; which half says the byte order.
            return "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
        else:
            encoding = "utf-8-sig"
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        file.seek(0)
        try:
            while chunk := file.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            pass
        decoder = codecs.getincrementaldecoder("gb18030")("strict")
        file.seek(0)
        try:
            while chunk := file.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ReadError(_("The file is neither UTF-8, UTF-16 nor GB18030 text: save it again as "
                              "“CSV UTF-8” from Excel.")) from None
        return "gb18030"


def encoding_label(encoding: str) -> str:
    return {"utf-8-sig": "UTF-8", "gb18030": "GB18030", "": "XLSX"}.get(encoding, encoding.upper())


def _sniff_delimiter(first_line: str) -> str:
    """The header line's most frequent of , ; tab (Chinese Excel sometimes writes ;)."""
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _clean_headers(headers: list) -> list[str]:
    cleaned = [str(h if h is not None else "").strip().strip("\ufeff").strip() for h in headers]
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    # Blank or repeated headers get a position so that every column has its own name.
    seen: dict[str, int] = {}
    result = []
    for index, header in enumerate(cleaned, start=1):
        header = header or _("column %(number)s") % {"number": index}
        if header in seen:
            header = f"{header} ({index})"
        seen[header] = index
        result.append(header)
    if not result:
        raise ReadError(_("The first row must hold the column names; it is empty."))
    return result


def _open_workbook(path: str):
    import zipfile

    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise ReadError(_("The file is not a valid XLSX workbook: open it in Excel and save it again.")) from error


def _open_xlsx(path: str, size: int) -> Table:
    workbook = _open_workbook(path)
    try:
        sheet = workbook.active
        header_row = next(sheet.iter_rows(values_only=True, max_row=1), None)
        estimate = sheet.max_row or 0
    finally:
        workbook.close()
    if not header_row:
        raise ReadError(_("The first sheet is empty."))
    table = Table(path=path, format="xlsx", encoding="", headers=_clean_headers(list(header_row)), size=size)
    table._rows_estimate = estimate
    return table


def _json_cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, (int, float)) else str(value)


SUBJECT_EXPORT = "cdp-subject-export"  # consent.requests' access export, read back here
_SUBJECT_SECTIONS = {"events": "events", "consent": "consent_history"}
_NOT_IDENTITIES = {"name", "gender", "birth_date", "country", "province", "city", "occupation", "tags", "traits",
                   "metrics", "uuid", "status", "created_at", "updated_at"}


def _subject_export_rows(export: dict, kind: str) -> list[dict]:
    """The rows of a subject export for an import of `kind`: the profile (custom traits
    as columns of their own), or its events or consent history, each with the person's
    identity columns (phone, email, crm_id …) so that they find the person."""
    profile = dict(export.get("profile") or {})
    if kind not in _SUBJECT_SECTIONS:
        traits = profile.pop("traits", None) or {}
        profile.pop("metrics", None)
        return [{**profile, **traits}]
    person = {key: value for key, value in profile.items() if key not in _NOT_IDENTITIES and value not in (None, "")}
    return [{**person, **row} for row in export.get(_SUBJECT_SECTIONS[kind]) or []]


class _Utf8Stream(io.RawIOBase):
    """The JSON file as UTF-8 bytes for ijson: read as it is when it is UTF-8 (its BOM
    skipped), re-encoded chunk by chunk otherwise (GB18030, UTF-16). Counts the bytes read
    (progress, and where a malformed record is) and keeps the last chunk handed out."""

    def __init__(self, path: str, encoding: str, table: Table | None):
        self._raw = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._table = table
        self._text = None
        if encoding in ("utf-8-sig", "utf-8"):
            if self._raw.read(3) != codecs.BOM_UTF8:
                self._raw.seek(0)
        else:
            self._text = io.TextIOWrapper(self._raw, encoding=encoding)
        self.consumed = 0  # UTF-8 bytes handed to the parser
        self.lines_before_last = 0  # newlines in the chunks before the last one
        self.last = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        size = _CHUNK if size is None or size < 0 else size
        try:
            chunk = self._raw.read(size) if self._text is None else self._text.read(size).encode("utf-8")
        except UnicodeDecodeError as error:
            raise ReadError(_("The file changed encoding half-way through (near byte %(byte)s); save it again "
                              "as UTF-8.") % {"byte": f"{self.consumed:,}"}) from error
        self.lines_before_last += self.last.count(b"\n")
        self.last = chunk
        self.consumed += len(chunk)
        if self._table is not None:
            self._table._bytes_read = self._raw.tell()
        return chunk

    def readinto(self, buffer) -> int:
        chunk = self.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._raw.close()
        super().close()

    def where(self, message: bytes) -> str:
        """ "line L, column C" of a parse error, found by locating the bytes yajl quotes
        around it ("(right here) ------^" points just past the offending byte) in the chunk
        it was parsing; "" when that is not certain."""
        lines = message.split(b"\n")
        marker = next((i for i, line in enumerate(lines) if b"(right here)" in line), None)
        if not marker or b"^" not in lines[marker]:
            return ""
        quoted, caret = lines[marker - 1], lines[marker].index(b"^")
        snippet = quoted.lstrip(b" ")
        start = len(quoted) - len(snippet)
        snippet = snippet.rstrip(b" ")
        if not snippet:
            return ""
        flat = self.last.replace(b"\r", b" ").replace(b"\n", b" ")
        found = flat.find(snippet)
        if found < 0 or flat.find(snippet, found + 1) >= 0:
            return ""
        offset = max(0, found + (caret - start) - 1)  # the offending byte in the last chunk
        line_start = self.last.rfind(b"\n", 0, offset) + 1
        line = self.lines_before_last + self.last.count(b"\n", 0, offset) + 1
        column = len(self.last[line_start:offset].decode("utf-8", "replace")) + 1
        return _("line %(line)s, column %(column)s") % {"line": f"{line:,}", "column": column}


def _json_records(path: str, encoding: str, table: Table | None, kind: str = "profiles"
                  ) -> Iterator[tuple[int, dict]]:
    """Objects of a JSON array or of JSON Lines (or objects one after another), parsed as a
    stream by ijson (its C parser, yajl): memory stays flat whatever the file's size, and a
    malformed record stops the reading at once, with its number and line (a subject
    export's object gives the rows of the part that `kind` imports). The row number is the
    record's position + 1 (as if the header were row 1)."""
    import ijson  # noqa: PLC0415 — only JSON files need it

    with closing(_Utf8Stream(path, encoding, table)) as stream:
        head = b""
        while True:  # the first byte that is not white space says array or JSON Lines
            chunk = stream.read(1)
            if not chunk:
                return
            if not chunk.isspace():
                head = chunk
                break
        if head == b"[":
            records = ijson.items(_Prefixed(b"[", stream), "item", use_float=True)
        else:
            records = ijson.items(_Prefixed(head, stream), "", multiple_values=True, use_float=True)
        number = 1
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except ijson.JSONError as error:
                raw = error.args[0] if error.args else b""
                raw = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
                where = stream.where(raw)
                detail = raw.split(b"\n")[0].decode("utf-8", "replace") or type(error).__name__
                raise ReadError(_("Record %(number)s is not valid JSON (%(where)s): %(error)s") % {
                    "number": number, "where": where or _("near byte %(byte)s") % {
                        "byte": f"{stream.consumed:,}"}, "error": detail}) from error
            if not isinstance(record, dict):
                raise ReadError(_("Record %(number)s is not an object with column names.") % {"number": number})
            for row in _subject_export_rows(record, kind) if record.get("format") == SUBJECT_EXPORT else [record]:
                number += 1
                yield number, row


class _Prefixed(io.RawIOBase):
    """`stream` with `head` (the bytes already read from it) put back in front."""

    def __init__(self, head: bytes, stream: _Utf8Stream):
        self._head, self._stream = head, stream

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing first, to see bytes or text
            return b""
        if self._head:
            head, self._head = self._head, b""
            chunk = head + self._stream.read(max(1, size - len(head)) if size and size > 0 else -1)
            self._stream.last = chunk  # where() finds a parse error in the chunk as the parser saw it
            return chunk
        return self._stream.read(size)

    def readinto(self, buffer) -> int:
        chunk = self.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)
