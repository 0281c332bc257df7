"""Reconciliation gaps (核对, gateway/reconcile/) and population reports with their charts
(人口变动统计报表, gateway/population_reports/), as the console shows them.

Reading never evaluates: the open discrepancies are those of the last evaluation (the
scheduled job or `gateway reconcile`); "Evaluate now" on the page runs one."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine

from gateway import clock
from gateway.store.audit import mask_text
from gateway.config import Settings


class Gap(BaseModel):
    """One open discrepancy, identifiers masked (`OpenItem.to_json` masks them)."""

    id: int
    subject: str
    name: str
    identifier: str
    department: str
    contract: str
    event_date: dt.date
    due_on: dt.date
    notify: list[str]
    details: str
    proposals: int


class RuleGaps(BaseModel):
    rule: str
    description: str
    grace: str
    open: int
    items: list[Gap]


def reconciliation(engine: Engine, settings: Settings, scope: str | None) -> list[RuleGaps]:
    """Every configured rule with its open discrepancies; a department account sees those
    it is to be told about (its `notify` list)."""
    from gateway.reconcile import configured_rules, open_items

    rules = configured_rules(settings)
    found = open_items(engine, list(rules), department=scope)
    shown = []
    for name, configured in rules.items():
        items = []
        for item in found.get(name, []):
            row = item.to_json()
            items.append(
                Gap(
                    id=row["id"] or 0, subject=mask_text(str(row["subject"])), name=mask_text(str(row["name"])),
                    identifier=str(row["identifier"]), department=str(row["record"]["department"]),
                    contract=str(row["record"]["contract"]), event_date=row["event_date"], due_on=row["due_on"],
                    notify=[d for d in row["notify"] if d], details=mask_text(json.dumps(row["details"], ensure_ascii=False, sort_keys=True)),
                    proposals=len(row["proposals"]),
                )
            )
        shown.append(RuleGaps(rule=name, description=configured.rule.description, grace=_grace_text(configured),
                              open=len(items), items=items))
    return shown


def _grace_text(configured: Any) -> str:
    grace = configured.grace
    unit = grace.unit if grace.amount != 1 else grace.unit.rstrip("s")
    return f"{grace.amount} {unit} ({configured.grace_source})"


def reconciliation_counts(engine: Engine, settings: Settings, scope: str | None) -> dict[str, int]:
    return {rules.rule: rules.open for rules in reconciliation(engine, settings, scope)}


def evaluate_now(engine: Engine, settings: Settings) -> str:
    from gateway.reconcile import evaluate

    return evaluate(engine, settings, clock.today()).summary()


# -- population reports ----------------------------------------------------------------------


class ReportTable(BaseModel):
    key: str
    name: str
    headers: list[str]
    rows: list[list[str | int | float | None]]


class ReportView(BaseModel):
    kind: str
    label: str
    title: str
    first_day: dt.date
    last_day: dt.date
    due: dt.date
    balanced: bool
    status: str
    failures: list[str]
    notes: list[str]
    cards: list[tuple[str, str]]
    births_chart: str
    """inline SVG (drawn by gateway/population_reports/charts.py)"""
    sex_ratio_chart: str
    tables: list[ReportTable]
    summary: dict[str, Any]


def report_view(engine: Engine, settings: Settings, kind: str, label: str | None) -> tuple[ReportView, Any]:
    """The report of a period (default: the latest due, as `gateway report KIND`), and the
    report object itself (for the self-contained HTML download)."""
    from gateway.population_reports import charts, periods
    from gateway.population_reports.figures import build
    from gateway.population_reports.tables import summary, tables

    chosen = periods.period(kind, label) if label else periods.latest_due(kind, clock.today())
    report = build(engine, settings, chosen, update_register=False)  # the console reads; the daemon folds
    total = report.changes[-1].counts
    ratio = report.sex_ratio
    cards = [
        ("出生登记 births", str(total["births"][2])), ("死亡 deaths", str(total["deaths"][2])),
        ("迁入 moves in", str(total["moves_in"][2])), ("迁出 moves out", str(total["moves_out"][2])),
        ("出生人口 births occurred", str(report.occurred[2])),
        ("出生人口性别比 sex ratio at birth", "—" if ratio is None else f"{ratio:.1f}"),
    ]
    months = [row.month for row in report.months]
    view = ReportView(
        kind=chosen.kind, label=chosen.label, title=chosen.title, first_day=chosen.first, last_day=chosen.last, due=chosen.due,
        balanced=report.balanced, status=report.status, failures=[f.text() for f in report.failures], notes=list(report.notes),
        cards=cards,
        births_chart=charts.births_and_deaths(months, [r.births[2] for r in report.months], [r.deaths[2] for r in report.months]),
        sex_ratio_chart=charts.sex_ratio(months, [r.sex_ratio for r in report.months], [r.occurred[2] for r in report.months],
                                         report.options.sex_ratio_low, report.options.sex_ratio_high),
        tables=[ReportTable(key=t.key, name=t.name, headers=list(t.headers), rows=[list(r) for r in t.rows]) for t in tables(report)],
        summary=summary(report),
    )
    return view, report
