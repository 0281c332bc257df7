"""The base class every adapter derives from, and what it is handed.

An adapter reads one source's files and turns each row into a contract. The gateway
does everything else: finding and staging the file, detecting its encoding, storing,
deduplicating, reporting and signing. Authors fill in two methods:

- `parse(source)` yields `RawRow`s, streaming: never read the whole file into memory.
  Raise `FileRejected` when the file as a whole cannot be read.
- `normalize(row)` returns a contract instance, or raises pydantic's `ValidationError`
  (or `RowRejected`) for a bad row. `column_for(loc)` maps a field back to the column
  the clerk knows, for the rejection report.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TextIO

from pydantic import BaseModel, ConfigDict

from contracts import Contract

from gateway.errors import FileRejected


class AdapterConfig(BaseModel):
    """Options an operator may set for an adapter in `gateway.toml` under
    `[adapters.NAME]`. Unknown keys are refused, so a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class SourceFile:
    """A staged copy of a dropped file: already hashed and sniffed, safe to read twice."""

    path: Path
    name: str
    department: str
    sha256: str
    size: int
    encoding: str | None
    """`utf-8-sig`, `utf-8` or `gb18030` when the whole file decodes strictly; else None."""
    encoding_problem: str = ""
    has_nul: bool = False

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()

    def open_binary(self) -> BinaryIO:
        return open(self.path, "rb")

    def open_text(self) -> TextIO:
        """The file as text in its detected encoding, universal newlines kept for csv."""
        if self.has_nul:
            raise FileRejected("binary", "the file holds NUL bytes; it is not a text file")
        if self.encoding is None:
            raise FileRejected("encoding", self.encoding_problem)
        return io.TextIOWrapper(self.open_binary(), encoding=self.encoding, errors="strict", newline="")

    def head(self, size: int = 4096) -> str:
        """The first characters of the file, for adapters that choose by header."""
        if self.encoding is None:
            return ""
        with open(self.path, "rb") as handle:
            return handle.read(size).decode(self.encoding, errors="ignore")


@dataclass
class RawRow:
    """One row (or element) as read from the file, before validation."""

    number: int
    """Where the clerk finds it: the spreadsheet row (header = 1) or the element's position."""
    fields: Mapping[str, Any]
    problem: tuple[str, str, str] | None = None
    """(code, column, detail) when the row is broken before validation (truncated...)."""
    reason: tuple[str, str] | None = None
    """The problem's reason (Chinese, English) with this row's specifics, when the
    code's standing text (contracts/reasons.py) cannot say them (which lines...)."""


@dataclass
class RowIssue:
    """One finding on one row: an error rejects the row, a warning does not."""

    row: int
    field: str
    column: str
    value: str  # already masked
    code: str
    message: str
    level: str = "error"


class RowRejected(Exception):
    """Raised by `normalize` for a row-level problem pydantic cannot express."""

    def __init__(self, code: str, column: str = "", message: str = ""):
        self.code, self.column, self.message = code, column, message
        super().__init__(message or code)


class Adapter(ABC):
    """One source's reader (适配器).

    Class attributes describe it to the registry and to `gateway adapters list`:

    - `name`: unique, lowercase with dashes (`hospital-births`).
    - `department`: the department short name whose inbox it reads (`hospital`).
    - `contracts`: the contract classes it emits.
    - `file_types`: the suffixes it reads (`(".csv",)`). The inbox decides the
      department; among that department's adapters, `accepts()` decides by file type and
      header, never by the wording of a file name.
    - `Config`: a pydantic model of its options (`extra="forbid"`).
    - `columns`: for the report, contract field (dotted) to source column.
    - `reason_codes`: the codes it raises itself (`RowRejected`, a row's `problem`); each
      must have a text registered with the `register_reasons` hook, else registering the
      adapter is refused, so a clerk never reads a bare code or "数据无效".
    """

    name: ClassVar[str]
    department: ClassVar[str]
    contracts: ClassVar[tuple[type[Contract], ...]]
    file_types: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig
    columns: ClassVar[Mapping[str, str]] = {}
    reason_codes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping[str, Any] | None = None):
        self.config = self.Config.model_validate(dict(config or {}))

    def accepts(self, source: SourceFile) -> bool:
        """Whether this adapter reads `source`. The default looks at the suffix only."""
        return source.suffix in self.file_types

    @abstractmethod
    def parse(self, source: SourceFile) -> Iterator[RawRow]:
        """Yield the file's rows one by one. Raise `FileRejected` if it cannot be read.
        Reading the same bytes again must yield the same rows."""

    @abstractmethod
    def normalize(self, row: RawRow) -> Contract:
        """Turn one row into a contract; raise `ValidationError` or `RowRejected`.

        The result must depend on `row` (and the options) only: a large file's rows are
        shared out among several processes, each normalizing every n-th batch."""

    def column_for(self, loc: tuple[str | int, ...]) -> str:
        """The source column a contract field came from (for the rejection report)."""
        dotted = ".".join(str(part) for part in loc)
        while dotted:
            if dotted in self.columns:
                return self.columns[dotted]
            dotted = dotted.rpartition(".")[0]
        return ""


@dataclass
class AdapterInfo:
    """What `gateway adapters list` shows for one registered adapter."""

    name: str
    department: str
    contracts: list[str]
    file_types: list[str]
    package: str
    version: str
    adapter_class: type[Adapter] = field(repr=False)
