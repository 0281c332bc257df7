"""The balance checks the statistics office applies to a population report (平衡关系):

- **sex** (男+女=合计): in every row of every table, male + female = total;
- **divisions** (各区划之和=合计): the division rows add up to the total row, column by column
  (a record without a 行政区划代码 counts in the total only, and shows here);
- **population** (期初+出生−死亡+迁入−迁出=期末): for the registered population of each
  division and of the total, by sex, when the end is a counted snapshot.

A report that does not balance is still produced, marked 不平衡 unbalanced, with each
failure naming the table, the row, the column and the figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gateway.population_reports.events import ITEM_LABELS, ITEMS, REGISTRY_SIGNS

SEXES = ("男", "女", "合计")
TOTAL = "合计"  # the total row's division (figures.TOTAL)


class _ChangeRow(Protocol):
    @property
    def division(self) -> str: ...
    @property
    def counts(self) -> Mapping[str, Sequence[int]]: ...


class _PopulationRow(Protocol):
    @property
    def division(self) -> str: ...
    @property
    def start(self) -> Sequence[int] | None: ...
    @property
    def changes(self) -> Mapping[str, Sequence[int]]: ...
    @property
    def end(self) -> Sequence[int] | None: ...
    @property
    def end_source(self) -> str: ...
    @property
    def expected_end(self) -> Sequence[int] | None: ...


class _WomenRow(Protocol):
    @property
    def moves_in(self) -> int: ...
    @property
    def moves_out(self) -> int: ...


class Balanced(Protocol):
    """What the checks read of a report (`figures.PopulationReport`, which calls them)."""

    @property
    def changes(self) -> Sequence[_ChangeRow]: ...
    @property
    def population(self) -> Sequence[_PopulationRow]: ...
    @property
    def women(self) -> Sequence[_WomenRow] | None: ...
CHECK_LABELS = {
    "sex": "男+女=合计 male + female = total",
    "divisions": "各区划之和=合计 divisions sum to the total",
    "population": "期初+出生−死亡+迁入−迁出=期末 start + births − deaths + in − out = end",
}


@dataclass(frozen=True)
class Failure:
    """Where a report does not balance."""

    check: str  # sex | divisions | population
    table: str
    row: str
    column: str
    expected: int
    found: int
    detail: str

    def text(self) -> str:
        return f"{self.table} / {self.row} / {self.column}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(report: Balanced) -> list[Failure]:
    failures: list[Failure] = []
    changes = "人口变动"
    for row in report.changes:
        for item in ITEMS:
            male, female, total = row.counts[item]
            if male + female != total:
                failures.append(Failure(
                    "sex", changes, row.division, ITEM_LABELS[item], total, male + female,
                    f"男 {male} + 女 {female} = {male + female} ≠ 合计 {total} "
                    f"({total - male - female} with the sex unknown or unstated)",
                ))
    divisions, total_row = report.changes[:-1], report.changes[-1]
    for item in ITEMS:
        for i, sex in enumerate(SEXES):
            summed = sum(row.counts[item][i] for row in divisions)
            if summed != total_row.counts[item][i]:
                failures.append(Failure(
                    "divisions", changes, TOTAL, f"{ITEM_LABELS[item]} {sex}", total_row.counts[item][i], summed,
                    f"divisions sum to {summed} ≠ 合计 {total_row.counts[item][i]} "
                    f"({total_row.counts[item][i] - summed} without a 行政区划代码)",
                ))
    for row in report.population:
        for label, counts in (("期初", row.start), ("期末", row.end)):
            if counts is not None and counts[0] + counts[1] != counts[2]:
                failures.append(Failure("sex", "户籍人口", row.division, label, counts[2], counts[0] + counts[1],
                                        f"男 {counts[0]} + 女 {counts[1]} ≠ 合计 {counts[2]}"))
        expected = row.expected_end
        if row.end is None or expected is None:
            continue
        for i, sex in enumerate(SEXES):
            if expected[i] != row.end[i]:
                moves = " ".join(
                    f"{'+' if sign > 0 else '−'} {ITEM_LABELS[item]} {row.changes[item][i]}" for item, sign in REGISTRY_SIGNS.items()
                )
                failures.append(Failure(
                    "population", "户籍人口", row.division, f"期末 {sex}", expected[i], row.end[i],
                    f"期初 {row.start[i]} {moves} = {expected[i]} ≠ 期末 {row.end[i]} ({row.end_source}); "  # type: ignore[index]
                    f"difference {row.end[i] - expected[i]:+d}",
                ))
    if report.women is not None:
        women_divisions, women_total = report.women[:-1], report.women[-1]
        for name, label in (("moves_in", "迁入"), ("moves_out", "迁出")):
            summed = sum(getattr(row, name) for row in women_divisions)
            if summed != getattr(women_total, name):
                failures.append(Failure(
                    "divisions", "育龄妇女迁移", TOTAL, label, getattr(women_total, name), summed,
                    f"divisions sum to {summed} ≠ 合计 {getattr(women_total, name)}",
                ))
    return failures
