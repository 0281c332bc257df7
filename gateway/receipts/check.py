"""`gateway receipts verify`: is this receipt genuine, and does it agree with what the
gateway stored? Signature first (offline, key history only), then every figure that can
be recomputed: canonical form, signing key, Merkle root over the stored records, the
ledger link to the previous receipt, and the rejection report beside it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session

from contracts import canonical_json

from ..store.models import Receipt, Record
from .merkle import TreeBuilder
from .signing import read_history
from .verify import verify_detached


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


def verify_receipt(path: Path, keys_dir: Path, engine: Engine | None = None, signature: Path | None = None) -> ReceiptVerdict:
    verdict = ReceiptVerdict(path)
    signature = signature or path.with_name(path.name + ".asc")
    body = path.read_bytes()
    if not signature.exists():
        verdict.checks.append(Check("signature", False, f"no signature file {signature.name} beside the receipt"))
        return verdict
    sig = verify_detached(body, signature.read_bytes(), read_history(keys_dir), keys_dir)
    verdict.fingerprint = sig.fingerprint
    detail = f"good signature by {sig.fingerprint}" if sig.genuine else "; ".join(sig.problems)
    verdict.checks.append(Check("signature", sig.genuine, detail))
    if not sig.genuine:
        return verdict
    try:
        document = json.loads(body)
    except ValueError as exc:
        verdict.checks.append(Check("canonical form", False, f"not JSON: {exc}"))
        return verdict
    verdict.checks.append(Check("canonical form", canonical_json(document) == body, "bytes are canonical JSON"))
    verdict.checks.append(
        Check("signing key", document.get("signing_key") == sig.fingerprint, "receipt names the key that signed it")
    )
    report_sha = document.get("rejection_report_sha256")
    stem = path.name.removesuffix(".receipt.json")
    report = path.with_name(stem + ".errors.csv")
    if report_sha and report.exists():
        actual = hashlib.sha256(report.read_bytes()).hexdigest()
        verdict.checks.append(Check("rejection report", actual == report_sha, f"{report.name} matches the receipt"))
    if engine is not None:
        verdict.checks.extend(_against_store(engine, document, body))
    return verdict


def _against_store(engine: Engine, document: dict, body: bytes) -> list[Check]:
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
        payloads = session.execute(
            select(Record.payload).where(Record.exchange_id == document["exchange_id"]).order_by(Record.leaf_index)
        ).scalars()
        for payload in payloads:
            tree.append(payload.encode("utf-8"))
        merkle = document.get("merkle", {})
        checks.append(
            Check(
                "merkle root",
                merkle.get("root") == tree.root().hex() and merkle.get("size") == tree.size,
                f"{tree.size} stored records give the signed root",
            )
        )
    return checks
