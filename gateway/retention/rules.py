"""The `[retention]` table of gateway.toml (保存期限规则): per contract, how long its records
are kept, as a whole number and a unit: `y` years, `m` months, `d` days (`"10y"`, `"18m"`,
`"400d"`). Two optional keys keep the refused side shorter or longer: `rejected_files` (the
archived file of a wholly refused drop) and `row_errors` (the row errors of any exchange).

```toml
[retention]
BirthEvent = "10y"
HouseholdRegistration = "30y"
rejected_files = "2y"
row_errors = "2y"
```

No rule: nothing is ever deleted. A record's age runs from its exchange's receipt time
(`received_at`) to the business clock (gateway/clock.py), in China time, by calendar."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway import clock
from gateway.errors import ConfigError

PERIOD = re.compile(r"\s*(\d{1,4})\s*([ymd])\s*")
UNITS = {"y": ("年", "year(s)"), "m": ("个月", "month(s)"), "d": ("天", "day(s)")}
REJECTED_FILES = "rejected_files"
ROW_ERRORS = "row_errors"
SPECIAL = (REJECTED_FILES, ROW_ERRORS)


@dataclass(frozen=True)
class Period:
    """A keep period: `amount` of `unit` (y, m or d)."""

    amount: int
    unit: str

    @property
    def text(self) -> str:
        return f"{self.amount}{self.unit}"

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        """The moment before which something received is past this period at `now` (UTC)."""
        local = clock.in_china(now)
        if self.unit == "d":
            return (local - dt.timedelta(days=self.amount)).astimezone(dt.UTC)
        months = self.amount * (12 if self.unit == "y" else 1)
        year, month = divmod(local.year * 12 + local.month - 1 - months, 12)
        month += 1
        day = min(local.day, _days_in(year, month))
        return local.replace(year=year, month=month, day=day).astimezone(dt.UTC)


def _days_in(year: int, month: int) -> int:
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


@dataclass(frozen=True)
class Rule:
    """One rule: the records of `contract` (or `rejected_files`, `row_errors`) are kept `period`."""

    name: str
    period: Period

    @property
    def text(self) -> str:
        """The rule as configured, e.g. `BirthEvent = 10y` (what a purge records)."""
        return f"{self.name} = {self.period.text}"


@dataclass(frozen=True)
class RetentionRules:
    records: tuple[Rule, ...] = ()
    rejected_files: Rule | None = None
    row_errors: Rule | None = None

    @property
    def any(self) -> bool:
        return bool(self.records or self.rejected_files or self.row_errors)

    def for_contract(self, contract: str) -> Rule | None:
        return next((rule for rule in self.records if rule.name == contract), None)


def parse_period(key: str, value: object) -> Period:
    """`"10y"` -> Period(10, "y"); anything else is a ConfigError in Chinese and English."""
    match = PERIOD.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(
            f"[retention] {key} = {value!r}:保存期限须为正整数加单位 y(年)、m(月)或 d(天),如 \"10y\"、\"18m\"、\"400d\" / "
            f"a keep period is a whole number above 0 and a unit, y (years), m (months) or d (days), "
            f"e.g. \"10y\", \"18m\", \"400d\""
        )
    return Period(int(match.group(1)), match.group(2))


def parse_rules(table: Mapping[str, object], contracts: Iterable[str]) -> RetentionRules:
    """The `[retention]` table checked against the contracts the gateway knows (built-in and plugins')."""
    known = sorted(set(contracts))
    records: list[Rule] = []
    special: dict[str, Rule] = {}
    for key, value in table.items():
        period = parse_period(key, value)
        if key in SPECIAL:
            special[key] = Rule(key, period)
        elif key in known:
            records.append(Rule(key, period))
        else:
            raise ConfigError(
                f"[retention] {key}:没有名为 {key!r} 的数据契约。可用的契约:{', '.join(known)};另可设 {', '.join(SPECIAL)} / "
                f"no contract is named {key!r}. Valid choices: {', '.join(known)}; also {', '.join(SPECIAL)}"
            )
    return RetentionRules(tuple(sorted(records, key=lambda r: r.name)), special.get(REJECTED_FILES), special.get(ROW_ERRORS))


def load_rules(table: Mapping[str, object]) -> RetentionRules:
    """The rules of this gateway's `[retention]` (the contracts from the plugin manager)."""
    from gateway.plugins import contracts

    return parse_rules(table, contracts())
