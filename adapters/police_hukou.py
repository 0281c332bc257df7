"""Police household registry (公安 · 户籍): `police_hukou_YYYYMM.csv`.

CSV, UTF-8 with BOM, LF line ends; the header holds the public-security data-element
codes (YWLX, GMSFHM, XM...). Each row is one registry change, and its business type
(业务类型 YWLX) decides the contract:

- 出生登记 → `BirthEvent` (registration `police`: the newborn's ID number, birth
  certificate number CSYXZMBH, household HH and address);
- 死亡注销 → `DeathEvent` (the change date BDRQ is the death date);
- 迁入 / 迁出 → `Migration` (QYDZ / QYDZ_XZQHDM is where from, or where to; ZQZBH the
  transfer permit);
- 居住证 → `ResidencePermit` (JZZBH, valid until JZZYXQZ; QYDZ is where the holder lives
  here, HJDZ their registration elsewhere).

Columns a row's type does not use must be empty: a value there is a row error
(`column_not_used`), because it would otherwise vanish without anyone noticing. Set
`strict_unused_columns = false` under `[adapters.police-hukou]` to let such values pass.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic_core import PydanticCustomError

from contracts import BirthEvent, Contract, DeathEvent, Migration, PoliceBusiness, ResidencePermit
from contracts.codes import parse_police_business
from gateway import hookimpl
from gateway.adapter import Adapter, AdapterConfig, RawRow, RowRejected, SourceFile
from gateway.readers import csv_rows, normalize_header

# Every type uses these: who, their household, and the change itself.
COMMON = ("YWLX", "GMSFHM", "XM", "XBDM", "MZDM", "CSRQ", "HH", "YHZGXDM", "HJDZ", "HJDZ_XZQHDM", "BDRQ", "BDYY", "DJPCS")
USES: dict[PoliceBusiness, tuple[str, ...]] = {
    PoliceBusiness.BIRTH: (*COMMON, "CSYXZMBH"),
    PoliceBusiness.DEATH: COMMON,
    PoliceBusiness.MOVE_IN: (*COMMON, "QYDZ", "QYDZ_XZQHDM", "ZQZBH"),
    PoliceBusiness.MOVE_OUT: (*COMMON, "QYDZ", "QYDZ_XZQHDM", "ZQZBH"),
    PoliceBusiness.RESIDENCE_PERMIT: (*COMMON, "QYDZ", "QYDZ_XZQHDM", "JZZBH", "JZZYXQZ"),
}
ALL_COLUMNS = (*COMMON, "QYDZ", "QYDZ_XZQHDM", "ZQZBH", "JZZBH", "JZZYXQZ", "CSYXZMBH")
# The type-specific columns may be missing from an older export; the rows that need
# them are then rejected one by one, naming the column.
REQUIRED = COMMON

_PERSON = {"name": "XM", "id_number": "GMSFHM", "sex": "XBDM", "birth_date": "CSRQ", "ethnicity": "MZDM"}
_HOUSEHOLD = {"household_no": "HH", "relation_to_head": "YHZGXDM", "address": "HJDZ", "division_code": "HJDZ_XZQHDM"}
_OTHER_PLACE = {"address": "QYDZ", "division_code": "QYDZ_XZQHDM"}


def _under(prefix: str, mapping: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix}.{field}": column for field, column in mapping.items()}


# Contract field (dotted) -> column, for the rejection report. The contracts use
# distinct top-level names (child, deceased, person, holder), so one map serves all.
COLUMNS: dict[str, str] = {
    **_under("child", _PERSON),
    "birth_certificate_no": "CSYXZMBH",
    "registered_on": "BDRQ",
    **_under("deceased", _PERSON),
    "death_date": "BDRQ",
    **_under("person", _PERSON),
    "direction": "YWLX",
    "move_date": "BDRQ",
    **_under("other_place", _OTHER_PLACE),
    "transfer_permit_no": "ZQZBH",
    **_under("holder", _PERSON),
    "permit_no": "JZZBH",
    "issued_on": "BDRQ",
    "valid_until": "JZZYXQZ",
    **_under("residence", _OTHER_PLACE),
    **_under("household", _HOUSEHOLD),
    "reason": "BDYY",
    "police_station": "DJPCS",
}


class PoliceHukouConfig(AdapterConfig):
    """Options under `[adapters.police-hukou]`."""

    strict_unused_columns: bool = True
    """Reject a row that fills a column its business type does not use."""


class PoliceHukouAdapter(Adapter):
    """户籍 changes from the police: one contract per row, chosen by 业务类型 (YWLX)."""

    name = "police-hukou"
    department = "police"
    contracts = (BirthEvent, DeathEvent, Migration, ResidencePermit)
    file_types = (".csv",)
    description = "Police household registry changes (户籍: 出生登记, 死亡注销, 迁入, 迁出, 居住证), CSV with data-element headers"
    Config = PoliceHukouConfig
    columns = COLUMNS
    config: PoliceHukouConfig

    def accepts(self, source: SourceFile) -> bool:
        if source.suffix not in self.file_types:
            return False
        head = source.head()
        if not head:
            return True  # unreadable: let parse() reject it with the encoding reason
        # The data-element header, not the file name, says it is the registry's export.
        first_line = next(csv.reader([head.splitlines()[0]]), [])
        return {"YWLX", "GMSFHM"} <= {normalize_header(cell) for cell in first_line}

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        return csv_rows(source, REQUIRED, ALL_COLUMNS)

    def normalize(self, row: RawRow) -> Contract:
        fields = row.fields
        try:
            business = parse_police_business(fields.get("YWLX"))
        except PydanticCustomError as exc:  # empty (missing) or not one of the five types
            raise RowRejected(exc.type, "YWLX", exc.message()) from None
        if self.config.strict_unused_columns:
            filled = [
                column for column in ALL_COLUMNS
                if column not in USES[business] and (fields.get(column) or "").strip()
            ]
            if filled:
                raise RowRejected("column_not_used", ", ".join(filled), f"{business.label} does not use {', '.join(filled)}")
        return _BUILDERS[business](fields)


def _pick(fields: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    return {field: fields.get(column) for field, column in mapping.items()}


def _optional(fields: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any] | None:
    """The part as a dict, or None when every one of its cells is empty."""
    part = _pick(fields, mapping)
    return part if any(value is not None and str(value).strip() for value in part.values()) else None


def _birth(fields: Mapping[str, Any]) -> BirthEvent:
    return BirthEvent.model_validate(
        {
            "registration": "police",
            "birth_certificate_no": fields.get("CSYXZMBH"),
            "child": _pick(fields, _PERSON),
            "household": _optional(fields, _HOUSEHOLD),
            "registered_on": fields.get("BDRQ"),
            # BDYY of a newborn registration is always 出生: nothing to keep.
            "police_station": fields.get("DJPCS"),
        }
    )


def _death(fields: Mapping[str, Any]) -> DeathEvent:
    return DeathEvent.model_validate(
        {
            "deceased": _pick(fields, _PERSON),
            "death_date": fields.get("BDRQ"),
            "household": _optional(fields, _HOUSEHOLD),
            "reason": fields.get("BDYY"),
            "police_station": fields.get("DJPCS"),
        }
    )


def _migration(direction: str) -> Callable[[Mapping[str, Any]], Migration]:
    def build(fields: Mapping[str, Any]) -> Migration:
        return Migration.model_validate(
            {
                "direction": direction,
                "person": _pick(fields, _PERSON),
                "move_date": fields.get("BDRQ"),
                "household": _pick(fields, _HOUSEHOLD),
                "other_place": _optional(fields, _OTHER_PLACE),
                "transfer_permit_no": fields.get("ZQZBH"),
                "reason": fields.get("BDYY"),
                "police_station": fields.get("DJPCS"),
            }
        )

    return build


def _residence_permit(fields: Mapping[str, Any]) -> ResidencePermit:
    return ResidencePermit.model_validate(
        {
            "permit_no": fields.get("JZZBH"),
            "holder": _pick(fields, _PERSON),
            "issued_on": fields.get("BDRQ"),
            "valid_until": fields.get("JZZYXQZ"),
            "residence": _pick(fields, _OTHER_PLACE),
            "household": _optional(fields, _HOUSEHOLD),
            "reason": fields.get("BDYY"),
            "police_station": fields.get("DJPCS"),
        }
    )


_BUILDERS: dict[PoliceBusiness, Callable[[Mapping[str, Any]], Contract]] = {
    PoliceBusiness.BIRTH: _birth,
    PoliceBusiness.DEATH: _death,
    PoliceBusiness.MOVE_IN: _migration("in"),
    PoliceBusiness.MOVE_OUT: _migration("out"),
    PoliceBusiness.RESIDENCE_PERMIT: _residence_permit,
}


@hookimpl(trylast=True)
def register_adapters(register):
    register(PoliceHukouAdapter)
