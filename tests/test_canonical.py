"""Canonical JSON: the bytes every record hash (and so every signed receipt) is made of.

A record's canonical bytes must never change for the same record: receipts already signed
name its hash, and a re-sent record is recognised as a duplicate by it. `Contract.canonical()`
takes a fast path (pydantic's serializer straight away, orjson for the encoding); these tests
pin its bytes and hold it to the reference form `canonical_json(model_dump(...))`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.civil_affairs import CivilAffairsAdapter
from adapters.hospital_births import HospitalBirthsAdapter
from adapters.housing_registry import HousingRegistryAdapter
from adapters.national_platform import NationalPlatformAdapter
from adapters.police_hukou import PoliceHukouAdapter
from adapters.school_enrolments import SchoolEnrolmentsAdapter
from contracts import CONTRACTS, BirthEvent, Contract, canonical_json
from contracts import identity
from contracts.canonical import canonical_json_without_floats
from contracts.fields import parse_date, today
from gateway.adapter import RowRejected
from gateway.testing import source_from_bytes

# Backend-independent (canonical record bytes of the contracts, no database): runs on one backend only (tests/conftest.py).
pytestmark = pytest.mark.backend_independent


DEMO = Path(__file__).resolve().parent.parent / "gateway" / "demo_data"

SPECIMEN = {
    "birth_certificate_no": " Q440781260001 ",
    "child": {"name": "陈\U00020000安", "sex": "女", "birth_date": "2026年3月4日", "birth_time": "08:05"},
    "birth_weight_g": "3150",
    "gestation_weeks": "39",
    "birth_order": "1",
    "mother": {"name": "黄丽", "id_number": "44078119900101018x"},
    "father": {"name": "陈\u3000强", "id_number": "440781198807070013"},
    "institution_name": "台山市人民医院",
    "institution_code": "12440781mb2c23455k",
    "home_address": '广东省台山市台城街道环城南路12号"东"\\座',
    "registered_division_code": "440781",
}

# Written down from the implementation before the fast path (json.dumps over
# model_dump(mode="json")): a date, a time, enums, a character outside the BMP, an
# ideographic space, a quote and a backslash, derived fields (sex and birth date from
# the ID numbers), an upper-cased check character and credit code.
PINNED = (
    '{"birth_certificate_no":"Q440781260001","birth_order":1,"birth_weight_g":3150,'
    '"child":{"birth_date":"2026-03-04","birth_time":"08:05:00","name":"陈\U00020000安","sex":"2"},'
    '"father":{"birth_date":"1988-07-07","id_number":"440781198807070013","name":"陈\u3000强","sex":"1"},'
    '"gestation_weeks":39,"home_address":"广东省台山市台城街道环城南路12号\\"东\\"\\\\座",'
    '"institution_code":"12440781MB2C23455K","institution_name":"台山市人民医院",'
    '"mother":{"birth_date":"1990-01-01","id_number":"44078119900101018X","name":"黄丽","sex":"2"},'
    '"registered_division_code":"440781","registration":"hospital"}'
).encode("utf-8")
PINNED_SHA256 = "850afb5aa158fa0ea35b800c0744d347a77a36765a6b770ca637b8a292a85f53"


def test_specimen_record_bytes_are_pinned() -> None:
    record = BirthEvent.model_validate(SPECIMEN)
    assert record.canonical() == PINNED
    assert hashlib.sha256(PINNED).hexdigest() == PINNED_SHA256
    assert record.record_hash() == PINNED_SHA256
    assert record.business_key() == "hospital|Q440781260001"
    # The reference form, spelled out.
    reference = json.dumps(
        record.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert reference == PINNED


def test_every_builtin_contract_takes_the_fast_path() -> None:
    for contract in CONTRACTS.values():
        assert contract._canonical_by_orjson(), contract.__name__


def _specimen_records(directory: Path) -> list[Contract]:
    adapters = [
        (HospitalBirthsAdapter, "hospital_births_202610.csv", "hospital"),
        (CivilAffairsAdapter, "civil_affairs_202610.xml", "civil-affairs"),
        (HousingRegistryAdapter, "housing_occupancy_page1.json", "housing"),
        (NationalPlatformAdapter, "national_platform_inbound_20261102.xml", "national-platform"),
        (PoliceHukouAdapter, "police_hukou_202610.csv", "police"),
        (SchoolEnrolmentsAdapter, "school_enrolments_202609.csv", "school"),
    ]
    records = []
    for adapter_class, name, department in adapters:
        adapter = adapter_class()
        source = source_from_bytes((DEMO / name).read_bytes(), name, department, directory)
        for raw in adapter.parse(source):
            try:
                records.append(adapter.normalize(raw))
            except (ValidationError, RowRejected):
                continue
    return records


def test_specimens_of_every_adapter_match_the_reference_form(tmp_path: Path) -> None:
    records = _specimen_records(tmp_path)
    assert {type(record).__name__ for record in records} >= {"BirthEvent", "Migration", "SchoolEnrolment", "HousingOccupancy"}
    for record in records:
        assert record.canonical() == canonical_json(record.model_dump(mode="json", exclude_none=True))


def test_orjson_agrees_with_the_json_module_on_every_code_point() -> None:
    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(code_points), 4096):
        text = "".join(map(chr, code_points[start : start + 4096]))
        value = {"k": text, "list": [text[::-1], None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1]}
        assert canonical_json_without_floats(value) == canonical_json(value)
    for c in range(0x20):  # control characters: \n, \t ... and \u001f, in lower case
        assert canonical_json_without_floats(chr(c)) == canonical_json(chr(c))


def test_orjson_sorts_keys_by_code_point_like_the_json_module() -> None:
    keys = ["b", "a", "ab", "aa", "B", "_x", "é", "z1", "z10", "z2", "中", "\U00020000", "\uffff", "ÿ", ""]
    value = {key: {inner: index for index, inner in enumerate(reversed(keys))} for key in keys}
    assert canonical_json_without_floats(value) == canonical_json(value)


def test_what_orjson_refuses_goes_to_the_json_module() -> None:
    assert canonical_json_without_floats({"n": 2**64}) == canonical_json({"n": 2**64}) == b'{"n":18446744073709551616}'
    assert canonical_json_without_floats({"n": -(2**63) - 1}) == canonical_json({"n": -(2**63) - 1})
    with pytest.raises(UnicodeEncodeError):
        canonical_json_without_floats({"s": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"s": "\ud800"})


def test_a_contract_with_a_float_keeps_the_json_module() -> None:
    class Measured(Contract):
        contract_name = "Measured"
        business_key_fields = ("code",)
        code: str
        value: float

    assert not Measured._canonical_by_orjson()
    record = Measured(code="a", value=1e-05)
    # orjson would write 0.00001; the canonical form has always been Python's 1e-05.
    assert record.canonical() == b'{"code":"a","value":1e-05}'


# The fast paths under the canonical form: dates and ID numbers are part of every record.


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-03", " 2026-10-03 ", "2026-1-03", "2026-10-3", "2026/10/5", "20261008", "2026年10月7日",
        "２０２６-１０-０３", "2026-02-30", "0000-01-01", "2026-W40-1", "2026--1-01", "+026-10-03", "2026-10-03T00",
        "", "   ", "2026_10_03",
    ],
)
def test_date_fast_path_reads_like_the_patterns(text: str) -> None:
    import re

    forms = [
        re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
        re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
        re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
        re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
    ]

    def by_patterns(value: str) -> object:
        value = value.strip()
        if not value:
            return None
        for form in forms:
            match = form.match(value)
            if match:
                try:
                    return dt.date(*(int(part) for part in match.groups()))
                except ValueError:
                    return "date_impossible"
        return "date_format"

    try:
        got: object = parse_date(text)
    except Exception as exc:  # PydanticCustomError
        got = getattr(exc, "type", type(exc).__name__)
    assert got == by_patterns(text)


def test_accepted_id_numbers_are_checked_again_when_the_date_goes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    born = today() - dt.timedelta(days=1)
    body = f"440781{born:%Y%m%d}123"
    from stdnum.cn import ric

    number = body + ric.calc_check_digit(body + "0")
    assert identity.normalize_id_number(number) == number  # accepted today, and remembered
    monkeypatch.setattr(identity, "_today", lambda: born - dt.timedelta(days=1))  # the clock set back
    with pytest.raises(Exception) as refused:
        identity.normalize_id_number(number)
    assert getattr(refused.value, "type", None) == "id_birth_future"
