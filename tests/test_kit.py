"""The conformance kit's own parts (gateway/testing.py): damage per format, the large
files it makes from a sample, and `run_pass`."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from conftest import specimen
from gateway.errors import FileRejected
from gateway.readers import iter_elements, json_records
from gateway.testing import damage_cases, damaged, repeat_json_array, repeat_xml_children, run_pass


def test_damage_cases_fit_the_format():
    assert damage_cases(".csv") == ("random_bytes", "truncated", "empty", "wrong_encoding", "nul_bytes")
    xlsx = damage_cases(".xlsx")
    assert "wrong_encoding" not in xlsx and {"truncated_zip", "zip_bomb", "doctype_in_sheet"} <= set(xlsx)
    assert "doctype_entity" in damage_cases(".xml") and "truncated_json" in damage_cases(".JSON")


def test_damaged_workbooks_are_what_they_say():
    original = (Path(__file__).parent / "data" / "school_enrolments_202609.xlsx").read_bytes()
    bomb = zipfile.ZipFile(io.BytesIO(damaged(original, "zip_bomb")))
    [pad] = [i for i in bomb.infolist() if i.filename == "xl/media/image1.bin"]
    assert pad.file_size / pad.compress_size > 100
    sheet = zipfile.ZipFile(io.BytesIO(damaged(original, "doctype_in_sheet"))).read("xl/worksheets/sheet1.xml")
    assert b"<!DOCTYPE worksheet" in sheet[:200]
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(damaged(original, "truncated_zip")))


def test_large_files_made_from_json_and_xml_samples(tmp_path):
    page = tmp_path / "page.json"
    page.write_bytes(b"".join(repeat_json_array(specimen("housing_occupancy_page1.json"), 50)))
    assert sum(1 for _ in json_records(page, "/items")) == 50
    assert json.loads(page.read_text(encoding="utf-8"))["nextCursor"] == json.loads(specimen("housing_occupancy_page1.json"))["nextCursor"]
    document = b"".join(repeat_xml_children(specimen("civil_affairs_202610.xml"), 40))
    assert sum(1 for _ in iter_elements(io.BytesIO(document))) == 40
    with pytest.raises(FileRejected):
        list(iter_elements(io.BytesIO(damaged(specimen("civil_affairs_202610.xml"), "doctype_entity"))))


def test_run_pass_reports_each_file_with_its_receipt_and_report(settings):
    result = run_pass(settings.home, "hospital", {
        "births.csv": specimen("hospital_births_202610.csv"),
        "garbage.csv": b"\x00\x01 not a csv",
    })
    births, garbage = result.files["births.csv"], result.files["garbage.csv"]
    assert (births.status, births.accepted, births.rejected) == ("processed", 3, 3)
    assert garbage.status == "rejected" and garbage.reason
    assert births.exchange_id != garbage.exchange_id
    assert result.receipt_for("births.csv")["counts"]["rejected"] == 3
    assert sorted(row.row for row in result.report_for("births.csv")) == ["5", "6", "7"]
    assert all("440781" not in row.value or "*" in row.value for row in result.report_for("births.csv"))
    # Dropped again: a duplicate exchange, nothing stored twice.
    again = run_pass(settings.home, "hospital", {"again.csv": specimen("hospital_births_202610.csv")})
    assert again.files["again.csv"].status == "duplicate"


def test_run_pass_registers_an_adapter_not_installed_for_a_department_not_listed(home, monkeypatch):
    import importlib
    import sys

    from gateway.devkit.scaffold import scaffold

    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    root = scaffold("water-board", home.parent, format="csv")
    monkeypatch.syspath_prepend(str(root))
    adapter = importlib.import_module("gateway_water_board.adapter")
    try:
        sample = (root / "tests" / "samples" / "water_board_sample.csv").read_bytes()
        result = run_pass(home, "water-board", {"m.csv": sample}, adapters=[adapter.WaterBoardAdapter])
        assert result.files["m.csv"].accepted == 2
        [row] = result.report_for("m.csv")
        assert (row.row, row.code) == ("4", "id_check_char")
        assert (home / "mailbox" / "water-board" / "outbox" / "m.csv.receipt.json").exists()
    finally:
        for name in [n for n in sys.modules if n.startswith("gateway_water_board")]:
            del sys.modules[name]
