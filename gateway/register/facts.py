"""What one stored record says about each person it names (事实), keyed by the ID number.

Every contract that names a person by ID number gives facts: the person's name, sex and
birth date, and what the event changes (a household address, a residence, a marriage, a
child, a death, a move). A fact carries the record's event date, so a record reported late
(补报) takes its place in the person's history at the date the event happened.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contracts.base import PERSON_ATTRIBUTES
from contracts.identity import normalize_id_number
from gateway import plugins
from gateway.obligations.hooks import REGISTER_CONTRACTS

_MARITAL_WORDS = (("未婚", "10"), ("离婚", "40"), ("丧偶", "30"), ("再婚", "22"), ("复婚", "23"), ("初婚", "21"), ("已婚", "20"))


NO_SPOUSE = "-"  # a divorce ends the marriage: no spouse from then on


@dataclass(frozen=True)
class Fact:
    id_number: str
    attribute: str
    value: str
    event_date: dt.date


def _date(text: Any) -> dt.date | None:
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def valid_id(value: Any) -> str | None:
    """The 18-character form of a valid ID number (a 15-digit one upgraded), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalize_id_number(value)
    except Exception:  # noqa: BLE001 - pydantic's error for a number that does not check out
        return None


def _person(person: Any, on: dt.date, **extra: str | None) -> Iterator[Fact]:
    if not isinstance(person, dict):
        return
    number = valid_id(person.get("id_number"))
    if number is None:
        return
    for attribute, value in (("name", person.get("name")), ("sex", person.get("sex")),
                             ("birth_date", person.get("birth_date")), *extra.items()):
        if value not in (None, ""):
            yield Fact(number, attribute, str(value), on)


def _household(household: Any) -> dict[str, str | None]:
    household = household if isinstance(household, dict) else {}
    return {"household_address": household.get("address"), "household_division": household.get("division_code")}


BUILT_IN = frozenset(REGISTER_CONTRACTS)  # the built-in contracts `_facts` reads
_ATTRIBUTES = frozenset(PERSON_ATTRIBUTES)


def record_facts(contract: str, payload: dict[str, Any]) -> list[Fact]:
    """Every fact of one stored record; nothing for contracts that name nobody here. A
    plugin's contract gives its facts through `Contract.person_facts`."""
    if contract in BUILT_IN:
        return list(_facts(contract, payload))
    return list(_plugin_facts(contract, payload))


def _plugin_facts(contract: str, payload: dict[str, Any]) -> Iterator[Fact]:
    model = plugins.contracts().get(contract)
    if model is None or not model.gives_person_facts():
        return
    for fact in model.person_facts(payload):
        number = valid_id(fact.id_number)
        if number is None or fact.attribute not in _ATTRIBUTES or fact.value in (None, ""):
            continue
        yield Fact(number, fact.attribute, str(fact.value), fact.event_date)


def _facts(contract: str, p: dict[str, Any]) -> Iterator[Fact]:
    if contract == "BirthEvent":
        child = p.get("child") or {}
        on = _date(child.get("birth_date"))
        if on is None:
            return
        cert = str(p.get("birth_certificate_no") or "")
        if p.get("registration") == "police":
            yield from _person(child, on, **_household(p.get("household")))
        else:
            yield from _person(child, on, residence_address=p.get("home_address"))
        mother_extra: dict[str, str | None] = {"child": cert}
        if p.get("registration") != "police":  # the hospital's address of the family
            mother_extra |= {"residence_address": p.get("home_address"), "household_division": p.get("registered_division_code")}
        yield from _person(p.get("mother"), on, **mother_extra)
        yield from _person(p.get("father"), on, child=cert)
    elif contract == "DeathEvent":
        on = _date(p.get("death_date"))
        if on:
            yield from _person(p.get("deceased"), on, death_date=on.isoformat(), **_household(p.get("household")))
    elif contract == "CremationEvent":
        on = _date(p.get("death_date"))
        if on:
            yield from _person(p.get("deceased"), on, death_date=on.isoformat())
    elif contract == "Migration":
        on = _date(p.get("move_date"))
        if on is None:
            return
        extra: dict[str, str | None] = {"moved": p.get("direction")}
        if p.get("direction") == "in":
            extra |= _household(p.get("household"))
        else:  # registered elsewhere from now on; where she left from is kept for the township's list
            other, local = p.get("other_place") or {}, p.get("household") or {}
            extra |= {"household_address": other.get("address"), "household_division": other.get("division_code"),
                      "left_address": local.get("address"), "left_division": local.get("division_code")}
        yield from _person(p.get("person"), on, **extra)
    elif contract == "ResidencePermit":
        on = _date(p.get("issued_on"))
        if on:
            residence = p.get("residence") or {}
            yield from _person(p.get("holder"), on, residence_address=residence.get("address"),
                               residence_division=residence.get("division_code"), **_household(p.get("household")))
    elif contract == "MarriageEvent":
        on = _date(p.get("registered_on"))
        if on is None:
            return
        status = "20" if p.get("kind") == "marriage" else "40"
        husband, wife = p.get("husband") or {}, p.get("wife") or {}
        for party, other in ((husband, wife), (wife, husband)):
            spouse = valid_id(other.get("id_number")) if p.get("kind") == "marriage" else NO_SPOUSE
            yield from _person(party, on, marital_status=status, spouse=spouse)
    elif contract == "AdoptionEvent":
        on = _date(p.get("registered_on"))
        if on:
            cert = "adoption|" + str(p.get("certificate_no") or "")
            for adopter in p.get("adopters") or []:
                yield from _person(adopter, on, child=cert)
            yield from _person(p.get("adoptee"), on)
    elif contract == "HousingOccupancy":
        on = _date(p.get("updated_at"))
        if on:
            for occupant in p.get("occupants") or []:
                if isinstance(occupant, dict) and not occupant.get("move_out"):
                    yield from _person(occupant, on, residence_address=p.get("address"), residence_division=p.get("division_code"))
    elif contract == "SchoolEnrolment":
        month = p.get("enrolment_month")
        on = _date(f"{month}-01") if isinstance(month, str) else None
        if on:
            yield from _person(p.get("student"), on, school=p.get("school_name") or p.get("school_code"),
                               residence_address=p.get("current_address"))


def wcba_facts(id_number: str, name: str | None, category: str, value: str, recorded_on: dt.date | None) -> list[Fact]:
    """What one row of the hand-imported 育龄妇女 table says (the least authoritative source):
    the name, a marital status named in its 基本信息 text, and the fact itself for the
    assist-check categories no feed holds."""
    number = valid_id(id_number)
    if number is None:
        return []
    on = recorded_on or dt.date(1900, 1, 1)
    found = [Fact(number, f"note:{category}", value if recorded_on is None else f"{value}（{recorded_on.isoformat()}）", on)]
    if name:
        found.append(Fact(number, "name", name, on))
    if category == "01":
        for word, code in _MARITAL_WORDS:
            if re.search(word, value):
                found.append(Fact(number, "marital_status", code, on))
                break
    return found
