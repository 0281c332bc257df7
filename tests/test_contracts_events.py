"""The event contracts' own rules, without any file: code tables with their labels,
dates in the right order, marriage ages, divorces naming their marriage, and business
keys that never collide across sources."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from stdnum.cn import ric

from contracts import (
    CONTRACTS,
    SCHEMA_VERSION,
    AdoptionEvent,
    BirthEvent,
    CremationEvent,
    DeathEvent,
    Ethnicity,
    MaritalStatus,
    MarriageEvent,
    Migration,
    PoliceBusiness,
    Relation,
    ResidencePermit,
)
from contracts.fields import today as china_today
from contracts.codes import EthnicityCode, MaritalStatusCode, RelationCode, parse_police_business
from contracts.reasons import REASONS
from contracts.rules import age_on

MAN, WOMAN = "440781199508180110", "440783199704020205"  # born 1995-08-18 and 1997-04-02


# Backend-independent (the contracts' validation, no database): runs on one backend only (tests/conftest.py).
pytestmark = pytest.mark.backend_independent


def with_check(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def errors(model: type, data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [(error["loc"], error["type"]) for error in info.value.errors()]


def resident(number: str = MAN, **extra: Any) -> dict[str, Any]:
    return {"name": "周建国", "id_number": number, **extra}


def marriage(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "marriage",
        "certificate_no": "J1",
        "registered_on": "2026-10-12",
        "husband": {"name": "周建国", "id_number": MAN, "sex": "1", "prior_status": "未婚"},
        "wife": {"name": "吴秀英", "id_number": WOMAN, "sex": "2", "prior_status": "10"},
    }
    data.update(changes)
    return data


def cremation(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "certificate_no": "H1",
        "funeral_home": "台山市殡仪馆",
        "cremation_date": "2026-10-13",
        "deceased": {"name": "刘大爷", "id_number": "440781193804050137"},
        "death_date": "2026-10-11",
        "death_certificate_no": "S1",
    }
    data.update(changes)
    return data


# -- code tables -------------------------------------------------------------------------


def test_ethnicity_has_the_56_groups_with_their_names():
    groups = [member for member in Ethnicity if member.value <= "56"]
    assert len(groups) == 56 and [m.value for m in groups] == [f"{n:02d}" for n in range(1, 57)]
    assert (Ethnicity("01").label, Ethnicity("12").label, Ethnicity("56").label) == ("汉族", "侗族", "基诺族")
    assert len({member.label for member in Ethnicity}) == len(Ethnicity)


@pytest.mark.parametrize(("value", "code"), [("01", "01"), ("1", "01"), (" 汉族 ", "01"), ("侗族", "12"), ("毛难族", "36"), ("98", "98")])
def test_ethnicity_takes_a_code_a_lost_zero_or_a_name(value, code):
    assert TypeAdapter(EthnicityCode).validate_python(value).value == code


@pytest.mark.parametrize(("adapter", "value", "error"), [
    (EthnicityCode, "57", "ethnicity_code"),
    (EthnicityCode, "火星族", "ethnicity_code"),
    (RelationCode, "1", "relation_code"),  # one digit: 配偶 in the one-digit table, or a lost zero
    (RelationCode, "98", "relation_code"),
    (MaritalStatusCode, "保密", "marital_status_code"),
    (EthnicityCode, "", "missing"),
])
def test_codes_outside_their_table_are_refused_with_their_own_error(adapter, value, error):
    with pytest.raises(ValidationError) as info:
        TypeAdapter(adapter).validate_python(value)
    assert info.value.errors()[0]["type"] == error
    assert error in REASONS


def test_relation_to_head_keeps_the_collective_household_head():
    assert TypeAdapter(RelationCode).validate_python("03") is Relation.COLLECTIVE_HEAD
    assert Relation("03").label == "小集体户户主"
    assert TypeAdapter(RelationCode).validate_python("户主") is Relation.HEAD
    assert (Relation("20").label, Relation("99").label) == ("子", "非亲属")


def test_marital_status_and_business_type_by_label():
    assert TypeAdapter(MaritalStatusCode).validate_python("已婚").is_married
    assert not MaritalStatus("40").is_married and MaritalStatus("23").is_married
    assert [parse_police_business(label) for label in ("出生登记", "死亡注销", "迁入", "迁出", "居住证")] == list(PoliceBusiness)
    assert PoliceBusiness.MOVE_IN.label == "迁入"


def test_a_code_formats_as_its_code_and_the_schema_lists_the_labels():
    assert f"{Ethnicity.HAN}" == str(Ethnicity.HAN) == "01"
    schema = DeathEvent.model_json_schema()
    assert schema["$defs"]["Ethnicity"]["x-labels"]["12"] == "侗族"
    assert schema["$defs"]["Relation"]["x-labels"]["03"] == "小集体户户主"


# -- schema version, registry, hashes ------------------------------------------------------


def test_every_contract_is_registered_with_a_schema_version():
    for model in (BirthEvent, DeathEvent, Migration, ResidencePermit, MarriageEvent, AdoptionEvent, CremationEvent):
        assert CONTRACTS[model.contract_name] is model
        assert model.schema_version == SCHEMA_VERSION
        assert model.business_key_fields


def test_a_coded_record_hashes_its_codes_not_python_names():
    record = DeathEvent.model_validate({"deceased": resident(ethnicity="汉族"), "death_date": "2026-10-11"})
    assert json.loads(record.canonical())["deceased"]["ethnicity"] == "01"
    assert record.record_hash() == DeathEvent.model_validate(json.loads(record.canonical())).record_hash()


# -- births --------------------------------------------------------------------------------


def test_hospital_and_police_births_of_one_certificate_have_different_keys():
    child = {"name": "陈小明", "sex": "1", "birth_date": "2026-10-03"}
    hospital = BirthEvent.model_validate(
        {"registration": "hospital", "birth_certificate_no": "Q1", "child": child, "mother": {"name": "黄敏"}}
    )
    police = BirthEvent.model_validate(
        {
            "registration": "police",
            "birth_certificate_no": "Q1",
            "child": {**child, "id_number": "440781202610030156"},
            "registered_on": "2026-10-20",
        }
    )
    assert (hospital.business_key(), police.business_key()) == ("hospital|Q1", "police|Q1")


def test_each_registration_requires_its_own_fields():
    child = {"name": "陈小明", "sex": "1", "birth_date": "2026-10-03"}
    assert errors(BirthEvent, {"birth_certificate_no": "Q1", "child": child}) == [(("mother", "name"), "missing")]
    assert errors(BirthEvent, {"registration": "police", "birth_certificate_no": "Q1", "child": child}) == [
        (("child", "id_number"), "missing"),
        (("registered_on",), "missing"),
    ]
    assert errors(BirthEvent, {"registration": "clinic", "birth_certificate_no": "Q1", "child": child})[0][1] == "literal_error"


def test_a_newborn_must_agree_with_its_id_number():
    base = {"registration": "police", "birth_certificate_no": "Q1", "registered_on": "2026-10-20"}
    child = {"name": "陈小明", "id_number": "440781202610030156", "sex": "1", "birth_date": "2026-10-03"}
    assert BirthEvent.model_validate({**base, "child": child}).child.id_number == child["id_number"]
    assert errors(BirthEvent, {**base, "child": {**child, "sex": "2"}}) == [(("child",), "id_sex_mismatch")]
    assert errors(BirthEvent, {**base, "child": {**child, "birth_date": "2026-10-04"}}) == [(("child",), "id_birth_mismatch")]
    assert errors(BirthEvent, {**base, "child": child, "registered_on": "2026-10-02"}) == [(("registered_on",), "date_before_birth")]


# -- deaths and cremations --------------------------------------------------------------


def test_death_may_not_precede_birth_but_may_fall_on_the_same_day():
    born = "440781193804050137"
    assert DeathEvent.model_validate({"deceased": resident(born), "death_date": "1938-04-05"}).business_key() == f"{born}|1938-04-05"
    assert errors(DeathEvent, {"deceased": resident(born), "death_date": "1938-04-04"}) == [(("death_date",), "death_before_birth")]


def test_a_death_needs_an_id_number_and_a_past_date():
    assert errors(DeathEvent, {"deceased": {"name": "无名"}, "death_date": "2026-10-11"}) == [(("deceased", "id_number"), "missing")]
    future = (china_today() + dt.timedelta(days=3)).isoformat()
    assert errors(DeathEvent, {"deceased": resident(), "death_date": future}) == [(("death_date",), "date_future")]


def test_cremation_not_before_death():
    assert CremationEvent.model_validate(cremation(cremation_date="2026-10-11")).business_key() == "H1"
    assert errors(CremationEvent, cremation(cremation_date="2026-10-10")) == [(("cremation_date",), "cremation_before_death")]
    assert errors(CremationEvent, cremation(death_date="1938-04-01", cremation_date="1938-04-02")) == [
        (("death_date",), "death_before_birth")
    ]


def test_a_bad_funeral_home_code_is_a_warning_only():
    record = CremationEvent.model_validate(cremation(funeral_home_code="12440781MB2C12345Y"))
    assert ("funeral_home_code", "credit_code_invalid") in [(field, code) for field, code, _ in record.warnings()]


# -- moves and residence permits --------------------------------------------------------


def test_migration_key_holds_direction_and_date():
    move = {"person": resident(), "move_date": "2026-10-18", "household": {"household_no": "1"}}
    moved_out = Migration.model_validate({**move, "direction": "out"})
    moved_in = Migration.model_validate({**move, "direction": "in"})
    assert (moved_out.business_key(), moved_in.business_key()) == (f"{MAN}|out|2026-10-18", f"{MAN}|in|2026-10-18")
    assert moved_in.direction_label == "迁入"
    assert errors(Migration, {**move, "direction": "sideways"})[0] == (("direction",), "literal_error")
    assert errors(Migration, {**move, "direction": "in", "move_date": "1995-08-17"}) == [(("move_date",), "date_before_birth")]


def test_residence_permit_must_be_valid_after_it_is_issued():
    permit = {
        "permit_no": "JZ1",
        "holder": resident(WOMAN),
        "issued_on": "2026-10-19",
        "valid_until": "2027-10-18",
        "residence": {"address": "广东省台山市台城街道舜德路8号"},
    }
    record = ResidencePermit.model_validate(permit)
    assert record.business_key() == "JZ1" and record.valid_on(dt.date(2027, 1, 1))
    assert errors(ResidencePermit, {**permit, "valid_until": "2026-10-19"}) == [(("valid_until",), "permit_validity")]
    assert errors(ResidencePermit, {**permit, "residence": {}}) == [(("residence", "address"), "missing")]


# -- marriages, divorces, adoptions ------------------------------------------------------


def test_age_in_full_years_and_29_february():
    assert age_on(dt.date(2004, 5, 5), dt.date(2024, 5, 4)) == 19
    assert age_on(dt.date(2004, 5, 5), dt.date(2024, 5, 5)) == 20
    assert age_on(dt.date(2004, 2, 29), dt.date(2026, 2, 28)) == 21
    assert age_on(dt.date(2004, 2, 29), dt.date(2026, 3, 1)) == 22


@pytest.mark.parametrize(("role", "sex", "years"), [("husband", "1", 22), ("wife", "2", 20)])
def test_marriage_age_is_reached_on_the_registration_date(role, sex, years):
    birthday = dt.date(2000, 6, 15)  # the other party (born 1995 / 1997) is of age by then
    number = with_check(f"440781{birthday:%Y%m%d}{'011' if sex == '1' else '022'}")
    party = {"name": "某", "id_number": number, "sex": sex}
    on_the_day = birthday.replace(year=birthday.year + years)
    record = MarriageEvent.model_validate(marriage(**{role: party}, registered_on=on_the_day.isoformat()))
    assert record.business_key() == "J1"
    day_before = (on_the_day - dt.timedelta(days=1)).isoformat()
    assert errors(MarriageEvent, marriage(**{role: party}, registered_on=day_before)) == [((role, "birth_date"), "marriage_age")]


def test_the_age_rule_is_for_marriages_not_divorces():
    young = {"name": "年轻人", "id_number": "440781200601010517", "sex": "1"}
    assert errors(MarriageEvent, marriage(husband=young, registered_on="2026-10-22")) == [(("husband", "birth_date"), "marriage_age")]
    divorce = marriage(kind="divorce", husband=young, original_certificate_no="J0", registered_on="2026-10-22")
    assert MarriageEvent.model_validate(divorce).kind == "divorce"


def test_a_divorce_names_the_marriage_it_ends_and_only_a_divorce_does():
    assert errors(MarriageEvent, marriage(kind="divorce")) == [(("original_certificate_no",), "divorce_certificate_missing")]
    assert errors(MarriageEvent, marriage(original_certificate_no="J0")) == [(("original_certificate_no",), "marriage_original_certificate")]
    assert MarriageEvent.model_validate(marriage(kind="divorce", original_certificate_no="J0")).original_certificate_no == "J0"


def test_parties_must_be_unmarried_a_man_and_a_woman():
    married = marriage(wife={"name": "吴秀英", "id_number": WOMAN, "prior_status": "已婚"})
    assert errors(MarriageEvent, married) == [(("wife", "prior_status"), "marriage_party_married")]
    # Sex given by the role disagrees with the ID number...
    assert errors(MarriageEvent, marriage(husband={"name": "吴秀英", "id_number": WOMAN, "sex": "1"})) == [
        (("husband",), "id_sex_mismatch")
    ]
    # ...and without a stated sex, the one the ID number gives must fit the role.
    assert errors(MarriageEvent, marriage(husband={"name": "吴秀英", "id_number": WOMAN})) == [
        (("husband", "sex"), "marriage_party_sex")
    ]


def test_a_party_without_id_number_needs_a_birth_date():
    foreigner = {"name": "Anna", "sex": "2", "nationality": "德国"}
    assert errors(MarriageEvent, marriage(wife=foreigner)) == [(("wife", "birth_date"), "missing")]
    assert MarriageEvent.model_validate(marriage(wife={**foreigner, "birth_date": "1996-01-01"})).wife.id_number is None


def test_adoption_has_one_or_two_adopters_and_an_adoptee_born_before():
    adoption = {
        "certificate_no": "S1",
        "registered_on": "2026-10-08",
        "placing_party": "台山市社会福利院",
        "adopters": [{"name": "郑国华", "id_number": "440781198801090312"}],
        "adoptee": {"name": "郑乐", "id_number": "440781202403010785"},
    }
    assert AdoptionEvent.model_validate(adoption).business_key() == "S1"
    assert errors(AdoptionEvent, {**adoption, "adopters": []}) == [(("adopters",), "too_short")]
    assert errors(AdoptionEvent, {**adoption, "adopters": adoption["adopters"] * 3}) == [(("adopters",), "too_long")]
    assert errors(AdoptionEvent, {**adoption, "registered_on": "2024-02-29"}) == [(("registered_on",), "date_before_birth")]


def test_placing_party_is_masked_like_a_name():
    assert (("placing_party",), "name") in AdoptionEvent.field_kinds()
