"""Deadlines the regulations set (时限), in calendar days or working days.

A rule says how many days, which kind of day, and from when:

| rule | default | counted from |
|---|---|---|
| `department_feedback` | 3 working days: a department's feedback is checked | the day it arrived |
| `forward_to_town` | 2 working days: forwarding to another town (乡镇) | the day it arrived |
| `update` | 5 working days: records updated | the day it arrived |
| `assist_check_urgent` | 15 calendar days: an assist-check request, 紧急 (JJCD 1) | the platform's send date FQSJ |
| `assist_check` | 30 calendar days: an assist-check request, 急 (JJCD 2) | FQSJ |
| `notice` | 30 calendar days: feedback or receipt of a notice (通报) | FQSJ |
| `sign_off` | 3 working days: a delivery signed off (签收, its ACK) | the day it was delivered |
| `notice_submit` | 5 working days: the county's own notice (通报) submitted to the place of household registration | the day its record was accepted |

Each can be changed in `gateway.toml`:

```toml
[deadlines.assist_check_urgent]
days = 15
count = "calendar"      # or "working"
start = "sent"          # "sent" (FQSJ) or "received" (the day the gateway took it in)
roll_to_workday = true  # a calendar-day period ending on a day off ends on the next working day
```

New rules are written the same way under a name of the operator's choosing
(`[deadlines.reply_letter]`, `days = 10`, `count = "calendar"`); `days` is then required.
An obligation kind is attached to a rule in `[obligations.kinds]` (gateway/obligations/service.py).

A calendar-day period that ends on a day off ends on the next working day (民法典 §203):
`roll_to_workday` is true by default, for every rule but the national platform's three
(its own dates, FQSJ + 15 or 30 days, are what its feedback rate is judged by). The regulations' fixed days (the 28th of a month for a
department's monthly file, 10 January for an annual one) are dates, not periods: they never
roll (`fixed_date`).

Working days come from the chinesecalendar package: weekends off, statutory holidays off,
adjusted working days (调休上班, e.g. a Saturday) on. Its tables cover a fixed range of
years (1.11.0: 2004-2026). A deadline that needs a day outside that range is marked
**provisional**: never silently guessed. It still counts the statutory holidays the law
fixes (全国年节及纪念日放假办法, as revised in 2024): New Year's Day, the Spring Festival
(除夕 and the first three days of the first lunar month, from the `lunardate` library),
Qingming (the solar term, from chinesecalendar), Labour Day (1-2 May), the Dragon Boat
festival (5/5 lunar), Mid-Autumn (8/15 lunar) and National Day (1-3 October). Only the
adjusted working days (调休) and the days moved to bridge a holiday stay unknown until
the State Council publishes the year's arrangement. Upgrading the
package (`pip install -U chinesecalendar`) once the State Council publishes the next
year's arrangement makes them final (`gateway deadlines refresh`, also done on every
assist-check sync).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import ConfigError, UnknownName


class DeadlineRule(BaseModel):
    """One rule: `days` of the given `count`, from `start`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int = Field(ge=1, le=366)
    count: Literal["calendar", "working"] = "calendar"
    start: Literal["sent", "received"] = "received"
    roll_to_workday: bool = Field(
        default=True, description="a calendar-day period ending on a day off ends on the next working day (民法典 §203)"
    )
    description: str = ""


DEFAULT_RULES: dict[str, DeadlineRule] = {
    "department_feedback": DeadlineRule(
        days=3, count="working", start="received", description="部门反馈核查: a department's feedback is checked"
    ),
    "forward_to_town": DeadlineRule(
        days=2, count="working", start="received", description="转递: forwarded to another town (乡镇)"
    ),
    "update": DeadlineRule(days=5, count="working", start="received", description="信息更新: records updated"),
    # The national platform computes these itself (FQSJ + N calendar days, the contract's
    # due_date) and judges the feedback rate by its date, so they do not roll.
    "assist_check_urgent": DeadlineRule(
        days=15, count="calendar", start="sent", roll_to_workday=False, description="协查 紧急 (JJCD 1): answered"
    ),
    "assist_check": DeadlineRule(
        days=30, count="calendar", start="sent", roll_to_workday=False, description="协查 急 (JJCD 2): answered"
    ),
    "notice": DeadlineRule(
        days=30, count="calendar", start="sent", roll_to_workday=False, description="通报: feedback (XYFK 1) or receipt"
    ),
    "sign_off": DeadlineRule(
        days=3, count="working", start="received", description="签收: a delivery acknowledged (ACK) by its recipient"
    ),
    "notice_submit": DeadlineRule(
        days=5, count="working", start="received", description="通报提交: the county's own notice sent (流入地向流出地通报)"
    ),
}


_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def rules(overrides: Mapping[str, Mapping[str, object]] | None = None) -> dict[str, DeadlineRule]:
    """The default rules with `[deadlines.NAME]` overrides from gateway.toml applied, and
    the operator's new rules (a name not among the defaults, with its `days`)."""
    result = dict(DEFAULT_RULES)
    for name, changes in (overrides or {}).items():
        if not isinstance(changes, Mapping):
            raise ConfigError(f"[deadlines.{name}] in gateway.toml must be a table (days, count, start, roll_to_workday)")
        if name not in DEFAULT_RULES:
            if not _RULE_NAME.match(name):
                raise ConfigError(f"[deadlines.{name}]: a new rule's name is lowercase letters, digits and _ (e.g. reply_letter)")
            if "days" not in changes:
                raise UnknownName("deadline rule", f"[deadlines.{name}] (a new rule needs days = N)", list(DEFAULT_RULES))
        try:
            base = DEFAULT_RULES[name].model_dump() if name in DEFAULT_RULES else {}
            result[name] = DeadlineRule.model_validate({**base, **changes})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"[deadlines.{name}] in gateway.toml: {problems}") from None
    return result


class WorkCalendar:
    """Which days are working days in mainland China.

    By default from chinesecalendar's tables (`holidays`: statutory days off on weekdays
    and weekends alike; `workdays`: adjusted working days). Tests pass their own tables,
    so they do not depend on the installed package's data.
    """

    def __init__(
        self,
        holidays: Mapping[dt.date, object] | None = None,
        workdays: Mapping[dt.date, object] | None = None,
        years: Iterable[int] | None = None,
        source: str | None = None,
    ):
        if holidays is None or workdays is None:
            from importlib.metadata import version

            from chinese_calendar import constants

            holidays = constants.holidays if holidays is None else holidays
            workdays = constants.workdays if workdays is None else workdays
            source = source or f"chinesecalendar {version('chinesecalendar')}"
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        if years is None:
            known = [day.year for day in self.holidays]
            years = range(min(known), max(known) + 1) if known else ()
        self.years = frozenset(years)
        self.source = source or "given tables"

    @property
    def span(self) -> str:
        return f"{min(self.years)}-{max(self.years)}" if self.years else "no years"

    def covers(self, day: dt.date) -> bool:
        return day.year in self.years

    def is_workday(self, day: dt.date) -> bool:
        """Weekend/holiday/adjusted-workday rule; outside the covered years, weekends and
        the statutory holidays the law fixes (`statutory_holidays`), the adjusted working
        days unknown (callers that must not guess check `covers` first, as `Deadlines` does)."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if not self.covers(day) and day in statutory_holidays(day.year):
            return False
        return day.weekday() < 5


@functools.lru_cache(maxsize=64)
def statutory_holidays(year: int) -> frozenset[dt.date]:
    """The days off that 全国年节及纪念日放假办法 (revised 2024, in force 2025) fixes for
    `year`, without the State Council's yearly adjustments: 元旦 1-1; 春节 除夕 and lunar 1/1-1/3;
    清明 (the solar term's day); 劳动节 5-1, 5-2; 端午 lunar 5/5; 中秋 lunar 8/15; 国庆 10-1..10-3."""
    from chinese_calendar import get_solar_terms
    from lunardate import LunarDate

    def lunar(month: int, day: int) -> dt.date:
        return cast(dt.date, LunarDate(year, month, day).to_solar_date())

    spring = lunar(1, 1)
    days = {dt.date(year, 1, 1), dt.date(year, 5, 1), dt.date(year, 5, 2), lunar(5, 5), lunar(8, 15)}
    days.update(spring + dt.timedelta(days=offset) for offset in (-1, 0, 1, 2))  # 除夕 .. 初三
    days.update(dt.date(year, 10, d) for d in (1, 2, 3))
    days.update(day for day, name in get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 10)) if name == "清明")
    return frozenset(days)


@dataclass(frozen=True)
class Due:
    """A computed deadline. `provisional` when a day it depends on lies in a year the
    calendar does not cover: then `note` says which, and the date counts weekends only."""

    rule: str
    start: dt.date
    date: dt.date
    provisional: bool = False
    note: str = ""

    def label(self) -> str:
        return f"{self.date.isoformat()} (provisional)" if self.provisional else self.date.isoformat()

    @property
    def ends_at(self) -> dt.datetime:
        """The moment it is overdue: the end of the due day, 24:00 China time, whatever the
        hour of the event that started it."""
        return end_of_day(self.date)


def end_of_day(day: dt.date) -> dt.datetime:
    """24:00 China time on `day` (00:00 of the next day), in UTC."""
    from gateway.clock import start_of_day

    return start_of_day(day + dt.timedelta(days=1)).astimezone(dt.UTC)


_default_calendar: WorkCalendar | None = None


def default_calendar() -> WorkCalendar:
    """The calendar deadlines use unless given one: chinesecalendar's, or what
    `use_calendar` set (tests pin the holiday tables they rely on)."""
    global _default_calendar
    if _default_calendar is None:
        _default_calendar = WorkCalendar()
    return _default_calendar


def use_calendar(calendar: WorkCalendar | None) -> None:
    """Make `calendar` the default (None: chinesecalendar's again)."""
    global _default_calendar
    _default_calendar = calendar


class Deadlines:
    """Computes deadlines by rule name: `Deadlines(settings.deadlines).due("notice", sent)`."""

    def __init__(self, overrides: Mapping[str, Mapping[str, object]] | None = None, calendar: WorkCalendar | None = None):
        self.rules = rules(overrides)
        self._calendar = calendar

    @property
    def calendar(self) -> WorkCalendar:
        return self._calendar if self._calendar is not None else default_calendar()

    def rule(self, name: str) -> DeadlineRule:
        if name not in self.rules:
            raise UnknownName("deadline rule", name, list(self.rules))
        return self.rules[name]

    def due(self, rule_name: str, start: dt.date) -> Due:
        """The deadline of `rule_name` counted from `start` (the day itself not counted:
        "within 3 working days" of Wednesday 2026-09-30 ends on the 3rd working day after,
        Saturday 2026-10-10, an adjusted working day after the National Day holiday)."""
        rule = self.rule(rule_name)
        uncovered: set[int] = set()
        if rule.count == "calendar":
            day = start + dt.timedelta(days=rule.days)
            if rule.roll_to_workday:
                day = self._roll(day, uncovered)
        else:
            day, left = start, rule.days
            while left:
                day += dt.timedelta(days=1)
                if not self.calendar.covers(day):
                    uncovered.add(day.year)
                if self.calendar.is_workday(day):
                    left -= 1
        if uncovered:
            years = ", ".join(str(y) for y in sorted(uncovered))
            note = (
                f"{years} not in the holiday calendar ({self.calendar.source} covers {self.calendar.span}); "
                "counted with weekends and the statutory holidays only, the adjusted working days (调休) "
                "unknown until the calendar is updated"
            )
            return Due(rule_name, start, day, provisional=True, note=note)
        return Due(rule_name, start, day)

    def fixed_date(self, rule_name: str, day: dt.date) -> Due:
        """A date the regulations fix (the 28th, 10 January): due that day, never rolled,
        never provisional."""
        return Due(rule_name, day, day)

    def _roll(self, day: dt.date, uncovered: set[int]) -> dt.date:
        while True:
            if not self.calendar.covers(day):
                uncovered.add(day.year)
            if self.calendar.is_workday(day):
                return day
            day += dt.timedelta(days=1)

    def working_days_between(self, first: dt.date, last: dt.date) -> tuple[int, bool]:
        """Working days after `first` up to and including `last`, and whether any of them
        lies in an uncovered year (the count is then provisional)."""
        count, provisional, day = 0, False, first
        while day < last:
            day += dt.timedelta(days=1)
            provisional |= not self.calendar.covers(day)
            count += self.calendar.is_workday(day)
        return count, provisional


def assist_check_rule(urgency: str) -> str:
    """The rule for an assist-check request of urgency JJCD `1` (紧急) or `2` (急)."""
    return "assist_check_urgent" if str(urgency) == "1" else "assist_check"
