"""Record proofs: a self-contained file showing that one record was part of one exchange.

`gateway receipts prove` writes it from the store; `gateway receipts verify-proof` checks
it with nothing but the gateway's public keys and key history:

1. the receipt body carries one good signature by a key valid at the time (the same
   checks as `gateway receipts verify`);
2. the record's leaf hash, SHA-256(0x00 || canonical JSON), climbs the audit path to the
   Merkle root and size that the receipt signed; the root and size are taken from the
   signed receipt only, never from the proof file;
3. when a checkpoint covered the receipt, the receipt is leaf `sequence - 1` of that
   signed checkpoint's ledger tree.

Records are numbered by leaf index, 0-based, in the order they were accepted (the
`leaf_index` column); `--row` picks a record by its row number in the source file.
The proof holds the record in full: treat the file as personal data. A record purged
under a retention rule (保存期限, gateway/retention/) has no payload left: its proof holds
`record.purged` (when, under which rule, the kept leaf and record hashes) and says
"已于 … 按规则 … 清除 / purged on … under rule …"; its kept leaf hash climbs the audit path
to the signed root all the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from collections.abc import Mapping
from typing import cast

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from contracts import canonical_json

from gateway.errors import GatewayError
from gateway.clock import in_china
from gateway.store.models import Checkpoint, Receipt, Record
from gateway.store.retention_models import RetentionPurge
from gateway.receipts.check import Check, check_signed_document
from gateway.receipts.documents import MerklePart, ProofDocument, ProofLedger, ProofPurged, ProofRecord, ReceiptDocument
from gateway.receipts.ledger import CHECKPOINT_TYPE, LedgerTree, Signed, check_checkpoint, checkpoint_name, iter_leaf_hashes
from gateway.receipts.merkle import ProofError, inclusion_proof, leaf_hash, verify_inclusion
from gateway.receipts.receipt import MERKLE_ALGORITHM, RECEIPT_TYPE
from gateway.receipts.signing import read_history
from gateway.receipts.verify import Verifier

PROOF_TYPE = "gateway.record-proof"


class ProofProblem(GatewayError):
    """A proof cannot be made as asked; the message says why and what to do."""


def build_proof(engine: Engine, exchange_id: int, *, leaf_index: int | None = None, row: int | None = None) -> ProofDocument:
    """The proof document for one record of an exchange (by leaf index or source row)."""
    with Session(engine) as session:
        receipt = session.exec(select(Receipt).where(col(Receipt.exchange_id) == exchange_id)).scalars().first()  # type: ignore[call-overload]
        if receipt is None:
            raise ProofProblem(f"exchange {exchange_id} has no receipt; see `gateway exchanges list`")
        records = session.execute(
            select(col(Record.leaf_index), col(Record.row_number), col(Record.contract), col(Record.payload), col(Record.record_hash))
            .where(col(Record.exchange_id) == exchange_id)
            .order_by(col(Record.leaf_index))
        ).all()
        purged = {
            int(p.leaf_index): p
            for p in session.execute(
                select(RetentionPurge).where(col(RetentionPurge.exchange_id) == exchange_id, col(RetentionPurge.kind) == "record")
            ).scalars().all()
            if p.leaf_index is not None and p.leaf_hash
        }
        checkpoint = session.exec(
            select(Checkpoint).where(col(Checkpoint.tree_size) >= receipt.sequence).order_by(col(Checkpoint.id).desc()).limit(1)  # type: ignore[call-overload]
        ).scalars().first()
    if not records:
        raise ProofProblem(f"exchange {exchange_id} stored no records; its receipt says what happened instead")
    if [r[0] for r in records] != list(range(len(records))):
        raise ProofProblem(f"exchange {exchange_id}: stored leaf indexes are not 0..{len(records) - 1}; run `gateway receipts verify`")
    if row is not None:
        chosen = [r for r in records if r[1] == row]
        if not chosen:
            raise ProofProblem(
                f"row {row} of exchange {exchange_id} was not stored (refused or a duplicate); "
                f"stored rows: {', '.join(str(r[1]) for r in records[:20])}{' ...' if len(records) > 20 else ''}"
            )
        leaf_index = chosen[0][0]
    if leaf_index is None or not 0 <= leaf_index < len(records):
        raise ProofProblem(f"exchange {exchange_id} has records 0 to {len(records) - 1} (leaf index, 0-based); got {leaf_index}")
    # a record purged under a retention rule (保存期限) is its kept leaf hash
    leaves = [bytes.fromhex(purged[r[0]].leaf_hash or "") if r[0] in purged else leaf_hash(r[3].encode("utf-8")) for r in records]
    signed = cast(MerklePart, json.loads(receipt.body)["merkle"])
    if signed.get("size") != len(leaves):
        raise ProofProblem(
            f"exchange {exchange_id}: {len(leaves)} stored records but the receipt signed {signed.get('size')}; "
            "run `gateway receipts verify`"
        )
    _, row_number, contract, payload, record_hash = records[leaf_index]
    record: ProofRecord = {"leaf_index": leaf_index, "row_number": row_number, "contract": contract, "payload": payload}
    purge = purged.get(leaf_index)
    if purge is not None:
        record["payload"] = ""
        on = in_china(purge.purged_on).strftime("%Y-%m-%d")
        record["purged"] = {
            "on": on, "rule": purge.rule, "leaf_hash": purge.leaf_hash or "", "record_hash": record_hash,
            "note": purged_note(on, purge.rule),
        }
    document: ProofDocument = {
        "type": PROOF_TYPE,
        "version": "1",
        "exchange_id": exchange_id,
        "record": record,
        "merkle": {
            "algorithm": MERKLE_ALGORITHM,
            "tree_size": len(leaves),
            "root": signed.get("root"),
            "audit_path": [h.hex() for h in inclusion_proof(leaves, leaf_index)],
        },
        "receipt": {"receipt_id": f"R{receipt.sequence:08d}", "body": receipt.body, "signature": receipt.signature},
        "ledger": None,
    }
    if checkpoint is not None:
        tree = LedgerTree(list(iter_leaf_hashes(engine, checkpoint.tree_size)))
        document["ledger"] = {
            "leaf_index": receipt.sequence - 1,
            "audit_path": [h.hex() for h in tree.inclusion(receipt.sequence - 1, checkpoint.tree_size)],
            "checkpoint": {"name": checkpoint_name(checkpoint.id or 0), "body": checkpoint.body, "signature": checkpoint.signature},
        }
    return document


def write_proof(document: ProofDocument, path: Path) -> None:
    """Write the proof readable by its owner only: it holds a record in full."""
    data = (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _hashes(values: object) -> list[bytes]:
    if not isinstance(values, list):
        raise ValueError("an audit path must be a list of hex hashes")
    return [bytes.fromhex(v) for v in values]


def verify_proof(document: ProofDocument, keys_dir: Path) -> list[Check]:
    """Every check of a record proof, in order; stops at the first that makes the rest meaningless."""
    checks: list[Check] = []
    if not isinstance(document, dict) or document.get("type") != PROOF_TYPE:
        return [Check("proof file", False, f"not a {PROOF_TYPE} document")]
    try:
        receipt_part, record, merkle = document["receipt"], document["record"], document["merkle"]
        body = receipt_part["body"].encode("utf-8")
        signature = receipt_part["signature"].encode("ascii")
        payload = record["payload"].encode("utf-8")
        index, size = record["leaf_index"], merkle["tree_size"]
        path = _hashes(merkle["audit_path"])
        purged = record.get("purged")
        kept = bytes.fromhex(purged["leaf_hash"]) if purged is not None else None
    except (KeyError, TypeError, AttributeError, ValueError, UnicodeError) as exc:
        return [Check("proof file", False, f"incomplete or malformed: {exc}")]
    with Verifier(read_history(keys_dir), keys_dir) as verifier:
        signed_checks, signed_document, _ = check_signed_document(body, signature, verifier, RECEIPT_TYPE)
        checks.extend(signed_checks)
        if signed_document is None or not all(c.ok for c in checks):
            return checks
        receipt = cast(ReceiptDocument, signed_document)
        checks.append(
            Check("exchange", receipt.get("exchange_id") == document.get("exchange_id"), f"the receipt is for exchange {receipt.get('exchange_id')}")
        )
        checks.extend(check_record(payload, index, size, path, merkle.get("root"), receipt.get("merkle") or {}, kept=kept))
        if purged is not None:
            checks.append(Check("purged", True, purged_text(purged)))
        ledger = document.get("ledger")
        if ledger is not None:
            checks.append(_ledger_inclusion(ledger, body, receipt, verifier))
    return checks


def purged_note(on: str, rule: str) -> str:
    """What a proof of a purged record says (Chinese first)."""
    return f"已于 {on} 按规则 {rule} 清除(仅保留哈希) / purged on {on} under rule {rule} (only its hashes are kept)"


def purged_text(purged: ProofPurged) -> str:
    """The note of a purged record's proof, from its date and rule (not the file's own note)."""
    return purged_note(purged["on"], purged["rule"])


def check_record(
    payload: bytes, index: object, size: object, path: list[bytes], proof_root: object, signed: Mapping[str, object],
    *, kept: bytes | None = None,
) -> list[Check]:
    """The record's part of a proof, given the receipt's signed `merkle` object: no
    GnuPG here. The root and size come from `signed` only; the proof's own copies must
    agree with them or the proof is refused. `kept`: the leaf hash of a record purged under
    a retention rule, which climbs the path in place of the payload."""
    checks = [Check("algorithm", signed.get("algorithm") == MERKLE_ALGORITHM, f"records hashed as {MERKLE_ALGORITHM}")]
    signed_size, signed_root = signed.get("size"), signed.get("root")
    checks.append(Check("tree size", size == signed_size, f"the proof is for {size} records; the receipt signed {signed_size}"))
    if proof_root is not None:
        checks.append(Check("root", proof_root == signed_root, "the proof's root is the root the receipt signed"))
    if kept is None:
        try:
            canonical = canonical_json(json.loads(payload)) == payload
        except ValueError:
            canonical = False
        checks.append(Check("record form", canonical, "the record is canonical JSON"))
    try:
        if not isinstance(index, int) or not isinstance(signed_size, int) or not isinstance(signed_root, str):
            raise ProofError("leaf index, size or root missing")
        verify_inclusion(kept if kept is not None else leaf_hash(payload), index, signed_size, path, bytes.fromhex(signed_root))
        checks.append(
            Check("record inclusion", True, f"record {index} (0-based) of {signed_size} leads through {len(path)} hashes to the signed root")
        )
    except (ProofError, ValueError) as exc:
        checks.append(Check("record inclusion", False, f"the record does not lead to the signed root: {exc}"))
    return checks


def _ledger_inclusion(ledger: ProofLedger, body: bytes, receipt: ReceiptDocument, verifier: Verifier) -> Check:
    try:
        part = ledger["checkpoint"]
        item = Signed(part["name"], part["body"].encode("utf-8"), part["signature"].encode("ascii"))
        path = _hashes(ledger["audit_path"])
        index = ledger["leaf_index"]
    except (KeyError, TypeError, AttributeError, ValueError, UnicodeError) as exc:
        return Check("ledger inclusion", False, f"ledger part malformed: {exc}")
    checks, size, root = check_checkpoint(item, verifier)
    if size is None or root is None:
        problems = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
        return Check("ledger inclusion", False, f"{CHECKPOINT_TYPE} {item.name} is not genuine: {problems}")
    sequence = (receipt.get("ledger") or {}).get("sequence")
    if index != (sequence or 0) - 1:
        return Check("ledger inclusion", False, f"the proof places receipt {sequence} at leaf {index}")
    try:
        verify_inclusion(leaf_hash(body), index, size, path, root)
    except ProofError as exc:
        return Check("ledger inclusion", False, f"the receipt is not in {item.name}: {exc}")
    return Check("ledger inclusion", True, f"receipt {sequence} is in the signed ledger checkpoint {item.name} ({size} receipts)")
