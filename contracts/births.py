"""Births (出生): the hospital's birth certificate record (出生医学证明)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from pydantic import Field

from .base import Contract, ContractModel
from .fields import Address, DivisionCode, PastDate, PersonName, SexCode, Text
from .identity import CreditCode, IdNumber
from .person import Person


class Newborn(ContractModel):
    """The child (新生儿). Police newborn registration adds the ID number issued to it."""

    name: PersonName
    sex: SexCode
    birth_date: PastDate
    birth_time: dt.time | None = Field(default=None, description="出生时间 (HH:MM)")
    id_number: IdNumber | None = None


class BirthEvent(Contract):
    """A birth (出生), identified by its birth certificate number (出生医学证明编号).

    Hospitals send one per birth certificate; the business key is that number, so the
    same certificate sent again is a duplicate, and sent with other content a correction.
    """

    contract_name: ClassVar[str] = "BirthEvent"
    business_key_fields: ClassVar[tuple[str, ...]] = ("birth_certificate_no",)

    birth_certificate_no: Text = Field(max_length=32, description="出生医学证明编号")
    child: Newborn
    birth_weight_g: int | None = Field(default=None, ge=300, le=8000, description="出生体重(克)")
    gestation_weeks: int | None = Field(default=None, ge=20, le=45, description="出生孕周")
    birth_order: int | None = Field(default=None, ge=1, le=20, description="胎次")
    mother: Person = Field(description="母亲")
    father: Person | None = Field(default=None, description="父亲 (may be absent)")
    institution_name: Text | None = Field(default=None, max_length=100, description="接生机构名称")
    institution_code: CreditCode = Field(default=None, description="接生机构代码")
    home_address: Address | None = Field(default=None, description="家庭住址")
    registered_division_code: DivisionCode | None = Field(default=None, description="户籍地行政区划代码")
