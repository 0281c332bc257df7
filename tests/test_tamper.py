"""Tamper evidence: one bit flipped anywhere an officer relies on is detected.

The Merkle sweeps (tree sizes 1 to 64, every leaf, every proof hash) run in-process on
the proof checks `verify-proof` uses, without GnuPG; the flips in signed bytes go
through the real verifier. Hypothesis compares the trees with a naive reference.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator

import pytest
from conftest import drop, specimen
from gpg_helpers import DepartmentKeyring

from contracts import canonical_json
from hypothesis import given, settings as hypothesis_settings, strategies as st

from gateway.receipts.check import check_signed_document, verify_receipt
from gateway.receipts.ledger import CHECKPOINT_TYPE, LedgerTree, Signed, load_store, verify_ledger
from gateway.receipts.merkle import (
    EMPTY_ROOT,
    ProofError,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from gateway.receipts.proofs import build_proof, check_record
from gateway.receipts.receipt import MERKLE_ALGORITHM, RECEIPT_TYPE
from gateway.receipts.signing import KeyEntry, read_history, write_history
from gateway.receipts.strict import armor, dearmor
from gateway.receipts.verify import Verifier

SPECIMEN = "hospital_births_202610.csv"


# -- a naive reference: RFC 6962 section 2.1, written as plainly as it reads ------------


def ref_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(ref_root(leaves[:k]), ref_root(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return ref_path(m, leaves[:k]) + [ref_root(leaves[k:])]
    return ref_path(m - k, leaves[k:]) + [ref_root(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_root(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, leaves[:k], whole) + [ref_root(leaves[k:])]
    return ref_subproof(m - k, leaves[k:], False) + [ref_root(leaves[:k])]


leaf_lists = st.lists(st.binary(max_size=40), min_size=1, max_size=80)


@hypothesis_settings(max_examples=150, deadline=None)
@given(leaf_lists)
@pytest.mark.backend_independent
def test_tree_matches_the_naive_reference(data: list[bytes]) -> None:
    leaves = [leaf_hash(d) for d in data]
    builder = TreeBuilder()
    for d in data:
        builder.append(d)
    assert builder.root() == ref_root(leaves) == root_from_leaf_hashes(leaves) == LedgerTree(leaves).root(0, len(leaves))


@hypothesis_settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
@pytest.mark.backend_independent
def test_proofs_match_the_naive_reference(data: list[bytes], draw: st.DataObject) -> None:
    leaves = [leaf_hash(d) for d in data]
    n = len(leaves)
    root = ref_root(leaves)
    index = draw.draw(st.integers(0, n - 1))
    path = inclusion_proof(leaves, index)
    assert path == ref_path(index, leaves) == LedgerTree(leaves).inclusion(index, n)
    verify_inclusion(leaves[index], index, n, path, root)
    old = draw.draw(st.integers(1, n))
    proof = consistency_proof(leaves, old)
    assert proof == ref_subproof(old, leaves, True) == LedgerTree(leaves).consistency(old, n)
    verify_consistency(old, n, ref_root(leaves[:old]), root, proof)


# -- bit flips in proofs and records, in-process ---------------------------------------


def flips(value: bytes, every_bit: bool) -> Iterator[bytes]:
    """`value` with one bit flipped: every bit, or one bit of each byte (all 8 bit positions in turn)."""
    for i in range(len(value)):
        for bit in range(8) if every_bit else (i % 8,):
            changed = bytearray(value)
            changed[i] ^= 1 << bit
            yield bytes(changed)


def spread_flips(value: bytes, salt: int) -> Iterator[bytes]:
    """Eight one-bit flips of a hash: each bit position once, at bytes that move with `salt`
    (test_merkle.py flips every byte; this keeps the 1..64 sweep through the proof checks fast)."""
    for bit in range(8):
        changed = bytearray(value)
        changed[(salt * 7 + bit * 5) % len(value)] ^= 1 << bit
        yield bytes(changed)


def signed_merkle(leaves: list[bytes]) -> dict:
    return {"algorithm": MERKLE_ALGORITHM, "root": ref_root(leaves).hex(), "size": len(leaves)}


@pytest.mark.parametrize("size", range(1, 65))
@pytest.mark.backend_independent
def test_every_flipped_proof_hash_is_detected(size: int) -> None:
    payloads = [canonical_json({"n": i}) for i in range(size)]
    leaves = [leaf_hash(p) for p in payloads]
    signed = signed_merkle(leaves)
    for index in range(size):
        path = inclusion_proof(leaves, index)
        assert all(c.ok for c in check_record(payloads[index], index, size, path, signed["root"], signed))
        for k, entry in enumerate(path):
            for bad in flips(entry, every_bit=True) if size <= 4 else spread_flips(entry, index + k):
                checks = check_record(payloads[index], index, size, [*path[:k], bad, *path[k + 1 :]], None, signed)
                assert not checks[-1].ok, (size, index, k)
        # The leaf index and tree size are bound too.
        for other in {index ^ 1, index + 1, index - 1} - {index}:
            assert not check_record(payloads[index], other, size, path, None, signed)[-1].ok
        for other_size in (size - 1, size + 1):
            assert not all(c.ok for c in check_record(payloads[index], index, other_size, path, None, signed))


def test_every_flipped_bit_of_the_record_is_detected(gateway, settings) -> None:
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    proof = build_proof(gateway.engine, 1, leaf_index=1)
    receipt = json.loads(proof["receipt"]["body"])
    payload = proof["record"]["payload"].encode("utf-8")
    path = [bytes.fromhex(h) for h in proof["merkle"]["audit_path"]]
    assert all(c.ok for c in check_record(payload, 1, 3, path, None, receipt["merkle"]))
    for bad in flips(payload, every_bit=True):
        assert not check_record(bad, 1, 3, path, None, receipt["merkle"])[-1].ok


@pytest.mark.parametrize("size", range(2, 65, 9))
@pytest.mark.backend_independent
def test_every_flipped_checkpoint_root_or_consistency_hash_is_detected(size: int) -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(size)]
    tree = LedgerTree(leaves)
    new_root = tree.root(0, size)
    for old in range(1, size):
        old_root, proof = tree.root(0, old), tree.consistency(old, size)
        verify_consistency(old, size, old_root, new_root, proof)
        for bad in flips(old_root, every_bit=False):
            with pytest.raises(ProofError):
                verify_consistency(old, size, bad, new_root, proof)
        for bad in flips(new_root, every_bit=False):
            with pytest.raises(ProofError):
                verify_consistency(old, size, old_root, bad, proof)
        for k, entry in enumerate(proof):
            for bad in flips(entry, every_bit=False):
                with pytest.raises(ProofError):
                    verify_consistency(old, size, old_root, new_root, [*proof[:k], bad, *proof[k + 1 :]])


# -- bit flips in signed bytes: receipts, signatures, checkpoints (real GnuPG) ----------


@pytest.fixture
def ledger(gateway, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    view = load_store(gateway.engine)
    verifier = Verifier(read_history(settings.keys_dir), settings.keys_dir)
    yield view, verifier
    verifier.close()


def genuine(verifier: Verifier, body: bytes, signature: bytes, kind: str) -> bool:
    checks, _, _ = check_signed_document(body, signature, verifier, kind)
    return all(c.ok for c in checks)


def field_flips(body: bytes) -> Iterator[tuple[str, bytes]]:
    """For every field of a canonical JSON object (nested ones too): one bit flipped in its
    name, and one in its value."""
    for match in re.finditer(rb'"([a-z_0-9]+)":', body):
        name_at, value_at = match.start(1), match.end()
        if body[value_at : value_at + 1] == b"{":
            continue  # an object: its own fields are flipped one by one
        if body[value_at : value_at + 1] == b'"':
            value_at += 1
        for at, bit in ((name_at, 1), (value_at, 0)):
            changed = bytearray(body)
            changed[at] ^= 1 << bit
            yield match.group(1).decode(), bytes(changed)


def test_every_receipt_field_flipped_is_detected(ledger) -> None:
    view, verifier = ledger
    receipt = view.receipts[0]
    assert genuine(verifier, receipt.body, receipt.signature, RECEIPT_TYPE)
    names = set()
    for name, bad in field_flips(receipt.body):
        names.add(name)
        assert not genuine(verifier, bad, receipt.signature, RECEIPT_TYPE), name
    assert {"exchange_id", "file_sha256", "accepted", "root", "size", "sequence", "previous_receipt_sha256", "signing_key"} <= names


def test_every_checkpoint_field_flipped_is_detected(ledger) -> None:
    view, verifier = ledger
    checkpoint = view.checkpoints[0]
    assert genuine(verifier, checkpoint.body, checkpoint.signature, CHECKPOINT_TYPE)
    names = set()
    for name, bad in field_flips(checkpoint.body):
        names.add(name)
        assert not genuine(verifier, bad, checkpoint.signature, CHECKPOINT_TYPE), name
    assert names == {"type", "version", "tree_size", "root", "time", "signing_key"}


def test_every_flipped_bit_of_a_signature_is_detected(ledger) -> None:
    view, verifier = ledger
    receipt = view.receipts[0]
    packet = dearmor(receipt.signature)
    # Every bit of the armored text (caught by the strict form before gpg runs) ...
    for bad in flips(receipt.signature, every_bit=True):
        assert not verifier.verify(receipt.body, bad).genuine
    # ... and of the signature packet inside it, armored afresh so the armor is right:
    # every bit of the parts gpg does not cover (length, unhashed area, quick-check
    # bytes, value lengths), one bit of each byte elsewhere.
    hashed_end = 6 + int.from_bytes(packet[6:8], "big") + 2
    structural = set(range(0, 8)) | set(range(hashed_end, hashed_end + 16))
    for at in range(len(packet)):
        for bit in range(8) if at in structural else (at % 8,):
            changed = bytearray(packet)
            changed[at] ^= 1 << bit
            assert not verifier.verify(receipt.body, armor(bytes(changed))).genuine, (at, bit)


def test_tampered_checkpoint_in_the_ledger_is_detected(gateway, settings, ledger) -> None:
    view, _ = ledger
    checkpoint = view.checkpoints[0]
    for _, bad in field_flips(checkpoint.body):
        tampered = type(view)(view.receipts, [Signed(checkpoint.name, bad, checkpoint.signature)])
        assert not verify_ledger(tampered, settings.keys_dir).ok


# -- keys: a key in a keyring is not a trusted key ---------------------------------------


@pytest.fixture
def stranger() -> Iterator[tuple[DepartmentKeyring, str]]:
    ring = DepartmentKeyring()
    yield ring, ring.new_key("Interagency Data-Exchange Gateway")
    ring.close()


def test_a_key_in_the_officers_keyring_but_not_in_the_history_is_refused(gateway, settings, stranger, monkeypatch) -> None:
    ring, fingerprint = stranger
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    receipt = settings.mailbox_root / outcome.receipt
    forged = receipt.with_name("forged.receipt.json")
    forged.write_bytes(receipt.read_bytes().replace(b'"accepted":3', b'"accepted":2'))
    forged.with_name(forged.name + ".asc").write_bytes(ring.sign(forged.read_bytes(), fingerprint))
    # The forger's key sits in the officer's own keyring (GNUPGHOME) ...
    monkeypatch.setenv("GNUPGHOME", str(ring.home))
    verdict = verify_receipt(forged, settings.keys_dir)
    assert not verdict.genuine and "no public key" in verdict.checks[0].detail  # gpg never looked there
    # ... or its public key file lies in the keys folder ...
    (settings.keys_dir / "gateway-stranger.asc").write_bytes(ring.export(fingerprint))
    assert not verify_receipt(forged, settings.keys_dir).genuine
    # ... or the history's key file is swapped for the forger's, or holds both keys.
    entries = read_history(settings.keys_dir)
    key_file = settings.keys_dir / entries[0].public_key_file
    original = key_file.read_bytes()
    key_file.write_bytes(ring.export(fingerprint))
    verdict = verify_receipt(receipt, settings.keys_dir)
    assert not verdict.genuine and "does not hold key" in verdict.checks[0].detail
    key_file.write_bytes(original + ring.export(fingerprint))
    assert verify_receipt(receipt, settings.keys_dir).genuine
    assert not verify_receipt(forged, settings.keys_dir).genuine
    # Naming the forger in the history (with the real key's file) changes nothing either.
    write_history(settings.keys_dir, [KeyEntry(fingerprint, entries[0].public_key_file, entries[0].valid_from)])
    key_file.write_bytes(original)
    assert not verify_receipt(forged, settings.keys_dir).genuine


def test_plain_gpg_and_the_gateway_agree_on_a_good_receipt(gateway, settings, tmp_path) -> None:
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    [outcome] = gateway.run_once()
    receipt = settings.mailbox_root / outcome.receipt
    keyring = tmp_path / "k"
    keyring.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(keyring)}
    for key in settings.keys_dir.glob("gateway-*.asc"):
        subprocess.run(["gpg", "--batch", "--import", str(key)], env=env, check=True, capture_output=True)
    done = subprocess.run(["gpg", "--batch", "--verify", f"{receipt}.asc", str(receipt)], env=env, capture_output=True)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    assert done.returncode == 0 and verify_receipt(receipt, settings.keys_dir).genuine


def test_armor_without_the_checksum_line_is_the_same_signature(ledger) -> None:
    """RFC 9580 drops the armor CRC; a gpg that follows it must not break verification."""
    view, verifier = ledger
    receipt = view.receipts[0]
    bare = armor(dearmor(receipt.signature), checksum=False)
    assert bare != receipt.signature and verifier.verify(receipt.body, bare).genuine
    for bad in flips(bare, every_bit=False):
        assert not verifier.verify(receipt.body, bad).genuine
