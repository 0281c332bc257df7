"""Hardened, streaming XLSX reading (电子表格读取) for adapters.

An XLSX is a zip archive. Before openpyxl touches it, `check_zip` reads the archive's
directory only: a total uncompressed size, a compression ratio per part and the size of
the shared-strings table (which every reader holds in memory whole) are bounded, so a zip
bomb, or a 6 MB workbook whose strings expand to 150 MB, is refused as `xlsx_unsafe`
without inflating anything; every XML part is checked for a DOCTYPE or ENTITY
(gateway/readers/xml.py). A file that is no zip, or a damaged one, is `xlsx_corrupt`.

`xlsx_rows` then streams one sheet with openpyxl's read-only mode: memory holds one row
(and the shared strings), however many rows the sheet has.
"""

from __future__ import annotations

import datetime as dt
import os
import zipfile
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal, cast

import openpyxl
from openpyxl.utils.datetime import from_excel

from gateway.adapter import RawRow, SourceFile
from gateway.errors import FileRejected
from gateway.masking import mask_header_cell, mask_sheet_name, scrub_message
from gateway.readers.delimited import normalize_header
from gateway.readers.xml import iter_elements, root_tag

Workbook = SourceFile | str | os.PathLike[str]
"""A staged `SourceFile` (what `parse` is handed) or a path."""
Cell = str | int | float | bool | dt.date | dt.datetime | dt.time | dt.timedelta | None
"""A cell as the workbook stores it (`cells="typed"`)."""

# What a damaged archive raises while it is read (a bad CRC, a broken deflate stream...).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError)
# A workbook has a few dozen parts; more is not a workbook a department produces.
MAX_ZIP_ENTRIES = 10_000
# Small parts may compress oddly well (an empty sheet); the ratio limit applies above this.
RATIO_FLOOR = 1 << 20
# A serial day number Excel can show as a date (1900-01-01 .. 9999-12-31).
_SERIAL_RANGE = (1, 2_958_465)


@dataclass(frozen=True)
class XlsxLimits:
    """What a workbook may expand to (an adapter's options usually set them)."""

    max_uncompressed_mb: int = 256
    """refuse a workbook whose parts expand to more than this in total"""
    max_ratio: int = 100
    """refuse a part (above 1 MB) compressed more than this"""
    max_shared_strings_mb: int = 16
    """refuse a shared-strings table larger than this (it is held in memory whole)"""


def _open(workbook: Workbook) -> BinaryIO:
    if isinstance(workbook, SourceFile):
        return workbook.open_binary()
    return open(workbook, "rb")


def check_zip(workbook: Workbook, limits: XlsxLimits = XlsxLimits()) -> None:
    """Refuse a file that is not a zip (`xlsx_corrupt`) or that would expand beyond the
    limits (`xlsx_unsafe`), reading only the zip directory and each XML part's prolog.

    Python's zipfile never inflates an entry past the size its directory declares (a
    lying entry fails its CRC instead), so the declared sizes are a safe bound.
    """
    limit = limits.max_uncompressed_mb * 1024 * 1024
    strings_limit = limits.max_shared_strings_mb * 1024 * 1024
    with _open(workbook) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise FileRejected("xlsx_corrupt", "the file is not an XLSX workbook (not a zip archive); save it again as .xlsx") from None
        with archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise FileRejected("xlsx_unsafe", f"the archive holds {len(entries)} parts (limit {MAX_ZIP_ENTRIES})")
            total = 0
            for entry in entries:
                total += entry.file_size
                if total > limit:
                    raise FileRejected(
                        "xlsx_unsafe",
                        f"the workbook would expand to more than {limits.max_uncompressed_mb} MB "
                        "(xlsx_max_uncompressed_mb); split it or raise the limit",
                    )
                if entry.filename.lower().endswith("sharedstrings.xml") and entry.file_size > strings_limit:
                    # openpyxl (like every reader) holds the whole table in memory, at
                    # ten or more times its XML size: bounded here, before it is read.
                    raise FileRejected(
                        "xlsx_unsafe",
                        f"the workbook's shared-strings table expands to {entry.file_size // (1024 * 1024)} MB, more than "
                        f"{limits.max_shared_strings_mb} MB (xlsx_max_shared_strings_mb); split the workbook or save it as CSV",
                    )
                ratio = entry.file_size / max(entry.compress_size, 1)
                if entry.file_size > RATIO_FLOOR and ratio > limits.max_ratio:
                    raise FileRejected(
                        "xlsx_unsafe",
                        f"part {entry.filename} is compressed {ratio:.0f}:1 (xlsx_max_ratio {limits.max_ratio})",
                    )
            if "xl/workbook.xml" not in archive.namelist():
                raise FileRejected("xlsx_corrupt", "the archive has no xl/workbook.xml: it is not an XLSX workbook")
            for entry in entries:
                if entry.filename.endswith((".xml", ".rels")):
                    _check_part(archive, entry)


def _check_part(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> None:
    try:
        with archive.open(entry) as part:
            root_tag(cast(BinaryIO, part))
    except FileRejected as rejected:
        code = "xlsx_unsafe" if rejected.code == "xml_unsafe" else "xlsx_corrupt"
        raise FileRejected(code, f"part {entry.filename}: {rejected.detail}") from None
    except ZIP_ERRORS as exc:
        raise FileRejected("xlsx_corrupt", f"part {entry.filename} cannot be read ({type(exc).__name__})") from None


def sheet_names(workbook: Workbook) -> list[str]:
    """The workbook's sheet names, in order, from xl/workbook.xml (call `check_zip` first)."""
    with _open(workbook) as handle, zipfile.ZipFile(handle) as archive, archive.open("xl/workbook.xml") as part:
        for _, element in iter_elements(cast(BinaryIO, part), {"sheets"}):
            return [str(sheet.get("name", "")) for sheet in element if isinstance(sheet.tag, str)]
    return []


def unreadable(exc: Exception) -> FileRejected:
    """`xlsx_corrupt` for a library error. Its message may quote a cell (a name, an ID):
    it is shown without anything it quoted from the file."""
    detail = scrub_message(str(exc))
    return FileRejected("xlsx_corrupt", f"the workbook cannot be read ({type(exc).__name__}: {detail})")


def present(cell: object) -> bool:
    """Whether a cell holds anything (blank text counts as empty)."""
    return cell is not None and not (isinstance(cell, str) and not cell.strip())


def cell_text(value: Cell) -> str:
    """A cell as text, as the clerk sees it: a date `2026-10-03` (a time of day kept only
    when there is one), an integral number without `.0`, other numbers as Python writes
    them (an ID typed as a number shows its lost digits as `4.40781199203154e+17`, never
    made up), `TRUE`/`FALSE`, empty for an empty cell. Text is left as written
    (`2026年10月3日` stays text for the contract's `Date` to read)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return value


def _as_date(value: Cell) -> Cell:
    """A number in a date column read as Excel's serial day number; a date-time at
    midnight as its date. Anything else is left for the contract to judge."""
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time() else value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _SERIAL_RANGE[0] <= value <= _SERIAL_RANGE[1]:
        converted = from_excel(value)
        if isinstance(converted, dt.datetime):
            return converted.date() if converted.time() == dt.time() else converted
    return value


def _next(rows: Iterator[tuple[Cell, ...]]) -> tuple[Cell, ...] | None:
    try:
        return next(rows)
    except StopIteration:
        return None
    except Exception as exc:  # noqa: BLE001 - a broken sheet part fails mid-way
        raise unreadable(exc) from None


def _header_cells(cells: tuple[Cell, ...]) -> list[str]:
    header = [normalize_header(str(cell)) if cell is not None else "" for cell in cells]
    while header and not header[-1]:
        header.pop()
    return header


def _check_header(header: list[str], number: int, required: Sequence[str], known: Collection[str]) -> None:
    missing = [column for column in required if column not in header]
    if missing:
        raise FileRejected("header_missing", "missing column(s): " + ", ".join(missing), row=number)
    named = [column for column in header if column]
    for column in named:
        if named.count(column) > 1:
            raise FileRejected(
                "header_duplicate", f"column {mask_header_cell(column, (*required, *known))} appears twice", row=number
            )


def _choose_sheet(workbook: Workbook, sheet: str | int) -> str:
    try:
        names = sheet_names(workbook)
    except ZIP_ERRORS as exc:
        raise unreadable(exc) from None
    if isinstance(sheet, int):
        if 0 <= sheet < len(names):
            return names[sheet]
        raise FileRejected("sheet_missing", f"the workbook has {len(names)} sheet(s), no sheet number {sheet + 1}")
    if sheet not in names:
        shown = ", ".join(mask_sheet_name(n) for n in names) or "(none)"
        raise FileRejected("sheet_missing", f"the workbook has no sheet {sheet}; its sheets: {shown}")
    return sheet


def xlsx_rows(
    workbook: Workbook,
    *,
    sheet: str | int = 0,
    header: Sequence[str] | None = None,
    max_title_rows: int = 10,
    known: Sequence[str] = (),
    date_columns: Collection[str] = (),
    cells: Literal["text", "typed"] = "text",
    limits: XlsxLimits = XlsxLimits(),
) -> Iterator[RawRow]:
    """The data rows of one sheet, as `RawRow(number, {header: cell})`, streamed.

    :param workbook: the staged `SourceFile` handed to `parse`, or a path.
    :param sheet: the sheet's name, or its position from 0 (default: the first sheet).
    :param header: the columns the sheet must have. The header row is the first row,
        among the first `max_title_rows + 1`, that holds all of them; without `header`,
        the first non-empty row with more than one cell (title rows such as
        `2026年10月 新生名册` above it are skipped). None found: `header_missing`,
        naming what the first candidate lacks.
    :param known: the format's other columns: a repeated column among `header` and
        these is named in the reason (any other header cell is text from the file,
        masked).
    :param date_columns: columns whose numbers are Excel serial dates (45933 ->
        2026-10-03). A cell *formatted* as a date is a date in every column already.
    :param cells: `"text"` (default): every cell as text (`cell_text`), dates as
        `YYYY-MM-DD`; `"typed"`: as the workbook stores it (int, float, date, str...),
        for an adapter that must tell a number from text (an ID typed as a number).
    :param limits: what the archive may expand to (`check_zip`).

    `RawRow.number` is the sheet's own row number (as Excel shows it); blank rows are
    skipped; a missing trailing cell is empty; a row with cells beyond the header's
    columns is yielded with the problem `row_too_long`. `FileRejected` for the whole file:
    `xlsx_corrupt`, `xlsx_unsafe`, `sheet_missing`, `header_missing`, `header_duplicate`.
    """
    check_zip(workbook, limits)
    name = _choose_sheet(workbook, sheet)
    dates = set(date_columns)
    with _open(workbook) as handle:
        try:
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises anything from KeyError to TypeError
            raise unreadable(exc) from None
        try:
            worksheet = book[name]
            worksheet.reset_dimensions()  # exporters often write a wrong <dimension>; read every row
            rows = cast(Iterator[tuple[Cell, ...]], worksheet.iter_rows(values_only=True))
            columns, number = _find_header(rows, header, max_title_rows, known)
            width = len(columns)
            while (values := _next(rows)) is not None:
                number += 1
                if not any(present(value) for value in values):
                    continue
                if any(present(value) for value in values[width:]):
                    yield RawRow(number, {}, ("row_too_long", "", f"cells beyond the {width} header columns"))
                    continue
                padded = tuple(values[:width]) + (None,) * (width - len(values))
                fields: dict[str, Cell] = {}
                for column, value in zip(columns, padded):
                    if not column:
                        continue
                    if column in dates:
                        value = _as_date(value)
                    fields[column] = cell_text(value) if cells == "text" else value
                yield RawRow(number, fields)
        finally:
            book.close()


def _find_header(
    rows: Iterator[tuple[Cell, ...]], header: Sequence[str] | None, max_title_rows: int, known: Sequence[str]
) -> tuple[list[str], int]:
    """The header row's columns and its row number; the rows above it are read past."""
    required = tuple(header or ())
    candidate: tuple[list[str], int] | None = None
    for number in range(1, max_title_rows + 2):
        values = _next(rows)
        if values is None:
            break
        columns = _header_cells(values)
        filled = sum(1 for column in columns if column)
        if required:
            if all(column in columns for column in required):
                _check_header(columns, number, required, known)
                return columns, number
            if candidate is None and filled > 1:
                candidate = (columns, number)
        elif filled > 1:
            _check_header(columns, number, required, known)
            return columns, number
    if candidate is None:
        if required:
            raise FileRejected("header_missing", "missing column(s): " + ", ".join(required), row=1)
        raise FileRejected("header_missing", "the sheet has no header row (a row of column names)", row=1)
    columns, number = candidate
    _check_header(columns, number, required, known)  # raises: names what it lacks
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = [
    "Cell", "Workbook", "XlsxLimits", "cell_text", "check_zip", "present", "sheet_names", "unreadable", "xlsx_rows",
]
