"""Identifier types shared by every contract.

`IdNumber` is the citizen ID number (公民身份号码, GB 11643). A number is refused only for
its format, its check character, or an impossible or future birth date inside it. The
division code (行政区划代码) is only where the household was registered when the number
was issued; many valid numbers carry codes retired since, so an unknown code is a
warning, never a rejection. `CreditCode` (统一社会信用代码, GB 32100) is likewise only
ever a warning.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

from contracts.fields import FULL_WIDTH, Sex, today

_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_ID15 = re.compile(r"^[0-9]{15}$")
# Nobody alive holds a number with an earlier birth year; older figures are typos.
EARLIEST_BIRTH_YEAR = 1880


def _today() -> dt.date:
    return today()


def upgrade_legacy(number15: str) -> str:
    """Upgrade a 15-digit first-generation number to 18 (century 19, new check character)."""
    body = number15[:6] + "19" + number15[6:]
    return body + ric.calc_check_digit(body + "0")


_BIRTH_DATES: dict[str, dt.date] = {}
_fromisoformat = dt.date.fromisoformat


def id_birth_date(number: str) -> dt.date:
    # Each number's date is read when it is checked, then again by the person's
    # agreement check: keep the last few (a pure function of the text).
    born = _BIRTH_DATES.get(number)
    if born is None:
        digits = number[6:14]
        born = None
        if digits.isdigit():
            # YYYYMMDD in one C call; it refuses what int() would read differently
            # (non-ASCII digits) and impossible dates, which then take the slow path.
            try:
                born = _fromisoformat(digits)
            except ValueError:
                pass
        if born is None:
            born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        if len(_BIRTH_DATES) >= 256:  # only needs to last from the check to the agreement check
            _BIRTH_DATES.clear()
        _BIRTH_DATES[number] = born
    return born


def id_sex(number: str) -> str:
    """GB/T 2261.1 sex code from the sequence digit: odd is male (1), even female (2)."""
    return "1" if int(number[16]) % 2 else "2"


_SEX_BY_PARITY = (Sex.FEMALE, Sex.MALE)


def id_sex_code(number: str) -> Sex:
    """`Sex(id_sex(number))` without the enum lookup."""
    return _SEX_BY_PARITY[int(number[16]) % 2]


@lru_cache(maxsize=8192)
def _division_known(division: str, year: int) -> bool:
    # stdnum's area-table lookup costs ~25 µs; numbers repeat their (division, year)
    # pairs heavily, so the cache makes it nearly free on the hot path.
    probe = f"{division}{year:04d}0101" + "0000"
    try:
        ric.get_birth_place(probe)
    except StdnumError:
        return False
    return True


# Numbers already accepted today: value as written -> the normalized number. A number
# valid today stays valid (its birth date only recedes into the past), but the cache is
# dropped whenever the date changes, so a clock set back never keeps a number that is
# now in the future. Mothers, fathers and household members recur within and across
# files; only accepted numbers are kept, so every refusal is worked out afresh.
_ACCEPTED: dict[str, str] = {}
_ACCEPTED_DAY: list[dt.date] = [dt.date.min]
_ACCEPTED_MAX = 1024  # repeats come close together (twins, one household's members)


def normalize_id_number(value: Any) -> str:
    if value.__class__ is str:
        day = _today()
        if _ACCEPTED_DAY[0] != day:
            _ACCEPTED.clear()
            _ACCEPTED_DAY[0] = day
        number = _ACCEPTED.get(value)
        if number is None:
            number = _check_id_number(value, day)
            if number == value:
                number = value  # keep one string, not two
            if len(_ACCEPTED) >= _ACCEPTED_MAX:
                _ACCEPTED.clear()
            _ACCEPTED[value] = number
        return number
    return _check_id_number(value, _today())


def _check_id_number(value: Any, day: dt.date) -> str:
    if value is None:
        raise PydanticCustomError("missing", "required field is empty")
    if not isinstance(value, str):
        raise PydanticCustomError("id_format", "ID number must be text")
    number = value.strip().upper() if value.isascii() else value.translate(FULL_WIDTH).strip().upper()
    if not number:
        raise PydanticCustomError("missing", "required field is empty")
    # After strip() no trailing newline is left for `$` to match before, so the length
    # test only spares the regex on the usual 18-character number.
    if len(number) == 15 and _ID15.match(number):
        try:
            id_birth_date("000000" + "19" + number[6:12] + "0000")
        except ValueError:
            raise PydanticCustomError("id_birth_date", "ID number holds an impossible birth date") from None
        number = upgrade_legacy(number)
    if len(number) != 18 or not _ID18.match(number):
        raise PydanticCustomError(
            "id_format", "ID number must be 18 characters (17 digits and a digit or X), or 15 digits"
        )
    if ric.calc_check_digit(number) != number[17]:
        raise PydanticCustomError("id_check_char", "ID number check character is wrong")
    try:
        born = id_birth_date(number)
    except ValueError:
        raise PydanticCustomError("id_birth_date", "ID number holds an impossible birth date") from None
    if born.year < EARLIEST_BIRTH_YEAR:
        raise PydanticCustomError("id_birth_date", "ID number holds an impossible birth date")
    if born > day:
        raise PydanticCustomError("id_birth_future", "ID number holds a birth date in the future")
    return number


_DIVISION_WARNINGS: dict[str, str | None] = {}


def division_warning(number: str) -> str | None:
    """Why a valid number's division code deserves a look, or None."""
    head = number[:10]  # the division code and the birth year decide
    if head in _DIVISION_WARNINGS:
        return _DIVISION_WARNINGS[head]
    message = None
    if not _division_known(number[:6], int(number[6:10])):
        message = "division code is unknown or was retired before the birth year"
    if len(_DIVISION_WARNINGS) >= 4096:
        _DIVISION_WARNINGS.clear()
    _DIVISION_WARNINGS[head] = message
    return message


@lru_cache(maxsize=4096)
def credit_code_warning(code: str) -> str | None:
    # Files repeat the same few institution codes on every row: check each once.
    try:
        uscc.validate(code)
    except StdnumError:
        return "unified social credit code does not check out"
    return None


def _strip_upper(value: Any) -> Any:
    if isinstance(value, str):
        value = value.translate(FULL_WIDTH).strip().upper()
        return value or None
    return value


IdNumber = Annotated[
    str,
    BeforeValidator(normalize_id_number),
    Field(
        description="公民身份号码: citizen ID number, 18 characters (legacy 15-digit numbers are upgraded)",
        json_schema_extra={"kind": "id_number", "pattern": r"^\d{17}[\dX]$"},
    ),
]

CreditCode = Annotated[
    str | None,
    BeforeValidator(_strip_upper),
    Field(
        description="统一社会信用代码: unified social credit code (GB 32100); a bad code is only a warning",
        json_schema_extra={"kind": "credit_code"},
    ),
]
