"""Manifests (清单文件): for a department whose `[arrival]` rule is `manifest`, each drop
`NAME` comes with `NAME.sha256`, the line `sha256sum NAME` prints (`<64 hex>  NAME`).

* `NAME.sha256` files are never drops themselves in such a department.
* A drop without its manifest is held (logged once), however long it sits.
* A drop with its manifest is taken at once, with no settle wait; if its staged bytes do
  not hash to the manifest's digest it is not complete yet (still being written, or the
  manifest came first): it stays in the inbox and is tried again on the next poll.
* The manifest moves with its drop into processed/ or rejected/.

Intake may import: the transports' FoundFile. Nothing else."""

from __future__ import annotations

import re

from gateway.intake.transports.base import FoundFile

MANIFEST_SUFFIX = ".sha256"
MAX_MANIFEST_BYTES = 4096
_DIGEST = re.compile(rb"^\s*([0-9a-fA-F]{64})\b")


def is_manifest(found: FoundFile) -> bool:
    return found.kind == "file" and found.name.lower().endswith(MANIFEST_SUFFIX)


def split(listing: list[FoundFile]) -> tuple[list[FoundFile], set[str]]:
    """The drops of a listing, and the names (without `.sha256`) that have a manifest."""
    manifests = {f.name[: -len(MANIFEST_SUFFIX)] for f in listing if is_manifest(f)}
    return [f for f in listing if not is_manifest(f)], manifests


def manifest_for(found: FoundFile) -> FoundFile:
    return FoundFile(found.department, found.name + MANIFEST_SUFFIX, found.path + MANIFEST_SUFFIX, 0, 0.0)


def digest_in(data: bytes) -> str | None:
    """The sha256 a manifest names (lower case), or None when it names none."""
    match = _DIGEST.match(data[:MAX_MANIFEST_BYTES])
    return match.group(1).decode("ascii").lower() if match else None


__all__ = ["MANIFEST_SUFFIX", "digest_in", "is_manifest", "manifest_for", "split"]
