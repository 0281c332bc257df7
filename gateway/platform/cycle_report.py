"""The exchange cycle report (`gateway report cycle --month 2026-11`).

The regulations' monthly cycles, in China time:

- **submissions** (报送): from the 21st of the previous month to the 20th;
- **receipt and feedback** (接收与反馈): from the 28th of the previous month to the 27th.
  The cut-off is the end of the 27th (00:00 on the 28th).

Figures:

- per partner (department) and category (contract): exchanges and records received in
  the submission cycle;
- per asking county and kind (协查 紧急 / 急, 通报 by category): requests and notices
  registered in the feedback cycle, answered by the cut-off (on time or late), still open,
  overdue;
- the **feedback rate**: requests received in the cycle and answered (the platform took
  the FKXX) by the cut-off, divided by the requests received in the cycle; the
  regulations require at least 95%;
- the overdue items: due before the moment the report is evaluated and not answered by then.

The clock is read once (`as_of`). Figures are evaluated at the cut-off, or at `as_of`
while the cycle is still open (then the report says it is provisional). So a report
that runs across midnight of the 27th, or an answer given while it runs, changes nothing:
what happened after the evaluation moment is not counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from contracts.platform import ContentCategory

from gateway import clock
from gateway.errors import GatewayError
from gateway.masking import mask_id, mask_name
from gateway.store import Exchange, Record
from gateway.store.models import AssistCheck, NoticeItem

TARGET_RATE = 0.95
FEEDBACK_ADAPTER = "national-platform-feedback"
URGENCY_LABELS = {"1": "协查 紧急 (JJCD 1)", "2": "协查 急 (JJCD 2)"}
CATEGORY_LABELS = {member.value: member.label for member in ContentCategory}


@dataclass(frozen=True)
class Cycle:
    """The cycles of one month, and its cut-off."""

    month: str
    submission_start: dt.date
    submission_end: dt.date
    feedback_start: dt.date
    feedback_end: dt.date

    @property
    def cutoff(self) -> dt.datetime:
        """The end of the feedback cycle: 00:00 China time after its last day."""
        return clock.start_of_day(self.feedback_end + dt.timedelta(days=1))

    @property
    def feedback_opens(self) -> dt.datetime:
        return clock.start_of_day(self.feedback_start)

    @property
    def submissions_open(self) -> dt.datetime:
        return clock.start_of_day(self.submission_start)

    @property
    def submissions_close(self) -> dt.datetime:
        return clock.start_of_day(self.submission_end + dt.timedelta(days=1))


def cycle_for(month: str) -> Cycle:
    """The cycle of `month` (`YYYY-MM`)."""
    try:
        first = dt.date.fromisoformat(f"{month.strip()}-01")
    except ValueError:
        raise GatewayError(f"--month {month!r}: write the month as YYYY-MM, e.g. 2026-11") from None
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    return Cycle(
        month=f"{first:%Y-%m}",
        submission_start=previous.replace(day=21),
        submission_end=first.replace(day=20),
        feedback_start=previous.replace(day=28),
        feedback_end=first.replace(day=27),
    )


def cycle_containing(day: dt.date) -> Cycle:
    """The feedback cycle `day` belongs to (the 28th opens the next month's)."""
    first = day.replace(day=1)
    if day.day >= 28:
        first = (first + dt.timedelta(days=32)).replace(day=1)
    return cycle_for(f"{first:%Y-%m}")


@dataclass
class Row:
    section: str  # submissions | assist-checks | notices
    partner: str
    category: str
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    answered: int = 0
    late: int = 0
    open: int = 0
    overdue: int = 0


@dataclass
class OverdueItem:
    kind: str
    item_id: int
    message_id: str
    partner: str
    category: str
    subject: str  # masked
    due_date: dt.date
    days_overdue: int
    provisional: bool
    status: str


@dataclass
class CycleReport:
    cycle: Cycle
    as_of: dt.datetime
    submissions: list[Row] = field(default_factory=list)
    requests: list[Row] = field(default_factory=list)
    notices: list[Row] = field(default_factory=list)
    overdue: list[OverdueItem] = field(default_factory=list)
    received: int = 0
    answered_by_cutoff: int = 0

    @property
    def evaluated_at(self) -> dt.datetime:
        return min(self.as_of, self.cycle.cutoff)

    @property
    def provisional(self) -> bool:
        return self.as_of < self.cycle.cutoff

    @property
    def rate(self) -> float | None:
        return self.answered_by_cutoff / self.received if self.received else None

    @property
    def meets_target(self) -> bool:
        return self.rate is None or self.rate >= TARGET_RATE

    def rate_text(self) -> str:
        if self.rate is None:
            return "no requests received in the cycle"
        verdict = "meets" if self.meets_target else "BELOW"
        return f"{self.rate:.1%} ({self.answered_by_cutoff}/{self.received}), {verdict} the required {TARGET_RATE:.0%}"


def build(engine: Engine, month: str, *, as_of: dt.datetime | None = None) -> CycleReport:
    """The report of `month`, evaluated once, at min(as_of, cut-off)."""
    cycle = cycle_for(month)
    as_of = (as_of or clock.now()).astimezone(dt.UTC)
    report = CycleReport(cycle, as_of)
    at = report.evaluated_at
    eval_day = clock.in_china(at).date()
    if at == cycle.cutoff:
        eval_day = cycle.feedback_end + dt.timedelta(days=1)  # due the 27th and unanswered at the cut-off: overdue
    with Session(engine) as session:
        _submissions(session, cycle, at, report)
        _requests(session, cycle, at, eval_day, report)
        _notices(session, cycle, at, eval_day, report)
        _overdue(session, at, eval_day, report)
    return report


def _submissions(session: Session, cycle: Cycle, at: dt.datetime, report: CycleReport) -> None:
    until = min(at, cycle.submissions_close) if at >= cycle.submissions_open else cycle.submissions_open
    window = (
        Exchange.received_at >= cycle.submissions_open,
        Exchange.received_at < until,
        (Exchange.adapter.is_(None)) | (Exchange.adapter != FEEDBACK_ADAPTER),  # type: ignore[union-attr]
    )
    rows: dict[tuple[str, str], Row] = {}
    for department, count, accepted, rejected in session.exec(
        select(Exchange.department, func.count(Exchange.id), func.sum(Exchange.accepted), func.sum(Exchange.rejected))
        .where(*window)
        .group_by(Exchange.department)
    ).all():
        rows[(department, "(exchanges)")] = Row("submissions", department, "(exchanges)", count, accepted or 0, rejected or 0)
    for department, contract, count in session.exec(
        select(Exchange.department, Record.contract, func.count(Record.id))
        .join(Exchange, Exchange.id == Record.exchange_id)  # type: ignore[arg-type]
        .where(*window)
        .group_by(Exchange.department, Record.contract)
    ).all():
        rows[(department, contract)] = Row("submissions", department, contract, count, count)
    report.submissions = [rows[key] for key in sorted(rows)]


def _requests(session: Session, cycle: Cycle, at: dt.datetime, eval_day: dt.date, report: CycleReport) -> None:
    rows: dict[tuple[str, str], Row] = defaultdict(lambda: Row("assist-checks", "", ""))
    items = session.exec(
        select(AssistCheck).where(AssistCheck.received_at >= cycle.feedback_opens, AssistCheck.received_at < at)
    ).scalars()
    for item in items:
        key = (f"national-platform {item.partner}", URGENCY_LABELS.get(item.urgency, item.urgency))
        row = rows[key]
        row.partner, row.category = key
        report.received += 1
        if _tally(row, _aware(item.sent_at), item.due_date, at, eval_day):
            report.answered_by_cutoff += 1
    report.requests = [rows[key] for key in sorted(rows)]


def _notices(session: Session, cycle: Cycle, at: dt.datetime, eval_day: dt.date, report: CycleReport) -> None:
    rows: dict[tuple[str, str], Row] = defaultdict(lambda: Row("notices", "", ""))
    items = session.exec(
        select(NoticeItem).where(NoticeItem.received_at >= cycle.feedback_opens, NoticeItem.received_at < at)
    ).scalars()
    for item in items:
        kind = "通报 " + item.category + " " + CATEGORY_LABELS.get(item.category, "") + (" (反馈)" if item.feedback_required else " (回执)")
        key = (f"national-platform {item.partner}", kind)
        row = rows[key]
        row.partner, row.category = key
        _tally(row, _aware(item.handled_at), item.due_date, at, eval_day)
    report.notices = [rows[key] for key in sorted(rows)]


def _overdue(session: Session, at: dt.datetime, eval_day: dt.date, report: CycleReport) -> None:
    """Everything due before the evaluation day and not answered by the evaluation moment,
    whichever cycle it arrived in."""
    found: list[OverdueItem] = []
    for item in session.exec(
        select(AssistCheck).where(AssistCheck.due_date < eval_day, AssistCheck.received_at < at).order_by(AssistCheck.due_date)  # type: ignore[arg-type]
    ).scalars():
        sent = _aware(item.sent_at)
        if sent is not None and sent < at:
            continue
        found.append(
            OverdueItem(
                "assist-check", item.id or 0, item.message_id, item.partner, URGENCY_LABELS.get(item.urgency, item.urgency),
                _masked_subject(session, item.record_id), item.due_date,
                (eval_day - item.due_date).days, item.due_provisional, item.status,
            )
        )
    for notice in session.exec(
        select(NoticeItem).where(NoticeItem.due_date < eval_day, NoticeItem.received_at < at).order_by(NoticeItem.due_date)  # type: ignore[arg-type]
    ).scalars():
        handled = _aware(notice.handled_at)
        if handled is not None and handled < at:
            continue
        found.append(
            OverdueItem(
                "notice", notice.id or 0, notice.message_id, notice.partner, f"通报 {notice.category}",
                _masked_subject(session, notice.record_id), notice.due_date,
                (eval_day - notice.due_date).days, notice.due_provisional, notice.status,
            )
        )
    report.overdue = sorted(found, key=lambda o: (o.due_date, o.kind, o.item_id))


def _tally(row: Row, answered: dt.datetime | None, due: dt.date, at: dt.datetime, eval_day: dt.date) -> bool:
    """Count one request or notice into its row: answered by the evaluation moment (late
    when after its due day, China time), or still open (overdue when its due day has
    passed). True when answered."""
    row.received += 1
    if answered is not None and answered < at:
        row.answered += 1
        if clock.in_china(answered).date() > due:
            row.late += 1
        return True
    row.open += 1
    if due < eval_day:
        row.overdue += 1
    return False


def _masked_subject(session: Session, record_id: int | None) -> str:
    """The person a platform message is about, masked: `陈** 440781********4325`."""
    import json

    record = session.get(Record, record_id)
    subject = json.loads(record.payload).get("subject", {}) if record else {}
    return f"{mask_name(subject.get('name', ''))} {mask_id(subject.get('id_number', ''))}"


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# -- CSV ---------------------------------------------------------------------------------------

CSV_HEADER = [
    "周期 cycle", "部分 section", "伙伴 partner", "类别 category", "事项 item", "期限 due",
    "收到 received", "接收 accepted", "拒收 rejected", "按期前反馈 answered by cut-off", "其中逾期 late",
    "未反馈 open", "逾期 overdue", "说明 note",
]


def csv_rows(report: CycleReport) -> list[list[str]]:
    month = report.cycle.month
    rows: list[list[str]] = []
    for row in report.submissions + report.requests + report.notices:
        rows.append([
            month, row.section, row.partner, row.category, "", "", str(row.received), str(row.accepted), str(row.rejected),
            str(row.answered), str(row.late), str(row.open), str(row.overdue), "",
        ])
    rate = "" if report.rate is None else f"{report.rate:.4f}"
    rows.append([
        month, "feedback rate", "national-platform", "协查", "", report.cycle.feedback_end.isoformat(),
        str(report.received), "", "", str(report.answered_by_cutoff), "", "", "",
        f"rate {rate} target {TARGET_RATE:.2f}" + ("; provisional: the cycle is still open" if report.provisional else ""),
    ])
    for item in report.overdue:
        rows.append([
            month, f"overdue {item.kind}", f"national-platform {item.partner}", item.category, item.message_id,
            item.due_date.isoformat() + (" (provisional)" if item.provisional else ""), "", "", "", "", "", "", str(item.days_overdue),
            f"{item.subject}; {item.status}",
        ])
    return rows


def write_csv(report: CycleReport, path: Path) -> None:
    """UTF-8 with BOM (spreadsheets open it directly); written as NAME.part, then renamed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in csv_rows(report):
        writer.writerow([("'" + cell) if cell[:1] in ("=", "+", "-", "@") else cell for cell in row])
    partial = path.with_name(path.name + ".part")
    partial.write_text(buffer.getvalue(), encoding="utf-8-sig", newline="")
    os.replace(partial, path)
