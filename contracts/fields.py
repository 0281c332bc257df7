"""Field types the departments' files share: dates in four spellings, trimmed text,
names and addresses (personal data, masked wherever people or logs see them), and the
GB/T 2261.1 sex code.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

_DATE_FORMS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
)


_fromisoformat = dt.date.fromisoformat
_today_cache: tuple[int, dt.date] = (-1, dt.date.min)


def today() -> dt.date:
    """`datetime.date.today()`, computed at most once per second of wall-clock time.

    Every date and ID-number check compares with today; `date.today()` costs about a
    microsecond (a localtime conversion), several times per row. UTC offsets are whole
    seconds, so the local date cannot change within one second of the epoch clock: the
    cached value is exactly what `date.today()` would return.
    """
    global _today_cache
    second = int(time.time())
    cached = _today_cache
    if cached[0] != second:
        cached = _today_cache = (second, dt.date.today())
    return cached[1]


def parse_date(value: Any) -> Any:
    """Accept `2026-10-03`, `2026/10/5`, `20261008` and `2026年10月7日`."""
    if value.__class__ is str:
        text = value.strip()
        # Fast path for the usual spelling: fromisoformat (C, ASCII digits only) reads
        # exactly YYYY-MM-DD at this length and these separators; anything it refuses
        # (full-width digits, impossible dates, ...) takes the path below unchanged.
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            try:
                return _fromisoformat(text)
            except ValueError:
                pass
    elif isinstance(value, dt.date) or value is None:
        return value
    elif not isinstance(value, str):
        raise PydanticCustomError("date_format", "date must be written as 2026-10-03, 2026/10/5, 20261008 or 2026年10月7日")
    else:
        text = value.strip()
    if not text:
        return None
    for form in _DATE_FORMS:
        match = form.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return dt.date(year, month, day)
            except ValueError:
                raise PydanticCustomError("date_impossible", "date does not exist in the calendar") from None
    raise PydanticCustomError("date_format", "date must be written as 2026-10-03, 2026/10/5, 20261008 or 2026年10月7日")


def not_in_future(value: dt.date | None) -> dt.date | None:
    if value is not None and value > today():
        raise PydanticCustomError("date_future", "date lies in the future")
    return value


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


Date = Annotated[dt.date, BeforeValidator(parse_date)]
PastDate = Annotated[dt.date, BeforeValidator(parse_date), AfterValidator(not_in_future)]
Text = Annotated[str, BeforeValidator(_blank_to_none)]
PersonName = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    Field(max_length=64, json_schema_extra={"kind": "name"}, description="姓名 (may hold characters outside the BMP)"),
]
Address = Annotated[str, BeforeValidator(_blank_to_none), Field(max_length=200, json_schema_extra={"kind": "address"})]
DivisionCode = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    Field(pattern=r"^\d{6}$", description="行政区划代码: 6-digit administrative division code"),
]


class Sex(str, Enum):
    """性别 (GB/T 2261.1)."""

    UNKNOWN = "0"
    MALE = "1"
    FEMALE = "2"
    UNSTATED = "9"

    @property
    def label(self) -> str:
        return _SEX_LABELS[self]


_SEX_LABELS = {Sex.UNKNOWN: "未知的性别", Sex.MALE: "男", Sex.FEMALE: "女", Sex.UNSTATED: "未说明的性别"}
_SEX_BY_LABEL = {"男": Sex.MALE, "女": Sex.FEMALE, "未知": Sex.UNKNOWN, "未知的性别": Sex.UNKNOWN, "未说明": Sex.UNSTATED, "未说明的性别": Sex.UNSTATED}


def parse_sex(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text in _SEX_BY_LABEL:
            return _SEX_BY_LABEL[text]
        if text in {"0", "1", "2", "9"}:
            return Sex(text)
        raise PydanticCustomError("sex_code", "sex must be 男/女 or the code 1, 2, 0 or 9")
    return value


SexCode = Annotated[Sex, BeforeValidator(parse_sex)]
