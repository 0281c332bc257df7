"""Hospital births (卫生健康 · 出生医学证明): `hospital_births_YYYYMM.csv`.

CSV with Chinese headers, usually GB18030 with CRLF line ends; one row per birth
certificate.
"""

from __future__ import annotations

from collections.abc import Iterator

from contracts import BirthEvent
from gateway import hookimpl
from gateway.adapter import Adapter, RawRow, SourceFile
from gateway.readers import csv_rows

COLUMNS = {
    "出生医学证明编号": "birth_certificate_no",
    "新生儿姓名": "child.name",
    "性别": "child.sex",
    "出生日期": "child.birth_date",
    "出生时间": "child.birth_time",
    "出生体重(克)": "birth_weight_g",
    "出生孕周": "gestation_weeks",
    "胎次": "birth_order",
    "母亲姓名": "mother.name",
    "母亲公民身份号码": "mother.id_number",
    "父亲姓名": "father.name",
    "父亲公民身份号码": "father.id_number",
    "接生机构名称": "institution_name",
    "接生机构代码": "institution_code",
    "家庭住址": "home_address",
    "户籍地行政区划代码": "registered_division_code",
}
REQUIRED = tuple(column for column in COLUMNS if not column.startswith("父亲"))


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


class HospitalBirthsAdapter(Adapter):
    """出生医学证明 export from a hospital: one `BirthEvent` per row."""

    name = "hospital-births"
    department = "hospital"
    contracts = (BirthEvent,)
    file_types = (".csv",)
    description = "Hospital birth certificates (出生医学证明), CSV with Chinese headers"
    columns = {field: column for column, field in COLUMNS.items()}

    def accepts(self, source: SourceFile) -> bool:
        return source.suffix in self.file_types and (not source.head() or "出生医学证明编号" in source.head())

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        return csv_rows(source, REQUIRED, tuple(COLUMNS))

    def normalize(self, row: RawRow) -> BirthEvent:
        get = row.fields.get
        father_name, father_id = _clean(get("父亲姓名")), _clean(get("父亲公民身份号码"))
        data = {
            # Part of the business key: the police cite the same certificate number in
            # their newborn registration, which is another record, not a correction.
            "registration": "hospital",
            "birth_certificate_no": get("出生医学证明编号"),
            "child": {
                "name": get("新生儿姓名"),
                "sex": get("性别"),
                "birth_date": get("出生日期"),
                "birth_time": _clean(get("出生时间")),
            },
            "birth_weight_g": _clean(get("出生体重(克)")),
            "gestation_weeks": _clean(get("出生孕周")),
            "birth_order": _clean(get("胎次")),
            "mother": {"name": get("母亲姓名"), "id_number": _clean(get("母亲公民身份号码"))},
            "father": {"name": father_name, "id_number": father_id} if (father_name or father_id) else None,
            "institution_name": get("接生机构名称"),
            "institution_code": get("接生机构代码"),
            "home_address": get("家庭住址"),
            "registered_division_code": get("户籍地行政区划代码"),
        }
        return BirthEvent.model_validate(data)


@hookimpl(trylast=True)
def register_adapters(register):
    register(HospitalBirthsAdapter)
