"""The receipt document (回执): canonical JSON, signed detached.

Fields are fixed by DESIGN.md. Its bytes are reproducible from the database, so a lost
outbox copy can be written again identically.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from contracts import canonical_json

from gateway.store.models import Exchange
from gateway.receipts.documents import ReceiptDocument

RECEIPT_TYPE = "gateway.exchange-receipt"
RECEIPT_VERSION = "1"
GENESIS = "0" * 64
MERKLE_ALGORITHM = "RFC6962-SHA256"


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat()


def receipt_document(
    exchange: Exchange,
    *,
    sequence: int,
    previous_sha256: str,
    key_fingerprint: str,
    merkle_root: str,
    merkle_size: int,
    report_sha256: str | None,
    contracts: dict[str, str],
) -> ReceiptDocument:
    document: ReceiptDocument = {
        "type": RECEIPT_TYPE,
        "receipt_version": RECEIPT_VERSION,
        "receipt_id": f"R{sequence:08d}",
        "exchange_id": exchange.id,
        "department": exchange.department,
        "file_name": exchange.file_name,
        "file_sha256": exchange.sha256,
        "file_size": exchange.size,
        "adapter": exchange.adapter,
        "status": exchange.status,
        "duplicate_of": exchange.duplicate_of,
        "reason": exchange.reason,
        "received_at": _iso(exchange.received_at),
        "processed_at": _iso(exchange.processed_at),
        "counts": {
            "rows": exchange.rows,
            "accepted": exchange.accepted,
            "rejected": exchange.rejected,
            "duplicate": exchange.duplicates,
            "corrected": exchange.corrected,
        },
        "contracts": contracts,
        "merkle": {"algorithm": MERKLE_ALGORITHM, "root": merkle_root, "size": merkle_size},
        "ledger": {"sequence": sequence, "previous_receipt_sha256": previous_sha256},
        "rejection_report_sha256": report_sha256,
        "signing_key": key_fingerprint,
    }
    if exchange.supersedes is not None:
        # This file's earlier content changed in the inbox after it was taken; this
        # exchange is its new content (older receipts, without the field, keep their bytes).
        document["supersedes"] = exchange.supersedes
    return document


def receipt_bytes(document: ReceiptDocument) -> bytes:
    return canonical_json(document)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
