"""What the console shows, page by page, as pydantic models shared by the HTML pages and
the JSON API (so both say the same). Every function takes the account's `scope`: None
for operators and security officers, or the one department a department account sees.

Identifiers are masked before they leave this module: row errors are stored masked,
assist-check subjects go through `CheckView.subject`, free text and platform message ids
(协查编号 XXBH, which may embed an ID number) through `mask_text`, file names through
`mask_file_name`, a receipt's body through `mask_receipt_body` (its signed bytes are
`receipt_files`, for the downloads docs/security.md lists)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from gateway import clock
from gateway.store import audit_log
from gateway.store.audit import mask_text
from gateway.store.audit_log import AuditEntry, AuditFilter
from gateway.masking import mask_file_name, mask_receipt_body
from gateway.config import Settings
from gateway.store.models import (
    Acknowledgement,
    AssistCheck,
    Checkpoint,
    Delivery,
    DeliveryRecord,
    Exchange,
    FileClaim,
    PullCursor,
    Receipt,
    Record,
    RowError,
)

EXCHANGE_STATUSES = ("received", "processed", "duplicate", "rejected")
DELIVERY_STATUSES = ("open", "held", "waiting", "prepared", "delivered", "acknowledged", "empty", "cancelled")


class OutOfScope(Exception):
    """The thing exists but belongs to another department than the account's."""


class NotFound(Exception):
    """No such thing."""


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(9998, 12, 31)


def china_day_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC bounds of the China-time days first..last (exchanges are stored in UTC); days
    outside 1900..9998 are taken as those (the time zone shift must not overflow)."""
    first, last = min(max(first, EARLIEST), LATEST), min(max(last, EARLIEST), LATEST)
    start = clock.start_of_day(first).astimezone(dt.UTC)
    end = clock.start_of_day(last + dt.timedelta(days=1)).astimezone(dt.UTC)
    return start, end


# -- exchanges ---------------------------------------------------------------------------------


class ExchangeRow(BaseModel):
    id: int
    department: str
    file_name: str
    adapter: str | None
    status: str
    duplicate_of: int | None
    reason: str | None
    rows: int
    accepted: int
    rejected: int
    duplicates: int
    corrected: int
    warnings: int
    received_at: dt.datetime
    processed_at: dt.datetime | None
    receipt_id: str | None


def _exchange_row(e: Exchange, sequence: int | None) -> ExchangeRow:
    return ExchangeRow(
        id=e.id or 0, department=e.department, file_name=mask_file_name(e.file_name), adapter=e.adapter, status=e.status,
        duplicate_of=e.duplicate_of, reason=mask_text(e.reason) if e.reason else None, rows=e.rows, accepted=e.accepted,
        rejected=e.rejected, duplicates=e.duplicates, corrected=e.corrected, warnings=e.warnings,
        received_at=_aware(e.received_at), processed_at=_aware(e.processed_at),  # type: ignore[arg-type]
        receipt_id=f"R{sequence:08d}" if sequence else None,
    )


@dataclass(frozen=True)
class ExchangeFilter:
    """What a list of exchanges is narrowed to (the page's and the API's filters)."""

    department: str | None = None
    adapter: str | None = None
    status: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    file_name: str | None = None
    """part of the file name as the sender gave it (case-insensitive)"""

    def apply(self, query: Any, scope: str | None) -> Any:
        if scope is not None:
            query = query.where(Exchange.department == scope)
        if self.department:
            query = query.where(Exchange.department == self.department)
        if self.adapter:
            query = query.where(Exchange.adapter == self.adapter)
        if self.date_from or self.date_to:
            start, end = china_day_bounds(self.date_from or EARLIEST, self.date_to or LATEST)
            query = query.where(Exchange.received_at >= start, Exchange.received_at < end)
        if self.status:
            query = query.where(Exchange.status == self.status)
        if self.file_name:
            query = query.where(func.lower(Exchange.file_name).contains(self.file_name.lower(), autoescape=True))
        return query


def list_exchanges(engine: Engine, scope: str | None, where: ExchangeFilter, *, limit: int = 100, offset: int = 0) -> list[ExchangeRow]:
    """Exchanges newest first, narrowed by `where`, `limit` of them from `offset`; a department
    account's own only, whatever it asks."""
    query = where.apply(
        select(Exchange, Receipt.sequence)
        .join(Receipt, Receipt.exchange_id == Exchange.id, isouter=True)  # type: ignore[arg-type]
        .order_by(Exchange.id.desc())  # type: ignore[union-attr]
        .offset(offset)
        .limit(limit),
        scope,
    )
    with Session(engine) as session:
        return [_exchange_row(e, seq) for e, seq in session.exec(query).all()]


def count_exchanges(engine: Engine, scope: str | None, where: ExchangeFilter) -> int:
    """How many exchanges the filter matches (the list's total)."""
    query = where.apply(select(func.count()).select_from(Exchange), scope)
    with Session(engine) as session:
        return int(session.exec(query).one())


class RowIssue(BaseModel):
    row_number: int
    level: str
    column_name: str
    field: str
    value_masked: str
    code: str
    reason_zh: str
    reason_en: str


class ReceiptInfo(BaseModel):
    receipt_id: str
    sequence: int
    sha256: str
    previous_sha256: str
    key_fingerprint: str
    created_at: dt.datetime
    merkle_root: str | None
    merkle_size: int | None
    body: str
    """the receipt's JSON (counts and hashes, no record) with the sender's file name and any
    other text masked (`mask_receipt_body`): not the signed bytes, which are
    /exchanges/N/receipt.json and /api/exchanges/N/receipt"""


class ExchangeDetail(BaseModel):
    exchange: ExchangeRow
    sha256: str
    size: int
    encoding: str | None
    issues: list[RowIssue]
    receipt: ReceiptInfo | None
    supersedes: int | None = None
    superseded_by: int | None = None
    """the exchange that reprocessed this one (重新处理), or a changed file's new content"""


def _scoped_exchange(session: Session, scope: str | None, exchange_id: int) -> Exchange:
    exchange = session.get(Exchange, exchange_id)
    if exchange is None:
        raise NotFound(f"No exchange {exchange_id}.")
    if scope is not None and exchange.department != scope:
        raise OutOfScope(f"Exchange {exchange_id} is not {scope}'s.")
    return exchange


def exchange_detail(engine: Engine, scope: str | None, exchange_id: int) -> ExchangeDetail:
    with Session(engine) as session:
        e = _scoped_exchange(session, scope, exchange_id)
        receipt = session.exec(select(Receipt).where(Receipt.exchange_id == exchange_id)).first()
        issues = session.exec(
            select(RowError).where(RowError.exchange_id == exchange_id).order_by(RowError.row_number, RowError.id)  # type: ignore[arg-type]
        ).all()
        info = None
        if receipt is not None:
            merkle = json.loads(receipt.body).get("merkle", {})
            info = ReceiptInfo(
                receipt_id=f"R{receipt.sequence:08d}", sequence=receipt.sequence, sha256=receipt.sha256,
                previous_sha256=receipt.previous_sha256, key_fingerprint=receipt.key_fingerprint,
                created_at=_aware(receipt.created_at), merkle_root=merkle.get("root"), merkle_size=merkle.get("size"),  # type: ignore[arg-type]
                body=mask_receipt_body(receipt.body),
            )
        return ExchangeDetail(
            exchange=_exchange_row(e, receipt.sequence if receipt else None), sha256=e.sha256, size=e.size, encoding=e.encoding,
            issues=[
                RowIssue(row_number=i.row_number, level=i.level, column_name=i.column_name, field=i.field,
                         value_masked=mask_text(i.value_masked), code=i.code, reason_zh=i.reason_zh, reason_en=i.reason_en)
                for i in issues
            ],
            receipt=info,
            supersedes=e.supersedes,
            superseded_by=session.exec(select(Exchange.id).where(Exchange.supersedes == exchange_id)).first(),
        )


def receipt_files(engine: Engine, scope: str | None, exchange_id: int) -> tuple[str, bytes, bytes]:
    """The receipt of an exchange exactly as signed: (file stem `R00000012`, body, signature)."""
    with Session(engine) as session:
        _scoped_exchange(session, scope, exchange_id)
        receipt = session.exec(select(Receipt).where(Receipt.exchange_id == exchange_id)).first()
        if receipt is None:
            raise NotFound(f"Exchange {exchange_id} has no receipt.")
        # Not the sender's file name (it may be personal): the receipt's own number.
        stem = f"R{receipt.sequence:08d}"
        return stem, receipt.body.encode("utf-8"), receipt.signature.encode("ascii")


def check_exchange_scope(engine: Engine, scope: str | None, exchange_id: int) -> None:
    with Session(engine) as session:
        _scoped_exchange(session, scope, exchange_id)


# -- overview ----------------------------------------------------------------------------------


class DepartmentDay(BaseModel):
    department: str
    exchanges: int
    accepted: int
    rejected: int
    refused_files: int
    duplicates: int
    waiting_files: int | None
    """files in the inbox not taken yet (None: the mailbox is on an SFTP server)"""


class JobInfo(BaseModel):
    name: str
    schedule: str
    last_started_at: dt.datetime | None
    last_status: str | None
    last_error: str | None
    last_summary: str | None
    next_run_at: dt.datetime | None
    runs: int
    failures: int
    running_on: str | None


class AssistCheckRow(BaseModel):
    id: int
    message_id: str
    department: str
    """whose exchange brought it (the national platform's)"""
    partner: str
    urgency: str
    categories: str
    subject: str
    """masked name and ID number"""
    sent_date: dt.date
    due_date: dt.date
    days_left: int
    due_rule: str
    status: str
    draft_result: str | None


class DeliveryRow(BaseModel):
    id: int
    recipient: str
    agreement: str
    contract: str
    status: str
    records: int
    corrections: int
    file_name: str | None
    delivered_at: dt.datetime | None
    ack_due_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    overdue: bool
    reason: str | None


class WaitingFile(BaseModel):
    """A file held in an inbox with a note in the outbox (待处理): waiting for its signature,
    or unreadable by the gateway's account."""

    department: str
    file_name: str
    """masked"""
    why: str
    since: dt.datetime


class Overview(BaseModel):
    today: dt.date
    departments: list[DepartmentDay]
    queued_claims: int
    unacknowledged: list[DeliveryRow]
    """acknowledgements overdue or due within a day, overdue first (at most OVERVIEW_ITEMS)"""
    acks_overdue: int = 0
    acks_due_soon: int = 0
    """due within a day, not overdue"""
    acks_open: int = 0
    """every delivery delivered and not acknowledged yet"""
    refused_today: list[ExchangeRow] = []
    refused_today_total: int = 0
    held: list[DeliveryRow] = []
    held_total: int = 0
    waiting: list[WaitingFile] = []
    assist_checks_due: list[AssistCheckRow]
    jobs: list[JobInfo] | None
    """None for a department account (jobs are the gateway's, not a department's)"""
    pulls: dict[str, dt.datetime | None]
    reconciliation_gaps: dict[str, int] | None = None


def served_departments(settings: Settings) -> list[str]:
    """The departments polled: gateway.toml's, then installed adapters' others
    (gateway/exchange/home.py `effective_departments`)."""
    from gateway.config import effective_departments
    from gateway.plugins import get_manager

    return effective_departments(settings, get_manager().adapters().values())


def overview(engine: Engine, settings: Settings, scope: str | None) -> Overview:
    today = clock.today()
    start, end = china_day_bounds(today, today)
    departments = [scope] if scope else served_departments(settings)
    counts: dict[str, DepartmentDay] = {
        d: DepartmentDay(department=d, exchanges=0, accepted=0, rejected=0, refused_files=0, duplicates=0, waiting_files=None)
        for d in departments
    }
    with Session(engine) as session:
        rows = session.exec(
            select(Exchange.department, Exchange.status, func.count(), func.sum(Exchange.accepted), func.sum(Exchange.rejected))
            .where(Exchange.received_at >= start, Exchange.received_at < end)
            .group_by(Exchange.department, Exchange.status)
        ).all()
        queued = session.exec(select(func.count()).select_from(FileClaim).where(FileClaim.worker.is_(None))).one()  # type: ignore[union-attr]
        pulls = {c.source: _aware(c.checked_at) for c in session.exec(select(PullCursor)).all()} if scope is None else {}
    for department, status, n, accepted, rejected in rows:
        if department not in counts:
            if scope is not None:
                continue
            counts[department] = DepartmentDay(department=department, exchanges=0, accepted=0, rejected=0, refused_files=0,
                                               duplicates=0, waiting_files=None)
        day = counts[department]
        day.exchanges += n
        day.accepted += int(accepted or 0)
        day.rejected += int(rejected or 0)
        if status == "rejected":
            day.refused_files += n
        if status == "duplicate":
            day.duplicates += n
    _count_waiting(settings, counts)
    now = dt.datetime.now(dt.UTC)
    overdue = DeliveryFilter(ack_due_before=now)
    due_soon = DeliveryFilter(ack_due_before=now + dt.timedelta(days=1), ack_due_after=now)
    held = DeliveryFilter(status="held")
    refused = ExchangeFilter(status="rejected", date_from=today, date_to=today)
    urgent = list_deliveries(engine, scope, overdue, limit=OVERVIEW_ITEMS)
    urgent += list_deliveries(engine, scope, due_soon, limit=OVERVIEW_ITEMS - len(urgent)) if len(urgent) < OVERVIEW_ITEMS else []
    return Overview(
        today=today,
        departments=list(counts.values()),
        queued_claims=int(queued) if scope is None else 0,
        unacknowledged=urgent,
        acks_overdue=count_deliveries(engine, scope, overdue),
        acks_due_soon=count_deliveries(engine, scope, due_soon),
        acks_open=count_deliveries(engine, scope, DeliveryFilter(unacknowledged=True)),
        refused_today=list_exchanges(engine, scope, refused, limit=OVERVIEW_ITEMS),
        refused_today_total=count_exchanges(engine, scope, refused),
        held=list_deliveries(engine, scope, held, limit=OVERVIEW_ITEMS),
        held_total=count_deliveries(engine, scope, held),
        waiting=_waiting_files(settings, departments),
        assist_checks_due=list_assist_checks(engine, scope, due_within=3),
        jobs=list_jobs(engine, settings) if scope is None else None,
        pulls=pulls,
    )


OVERVIEW_ITEMS = 10  # each "what needs doing" list shows this many; its count links to the whole list


def _waiting_files(settings: Settings, departments: list[str]) -> list[WaitingFile]:
    """The files held with a pending note (gateway/intake/pending.py) in the local outboxes,
    oldest first; the note's first words say why."""
    from gateway.intake.pending import SUFFIX

    found: list[WaitingFile] = []
    for department in departments:
        outbox = settings.mailbox_root / department / "outbox"
        try:
            notes = [p for p in outbox.iterdir() if p.name.endswith(SUFFIX)]
        except OSError:
            continue  # a remote or missing outbox: nothing shown
        for note in notes:
            try:
                head = note.read_bytes()[:600].decode("utf-8-sig", "replace")
                since = dt.datetime.fromtimestamp(note.stat().st_mtime, dt.UTC)
            except OSError:
                continue
            why = ("等待签名 waiting for its signature" if "数字签名" in head
                   else "网关无权读取 the gateway may not read it" if "无权读取" in head else "待处理 held")
            found.append(WaitingFile(department=department, file_name=mask_file_name(note.name[: -len(SUFFIX)]), why=why,
                                     since=since.replace(microsecond=0)))
    return sorted(found, key=lambda w: w.since)[:OVERVIEW_ITEMS]


def _count_waiting(settings: Settings, counts: dict[str, DepartmentDay]) -> None:
    from gateway.intake.transports.local import LocalMailbox
    from gateway.routing.acks import is_acknowledgement

    remote = {d for server in settings.sftp.values() for d in server.departments}
    mailbox = LocalMailbox(settings.mailbox_root)
    for department, day in counts.items():
        if department in remote:
            continue
        try:
            found = mailbox.list_inbox(department)
        except Exception:  # noqa: BLE001 - an unreadable inbox shows as unknown, not as an error page
            continue
        day.waiting_files = sum(1 for f in found if not is_acknowledgement(f.name) and not f.name.endswith(".asc"))


# -- deliveries and acknowledgements -----------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFilter:
    """What a list of deliveries is narrowed to."""

    status: str | None = None
    unacknowledged: bool = False
    recipient: str | None = None
    agreement: str | None = None
    contract: str | None = None
    exchange_id: int | None = None
    """only the deliveries that carried records of this exchange"""
    ack_due_before: dt.datetime | None = None
    """delivered, not acknowledged, and due before this moment (now: overdue)"""
    ack_due_after: dt.datetime | None = None

    def apply(self, query: Any, scope: str | None) -> Any:
        if scope is not None:
            query = query.where(Delivery.recipient == scope)
        if self.ack_due_before is not None or self.ack_due_after is not None:
            query = query.where(Delivery.status == "delivered")
            if self.ack_due_before is not None:
                query = query.where(Delivery.ack_due_at < self.ack_due_before)  # type: ignore[operator]
            if self.ack_due_after is not None:
                query = query.where(Delivery.ack_due_at >= self.ack_due_after)  # type: ignore[operator]
        if self.recipient:
            query = query.where(Delivery.recipient == self.recipient)
        if self.agreement:
            query = query.where(Delivery.agreement == self.agreement)
        if self.contract:
            query = query.where(Delivery.contract == self.contract)
        if self.status:
            query = query.where(Delivery.status == self.status)
        elif self.unacknowledged:
            query = query.where(Delivery.status == "delivered")
        else:
            query = query.where(Delivery.status.notin_(("empty", "cancelled")))  # type: ignore[attr-defined]
        if self.exchange_id is not None:
            carried = (
                select(DeliveryRecord.delivery_id)
                .join(Record, Record.id == DeliveryRecord.record_id)  # type: ignore[arg-type]
                .where(Record.exchange_id == self.exchange_id)
            )
            query = query.where(Delivery.id.in_(carried))  # type: ignore[union-attr]
        return query


def count_deliveries(engine: Engine, scope: str | None, where: DeliveryFilter) -> int:
    with Session(engine) as session:
        return int(session.exec(where.apply(select(func.count()).select_from(Delivery), scope)).one())


def list_deliveries(engine: Engine, scope: str | None, where: DeliveryFilter, *, limit: int = 200, offset: int = 0) -> list[DeliveryRow]:
    """Deliveries newest first, narrowed by `where`, `limit` of them from `offset`; a
    department account gets those it receives."""
    now = dt.datetime.now(dt.UTC)
    query = where.apply(select(Delivery).order_by(Delivery.id.desc()).offset(offset).limit(limit), scope)  # type: ignore[union-attr]
    with Session(engine) as session:
        rows = session.exec(query).all()
    return [
        DeliveryRow(
            id=d.id or 0, recipient=d.recipient, agreement=d.agreement, contract=d.contract, status=d.status, records=d.records,
            corrections=d.corrections, file_name=mask_text(d.file_name) if d.file_name else None, delivered_at=_aware(d.delivered_at), ack_due_at=_aware(d.ack_due_at),
            acknowledged_at=_aware(d.acknowledged_at),
            overdue=d.status == "delivered" and d.ack_due_at is not None and _aware(d.ack_due_at) < now,  # type: ignore[operator]
            reason=mask_text(d.reason) if d.reason else None,
        )
        for d in rows
    ]


class AcknowledgementRow(BaseModel):
    id: int
    department: str
    file_name: str
    delivery_id: int | None
    status: str
    reason: str | None
    signed_by: str | None
    received_at: dt.datetime


def list_acknowledgements(engine: Engine, scope: str | None, limit: int = 100) -> list[AcknowledgementRow]:
    query = select(Acknowledgement).order_by(Acknowledgement.id.desc()).limit(limit)  # type: ignore[union-attr]
    if scope is not None:
        query = query.where(Acknowledgement.department == scope)
    with Session(engine) as session:
        return [
            AcknowledgementRow(id=a.id or 0, department=a.department, file_name=mask_file_name(a.file_name), delivery_id=a.delivery_id,
                               status=a.status, reason=mask_text(a.reason) if a.reason else None, signed_by=a.signed_by,
                               received_at=_aware(a.received_at))  # type: ignore[arg-type]
            for a in session.exec(query).all()
        ]


# -- assist-checks -----------------------------------------------------------------------------


def list_assist_checks(
    engine: Engine, scope: str | None, *, due_within: int | None = None, include_answered: bool = False
) -> list[AssistCheckRow]:
    """The deadlines list of `gateway assist-checks list` (gateway/platform/assist_checks.py), masked.
    An assist-check belongs to the department whose exchange brought it (the platform's)."""
    from gateway.platform.assist_checks import list_checks

    today = clock.today()
    with Session(engine) as session:
        departments = dict(
            session.exec(select(AssistCheck.id, Exchange.department).join(Exchange, Exchange.id == AssistCheck.exchange_id)).all()  # type: ignore[arg-type]
        )
    if scope is not None and scope not in departments.values():
        return []
    rows = []
    for view in list_checks(engine, due_within=due_within, include_answered=include_answered):
        item = view.item
        department = departments.get(item.id, "")
        if scope is not None and department != scope:
            continue
        rows.append(
            AssistCheckRow(
                id=item.id or 0, message_id=mask_text(item.message_id), department=department, partner=item.partner, urgency=item.urgency,
                categories=item.categories, subject=view.subject, sent_date=item.sent_date, due_date=item.due_date,
                days_left=(item.due_date - today).days, due_rule=item.due_rule, status=item.status, draft_result=view.draft.result,
            )
        )
    return rows


class NoticeRow(BaseModel):
    """A notice (通报) from the national platform, its subject masked."""

    id: int
    message_id: str
    department: str
    partner: str
    category: str
    feedback_required: bool
    subject: str
    sent_date: dt.date
    due_date: dt.date
    days_left: int
    status: str


def list_notices(engine: Engine, scope: str | None, *, include_handled: bool = False) -> list[NoticeRow]:
    """`gateway notices list` (gateway/platform/assist_checks.py), masked and scoped like assist-checks."""
    from gateway.platform.assist_checks import list_notices as notices
    from gateway.store.models import NoticeItem

    today = clock.today()
    with Session(engine) as session:
        departments = dict(
            session.exec(select(NoticeItem.id, Exchange.department).join(Exchange, Exchange.id == NoticeItem.exchange_id)).all()  # type: ignore[arg-type]
        )
    rows = []
    for view in notices(engine, include_handled=include_handled):
        item = view.item
        department = departments.get(item.id, "")
        if scope is not None and department != scope:
            continue
        rows.append(
            NoticeRow(id=item.id or 0, message_id=mask_text(item.message_id), department=department, partner=item.partner, category=item.category,
                      feedback_required=item.feedback_required, subject=view.subject, sent_date=item.sent_date, due_date=item.due_date,
                      days_left=(item.due_date - today).days, status=item.status)
        )
    return rows


class DeadlineRuleRow(BaseModel):
    name: str
    days: int
    count: str
    start: str
    roll_to_workday: bool
    description: str


def deadline_rules(settings: Settings) -> list[DeadlineRuleRow]:
    """`gateway deadlines rules`: the regulations' rules with gateway.toml's overrides."""
    from gateway.obligations.deadlines import Deadlines

    return [
        DeadlineRuleRow(name=name, days=rule.days, count=rule.count, start=rule.start, roll_to_workday=rule.roll_to_workday,
                        description=rule.description)
        for name, rule in Deadlines(settings.deadlines).rules.items()
    ]


# -- ledger ------------------------------------------------------------------------------------


class CheckpointRow(BaseModel):
    id: int
    tree_size: int
    root: str
    key_fingerprint: str
    created_at: dt.datetime


class LedgerSummary(BaseModel):
    receipts: int
    latest_receipt_sha256: str | None
    checkpoints: list[CheckpointRow]


def ledger_summary(engine: Engine, limit: int = 50) -> LedgerSummary:
    with Session(engine) as session:
        count = session.exec(select(func.count()).select_from(Receipt)).one()
        latest = session.exec(select(Receipt).order_by(Receipt.sequence.desc()).limit(1)).first()  # type: ignore[attr-defined]
        checkpoints = session.exec(select(Checkpoint).order_by(Checkpoint.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
    return LedgerSummary(
        receipts=int(count),
        latest_receipt_sha256=latest.sha256 if latest else None,
        checkpoints=[
            CheckpointRow(id=c.id or 0, tree_size=c.tree_size, root=c.root, key_fingerprint=c.key_fingerprint, created_at=_aware(c.created_at))  # type: ignore[arg-type]
            for c in checkpoints
        ],
    )


# -- jobs and adapters -------------------------------------------------------------------------


class _SettingsOnly:
    """`gateway_jobs` reads only the gateway's settings to list the jobs."""

    def __init__(self, settings: Settings):
        self.settings = settings


def list_jobs(engine: Engine, settings: Settings) -> list[JobInfo]:
    from gateway.scheduler.runner import gateway_jobs, job_rows

    return [
        JobInfo(name=r.name, schedule=r.schedule, last_started_at=r.last_started_at, last_status=r.last_status,
                last_error=mask_text(r.last_error) if r.last_error else None,
                last_summary=mask_text(r.last_summary) if r.last_summary else None, next_run_at=r.next_run_at, runs=r.runs,
                failures=r.failures, running_on=r.running_on)
        for r in job_rows(engine, gateway_jobs(_SettingsOnly(settings)))
    ]


class AdapterRow(BaseModel):
    name: str
    department: str
    contracts: list[str]
    file_types: list[str]
    package: str
    version: str


def list_adapters() -> list[AdapterRow]:
    from gateway.plugins import get_manager

    return [
        AdapterRow(name=i.name, department=i.department, contracts=list(i.contracts), file_types=list(i.file_types),
                   package=i.package, version=i.version)
        for i in sorted(get_manager().adapters().values(), key=lambda i: i.name)
    ]


class PullRow(BaseModel):
    source: str
    pages: int
    checked_at: dt.datetime | None
    updated_at: dt.datetime | None
    blocked: bool
    blocked_reason: str | None


def list_pulls(engine: Engine) -> list[PullRow]:
    with Session(engine) as session:
        return [
            PullRow(source=c.source, pages=c.pages, checked_at=_aware(c.checked_at), updated_at=_aware(c.updated_at),
                    blocked=c.blocked_exchange_id is not None, blocked_reason=mask_text(c.blocked_reason) if c.blocked_reason else None)
            for c in session.exec(select(PullCursor).order_by(PullCursor.source)).all()
        ]


# -- the audit log -----------------------------------------------------------------------------


class AuditRow(BaseModel):
    """One entry of the audit log, masked. `id` counts within its `source`: `routing` (the
    gateway's deliveries, acknowledgements, holds) or `console` (sign-ins, refusals, views)."""

    id: int
    at: dt.datetime
    action: str
    department: str
    delivery_id: int | None
    detail: str
    source: str = "routing"
    user: str | None = None
    role: str | None = None
    client: str | None = None
    route: str | None = None
    subjects: str = ""


class AuditList(BaseModel):
    total: int
    limit: int
    offset: int
    rows: list[AuditRow]


def _audit_row(e: AuditEntry) -> AuditRow:
    return AuditRow(id=e.id, at=e.at, action=e.action, department=e.department, delivery_id=e.delivery_id, detail=mask_text(e.detail),
                    source=e.source, user=e.user, role=e.role, client=e.client, route=e.route, subjects=mask_text(e.subjects))


def list_audit(routing: Engine, console: Engine, filters: AuditFilter = AuditFilter(), *, limit: int = 100, offset: int = 0) -> AuditList:
    """Both audit logs as one list, newest first, filtered and paged (gateway/store/audit_log.py)."""
    found = audit_log.page(routing, console, filters, limit=limit, offset=offset)
    return AuditList(total=found.total, limit=limit, offset=offset, rows=[_audit_row(e) for e in found.entries])

