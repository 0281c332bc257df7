"""Statistical periods (统计期) of the population reports and their due dates.

A statistical month runs from the 21st of the previous month to the 20th, China time:
the exchange cycle's submission window (报送周期, gateway/platform/cycle_report.py). That is what
lets a month's report be due on the 28th of the same month, as the regulations ask:

- monthly (月报) `2026-10`: 2026-09-21 – 2026-10-20, due by 2026-10-28;
- quarterly (季报) `2026Q3`: 2026-06-21 – 2026-09-20, due by 2026-09-28;
- half-year (半年报) `2026H1`: 2025-12-21 – 2026-06-20, due by 2026-06-28;
- annual (年报) `2026`: 2025-12-21 – 2026-12-20, due by 2027-01-10.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from gateway.errors import GatewayError

KINDS = ("monthly", "quarterly", "half-year", "annual")
KIND_LABELS = {"monthly": "月报", "quarterly": "季报", "half-year": "半年报", "annual": "年报"}
CYCLE_START_DAY = 21


@dataclass(frozen=True)
class Period:
    """One report's statistical period: `first` to `last`, both days included."""

    kind: str
    label: str  # 2026-10 | 2026Q3 | 2026H1 | 2026
    first: dt.date
    last: dt.date
    due: dt.date

    @property
    def title(self) -> str:
        return f"{self.label} {KIND_LABELS[self.kind]}"

    @property
    def months(self) -> list[str]:
        """The statistical months (YYYY-MM) the period is made of."""
        found, month = [], month_of(self.first)
        while month <= month_of(self.last):
            found.append(month)
            month = next_month(month)
        return found

    def contains(self, day: dt.date) -> bool:
        return self.first <= day <= self.last

    @property
    def stem(self) -> str:
        """The files' name stem: population-monthly-2026-10."""
        return f"population-{self.kind}-{self.label}"


def month_of(day: dt.date) -> str:
    """The statistical month a day belongs to: the 21st opens the next month's."""
    if day.day >= CYCLE_START_DAY:
        day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return f"{day:%Y-%m}"


def next_month(month: str) -> str:
    first = dt.date.fromisoformat(month + "-01")
    return f"{(first + dt.timedelta(days=32)).replace(day=1):%Y-%m}"


def _span(first_month: str, last_month: str) -> tuple[dt.date, dt.date]:
    """From the 21st before `first_month` to the 20th of `last_month`."""
    start = dt.date.fromisoformat(first_month + "-01")
    previous = (start - dt.timedelta(days=1)).replace(day=CYCLE_START_DAY)
    return previous, dt.date.fromisoformat(last_month + "-01").replace(day=CYCLE_START_DAY - 1)


def monthly(label: str) -> Period:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", label.strip()):
        raise GatewayError(f"--month {label!r}: write the month as YYYY-MM, e.g. 2026-10")
    label = label.strip()
    first, last = _span(label, label)
    return Period("monthly", label, first, last, dt.date.fromisoformat(label + "-28"))


def quarterly(label: str) -> Period:
    found = re.fullmatch(r"(\d{4})-?Q([1-4])", label.strip().upper())
    if not found:
        raise GatewayError(f"--quarter {label!r}: write the quarter as YYYYQn, e.g. 2026Q3")
    year, quarter = int(found[1]), int(found[2])
    first, last = _span(f"{year}-{quarter * 3 - 2:02d}", f"{year}-{quarter * 3:02d}")
    return Period("quarterly", f"{year}Q{quarter}", first, last, dt.date(year, quarter * 3, 28))


def half_year(label: str) -> Period:
    found = re.fullmatch(r"(\d{4})(?:-?H([12]))?", label.strip().upper())
    if not found:
        raise GatewayError(f"--year {label!r}: write the half-year as YYYY (first half) or YYYYH1 / YYYYH2")
    year, half = int(found[1]), int(found[2] or 1)
    first, last = _span(f"{year}-{half * 6 - 5:02d}", f"{year}-{half * 6:02d}")
    return Period("half-year", f"{year}H{half}", first, last, dt.date(year, half * 6, 28))


def annual(label: str) -> Period:
    if not re.fullmatch(r"\d{4}", label.strip()):
        raise GatewayError(f"--year {label!r}: write the year as YYYY, e.g. 2026")
    year = int(label)
    first, last = _span(f"{year}-01", f"{year}-12")
    return Period("annual", str(year), first, last, dt.date(year + 1, 1, 10))


# A statistical year the calendar can hold with the month before its first and the due day
# after its last (year 0000 does not exist; 9999's annual report would be due in 10000).
FIRST_YEAR, LAST_YEAR = 1900, 9998


def period(kind: str, label: str) -> Period:
    """The period of `kind` named `label`."""
    makers = {"monthly": monthly, "quarterly": quarterly, "half-year": half_year, "annual": annual}
    if kind not in makers:
        from gateway.errors import UnknownName

        raise UnknownName("report kind", kind, list(KINDS))
    year = re.match(r"\s*(\d{4})", label)
    if year and not FIRST_YEAR <= int(year[1]) <= LAST_YEAR:
        raise GatewayError(f"统计年份应在{FIRST_YEAR}至{LAST_YEAR}之间 The year of a report must be {FIRST_YEAR} to {LAST_YEAR}, not {year[1]}")
    return makers[kind](label)


def latest_due(kind: str, today: dt.date) -> Period:
    """The most recent period of `kind` whose due date is `today` or before."""
    candidate = containing(kind, today)
    while candidate.due > today:
        candidate = previous(candidate)
    return candidate


def containing(kind: str, day: dt.date) -> Period:
    """The period of `kind` that `day` falls in."""
    month = month_of(day)
    year, number = int(month[:4]), int(month[5:])
    if kind == "monthly":
        return monthly(month)
    if kind == "quarterly":
        return quarterly(f"{year}Q{(number - 1) // 3 + 1}")
    if kind == "half-year":
        return half_year(f"{year}H{1 if number <= 6 else 2}")
    return annual(str(year))


def previous(current: Period) -> Period:
    """The period of the same kind just before `current`."""
    return containing(current.kind, current.first - dt.timedelta(days=1))
