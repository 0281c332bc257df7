"""养老金领取人员死亡报告: a family's report to the social-security bureau that a pension
recipient has died, so that the pension stops (停发养老金).

The bureau is not the registry of deaths: the police cancel the household registration
(死亡注销, `DeathEvent`). The two are different records of one death; the rule
`pension-deaths-unregistered` (rules.py) pairs them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Self

from pydantic import Field, model_validator

from contracts import Contract, ContractModel
from contracts.base import PersonFact
from contracts.fields import PastDate, PersonName, Phone, SexCode, Text
from contracts.identity import IdNumber
from contracts.rules import RuleErrors


class Pensioner(ContractModel):
    """养老金领取人员: the deceased, always with an ID number."""

    name: PersonName
    id_number: IdNumber
    sex: SexCode | None = None


class PensionDeathReport(Contract):
    """One reported death (死亡报告), identified by the deceased's ID number and the death
    date: the same death reported twice is a duplicate, with other content a correction."""

    contract_name: ClassVar[str] = "PensionDeathReport"
    label_zh: ClassVar[str] = "养老金领取人员死亡报告"
    business_key_fields: ClassVar[tuple[str, ...]] = ("deceased.id_number", "death_date")
    event_date_field: ClassVar[str | None] = "death_date"

    deceased: Pensioner = Field(description="死者")
    pension_no: Annotated[Text, Field(max_length=32, json_schema_extra={"kind": "document_number"})] = Field(
        description="养老保险个人编号"
    )
    death_date: PastDate = Field(description="死亡日期")
    reported_on: PastDate = Field(description="报告日期")
    reporter_name: PersonName = Field(description="报告人姓名")
    reporter_relation: Text | None = Field(default=None, max_length=20, description="报告人与死者关系")
    reporter_phone: Phone = Field(description="报告人联系电话")
    office: Text | None = Field(default=None, max_length=100, description="经办机构")

    @classmethod
    def person_facts(cls, payload: dict[str, Any]) -> Iterator[PersonFact]:
        """The register keeps the deceased's name and death date under this source
        (social-security): a death date that disagrees with the police's is listed."""
        deceased, died = payload["deceased"], payload["death_date"]
        on = dt.date.fromisoformat(died)
        yield PersonFact(deceased["id_number"], "name", deceased["name"], on)
        yield PersonFact(deceased["id_number"], "death_date", died, on)

    @model_validator(mode="after")
    def _reported_after_death(self) -> Self:
        # located at reported_on, so the rejection report names the column 报告日期
        errors = RuleErrors("PensionDeathReport")
        errors.not_before(("reported_on",), self.reported_on, self.death_date,
                          "report_before_death", "the report date lies before the death date")
        errors.raise_any()
        return self
