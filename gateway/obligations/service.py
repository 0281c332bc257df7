"""Obligations (义务): every duty the regulations set, as one row with a due day.

One mechanism for all of them: `open_obligation` when the duty arises (a delivery made,
a statistical month begun, an assist-check received), `fulfil` when it is done (met by
24:00 China time of its due day, late after), `waive` with a reason and who. The list,
the overdue list and the rates (`rates`) read the one table (gateway/store/obligation_models.py).

Kinds and the rule each uses by default (`[obligations.kinds]` in gateway.toml attaches
a kind, new or old, to another rule, e.g. `reply-letter = "reply_letter"` with
`[deadlines.reply_letter]` days = 10):

| kind | rule | who owes it |
|---|---|---|
| `sign-off` 签收 | `sign_off` (3 working days; per agreement `sign_off_rule`) | the delivery's recipient |
| `submission` 报送 | fixed days: monthly by the 28th, quarterly by the 28th of the quarter's last month, half-year by 28 June / 28 December, annual by 10 January | the department |
| `feedback-check` 核查 | `department_feedback` (3 working days) | the county office |
| `forward` 转送 | `forward_to_town` (2 working days) | the county office (to a `town-<code>` township, gateway/platform/forward.py) |
| `update` 更新 | `update` (5 working days) | the register's keeper |
| `assist-check` 协查 | `assist_check_urgent` / `assist_check` | the county (answering the platform) |
| `notice` 通报 | `notice` | the county |
| `notice-send` 通报提交 | `notice_submit` (5 working days) | the county (its own notices, gateway/platform/notices_out.py) |
| `reconcile-evidence` 补报核对 | the reconciliation rule's grace end (a fixed date, never rolled) | the rule's `owed_by` (default: its first notify department) |

Every moment comes from the business clock (gateway/clock.py).

May import: `gateway.store`, `gateway.obligations.deadlines`, the top-level modules.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway import clock
from gateway.errors import ConfigError, GatewayError
from gateway.masking import mask_identifiers
from gateway.obligations.deadlines import Deadlines, Due, end_of_day
from gateway.store import session_scope
from gateway.store.audit import record_event
from gateway.store.obligation_models import Obligation

log = logging.getLogger("gateway")

KIND_RULES: dict[str, str] = {
    "sign-off": "sign_off",
    "feedback-check": "department_feedback",
    "forward": "forward_to_town",
    "update": "update",
    "assist-check": "assist_check",
    "notice": "notice",
    "notice-send": "notice_submit",
}
KIND_NAMES_ZH = {
    "sign-off": "签收", "submission": "报送", "feedback-check": "反馈核查", "forward": "转送",
    "update": "信息更新", "assist-check": "协查反馈", "notice": "通报反馈", "notice-send": "通报提交",
    "reconcile-evidence": "补报核对",
}
# The rates the regulations fix, each shown beside its target.
TARGETS = {"sign-off": 1.0, "notice": 1.0, "submission": 1.0}
STATUSES = ("open", "met", "late", "waived")


# -- configuration -------------------------------------------------------------------------


class SubmissionSchedule(BaseModel):
    """What a department must send, how often (one `[[obligations.submissions]]` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    department: str
    what: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$", description="a name: births, deaths, marriages ...")
    every: Literal["monthly", "quarterly", "half-year", "annual"] = "monthly"
    contracts: list[str] = Field(default_factory=list, description="contract types that fulfil it; empty: any file")
    due_day: int = Field(default=28, ge=1, le=28, description="day of the period's last month (annual: of January)")
    description: str = ""


# The regulations' schedules: the police's newborn registrations and deaths monthly and
# the women of childbearing age moving in and out quarterly; civil affairs' marriages and
# divorces monthly and adoptions quarterly; the hospitals' births monthly.
DEFAULT_SUBMISSIONS: tuple[SubmissionSchedule, ...] = (
    SubmissionSchedule(department="police", what="births", contracts=["BirthEvent"], description="新生儿登记 (月报)"),
    SubmissionSchedule(department="police", what="deaths", contracts=["DeathEvent"], description="死亡登记 (月报)"),
    SubmissionSchedule(department="police", what="migration", every="quarterly", contracts=["Migration"],
                       description="育龄妇女迁入迁出 (季报)"),
    SubmissionSchedule(department="civil-affairs", what="marriages", contracts=["MarriageEvent"], description="结婚离婚登记 (月报)"),
    SubmissionSchedule(department="civil-affairs", what="adoptions", every="quarterly", contracts=["AdoptionEvent"],
                       description="收养登记 (季报)"),
    SubmissionSchedule(department="hospital", what="births", contracts=["BirthEvent"], description="出生医学证明 (月报)"),
)


class ObligationSettings(BaseModel):
    """`[obligations]` in gateway.toml."""

    model_config = ConfigDict(extra="forbid")

    kinds: dict[str, str] = Field(default_factory=dict, description="kind -> deadline rule, new kinds included")
    submissions: list[SubmissionSchedule] | None = Field(default=None, description="None: the regulations' defaults")
    remind: bool = Field(default=True, description="the Friday reminder (每週星期五催辦) from 09:00 China time")
    submissions_from: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}$", description="first statistical month tracked (default: the one before the first run)"
    )


def obligation_settings(settings: object) -> ObligationSettings:
    """`settings.obligations` checked, with the kind rules known to `settings.deadlines`."""
    raw = getattr(settings, "obligations", None) or {}
    try:
        parsed = ObligationSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"[obligations] in gateway.toml: {problems}") from None
    known = Deadlines(getattr(settings, "deadlines", None) or {}).rules
    for kind, rule in parsed.kinds.items():
        if rule not in known:
            raise ConfigError(
                f"[obligations.kinds] {kind} = {rule!r}: no such deadline rule; add [deadlines.{rule}] (days, count) "
                f"or choose one of {', '.join(known)}"
            )
    return parsed


def schedules(settings: object) -> list[SubmissionSchedule]:
    """The configured schedules (defaults: the regulations'), of configured departments only."""
    parsed = obligation_settings(settings)
    chosen = list(DEFAULT_SUBMISSIONS) if parsed.submissions is None else parsed.submissions
    departments = set(getattr(settings, "departments", ()) or ())
    return [s for s in chosen if s.department in departments]


def rule_for(kind: str, settings: object = None) -> str:
    configured = obligation_settings(settings).kinds if settings is not None else {}
    if kind in configured:
        return configured[kind]
    if kind in KIND_RULES:
        return KIND_RULES[kind]
    raise ConfigError(f"obligation kind {kind!r} has no rule: attach one in [obligations.kinds] {kind} = \"RULE\"")


# -- the calendar of statistical months ----------------------------------------------------


def statistical_month(day: dt.date) -> str:
    """The statistical month (统计月, 21st to 20th) `day` falls in: 2026-09-21..2026-10-20 is 2026-10."""
    if day.day > 20:
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return f"{year:04d}-{month:02d}"
    return f"{day.year:04d}-{day.month:02d}"


def month_span(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of the statistical month YYYY-MM."""
    try:
        year, number = (int(part) for part in month.split("-"))
        last = dt.date(year, number, 20)
    except ValueError:
        raise GatewayError(f"month {month!r}: write YYYY-MM, e.g. 2026-10") from None
    first = (dt.date(year - 1, 12, 21) if number == 1 else dt.date(year, number - 1, 21))
    return first, last


@dataclass(frozen=True)
class Period:
    """One reporting period of a schedule: its label, its statistical span and its due day."""

    label: str
    first: dt.date
    last: dt.date
    due: dt.date


def period_of(schedule: SubmissionSchedule, day: dt.date) -> Period:
    """The period of `schedule` whose statistical span holds `day`."""
    month = statistical_month(day)
    year, number = (int(part) for part in month.split("-"))
    months: tuple[int, ...]
    if schedule.every == "monthly":
        months, label = (number,), month
    elif schedule.every == "quarterly":
        quarter = (number - 1) // 3 + 1
        months, label = tuple(range(quarter * 3 - 2, quarter * 3 + 1)), f"{year}-Q{quarter}"
    elif schedule.every == "half-year":
        half = 1 if number <= 6 else 2
        months, label = tuple(range(half * 6 - 5, half * 6 + 1)), f"{year}-H{half}"
    else:
        months, label = tuple(range(1, 13)), f"{year}"
    first = month_span(f"{year:04d}-{months[0]:02d}")[0]
    last = month_span(f"{year:04d}-{months[-1]:02d}")[1]
    due = dt.date(year + 1, 1, 10) if schedule.every == "annual" else dt.date(year, months[-1], schedule.due_day)
    return Period(label, first, last, due)


def submission_subject(schedule: SubmissionSchedule, period: Period) -> str:
    return f"{schedule.department}:{schedule.what}:{period.label}"


# -- the one mechanism ---------------------------------------------------------------------


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return clock.in_china(moment).astimezone(dt.UTC)


def open_obligation(
    session: Session,
    *,
    kind: str,
    party: str,
    subject: str,
    start: dt.datetime | None = None,
    rule: str | None = None,
    due: Due | None = None,
    detail: str = "",
    deadlines: Deadlines | None = None,
    settings: object = None,
    period: str | None = None,
) -> Obligation:
    """The obligation `kind` of `party` for `subject`, opened now (or at `start`) with its
    due day from `rule` (default: the kind's) or as given in `due`. Idempotent: the same
    kind and subject give the row already there. `detail` must hold no personal data.

    This is the hook other packages call when a duty arises (the platform's assist-checks
    and notices: `open_obligation(session, kind="assist-check", party="county", subject=f"assist-check:{XXBH}",
    start=received, rule=assist_check_rule(JJCD))`, then `fulfil(session, "assist-check", subject)` when answered)."""
    existing = session.exec(select(Obligation).where(Obligation.kind == kind, Obligation.subject == subject)).first()
    if existing is not None:
        return existing
    start = _as_utc(start) if start is not None else clock.now()
    if due is None:
        if deadlines is None:
            deadlines = Deadlines(getattr(settings, "deadlines", None) or {})
        rule = rule or rule_for(kind, settings)
        due = deadlines.due(rule, clock.in_china(start).date())
    row = Obligation(
        kind=kind, party=party, subject=subject, rule=rule or due.rule, detail=detail, started_at=start.replace(microsecond=0),
        due_date=due.date, due_at=end_of_day(due.date), provisional=due.provisional,
        period=period or statistical_month(clock.in_china(start).date()),
    )
    session.add(row)
    session.flush()
    return row


def fulfil(session: Session, kind: str, subject: str, at: dt.datetime | None = None, by: str | None = None) -> Obligation | None:
    """Close the open obligation `kind`/`subject`: `met` if done before 24:00 China time of
    its due day, `late` after. None when there is none open (already closed, or never opened)."""
    row = session.exec(
        select(Obligation).where(Obligation.kind == kind, Obligation.subject == subject, Obligation.status == "open")
    ).first()
    if row is None:
        return None
    at = _as_utc(at) if at is not None else clock.now()
    row.status = "met" if at < _as_utc(row.due_at) else "late"
    row.closed_at, row.closed_by = at.replace(microsecond=0), by
    session.add(row)
    session.flush()
    return row


def waive(engine: Engine, obligation_id: int, reason: str, by: str) -> Obligation:
    """Waive an open obligation (豁免): it counts in no rate; the reason and who stay."""
    reason = reason.strip()
    if not reason:
        raise GatewayError("a waiver needs a reason: --reason '...'")
    with session_scope(engine) as session:
        row = session.get(Obligation, obligation_id)
        if row is None:
            raise GatewayError(f"no obligation {obligation_id}: see `gateway obligations list`")
        if row.status != "open":
            raise GatewayError(f"obligation {obligation_id} is already {row.status}; only an open one can be waived")
        row.status, row.reason, row.closed_by, row.closed_at = "waived", reason[:500], by, clock.now().replace(microsecond=0)
        record_event(session, "obligation_waived", row.party, None, f"obligation {row.id} ({row.kind} {row.subject}) waived by {by}")
        session.flush()
        session.expunge(row)
        return row


def waive_open(session: Session, kind: str, subject: str, reason: str, by: str) -> Obligation | None:
    """Waive the open obligation `kind`/`subject` inside the caller's transaction (an event of
    the gateway made it moot, e.g. a clerk resolved the discrepancy); None when none is open."""
    row = session.exec(
        select(Obligation).where(Obligation.kind == kind, Obligation.subject == subject, Obligation.status == "open")
    ).first()
    if row is None:
        return None
    row.status, row.reason, row.closed_by, row.closed_at = "waived", reason[:500], by, clock.now().replace(microsecond=0)
    record_event(session, "obligation_waived", row.party, None, f"obligation {row.id} ({row.kind} {row.subject}) waived by {by}: {reason}")
    session.add(row)
    session.flush()
    return row


def record(engine: Engine, settings: object, *, kind: str, party: str, subject: str, start: dt.datetime | None = None,
           detail: str = "") -> Obligation:
    """An obligation an officer records by hand (a reply letter, a notice between regions):
    its kind's rule gives the due day. Refuses a subject already recorded for the kind."""
    if not subject.strip() or not party.strip():
        raise GatewayError("an obligation needs a party (--party) and a subject (--subject)")
    with session_scope(engine) as session:
        exists = session.exec(select(Obligation.id).where(Obligation.kind == kind, Obligation.subject == subject)).first()
        if exists is not None:
            raise GatewayError(f"{kind} {subject!r} is already obligation {exists}: see `gateway obligations show {exists}`")
        row = open_obligation(session, kind=kind, party=party, subject=subject, start=start, detail=detail, settings=settings)
        record_event(session, "obligation_recorded", party, None, f"obligation {row.id}: {kind} {subject}, due {row.due_date}")
        session.flush()
        session.expunge(row)
        return row


def mark_done(engine: Engine, obligation_id: int, by: str, at: dt.datetime | None = None) -> Obligation:
    """An officer records an open obligation fulfilled (now, by the business clock): met or late."""
    with session_scope(engine) as session:
        row = session.get(Obligation, obligation_id)
        if row is None:
            raise GatewayError(f"no obligation {obligation_id}: see `gateway obligations list`")
        if row.status != "open":
            raise GatewayError(f"obligation {obligation_id} is already {row.status}")
        done = fulfil(session, row.kind, row.subject, at, by=by)
        assert done is not None
        record_event(session, "obligation_done", row.party, None, f"obligation {row.id} ({row.kind} {row.subject}) {done.status}, by {by}")
        session.flush()
        session.expunge(done)
        return done


def is_overdue(row: Obligation, now: dt.datetime | None = None) -> bool:
    """Open and past 24:00 China time of its due day."""
    now = now if now is not None else clock.now()
    return row.status == "open" and _as_utc(now) >= _as_utc(row.due_at)


def refresh_provisional(engine: Engine, settings: object = None) -> int:
    """Recompute the open provisional due days (after the calendar package is upgraded);
    how many are final now."""
    deadlines = Deadlines(getattr(settings, "deadlines", None) or {})
    count = 0
    with session_scope(engine) as session:
        for row in session.exec(select(Obligation).where(Obligation.status == "open", Obligation.provisional == True)).all():  # noqa: E712
            if row.rule not in deadlines.rules:
                continue
            due = deadlines.due(row.rule, clock.in_china(row.started_at).date())
            row.due_date, row.due_at, row.provisional = due.date, end_of_day(due.date), due.provisional
            count += not due.provisional
            session.add(row)
    return count


# -- department submissions ----------------------------------------------------------------


def ensure_submissions(session: Session, settings: object, now: dt.datetime | None = None) -> int:
    """Open the submission obligations of every period begun by `now`, from the first
    tracked statistical month (`submissions_from`, else the one before the first run);
    how many were new."""
    today = clock.in_china(now if now is not None else clock.now()).date()
    parsed = obligation_settings(settings)
    new = 0
    for schedule in schedules(settings):
        if parsed.submissions_from is not None:
            day = month_span(parsed.submissions_from)[0]
        else:
            first = session.exec(
                select(func.min(Obligation.started_at)).where(
                    Obligation.kind == "submission", Obligation.subject.like(f"{schedule.department}:{schedule.what}:%")  # type: ignore[attr-defined]
                )
            ).one()
            day = clock.in_china(first).date() if first is not None else month_span(statistical_month(today))[0] - dt.timedelta(days=1)
        period = period_of(schedule, day)
        while period.first <= today:
            subject = submission_subject(schedule, period)
            exists = session.exec(select(Obligation.id).where(Obligation.kind == "submission", Obligation.subject == subject)).first()
            if exists is None:
                open_obligation(
                    session, kind="submission", party=schedule.department, subject=subject,
                    start=clock.start_of_day(period.first), rule=f"fixed:{period.due.strftime('%m-%d')}",
                    due=Due("fixed", period.first, period.due), period=statistical_month(period.last),
                    detail=f"{schedule.description or schedule.what} {period.label} ({period.first}..{period.last})",
                )
                new += 1
            period = period_of(schedule, period.last + dt.timedelta(days=1))
    return new


def submission_received(
    session: Session, settings: object, department: str, contracts: set[str], at: dt.datetime | None = None, exchange_id: int | None = None
) -> list[Obligation]:
    """A file from `department` with records of `contracts` arrived at `at`: it fulfils,
    per schedule it satisfies, the period just ended whose due day has not passed (met),
    else the oldest open one begun (late if overdue, met if early)."""
    at = _as_utc(at) if at is not None else clock.now()
    ensure_submissions(session, settings, at)
    day = clock.in_china(at).date()
    closed = []
    for schedule in schedules(settings):
        if schedule.department != department or (schedule.contracts and not contracts & set(schedule.contracts)):
            continue
        candidates = session.exec(
            select(Obligation).where(
                Obligation.kind == "submission", Obligation.status == "open",
                Obligation.subject.like(f"{department}:{schedule.what}:%"),  # type: ignore[attr-defined]
            ).order_by(Obligation.due_at)  # type: ignore[arg-type]
        ).all()
        started = [row for row in candidates if clock.in_china(row.started_at).date() <= day]
        ended = [row for row in started if period_of(schedule, clock.in_china(row.started_at).date()).last < day <= row.due_date]
        chosen = ended[0] if ended else started[0] if started else None
        if chosen is None:
            continue
        by = f"exchange {exchange_id}" if exchange_id is not None else department
        done = fulfil(session, "submission", chosen.subject, at, by=by)
        if done is not None:
            closed.append(done)
    return closed


# -- views and rates -----------------------------------------------------------------------


@dataclass
class ObligationView:
    id: int
    kind: str
    party: str
    subject: str
    rule: str
    detail: str
    started_at: dt.datetime
    due: dt.date
    provisional: bool
    period: str
    status: str
    overdue: bool
    closed_at: dt.datetime | None
    closed_by: str | None
    reason: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id, "kind": self.kind, "kind_zh": KIND_NAMES_ZH.get(self.kind, self.kind), "party": self.party,
            "subject": self.subject, "rule": self.rule, "detail": self.detail,
            "started_at": self.started_at.isoformat(), "due": self.due.isoformat(), "provisional": self.provisional,
            "period": self.period, "status": self.status, "overdue": self.overdue,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None, "closed_by": self.closed_by, "reason": self.reason,
        }


def _view(row: Obligation, now: dt.datetime) -> ObligationView:
    # What is shown (the console, `gateway obligations`, reminders): a subject may be a platform
    # message id (协查编号) that embeds an ID number, so its ID- and phone-shaped runs are masked.
    return ObligationView(
        id=row.id or 0, kind=row.kind, party=row.party, subject=mask_identifiers(row.subject), rule=row.rule,
        detail=mask_identifiers(row.detail),
        started_at=_as_utc(row.started_at), due=row.due_date, provisional=row.provisional, period=row.period,
        status=row.status, overdue=is_overdue(row, now), closed_at=_as_utc(row.closed_at) if row.closed_at else None,
        closed_by=row.closed_by, reason=mask_identifiers(row.reason) if row.reason else row.reason,
    )


def list_obligations(
    engine: Engine,
    *,
    overdue: bool = False,
    party: str | None = None,
    due_before: dt.date | None = None,
    include_closed: bool = False,
    now: dt.datetime | None = None,
) -> list[ObligationView]:
    """Obligations soonest due first: open ones (and closed ones with `include_closed`);
    `overdue`: only those past their due day; `due_before`: due on or before that day."""
    now = now if now is not None else clock.now()
    query = select(Obligation)
    if not include_closed:
        query = query.where(Obligation.status == "open")
    if overdue:
        query = query.where(Obligation.status == "open", Obligation.due_at <= now)
    if party is not None:
        query = query.where(Obligation.party == party)
    if due_before is not None:
        query = query.where(Obligation.due_date <= due_before)
    with Session(engine) as session:
        rows = session.exec(query.order_by(Obligation.due_at, Obligation.kind, Obligation.id)).all()  # type: ignore[arg-type]
        return [_view(row, now) for row in rows]


def working_days_ahead(day: dt.date, count: int, deadlines: Deadlines | None = None) -> dt.date:
    """The `count`-th working day after `day` (for "due in the next 3 working days")."""
    calendar = (deadlines or Deadlines()).calendar
    while count > 0:
        day += dt.timedelta(days=1)
        count -= calendar.is_workday(day)
    return day


def get_obligation(engine: Engine, obligation_id: int, now: dt.datetime | None = None) -> ObligationView:
    with Session(engine) as session:
        row = session.get(Obligation, obligation_id)
        if row is None:
            raise GatewayError(f"no obligation {obligation_id}: see `gateway obligations list`")
        return _view(row, now if now is not None else clock.now())


@dataclass
class Rate:
    """One kind's count for one party in one statistical month: of the obligations due in
    it (waived ones aside), how many were met on time. `pending`: not yet due."""

    kind: str
    party: str
    month: str
    due: int = 0
    met: int = 0
    late: int = 0
    missed: int = 0
    pending: int = 0
    waived: int = 0
    target: float | None = None

    @property
    def rate(self) -> float | None:
        return self.met / self.due if self.due else None

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind, "kind_zh": KIND_NAMES_ZH.get(self.kind, self.kind), "party": self.party, "month": self.month,
            "due": self.due, "met": self.met, "late": self.late, "missed": self.missed, "pending": self.pending,
            "waived": self.waived, "rate": None if self.rate is None else round(self.rate, 4), "target": self.target,
        }


@dataclass
class Rates:
    month: str
    first: dt.date
    last: dt.date
    rows: list[Rate] = field(default_factory=list)
    totals: list[Rate] = field(default_factory=list)


def rates(engine: Engine, month: str, now: dt.datetime | None = None) -> Rates:
    """The rates of the statistical month YYYY-MM (21st-20th) per kind and party, and per
    kind over all parties: met on time / due (late and missed count against, waived not).
    An obligation counts in the month of the event that started it (a delivery made in it),
    a submission in the (last) month it covers."""
    now = now if now is not None else clock.now()
    first, last = month_span(month)
    result = Rates(month, first, last)
    table: dict[tuple[str, str], Rate] = {}
    totals: dict[str, Rate] = {}
    with Session(engine) as session:
        rows = session.exec(select(Obligation).where(Obligation.period == month)).all()
        for row in rows:
            for rate in (
                table.setdefault((row.kind, row.party), Rate(row.kind, row.party, month, target=TARGETS.get(row.kind))),
                totals.setdefault(row.kind, Rate(row.kind, "(all)", month, target=TARGETS.get(row.kind))),
            ):
                if row.status == "waived":
                    rate.waived += 1
                elif row.status == "met":
                    rate.due += 1
                    rate.met += 1
                elif row.status == "late":
                    rate.due += 1
                    rate.late += 1
                elif is_overdue(row, now):
                    rate.due += 1
                    rate.missed += 1
                else:
                    rate.pending += 1
    result.rows = sorted(table.values(), key=lambda r: (r.kind, r.party))
    result.totals = sorted(totals.values(), key=lambda r: r.kind)
    return result


def configured_overrides(settings: object) -> Mapping[str, Mapping[str, object]]:
    return getattr(settings, "deadlines", None) or {}
