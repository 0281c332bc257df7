"""The population events in the stored records: what each contract counts as, on which
day, in which division (行政区划代码) and for which sex.

Only the current version of each record counts (the highest `version` of a business key:
a correction replaces what it corrects, it is not a second event). Each record gives:

| contract | counted as | day | division | sex |
|---|---|---|---|---|
| BirthEvent, police (出生登记) | births 出生 | registered_on (登记日期), else the birth date | registered_division_code, else household.division_code | child.sex |
| BirthEvent, any source | a birth that occurred (for the sex ratio at birth), once per 出生医学证明编号 | child.birth_date | as above | child.sex |
| DeathEvent | deaths 死亡, once per ID number and death date (the police's and the social-security bureau's reports of one death are two records, issue 19): the one with a household division code | death_date (police 变动日期) | household.division_code | deceased.sex |
| Migration in / out | moves in 迁入 / moves out 迁出 | move_date (变动日期) | household.division_code (本地户籍) | person.sex |
| ResidencePermit | residence permits 居住证 | issued_on | residence.division_code | holder.sex |
| MarriageEvent | marriages 结婚 / divorces 离婚: one per party | registered_on | the party's ID number (first six digits) | 男方 male, 女方 female |
| AdoptionEvent | adoptions 收养 | registered_on | the adoptee's ID number | adoptee.sex |
| SchoolEnrolment | enrolments 入学 | enrolment_month (its first day) | the pupil's ID number | student.sex |

A missing sex is taken from the ID number (its 17th digit) when there is one; a sex that
is neither male nor female (0 未知, 9 未说明, or none) is counted in 合计 only, which the
sex balance check then reports. A record without a division code counts in the total
row and in no division row, which the divisions check reports.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from gateway.store import Record
from gateway.store.retention_models import not_purged

ITEMS = ("births", "deaths", "moves_in", "moves_out", "marriages", "divorces", "adoptions", "enrolments", "residence_permits")
ITEM_LABELS = {
    "births": "出生", "deaths": "死亡", "moves_in": "迁入", "moves_out": "迁出", "marriages": "结婚",
    "divorces": "离婚", "adoptions": "收养", "enrolments": "入学", "residence_permits": "居住证",
}
# The changes of the registered population (户籍人口): start + births − deaths + in − out = end.
REGISTRY_SIGNS = {"births": 1, "deaths": -1, "moves_in": 1, "moves_out": -1}
CONTRACTS = ("BirthEvent", "DeathEvent", "Migration", "ResidencePermit", "MarriageEvent", "AdoptionEvent", "SchoolEnrolment")
MALE, FEMALE = "1", "2"


@dataclass(frozen=True)
class Event:
    """One counted change: `item` (a key of ITEM_LABELS) on `day`."""

    item: str
    day: dt.date
    division: str | None
    sex: str | None  # "1" male, "2" female, anything else unknown
    age: int | None = None  # at the event, when the birth date is known


@dataclass(frozen=True)
class Birth:
    """A birth that occurred, once per birth certificate (出生医学证明), from either source."""

    certificate: str
    day: dt.date
    division: str | None
    sex: str | None


@dataclass
class Events:
    events: list[Event]
    births: list[Birth]
    records: int = 0


def read_events(engine: Engine) -> Events:
    """Every event in the current versions of the stored records."""
    found = Events([], [])
    occurred: dict[str, Birth] = {}
    died: dict[tuple[str, str], Event] = {}
    for contract, payload in _current_payloads(engine):
        found.records += 1
        data = json.loads(payload)
        if contract == "DeathEvent":
            for event in _events(contract, data):
                death = (str(_get(data, "deceased.id_number")), str(data.get("death_date")))
                kept = died.get(death)
                # Who reported it is part of a death's identity: one death, counted once.
                if kept is None or (kept.division is None and event.division is not None):
                    died[death] = event
            continue
        found.events.extend(_events(contract, data))
        if contract == "BirthEvent":
            birth = _birth(data)
            if birth is not None:
                kept = occurred.get(birth.certificate)
                # The hospital's certificate is the record of the birth itself; the police
                # registration only fills in what the hospital did not send.
                if kept is None or data.get("registration") == "hospital":
                    occurred[birth.certificate] = birth
    found.births = sorted(occurred.values(), key=lambda b: (b.day, b.certificate))
    found.events.extend(died[death] for death in sorted(died))
    return found


def _current_payloads(engine: Engine) -> Iterator[tuple[str, str]]:
    query = (
        select(Record.contract, Record.business_key, Record.version, Record.payload)
        .where(Record.contract.in_(CONTRACTS), not_purged())  # type: ignore[attr-defined] - purged (保存期限): nothing to count
        .order_by(Record.contract, Record.business_key, Record.version.desc())  # type: ignore[attr-defined]
    )
    previous: tuple[str, str] | None = None
    with engine.connect() as connection:
        for contract, key, _version, payload in connection.execution_options(stream_results=True, yield_per=2000).execute(query):
            if (contract, key) == previous:
                continue  # an older version of a corrected record
            previous = (contract, key)
            yield contract, payload


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _day(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value + "-01" if len(value) == 7 else value[:10])
    except ValueError:
        return None


def _sex(person: Any, implied: str | None = None) -> str | None:
    if not isinstance(person, dict):
        return implied
    sex = person.get("sex")
    if sex is None:
        number = person.get("id_number")
        if isinstance(number, str) and len(number) == 18 and number[16].isdigit():
            return MALE if int(number[16]) % 2 else FEMALE
        return implied
    return str(sex)


def _id_division(person: Any) -> str | None:
    number = person.get("id_number") if isinstance(person, dict) else None
    return number[:6] if isinstance(number, str) and len(number) == 18 and number[:6].isdigit() else None


def _age(person: Any, day: dt.date) -> int | None:
    born = _day(person.get("birth_date")) if isinstance(person, dict) else None
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _events(contract: str, data: dict[str, Any]) -> list[Event]:
    if contract == "BirthEvent":
        if data.get("registration") != "police":
            return []
        day = _day(data.get("registered_on")) or _day(_get(data, "child.birth_date"))
        division = data.get("registered_division_code") or _get(data, "household.division_code")
        return [Event("births", day, division, _sex(data.get("child")), 0)] if day else []
    if contract == "DeathEvent":
        day = _day(data.get("death_date"))
        person = data.get("deceased")
        return [Event("deaths", day, _get(data, "household.division_code"), _sex(person), _age(person, day))] if day else []
    if contract == "Migration":
        day = _day(data.get("move_date"))
        person = data.get("person")
        item = "moves_in" if data.get("direction") == "in" else "moves_out"
        return [Event(item, day, _get(data, "household.division_code"), _sex(person), _age(person, day))] if day else []
    if contract == "ResidencePermit":
        day = _day(data.get("issued_on"))
        person = data.get("holder")
        return [Event("residence_permits", day, _get(data, "residence.division_code"), _sex(person), _age(person, day))] if day else []
    if contract == "MarriageEvent":
        day = _day(data.get("registered_on"))
        item = "divorces" if data.get("kind") == "divorce" else "marriages"
        if day is None:
            return []
        return [
            Event(item, day, _id_division(data.get(role)), _sex(data.get(role), implied), None)
            for role, implied in (("husband", MALE), ("wife", FEMALE))
        ]
    if contract == "AdoptionEvent":
        day = _day(data.get("registered_on"))
        person = data.get("adoptee")
        return [Event("adoptions", day, _id_division(person), _sex(person), None)] if day else []
    if contract == "SchoolEnrolment":
        day = _day(data.get("enrolment_month"))
        person = data.get("student")
        return [Event("enrolments", day, _id_division(person), _sex(person), None)] if day else []
    return []


def _birth(data: dict[str, Any]) -> Birth | None:
    day = _day(_get(data, "child.birth_date"))
    certificate = data.get("birth_certificate_no")
    if day is None or not certificate:
        return None
    division = data.get("registered_division_code") or _get(data, "household.division_code")
    return Birth(str(certificate), day, division, _sex(data.get("child")))
