"""Births (出生): the hospital's birth certificate record (出生医学证明) and the police's
newborn registration (出生登记), which cites that certificate."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from contracts.base import Contract, ContractModel
from contracts.codes import EthnicityCode
from contracts.fields import Address, DivisionCode, PastDate, PersonName, Sex, SexCode, Text
from contracts.household import Household
from contracts.identity import CreditCode, IdNumber, id_birth_date, id_sex_code
from contracts.person import Person
from contracts.rules import RuleErrors, age_on


class Newborn(ContractModel):
    """The child (新生儿). Police newborn registration adds the ID number issued to it
    (and 民族); sex and birth date must then agree with that number."""

    name: PersonName
    sex: SexCode
    birth_date: PastDate
    birth_time: dt.time | None = Field(default=None, description="出生时间 (HH:MM)")
    id_number: IdNumber | None = None
    ethnicity: EthnicityCode | None = None

    @model_validator(mode="after")
    def _agree_with_id_number(self) -> Self:
        if self.id_number is None:
            return self
        if self.sex in (Sex.MALE, Sex.FEMALE) and self.sex != id_sex_code(self.id_number):
            raise PydanticCustomError("id_sex_mismatch", "sex disagrees with the ID number")
        if self.birth_date != id_birth_date(self.id_number):
            raise PydanticCustomError("id_birth_mismatch", "birth date disagrees with the ID number")
        return self


class BirthEvent(Contract):
    """A birth (出生), identified by who registered it and the birth certificate number
    (出生医学证明编号).

    `registration` tells the two sources apart: `hospital` is the certificate itself
    (mother required), `police` the newborn's household registration (出生登记: the
    child's ID number, household and registration date required). Both cite the same
    certificate number, yet they are different records from different departments, so
    `registration` is part of the business key (`hospital|Q440781260001`): a police
    registration is never taken for a correction of the hospital's record.
    """

    contract_name: ClassVar[str] = "BirthEvent"
    business_key_fields: ClassVar[tuple[str, ...]] = ("registration", "birth_certificate_no")
    label_zh: ClassVar[str] = "出生"
    event_date_field: ClassVar[str | None] = "child.birth_date"
    division_field: ClassVar[str | None] = "registered_division_code"

    registration: Literal["hospital", "police"] = Field(
        default="hospital", description="who registered the birth: hospital (出生医学证明) or police (出生登记)"
    )
    birth_certificate_no: Text = Field(max_length=32, description="出生医学证明编号")
    child: Newborn
    birth_weight_g: int | None = Field(default=None, ge=300, le=8000, description="出生体重(克)")
    gestation_weeks: int | None = Field(default=None, ge=20, le=45, description="出生孕周")
    birth_order: int | None = Field(default=None, ge=1, le=20, description="胎次")
    mother: Person | None = Field(default=None, description="母亲 (required from hospitals)")
    father: Person | None = Field(default=None, description="父亲 (may be absent)")
    institution_name: Text | None = Field(default=None, max_length=100, description="接生机构名称")
    institution_code: CreditCode = Field(default=None, description="接生机构代码")
    home_address: Address | None = Field(default=None, description="家庭住址")
    registered_division_code: DivisionCode | None = Field(default=None, description="户籍地行政区划代码")
    household: Household | None = Field(default=None, description="户: the household the child is registered into (police)")
    registered_on: PastDate | None = Field(default=None, description="登记日期: date of the police registration")
    police_station: Text | None = Field(default=None, max_length=100, description="登记派出所 (police)")

    # A mother younger than this at the birth (周岁) is possible but so rare that a person
    # must look: most often the ID number is someone else's (issue 14). A warning, not a
    # refusal: refusing would leave a real birth unregistered.
    MOTHER_YOUNGEST: ClassVar[int] = 14

    def warnings(self) -> list[tuple[str, str, str]]:
        found = super().warnings()
        mother = self.mother
        if mother is not None and mother.birth_date is not None and self.child.birth_date is not None:
            age = age_on(mother.birth_date, self.child.birth_date)
            if 0 <= age < self.MOTHER_YOUNGEST:
                found.append(("mother.id_number", "mother_age_unlikely", f"the mother was {age} at the birth"))
        return found

    @model_validator(mode="after")
    def _registration_rules(self) -> Self:
        registration, registered_on, born = self.registration, self.registered_on, self.child.birth_date
        mother_born = self.mother.birth_date if self.mother is not None else None
        if (
            (mother_born is None or born is None or mother_born < born)
            and (registration != "hospital" or self.mother is not None)
            and (registration != "police" or (self.child.id_number is not None and registered_on is not None))
            and (registered_on is None or born is None or not registered_on < born)
        ):
            return self  # the usual case: no rule fails, nothing to collect
        errors = RuleErrors("BirthEvent")
        missing = "required field is empty"
        if self.registration == "hospital" and self.mother is None:
            errors.add(("mother", "name"), "missing", missing)
        if self.registration == "police":
            if self.child.id_number is None:
                errors.add(("child", "id_number"), "missing", missing)
            if self.registered_on is None:
                errors.add(("registered_on",), "missing", missing)
        errors.not_before(
            ("registered_on",), self.registered_on, self.child.birth_date,
            "date_before_birth", "date lies before the person's birth date",
        )
        # A mother born on or after her child's birth day cannot be: her ID number (or
        # the child's birth date) is wrong, so the record is refused, not warned about.
        if mother_born is not None and born is not None and not mother_born < born:
            errors.add(("mother", "id_number"), "mother_born_after_child", "the mother's birth date is not before the child's")
        errors.raise_any()
        return self
