"""The registered population at given dates (时点户籍人口), per division and sex.

The gateway sees changes, not the population itself. The office keeps the population
counts it gets from the household registry in HOME/population_snapshots.csv (UTF-8,
with or without BOM):

    时点,行政区划代码,男,女
    2026-09-20,440781,120345,118020

`时点` is a date: the population at the end of that day. A report's start (期初) is
the snapshot at the end of the day before its period, its end (期末) the snapshot at the
end of its last day. A missing start is carried forward from the latest earlier
snapshot with the changes in between (推算); a missing end is the start plus the changes
(推算), and then the population identity holds by construction and is reported as not
checked against a count.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import ConfigError

HEADERS = {"时点": "date", "date": "date", "行政区划代码": "division", "division_code": "division", "男": "male", "male": "male", "女": "female", "female": "female"}


@dataclass
class Snapshots:
    """{date: {division: (male, female)}}; empty when there is no file."""

    path: Path
    counts: dict[dt.date, dict[str, tuple[int, int]]] = field(default_factory=dict)

    def at(self, day: dt.date) -> dict[str, tuple[int, int]] | None:
        return self.counts.get(day)

    def latest_before(self, day: dt.date) -> dt.date | None:
        earlier = [d for d in self.counts if d < day]
        return max(earlier) if earlier else None


def load(path: Path) -> Snapshots:
    """Read the snapshots; a bad line is an error naming the file, the line and the fix."""
    found = Snapshots(path)
    if not path.exists():
        return found
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        columns = [HEADERS.get((name or "").strip()) for name in (header or [])]
        if sorted(c for c in columns if c) != ["date", "division", "female", "male"]:
            raise ConfigError(f"{path}: the first line must be 时点,行政区划代码,男,女 (or date,division_code,male,female)")
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            values = {column: cell.strip() for column, cell in zip(columns, row) if column}
            try:
                day = dt.date.fromisoformat(values["date"])
                division = values["division"]
                if len(division) != 6 or not division.isdigit():
                    raise ValueError("行政区划代码 must be six digits")
                male, female = int(values["male"]), int(values["female"])
                if male < 0 or female < 0:
                    raise ValueError("counts cannot be negative")
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"{path}, line {number}: {exc}; write YYYY-MM-DD,<6-digit code>,<men>,<women>") from None
            at = found.counts.setdefault(day, {})
            if division in at:
                raise ConfigError(f"{path}, line {number}: {division} at {day} is given twice")
            at[division] = (male, female)
    return found
