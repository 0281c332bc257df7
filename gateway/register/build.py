"""Folding stored records into the register (并入), and deriving each person from the facts.

`fold()` takes every stored record not folded yet (and every imported 育龄妇女 row), writes
its facts and marks it folded in the same transaction, then derives again each person it
touched. A record is folded once: a file dropped twice stores no records the second time,
and a record already folded is never read again. A correction (a new version of a record)
withdraws the old version's facts: the persons the old version named are derived again.

Deriving a person reads only the facts and the record versions, in event order (a record
reported late takes its place at its event date), never the clock or row ids: `rebuild()`
(drop everything, fold every stored record) gives the same rows, and `export_register()`
the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from contracts.identity import id_birth_date, id_sex
from gateway import clock
from gateway.config import Settings
from gateway.obligations.hooks import register_contracts, register_folded
from gateway.register.divisions import Divisions, DivisionsError, Placement, load_divisions
from gateway.register.facts import NO_SPOUSE, record_facts, wcba_facts
from gateway.register.settings import WCBA, RegisterSettings, register_settings
from gateway.store import Exchange, Record, session_scope
from gateway.store.models import LookupEntry
from gateway.store.register_models import RegisterFact, RegisterFolded, RegisterPerson
from gateway.store.retention_models import not_purged

log = logging.getLogger("gateway.register")

SCALARS = ("name", "household_address", "household_division", "residence_address", "residence_division",
           "marital_status", "spouse", "school", "death_date")
# Where two sources disagree on these, the register lists it (多元校核).
CHECKED = ("name", "marital_status", "household_division", "death_date")
# What counts as a change (变动情况), least significant first: on one day the weightier one is shown.
CHANGES = ("household_address", "residence_address", "child", "marital_status", "moved", "death_date")
BATCH = 2000  # records read per query
# records per transaction of `fold()`: large enough that a person named by many rows of one
# file is derived a few times, not once per query; small enough that a stop waits seconds
TRANSACTION = 6000
CHUNK = 500  # persons derived per round of queries


@dataclass
class FoldResult:
    records: int = 0
    wcba_rows: int = 0
    facts: int = 0
    people: int = 0
    removed: int = 0
    touched: set[str] = field(default_factory=set, repr=False)

    def add(self, other: FoldResult) -> None:
        self.records += other.records
        self.wcba_rows += other.wcba_rows
        self.facts += other.facts
        self.people += other.people
        self.removed += other.removed
        self.touched |= other.touched

    def summary(self) -> str:
        return (f"并入记录 {self.records} 条、育龄妇女台账 {self.wcba_rows} 行，事实 {self.facts} 条，更新人员 {self.people} 人"
                f"（移除 {self.removed} 人） / folded {self.records} record(s), {self.wcba_rows} wcba row(s), "
                f"{self.facts} fact(s); {self.people} person(s) derived, {self.removed} removed")


def divisions_or_none(settings: Settings) -> Divisions | None:
    """The county's divisions, or None while HOME/divisions.csv is absent (a wrong file is an error)."""
    try:
        return load_divisions(settings.home)
    except DivisionsError:
        if not (settings.home / "divisions.csv").exists():
            return None
        raise


def fold(engine: Engine, settings: Settings, should_continue: Callable[[], bool] = lambda: True) -> FoldResult:
    """Fold every stored record and imported 育龄妇女 row not folded yet; derive the persons touched.

    One transaction per `TRANSACTION` records, so a 16,000-row file never holds one long write
    and `gateway run` can stop between two batches (`should_continue` false): what is left
    is folded by the next call. The register after all the batches is the one a single
    pass would give: deriving a person reads all of that person's facts."""
    rs, divisions = register_settings(settings), divisions_or_none(settings)
    total = FoldResult()
    while True:
        for attempt in (1, 2):
            try:
                with session_scope(engine) as session:
                    result = _fold(session, rs, divisions, limit=TRANSACTION)
                    register_folded(session, result.touched, clock.now())  # the updates notices asked for
                break
            except IntegrityError:  # another process folded the same records at the same time
                if attempt == 2:
                    raise
        total.add(result)
        if result.records < TRANSACTION or not should_continue():
            break
    if total.records or total.wcba_rows:
        log.info("register: %s", total.summary())
    return total


def rebuild(engine: Engine, settings: Settings) -> FoldResult:
    """Drop the register and fold every stored record again (after a rule or the divisions changed)."""
    rs, divisions = register_settings(settings), divisions_or_none(settings)
    with session_scope(engine) as session:
        for table in (RegisterPerson, RegisterFact, RegisterFolded):
            session.execute(delete(table))
        result = _fold(session, rs, divisions)
    return result


def forget_records(session: Session, settings: Settings, record_ids: list[int]) -> tuple[int, int]:
    """Drop what these (purged) records said from the register and derive their persons
    again, in the caller's transaction (保存期限): a person only they named is removed.
    (persons derived, persons removed)."""
    if not record_ids:
        return 0, 0
    touched: set[str] = set()
    for start in range(0, len(record_ids), CHUNK):
        chunk = record_ids[start:start + CHUNK]
        touched.update(session.execute(
            select(RegisterFact.id_number).where(RegisterFact.record_id.in_(chunk))  # type: ignore[union-attr]
        ).scalars().all())
        session.execute(delete(RegisterFact).where(RegisterFact.record_id.in_(chunk)))  # type: ignore[union-attr]
    if not touched:
        return 0, 0
    session.flush()
    rs, divisions = register_settings(settings), divisions_or_none(settings)
    return _derive_many(session, sorted(touched), rs, divisions)


def rederive(engine: Engine, settings: Settings) -> int:
    """Derive every person again from the facts already folded (divisions.csv changed)."""
    rs, divisions = register_settings(settings), divisions_or_none(settings)
    with session_scope(engine) as session:
        numbers = session.execute(select(RegisterFact.id_number).distinct()).scalars().all()
        _derive_many(session, sorted(numbers), rs, divisions)
    return len(numbers)


def _fold(session: Session, rs: RegisterSettings, divisions: Divisions | None, limit: int | None = None) -> FoldResult:
    """Fold the records not folded yet (at most `limit`, all when None) and the 育龄妇女 rows."""
    result = FoldResult()
    folded_record = exists().where(RegisterFolded.kind == "record", RegisterFolded.ref_id == Record.id)
    corrected: set[tuple[str, str]] = set()
    contracts = register_contracts()  # a file of these owes the register an update (gateway/obligations/hooks.py)
    while True:
        rows = session.execute(
            select(Record.id, Record.contract, Record.business_key, Record.version, Record.payload, Record.exchange_id,
                   Exchange.department)
            .join(Exchange, Exchange.id == Record.exchange_id)
            .where(~folded_record, not_purged())  # a purged record (保存期限) names nobody
            .order_by(Record.id)
            .limit(BATCH if limit is None else min(BATCH, limit - result.records))
        ).all()
        if not rows:
            break
        markers, facts = [], []
        for record_id, contract, key, version, payload, exchange_id, department in rows:
            markers.append({"kind": "record", "ref_id": record_id})
            result.records += 1
            if contract not in contracts:
                continue
            if version > 1:
                corrected.add((contract, key))
            for fact in record_facts(contract, json.loads(payload)):
                facts.append({
                    "id_number": fact.id_number, "attribute": fact.attribute, "value": fact.value, "source": department,
                    "contract": contract, "business_key": key, "version": version, "record_id": record_id,
                    "lookup_id": None, "exchange_id": exchange_id, "event_date": fact.event_date,
                })
                result.touched.add(fact.id_number)
        # the markers first: a second process folding the same records fails here, before any fact
        session.execute(insert(RegisterFolded), markers)
        if facts:
            session.execute(insert(RegisterFact), facts)
        result.facts += len(facts)
        if limit is not None and result.records >= limit:
            break
    folded_lookup = exists().where(RegisterFolded.kind == WCBA, RegisterFolded.ref_id == LookupEntry.id)
    entries = session.execute(
        select(LookupEntry).where(LookupEntry.source == WCBA, ~folded_lookup).order_by(LookupEntry.id)
    ).scalars().all()
    for entry in entries:
        session.add(RegisterFolded(kind=WCBA, ref_id=entry.id))
        result.wcba_rows += 1
        for fact in wcba_facts(entry.id_number, entry.name, entry.category, entry.value, entry.recorded_on):
            session.add(RegisterFact(
                id_number=fact.id_number, attribute=fact.attribute, value=fact.value, source=WCBA, contract="wcba",
                business_key=f"{entry.import_file}|{entry.category}", lookup_id=entry.id, event_date=fact.event_date,
            ))
            result.facts += 1
            result.touched.add(fact.id_number)
    session.flush()
    for contract, key in corrected:  # the persons an older version named
        result.touched.update(session.execute(
            select(RegisterFact.id_number).where(RegisterFact.contract == contract, RegisterFact.business_key == key)
        ).scalars().all())
    result.people, result.removed = _derive_many(session, sorted(result.touched), rs, divisions)
    return result


def canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _current(session: Session, facts: list[RegisterFact]) -> list[RegisterFact]:
    """The facts of the current version of each record (a correction withdraws the old one's)."""
    keys = {(f.contract, f.business_key) for f in facts if f.record_id is not None}
    latest: dict[tuple[str, str], int] = {}
    for contract in {c for c, _ in keys}:
        names = [k for c, k in keys if c == contract]
        for start in range(0, len(names), 500):
            for key, version in session.execute(
                select(Record.business_key, func.max(Record.version))
                .where(Record.contract == contract, Record.business_key.in_(names[start:start + 500]))
                .group_by(Record.business_key)
            ).all():
                latest[(contract, key)] = version
    return [f for f in facts if f.record_id is None or f.version >= latest.get((f.contract, f.business_key), 0)]


def _order(fact: RegisterFact) -> tuple[Any, ...]:
    return (fact.event_date, 0 if fact.record_id is not None else 1, fact.record_id or fact.lookup_id or 0, fact.attribute, fact.value)


def _placement(divisions: Divisions | None, address: str | None, code: str | None) -> Placement:
    if divisions is None:
        return Placement("none")
    return divisions.match(address, code)


def _derive_many(session: Session, numbers: list[str], rs: RegisterSettings, divisions: Divisions | None) -> tuple[int, int]:
    """Derive these persons again, a chunk at a time (three queries per chunk); (derived, removed)."""
    derived = removed = 0
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start:start + CHUNK]
        # plain rows, not ORM objects: deriving reads each fact once and never writes one back,
        # and building 400,000 mapped instances was most of a 16,000-row file's fold
        facts = session.execute(
            select(*RegisterFact.__table__.columns).where(RegisterFact.id_number.in_(chunk))  # type: ignore[attr-defined]
        ).all()
        current = _current(session, list(facts))
        by_person: dict[str, list[RegisterFact]] = defaultdict(list)
        for fact in current:
            by_person[fact.id_number].append(fact)
        existing = {p.id_number: p for p in session.execute(
            select(RegisterPerson).where(RegisterPerson.id_number.in_(chunk))  # type: ignore[attr-defined]
        ).scalars()}
        for number in chunk:
            if _derive(session, number, sorted(by_person.get(number, []), key=_order), existing.get(number), rs, divisions):
                derived += 1
            else:
                removed += 1
    return derived, removed


def _derive(session: Session, number: str, facts: list[RegisterFact], existing: RegisterPerson | None,
            rs: RegisterSettings, divisions: Divisions | None) -> bool:
    if not facts:
        if existing is not None:
            session.delete(existing)
        return False
    by_source: dict[str, dict[str, tuple[str, RegisterFact]]] = defaultdict(dict)
    children: dict[str, str] = {}
    history: list[dict[str, Any]] = []
    moved: RegisterFact | None = None
    last_seen: dict[str, str] = {}
    for fact in facts:
        if fact.attribute == "child":
            children.setdefault(fact.value, fact.source)
        else:
            by_source[fact.attribute][fact.source] = (fact.value, fact)
        if fact.attribute == "moved":
            moved = fact
        if fact.attribute in ("sex", "birth_date"):
            continue
        if last_seen.get(fact.attribute) != fact.value or fact.attribute in ("child", "moved"):
            history.append({
                "date": fact.event_date.isoformat(), "attribute": fact.attribute, "value": fact.value,
                "source": fact.source, "contract": fact.contract, "key": fact.business_key, "version": fact.version,
                "exchange": fact.exchange_id,
            })
        last_seen[fact.attribute] = fact.value
    attributes: dict[str, Any] = {}
    disagreements: list[dict[str, Any]] = []
    chosen: dict[str, str | None] = {}
    for attribute in SCALARS:
        values = by_source.get(attribute, {})
        if not values:
            chosen[attribute] = None
            continue
        ranked = rs.ranked(attribute, set(values))
        source = ranked[0]
        value = values[source][0]
        others = {s: values[s][0] for s in ranked[1:]}
        attributes[attribute] = {"value": value, "source": source, "others": others}
        chosen[attribute] = value
        if attribute in CHECKED:
            for other, other_value in others.items():
                if other_value != value:
                    disagreements.append({"attribute": attribute, "source": source, "value": value,
                                          "other_source": other, "other_value": other_value})
    death_sources = set(by_source.get("death_date", {}))
    authority = rs.authority.get("death_date", ())
    if death_sources and authority and authority[0] not in death_sources:
        disagreements.append({"attribute": "death_date", "source": authority[0], "value": None,
                              "other_source": sorted(death_sources)[0],
                              "other_value": by_source["death_date"][sorted(death_sources)[0]][0]})
    spouse = chosen.get("spouse")
    if spouse == NO_SPOUSE:
        spouse = None
    residence = _placement(divisions, chosen["residence_address"], chosen["residence_division"])
    household = _placement(divisions, chosen["household_address"], chosen["household_division"])
    place = next((p for p in (residence, household) if p.status == "village"), None)
    basis = "residence" if place is residence else "household"
    if place is None:
        for status in ("unmatched", "elsewhere", "none"):
            candidates = [p for p in (residence, household) if p.status == status]
            if status == "unmatched":
                candidates.sort(key=lambda p: p.township is None)
            if candidates:
                place = candidates[0]
                basis = "residence" if place is residence else "household"
                break
    assert place is not None
    county = divisions.county_code if divisions else None
    in_county = bool(county) and (
        (chosen["household_division"] or "")[:6] == county
        or (chosen["residence_division"] or "")[:6] == county
        or place.status == "village"
        or (place.status == "unmatched" and place.township is not None)
    )
    significant = [(h["date"], CHANGES.index(h["attribute"]), i, h) for i, h in enumerate(history) if h["attribute"] in CHANGES]
    last = max(significant)[3] if significant else history[0] if history else None
    state = {
        "attributes": attributes,
        "children": sorted(children),
        "disagreements": disagreements,
        "history": history,
        "place": {"status": place.status, "basis": basis, "township": place.township, "village": place.village,
                  "reason": place.reason},
        "spouse": spouse,
    }
    person = existing or RegisterPerson(id_number=number)
    person.name = chosen["name"]
    person.sex = id_sex(number)
    person.birth_date = id_birth_date(number)
    person.marital_status = chosen["marital_status"]
    person.children = len(children)
    person.household_address = chosen["household_address"]
    person.household_division = chosen["household_division"]
    person.residence_address = chosen["residence_address"]
    person.residence_division = chosen["residence_division"]
    person.in_county = in_county
    person.township_code = place.township
    person.village_code = place.village
    person.place_status = place.status
    death = chosen["death_date"]
    person.dead_on = dt.date.fromisoformat(death) if death else None
    person.moved = moved.value if moved else None
    person.moved_on = moved.event_date if moved else None
    person.last_change_on = dt.date.fromisoformat(last["date"]) if last else None
    person.last_change_kind = change_kind(last) if last else None
    person.last_change_source = last["source"] if last else None
    person.disagreements = len(disagreements)
    person.state = canonical(state)
    session.add(person)
    return True


def change_kind(entry: dict[str, Any]) -> str:
    """变动情况 of a history entry."""
    attribute, value = entry["attribute"], entry["value"]
    if attribute == "marital_status":
        return {"20": "结婚", "21": "结婚", "22": "再婚", "23": "复婚", "40": "离婚", "30": "丧偶"}.get(value, "婚姻变动")
    return {"child": "生育", "moved": "迁入" if value == "in" else "迁出", "death_date": "死亡",
            "household_address": "户籍地变动", "residence_address": "居住地变动"}.get(attribute, "登记")


def export_register(engine: Engine) -> bytes:
    """The whole register as canonical JSON lines, by ID number: the bytes a rebuild must reproduce."""
    lines = []
    with Session(engine) as session:
        for person in session.execute(select(RegisterPerson).order_by(RegisterPerson.id_number)).scalars():
            row = person.model_dump()
            row["state"] = json.loads(row["state"])
            lines.append(canonical(row))
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def register_digest(engine: Engine) -> str:
    return hashlib.sha256(export_register(engine)).hexdigest()
