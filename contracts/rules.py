"""Helpers for rules that span several fields (死亡日期 after 出生日期, 法定婚龄...).

A rule that fails raises a `ValidationError` located at the field the clerk must fix
(`husband.birth_date`, not the whole record), so the rejection report names the
column. Pydantic keeps the location when such an error is raised inside a validator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


def age_on(born: dt.date, day: dt.date) -> int:
    """Full years of age (周岁) on `day`; someone born on 29 February turns a year older on 1 March."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class RuleErrors:
    """Collects rule failures of one model, then raises them together."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.errors: list[InitErrorDetails] = []

    def add(self, loc: tuple[str, ...], code: str, message: str, value: Any = None) -> None:
        shown = value.isoformat() if isinstance(value, dt.date) else value
        self.errors.append(InitErrorDetails(type=PydanticCustomError(code, message), loc=loc, input=shown))

    def not_before(self, loc: tuple[str, ...], value: dt.date | None, earliest: dt.date | None, code: str, message: str) -> None:
        """`value` must not lie before `earliest` (either may be absent: nothing to compare)."""
        if value is not None and earliest is not None and value < earliest:
            self.add(loc, code, message, value)

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationError.from_exception_data(self.title, self.errors)
