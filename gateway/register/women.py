"""The register of women of childbearing age (育龄妇女信息库) and its 花名册 per township and
village: every woman aged 15–49 (configurable) the county is responsible for — registered
here, or living here from elsewhere — not dead, with marital status, children, the last
change and its source. Ages are counted on the as-of day (business clock by default).

Every view is audited (`register.women` in the audit log). Names and ID numbers are masked
unless the caller reveals them with a stated reason (also audited)."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import Engine, select
from sqlmodel import Session

from contracts.codes import MaritalStatus
from contracts.rules import age_on
from gateway.errors import GatewayError
from gateway.masking import mask_address, mask_id, mask_name
from gateway.register.settings import SOURCE_LABELS, RegisterSettings
from gateway.store import session_scope
from gateway.store.audit import record_event
from gateway.store.register_models import RegisterPerson

COLUMNS = ("姓名", "公民身份号码", "出生日期", "婚姻状况", "现有子女数", "户籍地", "现居住地", "变动情况", "变动日期", "信息来源")
MARITAL = {member.value: member.label for member in MaritalStatus}
AUDIT_DEPARTMENT = "population-office"
# A caller's own audit of a roster view: (detail, the subjects' masked ID numbers).
RosterAudit = Callable[[str, list[str]], None]


def is_woman_of_childbearing_age(person: RegisterPerson, on: dt.date, rs: RegisterSettings) -> bool:
    return (
        person.sex == "2" and person.birth_date is not None and person.dead_on is None and person.in_county
        and rs.women_min_age <= age_on(person.birth_date, on) <= rs.women_max_age
    )


def women(session: Session, on: dt.date, rs: RegisterSettings, township: str | None = None, village: str | None = None) -> list[RegisterPerson]:
    """The women of the register on `on`, in a township (code ending 000) and village, by ID number."""
    query = select(RegisterPerson).where(RegisterPerson.sex == "2", RegisterPerson.dead_on.is_(None))  # type: ignore[union-attr]
    if township:
        query = query.where(RegisterPerson.township_code == township)
    if village:
        query = query.where(RegisterPerson.village_code == village)
    people = session.execute(query.order_by(RegisterPerson.id_number)).scalars().all()
    return [p for p in people if is_woman_of_childbearing_age(p, on, rs)]


@dataclass
class Roster:
    title: str
    rows: list[list[str]]
    revealed: bool
    # The rows' ID numbers, in full and in the same order, for a front end that must find the
    # one person a clerk picked (the console's reveal); never shown, never printed.
    numbers: list[str] = field(default_factory=list, repr=False)


def _row(person: RegisterPerson, reveal: bool) -> list[str]:
    name, number = person.name or "", person.id_number
    household, residence = person.household_address or "", person.residence_address or ""
    if not reveal:
        name, number = mask_name(name), mask_id(number)
        household, residence = (mask_address(household) if household else ""), (mask_address(residence) if residence else "")
    if not household and person.household_division:  # only the code is known (a hospital's 户籍地行政区划代码)
        household = f"区划代码 {person.household_division}"
    return [
        name, number, person.birth_date.isoformat() if person.birth_date else "",
        MARITAL.get(person.marital_status or "", "未说明的婚姻状况" if not person.marital_status else person.marital_status),
        str(person.children), household, residence, person.last_change_kind or "",
        person.last_change_on.isoformat() if person.last_change_on else "",
        SOURCE_LABELS.get(person.last_change_source or "", person.last_change_source or ""),
    ]


def roster(
    engine: Engine, on: dt.date, rs: RegisterSettings, *, township: str | None, village: str | None, title: str,
    reveal: bool = False, reason: str | None = None, operator: str | None = None, audit: RosterAudit | None = None,
) -> Roster:
    """The 花名册, audited; `reveal` (full names, numbers and addresses) needs a reason.
    Audited in the routing audit log, in the same transaction, unless the caller gives its
    own `audit` (the console: its own log, so that `engine` may be a reader that never waits
    on an exchange's write lock); that is given the detail and the subjects' masked numbers."""
    if reveal and not (reason or "").strip():
        raise GatewayError("--reveal shows full names and ID numbers: give the reason with --reason (it is audited)")

    def detail(found: list[RegisterPerson]) -> str:
        text = f"{title}: {len(found)} row(s), as of {on.isoformat()}, by {operator or getpass.getuser()}"
        return text + (f", revealed: {reason}" if reveal else "")

    if audit is not None:
        with Session(engine) as session:
            found = women(session, on, rs, township, village)
        audit(detail(found), [mask_id(p.id_number) for p in found])
        return Roster(title, [_row(p, reveal) for p in found], reveal, [p.id_number for p in found])
    with session_scope(engine) as session:
        found = women(session, on, rs, township, village)
        record_event(session, "register.women", AUDIT_DEPARTMENT, detail=detail(found))
        return Roster(title, [_row(p, reveal) for p in found], reveal, [p.id_number for p in found])


def csv_bytes(roster: Roster) -> bytes:
    """The 花名册 as CSV: UTF-8 with BOM (Excel opens it), CRLF, the Chinese header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(roster.rows)
    return buffer.getvalue().encode("utf-8-sig")


def write_csv(roster: Roster, path: Path) -> Path:
    path.write_bytes(csv_bytes(roster))
    return path


def xlsx_bytes(roster: Roster) -> bytes:
    buffer = io.BytesIO()
    _workbook(roster).save(buffer)
    return buffer.getvalue()


def write_xlsx(roster: Roster, path: Path) -> Path:
    _workbook(roster).save(path)
    return path


def _workbook(roster: Roster) -> Workbook:
    book = Workbook()
    sheet = book.active
    sheet.title = "育龄妇女花名册"
    sheet.append([roster.title])
    sheet.append(list(COLUMNS))
    for row in roster.rows:
        sheet.append(row)
    for letter, width in zip("ABCDEFGHIJ", (10, 22, 12, 10, 10, 30, 30, 10, 12, 12), strict=True):
        sheet.column_dimensions[letter].width = width
    return book
