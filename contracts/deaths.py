"""Deaths (死亡): the police cancelling a household registration on death (死亡注销)."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from contracts.base import Contract
from contracts.fields import PastDate, Text
from contracts.household import Household, Resident
from contracts.rules import RuleErrors


class DeathEvent(Contract):
    """A death (死亡), identified by the deceased's ID number and the death date.

    One person dies once: the same number and date sent again by the same department is a
    duplicate, with other content a correction. Who reported it is part of its identity
    (`business_key_includes_source`): the police's death cancellation and the social-security
    bureau's report of the same death are two records, which reconciliation can pair. The
    death date may not lie before the birth date.
    """

    contract_name: ClassVar[str] = "DeathEvent"
    business_key_fields: ClassVar[tuple[str, ...]] = ("deceased.id_number", "death_date")
    business_key_includes_source: ClassVar[bool] = True
    label_zh: ClassVar[str] = "死亡"
    event_date_field: ClassVar[str | None] = "death_date"
    division_field: ClassVar[str | None] = "household.division_code"

    deceased: Resident = Field(description="死者")
    death_date: PastDate = Field(description="死亡日期 (police: 变动日期 BDRQ of the 死亡注销)")
    household: Household | None = Field(default=None, description="户: the household the registration is cancelled in")
    reason: Text | None = Field(default=None, max_length=100, description="注销原因 (BDYY)")
    police_station: Text | None = Field(default=None, max_length=100, description="登记派出所")

    @model_validator(mode="after")
    def _dies_after_birth(self) -> Self:
        errors = RuleErrors("DeathEvent")
        errors.not_before(
            ("death_date",), self.death_date, self.deceased.birth_date,
            "death_before_birth", "death date lies before the birth date",
        )
        errors.raise_any()
        return self
