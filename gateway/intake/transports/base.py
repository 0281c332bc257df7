"""What every transport offers the pipeline: the same contract for the local mailbox and
SFTP (and, later, HTTP pulls). See DESIGN.md, "The mailbox"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gateway.intake.staging import Sniffed

if TYPE_CHECKING:
    from gateway.config import Settings

TEMPORARY_SUFFIXES = (".part", ".filepart", ".tmp", ".partial", ".crdownload")
FOLDERS = ("inbox", "outbox", "processed", "rejected")


def is_temporary(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(("~$", ".")) or lowered.endswith(TEMPORARY_SUFFIXES)


@dataclass(frozen=True)
class FoundFile:
    """A file found in a department's inbox."""

    department: str
    name: str
    path: str
    """Where it lies, relative to the mailbox root (`hospital/inbox/x.csv`)."""
    size: int
    mtime: float
    kind: str = "file"
    """`file`, or `symlink` / `special` / `directory` for entries that are never read
    (refused), or `temporary` (a name still being uploaded, listed for the arrival rules)."""


class Transport(Protocol):
    def ensure_tree(self, department: str) -> None: ...

    def list_inbox(self, department: str, *, everything: bool = False) -> list[FoundFile]:
        """Drops in the inbox (with `everything`, also `temporary` names and `directory` entries)."""
        ...

    def read_ends(self, found: FoundFile, head: int, tail: int) -> tuple[bytes, bytes]:
        """The first `head` and last `tail` bytes (arrival: does it look complete?)."""
        ...

    def digest(self, found: FoundFile) -> str | None:
        """sha256 of the inbox file's bytes now (None: gone), checked before it is archived."""
        ...

    def rename_in_inbox(self, found: FoundFile, name: str) -> FoundFile: ...

    def remove(self, department: str, folder: str, name: str) -> None:
        """Remove a file (absent is fine)."""
        ...

    def stage(self, found: FoundFile, target: Path) -> Sniffed: ...

    def fetch(self, department: str, folder: str, name: str, target: Path) -> Sniffed:
        """Copy a file of another folder (an archived drop in rejected/, to reprocess it) to
        `target`; a FileNotFoundError when it is not there, never following a link."""
        ...

    def archive(self, found: FoundFile, folder: str, name: str) -> str:
        """Move the source into processed/ or rejected/ as `name`; return its new path."""
        ...

    def put(self, department: str, folder: str, name: str, source: Path) -> None:
        """Write `source` into the folder as `name`, atomically (NAME.part, then rename)."""
        ...

    def exists(self, department: str, folder: str, name: str) -> bool: ...

    def still_there(self, found: FoundFile) -> bool: ...


class Mailboxes(Protocol):
    """What intake needs of a gateway (收件服务): its settings and the transport of each
    department. `gateway.services.GatewayServices` extends it with the engine and the signer."""

    settings: Settings

    def transport_for(self, department: str) -> Transport: ...


def os_reason(exc: BaseException) -> str:
    """Why a file operation failed, without the file's name: an `OSError`'s own words
    (`Permission denied`) or the exception's kind. `str(exc)` of an `OSError` quotes the
    path, and a drop's name is the sender's text (issue 14: masked everywhere but the receipt)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
