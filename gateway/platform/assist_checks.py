"""Assist-checks (协查) and notices (通报) from the national platform (docs/pulls.md).

Each request stored by the pipeline (an `AssistCheckRequest` record, pulled or dropped)
is registered here with a due date (gateway/obligations/deadlines.py: 15 days when JJCD is 1 紧急,
30 otherwise, from the send date FQSJ) and a **draft answer** from the county's own
records, looked up in the order the regulations give:

1. women of childbearing age (育龄妇女信息库): the register (gateway/register/), built from
   the feeds, with the importable table (`gateway assist-checks import wcba FILE.csv`) as its
   least authoritative source, for what no feed holds;
2. the manual ledger (台账): `gateway assist-checks import ledger FILE.csv`;
3. the police household records: the police department's stored records (births,
   moves in and out, residence permits, deaths) naming the person's ID number;
4. every other department's stored records naming the ID number (hospital births, where
   she is the mother; marriages and divorces; adoptions; cremations; housing; schools).

`LOOKUPS` is that list of lookup functions; for each requested category the first
source holding a value fills it. An officer answers with one command
(`gateway assist-checks answer ID --found|--not-found --remark TEXT`); the answer is
stored as the exact `FKXX` document, POSTed to the platform, and receipted like an
exchange (an `AssistCheckFeedback` record, a signed receipt in the national-platform
outbox). An answer the platform could not take yet stays
`sending` and is sent again by the `assist-checks` job (or `gateway assist-checks send`).

Import files (CSV, UTF-8 or GB18030, header row), one fact per row:
`公民身份号码` (or `id_number`), `姓名` (`name`, optional), `类别` (`category`: a code
01-11 or its label, e.g. `03` or `妊娠信息`), `内容` (`value`), `登记日期`
(`recorded_on`, optional).
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import hashlib
import json
import logging
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, and_, exists, select
from sqlmodel import Session

from contracts.identity import IdNumber
from contracts.platform import AssistCheckFeedback, ContentCategory

from gateway import clock
from gateway.adapter import Adapter, RawRow, SourceFile
from gateway.config import Settings
from gateway.obligations.deadlines import Deadlines, assist_check_rule
from gateway.obligations.hooks import notice_registered
from gateway.errors import FileRejected, GatewayError
from gateway.masking import mask_address, mask_id, mask_name, mask_value
from gateway.intake.staging import sniff_file
from gateway.store import Exchange, Record, session_scope
from gateway.store.models import AssistCheck, LookupEntry, NoticeItem, OutgoingRequest
from gateway.readers.xml import HARDENED, local_name

if TYPE_CHECKING:
    from gateway.services import ExchangeServices

log = logging.getLogger("gateway.platform.assist_checks")

CATEGORY_LABELS = {member.value: member.label for member in ContentCategory}
LOOKUP_SOURCES = {
    "register": "育龄妇女信息库 (the register: feeds, then the wcba import)", "wcba": "育龄妇女信息 (women of childbearing age)",
    "ledger": "台账 (manual ledger)",
    "police": "公安户籍 (police household records)",
    "records": "其他部门登记 (other departments' records: births, marriages, adoptions, deaths, housing, schools)",
}
DEPARTMENT_LABELS = {"hospital": "医院", "civil-affairs": "民政", "housing": "住建", "school": "教育"}
POLICE_CONTRACTS = ("BirthEvent", "DeathEvent", "Migration", "ResidencePermit")
_ID = TypeAdapter(IdNumber)
# The county's own requests (gateway.platform.outgoing) are receipted under this adapter name:
# `sync` leaves them out of the requests received and closes them when their answer arrives.
OUTGOING_ADAPTER = "national-platform-outgoing"


# -- findings and drafts -------------------------------------------------------------------


@dataclass
class Finding:
    """What one source holds for one category: labelled parts, each with its kind (for
    masking on screen); `text()` is what the answer carries."""

    category: str
    source: str
    parts: list[tuple[str, str, str]]  # (label, value, kind: name | id_number | address | text)

    def text(self) -> str:
        return "；".join(f"{label}：{value}" if label else value for label, value, _ in self.parts)

    def masked(self, subject_name: str | None = None) -> str:
        shown = []
        for label, value, kind in self.parts:
            if kind == "name":
                value = mask_name(value)
            elif kind == "id_number":
                value = mask_id(value)
            elif kind == "address":
                value = mask_address(value)
            else:
                if subject_name:
                    value = value.replace(subject_name, mask_name(subject_name))
                value = mask_value(value, None)
            shown.append(f"{label}：{value}" if label else value)
        return "；".join(shown)

    def as_json(self) -> dict[str, Any]:
        return {"category": self.category, "source": self.source, "parts": [list(p) for p in self.parts]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(data["category"], data["source"], [tuple(p) for p in data["parts"]])  # type: ignore[misc]


@dataclass
class Draft:
    result: str  # "1" found, "0" not found
    findings: list[Finding]
    missing: list[str]
    remark: str = ""
    searched: list[str] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps(
            {
                "result": self.result,
                "findings": [f.as_json() for f in self.findings],
                "missing": self.missing,
                "remark": self.remark,
                "searched": self.searched,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Draft:
        data = json.loads(text or "{}")
        return cls(
            data.get("result", "0"),
            [Finding.from_json(f) for f in data.get("findings", [])],
            list(data.get("missing", [])),
            data.get("remark", ""),
            list(data.get("searched", [])),
        )


Lookup = Callable[[Session, str, list[str]], list[Finding]]


def _imported(source: str) -> Lookup:
    def lookup(session: Session, id_number: str, categories: list[str]) -> list[Finding]:
        rows = session.exec(
            select(LookupEntry)
            .where(LookupEntry.source == source, LookupEntry.id_number == id_number, LookupEntry.category.in_(categories))  # type: ignore[attr-defined]
            .order_by(LookupEntry.recorded_on, LookupEntry.id)  # type: ignore[arg-type]
        ).scalars()
        found: dict[str, Finding] = {}
        for row in rows:
            value = row.value if row.recorded_on is None else f"{row.value}（{row.recorded_on.isoformat()}）"
            found.setdefault(row.category, Finding(row.category, source, [])).parts.append(("", value, "text"))
        return list(found.values())

    lookup.__name__ = f"lookup_{source}"
    lookup.__doc__ = f"{LOOKUP_SOURCES[source]}: the imported table (`gateway assist-checks import {source}`)."
    return lookup


lookup_wcba = _imported("wcba")
lookup_ledger = _imported("ledger")


def _person_of(payload: dict[str, Any], id_number: str) -> tuple[str, dict[str, Any]] | None:
    for role in ("person", "holder", "child", "deceased"):
        person = payload.get(role)
        if isinstance(person, dict) and person.get("id_number") == id_number:
            return role, person
    return None


def lookup_police(session: Session, id_number: str, categories: list[str]) -> list[Finding]:
    """公安户籍: the police department's stored records that name this ID number."""
    pattern = f'%"id_number":"{id_number}"%'
    rows = session.exec(
        select(Record.contract, Record.payload)
        .join(Exchange, Exchange.id == Record.exchange_id)  # type: ignore[arg-type]
        .where(Exchange.department == "police", Record.contract.in_(POLICE_CONTRACTS), Record.payload.like(pattern))  # type: ignore[attr-defined]
        .order_by(Record.id)  # type: ignore[arg-type]
    ).all()
    basic: list[tuple[str, str, str]] = []
    inflow: list[tuple[str, str, str]] = []
    outflow: list[tuple[str, str, str]] = []
    for contract, text in rows:
        payload = json.loads(text)
        matched = _person_of(payload, id_number)
        if matched is None:
            continue
        _, person = matched
        household = payload.get("household") or {}
        basic = [("姓名", person.get("name", ""), "name"), ("性别", {"1": "男", "2": "女"}.get(person.get("sex", ""), "未知"), "text"),
                 ("出生日期", person.get("birth_date", ""), "text")]
        if household.get("address"):
            basic.append(("户籍地址", household["address"], "address"))
        if household.get("household_no"):
            basic.append(("户号", household["household_no"], "text"))
        if contract == "DeathEvent":
            basic.append(("死亡注销", payload.get("death_date", ""), "text"))
        elif contract == "Migration":
            place = (payload.get("other_place") or {}).get("address", "")
            if payload.get("direction") == "in":
                inflow.append(("迁入", payload.get("move_date", ""), "text"))
                if place:
                    inflow.append(("迁出地", place, "address"))
            else:
                outflow.append(("迁出", payload.get("move_date", ""), "text"))
                if place:
                    outflow.append(("迁往地", place, "address"))
        elif contract == "ResidencePermit":
            inflow += [("居住证", payload.get("permit_no", ""), "text"), ("签发", payload.get("issued_on", ""), "text"),
                       ("有效期至", payload.get("valid_until", ""), "text")]
            residence = (payload.get("residence") or {}).get("address")
            if residence:
                inflow.append(("居住地址", residence, "address"))
    found = []
    for category, parts in (("01", basic), ("05", inflow), ("06", outflow)):
        if parts and category in categories:
            found.append(Finding(category, "police", parts))
    return found


def lookup_register(session: Session, id_number: str, categories: list[str]) -> list[Finding]:
    """育龄妇女信息库 (gateway/register/): what the feeds hold, then the imported 育龄妇女 table."""
    from gateway.register.lookup import lookup

    return [Finding(category, "register", parts) for category, parts in lookup(session, id_number, categories)]


def _people(contract: str, payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role, person) of every person a stored record names."""
    found: list[tuple[str, dict[str, Any]]] = []
    for role in ("mother", "father", "child", "husband", "wife", "adoptee", "deceased", "student", "person", "holder"):
        person = payload.get(role)
        if isinstance(person, dict):
            found.append((role, person))
    for role, many in (("adopter", "adopters"), ("owner", "owners"), ("occupant", "occupants")):
        for person in payload.get(many) or []:
            if isinstance(person, dict):
                found.append((role, person))
    return found


def lookup_records(session: Session, id_number: str, categories: list[str]) -> list[Finding]:
    """其他部门登记: every other department's stored records naming this ID number (hospital
    births, marriages and divorces, adoptions, cremations, housing, schools), as
    `(department) what (date)`: a woman who is the mother in a hospital birth record has
    a birth (生育信息 09) and a child (子女信息 04) to report."""
    pattern = f'%"id_number":"{id_number}"%'
    rows = session.exec(
        select(Exchange.department, Record.contract, Record.payload)
        .join(Exchange, Exchange.id == Record.exchange_id)  # type: ignore[arg-type]
        .where(Exchange.department.not_in(("police", "national-platform")), Record.payload.like(pattern))  # type: ignore[attr-defined]
        .order_by(Record.id)  # type: ignore[arg-type]
    ).all()
    parts: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for department, contract, text in rows:
        payload = json.loads(text)
        roles = [(role, person) for role, person in _people(contract, payload) if person.get("id_number") == id_number]
        if not roles:
            continue
        role, person = roles[0]
        where = DEPARTMENT_LABELS.get(department, department)
        basic = parts["01"]
        if not basic:
            basic += [("姓名", person.get("name", ""), "name"), ("出生日期", person.get("birth_date") or "", "text")]
        if contract == "BirthEvent" and role in ("mother", "father"):
            child = payload.get("child") or {}
            born = child.get("birth_date", "")
            sex = {"1": "男", "2": "女"}.get(child.get("sex", ""), "")
            order = payload.get("birth_order")
            institution = payload.get("institution_name") or ""
            parts["09"].append((f"{where}出生医学证明", f"{born} 生育{('第' + str(order) + '孩') if order else ''}{sex}婴 {institution}".strip(), "text"))
            parts["04"].append((f"{where}子女", child.get("name", ""), "name"))
            parts["04"].append(("出生日期", born, "text"))
        elif contract == "MarriageEvent":
            spouse = payload.get("wife" if role == "husband" else "husband") or {}
            kind = "离婚" if payload.get("kind") == "divorce" else "结婚"
            parts["02"].append((f"{where}{kind}登记", payload.get("registered_on", ""), "text"))
            if spouse.get("name"):
                parts["02"].append(("配偶", spouse["name"], "name"))
        elif contract == "AdoptionEvent":
            parts["04"].append((f"{where}收养登记", payload.get("registered_on", ""), "text"))
        elif contract == "CremationEvent":
            parts["01"].append((f"{where}火化（死亡）", payload.get("death_date", ""), "text"))
        elif contract == "HousingOccupancy":
            parts["05"].append((f"{where}居住登记", payload.get("address", ""), "address"))
        elif contract == "SchoolEnrolment":
            parts["04" if role != "student" else "01"].append((f"{where}在校", payload.get("school_name") or "", "text"))
    return [Finding(category, "records", found) for category, found in sorted(parts.items()) if found and category in categories]


# The order the regulations give: women of childbearing age (the register), the ledger, the
# police; then every other department's stored records, for what the register does not derive.
LOOKUPS: list[tuple[str, Lookup]] = [
    ("register", lookup_register), ("ledger", lookup_ledger), ("police", lookup_police), ("records", lookup_records),
]


def draft_answer(session: Session, id_number: str, categories: list[str]) -> Draft:
    """For each requested category, the first source (in `LOOKUPS` order) holding it."""
    chosen: dict[str, Finding] = {}
    searched = []
    for name, lookup in LOOKUPS:
        searched.append(name)
        for finding in lookup(session, id_number, [c for c in categories if c not in chosen]):
            chosen.setdefault(finding.category, finding)
    findings = [chosen[c] for c in categories if c in chosen]
    missing = [c for c in categories if c not in chosen]
    if findings:
        return Draft("1", findings, missing, searched=searched)
    remark = "经查育龄妇女信息、台账、公安户籍及其他部门登记信息，未查到该人员信息"
    return Draft("0", [], missing, remark=remark, searched=searched)


# -- registering requests and notices ----------------------------------------------------


@dataclass
class SyncResult:
    requests: int = 0
    notices: int = 0
    updated: int = 0
    answers: int = 0
    """the county's own requests whose answer (FKXX) arrived"""

    def summary(self) -> str:
        text = f"{self.requests} new assist-check request(s), {self.notices} new notice(s)"
        text += f", {self.answers} answer(s) to the county's own requests" if self.answers else ""
        return text + (f", {self.updated} corrected" if self.updated else "")


def _fold_register(engine: Engine, settings: Settings) -> None:
    """Bring the register up to date before drafting from it; a wrong divisions.csv is logged, not fatal here."""
    from gateway.register import fold

    try:
        fold(engine, settings)
    except GatewayError as exc:
        log.warning("register not updated: %s", exc)


def _deadlines(settings: Settings) -> Deadlines:
    return Deadlines(settings.deadlines)


def _start(rule_start: str, sent: dt.date, received: dt.datetime) -> dt.date:
    return sent if rule_start == "sent" else clock.in_china(received).date()


def sync(engine: Engine, settings: Settings) -> SyncResult:
    """Register every stored request and notice not registered yet (and a corrected
    version of one still open). `received_at` is now: the moment its exchange is known
    committed."""
    result = SyncResult()
    _fold_register(engine, settings)
    deadlines = _deadlines(settings)
    now = clock.now()
    for contract, table in (("AssistCheckRequest", AssistCheck), ("PlatformNotice", NoticeItem)):
        with session_scope(engine) as session:
            newer = exists().where(and_(table.message_id == Record.business_key, table.record_id >= Record.id))  # type: ignore[attr-defined]
            ours = exists().where(and_(Exchange.id == Record.exchange_id, Exchange.adapter == OUTGOING_ADAPTER))  # the county's own
            rows = session.exec(
                select(Record).where(Record.contract == contract, ~newer, ~ours).order_by(Record.id)  # type: ignore[arg-type]
            ).scalars().all()
            for record in rows:
                payload = json.loads(record.payload)
                known = session.exec(select(table).where(table.message_id == record.business_key)).scalars().first()
                if known is not None:
                    if known.status == "open":
                        _fill(known, record, payload, deadlines, known.received_at, session)
                        result.updated += 1
                    else:
                        known.record_id = record.id  # answered already: keep the answer, note the newer version
                    continue
                item = table(message_id=record.business_key, record_id=record.id, received_at=now)  # type: ignore[call-arg]
                _fill(item, record, payload, deadlines, now, session)
                session.add(item)
                session.flush()
                if contract == "AssistCheckRequest":
                    result.requests += 1
                else:
                    result.notices += 1
                    notice_registered(session, settings, item.message_id, now)  # the register's 5-working-day update
    result.answers = close_answered(engine)
    if result.requests or result.notices or result.updated:
        log.info("assist-checks: %s", result.summary())
    return result


def close_answered(engine: Engine) -> int:
    """Close every sent request whose answer (an FKXX the platform pull brought) is stored."""
    closed = 0
    with session_scope(engine) as session:
        waiting = {r.message_id: r for r in session.exec(select(OutgoingRequest).where(OutgoingRequest.status == "sent")).scalars()}
        if not waiting:
            return 0
        rows = session.exec(
            select(Record.id, Record.business_key, Record.payload)
            .join(Exchange, Exchange.id == Record.exchange_id)  # type: ignore[arg-type]
            .where(Record.contract == "AssistCheckFeedback", Exchange.adapter == "national-platform",
                   Record.business_key.in_(list(waiting)))  # type: ignore[attr-defined]
            .order_by(Record.id)  # type: ignore[arg-type]
        ).all()
        for record_id, key, text in rows:
            item = waiting.pop(key, None)
            if item is None:
                continue
            payload = json.loads(text)
            item.status, item.answer_record_id, item.answer_result = "answered", record_id, payload.get("result")
            answered = payload.get("answered_at")
            item.answered_at = dt.datetime.fromisoformat(answered) if answered else None
            item.answer_received_at = clock.now()
            closed += 1
    if closed:
        log.info("outgoing requests: %d answered", closed)
    return closed



def _fill(item: Any, record: Record, payload: dict[str, Any], deadlines: Deadlines, received: dt.datetime, session: Session) -> None:
    sent = dt.date.fromisoformat(payload["sent_date"])
    item.record_id, item.exchange_id = record.id, record.exchange_id
    item.partner = (payload.get("batch") or {}).get("sender", "")
    item.sent_date = sent
    if isinstance(item, AssistCheck):
        item.urgency = str(payload["urgency"])
        categories = [str(c) for c in payload.get("categories", [])]
        item.categories = ",".join(categories)
        item.due_rule = assist_check_rule(item.urgency)
        draft = draft_answer(session, payload["subject"]["id_number"], categories)
        item.draft = draft.as_json()
    else:
        item.category = str(payload["category"])
        item.feedback_required = bool(payload["feedback_required"])
        item.due_rule = "notice"
    due = deadlines.due(item.due_rule, _start(deadlines.rule(item.due_rule).start, sent, received))
    item.due_date, item.due_provisional = due.date, due.provisional


def refresh_provisional(engine: Engine, settings: Settings) -> int:
    """Recompute provisional due dates; how many became final (the calendar now covers them)."""
    deadlines = _deadlines(settings)
    final = 0
    with session_scope(engine) as session:
        for table in (AssistCheck, NoticeItem):
            for item in session.exec(select(table).where(table.due_provisional.is_(True), table.status != "answered")).scalars():  # type: ignore[attr-defined]
                due = deadlines.due(item.due_rule, _start(deadlines.rule(item.due_rule).start, item.sent_date, item.received_at))
                item.due_date, item.due_provisional = due.date, due.provisional
                final += not due.provisional
    return final


def redraft(engine: Engine, check_id: int) -> Draft:
    """Look the person up again (after an import) for an open request."""
    with session_scope(engine) as session:
        item = _get(session, str(check_id))
        if item.status != "open":
            raise GatewayError(f"Assist-check {item.id} ({item.message_id}) is already answered")
        payload = json.loads(session.get(Record, item.record_id).payload)  # type: ignore[union-attr]
        draft = draft_answer(session, payload["subject"]["id_number"], item.categories.split(","))
        item.draft = draft.as_json()
        return draft


def redraft_open(engine: Engine) -> int:
    with session_scope(engine) as session:
        ids = list(session.exec(select(AssistCheck.id).where(AssistCheck.status == "open")).scalars().all())
    for check_id in ids:
        redraft(engine, check_id)
    return len(ids)


# -- reading ---------------------------------------------------------------------------------


@dataclass
class CheckView:
    """An assist-check as people see it (identifiers masked)."""

    item: AssistCheck
    subject_name: str
    subject_id: str
    draft: Draft

    @property
    def subject(self) -> str:
        return f"{mask_name(self.subject_name)} {mask_id(self.subject_id)}"


def _get(session: Session, key: str) -> AssistCheck:
    item = session.get(AssistCheck, int(key)) if key.isdigit() else None
    if item is None:
        item = session.exec(select(AssistCheck).where(AssistCheck.message_id == key)).scalars().first()
    if item is None:
        raise GatewayError(f"No assist-check {key!r}. See `gateway assist-checks list --all` for ids and XXBH")
    return item


def view(session: Session, item: AssistCheck) -> CheckView:
    record = session.get(Record, item.record_id)
    # A record purged under a retention rule keeps its row with an empty payload: no subject left to show.
    subject = json.loads(record.payload).get("subject", {}) if record is not None else {}
    return CheckView(item, subject.get("name", ""), subject.get("id_number", ""), Draft.from_json(item.draft))


def list_checks(
    engine: Engine,
    *,
    overdue: bool = False,
    due_within: int | None = None,
    include_answered: bool = False,
    today: dt.date | None = None,
) -> list[CheckView]:
    today = today or clock.today()
    with Session(engine) as session:
        query = select(AssistCheck).order_by(AssistCheck.due_date, AssistCheck.id)  # type: ignore[arg-type]
        if not include_answered:
            query = query.where(AssistCheck.status != "answered")
        if overdue:
            query = query.where(AssistCheck.due_date < today, AssistCheck.status != "answered")
        if due_within is not None:
            query = query.where(AssistCheck.due_date <= today + dt.timedelta(days=due_within), AssistCheck.status != "answered")
        return [view(session, item) for item in session.exec(query).scalars().all()]


def get_check(engine: Engine, key: str) -> CheckView:
    with Session(engine) as session:
        return view(session, _get(session, key))


# -- revealing the subject (查看对象全名与身份证号) -----------------------------------------------


@dataclass
class Revealed:
    check: AssistCheck
    name: str
    id_number: str


def reveal_subject(engine: Engine, key: str, *, reason: str | None, who: str) -> Revealed:
    """The full name and ID number of one request's subject, for the clerk who must check a
    paper ledger or phone the police. Refused without a reason; each reveal is an audit
    entry (`reveal-subject`: who, when, which request, the reason; masked as always).
    Who may call it is the front end's decision (the CLI: the gateway's own account; the
    console: an operator)."""
    from gateway.store.audit import record_event

    reason = " ".join((reason or "").split())
    if len(reason) < 2:
        raise GatewayError("查看全名和身份证号须说明理由 A reveal needs a reason: --reason TEXT (e.g. 核对纸质台账, 电话核实派出所)")
    if len(reason) > 200:
        raise GatewayError("The reason is too long: at most 200 characters")
    with session_scope(engine) as session:
        item = _get(session, key)
        shown = view(session, item)
        record_event(
            session, "reveal-subject", "national-platform", None,
            f"{who} revealed the subject of assist-check {item.id} ({item.message_id}); reason: {reason}",
        )
        session.flush()
        session.expunge(item)
    log.info("assist-check %s (%s): subject revealed to %s", item.id, item.message_id, who)
    return Revealed(item, shown.subject_name, shown.subject_id)


# -- answering ----------------------------------------------------------------------------------


def _safe_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", message_id)[:80]


def render_fkxx(
    message_id: str, result: str, answered_at: dt.datetime, remark: str | None, findings: list[tuple[str, str]],
    *, sender: str = "", receiver: str = "",
) -> bytes:
    """The `FKXX` document: XXBH, PDJG, FKSJ, BZ, FSDW (this county), JSDW (the asking
    county), and one `CXJG LB="NN"` element per category found."""
    root = etree.Element("FKXX")
    root.set("XXBH", message_id)
    root.set("PDJG", result)
    root.set("FKSJ", clock.in_china(answered_at).isoformat(timespec="seconds"))
    if sender:
        root.set("FSDW", sender)
    if receiver:
        root.set("JSDW", receiver)
    if remark:
        root.set("BZ", remark)
    for category, value in findings:
        element = etree.SubElement(root, "CXJG")
        element.set("LB", category)
        element.text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def parse_findings(values: list[str]) -> dict[str, str | None]:
    """`--finding 03=text` options: category code (or label) -> text; `03=` removes it."""
    result: dict[str, str | None] = {}
    for value in values:
        code, sep, text = value.partition("=")
        if not sep:
            raise GatewayError(f"--finding {value!r}: write CATEGORY=TEXT, e.g. --finding 03=未孕")
        result[_category_code(code.strip())] = text.strip() or None
    return result


def _category_code(text: str) -> str:
    if text.isdigit() and f"{int(text):02d}" in CATEGORY_LABELS:
        return f"{int(text):02d}"
    for code, label in CATEGORY_LABELS.items():
        if text == label:
            return code
    listed = ", ".join(f"{c} {l}" for c, l in CATEGORY_LABELS.items())
    raise GatewayError(f"Unknown category {text!r}. Valid: {listed}")


@dataclass
class Answer:
    check: AssistCheck
    sent: bool
    error: str | None = None
    receipt: str | None = None
    exchange_id: int | None = None


def answer(
    gateway: ExchangeServices,
    settings: Settings,
    key: str,
    *,
    found: bool,
    remark: str | None,
    findings: dict[str, str | None] | None = None,
    operator: str | None = None,
    source: str | None = None,
    send: bool = True,
) -> Answer:
    """Record the officer's answer as its FKXX, then send it (see `send_one`)."""
    remark = (remark or "").strip() or None
    if not found and remark is None:
        raise GatewayError("A not-found answer needs a remark saying what was searched: --remark TEXT (BZ is required when PDJG is 0)")
    if send:
        platform_source(settings, source)  # a platform to send to, before anything is stored
    with session_scope(gateway.engine) as session:
        item = _get(session, key)
        if item.status not in ("open", "refused"):
            raise GatewayError(
                f"Assist-check {item.id} ({item.message_id}) was answered at {item.answered_at} ({item.status}); it cannot be answered twice"
            )
        record = session.get(Record, item.record_id)
        assert record is not None
        payload = json.loads(record.payload)
        requested = item.categories.split(",")
        values: list[tuple[str, str]] = []
        if found:
            chosen = {f.category: f.text() for f in Draft.from_json(item.draft).findings}
            for code, text in (findings or {}).items():
                if text is None:
                    chosen.pop(code, None)
                else:
                    chosen[code] = text
            values = [(code, chosen[code]) for code in sorted(chosen, key=lambda c: (c not in requested, c))]
            if not values:
                raise GatewayError(
                    "A found answer carries the values found: the draft found nothing, so give them with --finding CATEGORY=TEXT "
                    f"(requested: {', '.join(f'{c} {CATEGORY_LABELS.get(c, c)}' for c in requested)})"
                )
        answered_at = clock.now()
        try:
            AssistCheckFeedback.model_validate(
                {
                    "message_id": item.message_id, "result": "1" if found else "0", "remark": remark,
                    "answered_at": clock.in_china(answered_at).isoformat(), "findings": [{"category": c, "value": v} for c, v in values],
                }
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
            raise GatewayError(f"The answer is not valid: {problems}") from None
        batch = payload.get("batch") or {}
        body = render_fkxx(
            item.message_id, "1" if found else "0", answered_at, remark, values,
            sender=batch.get("receiver", ""), receiver=batch.get("sender", ""),
        )
        item.answer_result, item.answer_remark = ("1" if found else "0"), remark
        item.answered_at, item.answered_by = answered_at, operator or getpass.getuser()
        item.feedback_xml, item.status = body.decode("utf-8"), "sending"
        session.flush()
        session.expunge(item)
    log.info("assist-check %s (%s): answered %s", item.id, item.message_id, "found" if found else "not found")
    if not send:
        return Answer(item, sent=False)
    return send_one(gateway, settings, item.id, source=source)  # type: ignore[arg-type]


def platform_source(settings: Settings, name: str | None = None) -> tuple[str, Any]:
    from gateway.pulls import source_named

    if name is not None:
        return name, source_named(settings, name)
    platforms = [(n, s) for n, s in settings.pulls.items() if s.kind == "platform"]
    if not platforms:
        raise GatewayError(
            "No national platform is configured to send the answer to: add a [pulls.platform] table with kind = \"platform\" "
            "and its url to gateway.toml (docs/pulls.md)"
        )
    return platforms[0]


def send_one(gateway: ExchangeServices, settings: Settings, check_id: int, *, source: str | None = None, session: Any = None) -> Answer:
    """POST the stored FKXX of one answered request; on success receipt it and mark the
    request answered. A failure leaves it `sending` with the error."""
    from gateway.pulls.http import PullError, endpoint, make_session, post

    name, config = platform_source(settings, source)
    with session_scope(gateway.engine) as db:
        item = db.get(AssistCheck, check_id)
        assert item is not None and item.feedback_xml is not None
        db.expunge(item)
    if item.status == "answered":
        return Answer(item, sent=True, exchange_id=item.feedback_exchange_id)
    body = item.feedback_xml.encode("utf-8")
    http = session
    try:
        if http is None:
            http = make_session(name, config)
        post(http, name, endpoint(config, "/exchange/feedback"), body, config)
    except (PullError, GatewayError) as exc:
        # 400-499 (but 429): the platform read the answer and refused it; sending it again
        # would change nothing, so it goes back to the officer. Anything else: sent later.
        refused = isinstance(exc, PullError) and exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 429)
        with session_scope(gateway.engine) as db:
            row = db.get(AssistCheck, check_id)
            assert row is not None
            row.send_attempts += 1
            row.send_error = str(exc)
            if refused:
                row.status = "refused"
            db.flush()
            db.expunge(row)
        log.error("assist-check %s (%s): answer %s: %s", item.id, item.message_id, "refused by the platform" if refused else "not sent yet", exc)
        return Answer(row, sent=False, error=str(exc))
    finally:
        if session is None and http is not None:
            http.close()
    exchange_id, receipt = _receipt_feedback(gateway, item, body)
    with session_scope(gateway.engine) as db:
        row = db.get(AssistCheck, check_id)
        assert row is not None
        row.status, row.sent_at, row.send_error = "answered", clock.now(), None
        row.send_attempts += 1
        row.feedback_exchange_id = exchange_id
        db.flush()
        db.expunge(row)
    log.info("assist-check %s (%s): answer sent, exchange %s", item.id, item.message_id, exchange_id)
    return Answer(row, sent=True, receipt=receipt, exchange_id=exchange_id)


def _receipt_feedback(gateway: ExchangeServices, item: AssistCheck, body: bytes) -> tuple[int, str | None]:
    """The sent FKXX as an exchange of the national platform: an AssistCheckFeedback
    record and a signed receipt in the national-platform outbox. The FKXX itself (personal
    data) stays in the database: `assistcheck.feedback_xml`, and the record."""
    department = "national-platform"
    name = f"FKXX-{_safe_name(item.message_id)}.xml"
    staged = gateway.settings.staging_dir / f"{os.getpid()}-fkxx-{uuid.uuid4().hex}.src"
    staged.write_bytes(body)
    try:
        sniffed = sniff_file(staged)
        source_path = f"sent:feedback/{_safe_name(item.message_id)}/{sniffed.sha256[:16]}"
        outcome = gateway.process_page(department, name, source_path, staged, sniffed, adapter=FeedbackDocument(), keep_copy=False)
    finally:
        staged.unlink(missing_ok=True)
    from gateway.receipts.ledger import checkpoint_after_pass

    checkpoint_after_pass(gateway.engine, gateway.signer, gateway.settings.home)
    return outcome.exchange_id, outcome.receipt


@dataclass
class SendResult:
    sent: int = 0
    waiting: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.sent} answer(s) sent" + (f", {self.waiting} still waiting" if self.waiting else "")


def send_pending(gateway: ExchangeServices, settings: Settings, source: str | None = None) -> SendResult:
    """Send every answer still `sending` (the platform was away when it was given)."""
    result = SendResult()
    with Session(gateway.engine) as session:
        ids = list(session.exec(select(AssistCheck.id).where(AssistCheck.status == "sending").order_by(AssistCheck.id)).scalars().all())  # type: ignore[arg-type]
    if not ids:
        return result
    from gateway.pulls.http import make_session

    name, config = platform_source(settings, source)
    http = make_session(name, config)
    try:
        for check_id in ids:
            outcome = send_one(gateway, settings, check_id, source=name, session=http)
            if outcome.sent:
                result.sent += 1
            else:
                result.waiting += 1
                result.errors.append(f"{outcome.check.message_id}: {outcome.error}")
    finally:
        http.close()
    return result


class FeedbackDocument(Adapter):
    """Reads the FKXX the gateway sent, so it is receipted like any exchange. Not
    registered as a plugin: nobody drops FKXX documents."""

    name = "national-platform-feedback"
    department = "national-platform"
    contracts = (AssistCheckFeedback,)
    file_types = (".xml",)
    description = "Assist-check answers sent to the national platform (协查反馈 FKXX)"
    columns = {"message_id": "XXBH", "result": "PDJG", "remark": "BZ", "answered_at": "FKSJ", "findings": "CXJG"}

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        # The gateway's own document, a few hundred bytes: read whole, hardened all the same.
        with source.open_binary() as handle:
            try:
                root = etree.parse(handle, etree.XMLParser(**HARDENED)).getroot()
            except etree.XMLSyntaxError as exc:
                raise FileRejected("xml_malformed", str(exc)) from None
        if local_name(root) != "FKXX":
            raise FileRejected("xml_root", f"the root element is <{local_name(root)}>, expected <FKXX>")
        findings = [{"category": el.get("LB"), "value": (el.text or "").strip()} for el in root if local_name(el) == "CXJG"]
        yield RawRow(1, {**dict(root.attrib), "findings": findings})

    def normalize(self, row: RawRow) -> AssistCheckFeedback:
        get = row.fields.get
        return AssistCheckFeedback.model_validate(
            {"message_id": get("XXBH"), "result": get("PDJG"), "remark": get("BZ"), "answered_at": get("FKSJ"), "findings": get("findings")}
        )


# -- notices -----------------------------------------------------------------------------------


@dataclass
class NoticeView:
    item: NoticeItem
    subject_name: str
    subject_id: str

    @property
    def subject(self) -> str:
        return f"{mask_name(self.subject_name)} {mask_id(self.subject_id)}"


def list_notices(engine: Engine, *, include_handled: bool = False, overdue: bool = False, today: dt.date | None = None) -> list[NoticeView]:
    today = today or clock.today()
    with Session(engine) as session:
        query = select(NoticeItem).order_by(NoticeItem.due_date, NoticeItem.id)  # type: ignore[arg-type]
        if not include_handled:
            query = query.where(NoticeItem.status != "handled")
        if overdue:
            query = query.where(NoticeItem.due_date < today, NoticeItem.status != "handled")
        views = []
        for item in session.exec(query).scalars().all():
            record = session.get(Record, item.record_id)
            subject = json.loads(record.payload).get("subject", {}) if record else {}
            views.append(NoticeView(item, subject.get("name", ""), subject.get("id_number", "")))
        return views


def handle_notice(
    engine: Engine, key: str, *, remark: str | None, operator: str | None = None, gateway: ExchangeServices | None = None,
    settings: Settings | None = None, source: str | None = None,
) -> NoticeItem:
    """Record that a notice was dealt with. A notice that asks for feedback (需要对方接收并
    反馈, XYFK 1) is answered to the platform: an `FKXX` (PDJG 1, BZ the remark, one `CXJG`
    of the notice's category) POSTed like an assist-check answer and receipted; the notice
    is `handled` once the platform took it (`sending` until then; `gateway assist-checks
    send` sends it again). A receipt-only notice is handled at once."""
    with session_scope(engine) as session:
        item = session.get(NoticeItem, int(key)) if key.isdigit() else None
        if item is None:
            item = session.exec(select(NoticeItem).where(NoticeItem.message_id == key)).scalars().first()
        if item is None:
            raise GatewayError(f"No notice {key!r}. See `gateway notices list --all`")
        if item.status != "open":
            raise GatewayError(f"Notice {item.id} ({item.message_id}) was already handled at {item.handled_at} ({item.status})")
        if item.feedback_required and not (remark or "").strip():
            raise GatewayError("This notice requires feedback (XYFK 1): say what was done with --remark TEXT")
        item.handled_by, item.remark = operator or getpass.getuser(), (remark or "").strip() or None
        if item.feedback_required and gateway is not None:
            platform_source(settings or gateway.settings, source)  # a platform to send to, before anything is stored
            record = session.get(Record, item.record_id)
            batch = (json.loads(record.payload).get("batch") or {}) if record is not None else {}
            body = render_fkxx(
                item.message_id, "1", clock.now(), item.remark, [(item.category, item.remark or "已接收")],
                sender=batch.get("receiver", ""), receiver=batch.get("sender", ""),
            )
            item.feedback_xml, item.status = body.decode("utf-8"), "sending"
        else:
            item.status, item.handled_at = "handled", clock.now()
        session.flush()
        session.expunge(item)
    if item.status == "sending":
        assert gateway is not None  # "sending" is set only when there is a gateway to send through
        return send_notice_feedback(gateway, settings or gateway.settings, item.id, source=source)
    return item


def send_notice_feedback(gateway: ExchangeServices, settings: Settings, notice_id: int, *, source: str | None = None) -> NoticeItem:
    """POST the stored feedback of one notice; on success receipt it and mark it handled."""
    from gateway.pulls.http import PullError, endpoint, make_session, post

    name, config = platform_source(settings, source)
    with session_scope(gateway.engine) as db:
        item = db.get(NoticeItem, notice_id)
        assert item is not None and item.feedback_xml is not None
        db.expunge(item)
    if item.status != "sending":
        return item
    body = item.feedback_xml.encode("utf-8")
    http = None
    try:
        http = make_session(name, config)
        post(http, name, endpoint(config, "/exchange/feedback"), body, config)
    except (PullError, GatewayError) as exc:
        with session_scope(gateway.engine) as db:
            row = db.get(NoticeItem, notice_id)
            assert row is not None
            row.send_error = str(exc)
            db.flush()
            db.expunge(row)
        log.error("notice %s (%s): feedback not sent yet: %s", item.id, item.message_id, exc)
        return row
    finally:
        if http is not None:
            http.close()
    exchange_id, _ = _receipt_feedback(gateway, item, body)  # type: ignore[arg-type]
    with session_scope(gateway.engine) as db:
        row = db.get(NoticeItem, notice_id)
        assert row is not None
        row.status, row.handled_at, row.feedback_sent_at, row.send_error = "handled", clock.now(), clock.now(), None
        row.feedback_exchange_id = exchange_id
        db.flush()
        db.expunge(row)
    log.info("notice %s (%s): feedback sent, exchange %s", item.id, item.message_id, exchange_id)
    return row


def send_pending_notices(gateway: ExchangeServices, settings: Settings, source: str | None = None) -> tuple[int, list[str]]:
    with Session(gateway.engine) as session:
        ids = list(session.exec(select(NoticeItem.id).where(NoticeItem.status == "sending")).scalars().all())
    sent, errors = 0, []
    for notice_id in ids:
        row = send_notice_feedback(gateway, settings, notice_id, source=source)  # type: ignore[arg-type]
        if row.status == "handled":
            sent += 1
        else:
            errors.append(f"{row.message_id}: {row.send_error}")
    return sent, errors


# -- importing the county's own tables -------------------------------------------------------------


HEADERS = {
    "id_number": ("公民身份号码", "身份证号", "身份证号码", "id_number", "gmsfhm"),
    "name": ("姓名", "name", "xm"),
    "category": ("类别", "信息类别", "category", "lb"),
    "value": ("内容", "信息内容", "value"),
    "recorded_on": ("登记日期", "日期", "recorded_on"),
}


@dataclass
class ImportProblem:
    row: int
    column: str
    value: str  # masked
    reason: str


@dataclass
class ImportResult:
    added: int = 0
    already: int = 0
    problems: list[ImportProblem] = field(default_factory=list)


def import_table(engine: Engine, source: str, path: Path) -> ImportResult:
    """Import a CSV of facts into the `wcba` or `ledger` lookup table. Rows already there
    are counted, not doubled; bad rows are reported (values masked) and skipped."""
    if source not in ("wcba", "ledger"):
        raise GatewayError(f"Unknown lookup table {source!r}. Valid choices: ledger, wcba")
    sniffed = sniff_file(path)
    if sniffed.encoding is None or sniffed.has_nul:
        raise GatewayError(f"{path}: not a UTF-8 or GB18030 text file ({sniffed.problem or 'NUL bytes'})")
    result = ImportResult()
    with open(path, encoding=sniffed.encoding, newline="") as handle:
        reader = csv.reader(handle)
        header = [cell.strip().lower() for cell in next(reader, [])]
        columns: dict[str, int] = {}
        for field_name, names in HEADERS.items():
            for index, cell in enumerate(header):
                if cell in {n.lower() for n in names}:
                    columns[field_name] = index
                    break
        for required in ("id_number", "category", "value"):
            if required not in columns:
                raise GatewayError(f"{path}: the header lacks a {HEADERS[required][0]} ({HEADERS[required][-2]}) column")
        with session_scope(engine) as session:
            for number, cells in enumerate(reader, start=2):
                if not any(cell.strip() for cell in cells):
                    continue
                fact = _import_row(cells, columns, number, result)
                if fact is None:
                    continue
                digest = hashlib.sha256(fact["value"].encode("utf-8")).hexdigest()
                there = session.exec(
                    select(LookupEntry.id).where(
                        LookupEntry.source == source, LookupEntry.id_number == fact["id_number"],
                        LookupEntry.category == fact["category"], LookupEntry.value_sha256 == digest,
                    )
                ).first()
                if there is not None:
                    result.already += 1
                    continue
                session.add(LookupEntry(source=source, value_sha256=digest, import_file=path.name, **fact))
                session.flush()
                result.added += 1
    log.info("imported %s: %d added, %d already there, %d refused", source, result.added, result.already, len(result.problems))
    return result


def _import_row(cells: list[str], columns: dict[str, int], number: int, result: ImportResult) -> dict[str, Any] | None:
    def cell(name: str) -> str:
        index = columns.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    raw_id = cell("id_number")
    try:
        id_number = _ID.validate_python(raw_id)
    except ValidationError as exc:
        result.problems.append(ImportProblem(number, HEADERS["id_number"][0], mask_id(raw_id), exc.errors()[0]["msg"]))
        return None
    try:
        category = _category_code(cell("category"))
    except GatewayError:
        result.problems.append(ImportProblem(number, HEADERS["category"][0], mask_value(cell("category"), None), "not a category code 01-11 or its label"))
        return None
    value = cell("value")
    if not value:
        result.problems.append(ImportProblem(number, HEADERS["value"][0], "", "empty"))
        return None
    recorded: dt.date | None = None
    if cell("recorded_on"):
        try:
            recorded = dt.date.fromisoformat(cell("recorded_on").replace("/", "-"))
        except ValueError:
            result.problems.append(ImportProblem(number, HEADERS["recorded_on"][0], mask_value(cell("recorded_on"), None), "not a date YYYY-MM-DD"))
            return None
    return {"id_number": id_number, "name": cell("name") or None, "category": category, "value": value, "recorded_on": recorded}
