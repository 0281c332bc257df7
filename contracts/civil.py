"""Civil-affairs registrations (民政): marriages and divorces (婚姻登记), adoptions
(收养登记) and cremations (火化登记). Each is identified by its certificate number (证号)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from contracts.base import Contract
from contracts.codes import MaritalStatusCode
from contracts.fields import PastDate, Sex, Text
from contracts.identity import CreditCode
from contracts.person import Person
from contracts.rules import RuleErrors, age_on

# 民法典 第一千零四十七条: men may marry at 22, women at 20 (full years, on the day of registration).
MARRIAGE_AGE = {Sex.MALE: 22, Sex.FEMALE: 20}

# 送养方 is an institution or a person: treated as a name, so reports mask it.
PartyName = Annotated[Text, Field(max_length=100, json_schema_extra={"kind": "name"}, description="姓名或机构名称")]


class MarriageParty(Person):
    """A party to a marriage or divorce (当事人), with 国籍 and 婚前状况."""

    nationality: Text | None = Field(default=None, max_length=40, description="国籍")
    prior_status: MaritalStatusCode | None = Field(default=None, description="婚前状况 (GB/T 2261.2)")


class MarriageEvent(Contract):
    """A marriage (结婚) or divorce (离婚) registration (婚姻登记).

    Rules: for a marriage, each party has reached the legal age on the registration
    date (22 for the man, 20 for the woman) and is not already married; a divorce names
    the marriage certificate it ends (原结婚证号), and only a divorce does.
    """

    contract_name: ClassVar[str] = "MarriageEvent"
    business_key_fields: ClassVar[tuple[str, ...]] = ("certificate_no",)
    label_zh: ClassVar[str] = "婚姻登记"
    event_date_field: ClassVar[str | None] = "registered_on"
    division_field: ClassVar[str | None] = None

    kind: Literal["marriage", "divorce"] = Field(description="业务类型: 结婚 marriage / 离婚 divorce")
    certificate_no: Text = Field(max_length=40, description="证号 (结婚证 or 离婚证)")
    registered_on: PastDate = Field(description="登记日期")
    registry_office: Text | None = Field(default=None, max_length=100, description="登记机关")
    original_certificate_no: Text | None = Field(
        default=None, max_length=40, description="原结婚证号: the marriage a divorce ends"
    )
    husband: MarriageParty = Field(description="男方")
    wife: MarriageParty = Field(description="女方")

    @model_validator(mode="after")
    def _marriage_rules(self) -> Self:
        errors = RuleErrors("MarriageEvent")
        for role, party, sex in (("husband", self.husband, Sex.MALE), ("wife", self.wife, Sex.FEMALE)):
            if party.sex is not None and party.sex in (Sex.MALE, Sex.FEMALE) and party.sex != sex:
                errors.add((role, "sex"), "marriage_party_sex", "男方 must be a man and 女方 a woman", party.sex.label)
            if party.birth_date is None:
                errors.add((role, "birth_date"), "missing", "required field is empty")
            elif self.kind == "marriage" and age_on(party.birth_date, self.registered_on) < MARRIAGE_AGE[sex]:
                errors.add(
                    (role, "birth_date"), "marriage_age",
                    f"below the legal marriage age ({MARRIAGE_AGE[sex]}) on the registration date",
                    party.birth_date,
                )
            if self.kind == "marriage" and party.prior_status is not None and party.prior_status.is_married:
                errors.add((role, "prior_status"), "marriage_party_married", "a party to a marriage is already married")
            if self.kind == "divorce":  # for a marriage, the age rule already covers it
                errors.not_before(
                    ("registered_on",), self.registered_on, party.birth_date,
                    "date_before_birth", "date lies before the person's birth date",
                )
        if self.kind == "divorce" and self.original_certificate_no is None:
            errors.add(("original_certificate_no",), "divorce_certificate_missing", "a divorce must name the marriage certificate it ends")
        if self.kind == "marriage" and self.original_certificate_no is not None:
            errors.add(
                ("original_certificate_no",), "marriage_original_certificate",
                "only a divorce names an earlier marriage certificate", self.original_certificate_no,
            )
        errors.raise_any()
        return self


class AdoptionEvent(Contract):
    """An adoption registration (收养登记): one or two adopters (收养人, a couple adopting
    together) and the adoptee (被收养人)."""

    contract_name: ClassVar[str] = "AdoptionEvent"
    business_key_fields: ClassVar[tuple[str, ...]] = ("certificate_no",)
    label_zh: ClassVar[str] = "收养登记"
    event_date_field: ClassVar[str | None] = "registered_on"
    division_field: ClassVar[str | None] = None

    certificate_no: Text = Field(max_length=40, description="证号 (收养登记证)")
    registered_on: PastDate = Field(description="登记日期")
    placing_party: PartyName | None = Field(default=None, description="送养方 (an institution or the birth parents)")
    adopters: list[Person] = Field(min_length=1, max_length=2, description="收养人")
    adoptee: Person = Field(description="被收养人")

    @model_validator(mode="after")
    def _adopted_after_birth(self) -> Self:
        errors = RuleErrors("AdoptionEvent")
        errors.not_before(
            ("registered_on",), self.registered_on, self.adoptee.birth_date,
            "date_before_birth", "date lies before the person's birth date",
        )
        errors.raise_any()
        return self


class CremationEvent(Contract):
    """A cremation registration (火化登记) by a funeral home (殡仪馆).

    Rules: the cremation is not before the death, and the death not before the birth.
    A funeral-home code (殡仪馆代码, unified social credit code) that does not check out
    is only a warning.
    """

    contract_name: ClassVar[str] = "CremationEvent"
    business_key_fields: ClassVar[tuple[str, ...]] = ("certificate_no",)
    label_zh: ClassVar[str] = "火化"
    event_date_field: ClassVar[str | None] = "cremation_date"
    division_field: ClassVar[str | None] = None

    certificate_no: Text = Field(max_length=40, description="证号 (火化证明)")
    funeral_home: Text = Field(max_length=100, description="殡仪馆")
    funeral_home_code: CreditCode = Field(default=None, description="殡仪馆代码 (统一社会信用代码)")
    cremation_date: PastDate = Field(description="火化日期")
    deceased: Person = Field(description="逝者")
    death_date: PastDate = Field(description="死亡日期")
    death_certificate_no: Text = Field(max_length=40, description="死亡证明编号")

    @model_validator(mode="after")
    def _order_of_events(self) -> Self:
        errors = RuleErrors("CremationEvent")
        errors.not_before(
            ("death_date",), self.death_date, self.deceased.birth_date,
            "death_before_birth", "death date lies before the birth date",
        )
        errors.not_before(
            ("cremation_date",), self.cremation_date, self.death_date,
            "cremation_before_death", "cremation date lies before the death date",
        )
        errors.raise_any()
        return self
