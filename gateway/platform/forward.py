"""Forwarding to the township (转送乡镇, rule `forward_to_town`: 2 working days).

An assist-check request (协查 XCXX) or a notice (通报 TBXX) the national platform sent about
a person the register (gateway/register/) places in one of the county's townships is for
that township to check, when the township is a recipient (a department named
`town-<9-digit code>` in gateway.toml, docs/register.md). `forward_pending` opens a
`forward` obligation of the population office for each such request or notice, due 2 working
days from the day it was registered (its `received_at`, the business clock), then writes
`FORWARD-<XXBH>.json.gpg` to the township's outbox: one JSON document encrypted to the
township's registered key and signed by the gateway (`gateway.reminders.weekly.send_document`,
as the reminders and warnings are), with the number, the categories, the due dates and the
person's name, ID number and addresses (inside the encrypted document only). Written, the
obligation is met (or late, by the clock).

Without a usable key for the township the request is held: no file, the obligation stays
open (and becomes overdue), a warning names the request and the masked ID number; the next
run tries again. A request is forwarded once: its obligation closed, it is never looked at
again (a file of that name already in the outbox counts as written).

Runs after every `assist_checks.sync` of the jobs (gateway/platform/jobs.py): the
`assist-checks` job, the platform's pull job and the inbox job after a drop of the
national platform.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlmodel import Session

from contracts.platform import ContentCategory

from gateway import clock
from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.masking import mask_id
from gateway.obligations.hooks import FORWARD, forward_opened, forward_sent
from gateway.store import session_scope
from gateway.store.models import AssistCheck, NoticeItem, Record
from gateway.store.obligation_models import Obligation
from gateway.store.register_models import RegisterPerson

if TYPE_CHECKING:
    from gateway.register.divisions import Divisions
    from gateway.services import GatewayServices

log = logging.getLogger("gateway.platform.forward")

FORMAT = "gateway-forward/1"
CATEGORY_LABELS = {member.value: member.label for member in ContentCategory}
KIND_LABELS = {"assist-check": "协查请求 assist-check request", "notice": "协查通报 notice"}


@dataclass
class ForwardResult:
    forwarded: int = 0
    held: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"转送乡镇 {self.forwarded} 件，暂存 {self.held} 件 / {self.forwarded} forwarded to a township, "
                f"{self.held} held" + (f", {self.failed} failed" if self.failed else ""))


@dataclass(frozen=True)
class _Candidate:
    kind: str  # assist-check | notice
    message_id: str
    recipient: str
    township: str
    received_at: dt.datetime
    document: dict[str, Any]
    id_number: str


def file_name(message_id: str) -> str:
    return f"FORWARD-{re.sub(r'[^A-Za-z0-9._-]', '_', message_id)[:80]}.json.gpg"


def _townships(settings: Settings) -> tuple[dict[str, str], Divisions | None]:
    """{township code (12 digits): recipient} of the configured `town-<code>` departments, and the divisions."""
    from gateway.register.build import divisions_or_none
    from gateway.register.lists import townships_configured

    divisions = divisions_or_none(settings)
    if divisions is None:
        return {}, None
    return {code: recipient for recipient, code in townships_configured(list(settings.departments), divisions)}, divisions


def _document(kind: str, item: AssistCheck | NoticeItem, payload: dict[str, Any], person: RegisterPerson,
              recipient: str, township_name: str, village_name: str, forward_due: dt.date) -> dict[str, Any]:
    subject = payload.get("subject") or {}
    if isinstance(item, AssistCheck):
        codes = [c for c in item.categories.split(",") if c]
        text = payload.get("request_text")
    else:
        codes = [item.category]
        text = payload.get("notice_text")
    document: dict[str, Any] = {
        "format": FORMAT,
        "title": "转送乡镇核查 Forwarded for the township to check",
        "township": recipient, "township_name": township_name,
        "kind": kind, "kind_zh": KIND_LABELS[kind],
        "number": item.message_id, "from": item.partner, "sent_date": item.sent_date.isoformat(),
        "categories": [{"code": code, "label": CATEGORY_LABELS.get(code, code)} for code in codes],
        "text": text or "",
        "due": item.due_date.isoformat(),
        "due_note": "县人口办答复全国平台的期限 the county's answer to the platform is due that day",
        "check_by": forward_due.isoformat(),
        "person": {
            "name": person.name or subject.get("name") or "",
            "id_number": person.id_number,
            "birth_date": person.birth_date.isoformat() if person.birth_date else (subject.get("birth_date") or ""),
            "household_address": person.household_address or "",
            "residence_address": person.residence_address or "",
            "village": village_name,
            "residence_in_request": subject.get("current_residence") or "",
        },
    }
    if isinstance(item, AssistCheck):
        document["urgency"] = item.urgency
    else:
        document["feedback_required"] = item.feedback_required
    return document


def _candidates(session: Session, settings: Settings, townships: dict[str, str], divisions: Divisions) -> list[_Candidate]:
    """Requests and notices still to forward: open ones without a forward obligation yet (or
    with one still open: held), about a person placed in a configured township; the
    obligation of each is opened here (idempotent)."""
    from contracts.identity import normalize_id_number

    forwards = dict(session.execute(
        select(Obligation.subject, Obligation.status).where(Obligation.kind == "forward", Obligation.subject.like(f"{FORWARD}%"))  # type: ignore[attr-defined]
    ).all())
    waiting = [subject.removeprefix(FORWARD) for subject, status in forwards.items() if status == "open"]
    found: list[_Candidate] = []
    for kind, table in (("assist-check", AssistCheck), ("notice", NoticeItem)):
        rows = session.execute(
            select(table).where(or_(table.status == "open", table.message_id.in_(waiting))).order_by(table.id)  # type: ignore[attr-defined]
        ).scalars().all()
        for item in rows:
            status = forwards.get(f"{FORWARD}{item.message_id}")
            if status is not None and status != "open":
                continue  # forwarded once
            record = session.get(Record, item.record_id)
            if record is None:
                continue
            payload = json.loads(record.payload)
            number = (payload.get("subject") or {}).get("id_number")
            try:
                number = normalize_id_number(number) if isinstance(number, str) else None
            except Exception:  # noqa: BLE001 - a number that does not check out is not forwarded
                number = None
            person = session.get(RegisterPerson, number) if number else None
            if person is None or person.township_code not in townships:
                continue
            recipient = townships[person.township_code]
            due = forward_opened(session, settings, item.message_id, kind, recipient, item.received_at).due_date
            document = _document(kind, item, payload, person, recipient, divisions.name_of(person.township_code),
                                 divisions.name_of(person.village_code), due)
            found.append(_Candidate(kind, item.message_id, recipient, person.township_code, item.received_at, document,
                                    person.id_number))
    return found


def forward_pending(gateway: GatewayServices) -> ForwardResult:
    """Forward every registered request and notice a configured township is to check and has
    not received yet; open (and close) their `forward` obligations. Errors are counted and
    said, never raised: the sync that ran before stands."""
    from gateway.reminders.weekly import send_document
    from gateway.routing.delivery import Router

    settings = gateway.settings
    result = ForwardResult()
    townships, divisions = _townships(settings)
    if not townships or divisions is None:
        return result
    with session_scope(gateway.engine) as session:
        candidates = _candidates(session, settings, townships, divisions)  # their obligations opened
    if not candidates:
        return result
    router = Router(gateway)
    for candidate in candidates:
        name = file_name(candidate.message_id)
        try:
            outcome = send_document(gateway, router, candidate.recipient, name, candidate.document, items=1, what="forward")
            status, reason = outcome.status, outcome.reason or ""
        except GatewayError as exc:  # gpg could not encrypt or sign: said, tried again on the next run
            status, reason = "failed", str(exc)
        if status in ("delivered", "already"):  # already: written by an earlier run that stopped before closing it
            with session_scope(gateway.engine) as session:
                forward_sent(session, candidate.message_id, clock.now(), by=candidate.recipient)
            result.forwarded += 1
            continue
        if status == "held":
            result.held += 1
            log.warning("转送暂存 forward of %s (person %s) to %s held: %s; the obligation stays open",
                        candidate.message_id, mask_id(candidate.id_number), candidate.recipient, reason)
        else:
            result.failed += 1
            result.errors.append(f"forward of {candidate.message_id} to {candidate.recipient}: {reason}")
            log.warning("转送失败 forward of %s (person %s) to %s not written: %s; tried again on the next run",
                        candidate.message_id, mask_id(candidate.id_number), candidate.recipient, reason)
    if result.forwarded or result.held or result.failed:
        log.info("forward: %s", result.summary())
    return result
