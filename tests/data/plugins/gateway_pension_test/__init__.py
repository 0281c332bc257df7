"""A plugin of the test suite (tests/test_plugin_contracts.py): the pension office's death
reports (养老金领取人死亡报告), with a contract, a field kind and reason texts of its own.

Not installed: a test registers this module in-process (`pm.register(module)`), or puts
this directory on PYTHONPATH for a `gateway` subprocess, whose entry points then find it
(gateway_pension_test-0.1.dist-info/entry_points.txt).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field

from contracts import Contract, Person
from contracts.fields import FreeText, PastDate, Phone

from gateway import hookimpl
from gateway.adapter import Adapter, RawRow, RowRejected, SourceFile
from gateway.masking import FieldKind
from gateway.readers import csv_rows

_PENSION_NO = re.compile(r"^YL\d{8}$")


def mask_pension_no(value: str) -> str:
    value = value.strip()
    return value[:2] + "*" * max(len(value) - 4, 1) + value[-2:] if len(value) > 4 else "****"


PensionNo = Annotated[
    str,
    BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
    Field(max_length=20, json_schema_extra={"kind": "pension_number"}, description="养老金编号 pension number"),
]


class PensionDeathReport(Contract):
    """养老金领取人死亡报告: a pensioner's death, as the pension office reports it."""

    contract_name: ClassVar[str] = "PensionDeathReport"
    business_key_fields: ClassVar[tuple[str, ...]] = ("pension_no", "death_date")
    label_zh: ClassVar[str] = "养老金领取人死亡报告"
    event_date_field: ClassVar[str | None] = "death_date"

    pension_no: PensionNo
    deceased: Annotated[Person, Field(description="死者 the deceased")]
    death_date: Annotated[PastDate, Field(description="死亡日期 date of death")]
    informant_phone: Annotated[Phone | None, Field(description="报告人电话 informant's phone")] = None
    remark: Annotated[FreeText | None, Field(description="备注 remark")] = None


COLUMNS = {
    "pension_no": "养老金编号",
    "deceased.name": "姓名",
    "deceased.id_number": "公民身份号码",
    "death_date": "死亡日期",
    "informant_phone": "报告人电话",
    "remark": "备注",
}


class PensionDeathsAdapter(Adapter):
    name = "pension-deaths"
    department = "civil-affairs"
    contracts = (PensionDeathReport,)
    file_types = (".csv",)
    description = "养老金领取人死亡报告 (CSV)"
    columns = COLUMNS
    reason_codes = ("pension_no_format",)

    def accepts(self, source: SourceFile) -> bool:
        return source.suffix == ".csv" and "养老金编号" in source.head()

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        return csv_rows(source, tuple(COLUMNS.values()))

    def normalize(self, row: RawRow) -> PensionDeathReport:
        cells = row.fields
        if not _PENSION_NO.match(cells["养老金编号"].strip()):
            raise RowRejected("pension_no_format", "养老金编号", "the pension number is YL and 8 digits")
        return PensionDeathReport.model_validate(
            {
                "pension_no": cells["养老金编号"],
                "deceased": {"name": cells["姓名"], "id_number": cells["公民身份号码"]},
                "death_date": cells["死亡日期"],
                "informant_phone": cells["报告人电话"],
                "remark": cells["备注"],
            }
        )


@hookimpl
def register_field_kinds(register):  # type: ignore[no-untyped-def]
    register(FieldKind("pension_number", "养老金编号", "pension number", True, mask_pension_no, "YL20260001"))


@hookimpl
def register_contracts(register):  # type: ignore[no-untyped-def]
    register(PensionDeathReport)


@hookimpl
def register_reasons(register):  # type: ignore[no-untyped-def]
    register("pension_no_format", "养老金编号格式错误(应为 YL 加 8 位数字)", "the pension number must be YL and 8 digits")


@hookimpl
def register_adapters(register):  # type: ignore[no-untyped-def]
    register(PensionDeathsAdapter)
