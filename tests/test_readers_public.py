"""The public readers plugin authors build on (gateway.readers, docs/plugins.md): XLSX
with title rows, dates and sheet choice; streaming JSON records at a pointer."""

from __future__ import annotations

import datetime as dt
import io
import json
import tracemalloc
import zipfile

import openpyxl
import pytest

from gateway.errors import FileRejected
from gateway.readers import JsonRecord, XlsxLimits, json_records, xlsx_rows

pytestmark = pytest.mark.backend_independent  # readers only: no gateway database


def _workbook(path, sheets: dict[str, list[list[object]]], date_format: tuple[str, int, int] | None = None):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    if date_format:
        name, row, column = date_format
        book[name].cell(row=row, column=column).number_format = "yyyy-mm-dd"
    book.save(path)
    return path


def test_xlsx_rows_finds_the_header_below_title_rows_and_gives_text(tmp_path):
    path = _workbook(tmp_path / "w.xlsx", {
        "说明": [["ignored"]],
        "名册": [
            ["2026年10月 用水户名册"],
            [],
            ["编号", "姓名", "日期", "开户日", "水量"],
            ["A-1", "陈丽", "2026年10月3日", 45933, 12.5],
            [None, None, None, None, None],
            ["A-2", "李强", dt.datetime(2026, 10, 5), "45934", 3.0],
        ],
    })
    rows = list(xlsx_rows(path, sheet="名册", header=["编号", "日期"], date_columns=["开户日"]))
    assert [r.number for r in rows] == [4, 6]  # the sheet's own row numbers, the blank row skipped
    assert rows[0].fields == {"编号": "A-1", "姓名": "陈丽", "日期": "2026年10月3日", "开户日": "2025-10-03", "水量": "12.5"}
    assert rows[1].fields["日期"] == "2026-10-05"  # a date cell is a date in any column
    assert rows[1].fields["开户日"] == "45934"  # text that looks like a number stays text
    assert rows[1].fields["水量"] == "3"
    # By position, and without `header`: the first row of more than one cell is the header.
    by_index = list(xlsx_rows(path, sheet=1))
    assert [r.number for r in by_index] == [4, 6] and by_index[0].fields["姓名"] == "陈丽"


def test_xlsx_rows_typed_cells_keep_numbers_and_a_formatted_date(tmp_path):
    path = _workbook(tmp_path / "t.xlsx", {"S": [["号码", "日"], [440781199203154325.0, 45933]]}, ("S", 2, 2))
    [row] = list(xlsx_rows(path, cells="typed"))
    assert isinstance(row.fields["号码"], float)
    assert row.fields["日"] == dt.datetime(2025, 10, 3)
    [text] = list(xlsx_rows(path))
    assert text.fields["号码"] == "4.407811992031543e+17"  # lost digits shown, never made up
    assert text.fields["日"] == "2025-10-03"


def test_xlsx_rows_refuses_a_missing_sheet_header_or_long_row(tmp_path):
    path = _workbook(tmp_path / "m.xlsx", {"S": [["编号", "姓名"], ["1", "陈", "extra"], ["2", "李"]]})
    with pytest.raises(FileRejected) as missing:
        list(xlsx_rows(path, sheet="名册"))
    assert missing.value.code == "sheet_missing"
    with pytest.raises(FileRejected) as index:
        list(xlsx_rows(path, sheet=3))
    assert index.value.code == "sheet_missing"
    with pytest.raises(FileRejected) as header:
        list(xlsx_rows(path, header=["编号", "日期"]))
    assert header.value.code == "header_missing" and "日期" in header.value.detail and header.value.row == 1
    rows = list(xlsx_rows(path))
    assert rows[0].problem is not None and rows[0].problem[0] == "row_too_long"
    assert rows[1].fields == {"编号": "2", "姓名": "李"}


def test_xlsx_rows_refuses_a_doctype_a_bomb_and_a_non_zip(tmp_path):
    good = _workbook(tmp_path / "g.xlsx", {"S": [["a", "b"], ["1", "2"]]})
    doctype = tmp_path / "d.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(doctype, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = b'<!DOCTYPE x [<!ENTITY e "e">]>' + data.split(b"?>", 1)[-1]
            target.writestr(item, data)
    with pytest.raises(FileRejected) as unsafe:
        list(xlsx_rows(doctype))
    assert unsafe.value.code == "xlsx_unsafe"
    bomb = tmp_path / "b.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, source.read(item))
        target.writestr("xl/media/padding.bin", b"\0" * (3 << 20))
    with pytest.raises(FileRejected) as ratio:
        list(xlsx_rows(bomb))
    assert ratio.value.code == "xlsx_unsafe" and "compressed" in ratio.value.detail
    assert len(list(xlsx_rows(bomb, limits=XlsxLimits(max_ratio=100_000)))) == 1
    (tmp_path / "n.xlsx").write_bytes(b"not a zip")
    with pytest.raises(FileRejected) as corrupt:
        list(xlsx_rows(tmp_path / "n.xlsx"))
    assert corrupt.value.code == "xlsx_corrupt"


def test_json_records_at_a_pointer_and_at_the_top(tmp_path):
    page = tmp_path / "p.json"
    page.write_text(json.dumps({"meta": {"n": [1, 2]}, "data": {"total": 2, "records": [{"a": 1}, {"a": 2}], "x": "y"}}), encoding="utf-8")
    assert list(json_records(page, "/data/records")) == [JsonRecord(1, {"a": 1}), JsonRecord(2, {"a": 2})]
    top = tmp_path / "t.json"
    top.write_bytes(b'\xef\xbb\xbf[{"a": 1, "a": 2}, 3]')
    assert list(json_records(top)) == [JsonRecord(1, {"a": 2}, ("a",)), JsonRecord(2, 3)]
    assert list(json_records(io.StringIO('{"items": []}'), "/items")) == []


@pytest.mark.parametrize(("text", "code"), [
    ('{"data": {"records": [{"a": 1}, {"a": 2', "json_malformed"),
    ('{"data": {"other": []}}', "json_structure"),
    ('{"data": []}', "json_structure"),
    ('{"data": {"records": {}}}', "json_structure"),
    ('{"data": {"records": [NaN]}}', "json_malformed"),
    ('{"data": {"records": [1]}} extra', "json_malformed"),
])
def test_json_records_refuse_what_is_not_the_document(text, code):
    with pytest.raises(FileRejected) as refused:
        list(json_records(io.StringIO(text), "/data/records"))
    assert refused.value.code == code


def test_json_records_stream_a_big_file_and_bound_a_record(tmp_path):
    big = tmp_path / "big.json"
    with open(big, "w", encoding="utf-8") as out:
        out.write('{"items": [')
        out.write(",".join(json.dumps({"n": n, "name": "陈丽" * 20}) for n in range(200_000)))
        out.write("]}")
    tracemalloc.start()
    try:
        count = sum(1 for _ in json_records(big, "/items"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert peak < 8 * 1024 * 1024, peak
    with pytest.raises(FileRejected) as large:
        list(json_records(io.StringIO('[{"a": "' + "x" * 5000 + '"}]'), max_item_chars=1000))
    assert large.value.code == "json_too_large"
