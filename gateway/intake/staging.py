"""Staging: copy a dropped file into the gateway's own folder while hashing it and
deciding its encoding, in one streaming pass.

Encoding is decided as the design card says: a BOM wins; else the whole file must decode
as strict UTF-8; else as strict GB18030; else the file is rejected. A file that decodes
as GB18030 only because UTF-8 text was pasted into it (a run of UTF-8 Chinese between
ASCII bytes) is rejected too, naming the line: decoded, it would be stored as mojibake. Both strict decoders
run side by side over the same chunks, so no file is read twice and none is held whole.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
# UTF-8 text pasted into a GB18030 file: a run of non-ASCII bytes, between ASCII bytes
# (commas, quotes, line ends), made only of two or more 3-byte UTF-8 CJK characters.
# The same bytes also decode as GB18030 (as mojibake: 陈小明 becomes 闄堝皬鏄�): a
# GB18030 run is made of 2-byte pairs and is almost never exactly such a run as well.
_UTF8_CJK_RUN = re.compile(rb"(?<![\x80-\xff])(?:[\xe4-\xe9][\x80-\xbf]{2}){2,}(?![\x80-\xff])")


@dataclass
class Sniffed:
    sha256: str
    size: int
    encoding: str | None
    problem: str
    has_nul: bool


class Sniffer:
    """Feed it chunks; `result()` gives sha256, size and the strict encoding, if any."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._size = 0
        self._first = b""
        self._utf8: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")("strict")
        self._gb: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("gb18030")("strict")
        self._utf8_error = self._gb_error = ""
        self.has_nul = False
        self._lines = 0  # line ends before the current chunk
        self._carry = b""  # a non-ASCII run cut by the chunk boundary
        self.utf8_line = 0  # the first line holding a UTF-8 CJK run (1-based), 0 if none

    def feed(self, chunk: bytes) -> None:
        if self._size < 4:
            self._first = (self._first + chunk)[:4]
        self._size += len(chunk)
        self._hash.update(chunk)
        if not self.has_nul and b"\x00" in chunk:
            self.has_nul = True
        self._decode(chunk, final=False)
        self._scan_utf8(chunk)

    def _scan_utf8(self, chunk: bytes) -> None:
        if self.utf8_line:
            return
        window = self._carry + chunk
        found = _UTF8_CJK_RUN.search(window)
        # A run that reaches the end of the window may go on in the next chunk.
        if found and found.end() < len(window):
            self.utf8_line = self._lines + window.count(b"\n", 0, found.start()) + 1
            return
        lines_in_carry = self._carry.count(b"\n")
        cut = len(window)
        while cut and window[cut - 1] >= 0x80 and len(window) - cut < 4096:
            cut -= 1
        self._lines += window.count(b"\n") - lines_in_carry - window.count(b"\n", cut)
        self._carry = window[cut:]

    def _decode(self, chunk: bytes, final: bool) -> None:
        if self._utf8 is not None:
            try:
                self._utf8.decode(chunk, final)
            except UnicodeDecodeError as exc:
                self._utf8, self._utf8_error = None, f"not UTF-8 ({exc.reason} near byte {self._size - len(chunk) + exc.start})"
        if self._gb is not None:
            try:
                self._gb.decode(chunk, final)
            except UnicodeDecodeError as exc:
                self._gb, self._gb_error = None, f"not GB18030 ({exc.reason} near byte {self._size - len(chunk) + exc.start})"

    def result(self) -> Sniffed:
        self._decode(b"", final=True)
        if self._carry and not self.utf8_line and _UTF8_CJK_RUN.search(self._carry):
            self.utf8_line = self._lines + 1
        encoding: str | None
        if self._first.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig" if self._utf8 is not None else None
        elif self._first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = None
            self._utf8_error = "UTF-16 text (save it as UTF-8 or GB18030)"
        elif self._utf8 is not None:
            encoding = "utf-8"
        elif self._gb is not None and self.utf8_line:
            # Decoded as GB18030 the pasted text would be stored as mojibake: refused.
            encoding = None
            self._utf8_error, self._gb_error = "", (
                f"mixed encodings: line {self.utf8_line} holds UTF-8 text in a file that is otherwise GB18030 "
                "(text pasted from another program?); save the whole file in one encoding"
            )
        elif self._gb is not None:
            encoding = "gb18030"
        else:
            encoding = None
        problem = "" if encoding else "; ".join(p for p in (self._utf8_error, self._gb_error) if p)
        # UTF-16 text is full of NUL bytes (every ASCII character has one); they are its
        # encoding, not binary content, and the clerk must hear "UTF-16", not "binary".
        utf16 = self._first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        return Sniffed(self._hash.hexdigest(), self._size, encoding, problem, self.has_nul and not utf16)


def copy_and_sniff(source: BinaryIO, target: Path) -> Sniffed:
    """Copy `source` into `target` (fsynced), returning what the sniffer found."""
    sniffer = Sniffer()
    with open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            sniffer.feed(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return sniffer.result()


def sniff_file(path: Path) -> Sniffed:
    sniffer = Sniffer()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            sniffer.feed(chunk)
    return sniffer.result()
