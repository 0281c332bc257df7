"""The township breakdown (分乡镇) of the items the regulations ask of the population reports
that the feeds can give, for one calendar month, from the current version of each stored
record and the register's placement of the person it is about:

| item | 项目 | from | township of |
|---|---|---|---|
| `hospital_births` | 住院分娩人数 (by the infant's sex) | hospital birth certificates, by birth date | the mother |
| `infant_deaths` | 周岁内死亡婴儿 (by sex) | police 死亡注销 under one full year of age | the deceased |
| `deaths` | 死亡人口 by age band and sex | police 死亡注销, by death date | the deceased |
| `registrations` | 婴儿落户 (born this year) | police 出生登记, by 登记日期 | the child |
| `late_registrations` | 往年出生补报 (born in an earlier year), counted apart | police 出生登记, by 登记日期 | the child |

围产期保健 and 防疫 are held by no feed: the report says so instead of a figure. Rows no
township can be given (the person not placed) are counted in `未落到乡镇 unplaced`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from contracts.identity import id_sex
from contracts.rules import age_on
from gateway.register.divisions import Divisions
from gateway.register.facts import valid_id
from gateway.register.lists import Period
from gateway.store import Record
from gateway.store.retention_models import not_purged
from gateway.store.register_models import RegisterPerson

AGE_BANDS = (("0", 0, 0), ("1-14", 1, 14), ("15-49", 15, 49), ("50-64", 50, 64), ("65+", 65, 200))
NOT_HELD_TEXT = "未掌握：本网关未接入该数据 / not held by any feed"
NOT_HELD = {"围产期保健 perinatal care": NOT_HELD_TEXT, "防疫 immunisation": NOT_HELD_TEXT}
UNPLACED = "unplaced"
SEXES = ("1", "2")


@dataclass
class TownshipFigures:
    hospital_births: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEXES, 0))
    infant_deaths: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEXES, 0))
    deaths: dict[str, dict[str, int]] = field(default_factory=lambda: {band: dict.fromkeys(SEXES, 0) for band, _, _ in AGE_BANDS})
    registrations: int = 0
    late_registrations: int = 0

    def counts(self) -> list[int]:
        """The figures in HEADER's order (after the code and the name)."""
        return [*(self.hospital_births[s] for s in SEXES), *(self.infant_deaths[s] for s in SEXES),
                *(self.deaths[band][s] for band, _, _ in AGE_BANDS for s in SEXES),
                self.registrations, self.late_registrations]

    def add(self, other: TownshipFigures) -> None:
        for s in SEXES:
            self.hospital_births[s] += other.hospital_births[s]
            self.infant_deaths[s] += other.infant_deaths[s]
            for band, _, _ in AGE_BANDS:
                self.deaths[band][s] += other.deaths[band][s]
        self.registrations += other.registrations
        self.late_registrations += other.late_registrations


def total(figures: dict[str, TownshipFigures]) -> TownshipFigures:
    """The county's figures: every township and the unplaced."""
    found = TownshipFigures()
    for one in figures.values():
        found.add(one)
    return found


def _current(session: Session, contract: str) -> list[dict[str, Any]]:
    latest: dict[str, tuple[int, str]] = {}
    for key, version, payload in session.execute(
        select(Record.business_key, Record.version, Record.payload).where(Record.contract == contract, not_purged())
    ).all():
        if key not in latest or version > latest[key][0]:
            latest[key] = (version, payload)
    return [json.loads(payload) for _, payload in (latest[k] for k in sorted(latest))]


def _date(text: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


def township_figures(engine: Engine, span: Period, divisions: Divisions) -> dict[str, TownshipFigures]:
    """{township code (or `unplaced`): figures} for the period."""
    figures: dict[str, TownshipFigures] = {code: TownshipFigures() for code in divisions.townships}
    with Session(engine) as session:
        def township(number: Any) -> str:
            number = valid_id(number)
            person = session.get(RegisterPerson, number) if number else None
            return person.township_code if person is not None and person.township_code in figures else UNPLACED

        def at(code: str) -> TownshipFigures:
            return figures.setdefault(code, TownshipFigures())

        for birth in _current(session, "BirthEvent"):
            child = birth.get("child") or {}
            born = _date(child.get("birth_date"))
            if birth.get("registration") == "police":
                registered = _date(birth.get("registered_on"))
                if registered and span.first <= registered <= span.last and born:
                    target = at(township(child.get("id_number")))
                    if born.year < registered.year:
                        target.late_registrations += 1
                    else:
                        target.registrations += 1
            elif born and span.first <= born <= span.last and child.get("sex") in SEXES:
                at(township((birth.get("mother") or {}).get("id_number"))).hospital_births[child["sex"]] += 1
        counted: set[tuple[str, str]] = set()
        for death in _current(session, "DeathEvent"):
            died, deceased = _date(death.get("death_date")), death.get("deceased") or {}
            born = _date(deceased.get("birth_date"))
            number = deceased.get("id_number")
            # The police's and the social-security bureau's reports of one death are two
            # records (who reported it is part of its identity): one death is counted once.
            if (str(number), str(died)) in counted:
                continue
            counted.add((str(number), str(died)))
            sex = deceased.get("sex") or (id_sex(number) if number else None)
            if not (died and born and span.first <= died <= span.last and sex in SEXES):
                continue
            target, age = at(township(number)), age_on(born, died)
            if age < 1:
                target.infant_deaths[sex] += 1
            band = next(name for name, low, high in AGE_BANDS if low <= age <= high)
            target.deaths[band][sex] += 1
    return figures


HEADER = ["乡镇代码", "乡镇", "住院分娩 男", "住院分娩 女", "周岁内死亡婴儿 男", "周岁内死亡婴儿 女",
          *[f"死亡 {band}岁 {'男' if sex == '1' else '女'}" for band, _, _ in AGE_BANDS for sex in SEXES],
          "婴儿落户", "往年出生补报"]


def township_rows(figures: dict[str, TownshipFigures], divisions: Divisions) -> list[tuple[str, str, list[int]]]:
    """(code, name, counts) per township in divisions.csv order, then the unplaced ("" as code)."""
    rows = []
    for code in [*divisions.townships, UNPLACED]:
        if code not in figures:
            continue
        name = divisions.townships[code].name if code in divisions.townships else "未落到乡镇 unplaced"
        rows.append((code if code != UNPLACED else "", name, figures[code].counts()))
    return rows


def table_rows(figures: dict[str, TownshipFigures], divisions: Divisions) -> list[list[str]]:
    return [[code, name, *(str(n) for n in counts)] for code, name, counts in township_rows(figures, divisions)]


def report_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    for item, note in NOT_HELD.items():
        writer.writerow([item, note])
    return buffer.getvalue().encode("utf-8-sig")
