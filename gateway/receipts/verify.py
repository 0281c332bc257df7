"""Offline verification of a signed receipt.

The trusted fingerprints come from the gateway's own key history, never from the receipt.
gpg runs in a fresh, isolated keyring holding only those public keys, and exactly one
good signature by a trusted key is demanded.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gnupg

from .signing import KeyEntry, gpg_binary


@dataclass
class SignatureVerdict:
    genuine: bool
    fingerprint: str | None = None
    signed_at: dt.datetime | None = None
    problems: list[str] = field(default_factory=list)


def _key_valid_at(entry: KeyEntry, when: dt.datetime) -> bool:
    start = dt.datetime.fromisoformat(entry.valid_from)
    end = dt.datetime.fromisoformat(entry.valid_until) if entry.valid_until else None
    return start - dt.timedelta(minutes=5) <= when and (end is None or when <= end)


def verify_detached(data: bytes, signature: bytes, keys: list[KeyEntry], keys_dir: Path) -> SignatureVerdict:
    trusted = {entry.fingerprint: entry for entry in keys}
    with tempfile.TemporaryDirectory(prefix="gwv-") as scratch:
        gpg = gnupg.GPG(gnupghome=scratch, gpgbinary=gpg_binary())
        for entry in keys:
            imported = gpg.import_keys((keys_dir / entry.public_key_file).read_text(encoding="ascii"))
            if entry.fingerprint not in (imported.fingerprints or []):
                return SignatureVerdict(False, problems=[f"public key file {entry.public_key_file} does not hold key {entry.fingerprint}"])
        sig_path = Path(scratch) / "receipt.asc"
        sig_path.write_bytes(signature)
        result = gpg.verify_data(str(sig_path), data)
    problems = [f"{p.get('status')} (key {p.get('keyid') or p.get('fingerprint')})" for p in result.problems]
    good = [info for info in result.sig_info.values() if info.get("status") == "signature valid"]
    if problems or len(good) != 1 or not result.valid:
        if not problems:
            problems = [f"expected exactly one good signature, found {len(good)} ({result.status or 'no signature'})"]
        return SignatureVerdict(False, problems=problems)
    primary = good[0].get("pubkey_fingerprint") or good[0].get("fingerprint")
    signed_at = dt.datetime.fromtimestamp(int(good[0]["timestamp"]), dt.UTC)
    entry = trusted.get(primary)
    if entry is None:
        return SignatureVerdict(False, primary, signed_at, [f"signed by {primary}, which is not in the gateway's key history"])
    if not _key_valid_at(entry, signed_at):
        return SignatureVerdict(False, primary, signed_at, [f"key {primary} was not valid at {signed_at.isoformat()}"])
    return SignatureVerdict(True, primary, signed_at)
