"""Streaming JSON reading (JSON 读取) for adapters: the records of one array in a document.

`json_records(source, pointer="/items")` walks the document itself down the JSON pointer
(RFC 6901: `""` is a top-level array, `/data/records` the array `records` in the object
`data`) and hands each element of that array to the standard library's decoder, so memory
holds one record, never the file (the approach of adapters/housing_registry.py; ijson is not
a dependency). Values beside the path are read past one at a time. A record (or a value
read past) larger than `max_item_chars` rejects the file (`json_too_large`); a document that
is not JSON is `json_malformed` with line and column; one without the array where the
pointer says is `json_structure`. NaN and Infinity are refused (they are not JSON). A key
that appears twice in one object is reported on its record (`duplicate_keys`): JSON
decoders otherwise keep the last silently.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from gateway.adapter import SourceFile
from gateway.errors import FileRejected

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
Document = SourceFile | str | os.PathLike[str]
"""A staged `SourceFile` (what `parse` is handed; decoded in its detected encoding) or a
path (read as UTF-8, a byte-order mark allowed)."""

CHUNK = 64 * 1024
MAX_ITEM_CHARS = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# What may still follow a number's digits: only then can the buffer's end have cut it.
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")


@dataclass(frozen=True)
class JsonRecord:
    """One element of the array: its position (from 1), its value, and any key that
    appeared twice in one of its objects."""

    position: int
    value: JsonValue
    duplicate_keys: tuple[str, ...] = ()


class _NotJson(ValueError):
    """NaN, Infinity: Python's decoder takes them, JSON does not."""


def parse_pointer(pointer: str) -> list[str]:
    """The keys of a JSON pointer (`/a/b` -> `["a", "b"]`, `~1` is `/`, `~0` is `~`)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/' (or is empty for the whole document): {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


class _Stream:
    """A JSON document being read from a text stream, a chunk at a time."""

    def __init__(self, text: TextIO, max_item_chars: int):
        self._text, self._max = text, max_item_chars
        self._buf, self._pos, self._eof = "", 0, False
        self._line, self._column = 1, 0  # where _buf[0] sits in the document
        self.duplicates: list[str] = []
        self._decoder = json.JSONDecoder(object_pairs_hook=self._object, parse_constant=self._constant)

    def _object(self, pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = {}
        for key, value in pairs:
            if key in result:
                self.duplicates.append(key)
            result[key] = value
        return result

    def _constant(self, name: str) -> JsonValue:
        raise _NotJson(f"{name} is not a JSON value")

    def _where(self, pos: int) -> tuple[int, int]:
        newlines = self._buf.count("\n", 0, pos)
        if newlines:
            return self._line + newlines, pos - self._buf.rfind("\n", 0, pos)
        return self._line, self._column + pos + 1

    def malformed(self, message: str, pos: int | None = None) -> FileRejected:
        line, column = self._where(self._pos if pos is None else pos)
        return FileRejected("json_malformed", f"line {line}, column {column}: {message}", row=line)

    def _too_large(self) -> FileRejected:
        line, _ = self._where(self._pos)
        return FileRejected("json_too_large", f"the value starting on line {line} is longer than {self._max} characters")

    def _more(self) -> bool:
        if self._eof:
            return False
        if len(self._buf) - self._pos > self._max:
            raise self._too_large()
        dropped = self._buf[: self._pos]
        newlines = dropped.count("\n")
        if newlines:
            self._line += newlines
            self._column = len(dropped) - dropped.rfind("\n") - 1
        else:
            self._column += len(dropped)
        try:
            chunk = self._text.read(CHUNK)
        except UnicodeDecodeError as exc:
            raise FileRejected("encoding", f"the document is not valid {exc.encoding}") from None
        self._buf, self._pos = self._buf[self._pos :] + chunk, 0
        if not chunk:
            self._eof = True
            return False
        return True

    def peek(self) -> str:
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            self._pos = match.end() if match else self._pos
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def take(self, allowed: str, what: str) -> str:
        char = self.peek()
        if not char or char not in allowed:
            raise self.malformed(f"expected {what}")
        self._pos += 1
        return char

    def value(self) -> JsonValue:
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                offset = exc.pos - self._pos  # _more() moves the buffer's start
                if self._more():
                    continue  # the value may only be cut off at the end of the buffer
                raise self.malformed(exc.msg, self._pos + offset) from None
            except (ValueError, RecursionError) as exc:  # NaN, a 5000-digit number, 1000 nested arrays
                raise self.malformed(str(exc) if isinstance(exc, _NotJson) else type(exc).__name__) from None
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and _NUMBER_TAIL.fullmatch(self._buf, end) and self._more():
                continue  # a number cut by the buffer (`-2.` of `-2.5e3`) may go on
            if end - self._pos > self._max:
                raise self._too_large()
            self._pos = end
            return value  # type: ignore[no-any-return]

    def end(self) -> None:
        if self.peek():
            raise self.malformed("extra data after the document")


def _records(stream: _Stream, path: list[str], pointer: str) -> Iterator[JsonRecord]:
    for depth, key in enumerate(path):
        if stream.peek() != "{":
            where = "/" + "/".join(path[:depth]) if depth else "the document"
            raise FileRejected("json_structure", f"{where} must be a JSON object holding {key!r} (pointer {pointer})")
        stream.take("{", "'{'")
        missing = FileRejected("json_structure", f"the document has no {pointer} (JSON pointer): no key {key!r}")
        if stream.peek() == "}":
            raise missing
        while True:
            if stream.peek() != '"':
                raise stream.malformed("expected a key in double quotes")
            name = stream.value()
            stream.take(":", "':'")
            if name == key:
                break
            stream.value()  # a value beside the path: read past it
            if stream.take(",}", "',' or '}'") == "}":
                raise missing
    if stream.peek() != "[":
        raise FileRejected("json_structure", f"{pointer or 'the document'} must be a JSON array")
    stream.take("[", "'['")
    position = 0
    if stream.peek() == "]":
        stream.take("]", "']'")
    else:
        while True:
            stream.duplicates = []
            value = stream.value()
            position += 1
            yield JsonRecord(position, value, tuple(stream.duplicates))
            if stream.take(",]", "',' or ']'") == "]":
                break
    # The rest of the document after the array: each enclosing object closed, its other
    # keys read past (one value at a time), and nothing after the top value.
    for _ in path:
        while stream.take(",}", "',' or '}'") == ",":
            if stream.peek() != '"':
                raise stream.malformed("expected a key in double quotes")
            stream.value()
            stream.take(":", "':'")
            stream.value()
    stream.end()


def json_records(
    source: Document | TextIO, pointer: str = "", *, max_item_chars: int = MAX_ITEM_CHARS
) -> Iterator[JsonRecord]:
    """The elements of the array at `pointer` (RFC 6901; `""`: the document is the array),
    streamed one at a time, as `JsonRecord(position, value, duplicate_keys)`.

    A record is yielded as soon as it is read; the document's end is checked after the last
    one (a file cut off mid-way is `json_malformed` after the records before the cut).
    A `SourceFile` is read in its detected encoding (`open_text`: a NUL byte or an
    undecodable file is refused as the CSV readers refuse it).
    """
    path = parse_pointer(pointer)
    if isinstance(source, SourceFile):
        with source.open_text() as text:
            yield from _records(_Stream(text, max_item_chars), path, pointer)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8-sig", errors="strict") as text:
            yield from _records(_Stream(text, max_item_chars), path, pointer)
    else:
        yield from _records(_Stream(source, max_item_chars), path, pointer)


__all__ = ["Document", "JsonRecord", "JsonValue", "json_records", "parse_pointer"]
