"""The receipt ledger: checkpoints after each pass, verification from the database and
from an export, and the security officer's offline round trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import drop, execute, run_gateway, specimen

from gateway.config import load_settings
from gateway.exchange.lifecycle import Gateway
from gateway.receipts.ledger import (
    LedgerProblem,
    LedgerTree,
    Signed,
    load_export,
    load_store,
    make_checkpoint,
    verify_ledger,
)
from gateway.receipts.merkle import consistency_proof, inclusion_proof, leaf_hash

SPECIMEN = "hospital_births_202610.csv"


def variant(n: int) -> bytes:
    text = specimen(SPECIMEN).decode("gb18030").replace("Q4407812600", f"Q44078129{n}0")
    return text.encode("gb18030")


def fill(gateway, settings, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        drop(settings, "hospital", f"batch{n}.csv", variant(n))
        gateway.run_once()


def failing(report) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if not c.ok}


def checkpoints(settings) -> list[str]:
    folder = settings.home / "ledger" / "checkpoints"
    return sorted(p.name for p in folder.glob("*.json")) if folder.exists() else []


def test_a_pass_that_adds_receipts_signs_a_checkpoint(gateway, settings):
    assert gateway.run_once() == [] and checkpoints(settings) == []
    fill(gateway, settings, 2)
    assert checkpoints(settings) == ["checkpoint-000001.json", "checkpoint-000002.json"]
    assert gateway.run_once() == []  # nothing new: no checkpoint
    assert len(checkpoints(settings)) == 2
    body = json.loads((settings.home / "ledger" / "checkpoints" / "checkpoint-000002.json").read_bytes())
    assert set(body) == {"type", "version", "tree_size", "root", "time", "signing_key"}
    assert body["tree_size"] == 2 and body["signing_key"] == gateway.signer.fingerprint
    assert (settings.home / "ledger" / "checkpoints" / "checkpoint-000002.json.asc").exists()
    report = verify_ledger(load_store(gateway.engine), settings.keys_dir)
    assert report.ok, failing(report)


def test_checkpoint_on_demand(home, gateway, settings):
    refused = run_gateway(home, "ledger", "checkpoint", check=False)
    assert refused.returncode != 0 and "empty" in refused.stderr
    fill(gateway, settings, 1)
    made = run_gateway(home, "ledger", "checkpoint")
    assert "Checkpoint 2: 1 receipts" in made.stdout
    assert "LEDGER INTACT" in run_gateway(home, "ledger", "verify", "--since", "1").stdout


def test_the_frontier_resumes_the_tree(gateway, settings):
    fill(gateway, settings, 5)
    rows = [json.loads(s.body) for s in load_store(gateway.engine).checkpoints]
    leaves = [leaf_hash(s.body) for s in load_store(gateway.engine).receipts]
    assert [r["root"] for r in rows] == [LedgerTree(leaves).root(0, n).hex() for n in range(1, 6)]
    # A damaged frontier is noticed and the tree is read again.
    execute(settings, "UPDATE checkpoint SET frontier = '[\"00\"]'")
    row = make_checkpoint(gateway.engine, gateway.signer, settings.home / "ledger" / "checkpoints")
    assert row.root == LedgerTree(leaves).root(0, 5).hex()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 13, 33])
@pytest.mark.backend_independent
def test_ledger_tree_gives_the_rfc6962_proofs(size):
    leaves = [leaf_hash(bytes([i])) for i in range(size)]
    tree = LedgerTree(leaves)
    for old in range(1, size + 1):
        assert tree.consistency(old, size) == consistency_proof(leaves, old)
    for index in range(size):
        assert tree.inclusion(index, size) == inclusion_proof(leaves, index)


# -- tampering with the database ----------------------------------------------------


@pytest.mark.parametrize(
    "tamper, broken",
    [
        ("DELETE FROM receipt WHERE sequence = 2", {"sequence", "chain", "checkpoints"}),
        ("UPDATE receipt SET body = replace(body, '\"accepted\":3', '\"accepted\":4') WHERE sequence = 2", {"receipts", "checkpoints"}),
        ("UPDATE receipt SET sequence = -sequence WHERE sequence IN (2, 3);"
         "UPDATE receipt SET sequence = 5 WHERE sequence = -2; UPDATE receipt SET sequence = 2 WHERE sequence = -3;"
         "UPDATE receipt SET sequence = 3 WHERE sequence = 5", {"sequence", "chain", "checkpoints"}),
        ("DELETE FROM receipt WHERE sequence = 4", {"checkpoints"}),
        ("UPDATE receipt SET signature = (SELECT signature FROM receipt WHERE sequence = 1) WHERE sequence = 2", {"receipts"}),
        ("UPDATE checkpoint SET body = replace(body, '\"tree_size\":2', '\"tree_size\":1') WHERE id = 2", {"checkpoints"}),
    ],
    ids=["removed", "changed", "reordered", "last-removed", "signature-swapped", "checkpoint-changed"],
)
def test_verify_detects_tampering_in_the_store(gateway, settings, tamper, broken):
    fill(gateway, settings, 4)
    assert verify_ledger(load_store(gateway.engine), settings.keys_dir).ok
    execute(settings, tamper)
    report = verify_ledger(load_store(gateway.engine), settings.keys_dir)
    assert not report.ok
    assert broken <= set(failing(report)), failing(report)


def test_since_refuses_a_rewritten_or_shrunk_ledger(gateway, settings, template_home, another_database):
    fill(gateway, settings, 3)
    kept = Signed.from_file(settings.home / "ledger" / "checkpoints" / "checkpoint-000003.json")
    fill(gateway, settings, 2, start=3)
    report = verify_ledger(load_store(gateway.engine), settings.keys_dir, since=kept)
    assert report.ok, failing(report)
    assert "only grew" in [c for c in report.checks if c.name == "since checkpoint"][0].detail

    # The same signing key over another history (a ledger rewritten by whoever holds the
    # key): its own checkpoints hold, but it does not extend the one the officer kept.
    scratch = Path(tempfile.mkdtemp(prefix="gwo", dir="/tmp"))  # short: gpg-agent's socket path
    other = Path(shutil.copytree(template_home, scratch / "home", ignore=shutil.ignore_patterns("S.*", "gateway.db*")))
    other_settings = load_settings(other)
    if another_database:
        other_settings.database_url = another_database
    other_gateway = Gateway(other_settings)
    try:
        for n in (0, 1, 9, 3, 4):
            drop(other_settings, "hospital", f"batch{n}.csv", variant(n), age=60)
            other_gateway.run_once(wait_for_fresh=False)
        rewritten = verify_ledger(load_store(other_gateway.engine), other_settings.keys_dir, since=kept)
        assert failing(rewritten).keys() == {"since checkpoint"}
        assert "does not extend your checkpoint" in failing(rewritten)["since checkpoint"]
        shorter = Signed.from_file(settings.home / "ledger" / "checkpoints" / "checkpoint-000005.json")
        execute(other_settings, "DELETE FROM checkpoint WHERE tree_size > 2")
        shrunk = verify_ledger(load_store(other_gateway.engine), other_settings.keys_dir, since=shorter)
        assert "shrank" in failing(shrunk)["since checkpoint"]
    finally:
        other_gateway.close()
        subprocess.run(["gpgconf", "--homedir", str(other / "gnupg"), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)


# -- export and the officer's round trip ------------------------------------------------


def test_export_refuses_a_folder_that_is_not_an_export(home, gateway, settings, tmp_path):
    fill(gateway, settings, 1)
    (tmp_path / "notes.txt").write_text("mine")
    result = run_gateway(home, "ledger", "export", str(tmp_path), check=False)
    assert result.returncode != 0 and "not empty" in result.stderr


def test_officer_round_trip_offline(home, gateway, settings, tmp_path):
    """Export, then verify a record, a receipt and the whole ledger on a machine without
    the gateway's database: the home is renamed away, only the export and proofs remain."""
    fill(gateway, settings, 2)
    first_proof = tmp_path / "record.proof.json"
    run_gateway(home, "receipts", "prove", "--exchange", "1", "--record", "2", "--out", str(first_proof))
    assert oct(first_proof.stat().st_mode & 0o777) == "0o600"
    export1 = tmp_path / "export-1"
    run_gateway(home, "ledger", "export", str(export1))
    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("checkpoint-000002.json", "checkpoint-000002.json.asc"):
        shutil.copy(export1 / "checkpoints" / name, kept / name)

    # Months later: the key was rotated, more exchanges came in.
    run_gateway(home, "keys", "rotate")
    fill(gateway, settings, 2, start=2)
    by_row = tmp_path / "row.proof.json"
    run_gateway(home, "receipts", "prove", "--exchange", "4", "--row", "3", "--out", str(by_row))
    export2 = tmp_path / "export-2"
    exported = run_gateway(home, "ledger", "export", str(export2)).stdout
    assert "Exported 4 receipts" in exported
    assert (export2 / "VERIFY.md").read_text().count("gateway ledger verify --export") >= 1
    assert sorted(p.name for p in (export2 / "proofs").iterdir()) == [
        "consistency-000001-000002.json", "consistency-000002-000003.json", "consistency-000003-000004.json",
    ]

    # The officer's machine: no home, no database.
    gateway.close()
    offline_home = home.with_name("home-gone")
    os.rename(home, offline_home)
    try:
        keys = ["--keys", str(export2 / "keys")]
        for proof in (first_proof, by_row):
            result = run_gateway(home, "receipts", "verify-proof", str(proof), *keys)
            assert "GENUINE" in result.stdout and "NOT GENUINE" not in result.stdout
            assert "record inclusion" in result.stdout and "ledger inclusion" in result.stdout
        receipts = sorted(str(p) for p in (export2 / "receipts").glob("R*.json"))
        result = run_gateway(home, "receipts", "verify", *receipts, *keys)
        assert result.stdout.count("GENUINE") == 4 and "NOT GENUINE" not in result.stdout
        result = run_gateway(home, "ledger", "verify", "--export", str(export2), "--since", str(kept / "checkpoint-000002.json"))
        assert "LEDGER INTACT 4 receipts" in result.stdout and "only grew" in result.stdout
        assert "key history: 2 key(s)" in result.stdout

        # Plain GnuPG, as VERIFY.md says.
        gnupg_home = tmp_path / "officer-gnupg"
        gnupg_home.mkdir(mode=0o700)
        env = {**os.environ, "GNUPGHOME": str(gnupg_home)}
        for key in (export2 / "keys").glob("gateway-*.asc"):
            subprocess.run(["gpg", "--batch", "--import", str(key)], env=env, check=True, capture_output=True)
        for receipt in ("R00000001.json", "R00000004.json"):
            path = export2 / "receipts" / receipt
            done = subprocess.run(["gpg", "--batch", "--status-fd", "1", "--verify", f"{path}.asc", str(path)], env=env, capture_output=True, text=True)
            assert "[GNUPG:] GOODSIG" in done.stdout, done.stderr
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)

        # Tampering with the export is found.
        receipts_dir = export2 / "receipts"
        r2, r3 = receipts_dir / "R00000002.json", receipts_dir / "R00000003.json"
        saved = {p: p.read_bytes() for p in (r2, r3, r2.with_name(r2.name + ".asc"), r3.with_name(r3.name + ".asc"))}
        for p in (r2, r2.with_name(r2.name + ".asc")):
            p.unlink()
        removed = run_gateway(home, "ledger", "verify", "--export", str(export2), check=False)
        assert removed.returncode == 1 and "LEDGER NOT INTACT" in removed.stdout
        for p, data in saved.items():
            p.write_bytes(data)
        r2.write_bytes(saved[r3]), r3.write_bytes(saved[r2])
        r2.with_name(r2.name + ".asc").write_bytes(saved[r3.with_name(r3.name + ".asc")])
        r3.with_name(r3.name + ".asc").write_bytes(saved[r2.with_name(r2.name + ".asc")])
        reordered = verify_ledger(load_export(export2), export2 / "keys")
        assert {"sequence", "chain", "checkpoints"} <= set(failing(reordered))
    finally:
        os.rename(offline_home, home)


def test_since_accepts_a_number_in_an_export(gateway, settings, tmp_path):
    fill(gateway, settings, 2)
    from gateway.receipts.ledger import export_ledger, read_checkpoint_arg

    export_ledger(gateway.engine, gateway.signer, settings.home, settings.keys_dir, tmp_path / "x")
    kept = read_checkpoint_arg("1", view_dir=tmp_path / "x")
    assert verify_ledger(load_export(tmp_path / "x"), tmp_path / "x" / "keys", since=kept).ok
    with pytest.raises(LedgerProblem):
        read_checkpoint_arg("9", view_dir=tmp_path / "x")
