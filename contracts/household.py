"""Parts the household-registry contracts share: the registered person (户籍人员), the
household they belong to (户) and a place (地址 with its 行政区划代码)."""

from __future__ import annotations

from pydantic import Field

from contracts.base import ContractModel
from contracts.codes import EthnicityCode, RelationCode
from contracts.fields import Address, DivisionCode, Text
from contracts.identity import IdNumber
from contracts.person import Person


class Resident(Person):
    """A person as the household registry records them (户籍人员): always with an ID
    number, and with 民族. Sex and birth date must agree with the number (see `Person`)."""

    id_number: IdNumber
    ethnicity: EthnicityCode | None = None


class Place(ContractModel):
    """An address (地址) and the code of its administrative division (行政区划代码)."""

    address: Address | None = None
    division_code: DivisionCode | None = None


class Household(ContractModel):
    """The household a person is registered in (户籍): 户号, 与户主关系, 户籍地址 and its code."""

    household_no: Text | None = Field(default=None, max_length=32, description="户号")
    relation_to_head: RelationCode | None = None
    address: Address | None = Field(default=None, description="户籍地址")
    division_code: DivisionCode | None = Field(default=None, description="户籍地行政区划代码")
