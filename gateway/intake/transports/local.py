"""The local mailbox: one folder tree per department on this machine's disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from gateway.errors import TransportError
from gateway.intake.staging import Sniffed, copy_and_sniff
from gateway.intake.transports.base import FOLDERS, FoundFile, is_temporary, os_reason
from gateway.masking import mask_file_path


class LocalMailbox:
    """`<root>/<department>/{inbox,outbox,processed,rejected}` on local disk."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, department: str, folder: str) -> Path:
        return self.root / department / folder

    def ensure_tree(self, department: str) -> None:
        for folder in FOLDERS:
            self.folder(department, folder).mkdir(parents=True, exist_ok=True)

    def list_inbox(self, department: str, *, everything: bool = False) -> list[FoundFile]:
        """Drops in the inbox; with `everything`, also temporary names (kind `temporary`)
        and folders (kind `directory`), for the arrival rules (gateway/intake/arrival.py)."""
        inbox = self.folder(department, "inbox")
        found = []
        try:
            entries = list(os.scandir(inbox))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TransportError(f"cannot list {inbox}: {exc}") from exc
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed (or renamed) since the directory was read
            if is_temporary(entry.name):
                if not everything:
                    continue
                kind = "temporary"
            elif stat.S_ISLNK(info.st_mode):
                kind = "symlink"
            elif stat.S_ISREG(info.st_mode):
                kind = "file"
            elif stat.S_ISDIR(info.st_mode):
                if not everything:
                    continue
                kind = "directory"
            else:
                kind = "special"
            found.append(
                FoundFile(department, entry.name, f"{department}/inbox/{entry.name}", info.st_size, info.st_mtime, kind)
            )
        return found

    def stage(self, found: FoundFile, target: Path) -> Sniffed:
        path = self.root / found.path
        # O_NOFOLLOW: a symlink swapped in after listing is refused, never followed.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise TransportError(f"{mask_file_path(found.path)} is not a regular file")
            return copy_and_sniff(handle, target)

    def fetch(self, department: str, folder: str, name: str, target: Path) -> Sniffed:
        fd = os.open(self.folder(department, folder) / name, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise TransportError(f"{mask_file_path(f'{department}/{folder}/{name}')} is not a regular file")
            return copy_and_sniff(handle, target)

    def read_ends(self, found: FoundFile, head: int, tail: int) -> tuple[bytes, bytes]:
        """The file's first `head` and last `tail` bytes (a PermissionError when it cannot be read)."""
        fd = os.open(self.root / found.path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            first = handle.read(head)
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - tail))
            return first, handle.read(tail)

    def digest(self, found: FoundFile) -> str | None:
        """sha256 of the file's bytes as they are now; None when it is gone."""
        try:
            fd = os.open(self.root / found.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    def rename_in_inbox(self, found: FoundFile, name: str) -> FoundFile:
        """Give an inbox file another name (a name that is not UTF-8 its readable one)."""
        inbox = self.folder(found.department, "inbox")
        if os.path.lexists(inbox / name):
            raise TransportError(f"{found.department}/inbox already holds a file under the new name")
        os.rename(inbox / found.name, inbox / name)
        return FoundFile(found.department, name, f"{found.department}/inbox/{name}", found.size, found.mtime, found.kind)

    def remove(self, department: str, folder: str, name: str) -> None:
        try:
            os.unlink(self.folder(department, folder) / name)
        except FileNotFoundError:
            pass

    def still_there(self, found: FoundFile) -> bool:
        try:
            info = os.lstat(self.root / found.path)
        except FileNotFoundError:
            return False
        return info.st_size == found.size and info.st_mtime == found.mtime

    def archive(self, found: FoundFile, folder: str, name: str) -> str:
        target_dir = self.folder(found.department, folder)
        target_dir.mkdir(parents=True, exist_ok=True)
        os.rename(self.root / found.path, target_dir / name)  # renames a symlink itself, never its target
        _fsync_dir(target_dir)
        return f"{found.department}/{folder}/{name}"

    def put(self, department: str, folder: str, name: str, source: Path) -> None:
        target_dir = self.folder(department, folder)
        target_dir.mkdir(parents=True, exist_ok=True)
        partial = target_dir / (name + ".part")
        with open(source, "rb") as src, open(partial, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target_dir / name)
        _fsync_dir(target_dir)

    def exists(self, department: str, folder: str, name: str) -> bool:
        return os.path.lexists(self.folder(department, folder) / name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
