"""Housing registry (房管): pages of `GET {base}/api/v1/occupancy-changes`, pulled over HTTP
or dropped as `.json`. One `HousingOccupancy` per item of `items`.

The page is read as a stream: `HousingPage` walks the top-level object itself and hands
each item to the standard library's JSON decoder, so memory holds one item, not the page
(ijson is not a dependency; this is its small, sufficient subset). An item larger than
`max_item_kb` is refused as a whole file. `parse_page` is the entry point the HTTP pull
reuses on a response body.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

from pydantic import Field

from contracts.housing import HousingOccupancy
from gateway import hookimpl
from gateway.adapter import Adapter, AdapterConfig, RawRow, SourceFile
from gateway.errors import FileRejected

CHUNK = 64 * 1024
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# What may still follow a number's digits: only then can the buffer's end have cut it.
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")


@dataclass
class PageItem:
    """One element of `items`: its position (from 1), the decoded value, and any key that
    appeared twice in one of its objects (JSON decoders silently keep the last)."""

    position: int
    value: Any
    duplicate_keys: tuple[str, ...] = ()


class _NotJson(ValueError):
    """NaN, Infinity: Python's decoder takes them, JSON does not."""


class HousingPage:
    """A page (分页) being read: iterate it for its items; `next_cursor` is known once the
    items are read (asking earlier reads, and drops, the rest)."""

    def __init__(self, text: TextIO, *, max_item_chars: int = 1 << 20):
        self._text = text
        self._max = max_item_chars
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._line, self._column = 1, 0  # where _buf[0] sits in the document
        self._duplicates: list[str] = []
        self._decoder = json.JSONDecoder(object_pairs_hook=self._object, parse_constant=self._constant)
        self._cursor: str | None = None
        self._items: Iterator[PageItem] | None = None
        self._done = False

    def __iter__(self) -> Iterator[PageItem]:
        if self._items is not None:
            raise RuntimeError("a page is read once")
        self._items = self._scan()
        return self._items

    @property
    def next_cursor(self) -> str | None:
        """`nextCursor`, or None on the last page."""
        if not self._done:
            for _ in self._items if self._items is not None else iter(self):
                pass
        return self._cursor

    # -- decoding hooks ------------------------------------------------------

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                self._duplicates.append(key)
            result[key] = value
        return result

    def _constant(self, name: str) -> Any:
        raise _NotJson(f"{name} is not a JSON value")

    # -- the buffer ------------------------------------------------------------

    def _where(self, pos: int) -> tuple[int, int]:
        newlines = self._buf.count("\n", 0, pos)
        if newlines:
            return self._line + newlines, pos - self._buf.rfind("\n", 0, pos)
        return self._line, self._column + pos + 1

    def _malformed(self, pos: int, message: str) -> FileRejected:
        line, column = self._where(pos)
        return FileRejected("json_malformed", f"line {line}, column {column}: {message}", row=line)

    def _too_large(self) -> FileRejected:
        line, _ = self._where(self._pos)
        return FileRejected(
            "json_too_large", f"the value starting on line {line} is longer than {self._max} characters (max_item_kb)"
        )

    def _more(self) -> bool:
        """Read another chunk; False at the end of the document."""
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
            raise FileRejected("encoding", f"the page is not valid {exc.encoding}") from None
        self._buf, self._pos = self._buf[self._pos :] + chunk, 0
        if not chunk:
            self._eof = True
            return False
        return True

    def _peek(self) -> str:
        while True:
            self._pos = _WHITESPACE.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def _expect(self, allowed: str, what: str) -> str:
        char = self._peek()
        if not char or char not in allowed:
            raise self._malformed(self._pos, f"expected {what}")
        self._pos += 1
        return char

    def _value(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                offset = exc.pos - self._pos  # _more() moves the buffer's start
                if self._more():
                    continue  # the value may only be cut off at the end of the buffer
                raise self._malformed(self._pos + offset, exc.msg) from None
            except (ValueError, RecursionError) as exc:  # NaN, a 5000-digit number, 1000 nested arrays
                raise self._malformed(self._pos, str(exc) if isinstance(exc, _NotJson) else type(exc).__name__) from None
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and _NUMBER_TAIL.fullmatch(self._buf, end) and self._more():
                continue  # a number cut by the buffer (`-2.` of `-2.5e3`) may go on
            if end - self._pos > self._max:
                raise self._too_large()
            self._pos = end
            return value

    # -- the page's structure --------------------------------------------------

    def _scan(self) -> Iterator[PageItem]:
        if self._peek() != "{":
            raise FileRejected("json_structure", "the page must be a JSON object holding items and nextCursor")
        self._pos += 1
        seen: set[str] = set()
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                if self._peek() != '"':
                    raise self._malformed(self._pos, "expected a key in double quotes")
                key = self._value()
                self._expect(":", "':'")
                if key in seen:
                    raise FileRejected("json_structure", f"the page holds {key} twice")
                seen.add(key)
                if key == "items":
                    yield from self._scan_items()
                elif key == "nextCursor":
                    cursor = self._value()
                    if cursor is not None and not isinstance(cursor, str):
                        raise FileRejected("json_structure", "nextCursor must be text or null")
                    self._cursor = cursor
                else:
                    self._value()  # a field the page format may grow: read past it
                if self._expect(",}", "',' or '}'") == "}":
                    break
        if self._peek():
            raise self._malformed(self._pos, "extra data after the page")
        if "items" not in seen:
            raise FileRejected("json_structure", "the page has no items array")
        self._done = True

    def _scan_items(self) -> Iterator[PageItem]:
        if self._peek() != "[":
            raise FileRejected("json_structure", "items must be an array")
        self._pos += 1
        if self._peek() == "]":
            self._pos += 1
            return
        position = 0
        while True:
            self._duplicates = []
            value = self._value()
            position += 1
            yield PageItem(position, value, tuple(self._duplicates))
            if self._expect(",]", "',' or ']'") == "]":
                return


def parse_page(data: bytes | BinaryIO | TextIO, *, encoding: str = "utf-8-sig", max_item_chars: int = 1 << 20) -> HousingPage:
    """Read an occupancy-changes page from a response body (bytes), a binary stream or a
    text stream. A UTF-8 byte-order mark is allowed."""
    if isinstance(data, bytes):
        data = io.BytesIO(data)
    text = data if isinstance(data, io.TextIOBase) else io.TextIOWrapper(data, encoding=encoding, errors="strict")  # type: ignore[arg-type]
    return HousingPage(text, max_item_chars=max_item_chars)


class HousingConfig(AdapterConfig):
    """`[adapters.housing-registry]` in gateway.toml."""

    max_item_kb: int = Field(default=1024, ge=1, description="refuse a page holding one item larger than this")


def _person(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry  # the contract says what is wrong with it
    return {"name": entry.get("name"), "id_number": entry.get("idNo")}


def _occupant(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    return {
        **_person(entry),
        "role": entry.get("role"),
        "move_in": entry.get("moveIn"),
        "move_out": entry.get("moveOut"),
    }


def _each(value: Any, convert: Any) -> Any:
    return [convert(entry) for entry in value] if isinstance(value, list) else value


class HousingRegistryAdapter(Adapter):
    """Occupancy-change pages of the housing registry: one `HousingOccupancy` per item."""

    name = "housing-registry"
    department = "housing"
    contracts = (HousingOccupancy,)
    file_types = (".json",)
    description = "Housing registry occupancy changes (房管 产权与居住人员), JSON pages"
    Config = HousingConfig
    columns = {
        "property_cert_no": "propertyCertNo",
        "division_code": "divisionCode",
        "community": "community",
        "address": "address",
        "building": "building",
        "unit": "unit",
        "room": "room",
        "owners": "owners",
        "owners.name": "owners[].name",
        "owners.id_number": "owners[].idNo",
        "occupants": "occupants",
        "occupants.name": "occupants[].name",
        "occupants.id_number": "occupants[].idNo",
        "occupants.role": "occupants[].role",
        "occupants.move_in": "occupants[].moveIn",
        "occupants.move_out": "occupants[].moveOut",
        "rental_registered": "rentalRegistered",
        "updated_at": "updatedAt",
    }

    config: HousingConfig

    def accepts(self, source: SourceFile) -> bool:
        if source.suffix not in self.file_types:
            return False
        if source.department == self.department:
            return True  # ours to read, or to refuse with the precise reason
        return '"propertyCertNo"' in source.head()

    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        with source.open_text() as text:
            for item in parse_page(text, max_item_chars=self.config.max_item_kb * 1024):
                if item.duplicate_keys:
                    keys = ", ".join(sorted(set(item.duplicate_keys)))
                    yield RawRow(item.position, {}, ("json_duplicate_key", keys, f"key(s) {keys} appear twice in one object"))
                elif not isinstance(item.value, dict):
                    yield RawRow(item.position, {}, ("item_not_object", "", f"the item is a JSON {type(item.value).__name__}"))
                else:
                    yield RawRow(item.position, item.value)

    def normalize(self, row: RawRow) -> HousingOccupancy:
        get = row.fields.get
        data = {
            "property_cert_no": get("propertyCertNo"),
            "division_code": get("divisionCode"),
            "community": get("community"),
            "address": get("address"),
            "building": get("building"),
            "unit": get("unit"),
            "room": get("room"),
            "owners": _each(get("owners"), _person),
            "occupants": _each(get("occupants"), _occupant) if get("occupants") is not None else [],
            "rental_registered": get("rentalRegistered"),
            "updated_at": get("updatedAt"),
        }
        return HousingOccupancy.model_validate(data)


@hookimpl(trylast=True)
def register_adapters(register):
    register(HousingRegistryAdapter)
