"""`gateway receipts verify`: is this receipt genuine, and does it agree with what the
gateway stored? Signature first (offline, key history only), then every figure that can
be recomputed: canonical form, signing key, Merkle root over the stored records, the
ledger link to the previous receipt, and the rejection report beside it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from contracts import canonical_json

from gateway.store.models import Receipt, Record
from gateway.store.retention_models import RetentionPurge
from gateway.receipts.documents import ReceiptDocument
from gateway.receipts.merkle import TreeBuilder
from gateway.receipts.receipt import RECEIPT_TYPE
from gateway.receipts.signing import read_history
from gateway.receipts.verify import Verifier


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class ReceiptVerdict:
    path: Path
    checks: list[Check] = field(default_factory=list)
    fingerprint: str | None = None

    @property
    def genuine(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def check_signed_document(
    body: bytes, signature: bytes, verifier: Verifier, kind: str
) -> tuple[list[Check], dict[str, object] | None, str | None]:
    """What every signed document of the gateway (receipt, ledger checkpoint) must pass:
    one good signature by a key of the history valid at the signature's time, canonical
    JSON bytes, the expected type, and naming the key that signed it. Returns the checks,
    the document (None when the signature or the JSON fails) and the signer."""
    checks: list[Check] = []
    sig = verifier.verify(body, signature)
    when = f" at {sig.signed_at.isoformat()}" if sig.signed_at else ""
    detail = f"good signature by {sig.fingerprint}{when}, inside its key's window" if sig.genuine else "; ".join(sig.problems)
    checks.append(Check("signature", sig.genuine, detail))
    if not sig.genuine:
        return checks, None, sig.fingerprint
    try:
        document = json.loads(body)
    except ValueError as exc:
        checks.append(Check("canonical form", False, f"not JSON: {exc}"))
        return checks, None, sig.fingerprint
    if not isinstance(document, dict):
        checks.append(Check("canonical form", False, "not a JSON object"))
        return checks, None, sig.fingerprint
    checks.append(Check("canonical form", canonical_json(document) == body, "bytes are canonical JSON"))
    checks.append(Check("type", document.get("type") == kind, f"a {kind} document"))
    checks.append(
        Check("signing key", document.get("signing_key") == sig.fingerprint, "names the key that signed it")
    )
    return checks, document, sig.fingerprint


def verify_receipt(
    path: Path,
    keys_dir: Path,
    engine: Engine | None = None,
    signature: Path | None = None,
    verifier: Verifier | None = None,
) -> ReceiptVerdict:
    verdict = ReceiptVerdict(path)
    signature = signature or path.with_name(path.name + ".asc")
    body = path.read_bytes()
    if not signature.exists():
        verdict.checks.append(Check("signature", False, f"no signature file {signature.name} beside the receipt"))
        return verdict
    if verifier is None:
        with Verifier(read_history(keys_dir), keys_dir) as own:
            checks, document, verdict.fingerprint = check_signed_document(body, signature.read_bytes(), own, RECEIPT_TYPE)
    else:
        checks, document, verdict.fingerprint = check_signed_document(body, signature.read_bytes(), verifier, RECEIPT_TYPE)
    verdict.checks.extend(checks)
    if document is None:
        return verdict
    report_sha = document.get("rejection_report_sha256")
    stem = path.name.removesuffix(".receipt.json")
    report = path.with_name(stem + ".errors.csv")
    if report_sha and report.exists():
        actual = hashlib.sha256(report.read_bytes()).hexdigest()
        verdict.checks.append(Check("rejection report", actual == report_sha, f"{report.name} matches the receipt"))
    if engine is not None:
        verdict.checks.extend(_against_store(engine, cast(ReceiptDocument, document), body))
    return verdict


def _against_store(engine: Engine, document: ReceiptDocument, body: bytes) -> list[Check]:
    checks = []
    sequence = document.get("ledger", {}).get("sequence")
    with Session(engine) as session:
        stored = session.get(Receipt, sequence)
        if stored is None:
            return [Check("ledger", False, f"no receipt {sequence} in this gateway's ledger")]
        checks.append(Check("ledger entry", stored.body.encode("utf-8") == body, f"receipt {sequence} is in the ledger"))
        previous = session.get(Receipt, sequence - 1) if sequence > 1 else None
        expected_previous = previous.sha256 if previous else "0" * 64
        checks.append(
            Check(
                "ledger chain",
                document["ledger"].get("previous_receipt_sha256") == expected_previous,
                f"links to receipt {sequence - 1}" if sequence > 1 else "first receipt of the ledger",
            )
        )
        tree = TreeBuilder()
        # a record purged under a retention rule (保存期限) counts by the leaf hash kept for it
        kept = {
            index: bytes.fromhex(hex_hash)
            for index, hex_hash in session.execute(
                select(col(RetentionPurge.leaf_index), col(RetentionPurge.leaf_hash)).where(
                    col(RetentionPurge.exchange_id) == document["exchange_id"], col(RetentionPurge.kind) == "record"
                )
            ).all()
            if index is not None and hex_hash
        }
        rows = session.execute(
            select(col(Record.leaf_index), col(Record.payload))
            .where(col(Record.exchange_id) == document["exchange_id"]).order_by(col(Record.leaf_index))
        ).all()
        for index, payload in rows:
            if index in kept:
                tree.append_leaf_hash(kept[index])
            else:
                tree.append(payload.encode("utf-8"))
        merkle = document.get("merkle", {})
        purged = f" ({len(kept)} purged under a retention rule, by their kept leaf hashes)" if kept else ""
        checks.append(
            Check(
                "merkle root",
                merkle.get("root") == tree.root().hex() and merkle.get("size") == tree.size,
                f"{tree.size} stored records give the signed root{purged}",
            )
        )
    return checks
