"""The audit trail of routing: who received which records, when, and what happened to
each delivery and acknowledgement; and a scanner that finds unmasked ID numbers in text
(logs, reports, command output).

Nothing here prints or stores a full identifier: business keys that hold an ID number
are masked (`440781***********5`) before they are shown.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from gateway.masking import mask_id, mask_identifiers, mask_value
from gateway.store.models import AuditEvent, Delivery, DeliveryRecord, Record

SENT = ("delivered", "acknowledged")


def record_event(session: Session, action: str, department: str, delivery_id: int | None = None, detail: str = "") -> None:
    """Append one audit event (in the caller's transaction); the detail is masked again here."""
    session.add(
        AuditEvent(
            at=now_utc(), action=action, department=department, delivery_id=delivery_id, detail=mask_text(detail)
        )
    )


def now_utc() -> dt.datetime:
    """Now, in UTC, to the second (the tables store aware datetimes and return them in UTC)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def mask_text(text: str) -> str:
    """Mask everything shaped like an ID number or a phone number in free text."""
    return mask_identifiers(text)


@dataclass
class Received:
    """One record version a recipient received."""

    delivered_at: dt.datetime | None
    recipient: str
    delivery_id: int
    file_name: str | None
    agreement: str
    contract: str
    record: str
    """the business key, masked"""
    version: int
    change: str
    exchange_id: int
    acknowledged_at: dt.datetime | None


def received(
    engine: Engine,
    *,
    recipient: str | None = None,
    business_key: str | None = None,
    contract: str | None = None,
    exchange_id: int | None = None,
    delivery_id: int | None = None,
    limit: int = 200,
) -> list[Received]:
    """Who received which record versions, newest first (`gateway audit list`)."""
    query = (
        select(DeliveryRecord, Delivery, Record.exchange_id)
        .join(Delivery, Delivery.id == DeliveryRecord.delivery_id)  # type: ignore[arg-type]
        .join(Record, Record.id == DeliveryRecord.record_id)  # type: ignore[arg-type]
        .where(Delivery.status.in_(SENT))  # type: ignore[attr-defined]
        .order_by(Delivery.delivered_at.desc(), DeliveryRecord.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    if recipient:
        query = query.where(Delivery.recipient == recipient)
    if business_key:
        query = query.where(DeliveryRecord.business_key == business_key)
    if contract:
        query = query.where(DeliveryRecord.contract == contract)
    if exchange_id is not None:
        query = query.where(Record.exchange_id == exchange_id)
    if delivery_id is not None:
        query = query.where(Delivery.id == delivery_id)
    rows = []
    with Session(engine) as session:
        for item, delivery, exchange in session.exec(query).all():
            rows.append(
                Received(
                    delivery.delivered_at, delivery.recipient, delivery.id or 0, delivery.file_name, item.agreement,
                    item.contract, mask_value(item.business_key, None), item.version, item.change, exchange,
                    delivery.acknowledged_at,
                )
            )
    return rows


def events(engine: Engine, *, department: str | None = None, delivery_id: int | None = None, limit: int = 100) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)  # type: ignore[union-attr]
    if department:
        query = query.where(AuditEvent.department == department)
    if delivery_id is not None:
        query = query.where(AuditEvent.delivery_id == delivery_id)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(query).all())


# -- finding unmasked ID numbers ----------------------------------------------------------

_DIGIT_RUN = re.compile(r"[0-9]{11,}[Xx]?")
_ID_SHAPED = re.compile(r"(?<![0-9])\d{17}[\dXx](?![0-9])")
_ID_TOKEN = re.compile(r"(?<![0-9])(\d{17}[\dXx])(?![0-9])")


def _plausible_id(candidate: str) -> bool:
    """An 18-character number with a right check character and a possible birth date."""
    from stdnum.cn import ric

    number = candidate.upper()
    try:
        if ric.calc_check_digit(number) != number[-1]:
            return False
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except (ValueError, KeyError):
        return False
    return number[0] in "12345678" and 1880 <= int(number[6:10]) <= 2100


def known_ids(texts: Iterable[str]) -> set[str]:
    """Every ID-shaped number in these texts (specimens, generated data), valid or not:
    a wrong check character is still somebody's number mistyped."""
    found: set[str] = set()
    for text in texts:
        found.update(match.upper() for match in _ID_TOKEN.findall(text))
    return found


@dataclass
class Finding:
    where: str
    line: int
    masked: str
    kind: str = "ID number"

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: unmasked {self.kind} {self.masked}"


# A phone number (the `phone` field kind) as a person writes it: an 11-digit mobile number,
# or an area code and a 7- or 8-digit landline number.
_PHONE_TOKEN = re.compile(r"(?<![0-9])(1[3-9]\d{9}|0\d{2,3}-\d{7,8})(?![0-9])")


def known_phones(texts: Iterable[str]) -> set[str]:
    """Every phone-shaped number in these texts (specimens, test data)."""
    found: set[str] = set()
    for text in texts:
        found.update(_PHONE_TOKEN.findall(text))
    return found


class IdScanner:
    """Finds full ID numbers in text: any number of the `known` set, and any other
    18-character number with a right check character and a possible birth date; the
    `names` given; and full phone numbers (a personal field kind): any of the `phones`
    given, and with `any_phone` every mobile- or landline-shaped number.

    With `embedded`, a known ID number (18 characters, or a 15-digit legacy one) or a known
    phone number is also found inside a longer run of digits (a platform message id, 协查编号,
    that embeds one; two numbers run together): the console's privacy crawl looks so, the
    suite-wide scan does not (a long number that merely contains a known one is no finding
    there)."""

    def __init__(self, known: Iterable[str] = (), names: Iterable[str] = (), phones: Iterable[str] = (), any_phone: bool = False,
                 embedded: bool = False):
        self.known = {k.upper() for k in known}
        self.names = sorted({n for n in names if len(n) >= 2}, key=len, reverse=True)
        self.phones = set(phones)
        self.any_phone = any_phone
        self.embedded = embedded

    def scan(self, text: str, where: str = "(text)") -> list[Finding]:
        findings = []
        for number, line in _tokens(text):
            upper = number.upper()
            if upper in self.known or _plausible_id(upper):
                findings.append(Finding(where, line, mask_id(upper)))
        for name in self.names:
            start = text.find(name)
            if start >= 0:
                findings.append(Finding(where, text.count("\n", 0, start) + 1, f"{name[:1]}**", "full name"))
        if self.phones or self.any_phone:
            for match in _PHONE_TOKEN.finditer(text):
                if self.any_phone or match.group(1) in self.phones:
                    line = text.count("\n", 0, match.start()) + 1
                    findings.append(Finding(where, line, mask_value(match.group(1), "phone"), "phone number"))
        if self.embedded:
            seen = {(f.line, f.masked) for f in findings}
            for finding in self._embedded(text, where):
                if (finding.line, finding.masked) not in seen:
                    seen.add((finding.line, finding.masked))
                    findings.append(finding)
        return findings

    def _embedded(self, text: str, where: str) -> Iterable[Finding]:
        """Known ID and phone numbers anywhere in a run of digits (see the class)."""
        lengths = sorted({len(k) for k in self.known} | {len(p) for p in self.phones if p.isdigit()})
        for match in _DIGIT_RUN.finditer(text):
            run = match.group(0).upper()
            line = text.count("\n", 0, match.start()) + 1
            for size in lengths:
                for start in range(len(run) - size + 1):
                    part = run[start : start + size]
                    if part in self.known:
                        yield Finding(where, line, mask_id(part))
                    elif part in self.phones:
                        yield Finding(where, line, mask_value(part, "phone"), "phone number")

    def scan_file(self, path: Path) -> list[Finding]:
        try:
            data = path.read_bytes()
        except OSError:
            return []
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return self.scan(data.decode(encoding), str(path))
            except UnicodeDecodeError:
                continue
        return self.scan(data.decode("latin-1"), str(path))


def _tokens(text: str) -> Iterable[tuple[str, int]]:
    for match in _ID_TOKEN.finditer(text):
        yield match.group(1), text.count("\n", 0, match.start()) + 1


__all__ = [
    "Finding",
    "IdScanner",
    "Received",
    "events",
    "known_ids",
    "known_phones",
    "mask_text",
    "now_utc",
    "received",
    "record_event",
]
