"""School enrolments (教育 · 学籍): `school_enrolments_YYYYMM.xlsx` (sheet `新生名册`), or
the same columns as CSV (usually GB18030). One `SchoolEnrolment` per row.

An XLSX is a zip archive: before openpyxl touches it, the archive's directory is checked
against a total uncompressed size, a compression ratio and a size of the shared-strings
table, which every reader holds in memory whole (a zip bomb, or a 6 MB workbook whose
strings expand to 150 MB, is refused as `xlsx_unsafe` without inflating anything), and
every XML part is checked for a DOCTYPE.
Rows are then streamed with openpyxl's read-only mode.

An ID number typed as a number (a spreadsheet cell of type number, or CSV text such as
`4.40781E+17`) has lost its last digits: the row is rejected (`id_as_number`), never
guessed.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

import openpyxl
from pydantic import Field

from contracts.school import IdDocumentType, SchoolEnrolment, StageAgeRanges
from gateway import hookimpl
from gateway.adapter import Adapter, AdapterConfig, RawRow, RowRejected, SourceFile
from gateway.errors import FileRejected
from gateway.masking import mask_header_cell, mask_sheet_name, scrub_message
from gateway.readers import csv_rows, normalize_header
from gateway.readers.xml import iter_elements, root_tag

SHEET = "新生名册"
COLUMNS = {
    "学籍号": "student_no",
    "姓名": "student.name",
    "性别": "student.sex",
    "出生日期": "student.birth_date",
    "身份证件类型": "student.id_type",
    "身份证件号": "student.id_number",
    "学校标识码": "school_code",
    "学校名称": "school_name",
    "学段": "stage",
    "入学年月": "enrolment_month",
    "户口所在地": "hukou_location",
    "现住址": "current_address",
    "监护人1姓名": "guardian.name",
    "监护人1身份证件号": "guardian.id_number",
}
OPTIONAL = ("学校名称", "户口所在地", "现住址")
REQUIRED = tuple(column for column in COLUMNS if column not in OPTIONAL)
ID_COLUMNS = ("身份证件号", "监护人1身份证件号")
# Cells whose number is exactly its digits (a code, a YYYYMM, a YYYYMMDD): Excel often
# stores them as numbers and nothing is lost. A lost leading zero still fails the pattern.
DIGIT_COLUMNS = ("性别", "学校标识码", "入学年月", "出生日期")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d*)?[eE][+-]?\d+$")
_RESIDENT_ID = {IdDocumentType.RESIDENT_ID.label, IdDocumentType.RESIDENT_ID.value, "身份证"}

# What a damaged archive raises while it is read (a bad CRC, a broken deflate stream...).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError)
# An intake register has a few dozen parts; more is not a workbook we produce for.
MAX_ZIP_ENTRIES = 10_000
# Small parts may compress oddly well (an empty sheet); the ratio limit applies above this.
RATIO_FLOOR = 1 << 20


class SchoolConfig(AdapterConfig):
    """`[adapters.school-enrolments]` in gateway.toml."""

    stage_ages: StageAgeRanges = Field(default_factory=StageAgeRanges, description="age range per stage (周岁)")
    xlsx_max_uncompressed_mb: int = Field(
        default=256, ge=1, description="refuse a workbook whose parts expand to more than this in total"
    )
    xlsx_max_ratio: int = Field(default=100, ge=2, description="refuse a workbook part compressed more than this")
    xlsx_max_shared_strings_mb: int = Field(
        default=16, ge=1,
        description="refuse a workbook whose shared-strings table expands to more than this (it is held in memory whole)",
    )


def check_zip(source: SourceFile, config: SchoolConfig) -> None:
    """Refuse a file that is not a zip (`xlsx_corrupt`) or that would expand beyond the
    limits (`xlsx_unsafe`), reading only the zip directory and each XML part's prolog.

    Python's zipfile never inflates an entry past the size its directory declares (a
    lying entry fails its CRC instead), so the declared sizes are a safe bound.
    """
    limit = config.xlsx_max_uncompressed_mb * 1024 * 1024
    strings_limit = config.xlsx_max_shared_strings_mb * 1024 * 1024
    with source.open_binary() as handle:
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
                        f"the workbook would expand to more than {config.xlsx_max_uncompressed_mb} MB "
                        "(xlsx_max_uncompressed_mb); split it or raise the limit",
                    )
                if entry.filename.lower().endswith("sharedstrings.xml") and entry.file_size > strings_limit:
                    # openpyxl (like every reader) holds the whole table in memory, at
                    # ten or more times its XML size: bounded here, before it is read.
                    raise FileRejected(
                        "xlsx_unsafe",
                        f"the workbook's shared-strings table expands to {entry.file_size // (1024 * 1024)} MB, more than "
                        f"{config.xlsx_max_shared_strings_mb} MB (xlsx_max_shared_strings_mb); split the workbook or save it as CSV",
                    )
                ratio = entry.file_size / max(entry.compress_size, 1)
                if entry.file_size > RATIO_FLOOR and ratio > config.xlsx_max_ratio:
                    raise FileRejected(
                        "xlsx_unsafe",
                        f"part {entry.filename} is compressed {ratio:.0f}:1 (xlsx_max_ratio {config.xlsx_max_ratio})",
                    )
            if "xl/workbook.xml" not in archive.namelist():
                raise FileRejected("xlsx_corrupt", "the archive has no xl/workbook.xml: it is not an XLSX workbook")
            for entry in entries:
                if entry.filename.endswith((".xml", ".rels")):
                    _check_part(archive, entry)


def _check_part(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> None:
    try:
        with archive.open(entry) as part:
            root_tag(part)
    except FileRejected as rejected:
        code = "xlsx_unsafe" if rejected.code == "xml_unsafe" else "xlsx_corrupt"
        raise FileRejected(code, f"part {entry.filename}: {rejected.detail}") from None
    except _ZIP_ERRORS as exc:
        raise FileRejected("xlsx_corrupt", f"part {entry.filename} cannot be read ({type(exc).__name__})") from None


def sheet_names(source: SourceFile) -> list[str]:
    """The workbook's sheet names, from xl/workbook.xml (call `check_zip` first)."""
    with source.open_binary() as handle, zipfile.ZipFile(handle) as archive, archive.open("xl/workbook.xml") as part:
        for _, element in iter_elements(part, {"sheets"}):
            return [sheet.get("name", "") for sheet in element if isinstance(sheet.tag, str)]
    return []


def _unreadable(exc: Exception) -> FileRejected:
    # The message of a library error may quote a cell (a name, an ID): it is shown
    # without anything it quoted from the file.
    detail = scrub_message(str(exc))
    return FileRejected("xlsx_corrupt", f"the workbook cannot be read ({type(exc).__name__}: {detail})")


def xlsx_rows(source: SourceFile, config: SchoolConfig) -> Iterator[RawRow]:
    """Rows of the sheet `新生名册` as dicts keyed by its header (row 1), cell values typed
    as the workbook stores them. Blank rows are skipped; a missing trailing cell is empty."""
    check_zip(source, config)
    try:
        names = sheet_names(source)
    except _ZIP_ERRORS as exc:
        raise _unreadable(exc) from None
    if SHEET not in names:
        raise FileRejected("sheet_missing", f"the workbook has no sheet {SHEET}; its sheets: {', '.join(mask_sheet_name(n) for n in names) or '(none)'}")
    with source.open_binary() as handle:
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises anything from KeyError to TypeError
            raise _unreadable(exc) from None
        try:
            sheet = workbook[SHEET]
            sheet.reset_dimensions()  # exporters often write a wrong <dimension>; read every row
            rows = sheet.iter_rows(values_only=True)
            header = _header(_next(rows) or ())
            number = 1
            while (cells := _next(rows)) is not None:
                number += 1
                if not any(_present(cell) for cell in cells):
                    continue
                if any(_present(cell) for cell in cells[len(header):]):
                    yield RawRow(number, {}, ("row_too_long", "", f"cells beyond the {len(header)} header columns"))
                    continue
                padded = tuple(cells) + (None,) * (len(header) - len(cells))
                yield RawRow(number, {name: value for name, value in zip(header, padded) if name})
        finally:
            workbook.close()


def _next(rows: Iterator[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    try:
        return next(rows)
    except StopIteration:
        return None
    except Exception as exc:  # noqa: BLE001 - a broken sheet part fails mid-way
        raise _unreadable(exc) from None


def _present(cell: Any) -> bool:
    return cell is not None and not (isinstance(cell, str) and not cell.strip())


def _header(cells: tuple[Any, ...]) -> list[str]:
    header = [normalize_header(str(cell)) if cell is not None else "" for cell in cells]
    while header and not header[-1]:
        header.pop()
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise FileRejected("header_missing", "missing column(s): " + ", ".join(missing), row=1)
    named = [column for column in header if column]
    for column in named:
        if named.count(column) > 1:
            raise FileRejected("header_duplicate", f"column {mask_header_cell(column, tuple(COLUMNS))} appears twice", row=1)
    return header


def _cell(column: str, value: Any) -> Any:
    """A cell as the contract expects it; an ID typed as a number rejects the row."""
    if column in ID_COLUMNS and (
        (isinstance(value, (int, float)) and not isinstance(value, bool))
        or (isinstance(value, str) and _SCIENTIFIC.match(value.strip()))
    ):
        raise RowRejected(
            "id_as_number",
            column,
            "the ID number was stored as a number and lost digits; format the column as text and export again",
        )
    if isinstance(value, dt.datetime):
        return value.date()
    if column in DIGIT_COLUMNS and not isinstance(value, bool):
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return str(int(value))
    return value


class SchoolEnrolmentsAdapter(Adapter):
    """新生名册 export of the student register: one `SchoolEnrolment` per row."""

    name = "school-enrolments"
    department = "school"
    contracts = (SchoolEnrolment,)
    file_types = (".xlsx", ".csv")
    description = "School intake registers (学籍 新生名册), XLSX or GB18030 CSV"
    Config = SchoolConfig
    columns = {field: column for column, field in COLUMNS.items()} | {
        "student.other_id_no": "身份证件号",
        "guardian": "监护人1姓名",
    }

    config: SchoolConfig

    def accepts(self, source: SourceFile) -> bool:
        if source.suffix == ".xlsx":
            if source.department == self.department:
                return True  # ours to read, or to refuse with the precise reason
            try:
                check_zip(source, self.config)
                return SHEET in sheet_names(source)
            except Exception:  # noqa: BLE001 - whatever it is, it is not a workbook we read
                return False
        if source.suffix == ".csv":
            head = source.head()
            if not head:
                return source.department == self.department  # parse says why it cannot be read
            return "学籍号" in head and "学段" in head
        return False

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        if source.suffix == ".xlsx":
            return xlsx_rows(source, self.config)
        return csv_rows(source, REQUIRED, tuple(COLUMNS))

    def normalize(self, row: RawRow) -> SchoolEnrolment:
        cell = {column: _cell(column, row.fields.get(column)) for column in COLUMNS}
        id_type, number = cell["身份证件类型"], cell["身份证件号"]
        resident = isinstance(id_type, str) and id_type.strip() in _RESIDENT_ID
        guardian = {"name": cell["监护人1姓名"], "id_number": cell["监护人1身份证件号"]}
        data = {
            "student_no": cell["学籍号"],
            "student": {
                "name": cell["姓名"],
                "sex": cell["性别"],
                "birth_date": cell["出生日期"],
                "id_type": id_type,
                # A resident ID card number is a citizen ID number, checked as such; any
                # other document's number is kept as written.
                "id_number" if resident else "other_id_no": number,
            },
            "guardian": guardian if any(_present(v) for v in guardian.values()) else None,
            "school_code": cell["学校标识码"],
            "school_name": cell["学校名称"],
            "stage": cell["学段"],
            "enrolment_month": cell["入学年月"],
            "hukou_location": cell["户口所在地"],
            "current_address": cell["现住址"],
        }
        return SchoolEnrolment.model_validate(data, context={"stage_ages": self.config.stage_ages})


@hookimpl(trylast=True)
def register_adapters(register):
    register(SchoolEnrolmentsAdapter)
