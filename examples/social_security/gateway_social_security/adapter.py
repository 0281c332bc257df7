"""The bureau's monthly workbook: `养老金领取人员死亡报告_YYYYMM.xlsx`, sheet `死亡报告`, a
title row (the bureau's name and the month) above the header, dates as Excel dates,
Excel serial numbers or `2026年10月3日`, one reported death per row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from gateway.adapter import Adapter, RawRow, RowRejected, SourceFile
from gateway.readers import xlsx_rows

from gateway_social_security.contract import PensionDeathReport

SHEET = "死亡报告"
COLUMNS = {
    "姓名": "deceased.name",
    "公民身份号码": "deceased.id_number",
    "性别": "deceased.sex",
    "养老保险个人编号": "pension_no",
    "死亡日期": "death_date",
    "报告日期": "reported_on",
    "报告人姓名": "reporter_name",
    "与死者关系": "reporter_relation",
    "报告人联系电话": "reporter_phone",
    "经办机构": "office",
}
DATE_COLUMNS = ("死亡日期", "报告日期")
REQUIRED = ("姓名", "公民身份号码", "养老保险个人编号", "死亡日期", "报告日期", "报告人姓名", "报告人联系电话")


class SocialSecurityDeathsAdapter(Adapter):
    """社保局 养老金领取人员死亡报告 (XLSX) → `PensionDeathReport`."""

    name: ClassVar[str] = "social-security-deaths"
    department: ClassVar[str] = "social-security"
    contracts: ClassVar[tuple[type[PensionDeathReport], ...]] = (PensionDeathReport,)
    file_types: ClassVar[tuple[str, ...]] = (".xlsx",)
    description: ClassVar[str] = "社保局 养老金领取人员死亡报告 (pension recipients' deaths reported by families)"
    columns = {field: column for column, field in COLUMNS.items()}
    reason_codes: ClassVar[tuple[str, ...]] = ("pension_no_missing",)

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        # The reader finds the header below the title row, refuses an unsafe archive
        # (FileRejected) and gives Excel dates and serial numbers as dates.
        yield from xlsx_rows(source, sheet=SHEET, header=REQUIRED, known=("序号", *COLUMNS), date_columns=DATE_COLUMNS)

    def normalize(self, row: RawRow) -> PensionDeathReport:
        cells = row.fields
        if not cells.get("养老保险个人编号"):
            raise RowRejected("pension_no_missing", "养老保险个人编号")
        return PensionDeathReport.model_validate(
            {
                "deceased": {
                    "name": cells.get("姓名"),
                    "id_number": cells.get("公民身份号码"),
                    "sex": cells.get("性别"),
                },
                "pension_no": cells.get("养老保险个人编号"),
                "death_date": cells.get("死亡日期"),
                "reported_on": cells.get("报告日期"),
                "reporter_name": cells.get("报告人姓名"),
                "reporter_relation": cells.get("与死者关系"),
                "reporter_phone": cells.get("报告人联系电话"),
                "office": cells.get("经办机构"),
            }
        )
