"""The issue's user story, end to end: the hospital specimen dropped into the inbox."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

from conftest import drop, query, run_gateway, specimen

SPECIMEN = "hospital_births_202610.csv"


def test_specimen_gives_three_births_and_three_row_errors(gateway, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted, outcome.rejected, outcome.duplicates) == ("processed", 3, 3, 0)

    hospital = settings.mailbox_root / "hospital"
    assert not list((hospital / "inbox").iterdir())
    assert (hospital / "processed" / SPECIMEN).read_bytes() == specimen(SPECIMEN)
    outbox = sorted(p.name for p in (hospital / "outbox").iterdir())
    assert outbox == [f"{SPECIMEN}.errors.csv", f"{SPECIMEN}.receipt.json", f"{SPECIMEN}.receipt.json.asc"]

    rows = query(settings, "SELECT business_key, payload FROM record ORDER BY leaf_index")
    assert [key for key, _ in rows] == ["hospital|Q440781260001", "hospital|Q440781260002", "hospital|Q440781260003"]
    # A name outside the Basic Multilingual Plane survives byte-exact.
    assert json.loads(rows[1][1])["child"]["name"] == "黄\U0002003e然"

    with open(hospital / "outbox" / f"{SPECIMEN}.errors.csv", encoding="utf-8-sig", newline="") as handle:
        report = list(csv.reader(handle))
    assert report[0][0].startswith("行号")
    by_row = {int(r[0]): r for r in report[1:]}
    assert set(by_row) == {5, 6, 7}
    assert by_row[5][1] == "母亲公民身份号码" and by_row[5][3] == "440781***********0" and by_row[5][6] == "id_check_char"
    assert by_row[6][1] == "出生日期" and by_row[6][6] == "date_impossible"
    assert by_row[7][1] == "新生儿姓名" and by_row[7][6] == "missing"
    assert "440781198802140660" not in (hospital / "outbox" / f"{SPECIMEN}.errors.csv").read_text(encoding="utf-8-sig")


def test_receipt_is_canonical_and_says_what_happened(gateway, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    body = (settings.mailbox_root / "hospital" / "outbox" / f"{SPECIMEN}.receipt.json").read_bytes()
    receipt = json.loads(body)
    assert body == json.dumps(receipt, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert receipt["counts"] == {"rows": 6, "accepted": 3, "rejected": 3, "duplicate": 0, "corrected": 0}
    assert receipt["merkle"]["size"] == 3 and len(receipt["merkle"]["root"]) == 64
    assert receipt["ledger"] == {"sequence": 1, "previous_receipt_sha256": "0" * 64}
    assert receipt["file_sha256"] == __import__("hashlib").sha256(specimen(SPECIMEN)).hexdigest()
    assert len(receipt["signing_key"]) == 40
    assert receipt["department"] == "hospital" and receipt["status"] == "processed"


def test_security_officer_verifies_and_a_flipped_byte_fails(gateway, settings, home):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    receipt = settings.mailbox_root / "hospital" / "outbox" / f"{SPECIMEN}.receipt.json"
    ok = run_gateway(home, "receipts", "verify", str(receipt))
    assert "GENUINE" in ok.stdout and "NOT GENUINE" not in ok.stdout

    tampered = home / "tampered.receipt.json"
    data = bytearray(receipt.read_bytes())
    data[data.index(b'"accepted":3') + len('"accepted":')] = ord("4")
    tampered.write_bytes(bytes(data))
    shutil.copy(receipt.with_name(receipt.name + ".asc"), tampered.with_name(tampered.name + ".asc"))
    bad = run_gateway(home, "receipts", "verify", str(tampered), check=False)
    assert bad.returncode == 1
    assert "NOT GENUINE" in bad.stdout


def test_plain_gpg_verifies_the_receipt(gateway, settings, home, tmp_path):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    receipt = settings.mailbox_root / "hospital" / "outbox" / f"{SPECIMEN}.receipt.json"
    keyring = tmp_path / "officer"
    keyring.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(keyring), "PATH": "/usr/bin:/bin"}
    for key in (home / "keys").glob("*.asc"):
        subprocess.run(["gpg", "--batch", "--import", str(key)], env=env, check=True, capture_output=True)
    result = subprocess.run(
        ["gpg", "--batch", "--status-fd", "1", "--verify", str(receipt) + ".asc", str(receipt)],
        env=env, capture_output=True, text=True,
    )
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert "[GNUPG:] GOODSIG" in result.stdout


def test_the_same_bytes_under_another_name_are_a_duplicate_exchange(gateway, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    drop(settings, "hospital", "births 十月 copy.csv", specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    assert outcome.status == "duplicate" and outcome.accepted == 0
    receipt = json.loads((settings.mailbox_root / outcome.receipt).read_bytes())
    assert receipt["status"] == "duplicate" and receipt["duplicate_of"] == 1
    assert receipt["ledger"]["sequence"] == 2
    assert query(settings, "SELECT count(*) FROM record") == [(3,)]
    assert (settings.mailbox_root / "hospital" / "processed" / "births 十月 copy.csv").exists()


def test_same_records_in_another_encoding_are_duplicates_not_new_records(gateway, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    utf8 = specimen(SPECIMEN).decode("gb18030").encode("utf-8-sig")
    drop(settings, "hospital", "hospital_births_202610_utf8.csv", utf8)
    [outcome] = gateway.run_once()
    assert (outcome.status, outcome.accepted, outcome.duplicates, outcome.rejected) == ("processed", 0, 3, 3)


def test_a_changed_record_is_stored_as_a_new_version(gateway, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    text = specimen(SPECIMEN).decode("gb18030").replace("3250", "3260")
    drop(settings, "hospital", "hospital_births_202610_fix.csv", text.encode("gb18030"))
    [outcome] = gateway.run_once()
    assert (outcome.accepted, outcome.corrected, outcome.duplicates) == (1, 1, 2)
    versions = query(settings, "SELECT version FROM record WHERE business_key='hospital|Q440781260001' ORDER BY version")
    assert versions == [(1,), (2,)]


def test_ledger_chains_receipts(gateway, settings):
    for n in range(3):
        text = specimen(SPECIMEN).decode("gb18030").replace("Q4407812600", f"Q44078126{n}0")
        drop(settings, "hospital", f"batch{n}.csv", text.encode("gb18030"))
        gateway.run_once()
    chain = query(settings, "SELECT sequence, sha256, previous_sha256 FROM receipt ORDER BY sequence")
    assert [s for s, _, _ in chain] == [1, 2, 3]
    assert chain[0][2] == "0" * 64
    assert chain[1][2] == chain[0][1] and chain[2][2] == chain[1][1]
