"""The register's disagreements (来源不一致, 多元校核): where the authoritative source and another
say different things about a person, or a source records a death the police has not.

A disagreement closes by itself when the sources come to agree (it is derived, like the
register). A clerk may resolve one with a reason (`gateway register resolve`): the resolution
holds for exactly those values; if a source sends another value, it is open again."""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from gateway.errors import GatewayError
from gateway.register.build import canonical
from gateway.store import session_scope
from gateway.store.audit import mask_text, record_event
from gateway.store.register_models import RegisterPerson, RegisterResolution


# What a clerk calls each attribute of the register (the console, the reconciliation list).
ATTRIBUTE_ZH = {
    "name": "姓名", "household_address": "户籍地址", "household_division": "户籍地区划", "marital_status": "婚姻状况",
    "spouse": "配偶", "child": "子女", "residence_address": "现居住地", "residence_division": "现居住地区划",
    "school": "学校", "death_date": "死亡日期", "moved": "户籍迁移",
}


def fingerprint(item: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(item).encode("utf-8")).hexdigest()


@dataclass
class Disagreement:
    id_number: str
    item: dict[str, Any]
    resolution: RegisterResolution | None


def disagreements(session: Session, *, include_resolved: bool = False) -> list[Disagreement]:
    resolved: dict[tuple[str, str], RegisterResolution] = {
        (r.id_number, r.value_sha256): r for r in session.execute(select(RegisterResolution)).scalars()
    }
    found = []
    for person in session.execute(
        select(RegisterPerson).where(RegisterPerson.disagreements > 0).order_by(RegisterPerson.id_number)
    ).scalars():
        for item in json.loads(person.state)["disagreements"]:
            resolution = resolved.get((person.id_number, fingerprint(item)))
            if resolution is None or include_resolved:
                found.append(Disagreement(person.id_number, item, resolution))
    return found


def resolve(engine: Engine, id_number: str, attribute: str, reason: str, operator: str | None = None) -> int:
    """Resolve the open disagreements of one person's attribute; returns how many."""
    if not reason.strip():
        raise GatewayError("A resolution needs a reason: --reason TEXT (it is kept and audited)")
    with session_scope(engine) as session:
        open_ones = [d for d in disagreements(session) if d.id_number == id_number and d.item["attribute"] == attribute]
        if not open_ones:
            raise GatewayError(f"No open disagreement of {attribute!r} for this person (`gateway register discrepancies` lists them)")
        who = operator or getpass.getuser()
        for disagreement in open_ones:
            session.add(RegisterResolution(id_number=id_number, attribute=attribute, value_sha256=fingerprint(disagreement.item),
                                           reason=reason.strip(), resolved_by=who))
        record_event(session, "register.resolve", "population-office",
                     detail=f"{mask_text(id_number)} {attribute}: {len(open_ones)} resolved by {who}: {mask_text(reason)}")
    return len(open_ones)
