"""CSV with a header row (带表头的 CSV), streamed: `csv_rows`, and `CountingReader` (the
ingest progress bar). Imported through `gateway.readers`."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, Protocol, TextIO, cast

from gateway.adapter import RawRow, SourceFile
from gateway.errors import FileRejected
from gateway.masking import mask_header_cell, scrub_message

# A real field is at most a few hundred characters; a 20 MB "field" is a broken or
# hostile file. csv raises on the oversized field and carries on with the next line.
FIELD_LIMIT = 64 * 1024
csv.field_size_limit(FIELD_LIMIT)
# A real line is at most a few thousand characters. Lines are read at most this many
# characters at a time, so a 150 MB line never sits in memory: its row is rejected.
LINE_LIMIT = 1024 * 1024

_HEADER_FOLD = str.maketrans({"（": "(", "）": ")", "\u3000": " "})


def normalize_header(name: str) -> str:
    return name.strip().lstrip("\ufeff").translate(_HEADER_FOLD).strip()


class _LineTooLong(Exception):
    def __init__(self, number: int):
        self.number = number


class _BoundedLines:
    """The lines of `text` (line ends kept) for csv.reader, never holding more than
    `LINE_LIMIT` characters of one: a longer line is read past in pieces and raises
    `_LineTooLong` from `next()` (csv.reader starts a fresh record on the next call).
    `number` counts the physical lines handed out or skipped."""

    def __init__(self, text: TextIO):
        self.text, self.number = text, 0

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        line = self.text.readline(LINE_LIMIT)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) >= LINE_LIMIT and not line.endswith(("\n", "\r")):
            while (piece := self.text.readline(LINE_LIMIT)) and len(piece) >= LINE_LIMIT and not piece.endswith(("\n", "\r")):
                pass
            raise _LineTooLong(self.number)
        return line


def _ends_with_line_end(source: SourceFile) -> bool:
    with source.open_binary() as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return True
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


def csv_rows(source: SourceFile, required: Sequence[str], known: Sequence[str] = ()) -> Iterator[RawRow]:
    """Rows of a CSV file as dicts keyed by its (normalized) header.

    The header must hold every column in `required`, else the whole file is rejected,
    naming the missing columns; a repeated column is named only when it is one of
    `required` or `known` (the format's other columns), else masked. Rows are numbered as a spreadsheet shows them (header =
    row 1). A row with fewer cells than the header is yielded with a `row_truncated`
    problem; blank lines are skipped.

    Nothing is swallowed or half-taken without a word (issue 14):

    - a cell whose quote runs over line ends (an unclosed `"` takes every later line
      into one cell) rejects its row as `quote_spans_lines`, naming the lines of the
      file it swallowed and how many;
    - a last line without its line end may be a row cut off mid-way (a file still being
      written, a cut address that still validates): it is never taken, but rejected as
      `line_end_missing`;
    - a line longer than `LINE_LIMIT` characters rejects its row (`line_too_long`)
      after holding at most that much of it; a cell over `FIELD_LIMIT` its row too
      (`field_too_large`). Memory per file is bounded by these, whatever the input.
    """
    complete = _ends_with_line_end(source)
    with source.open_text() as text:
        lines = _BoundedLines(text)
        reader = csv.reader(lines, strict=False)
        try:
            header = next(reader)
        except StopIteration:
            raise FileRejected("empty", "the file holds no header row") from None
        except csv.Error as exc:
            raise FileRejected("header_unreadable", scrub_message(str(exc))) from None
        except _LineTooLong:
            raise FileRejected("header_unreadable", f"the header line is longer than {LINE_LIMIT} characters", row=1) from None
        header = [normalize_header(cell) for cell in header]
        missing = [column for column in required if column not in header]
        if missing:
            raise FileRejected("header_missing", "missing column(s): " + ", ".join(missing), row=1)
        seen: set[str] = set()
        for column in header:
            if column and column in seen:
                raise FileRejected("header_duplicate", f"column {mask_header_cell(column, (*required, *known))} appears twice", row=1)
            seen.add(column)
        width = len(header)
        number = 1
        pending: RawRow | None = None  # the row read last: it may turn out to be the cut-off last line
        while True:
            number += 1
            first_line = lines.number + 1
            try:
                cells = next(reader)
            except StopIteration:
                if pending is not None:
                    if complete or (pending.problem and pending.problem[0] == "quote_spans_lines"):
                        yield pending
                    else:
                        column = pending.problem[1] if pending.problem else ""  # a truncated row: its first missing column
                        yield RawRow(
                            pending.number, {}, ("line_end_missing", column, "no line end"),
                            reason=(
                                f"文件最后一行(第 {pending.number} 行)没有换行符,可能只写了一半(文件仍在传送或被截断),未接收此行;请补全后重新发送",
                                f"the last line (row {pending.number}) has no line end: it may be cut off mid-way "
                                "(a file still being sent, or truncated) and is not taken; send the file again complete",
                            ),
                        )
                return
            except csv.Error as exc:
                if pending is not None:
                    yield pending
                pending = RawRow(number, {}, ("field_too_large", "", str(exc)))
                continue
            except _LineTooLong as exc:
                if pending is not None:
                    yield pending
                pending = RawRow(
                    number, {}, ("line_too_long", "", f"line {exc.number}"),
                    reason=(
                        f"文件第 {exc.number} 行超过 {LINE_LIMIT} 个字符(正常的一行不会这么长),未读取此行",
                        f"line {exc.number} of the file is longer than {LINE_LIMIT} characters (no real row is) and was not read",
                    ),
                )
                continue
            last_line = lines.number
            if not cells:
                continue
            first = cells[0]
            if (not first or first.isspace()) and not any(cell.strip() for cell in cells):
                continue  # a blank line (a filled first cell settles it without the generator)
            if pending is not None:
                yield pending
            pending = _row(number, header, width, cells, first_line, last_line)


def _row(number: int, header: list[str], width: int, cells: list[str], first_line: int, last_line: int) -> RawRow:
    if last_line > first_line:
        spanning = next((i for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell), len(cells) - 1)
        column = header[spanning] if spanning < width else ""
        swallowed = last_line - first_line
        return RawRow(
            number, {}, ("quote_spans_lines", column, f"lines {first_line}-{last_line}"),
            reason=(
                f"第 {number} 行(文件第 {first_line} 行)的引号没有闭合或跨行:其后 {swallowed} 行"
                f"(文件第 {first_line + 1}–{last_line} 行)被并入同一格,均未读取;请去掉多余的引号后重新发送",
                f"a quote in row {number} (line {first_line} of the file) is not closed on its line: the {swallowed} "
                f"line(s) after it (lines {first_line + 1}-{last_line} of the file) were swallowed into one cell and "
                "none of them was read; remove the stray quote and send the file again",
            ),
        )
    if len(cells) < width:
        return RawRow(number, dict(zip(header, cells)), ("row_truncated", header[len(cells)], f"{len(cells)} of {width} cells"))
    if len(cells) > width and any(cell.strip() for cell in cells[width:]):
        return RawRow(number, dict(zip(header, cells)), ("row_too_long", "", f"{len(cells)} cells, header has {width}"))
    return RawRow(number, dict(zip(header, cells)))


class _Buffered(Protocol):
    """What a buffered binary file (`open(path, "rb")`) has beyond `BinaryIO`."""

    def read1(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: bytearray | memoryview, /) -> int: ...


class CountingReader:
    """A binary reader that reports the bytes read (the ingest progress bar)."""

    def __init__(self, raw: BinaryIO, progress: Callable[[int], None]):
        self._raw, self._progress = raw, progress

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._progress(len(data))
        return data

    def read1(self, size: int = -1) -> bytes:
        data = cast(_Buffered, self._raw).read1(size)
        self._progress(len(data))
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        count = cast(_Buffered, self._raw).readinto(buffer)
        self._progress(count or 0)
        return count

    def __enter__(self) -> CountingReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._raw.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._raw, name)
