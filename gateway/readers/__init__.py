"""Streaming readers shared by adapters: CSV with a header row."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gateway.adapter import RawRow, SourceFile
from gateway.errors import FileRejected

# A real field is at most a few hundred characters; a 20 MB "field" is a broken or
# hostile file. csv raises on the oversized field and carries on with the next line.
FIELD_LIMIT = 64 * 1024
csv.field_size_limit(FIELD_LIMIT)

_HEADER_FOLD = str.maketrans({"（": "(", "）": ")", "\u3000": " "})


def normalize_header(name: str) -> str:
    return name.strip().lstrip("\ufeff").translate(_HEADER_FOLD).strip()


def csv_rows(source: SourceFile, required: Sequence[str]) -> Iterator[RawRow]:
    """`_csv_rows`, except that the last line without its line end is never accepted as
    a row (`no_line_end`): a half-written row can still validate (a cut address) and
    would later become a "correction" of itself."""
    if not _ends_mid_line(source):
        yield from _csv_rows(source, required)
        return
    last: RawRow | None = None
    for row in _csv_rows(source, required):
        if last is not None:
            yield last
        last = row
    if last is not None:
        if last.problem is None:
            last = RawRow(last.number, last.fields, ("no_line_end", "", "the last line has no line end"))
        yield last


def _ends_mid_line(source: SourceFile) -> bool:
    with open(source.path, "rb") as raw:
        size = raw.seek(0, 2)
        if size == 0:
            return False
        raw.seek(size - 1)
        return raw.read(1) not in (b"\n", b"\r")


def _csv_rows(source: SourceFile, required: Sequence[str]) -> Iterator[RawRow]:
    """Rows of a CSV file as dicts keyed by its (normalized) header.

    The header must hold every column in `required`, else the whole file is rejected,
    naming the missing columns. Rows are numbered as a spreadsheet shows them (header =
    row 1). A row with fewer cells than the header is yielded with a `row_truncated`
    problem; blank lines are skipped.
    """
    with source.open_text() as text:
        reader = csv.reader(text, strict=False)
        try:
            header = next(reader)
        except StopIteration:
            raise FileRejected("empty", "the file holds no header row") from None
        except csv.Error as exc:
            raise FileRejected("header_unreadable", str(exc)) from None
        header = [normalize_header(cell) for cell in header]
        missing = [column for column in required if column not in header]
        if missing:
            raise FileRejected("header_missing", "missing column(s): " + ", ".join(missing), row=1)
        seen: set[str] = set()
        for column in header:
            if column and column in seen:
                raise FileRejected("header_duplicate", f"column {column} appears twice", row=1)
            seen.add(column)
        width = len(header)
        number = 1
        while True:
            number += 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RawRow(number, {}, ("field_too_large", "", str(exc)))
                continue
            if not cells:
                continue
            first = cells[0]
            if (not first or first.isspace()) and not any(cell.strip() for cell in cells):
                continue  # a blank line (a filled first cell settles it without the generator)
            if len(cells) < width:
                yield RawRow(number, dict(zip(header, cells)), ("row_truncated", header[len(cells)], f"{len(cells)} of {width} cells"))
                continue
            if len(cells) > width and any(cell.strip() for cell in cells[width:]):
                yield RawRow(number, dict(zip(header, cells)), ("row_too_long", "", f"{len(cells)} cells, header has {width}"))
                continue
            yield RawRow(number, dict(zip(header, cells)))


class CountingReader:
    """A binary reader that reports the bytes read (the ingest progress bar)."""

    def __init__(self, raw: Any, progress: Callable[[int], None]):
        self._raw, self._progress = raw, progress

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._progress(len(data))
        return data

    def read1(self, size: int = -1) -> bytes:
        data = self._raw.read1(size)
        self._progress(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)
        self._progress(count or 0)
        return count

    def __enter__(self) -> CountingReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._raw.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)
