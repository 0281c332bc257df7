"""What the register answers an assist-check (协查) with: the national platform's first source.

For each requested category (LB 01-11) the register gives what its feeds hold — 01 基本信息,
02 配偶信息, 04 子女信息, 05 流入信息, 06 流出信息 — and, for what no feed holds, the
hand-imported 育龄妇女 table's facts (the least authoritative source). Each finding is
`(category, parts)`, parts being `(label, value, kind)` with kind name | id_number | address |
text, for the caller to mask on screen."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from gateway.register.settings import WCBA
from gateway.register.women import MARITAL
from gateway.store.register_models import RegisterFact, RegisterPerson

Part = tuple[str, str, str]


def lookup(session: Session, id_number: str, categories: list[str]) -> list[tuple[str, list[Part]]]:
    person = session.get(RegisterPerson, id_number)
    if person is None:
        return []
    state: dict[str, Any] = json.loads(person.state)
    attributes = state.get("attributes", {})
    fed = any(a.get("source") != WCBA for a in attributes.values()) or any(
        h.get("source") != WCBA for h in state.get("history", [])
    )
    notes: dict[str, list[str]] = {}
    for fact in session.execute(
        select(RegisterFact).where(RegisterFact.id_number == id_number, RegisterFact.attribute.like("note:%"))  # type: ignore[attr-defined]
        .order_by(RegisterFact.event_date, RegisterFact.lookup_id)
    ).scalars():
        notes.setdefault(fact.attribute[5:], []).append(fact.value)
    found: list[tuple[str, list[Part]]] = []
    for category in categories:
        parts: list[Part] = []
        if fed and category == "01":
            parts = [("姓名", person.name or "", "name"), ("性别", {"1": "男", "2": "女"}.get(person.sex or "", "未知"), "text"),
                     ("出生日期", person.birth_date.isoformat() if person.birth_date else "", "text")]
            if person.marital_status:
                parts.append(("婚姻状况", MARITAL.get(person.marital_status, person.marital_status), "text"))
            if person.household_address:
                parts.append(("户籍地址", person.household_address, "address"))
            if person.residence_address:
                parts.append(("现居住地", person.residence_address, "address"))
            if person.dead_on:
                parts.append(("死亡日期", person.dead_on.isoformat(), "text"))
        elif fed and category == "02" and state.get("spouse"):
            spouse = session.get(RegisterPerson, state["spouse"])
            if spouse is not None and spouse.name:
                parts.append(("配偶姓名", spouse.name, "name"))
            parts.append(("配偶公民身份号码", state["spouse"], "id_number"))
        elif fed and category == "04" and person.children:
            parts = [("现有子女数", str(person.children), "text")]
        elif fed and category in ("05", "06") and person.moved == ("in" if category == "05" else "out"):
            parts = [("迁入" if category == "05" else "迁出", person.moved_on.isoformat() if person.moved_on else "", "text")]
        if not parts and category in notes:
            parts = [("", value, "text") for value in notes[category]]
        if parts:
            found.append((category, parts))
    return found
