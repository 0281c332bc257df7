"""Field types the departments' files share: dates in four spellings, trimmed text,
names, addresses, phone numbers and free text (personal data, masked wherever people or
logs see them), and the GB/T 2261.1 sex code.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
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
    """Today's date in China (UTC+8), computed at most once per second of wall-clock time.

    Dates in the records are China dates: a birth registered at 07:00 Beijing time on the
    5th is dated the 5th, which is still the 4th on a server kept in UTC; comparing with the
    machine's own date would reject it as "in the future" for eight hours a day. Every date
    and ID-number check compares with today, several times per row, so the value is cached
    for the current second of the epoch clock (whole-second offset: it cannot change within
    one).
    """
    global _today_cache
    second = int(time.time())
    cached = _today_cache
    if cached[0] != second:
        cached = _today_cache = (second, dt.date.fromordinal(_EPOCH_ORDINAL + (second + _CHINA_OFFSET) // 86400))
    return cached[1]


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_CHINA_OFFSET = 8 * 3600  # China Standard Time, no daylight saving (as gateway.clock.CHINA)


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


# -- one right form (issue 14) --------------------------------------------------------
#
# Full-width digits and Latin letters (`４４０７８１`, typed with a Chinese input method)
# are the same code as their ASCII forms: codes and ID numbers are folded to ASCII.
FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

# GB18030-2005 (Python's codec) decodes these 24 byte pairs to private-use characters;
# GB18030-2022 gives them their real characters (18 remapped by the standard; FE51,
# FE52, FE53, FE6C, FE76, FE91 are the Extension B characters every font shows).
GB18030_2022 = {
    0xE78D: 0xFE10, 0xE78E: 0xFE12, 0xE78F: 0xFE11, 0xE790: 0xFE13, 0xE791: 0xFE14, 0xE792: 0xFE15,
    0xE793: 0xFE16, 0xE794: 0xFE17, 0xE795: 0xFE18, 0xE796: 0xFE19, 0xE81E: 0x9FB4, 0xE826: 0x9FB5,
    0xE82B: 0x9FB6, 0xE82C: 0x9FB7, 0xE832: 0x9FB8, 0xE843: 0x9FB9, 0xE854: 0x9FBA, 0xE864: 0x9FBB,
    0xE816: 0x20087, 0xE817: 0x20089, 0xE818: 0x200CC, 0xE831: 0x215D7, 0xE83B: 0x2298F, 0xE855: 0x241FE,
}
# Invisible text that changes how a name reads or compares: control characters, soft
# hyphen, zero-width characters and joiners, bidirectional marks, overrides (RLO) and
# isolates, word joiners and invisible operators, the BOM, interlinear annotation.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U000e0000-\U000e0fff]"
)
_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")


def fold_width(value: Any) -> Any:
    """Full-width ASCII (and the ideographic space) as ASCII."""
    return value.translate(FULL_WIDTH) if isinstance(value, str) else value


def _code_text(value: Any) -> Any:
    return _blank_to_none(fold_width(value))


def clean_text(value: Any) -> Any:
    """Names and addresses: trimmed, GB18030-2022 characters for the private-use ones
    GB18030-2005 decodes to, NFC (one form for a character typed two ways)."""
    value = _blank_to_none(value)
    if isinstance(value, str):
        if not value.isascii():
            value = value.translate(GB18030_2022)
            if not unicodedata.is_normalized("NFC", value):
                value = unicodedata.normalize("NFC", value)
    return value


def clean_name(value: Any) -> Any:
    """A name as `clean_text`, refusing invisible control text (`name_invisible`) and
    private-use characters no standard names (`name_private_use`)."""
    value = clean_text(value)
    if isinstance(value, str) and not value.isascii():
        if _INVISIBLE.search(value):
            raise PydanticCustomError("name_invisible", "the name holds invisible control characters")
        if _PRIVATE_USE.search(value):
            raise PydanticCustomError("name_private_use", "the name holds a private-use character")
    elif isinstance(value, str) and _INVISIBLE.search(value):
        raise PydanticCustomError("name_invisible", "the name holds invisible control characters")
    return value


Date = Annotated[dt.date, BeforeValidator(parse_date)]
PastDate = Annotated[dt.date, BeforeValidator(parse_date), AfterValidator(not_in_future)]
Text = Annotated[str, BeforeValidator(_blank_to_none)]
PersonName = Annotated[
    str,
    BeforeValidator(clean_name),
    Field(max_length=64, json_schema_extra={"kind": "name"}, description="姓名 (may hold characters outside the BMP)"),
]
Address = Annotated[str, BeforeValidator(clean_text), Field(max_length=200, json_schema_extra={"kind": "address"})]
_PHONE = re.compile(r"^\d+(?:-\d+)*$")


def clean_phone(value: Any) -> Any:
    """A phone number (电话号码): trimmed, full-width digits as ASCII, then digits and `-` only
    (`13812345678`, `0762-1234567`), 7 to 20 characters; anything else is `phone_format`."""
    value = _code_text(value)
    if isinstance(value, str) and not (_PHONE.match(value) and 7 <= len(value) <= 20):
        raise PydanticCustomError("phone_format", "a phone number holds digits and - only: 11 digits for a mobile, area code - number for a landline")
    return value


Phone = Annotated[
    str,
    BeforeValidator(clean_phone),
    Field(max_length=20, json_schema_extra={"kind": "phone"}, description="电话号码 (phone number: digits and -)"),
]
FreeText = Annotated[
    str,
    BeforeValidator(clean_text),
    Field(max_length=2000, json_schema_extra={"kind": "free_text"}, description="自由文本 (free text, masked like a name)"),
]
DivisionCode = Annotated[
    str,
    BeforeValidator(_code_text),
    Field(pattern=r"^[0-9]{6}$", description="行政区划代码: 6-digit administrative division code"),
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
