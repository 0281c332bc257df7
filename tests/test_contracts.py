"""The ID-number type, dates and schemas."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import TypeAdapter, ValidationError
from stdnum.cn import ric

from contracts import BirthEvent, IdNumber, Person
from contracts.export import SCHEMA_DIR, schema_documents
from contracts.fields import Date, PastDate
from contracts.fields import today as china_today
from contracts.identity import upgrade_legacy

# Backend-independent (the contracts' validation, no database): runs on one backend only (tests/conftest.py).
pytestmark = pytest.mark.backend_independent


ID = TypeAdapter(IdNumber)


def with_check(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def error_type(adapter: TypeAdapter, value) -> str:
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(value)
    return info.value.errors()[0]["type"]


def test_valid_number_is_kept_and_lowercase_x_is_upper():
    assert ID.validate_python(" 440781199203154325 ") == "440781199203154325"
    number = next(with_check(f"1101051990010100{n}") for n in range(10) if with_check(f"1101051990010100{n}").endswith("X"))
    assert ID.validate_python(number.lower()) == number


def test_check_character_is_computed_over_the_whole_number():
    good = "440781199203154325"
    assert ID.validate_python(good) == good
    assert error_type(ID, good[:-1] + str((int(good[-1]) + 1) % 10)) == "id_check_char"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("11010519491231002", "id_format"),  # 17 digits (the police specimen)
        ("44078119920315432A", "id_format"),
        ("", "missing"),
        (with_check("44078120260230123"), "id_birth_date"),
        (with_check("44078118000101123"), "id_birth_date"),
        (with_check(f"440781{(china_today() + dt.timedelta(days=40)):%Y%m%d}123"), "id_birth_future"),
    ],
)
def test_refused_only_for_format_check_character_or_birth_date(value, code):
    assert error_type(ID, value) == code


def test_retired_division_code_is_a_warning_not_a_rejection():
    # 440703 (Jiangmen Pengjiang) does not exist for 1993 births in stdnum's table, yet the
    # hospital specimen's fathers hold such numbers: stdnum's validate() would refuse them.
    father = "440703199311011373"
    assert ID.validate_python(father) == father
    with pytest.raises(Exception):
        ric.validate(father)
    person = Person(name="周杰", id_number=father)
    event = BirthEvent.model_validate(
        {
            "birth_certificate_no": "Q1",
            "child": {"name": "小", "sex": "男", "birth_date": "2026-10-01"},
            "mother": {"name": "黄敏", "id_number": "440703199507221268"},
            "father": person.model_dump(),
        }
    )
    codes = {code for _, code, _ in event.warnings()}
    assert codes == {"division_unknown"}


def test_legacy_15_digit_number_is_upgraded():
    upgraded = ID.validate_python("440781920315432")
    assert upgraded == upgrade_legacy("440781920315432")
    assert upgraded.startswith("44078119920315432") and len(upgraded) == 18
    assert ric.calc_check_digit(upgraded) == upgraded[-1]


def test_person_derives_sex_and_birth_date_and_refuses_disagreement():
    person = Person(name="陈丽", id_number="440781199203154325")
    assert person.sex is not None and person.sex.label == "女"
    assert person.birth_date == dt.date(1992, 3, 15)
    with pytest.raises(ValidationError) as info:
        Person(name="陈丽", id_number="440781199203154325", sex="男")
    assert info.value.errors()[0]["type"] == "id_sex_mismatch"


@pytest.mark.parametrize("text", ["2026-10-03", "2026/10/3", "20261003", "2026年10月3日", " 2026-10-03 "])
def test_four_date_spellings(text):
    assert TypeAdapter(Date).validate_python(text) == dt.date(2026, 10, 3)


@pytest.mark.parametrize(("text", "code"), [("2026-02-30", "date_impossible"), ("03/10/2026", "date_format"), ("2026.10.03", "date_format")])
def test_bad_dates(text, code):
    assert error_type(TypeAdapter(Date), text) == code


def test_future_birth_date_is_a_row_error():
    tomorrow = (china_today() + dt.timedelta(days=1)).isoformat()
    assert error_type(TypeAdapter(PastDate), tomorrow) == "date_future"


def test_fields_are_trimmed_and_outside_bmp_names_survive():
    event = BirthEvent.model_validate(
        {
            "birth_certificate_no": "  Q2  ",
            "child": {"name": " 黄\U0002003e然 ", "sex": " 2 ", "birth_date": "2026/10/5"},
            "mother": {"name": "黄敏", "id_number": " 440703199507221268 "},
        }
    )
    assert event.birth_certificate_no == "Q2"
    assert event.child.name == "黄\U0002003e然"
    assert "黄\U0002003e然".encode() in event.canonical()


def test_record_hash_is_stable_and_content_sensitive():
    data = {
        "birth_certificate_no": "Q3",
        "child": {"name": "王一", "sex": "2", "birth_date": "20261008"},
        "mother": {"name": "王芳", "id_number": "440781199203154325"},
    }
    first, again = BirthEvent.model_validate(data), BirthEvent.model_validate(dict(data))
    assert first.record_hash() == again.record_hash()
    changed = BirthEvent.model_validate({**data, "birth_weight_g": "3400"})
    assert changed.record_hash() != first.record_hash()
    assert changed.business_key() == first.business_key()


def test_committed_json_schemas_are_current():
    documents = schema_documents()
    stale = [name for name, text in documents.items() if (SCHEMA_DIR / name).read_text(encoding="utf-8") != text]
    assert not stale, f"run `gateway contracts export`: stale {stale}"
    on_disk = {p.name for p in SCHEMA_DIR.glob("*.json")}
    assert on_disk == set(documents), "schemas on disk without a contract, or missing"
