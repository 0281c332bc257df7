"""The shapes of the gateway's signed JSON documents, for the type checker only.

A document read back with `json.loads` is untyped; the code that reads it `cast`s it to
its shape here once its signature and type have been checked, and keeps catching
`KeyError`/`TypeError` where a file from outside may lack a part.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Counts(TypedDict):
    rows: int
    accepted: int
    rejected: int
    duplicate: int
    corrected: int


class MerklePart(TypedDict):
    algorithm: str
    root: str
    size: int


class LedgerPart(TypedDict):
    sequence: int
    previous_receipt_sha256: str


class ReceiptDocument(TypedDict):
    """A receipt (回执), field for field as `receipt.receipt_document` writes it."""

    type: str
    receipt_version: str
    receipt_id: str
    exchange_id: int | None
    department: str
    file_name: str
    file_sha256: str
    file_size: int
    adapter: str | None
    status: str
    duplicate_of: int | None
    reason: str | None
    received_at: str | None
    processed_at: str | None
    counts: Counts
    contracts: dict[str, str]
    merkle: MerklePart
    ledger: LedgerPart
    rejection_report_sha256: str | None
    signing_key: str
    supersedes: NotRequired[int]


class ProofPurged(TypedDict):
    """A record purged under a retention rule (保存期限): its payload is gone, its leaf hash kept."""

    on: str
    rule: str
    leaf_hash: str
    record_hash: str
    note: str
    """"已于 … 按规则 … 清除 / purged on … under rule …", for whoever opens the file"""


class ProofRecord(TypedDict):
    leaf_index: int
    row_number: int
    contract: str
    payload: str
    """the record in full; empty when purged"""
    purged: NotRequired[ProofPurged]


class ProofMerkle(TypedDict):
    algorithm: str
    tree_size: int
    root: str | None
    audit_path: list[str]


class SignedPart(TypedDict):
    body: str
    signature: str


class ProofReceipt(SignedPart):
    receipt_id: str


class ProofCheckpoint(SignedPart):
    name: str


class ProofLedger(TypedDict):
    leaf_index: int
    audit_path: list[str]
    checkpoint: ProofCheckpoint


class ProofDocument(TypedDict):
    """A record proof, as `proofs.build_proof` writes it."""

    type: str
    version: str
    exchange_id: int
    record: ProofRecord
    merkle: ProofMerkle
    receipt: ProofReceipt
    ledger: ProofLedger | None


class CheckpointRef(TypedDict):
    checkpoint: str
    tree_size: int
    root: str


class ConsistencyDocument(TypedDict):
    """A consistency proof between two checkpoints in a ledger export."""

    type: str
    old: CheckpointRef
    new: CheckpointRef
    proof: list[str]


class ExportManifest(TypedDict):
    type: str
    exported_at: str
    receipts: int
    checkpoints: int
    latest_checkpoint: str | None
    keys: list[str]


class CheckpointDocument(TypedDict):
    """A signed checkpoint of the ledger, as `ledger.make_checkpoint` writes it."""

    type: str
    version: str
    tree_size: int
    root: str
    time: str
    signing_key: str
