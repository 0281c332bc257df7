"""The local mailbox: one folder tree per department on this machine's disk."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from gateway.errors import TransportError
from gateway.intake.staging import Sniffed, copy_and_sniff
from gateway.intake.transports.base import FOLDERS, FoundFile, is_temporary


class LocalMailbox:
    """`<root>/<department>/{inbox,outbox,processed,rejected}` on local disk."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, department: str, folder: str) -> Path:
        return self.root / department / folder

    def ensure_tree(self, department: str) -> None:
        for folder in FOLDERS:
            self.folder(department, folder).mkdir(parents=True, exist_ok=True)

    def list_inbox(self, department: str) -> list[FoundFile]:
        inbox = self.folder(department, "inbox")
        found = []
        try:
            entries = list(os.scandir(inbox))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TransportError(f"cannot list {inbox}: {exc}") from exc
        for entry in sorted(entries, key=lambda e: e.name):
            if is_temporary(entry.name):
                continue
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                kind = "symlink"
            elif stat.S_ISREG(info.st_mode):
                kind = "file"
            elif stat.S_ISDIR(info.st_mode):
                continue
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
                raise TransportError(f"{found.path} is not a regular file")
            return copy_and_sniff(handle, target)

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
