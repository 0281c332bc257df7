"""Housing registry (房管): who owns and who lives in a property (房屋产权与居住人员).

The registry's API reports changes: each item is the property's occupancy as of its
`updatedAt`. One item is one `HousingOccupancy` record.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BeforeValidator, Field, Strict, model_validator
from pydantic_core import PydanticCustomError

from contracts.base import Contract
from contracts.codes import CodeEnum, code_parser
from contracts.fields import Address, Date, DivisionCode, Text
from contracts.person import Person
from contracts.rules import RuleErrors

# Every sender is in mainland China, whose one legal time is UTC+8: instants are kept in
# that offset, so the same instant always reads (and hashes) the same.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


def parse_offset_datetime(value: Any) -> Any:
    """An ISO 8601 date-time with its UTC offset (`2026-10-21T09:30:00+08:00`, `...Z`).
    A time without an offset is refused, never assumed."""
    if value is None or isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise PydanticCustomError(
                "datetime_format", "date and time must be written as 2026-10-21T09:30:00+08:00"
            ) from None
    else:
        raise PydanticCustomError("datetime_format", "date and time must be written as 2026-10-21T09:30:00+08:00")
    if moment is not None and moment.utcoffset() is None:
        raise PydanticCustomError("timezone_missing", "the time must carry its UTC offset, e.g. +08:00")
    return moment


def _in_china_time(value: dt.datetime) -> dt.datetime:
    return value.astimezone(CHINA_TIME)


ChinaTime = Annotated[
    dt.datetime,
    BeforeValidator(parse_offset_datetime),
    AfterValidator(_in_china_time),
    Field(description="date and time with UTC offset, kept in China Standard Time (+08:00)"),
]


def _number_as_text(value: Any) -> Any:
    # A JSON API may send building 3 or "3": the same building either way.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


_PARENS = str.maketrans({"（": "(", "）": ")"})


def _certificate_no(value: Any) -> Any:
    # 粤(2021)… and 粤（2021）… are the same certificate: keep one spelling for the key.
    if isinstance(value, str):
        return value.strip().translate(_PARENS) or None
    return value


RoomPart = Annotated[str, BeforeValidator(_number_as_text), Field(max_length=16)]


class OccupantRole(CodeEnum):
    """居住人员类型: how an occupant lives in the property."""

    OWNER = ("owner", "产权人")
    FAMILY = ("family", "家庭成员")
    TENANT = ("tenant", "承租人")


ROLE_MESSAGE = "occupant role must be owner, family or tenant (产权人, 家庭成员, 承租人)"
OccupantRoleCode = Annotated[
    OccupantRole,
    BeforeValidator(code_parser(OccupantRole, "role_code", ROLE_MESSAGE, aliases={"业主": "owner", "租户": "tenant"})),
    Field(description="居住人员类型"),
]


class Occupant(Person):
    """A person living in the property (居住人员), with move-in and move-out dates."""

    role: OccupantRoleCode
    move_in: Date = Field(description="入住日期")
    move_out: Date | None = Field(default=None, description="迁出日期 (absent while living there)")

    @model_validator(mode="after")
    def _moves_in_before_out(self) -> Self:
        errors = RuleErrors("Occupant")
        errors.not_before(
            ("move_out",), self.move_out, self.move_in, "move_out_before_move_in", "move-out date lies before the move-in date"
        )
        errors.raise_any()
        return self


class HousingOccupancy(Contract):
    """A property's owners and occupants as the housing registry knows them at `updated_at`
    (房屋居住登记).

    Business key: property certificate number (不动产权证号) and `updated_at`. The API
    reports changes, so each change is its own record and the property's history is the
    records of its certificate ordered by `updated_at` — independent of the order in which
    pages arrive. The same change pulled again is a duplicate; the same certificate and
    time with other content is a correction.
    """

    contract_name: ClassVar[str] = "HousingOccupancy"
    business_key_fields: ClassVar[tuple[str, ...]] = ("property_cert_no", "updated_at")
    label_zh: ClassVar[str] = "房屋居住"
    event_date_field: ClassVar[str | None] = "updated_at"
    division_field: ClassVar[str | None] = "division_code"

    property_cert_no: Annotated[str, BeforeValidator(_certificate_no)] = Field(
        max_length=64, description="不动产权证号 (propertyCertNo)"
    )
    division_code: DivisionCode = Field(description="行政区划代码 of the property")
    community: Text | None = Field(default=None, max_length=100, description="社区")
    address: Address = Field(description="房屋地址")
    building: RoomPart | None = Field(default=None, description="楼栋")
    unit: RoomPart | None = Field(default=None, description="单元")
    room: RoomPart | None = Field(default=None, description="房号")
    owners: list[Person] = Field(min_length=1, description="产权人")
    occupants: list[Occupant] = Field(default_factory=list, description="居住人员 (empty: vacant)")
    rental_registered: Annotated[bool, Strict()] = Field(description="是否办理租赁登记")
    updated_at: ChinaTime = Field(description="变更时间 (updatedAt)")

    def warnings(self) -> list[tuple[str, str, str]]:
        """The base warnings (every owner's and occupant's ID included), and a tenant
        living in a property whose rental is not registered (出租未登记)."""
        found = super().warnings()
        if not self.rental_registered and any(
            o.role is OccupantRole.TENANT and o.move_out is None for o in self.occupants
        ):
            found.append(("rental_registered", "rental_unregistered", "a tenant lives here but the rental is not registered"))
        return found
