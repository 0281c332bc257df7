"""Receipt verification from uploaded files and record proofs for download: the same
checks as `gateway receipts verify` and `gateway receipts prove` (gateway/receipts/)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import HTTPException, UploadFile
from pydantic import BaseModel
from sqlalchemy import Engine

from gateway.masking import mask_file_name, scrub_message
from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.receipts.check import verify_receipt

MAX_UPLOAD_BYTES = 1 << 20  # a receipt is about 1 KB; its signature under 1 KB


class CheckResult(BaseModel):
    name: str
    ok: bool
    detail: str


class Verification(BaseModel):
    """Whether an uploaded receipt is genuine, by which key, at which ledger position."""

    genuine: bool
    file_name: str
    key_fingerprint: str | None
    receipt_id: str | None
    ledger_sequence: int | None
    exchange_id: int | None
    department: str | None
    checks: list[CheckResult]


def _safe_name(name: str | None) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name or "").name)[:120].lstrip(".")
    if not cleaned.endswith(".receipt.json"):
        cleaned = (cleaned or "uploaded") + ".receipt.json"
    return cleaned


def _document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


async def read_receipt_upload(receipt: UploadFile, signature: UploadFile) -> tuple[bytes, bytes]:
    """The uploaded receipt and signature, refused (413) past MAX_UPLOAD_BYTES without
    reading further: the page's form and the API take the same upload."""
    body, asc = await receipt.read(MAX_UPLOAD_BYTES + 1), await signature.read(MAX_UPLOAD_BYTES + 1)
    if len(body) > MAX_UPLOAD_BYTES or len(asc) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, "A receipt and its signature are a few kilobytes; this upload is over 1 MiB.")
    return body, asc


def verify_upload(settings: Settings, engine: Engine, file_name: str | None, body: bytes, signature: bytes) -> Verification:
    """Verify a receipt and its detached signature as uploaded: the signature against the
    gateway's key history (HOME/keys), then every figure against the ledger in the database."""
    name = _safe_name(file_name)
    with tempfile.TemporaryDirectory(prefix="gwconsole-") as scratch:
        path = Path(scratch) / name
        path.write_bytes(body)
        path.with_name(name + ".asc").write_bytes(signature)
        try:
            verdict = verify_receipt(path, settings.keys_dir, engine)
            checks = [CheckResult(name=c.name, ok=c.ok, detail=c.detail) for c in verdict.checks]
            fingerprint = verdict.fingerprint
            genuine = verdict.genuine
        except (GatewayError, OSError, ValueError, UnicodeError) as exc:
            checks = [CheckResult(name="verification", ok=False, detail=f"cannot verify: {scrub_message(str(exc))}")]
            fingerprint, genuine = None, False
    document = _document(body) if genuine else {}
    ledger = document.get("ledger") if isinstance(document.get("ledger"), dict) else {}
    sequence = ledger.get("sequence") if isinstance(ledger.get("sequence"), int) else None
    exchange_id = document.get("exchange_id") if isinstance(document.get("exchange_id"), int) else None
    return Verification(
        genuine=genuine, file_name=mask_file_name(name), key_fingerprint=fingerprint if genuine else None,
        receipt_id=document.get("receipt_id") if isinstance(document.get("receipt_id"), str) else None,
        ledger_sequence=sequence, exchange_id=exchange_id,
        department=document.get("department") if isinstance(document.get("department"), str) else None,
        checks=checks,
    )


PURGED_HEADER = "X-Gateway-Record-Purged"
"""On a purged record's proof download: "purged on DATE under rule RULE" (the file's
`record.purged.note` says it in Chinese first)."""


def proof_document(engine: Engine, exchange_id: int, leaf_index: int | None, row: int | None) -> dict[str, Any]:
    """The record proof of `gateway receipts prove` (gateway/receipts/proofs.py)."""
    from gateway.receipts.proofs import build_proof

    if leaf_index is None and row is None:
        leaf_index = 0
    return build_proof(engine, exchange_id, leaf_index=leaf_index, row=row)


def proof_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
