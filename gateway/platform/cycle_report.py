"""The exchange cycle report (`gateway report cycle --month 2026-11`).

The regulations' monthly cycles, in China time:

- **submissions** (报送): from the 21st of the previous month to the 20th;
- **receipt and feedback** (接收与反馈): from the 28th of the previous month to the 27th.
  The cut-off is the end of the 27th (00:00 on the 28th).

Figures:

- per partner (department) and category (contract): exchanges and records received in
  the submission cycle;
- per asking county and kind (协查 紧急 / 急, 通报 by category): the requests and notices
  **the other side submitted** in the month's submission period (their FQSJ from the 21st
  of the previous month to the 20th, whenever the gateway pulled them), answered by the
  cut-off (on time or late), still open, overdue;
- the **feedback rate** (反馈率), as the regulation defines it: of those requests, the
  share whose answer left (the platform took the FKXX) before the end of the 27th, China
  time; at least 95% is required. A request submitted on the 21st belongs to the next
  month. The 20th and the 27th are fixed days: they never roll to a working day. The
  notices' rate is counted the same way (handled, or their feedback sent, by the cut-off);
- the quarter's figures (`quarter`): the three months' rates and the quarter's, pooled
  (all the quarter's requests answered in time over all received), as the province ranks;
- the overdue items: due before the moment the report is evaluated and not answered by then.

The clock is read once (`as_of`). Figures are evaluated at the cut-off, or at `as_of`
while the cycle is still open (then the report says it is provisional); a request counts
once the gateway holds it at `as_of`. So a report
that runs across midnight of the 27th, or an answer given while it runs, changes nothing:
what happened after the evaluation moment is not counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from contracts.platform import ContentCategory

from gateway import clock
from gateway.errors import GatewayError
from gateway.masking import mask_id, mask_identifiers, mask_name
from gateway.store import Exchange, Record
from gateway.store.models import AssistCheck, NoticeItem

TARGET_RATE = 0.95
FEEDBACK_ADAPTER = "national-platform-feedback"
SENT_ADAPTERS = (FEEDBACK_ADAPTER, "national-platform-outgoing")  # what the gateway itself sent
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
class Rate:
    """反馈率: `answered_in_time` of `received`, against the required 95%."""

    received: int = 0
    answered_in_time: int = 0

    @property
    def rate(self) -> float | None:
        return self.answered_in_time / self.received if self.received else None

    @property
    def meets_target(self) -> bool:
        return self.rate is None or self.rate >= TARGET_RATE

    def add(self, other: Rate) -> None:
        self.received += other.received
        self.answered_in_time += other.answered_in_time

    def as_dict(self) -> dict[str, Any]:
        rate = self.rate
        return {"received": self.received, "answered_in_time": self.answered_in_time,
                "rate": None if rate is None else round(rate, 6), "meets_target": self.meets_target}

    def text(self) -> str:
        if self.rate is None:
            return "本期无协查请求 no requests submitted to the county in the cycle"
        verdict = "达标 meets" if self.meets_target else "未达标 BELOW"
        return f"{self.rate:.1%} ({self.answered_in_time}/{self.received}), {verdict} the required {TARGET_RATE:.0%}"


@dataclass
class CycleReport:
    cycle: Cycle
    as_of: dt.datetime
    submissions: list[Row] = field(default_factory=list)
    requests: list[Row] = field(default_factory=list)
    notices: list[Row] = field(default_factory=list)
    overdue: list[OverdueItem] = field(default_factory=list)
    request_rate: Rate = field(default_factory=Rate)
    notice_rate: Rate = field(default_factory=Rate)
    submitted_requests: int = 0
    """the county's own requests the platform took, sent in the submission period"""
    submitted_notices: int = 0
    """the county's own notices (通报) the platform took, sent in the submission period"""

    @property
    def submitted_nothing(self) -> bool:
        """"每个交换周期 … 提供流动人口查询信息个数不能有空白": the county sent nothing of its own."""
        return self.submitted_requests == 0

    @property
    def received(self) -> int:
        """Requests the other side submitted in the month's submission period (held at `as_of`)."""
        return self.request_rate.received

    @property
    def answered_by_cutoff(self) -> int:
        return self.request_rate.answered_in_time

    @property
    def evaluated_at(self) -> dt.datetime:
        return min(self.as_of, self.cycle.cutoff)

    @property
    def provisional(self) -> bool:
        return self.as_of < self.cycle.cutoff

    @property
    def rate(self) -> float | None:
        return self.request_rate.rate

    @property
    def meets_target(self) -> bool:
        return self.request_rate.meets_target

    def rate_text(self) -> str:
        return self.request_rate.text()

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON (`gateway report cycle --json`)."""
        c = self.cycle
        return {
            "month": c.month,
            "submission_period": [c.submission_start.isoformat(), c.submission_end.isoformat()],
            "feedback_period": [c.feedback_start.isoformat(), c.feedback_end.isoformat()],
            "cutoff": clock.in_china(c.cutoff).isoformat(),
            "evaluated_at": clock.in_china(self.evaluated_at).isoformat(),
            "provisional": self.provisional,
            "target": TARGET_RATE,
            "requests": self.request_rate.as_dict(),
            "notices": self.notice_rate.as_dict(),
            "overdue": len(self.overdue),
            # Notices the county sends (通报 TBXX) are not built yet: null, not a made-up 0.
            "submitted": {"requests": self.submitted_requests, "notices": self.submitted_notices, "blank": self.submitted_nothing},
        }


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
    from gateway.platform import notices_out
    from gateway.platform.outgoing import submitted_in

    until = min(as_of, cycle.submissions_close)
    report.submitted_requests = submitted_in(engine, cycle.submission_start, cycle.submission_end, until)
    report.submitted_notices = notices_out.submitted_in(engine, cycle.submission_start, cycle.submission_end, until)
    return report


def _submissions(session: Session, cycle: Cycle, at: dt.datetime, report: CycleReport) -> None:
    until = min(at, cycle.submissions_close) if at >= cycle.submissions_open else cycle.submissions_open
    window = (
        Exchange.received_at >= cycle.submissions_open,
        Exchange.received_at < until,
        (Exchange.adapter.is_(None)) | (Exchange.adapter.not_in(SENT_ADAPTERS)),  # type: ignore[union-attr]
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
    """The requests submitted (FQSJ) in the submission period, held by `as_of`."""
    rows: dict[tuple[str, str], Row] = defaultdict(lambda: Row("assist-checks", "", ""))
    items = session.exec(
        select(AssistCheck).where(
            AssistCheck.sent_date >= cycle.submission_start, AssistCheck.sent_date <= cycle.submission_end,
            AssistCheck.received_at <= report.as_of,
        )
    ).scalars()
    for item in items:
        key = (f"national-platform {item.partner}", URGENCY_LABELS.get(item.urgency, item.urgency))
        row = rows[key]
        row.partner, row.category = key
        report.request_rate.received += 1
        if _tally(row, _aware(item.sent_at), item.due_date, at, eval_day, report):
            report.request_rate.answered_in_time += 1
    report.requests = [rows[key] for key in sorted(rows)]


def _notices(session: Session, cycle: Cycle, at: dt.datetime, eval_day: dt.date, report: CycleReport) -> None:
    rows: dict[tuple[str, str], Row] = defaultdict(lambda: Row("notices", "", ""))
    items = session.exec(
        select(NoticeItem).where(
            NoticeItem.sent_date >= cycle.submission_start, NoticeItem.sent_date <= cycle.submission_end,
            NoticeItem.received_at <= report.as_of,
        )
    ).scalars()
    for item in items:
        kind = "通报 " + item.category + " " + CATEGORY_LABELS.get(item.category, "") + (" (反馈)" if item.feedback_required else " (回执)")
        key = (f"national-platform {item.partner}", kind)
        row = rows[key]
        row.partner, row.category = key
        report.notice_rate.received += 1
        if _tally(row, _aware(item.handled_at), item.due_date, at, eval_day, report):
            report.notice_rate.answered_in_time += 1
    report.notices = [rows[key] for key in sorted(rows)]


# -- the quarter (季度排序) ----------------------------------------------------------------------


@dataclass
class QuarterReport:
    """The three months' rates and the quarter's, pooled: what the province ranks on."""

    quarter: str
    months: list[CycleReport]
    requests: Rate
    notices: Rate

    @property
    def provisional(self) -> bool:
        return any(month.provisional for month in self.months)

    def as_dict(self) -> dict[str, Any]:
        return {
            "quarter": self.quarter,
            "provisional": self.provisional,
            "target": TARGET_RATE,
            "months": [
                {"month": m.cycle.month, "provisional": m.provisional, "requests": m.request_rate.as_dict(), "notices": m.notice_rate.as_dict()}
                for m in self.months
            ],
            "requests": self.requests.as_dict(),
            "notices": self.notices.as_dict(),
        }


def quarter_months(quarter: str) -> list[str]:
    """`2026Q4` -> ["2026-10", "2026-11", "2026-12"]."""
    found = re.fullmatch(r"\s*(\d{4})\s*-?\s*[Qq]([1-4])\s*", quarter or "")
    if not found:
        raise GatewayError(f"--quarter {quarter!r}: write the quarter as YYYYQn, e.g. 2026Q4")
    year, number = int(found.group(1)), int(found.group(2))
    return [f"{year}-{month:02d}" for month in range(3 * number - 2, 3 * number + 1)]


def build_quarter(engine: Engine, quarter: str, *, as_of: dt.datetime | None = None) -> QuarterReport:
    """Each month's report at the same moment, and the pooled rates."""
    as_of = as_of or clock.now()
    months = [build(engine, month, as_of=as_of) for month in quarter_months(quarter)]
    requests, notices = Rate(), Rate()
    for month in months:
        requests.add(month.request_rate)
        notices.add(month.notice_rate)
    label = quarter_months(quarter)[0][:4] + "Q" + str((int(quarter_months(quarter)[0][5:]) + 2) // 3)
    return QuarterReport(label, months, requests, notices)


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


def _tally(row: Row, answered: dt.datetime | None, due: dt.date, at: dt.datetime, eval_day: dt.date, report: CycleReport) -> bool:
    """Count one request or notice into its row: answered by the evaluation moment (before
    the cut-off, and not after `as_of`: a pinned clock answers and reports at the same
    instant), late when after its due day, China time; or still open (overdue when its due
    day has passed). True when answered."""
    row.received += 1
    if answered is not None and answered < report.cycle.cutoff and answered <= report.as_of:
        row.answered += 1
        if clock.in_china(answered).date() > due:
            row.late += 1
        return True
    row.open += 1
    if due < eval_day:
        row.overdue += 1
    return False


def _masked_subject(session: Session, record_id: int | None) -> str:
    """The person a platform message is about, masked: `陈** 440781***********5`."""
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
    "周期", "部分", "对方地区/单位", "类别", "事项", "期限",
    "收到", "接收", "拒收", "截止日前反馈", "其中超期反馈",
    "未反馈", "逾期", "说明",
]
SECTION_LABELS = {"submissions": "报送", "assist-checks": "协查", "notices": "通报"}


def csv_rows(report: CycleReport) -> list[list[str]]:
    month = report.cycle.month
    rows: list[list[str]] = []
    for row in report.submissions + report.requests + report.notices:
        rows.append([
            month, SECTION_LABELS.get(row.section, row.section), row.partner, row.category, "", "", str(row.received), str(row.accepted), str(row.rejected),
            str(row.answered), str(row.late), str(row.open), str(row.overdue), "",
        ])
    for label, figures in (("协查", report.request_rate), ("通报", report.notice_rate)):
        rate = "" if figures.rate is None else f"{figures.rate:.4f}"
        rows.append([
            month, "反馈率", "national-platform", label, "", report.cycle.feedback_end.isoformat(),
            str(figures.received), "", "", str(figures.answered_in_time), "", "", "",
            f"反馈率 {rate} 要求 {TARGET_RATE:.2f}" + ("；暂定：本期未截止 provisional" if report.provisional else ""),
        ])
    for item in report.overdue:
        rows.append([
            month, "逾期 " + {"assist-check": "协查", "notice": "通报"}.get(item.kind, item.kind), f"national-platform {item.partner}", item.category, mask_identifiers(item.message_id),
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
