"""Police household registry (户籍): the conformance kit, the specimen through the real
pipeline (one contract per business type YWLX), bad rows, a file from another
department, and the hospital/police birth records kept apart."""

from __future__ import annotations

import csv
import io
import json

import conftest
import pytest

from adapters.police_hukou import PoliceHukouAdapter
from conftest import SPECIMENS, drop, error_report, specimen
from contracts import DeathEvent
from gateway.adapter import RawRow, RowRejected
from gateway.testing import adapter_test_class

SPECIMEN = "police_hukou_202610.csv"
TEXT = specimen(SPECIMEN).decode("utf-8-sig")
HEADER, *ROWS = list(csv.reader(io.StringIO(TEXT)))
BIRTH, DEATH, MOVE_IN, MOVE_OUT, PERMIT, SHORT_ID = (dict(zip(HEADER, row)) for row in ROWS)

TestPoliceHukou = adapter_test_class(
    PoliceHukouAdapter,
    samples=[SPECIMENS / SPECIMEN],
    expected={SPECIMEN: (5, 1)},
)


# -- helpers ------------------------------------------------------------------------


def query(settings, sql: str, *args) -> list[tuple]:
    return conftest.query(settings, sql, *args)


def report(settings, name: str, department: str = "police") -> dict[int, list[tuple[str, str, str, str]]]:
    """The outbox's errors.csv as {row: [(column, field, masked value, code), ...]}."""
    return error_report(settings, department, name)


def police_csv(*rows: dict[str, str], encoding: str = "utf-8-sig") -> bytes:
    """A police file as the registry writes it: data-element header, UTF-8 BOM, LF."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow([row.get(column, "") for column in HEADER])
    return out.getvalue().encode(encoding)


def run(gateway, settings, name: str, data: bytes, department: str = "police"):
    drop(settings, department, name, data)
    [outcome] = gateway.run_once()
    return outcome


# -- the specimen through the pipeline ---------------------------------------------


def test_specimen_gives_five_records_one_per_business_type_and_rejects_the_17_digit_id(gateway, settings):
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    assert (outcome.status, outcome.accepted, outcome.rejected, outcome.duplicates) == ("processed", 5, 1, 0)
    stored = query(settings, "SELECT contract, business_key, row_number, payload FROM record ORDER BY leaf_index")
    assert [(contract, key, row) for contract, key, row, _ in stored] == [
        ("BirthEvent", "police|Q440781260001", 2),
        ("DeathEvent", "police|440781193804050137|2026-10-11", 3),
        ("Migration", "450102199606112246|in|2026-10-15", 4),
        ("Migration", "440781200009010358|out|2026-10-18", 5),
        ("ResidencePermit", "JZ440781-2026-00088", 6),
    ]
    birth, death, moved_in, moved_out, permit = (json.loads(payload) for *_, payload in stored)
    assert birth["registration"] == "police"
    assert birth["child"] == {
        "name": "陈小明", "id_number": "440781202610030156", "sex": "1", "birth_date": "2026-10-03", "ethnicity": "01",
    }
    assert birth["household"]["household_no"] == "440781000123" and birth["household"]["relation_to_head"] == "20"
    assert death["death_date"] == "2026-10-11" and death["reason"] == "死亡"
    # 迁入: came from Nanning (QYDZ) into a Taishan household (HJDZ); 迁出 the other way round.
    assert moved_in["other_place"] == {"address": "广西壮族自治区南宁市兴宁区", "division_code": "450102"}
    assert moved_in["transfer_permit_no"] == "ZQ2026-0789" and moved_in["person"]["ethnicity"] == "12"
    assert moved_out["household"]["relation_to_head"] == "03"  # 小集体户户主, kept from GB/T 4761-1984
    assert moved_out["other_place"]["division_code"] == "440106"
    assert permit["valid_until"] == "2027-10-18" and permit["residence"]["division_code"] == "440781"
    assert "household_no" not in permit["household"]  # empty HH: absent, not ""

    errors = report(settings, SPECIMEN)
    assert errors == {7: [("GMSFHM", "person.id_number", "110105**********2", "id_format")]}
    shown = (settings.mailbox_root / "police" / "outbox" / f"{SPECIMEN}.errors.csv").read_text(encoding="utf-8-sig")
    assert "11010519491231002" not in shown
    assert (settings.mailbox_root / "police" / "processed" / SPECIMEN).read_bytes() == specimen(SPECIMEN)


def test_the_same_file_in_gb18030_gives_the_same_records(gateway, settings):
    run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    again = run(gateway, settings, "police_hukou_202610_gb.csv", TEXT.encode("gb18030"))
    assert (again.accepted, again.duplicates, again.rejected) == (0, 5, 1)


def test_hospital_birth_and_police_registration_of_one_certificate_are_two_records(gateway, settings):
    run(gateway, settings, "hospital_births_202610.csv", specimen("hospital_births_202610.csv"), "hospital")
    police = run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    # Q440781260001 is in both files; the police registration is no correction of the hospital's record.
    assert (police.accepted, police.corrected, police.duplicates) == (5, 0, 0)
    births = query(settings, "SELECT business_key, version FROM record WHERE business_key LIKE '%Q440781260001'")
    assert sorted(births) == [("hospital|Q440781260001", 1), ("police|Q440781260001", 1)]


def test_a_row_repeated_in_one_file_is_counted_as_a_duplicate(gateway, settings):
    outcome = run(gateway, settings, "twice.csv", police_csv(DEATH, MOVE_IN, DEATH))
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (2, 1, 0)


def test_a_corrected_row_in_a_later_file_is_a_new_version(gateway, settings):
    run(gateway, settings, "first.csv", police_csv(PERMIT))
    fixed = run(gateway, settings, "fixed.csv", police_csv({**PERMIT, "JZZYXQZ": "20271019"}))
    assert (fixed.accepted, fixed.corrected) == (1, 1)
    assert query(settings, "SELECT version FROM record ORDER BY version") == [(1,), (2,)]


# -- bad rows ---------------------------------------------------------------------------


def test_unknown_or_empty_business_type_is_a_row_error(gateway, settings):
    outcome = run(gateway, settings, "types.csv", police_csv({**DEATH, "YWLX": "户口恢复"}, {**DEATH, "YWLX": " "}, MOVE_IN))
    assert (outcome.accepted, outcome.rejected) == (1, 2)
    assert report(settings, "types.csv") == {
        2: [("YWLX", "", "", "business_type_unknown")],
        3: [("YWLX", "", "", "missing")],
    }


def test_wrong_type_cells_are_row_errors_naming_the_column(gateway, settings):
    rows = [
        {**DEATH, "BDRQ": "十月十一日"},
        {**MOVE_IN, "MZDM": "99"},
        {**MOVE_OUT, "YHZGXDM": "3"},  # one digit: 配偶 in the one-digit table, or 03 with a lost zero
        {**PERMIT, "JZZYXQZ": "2027-02-30"},
        {**BIRTH, "HJDZ_XZQHDM": "4407"},
        {**DEATH, "CSRQ": "19380406"},
    ]
    outcome = run(gateway, settings, "cells.csv", police_csv(*rows))
    assert (outcome.accepted, outcome.rejected) == (0, 6)
    found = {row: [(column, code) for column, _, _, code in errors] for row, errors in report(settings, "cells.csv").items()}
    assert found == {
        2: [("BDRQ", "date_format")],
        3: [("MZDM", "ethnicity_code")],
        4: [("YHZGXDM", "relation_code")],
        5: [("JZZYXQZ", "date_impossible")],
        6: [("HJDZ_XZQHDM", "string_pattern_mismatch")],
        7: [("GMSFHM", "id_birth_mismatch")],
    }


def test_codes_by_label_and_a_lost_leading_zero_are_read(gateway, settings):
    outcome = run(gateway, settings, "labels.csv", police_csv({**MOVE_IN, "MZDM": "侗族", "XBDM": "女"}, {**DEATH, "MZDM": "1"}))
    assert (outcome.accepted, outcome.rejected) == (2, 0)
    people = [json.loads(p) for (p,) in query(settings, "SELECT payload FROM record ORDER BY leaf_index")]
    assert people[0]["person"]["ethnicity"] == "12" and people[1]["deceased"]["ethnicity"] == "01"


def test_sex_that_disagrees_with_the_id_number_is_a_row_error(gateway, settings):
    outcome = run(gateway, settings, "sex.csv", police_csv({**MOVE_IN, "XBDM": "1"}, {**BIRTH, "XBDM": "2"}))
    assert (outcome.accepted, outcome.rejected) == (0, 2)
    assert report(settings, "sex.csv") == {
        2: [("GMSFHM", "person.id_number", "", "id_sex_mismatch")],
        3: [("GMSFHM", "child.id_number", "", "id_sex_mismatch")],
    }


def test_rules_of_each_business_type(gateway, settings):
    rows = [
        {**DEATH, "BDRQ": "19380404"},  # died before being born
        {**PERMIT, "JZZYXQZ": "20261019"},  # valid until the day it was issued
        {**BIRTH, "CSYXZMBH": ""},  # newborn registration without the birth certificate
        {**MOVE_IN, "BDRQ": "19960610"},  # moved before birth
        {**PERMIT, "QYDZ": "", "QYDZ_XZQHDM": ""},  # a residence permit without the residence
    ]
    outcome = run(gateway, settings, "rules.csv", police_csv(*rows))
    assert (outcome.accepted, outcome.rejected) == (0, 5)
    found = {row: [(column, code) for column, _, _, code in errors] for row, errors in report(settings, "rules.csv").items()}
    assert found == {
        2: [("BDRQ", "death_before_birth")],
        3: [("JZZYXQZ", "permit_validity")],
        4: [("CSYXZMBH", "missing")],
        5: [("BDRQ", "date_before_birth")],
        6: [("QYDZ", "missing")],
    }


def test_a_column_the_business_type_does_not_use_must_be_empty(gateway, settings):
    outcome = run(gateway, settings, "unused.csv", police_csv({**DEATH, "JZZBH": "JZ1", "ZQZBH": "ZQ1"}, BIRTH))
    assert (outcome.accepted, outcome.rejected) == (1, 1)
    assert report(settings, "unused.csv") == {2: [("ZQZBH, JZZBH", "", "", "column_not_used")]}


@pytest.mark.backend_independent
def test_unused_columns_may_be_allowed_by_configuration():
    row = RawRow(3, {**DEATH, "JZZBH": "JZ1"})
    with pytest.raises(RowRejected) as refused:
        PoliceHukouAdapter().normalize(row)
    assert (refused.value.code, refused.value.column) == ("column_not_used", "JZZBH")
    record = PoliceHukouAdapter({"strict_unused_columns": False}).normalize(row)
    assert isinstance(record, DeathEvent) and "JZ1" not in record.canonical().decode()
    with pytest.raises(Exception, match="strict_unused_column"):
        PoliceHukouAdapter({"strict_unused_column": False})


def test_a_header_without_the_type_specific_columns_still_reads_what_it_can(gateway, settings):
    common = [c for c in HEADER if c not in ("QYDZ", "QYDZ_XZQHDM", "ZQZBH", "JZZBH", "JZZYXQZ", "CSYXZMBH")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(common)
    for row in (DEATH, PERMIT):
        writer.writerow([row[c] for c in common])
    outcome = run(gateway, settings, "old_export.csv", out.getvalue().encode("utf-8-sig"))
    assert (outcome.accepted, outcome.rejected) == (1, 1)
    assert [(c, code) for c, _, _, code in report(settings, "old_export.csv")[3]] == [("JZZBH", "missing"), ("JZZYXQZ", "missing")]


# -- files that are not the police's ------------------------------------------------------


def test_hospital_file_in_the_police_inbox_names_the_hospital_adapter(gateway, settings):
    outcome = run(gateway, settings, "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
    assert outcome.status == "rejected"
    assert "hospital-births" in outcome.reason and "department hospital" in outcome.reason
    assert (settings.mailbox_root / "police" / "rejected" / "hospital_births_202610.csv").exists()
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]


def test_police_file_in_another_inbox_names_the_police_adapter(gateway, settings):
    hospital = run(gateway, settings, "misfiled.csv", specimen(SPECIMEN), "hospital")
    civil = run(gateway, settings, "misfiled.csv", specimen(SPECIMEN), "civil-affairs")
    for outcome in (hospital, civil):
        assert outcome.status == "rejected"
        assert "police-hukou" in outcome.reason and "department police" in outcome.reason


def test_a_header_missing_a_core_column_is_rejected_naming_it(gateway, settings):
    text = TEXT.replace(",BDRQ,", ",BDRQ_X,", 1)
    outcome = run(gateway, settings, "no_bdrq.csv", text.encode("utf-8-sig"))
    assert outcome.status == "rejected" and "BDRQ" in outcome.reason


def test_a_quoted_header_is_still_the_police_header(gateway, settings):
    quoted = ",".join(f'"{column}"' for column in HEADER)
    text = TEXT.replace(",".join(HEADER), quoted, 1)
    outcome = run(gateway, settings, "quoted.csv", text.encode("utf-8-sig"))
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 5, 1)
