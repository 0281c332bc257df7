"""Arrival (到达判定): when a file in an inbox has finished arriving and may be taken.

A file is never taken the first time it is seen. Its size and modification time (at the
resolution the transport gives: SFTP v3 reports whole seconds) must stay the same across
observations at least `settle_seconds` apart, and observations are remembered from one
poll to the next, per inbox file. How long it must stay the same depends on what is known
of how it arrived:

* **arrived by rename** — an earlier listing showed it as `NAME.part`, `NAME.filepart` or
  `NAME.tmp` (WinSCP, FileZilla with its option, `sftp` with `put NAME.part` + `rename`):
  the rename is the end of the upload, so `settle_seconds` is enough (for a department
  whose `[arrival]` rule is `rename`, no wait at all);
* **looks complete for its format** — a CSV whose last byte is a line end, an XML file
  whose root element is closed, JSON whose last character closes it, a zip (XLSX) with
  its end-of-central-directory record: `settle_seconds`;
* **anything else** (a CSV cut mid-line, XML not yet closed, a zip without its central
  directory, a format it cannot judge): `arrival_wait_seconds` (default 60 s), longer
  than the pauses of a slow OpenSSH upload (bursts of ~255 KB with 2–32 s between them).
  On the local mailbox, whose modification times come from this machine's own clock, a
  file last written at least that long ago is taken once it is seen unchanged after
  `settle_seconds` (a file copied in an hour ago and found by `gateway run --once`).

What slips through — a burst that happens to end on a line end, a client paused for
longer than the wait — is caught afterwards (gateway/exchange/lifecycle.py): a file taken
on the short settle alone is receipted but stays in the inbox until quiet for the full
wait (`taken_early`, `defer`), its staged bytes kept; a file is hashed again just before
it is archived; and content that changed becomes a new exchange superseding the first,
while the archive keeps exactly the bytes the first receipt signs.

`settle_seconds = 0` turns all waiting off (a mailbox written only by rename, and the
tests). For a department whose `[arrival]` rule is `manifest`, the caller passes only the
drops whose `NAME.sha256` is listed (gateway/intake/manifests.py), and each is ready at
once: the manifest's digest, checked on the staged bytes, says whether it is complete.

Intake may import: the transports' FoundFile, the settings' numbers. Nothing else."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.intake.names import shown
from gateway.intake.transports.base import FoundFile, TEMPORARY_SUFFIXES

log = logging.getLogger("gateway.intake.arrival")

DEFAULT_WAIT_SECONDS = 60.0
RENAME_SUFFIXES = (".part", ".filepart", ".tmp")
HEAD_BYTES = 4096
TAIL_BYTES = 65_557  # the end-of-central-directory record with the longest comment
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
ZIP_SUFFIXES = (".xlsx", ".xlsm", ".zip", ".docx", ".ods")

_XML_PROLOGUE = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>|\s)*<([^\s>/?!]+)", re.DOTALL)


def looks_complete(name: str, head: bytes, tail: bytes, size: int) -> bool | None:
    """True when the file's ends are those of a whole file of its format, False when they
    are not, None for a format this cannot judge."""
    lowered = name.lower()
    if size == 0:
        return False
    if lowered.endswith(CSV_SUFFIXES):
        return tail.endswith(b"\n")
    if lowered.endswith(".json"):
        return tail.rstrip().endswith((b"}", b"]"))
    if lowered.endswith(".xml"):
        text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
        match = _XML_PROLOGUE.match(text)
        if match is None:
            return False
        root = match.group(1)
        end = tail.rstrip()
        if re.search(rb"</" + re.escape(root) + rb"\s*>$", end):
            return True
        return size <= len(head) and bool(re.match(rb"<" + re.escape(root) + rb"[^>]*/>$", text[match.start(1) - 1 :].rstrip()))
    if lowered.endswith(ZIP_SUFFIXES):
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return False
        comment = int.from_bytes(tail[at + 20 : at + 22], "little")
        return at + 22 + comment == len(tail)
    return None


@dataclass
class Seen:
    """One inbox file as observed: its (size, mtime) and since when it has shown them."""

    size: int
    mtime: float
    since: float
    complete: bool | None = None
    probed: bool = False
    held: str = ""
    """The reason last logged for holding it (logged once per reason)."""
    early: bool = False
    """Taken after the short settle only (it looked complete): not yet quiet for the full wait."""
    deferred: bool = False
    """Processed, but left in the inbox until quiet for the full wait (then archived)."""


@dataclass
class ArrivalWatch:
    """Observations of every inbox, kept across polls (one per gateway process)."""

    settle_seconds: float
    wait_seconds: float = DEFAULT_WAIT_SECONDS
    rules: dict[str, str] = field(default_factory=dict)
    """department -> `settle` (default), `rename` or `manifest`."""
    seen: dict[tuple[str, str], Seen] = field(default_factory=dict)
    renamed: dict[tuple[str, str], float] = field(default_factory=dict)
    """(department, final name) -> when its temporary name was last listed."""
    vanished: list[tuple[str, str]] = field(default_factory=list)
    """(department, path) of deferred files no longer listed: archived from their kept bytes."""

    def forget(self, found: FoundFile) -> None:
        self.seen.pop((found.department, found.path), None)
        self.renamed.pop((found.department, found.name), None)

    def taken_early(self, found: FoundFile) -> bool:
        """True when `found` was taken on the short settle alone: a client may not be done
        with it (a pause between bursts that ended on a line end)."""
        seen = self.seen.get((found.department, found.path))
        return seen is not None and seen.early and (seen.size, seen.mtime) == (found.size, found.mtime)

    def defer(self, found: FoundFile) -> None:
        """Keep watching a processed file left in the inbox; it is ready again once quiet
        for the full wait (`wait_seconds`)."""
        seen = self.seen.get((found.department, found.path))
        if seen is not None:
            seen.deferred, seen.early = True, False

    def is_deferred(self, found: FoundFile) -> bool:
        seen = self.seen.get((found.department, found.path))
        return seen is not None and seen.deferred

    def observe(
        self,
        department: str,
        listed: list[FoundFile],
        temporaries: list[str],
        now: float,
        probe: Callable[[FoundFile], tuple[bytes, bytes] | None],
        local_clock: bool,
    ) -> tuple[list[FoundFile], float]:
        """The files of one listing that have arrived, and the longest wait left (0: none).

        `probe` reads a file's first and last bytes (only for a file otherwise ready); None
        when it cannot be read yet (the caller notes why), and the file is held."""
        for temporary in temporaries:
            lowered = temporary.lower()
            for suffix in RENAME_SUFFIXES:
                if lowered.endswith(suffix):
                    self.renamed[(department, temporary[: -len(suffix)])] = now
        ready: list[FoundFile] = []
        wait = 0.0
        present = set()
        for found in listed:
            key = (department, found.path)
            present.add(key)
            if found.kind not in ("file", "directory"):
                ready.append(found)  # refused at once, never read
                continue
            seen = self.seen.get(key)
            if self.settle_seconds <= 0:  # no waiting, except for a file seen to change since the last poll
                if seen is None or (seen.size, seen.mtime) == (found.size, found.mtime):
                    ready.append(found)
                self.seen[key] = Seen(found.size, found.mtime, now)
                continue
            if self.rules.get(department) == "manifest" and found.kind == "file":
                ready.append(found)  # its manifest is listed: complete once its bytes match it
                if seen is None:
                    self.seen[key] = Seen(found.size, found.mtime, now)
                continue
            renamed = (department, found.name) in self.renamed
            if renamed and self.rules.get(department) == "rename" and found.kind == "file":
                ready.append(found)  # the department's clients rename only once done: complete now
                if seen is None:
                    self.seen[key] = Seen(found.size, found.mtime, now)
                continue
            if seen is None or (seen.size, seen.mtime) != (found.size, found.mtime):
                if seen is None and found.mtime - now > 5:
                    log.warning(
                        "%s/inbox/%s: its modification time is %.0f s in the future (the uploading machine's clock?); "
                        "its arrival is judged by this gateway's own observations", department, shown(found.name), found.mtime - now,
                    )
                self.seen[key] = Seen(found.size, found.mtime, now)
                wait = max(wait, self.settle_seconds)
                continue
            stable = now - seen.since
            if stable < self.settle_seconds:
                wait = max(wait, self.settle_seconds - stable)
                continue
            if seen.deferred or found.kind == "directory":
                needed = self.wait_seconds
            elif renamed:
                needed = self.settle_seconds
            else:
                if not seen.probed:
                    ends = probe(found)
                    if ends is None:  # cannot be read (yet): the caller says why
                        wait = max(wait, self.settle_seconds)
                        continue
                    seen.complete, seen.probed = looks_complete(found.name, *ends, found.size), True
                needed = self.settle_seconds if seen.complete else self.wait_seconds
            quiet = stable
            if local_clock and 0 <= now - found.mtime:
                quiet = max(stable, now - found.mtime)
            if quiet >= needed:
                seen.early = not renamed and quiet < self.wait_seconds
                ready.append(found)
                continue
            reason = (
                f"does not look complete for its format; taken once unchanged for {needed:.0f} s"
                if found.kind == "file"
                else f"a folder; refused once unchanged for {needed:.0f} s"
            )
            if seen.deferred:
                continue  # receipted already: nothing for a pass to wait for
            if seen.held != reason:
                seen.held = reason
                log.info("%s/inbox/%s: held: %s", department, shown(found.name), reason)
            wait = max(wait, needed - quiet)
        for key in [k for k in self.seen if k[0] == department and k not in present]:
            if self.seen[key].deferred:
                self.vanished.append(key)  # receipted, then removed before it was archived
            del self.seen[key]
        for key in [k for k, at in self.renamed.items() if k[0] == department and now - at > 86_400]:
            del self.renamed[key]
        return ready, wait


__all__ = ["ArrivalWatch", "DEFAULT_WAIT_SECONDS", "TEMPORARY_SUFFIXES", "looks_complete"]
