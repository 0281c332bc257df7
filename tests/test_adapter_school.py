"""School enrolments (学籍 新生名册): the conformance kit, the specimen through the real
pipeline as CSV and as XLSX, bad rows and bad workbooks (ID typed as a number, wrong cell
types, a zip bomb, a corrupt file), and the contract's age and student-number rules."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import resource
import time
import tracemalloc
import zipfile
from pathlib import Path

import openpyxl
import conftest
import pytest
from pydantic import ValidationError

from adapters.school_enrolments import SchoolEnrolmentsAdapter
from conftest import SPECIMENS, drop, error_report, specimen
from contracts.school import SchoolEnrolment, StageAgeRanges
from gateway.testing import adapter_test_class, run_pass

SPECIMEN = "school_enrolments_202609.csv"
TEXT = specimen(SPECIMEN).decode("gb18030")
HEADER, *ROWS = list(csv.reader(io.StringIO(TEXT)))
KEYS = [
    "G440781202308150923|kindergarten",
    "G440781202001020833|primary",
    "G440703201309300459|junior_middle",
    "L2026000123|kindergarten",
]

TestSchoolEnrolments = adapter_test_class(
    SchoolEnrolmentsAdapter,
    samples=[SPECIMENS / SPECIMEN],
    expected={SPECIMEN: (4, 1)},
)

# The same specimen as a workbook (tests/data): the kit's XLSX cases (a truncated zip, a
# zip bomb, a DOCTYPE in a sheet) and a 20,000-row workbook streamed.
XLSX_SAMPLE = Path(__file__).parent / "data" / "school_enrolments_202609.xlsx"

TestSchoolEnrolmentsWorkbook = adapter_test_class(
    SchoolEnrolmentsAdapter,
    samples=[XLSX_SAMPLE],
    expected={XLSX_SAMPLE.name: (4, 1)},
)


# -- helpers ------------------------------------------------------------------------


def query(settings, sql: str, *args) -> list[tuple]:
    return conftest.query(settings, sql, *args)


def report(settings, name: str, department: str = "school") -> dict[int, list[list[str]]]:
    """The outbox's errors.csv as {row: [[column, field, value, zh, en, code], ...]}."""
    return error_report(settings, department, name, (1, 2, 3, 4, 5, 6))


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([HEADER, *rows])
    return out.getvalue().encode("gb18030")


def xlsx_bytes(rows: list[list[object]], *, header: list[str] = HEADER, sheet: str = "新生名册") -> bytes:
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    worksheet.append(header)
    for row in rows:
        worksheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def replaced(row: list[str], column: str, value: object) -> list[object]:
    changed: list[object] = list(row)
    changed[HEADER.index(column)] = value
    return changed


def run(gateway, settings, name: str, data: bytes, department: str = "school"):
    drop(settings, department, name, data)
    [outcome] = gateway.run_once()
    return outcome


# -- the specimen through the pipeline ---------------------------------------------


def test_specimen_csv_gives_four_enrolments_and_rejects_the_five_year_old(gateway, settings):
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    assert (outcome.status, outcome.accepted, outcome.rejected, outcome.duplicates) == ("processed", 4, 1, 0)
    stored = query(settings, "SELECT contract, business_key, payload FROM record ORDER BY leaf_index")
    assert [key for _, key, _ in stored] == KEYS
    assert {contract for contract, _, _ in stored} == {"SchoolEnrolment"}
    pupil = json.loads(stored[3][2])["student"]
    # No citizen ID: the L number stands alone, 身份证件类型 其他.
    assert pupil["id_type"] == "other" and "id_number" not in pupil
    assert json.loads(stored[0][2])["enrolment_month"] == "2026-09"

    errors = report(settings, SPECIMEN)
    assert list(errors) == [6]
    [[column, field, value, _, _, code]] = errors[6]
    assert (column, field, code) == ("学段", "stage", "age_stage_mismatch")
    assert value == "初中 5"


def test_specimen_as_xlsx_reads_the_same_records(gateway, settings):
    first = run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    second = run(gateway, settings, "school_enrolments_202609.xlsx", xlsx_bytes(ROWS))
    assert (first.accepted, first.rejected) == (4, 1)
    # The same pupils through another file type are the same records: duplicates.
    assert (second.status, second.accepted, second.duplicates, second.rejected) == ("processed", 0, 4, 1)
    assert query(settings, "SELECT adapter FROM exchange ORDER BY id") == [("school-enrolments",)] * 2


def test_xlsx_with_typed_cells_dates_codes_and_blank_rows(gateway, settings):
    row = replaced(ROWS[0], "出生日期", dt.datetime(2023, 8, 15))
    row = replaced(row, "学校标识码", 2144012345)
    row = replaced(row, "入学年月", 202609)
    row = replaced(row, "性别", 2)
    # Trailing empty cells are simply absent in XLSX; a blank row between is skipped.
    header = [column for column in HEADER if column != "现住址"] + ["现住址"]
    reorder = [[r[HEADER.index(column)] for column in header] for r in (row, ROWS[1])]
    rows = [reorder[0], [None] * 3, reorder[1][:-1]]
    outcome = run(gateway, settings, "typed.xlsx", xlsx_bytes(rows, header=header))
    assert (outcome.accepted, outcome.rejected) == (2, 0), report(settings, "typed.xlsx")
    keys = [key for (key,) in query(settings, "SELECT business_key FROM record ORDER BY leaf_index")]
    assert keys == KEYS[:2]


@pytest.mark.backend_independent
def test_a_large_workbook_is_streamed_in_bounded_memory(tmp_path):
    from gateway.testing import source_from_bytes

    rows = 5_000
    path = tmp_path / "big.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "新生名册"
    sheet.append(HEADER)
    for n in range(rows):
        sheet.append(ROWS[n % 4])
    workbook.save(path)
    adapter = SchoolEnrolmentsAdapter()
    source = source_from_bytes(path.read_bytes(), "big.xlsx", "school", tmp_path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in adapter.parse(source))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    # Holding the rows would take several MB (70,000 cells); streaming stays near one row.
    assert peak < 4 * 1024 * 1024, f"peaked at {peak / 1e6:.1f} MB"


# -- bad rows -------------------------------------------------------------------------


def test_xlsx_id_typed_as_a_number_rejects_the_row(gateway, settings):
    pupil_as_float = replaced(ROWS[0], "身份证件号", float(ROWS[0][HEADER.index("身份证件号")]))
    guardian_as_int = replaced(ROWS[1], "监护人1身份证件号", int(ROWS[1][HEADER.index("监护人1身份证件号")]))
    outcome = run(gateway, settings, "numbers.xlsx", xlsx_bytes([pupil_as_float, guardian_as_int, ROWS[2]]))
    assert (outcome.accepted, outcome.rejected) == (1, 2)
    errors = report(settings, "numbers.xlsx")
    assert [(e[0], e[5]) for e in errors[2]] == [("身份证件号", "id_as_number")]
    assert [(e[0], e[5]) for e in errors[3]] == [("监护人1身份证件号", "id_as_number")]


def test_csv_id_in_scientific_notation_rejects_the_row(gateway, settings):
    bad = replaced(ROWS[0], "身份证件号", "4.40781E+17")
    outcome = run(gateway, settings, "sci.csv", csv_bytes([bad, ROWS[1]]))
    assert (outcome.accepted, outcome.rejected) == (1, 1)
    assert [(e[0], e[5]) for e in report(settings, "sci.csv")[2]] == [("身份证件号", "id_as_number")]


def test_wrong_type_cells_are_row_errors_naming_the_column(gateway, settings):
    rows = [
        replaced(ROWS[0], "姓名", 12345),
        replaced(ROWS[1], "出生日期", 45152.5),
        replaced(ROWS[2], "学校标识码", 144034567),  # a lost leading zero: 9 digits
        replaced(ROWS[0], "学段", "高中"),
        replaced(ROWS[1], "入学年月", "2026-13"),
    ]
    outcome = run(gateway, settings, "types.xlsx", xlsx_bytes(rows))
    assert (outcome.accepted, outcome.rejected) == (0, 5)
    found = {row: [(e[0], e[5]) for e in errors] for row, errors in report(settings, "types.xlsx").items()}
    assert found == {
        2: [("姓名", "string_type")],
        3: [("出生日期", "date_format")],
        4: [("学校标识码", "string_pattern_mismatch")],
        5: [("学段", "stage_code")],
        6: [("入学年月", "year_month")],
    }


def test_student_number_and_documents_must_agree(gateway, settings):
    rows = [
        replaced(ROWS[0], "学籍号", "G440781202001020833"),  # another pupil's number
        replaced(ROWS[1], "学籍号", "X123"),
        replaced(ROWS[2], "身份证件号", ""),  # 居民身份证 without its number
        replaced(ROWS[0], "身份证件号", "440781202308150924"),  # check character
    ]
    outcome = run(gateway, settings, "docs.csv", csv_bytes(rows))
    assert (outcome.accepted, outcome.rejected) == (0, 4)
    found = {row: [(e[0], e[5]) for e in errors] for row, errors in report(settings, "docs.csv").items()}
    assert found == {
        2: [("学籍号", "student_no_id_mismatch")],
        3: [("学籍号", "student_no_format")],
        4: [("身份证件号", "id_number_required")],
        5: [("身份证件号", "id_check_char")],
    }
    shown = (settings.mailbox_root / "school" / "outbox" / "docs.csv.errors.csv").read_text(encoding="utf-8-sig")
    assert "440781***********4" in shown and "440781202308150924" not in shown


def test_a_row_repeated_in_one_file_is_counted_as_a_duplicate(gateway, settings):
    outcome = run(gateway, settings, "twice.csv", csv_bytes([ROWS[0], ROWS[1], ROWS[0]]))
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (2, 1, 0)


def test_configured_age_ranges_replace_the_defaults(gateway, settings):
    settings.adapters["school-enrolments"] = {"stage_ages": {"junior_middle": [5, 16]}}
    outcome = run(gateway, settings, SPECIMEN, specimen(SPECIMEN))
    assert (outcome.accepted, outcome.rejected) == (5, 0)


# -- files that are not ours, or not workbooks ---------------------------------------


def test_hospital_file_in_the_school_inbox_names_the_hospital_adapter(gateway, settings):
    outcome = run(gateway, settings, "births.csv", specimen("hospital_births_202610.csv"))
    assert outcome.status == "rejected"
    assert "no_adapter" in query(settings, "SELECT reason_code FROM exchange")[0]
    assert "hospital-births" in outcome.reason


def test_school_workbook_in_another_inbox_names_the_school_adapter(settings):
    result = run_pass(settings.home, "hospital", {"enrolments.xlsx": xlsx_bytes(ROWS)})
    outcome = result.files["enrolments.xlsx"]
    assert outcome.status == "rejected" and "school-enrolments" in (outcome.reason or "")
    [row] = result.report_for("enrolments.xlsx")
    assert row.code == "no_adapter" and "school-enrolments" in row.reason_en


@pytest.mark.parametrize(
    "data, code",
    [
        (b"PK\x03\x04 this is not really a zip", "xlsx_corrupt"),
        (bytes(range(256)) * 16, "xlsx_corrupt"),
        (b"", "xlsx_corrupt"),
    ],
    ids=["fake_zip_magic", "random_bytes", "empty"],
)
def test_a_file_that_is_no_workbook_is_rejected_clearly(gateway, settings, data, code):
    outcome = run(gateway, settings, "broken.xlsx", data)
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [(code,)]
    assert "not an XLSX workbook" in outcome.reason


def test_a_truncated_workbook_is_rejected(gateway, settings):
    data = xlsx_bytes(ROWS)
    outcome = run(gateway, settings, "cut.xlsx", data[: len(data) * 2 // 3])
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xlsx_corrupt",)]


def test_a_workbook_without_the_sheet_is_rejected_naming_its_sheets(gateway, settings):
    outcome = run(gateway, settings, "other.xlsx", xlsx_bytes(ROWS, sheet="Sheet1"))
    assert outcome.status == "rejected"
    assert "新生名册" in outcome.reason and "Sheet1" in outcome.reason


def test_a_header_missing_a_column_is_rejected(settings):
    header = [name for name in HEADER if name != "学段"]
    result = run_pass(settings.home, "school", {"nostage.xlsx": xlsx_bytes([], header=header)})
    outcome = result.files["nostage.xlsx"]
    assert outcome.status == "rejected" and "学段" in (outcome.reason or "")
    assert [(row.row, row.code) for row in result.report_for("nostage.xlsx")] == [("1", "header_missing")]


def _rezip(data: bytes, part: str, change) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            target.writestr(info.filename, change(body) if info.filename == part else body)
    return out.getvalue()


def test_a_doctype_in_any_workbook_part_is_refused(gateway, settings, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-SCHOOL-7f3a", encoding="utf-8")
    doctype = f'<!DOCTYPE worksheet [<!ENTITY x SYSTEM "file://{secret}">]>'.encode()
    data = _rezip(xlsx_bytes(ROWS), "xl/worksheets/sheet1.xml", lambda body: doctype + body)
    outcome = run(gateway, settings, "entity.xlsx", data)
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xlsx_unsafe",)]
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]


# -- zip bombs --------------------------------------------------------------------------


def _bomb(path, size_mb: int) -> None:
    """A real zip bomb, written in bounded memory: the workbook of the specimen whose
    sheet part holds `size_mb` of spaces (valid XML whitespace) before its rows, deflated
    at level 1 so the test stays quick."""
    good = zipfile.ZipFile(io.BytesIO(xlsx_bytes(ROWS)))
    sheet_name = "xl/worksheets/sheet1.xml"
    head, _, tail = good.read(sheet_name).partition(b"<sheetData>")
    blank = b" " * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
        for info in good.infolist():
            if info.filename != sheet_name:
                target.writestr(info.filename, good.read(info))
        with target.open(sheet_name, "w", force_zip64=True) as sheet:
            sheet.write(head + b"<sheetData>")
            for _ in range(size_mb):
                sheet.write(blank)
            sheet.write(tail)


def test_a_2_gb_zip_bomb_is_refused_without_inflating_it(gateway, settings, tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    _bomb(bomb, 2048)
    assert bomb.stat().st_size < 20 * 1024 * 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    outcome = run(gateway, settings, "bomb.xlsx", bomb.read_bytes())
    assert time.monotonic() - started < 30
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xlsx_unsafe",)]
    assert "xlsx_max_uncompressed_mb" in outcome.reason
    assert grown_mb < 100, f"memory grew by {grown_mb:.0f} MB"


def test_a_compression_ratio_above_the_configured_limit_is_refused(gateway, settings, tmp_path):
    settings.adapters["school-enrolments"] = {"xlsx_max_ratio": 20}
    bomb = tmp_path / "dense.xlsx"
    _bomb(bomb, 8)  # 8 MB of spaces: within the size limit, far beyond 20:1
    outcome = run(gateway, settings, "dense.xlsx", bomb.read_bytes())
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xlsx_unsafe",)]
    assert "xlsx_max_ratio" in outcome.reason


def test_the_same_padded_workbook_within_the_limits_is_read(gateway, settings, tmp_path):
    padded = tmp_path / "padded.xlsx"
    _bomb(padded, 8)
    settings.adapters["school-enrolments"] = {"xlsx_max_ratio": 1000}
    outcome = run(gateway, settings, "padded.xlsx", padded.read_bytes())
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 4, 1)


def test_a_directory_that_understates_a_size_never_inflates_past_it(gateway, settings, tmp_path):
    # The directory claims the 64 MB sheet holds 400 bytes, so the size checks pass; but
    # zipfile never inflates past a declared size: the sheet reads as cut off, not as 64 MB.
    bomb = tmp_path / "liar.xlsx"
    _bomb(bomb, 64)
    data = bytearray(bomb.read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46 : entry + 46 + len(name)] != name:
        entry = data.find(b"PK\x01\x02", entry + 4)
        assert entry != -1
    data[entry + 24 : entry + 28] = (400).to_bytes(4, "little")  # uncompressed size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = run(gateway, settings, "liar.xlsx", bytes(data))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert outcome.status == "rejected"
    assert query(settings, "SELECT reason_code FROM exchange") == [("xlsx_corrupt",)]
    assert grown_mb < 50


# -- the contract's rules ---------------------------------------------------------------


def enrolment(birth: str, stage: str, month: str = "202609", **changes) -> dict:
    return {
        "student_no": "J0000001",
        "student": {"name": "王小", "sex": "1", "birth_date": birth, "id_type": "其他"},
        "guardian": {"name": "王大"},
        "school_code": "2144012345",
        "stage": stage,
        "enrolment_month": month,
        **changes,
    }


@pytest.mark.backend_independent
def test_age_bounds_at_the_edges():
    def ok(birth: str, stage: str) -> bool:
        try:
            SchoolEnrolment.model_validate(enrolment(birth, stage))
        except ValidationError:
            return False
        return True

    assert ok("2024-09-01", "幼儿园") and not ok("2024-09-02", "幼儿园")  # turns 2 on the 1st / the 2nd
    assert ok("2019-09-02", "幼儿园") and not ok("2019-09-01", "幼儿园")  # 6 / already 7
    assert ok("2021-09-01", "小学") and ok("2017-09-02", "小学") and not ok("2017-09-01", "小学")
    assert ok("2016-09-01", "初中") and not ok("2016-09-02", "初中")  # 10 / still 9
    assert ok("2009-09-02", "初中") and not ok("2009-09-01", "初中")  # 16 / 17


@pytest.mark.backend_independent
def test_born_on_29_february_is_a_year_older_on_1_march():
    six_from_march = {"stage_ages": StageAgeRanges(primary=(6, 8))}
    data = enrolment("2020-02-29", "小学", month="202603")
    assert SchoolEnrolment.model_validate(data, context=six_from_march).age_at_enrolment() == 6
    with pytest.raises(ValidationError):
        SchoolEnrolment.model_validate(enrolment("2020-02-29", "小学", month="202602"), context=six_from_march)


@pytest.mark.backend_independent
def test_age_ranges_come_from_the_validation_context():
    data = enrolment("2021-03-03", "初中")
    with pytest.raises(ValidationError):
        SchoolEnrolment.model_validate(data)
    wider = StageAgeRanges(junior_middle=(5, 16))
    assert SchoolEnrolment.model_validate(data, context={"stage_ages": wider}).stage.label == "初中"
    assert SchoolEnrolment.model_validate(data, context={"stage_ages": {"junior_middle": [5, 16]}})


@pytest.mark.backend_independent
def test_age_ranges_are_checked_when_configured():
    with pytest.raises(ValidationError):
        StageAgeRanges(primary=(8, 5))
    with pytest.raises(ValidationError):
        SchoolEnrolmentsAdapter({"stage_ages": {"senior_middle": [15, 18]}})


@pytest.mark.backend_independent
def test_a_g_number_is_g_plus_the_pupils_id_number():
    data = enrolment(
        "2023-08-15",
        "幼儿园",
        student_no="g440781202308150923",
        student={"name": "陈果", "sex": "女", "birth_date": "2023-08-15", "id_type": "居民身份证", "id_number": "440781202308150923"},
    )
    record = SchoolEnrolment.model_validate(data)
    assert record.student_no == "G440781202308150923"
    assert record.business_key() == "G440781202308150923|kindergarten"
