"""Person: anyone a record names (人员)."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from contracts.base import ContractModel
from contracts.fields import PastDate, PersonName, Sex, SexCode
from contracts.identity import IdNumber, id_birth_date, id_sex_code


class Person(ContractModel):
    """A person named in a record (人员).

    When the ID number is given, sex and birth date are derived from it; a stated sex or
    birth date that disagrees with the number is an error, never silently overwritten.
    """

    name: PersonName
    id_number: IdNumber | None = None
    sex: SexCode | None = None
    birth_date: PastDate | None = None

    @model_validator(mode="after")
    def _agree_with_id_number(self) -> Self:
        number = self.id_number
        if number is None:
            return self
        derived_sex = id_sex_code(number)
        derived_birth = id_birth_date(number)
        sex, birth_date = self.sex, self.birth_date
        if sex is None:
            object.__setattr__(self, "sex", derived_sex)  # frozen model: derive once, here
        elif sex != derived_sex and sex in (Sex.MALE, Sex.FEMALE):
            raise PydanticCustomError("id_sex_mismatch", "sex disagrees with the ID number")
        if birth_date is None:
            object.__setattr__(self, "birth_date", derived_birth)
        elif birth_date != derived_birth:
            raise PydanticCustomError("id_birth_mismatch", "birth date disagrees with the ID number")
        return self
