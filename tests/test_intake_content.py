"""Rows that vanish or change, personal data in messages, bounded memory (issue 14, the
content half): each case the issue lists, through the real pipeline."""

from __future__ import annotations

import io
import json
import random
import zipfile

import openpyxl
import pytest
from stdnum.cn import ric

from conftest import database_text, drop, query, specimen
from gateway.intake.staging import Sniffer
from gateway.masking import mask_sheet_name, mask_untrusted, scrub_message
from test_adapter_school import HEADER as SCHOOL_HEADER
from test_adapter_school import xlsx_bytes
from test_bad_input import csv_bytes, folder, read_report, receipt_of, rows_for


def _run(gateway, settings, department: str, name: str, data: bytes):
    drop(settings, department, name, data)
    [outcome] = gateway.run_once()
    return outcome


def _refused(gateway, settings, name: str, code: str, department: str = "hospital", data: bytes | None = None) -> list[str]:
    """The file was refused whole: in rejected/ as it came, a signed receipt saying so, a
    report of one row with the code. Returns that row."""
    archived = folder(settings, "rejected", department) / name
    assert data is None or archived.read_bytes() == data
    [row] = read_report(folder(settings, "rejected", department) / f"{name}.errors.csv")
    assert row[6] == code
    receipt = receipt_of(gateway, settings, name, department)
    assert receipt["status"] == "rejected" and receipt["counts"]["accepted"] == 0
    return row


def _id(born: str, serial: str = "002") -> str:
    body = "440781" + born + serial
    return body + ric.calc_check_digit(body + "0")


def _with(row: str, index: int, value: str) -> str:
    cells = row.split(",")
    cells[index] = value
    return ",".join(cells)


def _stored_names(settings) -> list[str]:
    return [json.loads(payload)["child"]["name"] for (payload,) in query(settings, "SELECT payload FROM record ORDER BY leaf_index")]


# -- rows that vanish ---------------------------------------------------------------


def test_an_unclosed_quote_in_row_3_says_which_rows_it_swallowed(gateway, settings):
    rows = rows_for("7101") + rows_for("7102")  # rows 2-7 of the file
    rows[1] = _with(rows[1], 14, '"广东省台山市')  # row 3: the address opens a quote and never closes it
    outcome = _run(gateway, settings, "hospital", "quote.csv", csv_bytes(rows))
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 1, 1)
    [row] = read_report(folder(settings, "outbox") / "quote.csv.errors.csv")
    assert (row[0], row[1], row[6]) == ("3", "家庭住址", "quote_spans_lines")
    assert "其后 4 行(文件第 4–7 行)被并入同一格" in row[4]
    assert "the 4 line(s) after it (lines 4-7 of the file)" in row[5]
    assert row[3] == ""  # the swallowed text is not shown
    receipt = receipt_of(gateway, settings, "quote.csv")
    assert receipt["counts"]["rows"] == 2 and receipt["counts"]["rejected"] == 1


def test_a_complete_last_row_without_its_line_end_is_not_taken(gateway, settings):
    rows = rows_for("7103")
    data = csv_bytes(rows)[:-2]  # the last row is whole and would validate, but has no line end
    outcome = _run(gateway, settings, "hospital", "no_end.csv", data)
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 2, 1)
    [row] = read_report(folder(settings, "outbox") / "no_end.csv.errors.csv")
    assert (row[0], row[6]) == ("4", "line_end_missing")
    assert row[4].startswith("文件最后一行(第 4 行)没有换行符")


def test_a_line_over_the_limit_rejects_its_row_without_being_held(gateway, settings):
    rows = rows_for("7104")
    rows[1] = rows[1] + "," * (3 * 1024 * 1024)  # 3 M cells of nothing on one line
    outcome = _run(gateway, settings, "hospital", "long_line.csv", csv_bytes(rows))
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 2, 1)
    [row] = read_report(folder(settings, "outbox") / "long_line.csv.errors.csv")
    assert (row[0], row[6]) == ("3", "line_too_long")
    assert "第 3 行超过 1048576 个字符" in row[4]


# -- text that changes --------------------------------------------------------------


def test_utf8_pasted_into_a_gb18030_file_is_refused_not_stored_as_mojibake(gateway, settings):
    rows = rows_for("7105")
    head = csv_bytes(rows[:1])
    pasted = _with(rows[1], 1, "\x00").encode("gb18030").replace(b"\x00", "陈明".encode("utf-8"))
    data = head + pasted + b"\r\n" + rows[2].encode("gb18030") + b"\r\n"
    assert "闄堟槑" in data.decode("gb18030")  # strict GB18030 reads it, as mojibake
    _run(gateway, settings, "hospital", "pasted.csv", data)
    row = _refused(gateway, settings, "pasted.csv", "encoding", data=data)
    assert "mixed encodings: line 3 holds UTF-8 text" in row[5]
    assert "闄堟槑" not in database_text(settings)


@pytest.mark.backend_independent
def test_the_sniffer_finds_utf8_runs_across_chunk_boundaries_and_not_in_gb18030_names():
    line = "出生,陈小明,男\r\n".encode("gb18030")
    mixed = line + "陈明".encode("utf-8") + ",男\r\n".encode("gb18030") + line
    for size in (1, 5, 7, 1 << 20):
        sniffer = Sniffer()
        for start in range(0, len(mixed), size):
            sniffer.feed(mixed[start:start + size])
        assert sniffer.result().encoding is None and sniffer.utf8_line == 2
    chance = random.Random(14)
    for _ in range(20_000):  # GB2312 names of 2-4 characters, never taken for UTF-8
        name = bytes(b for _ in range(chance.randint(2, 4)) for b in (chance.randint(0xB0, 0xF7), chance.randint(0xA1, 0xFE)))
        sniffer = Sniffer()
        sniffer.feed(b"," + name + b",\r\n")
        assert not sniffer.utf8_line, name


def test_an_xml_declared_gb18030_but_written_in_utf8_is_refused(gateway, settings):
    text = specimen("civil_affairs_202610.xml").decode("gb18030")
    assert 'encoding="GB18030"' in text
    data = text.encode("utf-8")
    _run(gateway, settings, "civil-affairs", "civil_affairs_202610.xml", data)
    row = _refused(gateway, settings, "civil_affairs_202610.xml", "xml_encoding", "civil-affairs", data)
    assert "declares encoding 'GB18030' but is written in UTF-8" in row[5]
    assert row[4].startswith("XML 声明的编码")


def test_names_and_codes_get_their_one_right_form_and_invisible_text_is_refused(gateway, settings):
    rows = rows_for("7106") + rows_for("7107")
    rows[0] = _with(rows[0], 1, b"\xfe\x51".decode("gb18030") + "小明")  # GB18030 FE51, decoded as U+E816
    rows[1] = _with(_with(rows[1], 15, "４４０７８１"), 9, "".join(chr(ord(c) + 0xFEE0) for c in rows[1].split(",")[9]))
    rows[2] = _with(rows[2], 1, "李\u200b安")  # zero-width space
    rows[3] = _with(rows[3], 1, "王\u202e一")  # right-to-left override
    rows[4] = _with(rows[4], 1, "赵\u2066二\u2069")  # an isolate
    rows[5] = _with(rows[5], 1, "孙\ue000丽")  # a private-use character no standard names
    outcome = _run(gateway, settings, "hospital", "forms.csv", csv_bytes(rows))
    assert (outcome.accepted, outcome.rejected) == (2, 4)
    stored = [json.loads(p) for (p,) in query(settings, "SELECT payload FROM record ORDER BY leaf_index")]
    assert stored[0]["child"]["name"] == "\U00020087小明"  # 𠂇, not U+E816
    assert stored[1]["registered_division_code"] == "440781"
    assert stored[1]["mother"]["id_number"].isascii() and len(stored[1]["mother"]["id_number"]) == 18
    report = read_report(folder(settings, "outbox") / "forms.csv.errors.csv")
    assert [(r[0], r[1], r[6]) for r in report] == [
        ("4", "新生儿姓名", "name_invisible"), ("5", "新生儿姓名", "name_invisible"),
        ("6", "新生儿姓名", "name_invisible"), ("7", "新生儿姓名", "name_private_use"),
    ]
    assert report[0][4].startswith("姓名中含有不可见的控制字符") and report[3][4].startswith("姓名中含有私用区字符")
    assert all(len(r[3]) <= 3 for r in report)  # masked as names: the first character and **


def test_a_mother_aged_9_is_warned_about_and_one_born_after_her_child_refused(gateway, settings):
    rows = rows_for("7108")
    rows[0] = _with(rows[0], 9, _id("20170501"))  # 9 at the birth on 2026-10-03
    rows[1] = _with(_with(rows[1], 3, "2026-10-05"), 9, _id("20261008"))  # born three days after her child
    outcome = _run(gateway, settings, "hospital", "mothers.csv", csv_bytes(rows))
    assert (outcome.accepted, outcome.rejected) == (2, 1)
    warned = query(settings, "SELECT code, row_number, column_name, reason_zh FROM rowerror WHERE level = 'warning' ORDER BY id")
    [(row_number, column, zh)] = [(r, c, z) for code, r, c, z in warned if code == "mother_age_unlikely"]
    assert (row_number, column) == (2, "母亲公民身份号码")
    assert zh.startswith("生育时母亲未满14周岁")
    assert not [w for w in warned if w[1] == 3]  # the refused row is not also warned about
    [row] = read_report(folder(settings, "outbox") / "mothers.csv.errors.csv")
    assert (row[0], row[1], row[6]) == ("3", "母亲公民身份号码", "mother_born_after_child")
    assert row[4].startswith("母亲的出生日期")


# -- personal data in messages ------------------------------------------------------


def test_a_name_in_the_wrong_field_never_reaches_the_report_or_the_receipt(gateway, settings):
    rows = rows_for("7109")
    rows[0] = _with(rows[0], 5, "陈小明")  # the name typed into 出生体重 (a number)
    cells = rows[1].split(",")
    rows[1] = ",".join([cells[0], "", *cells[1:-1]])  # one stray cell: the name lands in 性别
    outcome = _run(gateway, settings, "hospital", "shifted.csv", csv_bytes(rows))
    assert outcome.rejected == 2
    report = (folder(settings, "outbox") / "shifted.csv.errors.csv").read_text(encoding="utf-8-sig")
    receipt = (folder(settings, "outbox") / "shifted.csv.receipt.json").read_text(encoding="utf-8")
    for text in (report, receipt, database_text(settings)):
        assert "陈小明" not in text and "黄𠀾然" not in text
    values = {(r[0], r[1]): r[3] for r in read_report(folder(settings, "outbox") / "shifted.csv.errors.csv")}
    assert values[("2", "出生体重(克)")] == "陈**"
    assert values[("3", "性别")] == "黄**"


@pytest.mark.backend_independent
def test_library_error_text_loses_what_it_quoted_from_the_file():
    assert scrub_message("invalid literal for int() with base 10: '陈小明'") == "invalid literal for int() with base 10: '…'"
    assert scrub_message('Value error, bad "黄敏" 440781199203154325') == "Value error, bad '…' 440781***********5"
    assert scrub_message("sheet 陈小明 is missing") == "sheet … is missing"
    assert mask_untrusted("2026-13-45") == "2026-13-45" and mask_untrusted("陈小明") == "陈**"
    assert mask_untrusted("初中 5", ("初中",)) == "初中 5" and mask_untrusted("ZhangSan") == "Z**"
    assert mask_sheet_name("Sheet1") == "Sheet1" and mask_sheet_name("陈小明") == "陈**"


def test_a_sheet_named_after_a_child_is_masked_in_the_report_and_the_receipt(gateway, settings):
    data = xlsx_bytes([], header=SCHOOL_HEADER, sheet="陈小明")
    _run(gateway, settings, "school", "school_enrolments_202609.xlsx", data)
    _refused(gateway, settings, "school_enrolments_202609.xlsx", "sheet_missing", "school", data)
    report = (folder(settings, "rejected", "school") / "school_enrolments_202609.xlsx.errors.csv").read_text(encoding="utf-8-sig")
    receipt = (folder(settings, "outbox", "school") / "school_enrolments_202609.xlsx.receipt.json").read_text(encoding="utf-8")
    assert "陈**" in report
    for text in (report, receipt, database_text(settings)):
        assert "陈小明" not in text


# -- bounded memory -----------------------------------------------------------------


def _workbook_with_strings(megabytes: int) -> bytes:
    """A real workbook whose shared-strings table is `megabytes` MB of varied text (it
    compresses about 3:1, far under the ratio limit)."""
    base = io.BytesIO()
    book = openpyxl.Workbook()
    book.active.title = "新生名册"
    book.active.append(SCHOOL_HEADER)
    book.save(base)
    chance = random.Random(14)
    strings = []
    size = 0
    while size < megabytes * 1024 * 1024:
        text = "".join(chr(0x4E00 + chance.randint(0, 255)) for _ in range(64))
        strings.append(f"<si><t>{text}</t></si>")
        size += len(strings[-1].encode("utf-8"))
    table = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" '
        f'uniqueCount="{len(strings)}">' + "".join(strings) + "</sst>"
    ).encode("utf-8")
    out = io.BytesIO()
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            if entry.filename != "xl/sharedStrings.xml":
                target.writestr(entry, source.read(entry))
        target.writestr("xl/sharedStrings.xml", table)
    return out.getvalue()


def test_a_workbook_whose_shared_strings_expand_past_the_limit_is_refused_unread(gateway, settings):
    data = _workbook_with_strings(17)  # the default limit is 16 MB
    assert len(data) < 8 * 1024 * 1024  # a small file that would take many times its size in memory
    _run(gateway, settings, "school", "school_enrolments_202609.xlsx", data)
    row = _refused(gateway, settings, "school_enrolments_202609.xlsx", "xlsx_unsafe", "school", data)
    assert "shared-strings table expands to 17 MB, more than 16 MB (xlsx_max_shared_strings_mb)" in row[5]


@pytest.mark.backend_independent
def test_an_adapter_that_fails_on_a_name_rejects_that_row_without_showing_the_name(tmp_path):
    """A plugin's contract validator calls int() on a name cell: the library's text,
    which quotes the name, reaches the report without it. (An exception escaping
    normalize itself fails the file, which is retried: tests/test_parallel_ingest.py.)"""
    from collections.abc import Iterator

    from pydantic import field_validator

    from contracts import Contract
    from gateway.adapter import Adapter, RawRow, SourceFile
    from gateway.exchange.batches import ISSUE_KEYS, RowPreparer

    class Weighed(Contract):
        contract_name = "Weighed"
        business_key_fields = ("key",)
        key: str
        grams: int

        @field_validator("grams", mode="before")
        @classmethod
        def _grams(cls, value):  # type: ignore[no-untyped-def]
            return int(value)  # ValueError: invalid literal for int() with base 10: '陈小明'

    class Plugin(Adapter):
        name, department, contracts = "weighed", "hospital", (Weighed,)

        def parse(self, source: SourceFile) -> Iterator[RawRow]:
            yield RawRow(2, {"key": "a", "grams": "陈小明"})
            yield RawRow(3, {"key": "b", "grams": "3250"})

        def normalize(self, row: RawRow) -> Weighed:
            return Weighed.model_validate({"key": row.fields["key"], "grams": row.fields["grams"]})

    path = tmp_path / "w.csv"
    path.write_bytes(b"x")
    source = SourceFile(path, "w.csv", "hospital", "0" * 64, 1, "utf-8")
    [batch] = RowPreparer(Plugin(), 1).batches(source, 100)
    assert (batch.rows, len(batch.records), batch.rejected) == (2, 1, 1)
    issues = [dict(zip(ISSUE_KEYS, issue)) for issue in batch.issues]
    text = repr(issues)
    assert "陈小明" not in text
    assert issues[0]["value_masked"] == "陈**" and "invalid literal for int() with base 10: '…'" in issues[0]["reason_en"]
