"""Keys: the gateway's key rotation (with a handover signed by both keys) and the
departments' public keys (pinned by full fingerprint).

Key history (HOME/keys/history.json) lists every gateway signing key with its window
(`valid_from`, `valid_until`). A rotation closes the old key's window and opens the new
one at the same second, and writes a handover statement under HOME/keys/handovers/
signed by both keys, so an officer who trusts only the first published key can follow
the chain to the current one.

Departments' keys live under HOME/keys/departments/: one public key file per key and
`registry.json` naming each key's department and full fingerprint. A drop from a
department that has a registered key must be signed by one of its keys.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gnupg

from contracts import canonical_json

from gateway.errors import GatewayError
from gateway.receipts.signing import KeyEntry, Signer, gpg_binary, read_history, write_history
from gateway.receipts.verify import Verifier

log = logging.getLogger("gateway")

HANDOVER_TYPE = "gateway.key-handover"
HANDOVERS = "handovers"
DEPARTMENTS = "departments"
REGISTRY_FILE = "registry.json"
_FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")
# Department keys have no window of their own: registered means trusted, removed means not.
_ALWAYS = "1970-01-01T00:00:00+00:00"


class KeyProblem(GatewayError):
    """A key cannot be imported, found or rotated; the message says what to do."""


def normalize_fingerprint(value: str) -> str:
    fingerprint = value.replace(" ", "").upper()
    if not _FINGERPRINT.match(fingerprint):
        raise KeyProblem(f"{value!r} is not a full fingerprint (40 hex digits); see `gpg --show-keys --with-fingerprint FILE`")
    return fingerprint


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()


# -- rotation ------------------------------------------------------------------------


@dataclass
class Rotation:
    old: str
    new: str
    at: str
    statement: Path
    old_secret_deleted: bool


def handover_name(old: str, new: str) -> str:
    return f"handover-{old[-16:]}-{new[-16:]}.json"


def handover_document(old: str, new: str, at: str) -> bytes:
    return canonical_json(
        {"type": HANDOVER_TYPE, "version": "1", "old_fingerprint": old, "new_fingerprint": new, "time": at}
    )


def rotate(gnupg_dir: Path, keys_dir: Path, passphrase: str | None, *, keep_old_secret: bool = False) -> Rotation:
    """Make a new signing key and hand over to it.

    Order matters for a crash: the new key and the signed handover are written first,
    the history (which switches signing to the new key) last and atomically, and the
    old private key is deleted only after that.
    """
    entries = read_history(keys_dir)
    open_entries = [entry for entry in entries if entry.valid_until is None]
    if len(open_entries) != 1 or open_entries[0] is not entries[-1]:
        raise KeyProblem(f"{keys_dir / 'history.json'} must end with exactly one current key (no valid_until)")
    old = open_entries[0]
    signer = Signer(gnupg_dir, keys_dir, passphrase)
    try:
        new_fpr, key_file = signer.generate_key()
        # The handover second: the next whole second, so that a receipt the old key
        # signs during this call (seconds are truncated in signatures) is still inside
        # its window, and no signature by the old key can be dated after it.
        at = dt.datetime.fromtimestamp(math.floor(time.time()) + 1, dt.UTC)
        statement = handover_document(old.fingerprint, new_fpr, at.isoformat())
        folder = keys_dir / HANDOVERS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / handover_name(old.fingerprint, new_fpr)
        _write_atomic(path.with_name(path.name + ".old.asc"), signer.sign(statement, old.fingerprint).encode("ascii"))
        _write_atomic(path.with_name(path.name + ".new.asc"), signer.sign(statement, new_fpr).encode("ascii"))
        _write_atomic(path, statement)
        old.valid_until = at.isoformat()
        entries.append(KeyEntry(new_fpr, key_file, valid_from=at.isoformat()))
        write_history(keys_dir, entries)
        deleted = False
        if not keep_old_secret:
            result = signer.gpg.delete_keys(
                old.fingerprint, secret=True, passphrase=passphrase, expect_passphrase=bool(passphrase)
            )
            deleted = str(result.status) == "ok"
            if not deleted:
                log.warning(
                    "the retired key %s is still in %s (%s); delete it with gpg --homedir %s --delete-secret-keys %s",
                    old.fingerprint, gnupg_dir, result.status, gnupg_dir, old.fingerprint,
                )
    finally:
        signer.close()
    log.info("signing key rotated: %s -> %s at %s", old.fingerprint, new_fpr, at.isoformat())
    return Rotation(old.fingerprint, new_fpr, at.isoformat(), path, deleted)


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def check_history(keys_dir: Path, verifier: Verifier | None = None) -> list[str]:
    """Problems with the key history: windows must follow one another without gap or
    overlap, and every change of key needs a handover statement signed by both keys
    (each inside its window). Empty when all is well."""
    entries = read_history(keys_dir)
    problems: list[str] = []
    if not entries:
        return ["the key history lists no key"]
    own = verifier is None
    verifier = verifier or Verifier(entries, keys_dir)
    try:
        seen: set[str] = set()
        for entry in entries:
            if not _FINGERPRINT.match(entry.fingerprint):
                problems.append(f"{entry.fingerprint!r} is not a full fingerprint")
            if entry.fingerprint in seen:
                problems.append(f"key {entry.fingerprint} is listed twice")
            seen.add(entry.fingerprint)
            if entry.valid_until and dt.datetime.fromisoformat(entry.valid_until) < dt.datetime.fromisoformat(entry.valid_from):
                problems.append(f"key {entry.fingerprint} closes before it opens")
        for entry in entries[:-1]:
            if entry.valid_until is None:
                problems.append(f"key {entry.fingerprint} is not the last key but its window is still open")
        for old, new in zip(entries, entries[1:]):
            if old.valid_until != new.valid_from:
                problems.append(f"key {new.fingerprint} does not start when {old.fingerprint} ends")
                continue
            path = keys_dir / HANDOVERS / handover_name(old.fingerprint, new.fingerprint)
            expected = handover_document(old.fingerprint, new.fingerprint, new.valid_from)
            try:
                body = path.read_bytes()
                signatures = [path.with_name(path.name + suffix).read_bytes() for suffix in (".old.asc", ".new.asc")]
            except OSError:
                problems.append(f"no handover statement {HANDOVERS}/{path.name} for the change to {new.fingerprint}")
                continue
            if body != expected:
                problems.append(f"{HANDOVERS}/{path.name} does not state this handover")
                continue
            for signer_fpr, signature in zip((old.fingerprint, new.fingerprint), signatures):
                verdict = verifier.verify(body, signature)
                if not verdict.genuine or verdict.fingerprint != signer_fpr:
                    why = "; ".join(verdict.problems) or f"signed by {verdict.fingerprint}"
                    problems.append(f"{HANDOVERS}/{path.name}: no good signature by {signer_fpr}: {why}")
    finally:
        if own:
            verifier.close()
    return problems


# -- departments' keys ---------------------------------------------------------------


@dataclass
class DepartmentKey:
    department: str
    fingerprint: str
    public_key_file: str
    added_at: str

    def as_entry(self) -> KeyEntry:
        return KeyEntry(self.fingerprint, self.public_key_file, valid_from=_ALWAYS)


class DepartmentKeys:
    """HOME/keys/departments/: the registry of departments' public keys."""

    def __init__(self, keys_dir: Path):
        self.folder = keys_dir / DEPARTMENTS
        self._cache: tuple[tuple[int, int] | None, list[DepartmentKey]] | None = None

    @property
    def registry(self) -> Path:
        return self.folder / REGISTRY_FILE

    def all(self) -> list[DepartmentKey]:
        """Every registered key; read again only when the registry file changed."""
        try:
            info = self.registry.stat()
            stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            stamp = None
        if self._cache is None or self._cache[0] != stamp:
            keys: list[DepartmentKey] = []
            if stamp is not None:
                try:
                    data = json.loads(self.registry.read_text(encoding="utf-8"))
                    keys = [DepartmentKey(**item) for item in data["keys"]]
                except (ValueError, KeyError, TypeError) as exc:
                    raise KeyProblem(f"{self.registry} is damaged ({exc}); restore it from backup") from exc
            self._cache = (stamp, keys)
        return list(self._cache[1])

    def for_department(self, department: str) -> list[DepartmentKey]:
        return [key for key in self.all() if key.department == department]

    def _save(self, keys: list[DepartmentKey]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"keys": [asdict(k) for k in keys]}, ensure_ascii=False, indent=2) + "\n"
        _write_atomic(self.registry, text.encode("utf-8"))

    def import_key(self, data: bytes, department: str, fingerprint: str | None = None) -> DepartmentKey:
        """Register the public key in `data` for `department`. A file holding several
        keys is refused unless `fingerprint` picks one; only its public half is kept."""
        wanted = normalize_fingerprint(fingerprint) if fingerprint else None
        with tempfile.TemporaryDirectory(prefix="gwk-") as scratch:
            gpg = gnupg.GPG(gnupghome=scratch, gpgbinary=gpg_binary())
            imported = gpg.import_keys(data)
            listed = gpg.list_keys()
            primaries = [key["fingerprint"] for key in listed]
            if not primaries:
                raise KeyProblem(f"no OpenPGP public key found ({imported.summary() if imported else 'nothing imported'})")
            if wanted is None:
                if len(primaries) > 1:
                    raise KeyProblem(
                        f"the file holds {len(primaries)} keys ({', '.join(primaries)}); "
                        "name the department's key with --fingerprint"
                    )
                wanted = primaries[0]
            elif wanted not in primaries:
                raise KeyProblem(f"the file holds no key {wanted}; it holds {', '.join(primaries)}")
            key = next(k for k in listed if k["fingerprint"] == wanted)
            if key.get("trust") in ("r", "e") or key.get("revoked"):
                raise KeyProblem(f"key {wanted} is revoked or expired; ask the department for its current key")
            public = gpg.export_keys(wanted, minimal=True)
        if not public:
            raise KeyProblem(f"could not export key {wanted}")
        existing = self.all()
        for other in existing:
            if other.fingerprint == wanted:
                raise KeyProblem(
                    f"key {wanted} is already registered for {other.department}; "
                    f"`gateway keys remove --department {other.department} --fingerprint {wanted}` first"
                )
        file_name = f"{department}-{wanted[-16:]}.asc"
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.folder / file_name, public.encode("ascii"))
        entry = DepartmentKey(department, wanted, file_name, _iso(dt.datetime.now(dt.UTC)))
        self._save([*existing, entry])
        log.info("department %s: key %s registered; its drops must now be signed", department, wanted)
        return entry

    def remove(self, department: str, fingerprint: str | None = None) -> list[DepartmentKey]:
        keys = self.all()
        mine = [k for k in keys if k.department == department]
        if not mine:
            raise KeyProblem(f"department {department} has no registered key; see `gateway keys list`")
        if fingerprint is None:
            if len(mine) > 1:
                listed = ", ".join(k.fingerprint for k in mine)
                raise KeyProblem(f"department {department} has {len(mine)} keys ({listed}); name one with --fingerprint")
            gone = mine
        else:
            wanted = normalize_fingerprint(fingerprint)
            gone = [k for k in mine if k.fingerprint == wanted]
            if not gone:
                raise KeyProblem(f"department {department} has no key {wanted}; see `gateway keys list`")
        self._save([k for k in keys if k not in gone])
        for key in gone:
            (self.folder / key.public_key_file).unlink(missing_ok=True)
            log.info("department %s: key %s removed", department, key.fingerprint)
        return gone

    def verifier(self, department: str) -> Verifier | None:
        """A verifier trusting only this department's keys, or None when it has none."""
        keys = self.for_department(department)
        if not keys:
            return None
        return Verifier(
            [k.as_entry() for k in keys], self.folder, f"the keys registered for department {department}", strict=False
        )


__all__ = [
    "DepartmentKey",
    "DepartmentKeys",
    "KeyProblem",
    "Rotation",
    "check_history",
    "handover_document",
    "normalize_fingerprint",
    "rotate",
]

