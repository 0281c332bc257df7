"""The monthly early warning (预警), `gateway report warning --month 2026-10`.

For one statistical month (21st to 20th), evaluated at the end of its last day or now,
whichever is earlier:

- **sex ratio at birth** (出生人口性别比) outside the normal band (103–107 by default) for
  the county and for each division, judged only with at least `min_births_for_sex_ratio`
  births (100 by default: on 100 births one boy more or less moves the ratio by about 4,
  so fewer would warn on chance alone); the count is always shown;
- **unregistered births** past their grace period: open items of the reconciliation rule
  `unregistered-births` (gateway.reconcile.open_counts), when the reconciliation is installed;
- **assist-checks overdue** (协查逾期): requests due before the evaluation day and not
  answered by the evaluation moment;
- **silent departments** (沉默部门): expected senders (`senders`, default every department but
  the population office) judged by their submission obligations (gateway/obligations/): silent
  when one of those of the month (the file covering it, `period` = the month, and those due in
  it) is missed, open past its due day at the evaluation time. That time is `as_of` or now,
  not capped at the month's end, so the month's own file (due the 28th) is judged after its
  deadline, never on the 21st. A department with no submission schedule, or none tracked for
  the month, keeps the exchange count: no exchange received in the month is silence;
- **missed submissions** (报送逾期): the departments' scheduled files (gateway/obligations/)
  due in the month (the previous month's file, due the 28th) not received by their due day
  or received late.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlmodel import Session

from gateway import clock
from gateway.config import Settings
from gateway.store import Exchange
from gateway.store.models import AssistCheck
from gateway.store.obligation_models import Obligation
from gateway.obligations.service import is_overdue, schedules
from gateway.population_reports.events import FEMALE, MALE, read_events
from gateway.population_reports.periods import Period, monthly
from gateway.population_reports.settings import expected_senders, report_settings

if TYPE_CHECKING:
    from gateway.services import GatewayServices


@dataclass
class WarningLine:
    """One warning (or, with `raised` False, one thing checked and found in order)."""

    kind: str  # sex-ratio | unregistered-births | assist-checks-overdue | silent-departments | missed-submissions
    raised: bool
    text: str
    count: int = 0
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "raised": self.raised, "text": self.text, "count": self.count, "details": self.details}


@dataclass
class EarlyWarning:
    period: Period
    evaluated_at: dt.datetime
    lines: list[WarningLine]
    notes: list[str] = field(default_factory=list)

    @property
    def raised(self) -> list[WarningLine]:
        return [line for line in self.lines if line.raised]

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.period.label,
            "first_day": self.period.first.isoformat(),
            "last_day": self.period.last.isoformat(),
            "evaluated_at": self.evaluated_at.isoformat(timespec="seconds"),
            "warnings": len(self.raised),
            "lines": [line.as_dict() for line in self.lines],
            "notes": self.notes,
        }


def build_warning(engine: Engine, settings: Settings, month: str, *, as_of: dt.datetime | None = None) -> EarlyWarning:
    period = monthly(month)
    end = clock.start_of_day(period.last + dt.timedelta(days=1))
    at = min((as_of or clock.now()).astimezone(dt.UTC), end)
    result = EarlyWarning(period, at, [])
    options = report_settings(settings)
    result.lines += _sex_ratio(engine, period, options.min_births_for_sex_ratio, options.sex_ratio_low, options.sex_ratio_high)
    unregistered = _unregistered_births(engine, settings, at)
    if unregistered is None:
        result.notes.append("unregistered births past their grace period: not checked (the reconciliation, gateway.reconcile, is not installed)")
    else:
        result.lines.append(unregistered)
    result.lines.append(_overdue_assist_checks(engine, at))
    judged = (as_of or clock.now()).astimezone(dt.UTC)
    result.lines.append(_silent_departments(engine, settings, expected_senders(settings, options), period, at, judged))
    result.lines.append(_missed_submissions(engine, period, at))
    return result


def _sex_ratio(engine: Engine, period: Period, minimum: int, low: float, high: float) -> list[WarningLine]:
    counts: dict[str, Counter[str]] = {"合计": Counter()}
    for birth in read_events(engine).births:
        if period.contains(birth.day):
            counts["合计"][birth.sex or ""] += 1
            if birth.division:
                counts.setdefault(birth.division, Counter())[birth.sex or ""] += 1
    lines = []
    for place in ["合计", *sorted(code for code in counts if code != "合计")]:
        boys, girls = counts[place][MALE], counts[place][FEMALE]
        births = sum(counts[place].values())
        where = "county 全县" if place == "合计" else f"division {place}"
        ratio = boys * 100 / girls if girls else None
        shown = "—" if ratio is None else f"{ratio:.1f}"
        if births < minimum:
            if place == "合计":
                lines.append(WarningLine("sex-ratio", False, f"sex ratio at birth {shown} on {births} births ({where}): fewer than {minimum} births, not judged", births))
            continue
        outside = ratio is None or not low <= ratio <= high
        lines.append(WarningLine(
            "sex-ratio", outside,
            f"sex ratio at birth {shown} ({boys} boys, {girls} girls, {births} births; {where}) "
            + (f"outside {low:g}–{high:g}" if outside else f"within {low:g}–{high:g}"),
            births,
        ))
    return lines


def _unregistered_births(engine: Engine, settings: Settings, at: dt.datetime) -> WarningLine | None:
    try:
        from gateway.reconcile import open_counts  # type: ignore[attr-defined]
    except ImportError:
        return None
    count = int(open_counts(engine, settings, clock.in_china(at).date()).get("unregistered-births", 0))
    return WarningLine(
        "unregistered-births", count > 0,
        f"{count} birth(s) without a police registration past their grace period" if count else "no birth unregistered past its grace period",
        count,
    )


def _overdue_assist_checks(engine: Engine, at: dt.datetime) -> WarningLine:
    day = clock.in_china(at).date()
    details: list[str] = []
    with Session(engine) as session:
        for item in session.exec(
            select(AssistCheck).where(AssistCheck.due_date < day, AssistCheck.received_at < at).order_by(AssistCheck.due_date)  # type: ignore[arg-type]
        ).scalars():
            sent = item.sent_at if item.sent_at is None or item.sent_at.tzinfo else item.sent_at.replace(tzinfo=dt.UTC)
            if sent is None or sent >= at:
                details.append(f"{item.message_id} from {item.partner}, due {item.due_date}, {(day - item.due_date).days} day(s) over")
    count = len(details)
    return WarningLine(
        "assist-checks-overdue", count > 0,
        f"{count} assist-check request(s) (协查) overdue and unanswered" if count else "no assist-check request overdue", count, details,
    )


def _silent_departments(
    engine: Engine, settings: Settings, senders: list[str], period: Period, at: dt.datetime, judged: dt.datetime
) -> WarningLine:
    """沉默部门: by the submission obligations where the department has a schedule (missed at
    `judged`), else by the exchanges received in the month up to `at`."""
    scheduled = {schedule.department for schedule in schedules(settings)}
    opens = clock.start_of_day(period.first)
    with Session(engine) as session:
        heard = dict(session.exec(
            select(Exchange.department, func.count(Exchange.id))
            .where(Exchange.received_at >= opens, Exchange.received_at < at)
            .group_by(Exchange.department)
        ).all())
        owed = session.exec(
            select(Obligation).where(
                Obligation.kind == "submission", Obligation.party.in_(sorted(scheduled)),  # type: ignore[attr-defined]
                or_(Obligation.period == period.label,  # type: ignore[arg-type]
                    and_(Obligation.due_date >= period.first, Obligation.due_date <= period.last)),  # type: ignore[arg-type]
            ).order_by(Obligation.due_date, Obligation.subject)  # type: ignore[arg-type]
        ).scalars().all()
    silent: list[str] = []
    details: list[str] = []
    for name in senders:
        rows = [row for row in owed if row.party == name]
        if not rows:
            if not heard.get(name):
                silent.append(name)
            why = "无报送计划 no submission schedule" if name not in scheduled else f"未跟踪 no submission obligation tracked for {period.label}"
            details.append(f"{name}: {heard.get(name, 0)} exchange(s) ({why}: judged by the exchanges received)")
            continue
        missed = [row for row in rows if is_overdue(row, judged)]
        pending = [row for row in rows if row.status == "open" and not is_overdue(row, judged)]
        if missed:
            silent.append(name)
            details.append(f"{name}: missed 未报送 " + ", ".join(f"{row.subject} (due {row.due_date})" for row in missed))
        elif pending:
            details.append(f"{name}: not due yet 未到期 " + ", ".join(f"{row.subject} (due {row.due_date})" for row in pending))
        else:
            details.append(f"{name}: none missed 无未报送 ({len(rows)} submission(s) received or waived)")
    when = clock.in_china(judged).strftime("%Y-%m-%d %H:%M")
    return WarningLine(
        "silent-departments", bool(silent),
        f"{len(silent)} department(s) silent in {period.label} ({period.first} – {period.last}; judged {when}): {', '.join(silent)}"
        if silent else f"no department silent in {period.label} (judged {when})",
        len(silent), details,
    )


def _missed_submissions(engine: Engine, period: Period, at: dt.datetime) -> WarningLine:
    """Submission obligations due in the month: missed (open past the due day at `at`) or late."""
    with Session(engine) as session:
        rows = session.exec(
            select(Obligation).where(
                Obligation.kind == "submission", Obligation.due_date >= period.first, Obligation.due_date <= period.last,
                Obligation.status.in_(("open", "late")),  # type: ignore[attr-defined]
            ).order_by(Obligation.due_date, Obligation.party)  # type: ignore[arg-type]
        ).scalars().all()
    found = [row for row in rows if row.status == "late" or clock.in_china(row.due_at) <= clock.in_china(at)]
    details = [f"{row.subject} due {row.due_date}: {'late 逾期报送' if row.status == 'late' else 'missed 未报送'}" for row in found]
    return WarningLine(
        "missed-submissions", bool(found),
        f"{len(found)} scheduled submission(s) (报送) due in {period.label} missed or late" if found
        else f"every scheduled submission due in {period.label} arrived on time",
        len(found), details,
    )


WARNING_FORMAT = "gateway-early-warning/1"


def warning_file_name(month: str) -> str:
    return f"WARNING-{month}.json.gpg"


def deliver_warning(gateway: GatewayServices, month: str, *, as_of: dt.datetime | None = None) -> list[Any]:
    """Send the early warning of `month` to each member department (成员单位: the expected
    senders, every department but the population office unless `[reports] senders` names
    them), "每月進行一次人口預警通報…各成員單位": one `WARNING-<YYYY-MM>.json.gpg` in its outbox,
    encrypted to its registered keys and signed (like the Friday reminder); once per month
    and department; held, nothing in clear, without a usable key. The warning holds counts,
    division codes, department names and message numbers, never a person."""
    from gateway.reminders.weekly import send_document
    from gateway.routing.delivery import Router

    settings = gateway.settings
    warning = build_warning(gateway.engine, settings, month, as_of=as_of)
    document = {"format": WARNING_FORMAT, "title": "人口预警通报 Population early warning", **warning.as_dict()}
    router = Router(gateway)
    members = [d for d in expected_senders(settings, report_settings(settings)) if d in settings.departments]
    return [
        send_document(gateway, router, department, warning_file_name(month), {**document, "department": department},
                      items=len(warning.raised), what="warning")
        for department in sorted(members)
    ]
