"""The county's own assist-check requests (本县发出的协查请求 XCXX) to the national platform.

`request(...)` builds the request from the county's own records where they hold the
person (name, birth date; a name given by the clerk otherwise), stores it with its due
date (gateway/obligations/deadlines.py: 15 days when urgent 紧急, 30 otherwise, from the
send date), POSTs it to the platform (`POST {base}/exchange/requests`, one `JHXX` holding
one `XCXX`) and receipts what was sent like any exchange (an `AssistCheckRequest` record of
the `national-platform-outgoing` adapter, a signed receipt in the national-platform
outbox). The other side's answer (`FKXX`) arrives through the platform pull; `close_answered`
(run by `assist_checks.sync`) closes the request. A request the platform could not take
yet stays `sending` and is sent again by `send_pending`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from contracts.identity import IdNumber
from contracts.platform import AssistCheckRequest, PlatformBatch, PlatformNotice

from gateway import clock
from gateway.adapter import Adapter, RawRow, SourceFile
from gateway.config import Settings
from gateway.errors import FileRejected, GatewayError
from gateway.intake.staging import sniff_file
from gateway.masking import mask_id, mask_name
from gateway.obligations.deadlines import Deadlines, assist_check_rule
from gateway.platform.assist_checks import OUTGOING_ADAPTER, close_answered  # noqa: F401 - close_answered: callers know it from here
from gateway.readers.xml import HARDENED, local_name
from gateway.store import Exchange, Record, session_scope
from gateway.store.models import OutgoingRequest

if TYPE_CHECKING:
    from gateway.services import ExchangeServices

log = logging.getLogger("gateway.platform.outgoing")

_ID = TypeAdapter(IdNumber)


def county_division(session: Session, settings: Settings, source: Any) -> str:
    """This county's division code (FSDW of what it sends): `[pulls.platform] division`,
    else the receiver (JSDW) of the platform's documents already received."""
    configured = getattr(source, "division", None)
    if configured:
        return configured
    for text in session.exec(
        select(Record.payload).where(Record.contract == "AssistCheckRequest").order_by(Record.id.desc()).limit(20)  # type: ignore[union-attr]
    ).scalars():
        receiver = (json.loads(text).get("batch") or {}).get("receiver")
        if receiver:
            return receiver
    raise GatewayError('This county\'s division code is not known yet: add division = "440781" to [pulls.platform] in gateway.toml')


def subject_from_records(session: Session, id_number: str) -> dict[str, str] | None:
    """Name and birth date of `id_number` from any department's stored record naming it."""
    from gateway.platform.assist_checks import _people

    pattern = f'%"id_number":"{id_number}"%'
    for contract, text in session.exec(
        select(Record.contract, Record.payload)
        .join(Exchange, Exchange.id == Record.exchange_id)  # type: ignore[arg-type]
        .where(Exchange.department != "national-platform", Record.payload.like(pattern))  # type: ignore[attr-defined]
        .order_by(Record.id.desc())  # type: ignore[union-attr]
    ).all():
        for _, person in _people(contract, json.loads(text)):
            if person.get("id_number") == id_number and person.get("name"):
                return {"name": person["name"], "birth_date": person.get("birth_date") or ""}
    return None


def _next_number(session: Session, division: str, day: dt.date) -> str:
    prefix = f"XC-{division}-{day:%Y%m%d}-"
    count = session.exec(select(func.count(OutgoingRequest.id)).where(OutgoingRequest.message_id.like(prefix + "%"))).scalar_one()  # type: ignore[attr-defined]
    return f"{prefix}{int(count) + 1:04d}"


def render_request(
    message_id: str, *, sender: str, receiver: str, urgency: str, sent: dt.datetime, categories: list[str],
    subject: dict[str, str], text: str,
) -> bytes:
    """One `JHXX` (FSDW this county, JSDW the county asked) holding one `XCXX`."""
    root = etree.Element("JHXX", BBH="2.0", FSDW=sender, JSDW=receiver, FSSJ=clock.in_china(sent).isoformat(timespec="seconds"))
    request = etree.SubElement(root, "XCXX", XXBH=message_id, JJCD=urgency, FQSJ=f"{clock.in_china(sent):%Y-%m-%d}", FX="XJZD_TO_HJD")
    person = etree.SubElement(request, "DX", XM=subject["name"], GMSFHM=subject["id_number"])
    if subject.get("birth_date"):
        person.set("CSRQ", subject["birth_date"])
    content = etree.SubElement(request, "XCNR", LB=",".join(categories))
    content.text = text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@dataclass
class Sent:
    request: OutgoingRequest
    sent: bool
    error: str | None = None
    receipt: str | None = None


def request(
    gateway: ExchangeServices, settings: Settings, *, subject_id: str, categories: list[str], urgent: bool, to: str,
    name: str | None = None, text: str | None = None, operator: str | None = None, source: str | None = None,
) -> Sent:
    """Make, store and send one request (see the module's docstring)."""
    from gateway.platform.assist_checks import CATEGORY_LABELS, _category_code, platform_source

    try:
        id_number = _ID.validate_python(subject_id.strip())
    except ValidationError as exc:
        raise GatewayError(f"--subject-id {mask_id(subject_id)}: {exc.errors()[0]['msg']}") from None
    codes = [_category_code(c.strip()) for c in categories if c.strip()]
    if not codes:
        raise GatewayError("Say which categories to ask for: --categories 01,05")
    if not (to.isdigit() and len(to) in (6, 12)):
        raise GatewayError(f"--to {to!r}: the division code of the county asked (6 digits, e.g. 510722)")
    source_name, config = platform_source(settings, source)
    urgency = "1" if urgent else "2"
    now = clock.now()
    rule = assist_check_rule(urgency)
    due = Deadlines(settings.deadlines).due(rule, clock.in_china(now).date())
    with session_scope(gateway.engine) as session:
        division = county_division(session, settings, config)
        known = subject_from_records(session, id_number)
        if name:
            subject = {"name": name.strip(), "birth_date": (known or {}).get("birth_date", "")}
        elif known:
            subject = known
        else:
            raise GatewayError(
                f"{mask_id(id_number)} is in none of the county's records: give the person's name with --name"
            )
        subject["id_number"] = id_number
        message_id = _next_number(session, division, clock.in_china(now).date())
        body = render_request(
            message_id, sender=division, receiver=to, urgency=urgency, sent=now, categories=codes, subject=subject,
            text=text or "请协查：" + "、".join(CATEGORY_LABELS.get(c, c) for c in codes),
        )
        item = OutgoingRequest(
            message_id=message_id, to_division=to, urgency=urgency, categories=",".join(codes), sent_date=clock.in_china(now).date(),
            created_at=now, created_by=operator or getpass.getuser(), due_date=due.date, due_rule=rule, due_provisional=due.provisional,
            request_xml=body.decode("utf-8"),
        )
        session.add(item)
        session.flush()
        request_id = item.id
    log.info("outgoing request %s to %s stored (subject %s)", message_id, to, mask_name(subject["name"]))
    return send_one(gateway, settings, request_id, source=source_name)  # type: ignore[arg-type]


def send_one(gateway: ExchangeServices, settings: Settings, request_id: int, *, source: str | None = None) -> Sent:
    """POST one stored request; receipt it when the platform took it."""
    from gateway.platform.assist_checks import platform_source
    from gateway.pulls.http import PullError, endpoint, make_session, post

    name, config = platform_source(settings, source)
    with session_scope(gateway.engine) as db:
        item = db.get(OutgoingRequest, request_id)
        assert item is not None
        db.expunge(item)
    if item.status != "sending":
        return Sent(item, sent=True)
    body = item.request_xml.encode("utf-8")
    http = None
    try:
        http = make_session(name, config)
        post(http, name, endpoint(config, "/exchange/requests"), body, config)
    except (PullError, GatewayError) as exc:
        refused = isinstance(exc, PullError) and exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 429)
        with session_scope(gateway.engine) as db:
            row = db.get(OutgoingRequest, request_id)
            assert row is not None
            row.send_attempts += 1
            row.send_error = str(exc)
            row.status = "refused" if refused else row.status
            db.flush()
            db.expunge(row)
        log.error("outgoing request %s: %s: %s", item.message_id, "refused by the platform" if refused else "not sent yet", exc)
        return Sent(row, sent=False, error=str(exc))
    finally:
        if http is not None:
            http.close()
    exchange_id, receipt = _receipt(gateway, item.message_id, body)
    with session_scope(gateway.engine) as db:
        row = db.get(OutgoingRequest, request_id)
        assert row is not None
        row.status, row.sent_at, row.send_error, row.exchange_id = "sent", clock.now(), None, exchange_id
        row.send_attempts += 1
        db.flush()
        db.expunge(row)
    log.info("outgoing request %s sent, exchange %s", item.message_id, exchange_id)
    return Sent(row, sent=True, receipt=receipt)


def send_pending(gateway: ExchangeServices, settings: Settings, source: str | None = None) -> tuple[int, list[str]]:
    """Send every request still `sending`; (sent, errors)."""
    with Session(gateway.engine) as session:
        ids = list(session.exec(select(OutgoingRequest.id).where(OutgoingRequest.status == "sending")).scalars().all())
    sent, errors = 0, []
    for request_id in ids:
        outcome = send_one(gateway, settings, request_id, source=source)  # type: ignore[arg-type]
        if outcome.sent:
            sent += 1
        else:
            errors.append(f"{outcome.request.message_id}: {outcome.error}")
    return sent, errors


def _receipt(gateway: ExchangeServices, message_id: str, body: bytes, kind: str = "XCXX") -> tuple[int, str | None]:
    """Store what was sent (a `JHXX` of one `XCXX` request or `TBXX` notice) as an exchange
    of the `national-platform-outgoing` adapter and sign its receipt."""
    from gateway.platform.assist_checks import _safe_name
    from gateway.receipts.ledger import checkpoint_after_pass

    staged = gateway.settings.staging_dir / f"{os.getpid()}-{kind.lower()}-{uuid.uuid4().hex}.src"
    staged.write_bytes(body)
    try:
        sniffed = sniff_file(staged)
        what = "request" if kind == "XCXX" else "notice"
        source_path = f"sent:{what}/{_safe_name(message_id)}/{sniffed.sha256[:16]}"
        outcome = gateway.process_page(
            "national-platform", f"{kind}-{_safe_name(message_id)}.xml", source_path, staged, sniffed,
            adapter=OutgoingDocument(), keep_copy=False,
        )
    finally:
        staged.unlink(missing_ok=True)
    checkpoint_after_pass(gateway.engine, gateway.signer, gateway.settings.home)
    return outcome.exchange_id, outcome.receipt


class OutgoingDocument(Adapter):
    """Reads the request (XCXX) or notice (TBXX) the gateway sent, so it is receipted like
    any exchange. Not a plugin: nobody drops the county's own requests and notices."""

    name = OUTGOING_ADAPTER
    department = "national-platform"
    contracts = (AssistCheckRequest, PlatformNotice)
    file_types = (".xml",)
    description = "The county's own assist-check requests (协查请求 XCXX) and notices (通报 TBXX) sent to the national platform"
    columns = {"message_id": "XXBH", "urgency": "JJCD", "sent_date": "FQSJ", "direction": "FX", "subject": "DX", "categories": "XCNR/LB"}

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        with source.open_binary() as handle:
            try:
                root = etree.parse(handle, etree.XMLParser(**HARDENED)).getroot()
            except etree.XMLSyntaxError as exc:
                raise FileRejected("xml_malformed", str(exc)) from None
        if local_name(root) != "JHXX":
            raise FileRejected("xml_root", f"the root element is <{local_name(root)}>, expected <JHXX>")
        batch = PlatformBatch.model_validate({"version": root.get("BBH"), "sender": root.get("FSDW"), "receiver": root.get("JSDW")})
        for position, element in enumerate((el for el in root if local_name(el) in ("XCXX", "TBXX")), start=1):
            person = element.find("DX")
            if local_name(element) == "TBXX":
                content = element.find("TBNR")
                yield RawRow(position, {
                    "kind": "TBXX", "XXBH": element.get("XXBH"), "LB": element.get("LB"), "XYFK": element.get("XYFK"),
                    "FQSJ": element.get("FQSJ"), "DX": dict(person.attrib) if person is not None else None,
                    "text": (content.text or "") if content is not None else "", "batch": batch,
                })
                continue
            content = element.find("XCNR")
            yield RawRow(position, {
                "XXBH": element.get("XXBH"), "JJCD": element.get("JJCD"), "FQSJ": element.get("FQSJ"), "FX": element.get("FX"),
                "DX": dict(person.attrib) if person is not None else None,
                "LB": content.get("LB") if content is not None else None, "text": (content.text or "") if content is not None else "",
                "batch": batch,
            })

    def normalize(self, row: RawRow) -> AssistCheckRequest | PlatformNotice:
        get = row.fields.get
        person = get("DX") or {}
        if get("kind") == "TBXX":
            return PlatformNotice.model_validate({
                "message_id": get("XXBH"), "category": get("LB"), "feedback_required": get("XYFK"), "sent_date": get("FQSJ"),
                "subject": {"name": person.get("XM"), "id_number": person.get("GMSFHM"), "birth_date": person.get("CSRQ"),
                            "current_residence": person.get("XJZD")},
                "notice_text": get("text"), "batch": get("batch"),
            })
        return AssistCheckRequest.model_validate({
            "message_id": get("XXBH"), "urgency": get("JJCD"), "sent_date": get("FQSJ"), "direction": get("FX"),
            "subject": {"name": person.get("XM"), "id_number": person.get("GMSFHM"), "birth_date": person.get("CSRQ")},
            "categories": get("LB"), "request_text": get("text"), "batch": get("batch"),
        })


@dataclass
class OutgoingView:
    item: OutgoingRequest
    subject: str  # masked
    findings: list[tuple[str, str]]


def list_outgoing(engine: Engine, *, include_answered: bool = False, overdue: bool = False, today: dt.date | None = None) -> list[OutgoingView]:
    today = today or clock.today()
    views = []
    with Session(engine) as session:
        query = select(OutgoingRequest).order_by(OutgoingRequest.due_date, OutgoingRequest.id)  # type: ignore[arg-type]
        if not include_answered:
            query = query.where(OutgoingRequest.status != "answered")
        if overdue:
            query = query.where(OutgoingRequest.due_date < today, OutgoingRequest.status != "answered")
        for item in session.exec(query).scalars().all():
            root = etree.fromstring(item.request_xml.encode("utf-8"), etree.XMLParser(**HARDENED))
            person = root.find("XCXX/DX")
            subject = f"{mask_name(person.get('XM', ''))} {mask_id(person.get('GMSFHM', ''))}" if person is not None else ""
            findings: list[tuple[str, str]] = []
            if item.answer_record_id:
                record = session.get(Record, item.answer_record_id)
                if record is not None:
                    findings = [(f.get("category", ""), f.get("value", "")) for f in json.loads(record.payload).get("findings", [])]
            views.append(OutgoingView(item, subject, findings))
    return views


def submitted_in(engine: Engine, first: dt.date, last: dt.date, until: dt.datetime) -> int:
    """The county's own requests the platform took, sent (FQSJ) from `first` to `last`, by `until`."""
    with Session(engine) as session:
        found = session.exec(
            select(func.count(OutgoingRequest.id)).where(
                OutgoingRequest.sent_date >= first, OutgoingRequest.sent_date <= last,
                OutgoingRequest.sent_at.is_not(None), OutgoingRequest.sent_at <= until,  # type: ignore[union-attr]
            )
        ).scalar_one()
    return int(found)
