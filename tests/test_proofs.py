"""Record proofs: `gateway receipts prove` / `verify-proof`, and the proofs that are refused."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import drop, run_gateway, specimen

from gateway.receipts.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes
from gateway.receipts.proofs import ProofProblem, build_proof, verify_proof

SPECIMEN = "hospital_births_202610.csv"


def ok(checks) -> bool:
    return bool(checks) and all(c.ok for c in checks)


def failed(checks) -> set[str]:
    return {c.name for c in checks if not c.ok}


@pytest.fixture
def two_exchanges(gateway, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    text = specimen(SPECIMEN).decode("gb18030").replace("Q4407812600", "Q4407812650")
    drop(settings, "hospital", "second.csv", text.encode("gb18030"))
    outcomes = gateway.run_once()
    assert [(o.exchange_id, o.accepted) for o in outcomes] == [(1, 3), (2, 3)]
    return gateway


def test_prove_by_leaf_index_or_row(two_exchanges, settings):
    engine = two_exchanges.engine
    for index in range(3):
        proof = build_proof(engine, 1, leaf_index=index)
        assert proof["record"]["leaf_index"] == index and proof["merkle"]["tree_size"] == 3
        assert ok(verify_proof(proof, settings.keys_dir)), verify_proof(proof, settings.keys_dir)
        assert build_proof(engine, 1, row=proof["record"]["row_number"]) == proof
    proof = build_proof(engine, 2, leaf_index=0)
    assert proof["ledger"]["checkpoint"]["name"] == "checkpoint-000001" and proof["ledger"]["leaf_index"] == 1
    # The row number of a refused row names what was stored instead.
    with pytest.raises(ProofProblem, match="row 5 of exchange 1 was not stored"):
        build_proof(engine, 1, row=5)
    with pytest.raises(ProofProblem, match="records 0 to 2"):
        build_proof(engine, 1, leaf_index=3)
    with pytest.raises(ProofProblem, match="no receipt"):
        build_proof(engine, 99, leaf_index=0)


def test_a_duplicate_exchange_has_nothing_to_prove(gateway, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    drop(settings, "hospital", "again.csv", specimen(SPECIMEN))
    gateway.run_once()
    with pytest.raises(ProofProblem, match="stored no records"):
        build_proof(gateway.engine, 2, leaf_index=0)


def test_a_proof_without_a_checkpoint_is_still_a_proof(gateway, settings, tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(specimen(SPECIMEN))
    gateway.ingest(path, "hospital-births")  # by hand: no pass, so no checkpoint yet
    proof = build_proof(gateway.engine, 1, leaf_index=1)
    assert proof["ledger"] is None
    assert ok(verify_proof(proof, settings.keys_dir))


def _forge(proof: dict, leaves: list[bytes], index: int) -> dict:
    """The proof rebuilt over `leaves` (its own root and size), receipt unchanged."""
    forged = copy.deepcopy(proof)
    forged["merkle"].update(
        tree_size=len(leaves),
        root=root_from_leaf_hashes(leaves).hex(),
        audit_path=[h.hex() for h in inclusion_proof(leaves, index)],
    )
    forged["record"]["leaf_index"] = index
    return forged


def test_proofs_against_other_trees_are_refused(two_exchanges, settings):
    engine = two_exchanges.engine
    proof = build_proof(engine, 1, leaf_index=2)
    payloads = [build_proof(engine, 1, leaf_index=i)["record"]["payload"].encode() for i in range(3)]
    leaves = [leaf_hash(p) for p in payloads]

    # An unsigned root: the record in a tree of the forger's making.
    alien = leaf_hash(b'{"not":"a record of this exchange"}')
    unsigned = _forge(proof, [leaves[0], leaves[1], leaves[2], alien], 2)
    assert {"tree size", "root", "record inclusion"} <= failed(verify_proof(unsigned, settings.keys_dir))
    # A smaller tree size (the record's own prefix), its root consistent with it.
    smaller = _forge(proof, leaves[1:3], 1)
    assert {"tree size", "root", "record inclusion"} <= failed(verify_proof(smaller, settings.keys_dir))
    # The same size with another root.
    same_size = _forge(proof, [leaves[0], alien, leaves[2]], 2)
    assert {"root", "record inclusion"} <= failed(verify_proof(same_size, settings.keys_dir))
    # A record of another exchange under this exchange's receipt.
    other = build_proof(engine, 2, leaf_index=2)
    mixed = copy.deepcopy(proof)
    mixed["record"] = other["record"]
    assert "record inclusion" in failed(verify_proof(mixed, settings.keys_dir))
    mixed["receipt"] = other["receipt"]
    assert "exchange" in failed(verify_proof(mixed, settings.keys_dir))
    # The genuine one still passes.
    assert ok(verify_proof(proof, settings.keys_dir))


def test_prove_and_verify_proof_commands(two_exchanges, home, tmp_path):
    out = tmp_path / "p.json"
    made = run_gateway(home, "receipts", "prove", "--exchange", "2", "--row", "3", "--out", str(out))
    assert "record 1 of 3 (row 3)" in made.stdout
    # What is printed never shows the record itself (ID numbers stay out of terminals and logs).
    payload = json.loads(out.read_bytes())["record"]["payload"]
    for value in json.loads(payload).values():
        if isinstance(value, str) and len(value) > 8:
            assert value not in made.stdout
    good = run_gateway(home, "receipts", "verify-proof", str(out))
    assert "GENUINE" in good.stdout and "NOT GENUINE" not in good.stdout
    both = run_gateway(home, "receipts", "prove", "--exchange", "2", "--row", "3", "--record", "1", check=False)
    assert both.returncode == 2 and "exactly one" in both.stdout
    document = json.loads(out.read_bytes())
    document["record"]["payload"] = document["record"]["payload"].replace("3", "4", 1)
    out.write_text(json.dumps(document, ensure_ascii=False))
    bad = run_gateway(home, "receipts", "verify-proof", str(out), check=False)
    assert bad.returncode == 1 and "NOT GENUINE" in bad.stdout
