"""Moves (户口迁移: 迁入 / 迁出) and residence permits (居住证) from the household registry."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from contracts.base import Contract
from contracts.fields import Date, PastDate, Text
from contracts.household import Household, Place, Resident
from contracts.rules import RuleErrors

DIRECTION_LABELS = {"in": "迁入", "out": "迁出"}


class Migration(Contract):
    """A household registration moved in (迁入) or out (迁出), identified by the ID
    number, the direction and the date of the move.

    `household` is the registration on this side: where the person was registered on
    arrival (in) or was registered before leaving (out). `other_place` is the far side:
    where they came from (迁出地, in) or went to (迁往地, out). A move in and a move out
    on the same day are two records.
    """

    contract_name: ClassVar[str] = "Migration"
    business_key_fields: ClassVar[tuple[str, ...]] = ("person.id_number", "direction", "move_date")
    label_zh: ClassVar[str] = "迁移"
    event_date_field: ClassVar[str | None] = "move_date"
    division_field: ClassVar[str | None] = "household.division_code"

    direction: Literal["in", "out"] = Field(description="迁入 in / 迁出 out")
    person: Resident = Field(description="迁移人")
    move_date: PastDate = Field(description="迁移日期 (变动日期)")
    household: Household = Field(description="本地户籍: after moving in, or before moving out")
    other_place: Place | None = Field(default=None, description="迁出地 (in) or 迁往地 (out)")
    transfer_permit_no: Text | None = Field(default=None, max_length=40, description="准迁证编号")
    reason: Text | None = Field(default=None, max_length=100, description="迁移原因")
    police_station: Text | None = Field(default=None, max_length=100, description="登记派出所")

    @property
    def direction_label(self) -> str:
        return DIRECTION_LABELS[self.direction]

    @model_validator(mode="after")
    def _moves_after_birth(self) -> Self:
        errors = RuleErrors("Migration")
        errors.not_before(
            ("move_date",), self.move_date, self.person.birth_date,
            "date_before_birth", "date lies before the person's birth date",
        )
        errors.raise_any()
        return self


class ResidencePermit(Contract):
    """A residence permit (居住证) issued to someone registered elsewhere, identified by
    its number (居住证编号). It must be valid for some time after it was issued."""

    contract_name: ClassVar[str] = "ResidencePermit"
    business_key_fields: ClassVar[tuple[str, ...]] = ("permit_no",)
    label_zh: ClassVar[str] = "居住证"
    event_date_field: ClassVar[str | None] = "issued_on"
    division_field: ClassVar[str | None] = "residence.division_code"

    permit_no: Text = Field(max_length=40, description="居住证编号")
    holder: Resident = Field(description="持证人")
    issued_on: PastDate = Field(description="签发(登记)日期")
    valid_until: Date = Field(description="有效期至")
    residence: Place = Field(description="居住地址: where the holder lives here")
    household: Household | None = Field(default=None, description="户籍: the holder's registration elsewhere")
    reason: Text | None = Field(default=None, max_length=100, description="申领事由 (就业, 就学, 居住...)")
    police_station: Text | None = Field(default=None, max_length=100, description="受理派出所")

    @model_validator(mode="after")
    def _validity(self) -> Self:
        errors = RuleErrors("ResidencePermit")
        if self.residence.address is None:
            errors.add(("residence", "address"), "missing", "required field is empty")
        if self.valid_until <= self.issued_on:
            errors.add(
                ("valid_until",), "permit_validity", "the permit's valid-until date is not after its issue date",
                self.valid_until,
            )
        errors.not_before(
            ("issued_on",), self.issued_on, self.holder.birth_date,
            "date_before_birth", "date lies before the person's birth date",
        )
        errors.raise_any()
        return self

    def valid_on(self, day: dt.date) -> bool:
        return self.issued_on <= day <= self.valid_until
