"""School enrolments (教育 · 学籍): `school_enrolments_YYYYMM.xlsx` (sheet `新生名册`), or
the same columns as CSV (usually GB18030). One `SchoolEnrolment` per row.

The workbook is read with the public reader `gateway.readers.xlsx_rows`: before openpyxl
touches it, the archive's directory is checked against a total uncompressed size, a
compression ratio and a size of the shared-strings table (the limits are this adapter's
options), and every XML part for a DOCTYPE (gateway/readers/xlsx.py); rows are then
streamed with openpyxl's read-only mode.

An ID number typed as a number (a spreadsheet cell of type number, or CSV text such as
`4.40781E+17`) has lost its last digits: the row is rejected (`id_as_number`), never
guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from contracts.school import IdDocumentType, SchoolEnrolment, StageAgeRanges
from gateway import hookimpl
from gateway.adapter import Adapter, AdapterConfig, RawRow, RowRejected, SourceFile
from gateway.readers import XlsxLimits, check_zip, csv_rows, sheet_names, xlsx_rows
from gateway.readers.xlsx import present

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


def _limits(config: SchoolConfig) -> XlsxLimits:
    return XlsxLimits(config.xlsx_max_uncompressed_mb, config.xlsx_max_ratio, config.xlsx_max_shared_strings_mb)


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
                check_zip(source, _limits(self.config))
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
            # Typed cells: an ID typed as a number must be told from text (`_cell`).
            return xlsx_rows(source, sheet=SHEET, header=REQUIRED, max_title_rows=0, known=tuple(COLUMNS),
                             cells="typed", limits=_limits(self.config))
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
            "guardian": guardian if any(present(v) for v in guardian.values()) else None,
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
