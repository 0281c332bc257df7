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

from pydantic import BaseModel
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from gateway import clock
from gateway.store.audit import mask_text
from gateway.masking import mask_file_name, mask_receipt_body
from gateway.config import Settings
from gateway.store.models import (
    Acknowledgement,
    AssistCheck,
    AuditEvent,
    Checkpoint,
    Delivery,
    Exchange,
    FileClaim,
    PullCursor,
    Receipt,
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


def list_exchanges(
    engine: Engine,
    scope: str | None,
    *,
    department: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[ExchangeRow]:
    """Exchanges newest first, filtered; a department account's own only, whatever it asks."""
    query = (
        select(Exchange, Receipt.sequence)
        .join(Receipt, Receipt.exchange_id == Exchange.id, isouter=True)  # type: ignore[arg-type]
        .order_by(Exchange.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    if scope is not None:
        query = query.where(Exchange.department == scope)
    if department:
        query = query.where(Exchange.department == department)
    if date_from or date_to:
        start, end = china_day_bounds(date_from or EARLIEST, date_to or LATEST)
        query = query.where(Exchange.received_at >= start, Exchange.received_at < end)
    if status:
        query = query.where(Exchange.status == status)
    with Session(engine) as session:
        return [_exchange_row(e, seq) for e, seq in session.exec(query).all()]


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


class Overview(BaseModel):
    today: dt.date
    departments: list[DepartmentDay]
    queued_claims: int
    unacknowledged: list[DeliveryRow]
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
    return Overview(
        today=today,
        departments=list(counts.values()),
        queued_claims=int(queued) if scope is None else 0,
        unacknowledged=list_deliveries(engine, scope, unacknowledged=True),
        assist_checks_due=list_assist_checks(engine, scope, due_within=3),
        jobs=list_jobs(engine, settings) if scope is None else None,
        pulls=pulls,
    )


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


def list_deliveries(
    engine: Engine, scope: str | None, *, status: str | None = None, unacknowledged: bool = False, limit: int = 200
) -> list[DeliveryRow]:
    """Deliveries newest first; `unacknowledged`: delivered, not acknowledged (overdue or not)."""
    now = dt.datetime.now(dt.UTC)
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)  # type: ignore[union-attr]
    if scope is not None:
        query = query.where(Delivery.recipient == scope)
    if status:
        query = query.where(Delivery.status == status)
    elif unacknowledged:
        query = query.where(Delivery.status == "delivered")
    else:
        query = query.where(Delivery.status.notin_(("empty", "cancelled")))  # type: ignore[attr-defined]
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
    id: int
    at: dt.datetime
    action: str
    department: str
    delivery_id: int | None
    detail: str


def list_audit(engine: Engine, scope: str | None, limit: int = 200) -> list[AuditRow]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)  # type: ignore[union-attr]
    if scope is not None:
        query = query.where(AuditEvent.department == scope)
    with Session(engine) as session:
        return [
            AuditRow(id=a.id or 0, at=_aware(a.at), action=a.action, department=a.department, delivery_id=a.delivery_id,  # type: ignore[arg-type]
                     detail=mask_text(a.detail))
            for a in session.exec(query).all()
        ]

