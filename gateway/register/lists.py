"""The name lists of the regulations (名单), per township and village, from the register:

| kind | 名单 | period |
|---|---|---|
| `newlyweds` | 新婚夫妇名单 | monthly |
| `infants` | 婴儿落户名单 (police newborn registrations) | monthly |
| `deaths` | 死亡人员名单 | monthly |
| `women-moves` | 育龄妇女迁出、迁入名单 | quarterly |

A row belongs to a township by where the person is placed in the register (a woman who
moved out: by the address she left). Each list is due on `lists_due_day` (default 5) of the
month after its period. `deliver_due()` sends each configured township (a department named
`town-<9-digit code>`) its lists once due: CSV (UTF-8 with BOM) encrypted to the township's
registered key and signed by the gateway, `NAMELIST-<kind>-<period>.csv.gpg` in its outbox;
held (with the reason) while it has no usable key, sent on a later run. Each list is sent
once (`registerlistdelivery`). Only the encrypted file holds full identifiers."""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session

from contracts.rules import age_on
from gateway.errors import GatewayError, TransportError
from gateway.register.build import _current, divisions_or_none
from gateway.register.divisions import Divisions
from gateway.register.settings import SOURCE_LABELS, RegisterSettings, register_settings
from gateway.store.audit import now_utc, record_event
from gateway.store.register_models import RegisterFact, RegisterListDelivery, RegisterPerson

if TYPE_CHECKING:
    from gateway.services import GatewayServices

log = logging.getLogger("gateway.register")

KINDS: dict[str, tuple[str, str]] = {
    "newlyweds": ("新婚夫妇名单", "monthly"),
    "infants": ("婴儿落户名单", "monthly"),
    "deaths": ("死亡人员名单", "monthly"),
    "women-moves": ("育龄妇女迁出迁入名单", "quarterly"),
}
COLUMNS: dict[str, tuple[str, ...]] = {
    "newlyweds": ("登记日期", "男方姓名", "男方公民身份号码", "女方姓名", "女方公民身份号码", "村（居）"),
    "infants": ("姓名", "性别", "出生日期", "公民身份号码", "户籍地址", "村（居）"),
    "deaths": ("姓名", "公民身份号码", "性别", "出生日期", "死亡日期", "信息来源", "村（居）"),
    "women-moves": ("姓名", "公民身份号码", "出生日期", "变动", "变动日期", "村（居）"),
}
# Which columns hold what, for masking on screen.
KINDS_OF_COLUMN = {"姓名": "name", "男方姓名": "name", "女方姓名": "name", "公民身份号码": "id_number",
                   "男方公民身份号码": "id_number", "女方公民身份号码": "id_number", "户籍地址": "address"}
TOWNSHIP_RECIPIENT = re.compile(r"^town-(\d{9})$")


@dataclass(frozen=True)
class Period:
    label: str  # 2026-08 | 2026-Q3
    first: dt.date
    last: dt.date

    def due(self, day: int) -> dt.date:
        year, month = (self.last.year + 1, 1) if self.last.month == 12 else (self.last.year, self.last.month + 1)
        return dt.date(year, month, day)


def period(text: str) -> Period:
    found = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if found and 1 <= int(found.group(2)) <= 12:
        year, month = int(found.group(1)), int(found.group(2))
        return Period(f"{year:04d}-{month:02d}", dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1]))
    found = re.fullmatch(r"(\d{4})-?[Qq]([1-4])", text.strip())
    if found:
        year, quarter = int(found.group(1)), int(found.group(2))
        last_month = quarter * 3
        return Period(f"{year:04d}-Q{quarter}", dt.date(year, last_month - 2, 1),
                      dt.date(year, last_month, calendar.monthrange(year, last_month)[1]))
    raise GatewayError(f"period {text!r}: write a month 2026-08 or a quarter 2026-Q3")


def period_for(kind: str, text: str) -> Period:
    wanted = period(text)
    quarterly = KINDS[kind][1] == "quarterly"
    if quarterly != ("Q" in wanted.label):
        raise GatewayError(f"{KINDS[kind][0]} ({kind}) is {'quarterly: write 2026-Q3' if quarterly else 'monthly: write 2026-08'}")
    return wanted


def _facts(session: Session, attribute: str, span: Period, contract: str | None = None) -> list[RegisterFact]:
    query = select(RegisterFact).where(
        RegisterFact.attribute == attribute, RegisterFact.event_date >= span.first, RegisterFact.event_date <= span.last
    )
    if contract:
        query = query.where(RegisterFact.contract == contract)
    return sorted(_current(session, list(session.execute(query).scalars().all())),
                  key=lambda f: (f.event_date, f.business_key, f.id_number))


def _in(person: RegisterPerson | None, township: str, village: str | None) -> bool:
    return person is not None and person.township_code == township and (village is None or person.village_code == village)


def rows_for(session: Session, kind: str, span: Period, township: str, village: str | None,
             divisions: Divisions, rs: RegisterSettings) -> list[list[str]]:
    """The rows of one list, full values (the caller masks them for the screen)."""
    person = lambda number: session.get(RegisterPerson, number)  # noqa: E731
    place = lambda p: divisions.name_of(p.village_code) if p and p.village_code else ""  # noqa: E731
    sex = lambda p: {"1": "男", "2": "女"}.get(p.sex or "", "")  # noqa: E731
    rows: list[list[str]] = []
    if kind == "newlyweds":
        couples: dict[str, list[RegisterFact]] = {}
        for fact in _facts(session, "marital_status", span, "MarriageEvent"):
            if fact.value == "20":
                couples.setdefault(fact.business_key, []).append(fact)
        for facts in couples.values():
            people = [person(f.id_number) for f in facts]
            husband = next((p for p in people if p and p.sex == "1"), None)
            wife = next((p for p in people if p and p.sex == "2"), None)
            local = [p for p in (wife, husband) if _in(p, township, village)]
            if local:
                rows.append([facts[0].event_date.isoformat(), husband.name or "" if husband else "", husband.id_number if husband else "",
                             wife.name or "" if wife else "", wife.id_number if wife else "", place(local[0])])
    elif kind == "infants":
        for fact in _facts(session, "household_division", span, "BirthEvent"):
            child = person(fact.id_number)
            if fact.source == "police" and child and child.birth_date == fact.event_date and _in(child, township, village):
                rows.append([child.name or "", sex(child), child.birth_date.isoformat(), child.id_number,
                             child.household_address or "", place(child)])
    elif kind == "deaths":
        seen: set[str] = set()
        for fact in _facts(session, "death_date", span):
            dead = person(fact.id_number)
            if fact.id_number in seen or not _in(dead, township, village):
                continue
            seen.add(fact.id_number)
            rows.append([dead.name or "", dead.id_number, sex(dead), dead.birth_date.isoformat() if dead.birth_date else "",  # type: ignore[union-attr]
                         fact.value, SOURCE_LABELS.get(fact.source, fact.source), place(dead)])
    elif kind == "women-moves":
        left = {(f.business_key, f.id_number): f for f in _facts(session, "left_address", span, "Migration")}
        for fact in _facts(session, "moved", span, "Migration"):
            woman = person(fact.id_number)
            if woman is None or woman.sex != "2" or woman.birth_date is None:
                continue
            if not rs.women_min_age <= age_on(woman.birth_date, fact.event_date) <= rs.women_max_age:
                continue
            if fact.value == "out":
                origin = left.get((fact.business_key, fact.id_number))
                placed = divisions.match(origin.value if origin else None, None)
                if placed.township != township or (village is not None and placed.village != village):
                    continue
                village_name = divisions.name_of(placed.village)
            elif _in(woman, township, village):
                village_name = place(woman)
            else:
                continue
            rows.append([woman.name or "", woman.id_number, woman.birth_date.isoformat(),
                         "迁入" if fact.value == "in" else "迁出", fact.event_date.isoformat(), village_name])
    else:
        raise GatewayError(f"Unknown list {kind!r}. Valid choices: {', '.join(KINDS)}")
    return rows


def list_csv(kind: str, rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS[kind])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def townships_configured(departments: list[str], divisions: Divisions) -> list[tuple[str, str]]:
    """(recipient, township code) of every department named `town-<9 digits>` that divisions.csv lists."""
    found = []
    for department in departments:
        match = TOWNSHIP_RECIPIENT.match(department)
        if match and match.group(1) + "000" in divisions.townships:
            found.append((department, match.group(1) + "000"))
    return found


def due_periods(kind: str, today: dt.date, due_day: int, back: int = 2) -> list[Period]:
    """The periods of `kind` whose lists are due by `today` (the last `back` of them)."""
    found: list[Period] = []
    year, month = today.year, today.month
    for _ in range(back * 3 + 3):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        text = f"{year:04d}-{month:02d}" if KINDS[kind][1] == "monthly" else (f"{year:04d}-Q{(month - 1) // 3 + 1}" if month % 3 == 0 else None)
        if text is None:
            continue
        span = period(text)
        if span.due(due_day) <= today and len(found) < back:
            found.append(span)
    return found


@dataclass
class ListOutcome:
    recipient: str
    kind: str
    period: str
    status: str  # delivered | held | already
    rows: int = 0
    file_name: str | None = None
    reason: str | None = None


def deliver_due(gateway: GatewayServices, today: dt.date) -> list[ListOutcome]:
    """Send every configured township the lists due by `today` it has not received."""
    from gateway.register.build import fold

    settings = gateway.settings
    divisions = divisions_or_none(settings)
    if divisions is None:
        return []
    recipients = townships_configured(settings.departments, divisions)
    if not recipients:
        return []
    fold(gateway.engine, settings)
    rs = register_settings(settings)
    outcomes = []
    for recipient, township in recipients:
        for kind in KINDS:
            for span in due_periods(kind, today, rs.lists_due_day):
                outcomes.append(deliver_one(gateway, recipient, township, kind, span, divisions, rs))
    return outcomes


def deliver_one(gateway: GatewayServices, recipient: str, township: str, kind: str, span: Period,
                divisions: Divisions, rs: RegisterSettings) -> ListOutcome:
    from gateway.routing.delivery import Router

    with Session(gateway.engine) as session:
        row = session.execute(select(RegisterListDelivery).where(
            RegisterListDelivery.recipient == recipient, RegisterListDelivery.kind == kind,
            RegisterListDelivery.period == span.label,
        )).scalars().first()
        if row is not None and row.status == "delivered":
            return ListOutcome(recipient, kind, span.label, "already", row.rows, row.file_name)
        rows = rows_for(session, kind, span, township, None, divisions, rs)
    router = Router(gateway)
    check = router.check_keys(recipient)
    with Session(gateway.engine) as session:
        row = row and session.get(RegisterListDelivery, row.id) or RegisterListDelivery(recipient=recipient, kind=kind, period=span.label)
        row.rows = len(rows)
        if check.problem is not None:
            changed = row.reason != check.problem
            row.status, row.reason = "held", check.problem
            session.add(row)
            if changed:
                record_event(session, "register.list_held", recipient, None, f"{KINDS[kind][0]} {span.label}: {check.problem}")
            session.commit()
            return ListOutcome(recipient, kind, span.label, "held", len(rows), reason=check.problem)
        session.add(row)
        session.commit()
        session.refresh(row)
    name = f"NAMELIST-{kind}-{span.label}.csv.gpg"
    signer = gateway.signer
    result = signer.gpg.encrypt(
        list_csv(kind, rows), check.usable, sign=signer.fingerprint, always_trust=True,  # recipients pinned by fingerprint
        passphrase=signer.passphrase, armor=False, extra_args=["--digest-algo", "SHA256"],
    )
    if not result.ok:
        raise GatewayError(f"gpg could not encrypt and sign {name} for {recipient}. Check GATEWAY_KEY_PASSPHRASE and HOME/gnupg")
    target = router.folder / name
    target.write_bytes(result.data)
    try:
        gateway.transport_for(recipient).put(recipient, "outbox", name, target)
    except (TransportError, OSError) as exc:
        reason = f"not written to the outbox of {recipient} ({type(exc).__name__}); tried again on the next run"
        with Session(gateway.engine) as session:
            stored = session.get(RegisterListDelivery, row.id)
            stored.status, stored.reason = "held", reason  # type: ignore[union-attr]
            session.add(stored)
            session.commit()
        target.unlink(missing_ok=True)
        return ListOutcome(recipient, kind, span.label, "held", len(rows), reason=reason)
    with Session(gateway.engine) as session:
        stored = session.get(RegisterListDelivery, row.id)
        assert stored is not None
        stored.status, stored.reason, stored.file_name = "delivered", None, name
        stored.sha256 = hashlib.sha256(result.data).hexdigest()
        stored.encrypted_to, stored.delivered_at = ",".join(check.usable), now_utc()
        session.add(stored)
        record_event(session, "register.list_delivered", recipient, None,
                     f"{name}: {KINDS[kind][0]} {span.label}, {len(rows)} row(s), sha256 {stored.sha256}")
        session.commit()
    target.unlink(missing_ok=True)
    log.info("name list %s to %s: %d row(s)", name, recipient, len(rows))
    return ListOutcome(recipient, kind, span.label, "delivered", len(rows), name)


def describe(outcomes: list[ListOutcome]) -> str:
    sent = sum(o.status == "delivered" for o in outcomes)
    held = sum(o.status == "held" for o in outcomes)
    return f"名单已送达 {sent} 份，暂存 {held} 份 / {sent} name list(s) delivered, {held} held"


def masked_rows(kind: str, rows: list[list[str]]) -> list[list[str]]:
    from gateway.masking import mask_address, mask_id, mask_name

    maskers: dict[str, Any] = {"name": mask_name, "id_number": mask_id, "address": lambda v: mask_address(v) if v else ""}
    kinds = [KINDS_OF_COLUMN.get(column) for column in COLUMNS[kind]]
    return [[maskers[k](value) if k and value else value for k, value in zip(kinds, row, strict=True)] for row in rows]
