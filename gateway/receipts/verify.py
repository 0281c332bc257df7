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

from gateway.receipts.signing import KeyEntry, gpg_binary
from gateway.receipts.strict import SignatureForm, StrictSignature, parse_strict


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


class Verifier:
    """An isolated, throw-away keyring holding only the trusted keys' public halves.

    Import once, verify many (a ledger holds thousands of receipts). Use as a context
    manager; `verify_detached` is the one-shot form.
    """

    def __init__(
        self, keys: list[KeyEntry], keys_dir: Path, source: str = "the gateway's key history", *, strict: bool = True
    ):
        """`strict`: demand the exact form gpg gives the gateway's own signatures (see
        `strict.py`); off for signatures made by other tools (departments' drops)."""
        self.trusted, self.source, self.strict = {entry.fingerprint: entry for entry in keys}, source, strict
        self._scratch = tempfile.TemporaryDirectory(prefix="gwv-")
        self._gpg = gnupg.GPG(gnupghome=self._scratch.name, gpgbinary=gpg_binary())
        self.problem: str | None = None if keys else "no trusted keys"
        for entry in keys:
            path = keys_dir / entry.public_key_file
            try:
                imported = self._gpg.import_keys(path.read_text(encoding="ascii"))
            except (OSError, ValueError) as exc:
                self.problem = f"cannot read public key file {path}: {exc}"
                break
            if entry.fingerprint not in (imported.fingerprints or []):
                self.problem = f"public key file {entry.public_key_file} does not hold key {entry.fingerprint}"
                break

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._scratch.cleanup()

    def verify(self, data: bytes | Path, signature: bytes) -> SignatureVerdict:
        """Demand exactly one good signature over `data` (bytes, or a file too big to
        hold) by a trusted key that was valid at the signature's time."""
        if self.problem:
            return SignatureVerdict(False, problems=[self.problem])
        form: StrictSignature | None = None
        if self.strict:
            try:
                form = parse_strict(signature)
            except SignatureForm as exc:
                return SignatureVerdict(False, problems=[f"not a signature in the gateway's form: {exc}"])
        sig_path = Path(self._scratch.name) / "detached.asc"
        sig_path.write_bytes(signature)
        if isinstance(data, Path):
            result = self._gpg.verify_file(str(sig_path), data_filename=str(data))
        else:
            result = self._gpg.verify_data(str(sig_path), data)
        sig_path.unlink()
        problems = [f"{p.get('status')} (key {p.get('keyid') or p.get('fingerprint')})" for p in result.problems]
        good = [info for info in result.sig_info.values() if info.get("status") == "signature valid"]
        if problems or len(good) != 1 or not result.valid:
            if not problems:
                problems = [f"expected exactly one good signature, found {len(good)} ({result.status or 'no signature'})"]
            return SignatureVerdict(False, problems=problems)
        primary = good[0].get("pubkey_fingerprint") or good[0].get("fingerprint")
        if form is not None and not str(good[0].get("fingerprint", "")).endswith(form.key_id):
            return SignatureVerdict(False, primary, problems=[f"the signature names key ID {form.key_id}, not the key that made it"])
        if form is not None and not form.digest_matches(data):
            return SignatureVerdict(False, primary, problems=["the signature's digest check bytes do not match the data"])
        signed_at = dt.datetime.fromtimestamp(int(good[0]["timestamp"]), dt.UTC)
        entry = self.trusted.get(primary)
        if entry is None:
            return SignatureVerdict(False, primary, signed_at, [f"signed by {primary}, which is not in {self.source}"])
        if not _key_valid_at(entry, signed_at):
            window = f"{entry.valid_from} to {entry.valid_until or 'now'}"
            return SignatureVerdict(
                False, primary, signed_at, [f"key {primary} was not valid at {signed_at.isoformat()} (valid {window})"]
            )
        return SignatureVerdict(True, primary, signed_at)


def verify_detached(data: bytes | Path, signature: bytes, keys: list[KeyEntry], keys_dir: Path) -> SignatureVerdict:
    with Verifier(keys, keys_dir) as verifier:
        return verifier.verify(data, signature)
