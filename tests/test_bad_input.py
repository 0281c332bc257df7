"""Bad input, file by file (the issue's "Bad input" list): wrong encodings, a truncated
last line, an empty file, a header missing a column, a binary file named .csv, a 20 MB
field, NUL bytes, a symlink pointing outside the inbox, names with spaces and Chinese.

Each case ends with the file in `rejected/` or `processed/`, a report the clerk can read,
the gateway still running (a good file in the same pass and in the next is processed),
nothing half-stored, and the receipt ledger without gaps. Real files, real GnuPG (every
receipt's signature is verified), real SQLite.
"""

from __future__ import annotations

import builtins
import codecs
import csv
import hashlib
import json
import os
import re
import time
from pathlib import Path

import conftest
import pytest

from conftest import drop, specimen
from gateway.exchange.lifecycle import FILE_REASONS, Gateway
from gateway.receipts.check import verify_receipt

SPECIMEN = "hospital_births_202610.csv"
TEXT = specimen(SPECIMEN).decode("gb18030")
LINES = TEXT.splitlines()
HEADER = LINES[0]
VALID_ROWS = LINES[1:4]  # the specimen's three good births (certificates ...0001 to ...0003)
HAN = re.compile(r"[\u4e00-\u9fff]")


# -- helpers ------------------------------------------------------------------------


def rows_for(tag: str) -> list[str]:
    """The specimen's three valid rows under certificate numbers of their own."""
    assert len(tag) == 4
    return [row.replace("Q44078126", f"Q4407{tag}", 1) for row in VALID_ROWS]


def csv_bytes(rows: list[str], *, header: str = HEADER, encoding: str = "gb18030", end: str = "\r\n") -> bytes:
    return (end.join([header, *rows]) + end).encode(encoding)


def good_csv(tag: str) -> bytes:
    return csv_bytes(rows_for(tag))


def query(settings, sql: str, *args) -> list[tuple]:
    return conftest.query(settings, sql, *args)


def folder(settings, name: str, department: str = "hospital") -> Path:
    return settings.mailbox_root / department / name


def listing(settings, name: str, department: str = "hospital") -> list[str]:
    return sorted(os.listdir(folder(settings, name, department)))


def assert_ledger_gapless(settings) -> None:
    """Receipts 1..n, each linking to the one before; one receipt per finished exchange."""
    chain = query(settings, "SELECT sequence, sha256, previous_sha256, exchange_id, body FROM receipt ORDER BY sequence")
    assert [row[0] for row in chain] == list(range(1, len(chain) + 1))
    previous = "0" * 64
    for _, sha, prev, _, body in chain:
        assert prev == previous
        assert hashlib.sha256(body.encode("utf-8")).hexdigest() == sha
        assert json.loads(body)["ledger"]["previous_receipt_sha256"] == prev
        previous = sha
    finished = query(settings, "SELECT id FROM exchange WHERE status != 'received' ORDER BY id")
    assert sorted(row[3] for row in chain) == [row[0] for row in finished]


def assert_nothing_half_stored(settings) -> None:
    # Every record belongs to a processed exchange; rejected ones hold only their one file-level error.
    assert query(
        settings, "SELECT count(*) FROM record r JOIN exchange e ON e.id = r.exchange_id WHERE e.status != 'processed'"
    ) == [(0,)]
    for exchange_id, accepted in query(settings, "SELECT id, accepted FROM exchange WHERE status = 'processed'"):
        assert query(settings, "SELECT count(*) FROM record WHERE exchange_id = ?", exchange_id) == [(accepted,)]
    for (exchange_id,) in query(settings, "SELECT id FROM exchange WHERE status = 'rejected'"):
        assert query(settings, "SELECT field FROM rowerror WHERE exchange_id = ?", exchange_id) == [("(file)",)]
    # No exchange is left half way, and nothing is left behind in staging.
    assert query(settings, "SELECT count(*) FROM exchange WHERE status = 'received' OR archived_path IS NULL") == [(0,)]
    assert os.listdir(settings.staging_dir) == []


def read_report(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8), f"{path.name} must be UTF-8 with BOM"
    rows = list(csv.reader(data.decode("utf-8-sig").splitlines()))
    assert rows[0][0].startswith("行号")
    return rows[1:]


def receipt_of(gateway: Gateway, settings, name: str, department: str = "hospital") -> dict:
    path = folder(settings, "outbox", department) / f"{name}.receipt.json"
    verdict = verify_receipt(path, settings.keys_dir, gateway.engine)
    assert verdict.genuine, [(c.name, c.detail) for c in verdict.checks if not c.ok]
    return json.loads(path.read_bytes())


def assert_rejected(gateway: Gateway, settings, name: str, code: str, *, department: str = "hospital", data: bytes | None = None) -> list[str]:
    """The file lies in rejected/ with a bilingual report beside it and in the outbox, a
    signed receipt says "rejected", and nothing of it is stored. Returns the report row."""
    assert name not in listing(settings, "inbox", department)
    archived = folder(settings, "rejected", department) / name
    assert os.path.lexists(archived)
    if data is not None:
        assert archived.read_bytes() == data  # moved as it was, never rewritten
    report = folder(settings, "rejected", department) / f"{name}.errors.csv"
    [row] = read_report(report)
    zh, en = FILE_REASONS[code]
    assert row[6] == code
    assert row[4] == zh and HAN.search(row[4])
    assert row[5].startswith(en)
    assert (folder(settings, "outbox", department) / f"{name}.errors.csv").read_bytes() == report.read_bytes()
    receipt = receipt_of(gateway, settings, name, department)
    assert receipt["status"] == "rejected"
    assert receipt["counts"] == {"rows": 0, "accepted": 0, "rejected": 0, "duplicate": 0, "corrected": 0}
    assert receipt["merkle"]["size"] == 0
    assert receipt["rejection_report_sha256"] == hashlib.sha256(report.read_bytes()).hexdigest()
    [(exchange_id, status, reason_code, archived_path)] = query(
        settings,
        "SELECT id, status, reason_code, archived_path FROM exchange WHERE department = ? AND file_name = ?",
        department, name,
    )
    assert (status, reason_code, archived_path) == ("rejected", code, f"{department}/rejected/{name}")
    assert receipt["exchange_id"] == exchange_id
    assert query(settings, "SELECT count(*) FROM record WHERE exchange_id = ?", exchange_id) == [(0,)]
    return row


def assert_good_processed(gateway: Gateway, settings, name: str, tag: str) -> None:
    assert name in listing(settings, "processed")
    assert name not in listing(settings, "inbox")
    receipt = receipt_of(gateway, settings, name)
    assert receipt["status"] == "processed" and receipt["counts"]["accepted"] == 3
    keys = query(
        settings,
        "SELECT substr(r.business_key, 10) FROM record r JOIN exchange e ON e.id = r.exchange_id WHERE e.file_name = ? ORDER BY r.leaf_index",
        name,
    )
    assert [k for (k,) in keys] == [f"Q4407{tag}000{n}" for n in (1, 2, 3)]


def reject_then_keep_running(gateway: Gateway, settings, name: str, data: bytes, code: str) -> list[str]:
    """Drop the bad file with a good one sorted after it (same pass), run, then drop
    another good file and run again (next pass): both good files are processed."""
    drop(settings, "hospital", name, data)
    drop(settings, "hospital", "zz_same_pass.csv", good_csv("8801"))
    outcomes = gateway.run_once()
    assert [(o.file_name, o.status) for o in outcomes] == [(name, "rejected"), ("zz_same_pass.csv", "processed")]
    assert outcomes[0].reason and outcomes[0].reason.startswith(FILE_REASONS[code][1])
    row = assert_rejected(gateway, settings, name, code, data=data)
    assert_good_processed(gateway, settings, "zz_same_pass.csv", "8801")

    drop(settings, "hospital", "next_pass.csv", good_csv("8802"))
    [outcome] = gateway.run_once()
    assert (outcome.file_name, outcome.status, outcome.accepted) == ("next_pass.csv", "processed", 3)
    assert_good_processed(gateway, settings, "next_pass.csv", "8802")
    assert listing(settings, "inbox") == []
    assert query(settings, "SELECT count(*) FROM record") == [(6,)]
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)
    return row


# -- whole-file rejections ----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        # A western (Windows-1252 / Latin-1) export: é, ü and € are neither UTF-8 nor GB18030.
        pytest.param(b"Name,City,Amount\r\nJos\xe9,Z\xfcrich,\x80 12\r\nA\xefda,K\xf6ln,\xff\r\n", id="cp1252"),
        # The specimen in GB18030 with one cell typed in Latin-1: 0x80 and 0xFF are no GB18030 lead bytes.
        pytest.param(
            csv_bytes(rows_for("7001")[:2]) + "Q440770010009,Ren\u00e9e \u20ac".encode("cp1252") + b"\xff\r\n",
            id="gb18030-with-latin1-row",
        ),
    ],
)
def test_bytes_neither_utf8_nor_gb18030_are_rejected_for_encoding(gateway, settings, data):
    for codec in ("utf-8", "gb18030"):
        with pytest.raises(UnicodeDecodeError):
            data.decode(codec)
    row = reject_then_keep_running(gateway, settings, "export_1252.csv", data, "encoding")
    assert "not UTF-8" in row[5] and "not GB18030" in row[5]


@pytest.mark.parametrize("bom, codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_with_bom_is_rejected_for_encoding(gateway, settings, bom, codec):
    data = bom + (TEXT.replace("\r\n", "\n").replace("\n", "\r\n")).encode(codec)
    row = reject_then_keep_running(gateway, settings, "births_utf16.csv", data, "encoding")
    assert "UTF-16" in row[5]  # the clerk is told what to do: save it as UTF-8 or GB18030


def test_empty_file_is_rejected(gateway, settings):
    reject_then_keep_running(gateway, settings, "empty.csv", b"", "empty")


def test_header_missing_a_column_is_rejected_naming_it(gateway, settings):
    header = HEADER.split(",")
    drop_at = header.index("母亲公民身份号码")
    text_rows = [",".join(c for i, c in enumerate(row.split(",")) if i != drop_at) for row in rows_for("7002")]
    data = csv_bytes(text_rows, header=",".join(c for i, c in enumerate(header) if i != drop_at))
    row = reject_then_keep_running(gateway, settings, "no_mother_id.csv", data, "header_missing")
    assert row[0] == "1"  # the header row, as the spreadsheet numbers it
    assert "母亲公民身份号码" in row[5]


@pytest.mark.parametrize(("cell", "shown"), [("父亲姓名", "父亲姓名"), ("欧阳明月", "欧**")])
def test_header_duplicate_names_a_known_column_and_masks_any_other(gateway, settings, cell, shown):
    """A header cell is text from the file: named in the reason only when it is one of the
    format's columns (a clerk may have typed a child's name into row 1)."""
    data = csv_bytes([row + ",," for row in rows_for("7003")], header=HEADER + f",{cell},{cell}")
    row = reject_then_keep_running(gateway, settings, "twice.csv", data, "header_duplicate")
    assert f"column {shown} appears twice" in row[5]
    if cell != shown:
        assert cell not in "".join(row) and cell[1:] not in query(settings, "SELECT reason FROM exchange WHERE file_name = 'twice.csv'")[0][0]


def test_binary_file_named_csv_is_rejected(gateway, settings):
    # A PNG picture saved under a .csv name: NUL bytes from its first chunk on.
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 64
    reject_then_keep_running(gateway, settings, "photo.csv", data, "binary")


def test_nul_bytes_in_an_otherwise_good_csv_reject_the_file(gateway, settings):
    rows = rows_for("7003")
    rows[1] = rows[1].replace("黄敏", "黄\x00敏")
    data = csv_bytes(rows)
    reject_then_keep_running(gateway, settings, "births_nul.csv", data, "binary")


def test_symlink_to_a_file_outside_the_mailbox_is_never_followed(gateway, settings, monkeypatch):
    outside = settings.home / "outside" / "secret_births.csv"
    outside.parent.mkdir()
    content = good_csv("7004")
    outside.write_bytes(content)
    past = time.time() - 3600
    os.utime(outside, (past, past))
    before = os.stat(outside)
    link = folder(settings, "inbox") / "linked.csv"
    link.symlink_to(outside)

    # Record every path the gateway opens while it works: the target must never be among them.
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)):
            opened.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        opened.append(os.path.realpath(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    drop(settings, "hospital", "zz_same_pass.csv", good_csv("8801"))
    outcomes = gateway.run_once()
    monkeypatch.undo()

    assert [(o.file_name, o.status) for o in outcomes] == [("linked.csv", "rejected"), ("zz_same_pass.csv", "processed")]
    assert opened, "the spy saw nothing; it is not watching the gateway"
    assert str(outside.resolve()) not in opened
    # The link itself lies in rejected/, still a link; the target is untouched and in place.
    archived = folder(settings, "rejected") / "linked.csv"
    assert archived.is_symlink() and os.readlink(archived) == str(outside)
    assert outside.read_bytes() == content
    after = os.stat(outside)
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (before.st_mtime_ns, before.st_size, before.st_ino)
    assert_rejected(gateway, settings, "linked.csv", "symlink")
    # The exchange never hashed the target's bytes, and none of its records were stored.
    assert query(settings, "SELECT count(*) FROM exchange WHERE sha256 = ?", hashlib.sha256(content).hexdigest()) == [(0,)]
    assert query(settings, "SELECT count(*) FROM record WHERE substr(business_key, 10) LIKE 'Q44077004%'") == [(0,)]
    assert_good_processed(gateway, settings, "zz_same_pass.csv", "8801")

    drop(settings, "hospital", "next_pass.csv", good_csv("8802"))
    [outcome] = gateway.run_once()
    assert outcome.status == "processed"
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)


def test_dangling_symlink_is_rejected_too(gateway, settings):
    link = folder(settings, "inbox") / "dangling.csv"
    link.symlink_to(settings.home / "no-such-file.csv")
    [outcome] = gateway.run_once()
    assert outcome.status == "rejected"
    assert_rejected(gateway, settings, "dangling.csv", "symlink")
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)


# -- row-level problems: the file is processed, the row is in the report ------------


def test_truncated_last_line_is_a_row_error(gateway, settings):
    rows = rows_for("7005")
    cut = rows[2][: rows[2].index("李娜") + 1]  # the upload stopped in the middle of row 4, in 母亲姓名
    data = csv_bytes(rows[:2]) + cut.encode("gb18030")
    drop(settings, "hospital", "cut_short.csv", data)
    drop(settings, "hospital", "zz_same_pass.csv", good_csv("8801"))
    outcomes = gateway.run_once()
    assert [(o.file_name, o.status, o.accepted, o.rejected) for o in outcomes] == [
        ("cut_short.csv", "processed", 2, 1),
        ("zz_same_pass.csv", "processed", 3, 0),
    ]
    assert (folder(settings, "processed") / "cut_short.csv").read_bytes() == data
    [row] = read_report(folder(settings, "outbox") / "cut_short.csv.errors.csv")
    # the first missing column; never taken, even had it validated: it has no line end
    assert (row[0], row[1], row[6]) == ("4", "母亲公民身份号码", "line_end_missing")
    assert row[4].startswith("文件最后一行(第 4 行)没有换行符") and "row 4" in row[5]
    receipt = receipt_of(gateway, settings, "cut_short.csv")
    assert receipt["counts"] == {"rows": 3, "accepted": 2, "rejected": 1, "duplicate": 0, "corrected": 0}
    keys = query(settings, "SELECT substr(business_key, 10) FROM record WHERE substr(business_key, 10) LIKE 'Q44077005%' ORDER BY leaf_index")
    assert keys == [("Q440770050001",), ("Q440770050002",)]
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)


def test_truncated_inside_a_quoted_cell_is_a_row_error(gateway, settings):
    rows = rows_for("7006")
    cells = rows[2].split(",")
    cells[14] = '"' + cells[14]
    data = csv_bytes(rows[:2]) + ",".join(cells)[:-8].encode("gb18030")  # cut inside the open quote
    drop(settings, "hospital", "cut_in_quote.csv", data)
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 2, 1)
    [row] = read_report(folder(settings, "outbox") / "cut_in_quote.csv.errors.csv")
    assert (row[0], row[1], row[6]) == ("4", "户籍地行政区划代码", "line_end_missing")
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)


@pytest.mark.slow
def test_a_20_mb_field_rejects_its_row_and_the_others_are_stored(gateway, settings):
    rows = rows_for("7007")
    big = rows[1].split(",")
    big[14] = "广东省" + "台" * (20 * 1024 * 1024 // 2)  # one 20 MB address (GB18030: 2 bytes each)
    data = csv_bytes([rows[0], ",".join(big), rows[2]])
    assert len(data) > 20 * 1024 * 1024
    drop(settings, "hospital", "huge_field.csv", data)
    drop(settings, "hospital", "zz_same_pass.csv", good_csv("8801"))
    started = time.monotonic()
    outcomes = gateway.run_once()
    assert time.monotonic() - started < 60
    assert [(o.file_name, o.status, o.accepted, o.rejected) for o in outcomes] == [
        ("huge_field.csv", "processed", 2, 1),
        ("zz_same_pass.csv", "processed", 3, 0),
    ]
    [row] = read_report(folder(settings, "outbox") / "huge_field.csv.errors.csv")
    assert (row[0], row[6]) == ("3", "line_too_long")  # the 20 MB line is never held whole
    assert len(row[3]) < 100  # the report does not carry the 20 MB value
    keys = query(settings, "SELECT substr(business_key, 10) FROM record WHERE substr(business_key, 10) LIKE 'Q44077007%' ORDER BY leaf_index")
    assert keys == [("Q440770070001",), ("Q440770070003",)]
    assert query(settings, "SELECT max(length(payload)) FROM record") < [(10_000,)]
    assert max(len(v) for (v,) in query(settings, "SELECT value_masked FROM rowerror")) < 100
    assert (folder(settings, "processed") / "huge_field.csv").stat().st_size == len(data)
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)


# -- files that are fine --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["hospital births 2026 10.csv", "出生医学证明_2026年10月.csv", "台山 人民医院 十月.csv"],
)
def test_names_with_spaces_or_chinese_are_processed_normally(gateway, settings, name):
    data = good_csv("7008")
    drop(settings, "hospital", name, data)
    [outcome] = gateway.run_once()
    assert (outcome.file_name, outcome.status, outcome.accepted, outcome.rejected) == (name, "processed", 3, 0)
    assert (folder(settings, "processed") / name).read_bytes() == data
    assert listing(settings, "outbox") == [f"{name}.receipt.json", f"{name}.receipt.json.asc"]
    receipt = receipt_of(gateway, settings, name)
    assert receipt["file_name"] == name
    assert query(settings, "SELECT source_path, archived_path FROM exchange") == [
        (f"hospital/inbox/{name}", f"hospital/processed/{name}")
    ]
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)


@pytest.mark.parametrize("encoding, expected", [("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8"), ("gb18030", "gb18030")])
def test_utf8_with_and_without_bom_and_gb18030_are_processed(gateway, settings, encoding, expected):
    data = csv_bytes(rows_for("7009"), encoding=encoding)
    assert data.startswith(codecs.BOM_UTF8) == (encoding == "utf-8-sig")
    drop(settings, "hospital", "births.csv", data)
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 3, 0)
    assert query(settings, "SELECT encoding FROM exchange") == [(expected,)]
    [(payload,)] = query(settings, "SELECT payload FROM record WHERE substr(business_key, 10) = 'Q440770090002'")
    assert json.loads(payload)["mother"]["name"] == "黄敏"
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)


def test_header_only_is_an_exchange_with_nothing_accepted(gateway, settings):
    # Decision: a header without rows is a readable file that says "nothing this month";
    # it is processed, gets a receipt with zero rows, and needs no report.
    data = csv_bytes([])
    drop(settings, "hospital", "nothing_this_month.csv", data)
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted, outcome.rejected) == ("processed", 0, 0)
    assert listing(settings, "processed") == ["nothing_this_month.csv"]
    assert listing(settings, "outbox") == ["nothing_this_month.csv.receipt.json", "nothing_this_month.csv.receipt.json.asc"]
    receipt = receipt_of(gateway, settings, "nothing_this_month.csv")
    assert receipt["counts"] == {"rows": 0, "accepted": 0, "rejected": 0, "duplicate": 0, "corrected": 0}
    assert receipt["merkle"]["size"] == 0 and receipt["rejection_report_sha256"] is None
    assert query(settings, "SELECT count(*) FROM record") == [(0,)]
    assert_ledger_gapless(settings)
    assert_nothing_half_stored(settings)
