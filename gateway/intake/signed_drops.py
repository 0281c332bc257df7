"""Signed drops: a department whose public key is registered (`gateway keys import`) must
sign each file it drops with a detached signature `NAME.asc` beside `NAME`.

* `NAME.asc` files are never taken as drops themselves, for any department.
* A drop whose signature has not arrived waits `signature_wait_seconds` (default one
  hour, counted from the file's modification time), then is refused with a receipt
  saying why. Upload `NAME.asc` first, then `NAME`, and nothing waits.
* A signature that is not a good one by a registered key of that department (wrong key,
  changed bytes, revoked or expired key) is refused at once.
* The signature moves with its drop into processed/ or rejected/.

The check runs on the staged bytes, the very bytes the gateway goes on to read.
Drops of departments without a registered key are taken as before (a `NAME.asc` beside
one still moves along with it, unchecked). `gateway ingest` (by hand) is not checked.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.errors import FileRejected, GatewayError, TransportError
from gateway.receipts.keys import DepartmentKeys
from gateway.intake.transports import FoundFile
from gateway.masking import mask_file_name, mask_file_path

if TYPE_CHECKING:
    from gateway.intake.transports.base import Mailboxes

log = logging.getLogger("gateway")

SIGNATURE_SUFFIX = ".asc"
MAX_SIGNATURE_BYTES = 64 * 1024
DEFAULT_WAIT_SECONDS = 3600.0
# Bilingual reasons for the rejection report and the receipt (merged into FILE_REASONS).
REASONS: dict[str, tuple[str, str]] = {
    "signature_missing": ("未收到文件的数字签名(NAME.asc)", "the file's detached signature (NAME.asc) did not arrive"),
    "signature_bad": ("数字签名无效,不是该部门登记的密钥所签", "the signature is not a good one by the department's registered key"),
}


def is_signature(found: FoundFile) -> bool:
    return found.kind == "file" and found.name.lower().endswith(SIGNATURE_SUFFIX)


class SignedDrops:
    """The signed-drop rules of one gateway (see the module docstring)."""

    def __init__(self, gateway: Mailboxes):
        self.gateway = gateway
        self.keys = DepartmentKeys(gateway.settings.keys_dir)

    @property
    def wait_seconds(self) -> float:
        return float(getattr(self.gateway.settings, "signature_wait_seconds", DEFAULT_WAIT_SECONDS))

    def ready(self, department: str, listed: list[FoundFile], now: float | None = None) -> list[FoundFile]:
        """The inbox listing without signature files, and without drops still waiting for theirs."""
        now = time.time() if now is None else now
        signatures = {f.name[: -len(SIGNATURE_SUFFIX)] for f in listed if is_signature(f)}
        files = [f for f in listed if not is_signature(f)]
        try:
            registered = self.keys.for_department(department)
        except GatewayError as exc:  # a damaged registry: take nothing from this department
            log.error("inbox of %s not taken this pass: %s", department, exc)
            return []
        if not registered:
            return files
        wait = self.wait_seconds
        taken = []
        for found in files:
            if found.kind != "file" or found.name in signatures or now - found.mtime >= wait:
                taken.append(found)
            else:
                log.debug("%s: waiting up to %.0fs for its signature (.asc)", mask_file_path(found.path), wait)
        return taken

    def check(self, found: FoundFile, staged: Path, at: tuple[str, str] | None = None) -> FileRejected | None:
        """None when the department signs nothing or the signature is good; else why not.
        `at` (folder, name): the file lies there, not in the inbox (a reprocessed file in
        rejected/), and so does its NAME.asc."""
        verifier = self.keys.verifier(found.department)
        if verifier is None:
            return None
        expected = ", ".join(k.fingerprint for k in self.keys.for_department(found.department))
        with verifier:
            transport = self.gateway.transport_for(found.department)
            folder, stem = at if at is not None else ("inbox", found.name)
            name = stem + SIGNATURE_SUFFIX
            if not transport.exists(found.department, folder, name):
                return FileRejected(
                    "signature_missing",
                    f"no {mask_file_name(name)} arrived within {self.wait_seconds:.0f}s; expected a detached signature by {expected}",
                )
            scratch = self.gateway.settings.staging_dir / f"{uuid.uuid4().hex}.asc"
            try:
                if at is None:
                    transport.stage(FoundFile(found.department, name, found.path + SIGNATURE_SUFFIX, 0, 0.0), scratch)
                else:
                    transport.fetch(found.department, folder, name, scratch)
                if scratch.stat().st_size > MAX_SIGNATURE_BYTES:
                    return FileRejected("signature_bad", f"{mask_file_name(name)} is larger than a signature can be")
                verdict = verifier.verify(staged, scratch.read_bytes())
            except TransportError:
                raise  # the mailbox is unreachable: the next pass tries again
            except OSError as exc:  # not a regular file (a symlink is never followed)
                return FileRejected("signature_bad", f"{mask_file_name(name)} cannot be read as a signature file: {exc.strerror}")
            finally:
                scratch.unlink(missing_ok=True)
        if not verdict.genuine:
            return FileRejected("signature_bad", f"{mask_file_name(name)}: {'; '.join(verdict.problems)}; expected a signature by {expected}")
        log.info("%s: good signature by %s", mask_file_path(found.path), verdict.fingerprint)
        return None

    def archive_signature(self, found: FoundFile, folder: str, name: str) -> None:
        """Move NAME.asc beside its drop (called before the drop moves, so a crash in
        between leaves no lone signature in the inbox)."""
        transport = self.gateway.transport_for(found.department)
        signature = found.name + SIGNATURE_SUFFIX
        if found.path.startswith("/") or not transport.exists(found.department, "inbox", signature):
            return
        transport.archive(
            FoundFile(found.department, signature, found.path + SIGNATURE_SUFFIX, 0, 0.0), folder, name + SIGNATURE_SUFFIX
        )
