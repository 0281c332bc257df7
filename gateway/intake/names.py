"""File names (文件名) as the gateway meets them: names that are not UTF-8, names too long
for the names the gateway derives from them, and the masked form a log line shows.

A department's file name may hold personal data (a clerk names a file after a child), so
logs show `shown(name)`, which is gateway.masking.mask_file_name (`出…#3fa2c1.csv`)."""

from __future__ import annotations

import hashlib
import os
from pathlib import PurePosixPath

from gateway.masking import mask_file_name as shown

NAME_MAX = 255
"""Bytes in one path component (ext4, xfs, OpenSSH's servers: NAME_MAX)."""
LONGEST_DERIVED = ".receipt.json.asc.part"
"""The longest suffix the gateway appends to a drop's name (22 bytes)."""

__all__ = ["NAME_MAX", "LONGEST_DERIVED", "shown", "is_utf8", "readable_name", "fit"]


def is_utf8(name: str) -> bool:
    """False for a name whose bytes are not UTF-8 (os.scandir hands them over with
    surrogate escapes; a database or a JSON receipt cannot hold them)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def readable_name(name: str) -> str:
    """A UTF-8 name for a name that is not: its GB18030 reading (what a Windows client in
    China sends), else the undecodable bytes as `%XX`."""
    raw = os.fsencode(name) if not is_utf8(name) else name.encode("utf-8")
    try:
        decoded = raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace").replace("\\x", "%")
    return decoded if decoded.isprintable() else raw.decode("utf-8", "backslashreplace").replace("\\x", "%")


def fit(name: str, suffix_room: int = len(LONGEST_DERIVED), tag: str = "") -> str:
    """`name`, shortened (at a character boundary, keeping its extension, `tag` added) so
    that `name + suffix` fits NAME_MAX bytes for every suffix the gateway appends."""
    limit = NAME_MAX - suffix_room
    if len(name.encode("utf-8")) <= limit and not tag:
        return name
    path = PurePosixPath(name)
    suffix = path.suffix if len(path.suffix.encode("utf-8")) <= 16 else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    marker = f"~{tag}" if tag else "~" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    room = limit - len((marker + suffix).encode("utf-8"))
    if len(name.encode("utf-8")) <= limit:
        return f"{stem}{marker}{suffix}" if tag else name
    while len(stem.encode("utf-8")) > room:
        stem = stem[:-1]
    return f"{stem}{marker}{suffix}"
