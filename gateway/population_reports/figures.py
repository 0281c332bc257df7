"""The figures of one population report (人口变动统计), built from the stored records
(events.py) and the population snapshots (snapshots.py), then balance-checked (balance.py);
the township breakdown (分乡镇) comes from the register (gateway.register.township_report)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine

from gateway import clock
from gateway.config import Settings
from gateway.population_reports import balance
from gateway.population_reports.events import FEMALE, ITEMS, MALE, REGISTRY_SIGNS, Event, Events, read_events
from gateway.population_reports.periods import Period, month_of
from gateway.population_reports.settings import ReportSettings, report_settings, snapshots_path
from gateway.population_reports.snapshots import Snapshots, load
from gateway.register import fold
from gateway.register.build import divisions_or_none
from gateway.register.divisions import Division, Divisions, DivisionsError
from gateway.register.lists import Period as Span
from gateway.register.township_report import TownshipFigures, township_figures

TOTAL = balance.TOTAL
CHART_MONTHS = 12
WOMEN_AGES = (15, 49)


def tally(counts: list[int], sex: str | None) -> None:
    """Count one person into [男, 女, 合计]; an unknown sex goes into 合计 only."""
    if sex == MALE:
        counts[0] += 1
    elif sex == FEMALE:
        counts[1] += 1
    counts[2] += 1


def zero() -> list[int]:
    return [0, 0, 0]


@dataclass
class ChangeRow:
    """One row of the population changes (人口变动): a division, or the total."""

    division: str
    counts: dict[str, list[int]] = field(default_factory=lambda: {item: zero() for item in ITEMS})


@dataclass
class PopulationRow:
    """One division's registered population (户籍人口): start, changes, end, each [男, 女, 合计]."""

    division: str
    start: list[int] | None
    start_source: str
    changes: dict[str, list[int]]
    end: list[int] | None  # counted (a snapshot), or None when there is none
    end_source: str

    @property
    def expected_end(self) -> list[int] | None:
        if self.start is None:
            return None
        return [self.start[i] + sum(sign * self.changes[item][i] for item, sign in REGISTRY_SIGNS.items()) for i in range(3)]

    @property
    def shown_end(self) -> list[int] | None:
        return self.end if self.end is not None else self.expected_end


@dataclass
class MonthRow:
    """A statistical month for the charts: registered births and deaths, births that occurred."""

    month: str
    births: list[int] = field(default_factory=zero)
    deaths: list[int] = field(default_factory=zero)
    occurred: list[int] = field(default_factory=zero)

    @property
    def sex_ratio(self) -> float | None:
        return sex_ratio(self.occurred)


@dataclass
class WomenRow:
    """Women aged 15–49 moving in and out (育龄妇女迁入迁出) of one division or the total."""

    division: str
    moves_in: int = 0
    moves_out: int = 0


def sex_ratio(counts: list[int]) -> float | None:
    """Boys per 100 girls (出生人口性别比); None without girls."""
    return counts[0] * 100 / counts[1] if counts[1] else None


@dataclass
class Townships:
    """The township breakdown (分乡镇): figures per township code of `divisions` (and `unplaced`).
    Without a usable divisions.csv, `divisions` has no townships and everything is unplaced."""

    divisions: Divisions
    figures: dict[str, TownshipFigures]
    problem: str | None = None  # why there are no townships


@dataclass
class PopulationReport:
    period: Period
    generated_at: dt.datetime
    changes: list[ChangeRow]
    population: list[PopulationRow]
    months: list[MonthRow]
    women: list[WomenRow] | None
    occurred: list[int]
    records: int
    options: ReportSettings
    townships: Townships
    failures: list[balance.Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        return "平衡 balanced" if self.balanced else "不平衡 unbalanced"

    @property
    def sex_ratio(self) -> float | None:
        return sex_ratio(self.occurred)


def build(
    engine: Engine, settings: Settings, period: Period, *, events: Events | None = None, update_register: bool = True
) -> PopulationReport:
    """The report of `period`, from every current record and the snapshots file.

    `update_register`: fold what is new into the register before the 分乡镇 table reads it
    (False for a reader, such as the console, that must not write; the daemon keeps it current)."""
    options = report_settings(settings)
    found = events or read_events(engine)
    snapshots = load(snapshots_path(settings, options))
    in_period = [e for e in found.events if period.contains(e.day)]
    report = PopulationReport(
        period=period,
        generated_at=clock.now(),
        changes=_changes(in_period),
        population=_population(found.events, in_period, snapshots, period),
        months=_months(found, period),
        women=_women(in_period) if period.kind == "quarterly" else None,
        occurred=_occurred(found, period),
        records=found.records,
        options=options,
        townships=_townships(engine, settings, period, update_register),
    )
    if report.townships.problem:
        report.notes.append(report.townships.problem)
    if not snapshots.counts:
        report.notes.append(
            f"没有时点户籍人口 no population snapshots ({snapshots.path.name}): the start and end of the registered "
            "population are not known and the population identity is not checked"
        )
    elif any(row.end is None and row.start is not None for row in report.population):
        report.notes.append(
            f"期末推算 the end of some divisions is start + changes (no snapshot at {period.last}): their identity holds by "
            "construction and is not checked against a count"
        )
    report.failures = balance.check(report)
    return report


def _townships(engine: Engine, settings: Settings, period: Period, update_register: bool) -> Townships:
    """The register is brought up to date first (fold is incremental), then read for the period."""
    span = Span(period.label, period.first, period.last)
    problem = None
    try:
        divisions = divisions_or_none(settings)
        if divisions is not None and update_register:
            fold(engine, settings)
    except DivisionsError as exc:
        divisions, problem = None, f"区划文件有误 divisions.csv is wrong ({exc}): the 分乡镇 table shows the county only"
    if divisions is None:
        problem = problem or ("没有区划文件 no HOME/divisions.csv: the 分乡镇 table shows the county only "
                              "(write one: gateway register divisions --example, docs/register.md)")
        divisions = Divisions(Division("", "", "county"))
    return Townships(divisions, township_figures(engine, span, divisions), problem)


def _changes(events: list[Event]) -> list[ChangeRow]:
    rows: dict[str, ChangeRow] = {}
    total = ChangeRow(TOTAL)
    for event in events:
        tally(total.counts[event.item], event.sex)  # every event, with or without a division
        if event.division:
            tally(rows.setdefault(event.division, ChangeRow(event.division)).counts[event.item], event.sex)
    return [rows[code] for code in sorted(rows)] + [total]


def _net(events: list[Event], division: str, after: dt.date, until: dt.date) -> list[int]:
    """The registered population's net change of `division` in (after, until]."""
    net = zero()
    for event in events:
        if event.item in REGISTRY_SIGNS and event.division == division and after < event.day <= until:
            counts = zero()
            tally(counts, event.sex)
            for i in range(3):
                net[i] += REGISTRY_SIGNS[event.item] * counts[i]
    return net


def _population(all_events: list[Event], in_period: list[Event], snapshots: Snapshots, period: Period) -> list[PopulationRow]:
    before = period.first - dt.timedelta(days=1)
    divisions = {code for at in snapshots.counts.values() for code in at}
    divisions |= {e.division for e in in_period if e.item in REGISTRY_SIGNS and e.division}
    rows: list[PopulationRow] = []
    for division in sorted(divisions):
        changes = {item: zero() for item in REGISTRY_SIGNS}
        for event in in_period:
            if event.item in REGISTRY_SIGNS and event.division == division:
                tally(changes[event.item], event.sex)
        start, start_source = _start(all_events, snapshots, division, before)
        at_end = (snapshots.at(period.last) or {}).get(division)
        end = [at_end[0], at_end[1], sum(at_end)] if at_end else None
        rows.append(PopulationRow(division, start, start_source, changes, end, f"时点数 {period.last}" if end else "推算 start + changes"))
    total_changes = {item: zero() for item in REGISTRY_SIGNS}
    for event in in_period:
        if event.item in REGISTRY_SIGNS:
            tally(total_changes[event.item], event.sex)
    starts = [row.start for row in rows]
    ends = [row.end for row in rows]
    total_start = [sum(s[i] for s in starts) for i in range(3)] if rows and all(s is not None for s in starts) else None  # type: ignore[index]
    total_end = [sum(e[i] for e in ends) for i in range(3)] if rows and all(e is not None for e in ends) else None  # type: ignore[index]
    rows.append(PopulationRow(TOTAL, total_start, "各区划之和 sum of divisions" if total_start else "无 unknown", total_changes,
                              total_end, "各区划之和 sum of divisions" if total_end else "推算 start + changes"))
    return rows


def _start(events: list[Event], snapshots: Snapshots, division: str, before: dt.date) -> tuple[list[int] | None, str]:
    at = (snapshots.at(before) or {}).get(division)
    if at is not None:
        return [at[0], at[1], sum(at)], f"时点数 {before}"
    earlier = sorted((d for d, counts in snapshots.counts.items() if d < before and division in counts), reverse=True)
    if not earlier:
        return None, "无 no snapshot"
    base = snapshots.counts[earlier[0]][division]
    net = _net(events, division, earlier[0], before)
    return [base[0] + net[0], base[1] + net[1], sum(base) + net[2]], f"推算 from {earlier[0]}"


def _chart_months(period: Period) -> list[str]:
    months = period.months
    while len(months) < CHART_MONTHS:
        first = dt.date.fromisoformat(months[0] + "-01") - dt.timedelta(days=1)
        months.insert(0, f"{first:%Y-%m}")
    return months


def _months(found: Events, period: Period) -> list[MonthRow]:
    rows = {month: MonthRow(month) for month in _chart_months(period)}
    for event in found.events:
        if event.item in ("births", "deaths") and event.day <= period.last:
            row = rows.get(month_of(event.day))
            if row is not None:
                tally(row.births if event.item == "births" else row.deaths, event.sex)
    for birth in found.births:
        row = rows.get(month_of(birth.day))
        if row is not None and birth.day <= period.last:
            tally(row.occurred, birth.sex)
    return list(rows.values())


def _occurred(found: Events, period: Period) -> list[int]:
    counts = zero()
    for birth in found.births:
        if period.contains(birth.day):
            tally(counts, birth.sex)
    return counts


def _women(events: list[Event]) -> list[WomenRow]:
    rows: dict[str, WomenRow] = defaultdict(lambda: WomenRow(""))
    total = WomenRow(TOTAL)
    low, high = WOMEN_AGES
    for event in events:
        if event.item not in ("moves_in", "moves_out") or event.sex != FEMALE or event.age is None or not low <= event.age <= high:
            continue
        targets = [total] + ([rows[event.division]] if event.division else [])
        for row in targets:
            if event.item == "moves_in":
                row.moves_in += 1
            else:
                row.moves_out += 1
    for code, row in rows.items():
        row.division = code
    return [rows[code] for code in sorted(rows)] + [total]
