"""A report as tables (sheet name, headers, rows): what the XLSX, CSV and HTML writers show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.population_reports.balance import CHECK_LABELS, SEXES, TOTAL as TOTAL_LABEL
from gateway.population_reports.events import ITEM_LABELS, ITEMS, REGISTRY_SIGNS
from gateway.population_reports.figures import PopulationReport
from gateway.register.township_report import HEADER as TOWNSHIP_HEADER
from gateway.register.township_report import NOT_HELD, township_rows
from gateway.register.township_report import total as township_total

Cell = str | int | float | None


@dataclass
class Table:
    key: str  # file-name part: changes, population, months, women, townships, checks
    name: str  # sheet name, Chinese
    headers: list[str]
    rows: list[list[Cell]]


def _three(counts: list[int] | None) -> list[Cell]:
    return list(counts) if counts is not None else [None, None, None]


def tables(report: PopulationReport) -> list[Table]:
    found = [
        Table("changes", "人口变动", ["行政区划代码"] + [f"{ITEM_LABELS[item]} {sex}" for item in ITEMS for sex in SEXES],
              [[row.division] + [n for item in ITEMS for n in row.counts[item]] for row in report.changes]),
        _population(report),
        Table("months", "出生死亡与性别比",
              ["统计月"] + [f"{label} {sex}" for label in ("出生登记", "死亡", "出生人口") for sex in SEXES] + ["出生人口性别比"],
              [[row.month, *row.births, *row.deaths, *row.occurred, None if row.sex_ratio is None else round(row.sex_ratio, 1)]
               for row in report.months]),
    ]
    if report.women is not None:
        found.append(Table("women", "育龄妇女迁移", ["行政区划代码", "15–49岁妇女 迁入", "15–49岁妇女 迁出"],
                           [[row.division, row.moves_in, row.moves_out] for row in report.women]))
    found.append(_townships(report))
    checks: list[list[Cell]] = [
        [CHECK_LABELS[f.check], f.table, f.row, f.column, f.expected, f.found, f.detail] for f in report.failures
    ] or [["全部平衡 all balance checks pass", None, None, None, None, None, "; ".join(CHECK_LABELS.values())]]
    found.append(Table("checks", "平衡检查", ["检查", "表", "行", "列", "应为", "实为", "说明"], checks))
    return found


def _townships(report: PopulationReport) -> Table:
    """分乡镇: each township, the unplaced, the county (合计), then the items no feed holds."""
    part = report.townships
    rows: list[list[Cell]] = [[code or None, name, *counts] for code, name, counts in township_rows(part.figures, part.divisions)]
    rows.append([TOTAL_LABEL, "全县 county", *township_total(part.figures).counts()])
    blank: list[Cell] = [None] * (len(TOWNSHIP_HEADER) - 2)
    rows += [[item, note, *blank] for item, note in NOT_HELD.items()]
    return Table("townships", "分乡镇", list(TOWNSHIP_HEADER), rows)


def _population(report: PopulationReport) -> Table:
    headers = ["行政区划代码"] + [f"期初 {s}" for s in SEXES] + ["期初来源"]
    headers += [f"{ITEM_LABELS[item]} {s}" for item in REGISTRY_SIGNS for s in SEXES]
    headers += [f"期末 {s}" for s in SEXES] + ["期末来源", "期末应为 合计", "差额 合计"]
    rows: list[list[Cell]] = []
    for row in report.population:
        expected = row.expected_end
        difference = row.end[2] - expected[2] if row.end is not None and expected is not None else None
        rows.append(
            [row.division, *_three(row.start), row.start_source]
            + [n for item in REGISTRY_SIGNS for n in row.changes[item]]
            + [*_three(row.shown_end), row.end_source, expected[2] if expected else None, difference]
        )
    return Table("population", "户籍人口", headers, rows)


def summary(report: PopulationReport) -> dict[str, Any]:
    """The machine-readable summary (`--json`, and the .json beside the files)."""
    period = report.period
    total = report.changes[-1].counts
    return {
        "report": period.kind,
        "period": period.label,
        "first_day": period.first.isoformat(),
        "last_day": period.last.isoformat(),
        "due": period.due.isoformat(),
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "balanced": report.balanced,
        "status": report.status,
        "failures": [f.as_dict() for f in report.failures],
        "notes": report.notes,
        "records_read": report.records,
        "totals": {item: {"male": c[0], "female": c[1], "total": c[2]} for item, c in total.items()},
        "births_occurred": {"male": report.occurred[0], "female": report.occurred[1], "total": report.occurred[2]},
        "sex_ratio_at_birth": None if report.sex_ratio is None else round(report.sex_ratio, 1),
        "divisions": [row.division for row in report.changes[:-1]],
        "townships": _township_summary(report),
    }


def _township_summary(report: PopulationReport) -> dict[str, Any]:
    """The county's figures of the 分乡镇 table, and what no feed holds."""
    county = township_total(report.townships.figures)
    sexes = lambda counts: {"male": counts["1"], "female": counts["2"]}  # noqa: E731
    return {
        "townships": len(report.townships.divisions.townships),
        "hospital_births": sexes(county.hospital_births),
        "infant_deaths": sexes(county.infant_deaths),
        "deaths_by_age": {band: sexes(counts) for band, counts in county.deaths.items()},
        "registrations_born_this_year": county.registrations,
        "late_registrations": county.late_registrations,
        "not_held": list(NOT_HELD),
    }
