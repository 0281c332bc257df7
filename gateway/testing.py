"""The adapter conformance kit: a pytest plugin for adapter authors.

Every adapter, built-in or third-party, gets the same standard tests from one call::

    # tests/test_water_board.py
    from gateway.testing import adapter_test_class
    from water_board.adapter import WaterBoardAdapter

    TestWaterBoard = adapter_test_class(
        WaterBoardAdapter,
        samples=["tests/samples/water_board_202610.csv"],
        expected={"water_board_202610.csv": (3, 1)},  # accepted, rejected
    )

The tests parse the samples, validate every record, check that the same bytes give the
same record hashes, that bad bytes, a truncated file, a wrong encoding and an empty file
become errors rather than crashes, that rows are streamed (a 200,000-row file generated
from the sample parses in bounded memory), and that the same file dropped twice into a
real gateway home (real GnuPG key, real SQLite) is stored once.

The plugin is registered through the `pytest11` entry point, so installing the gateway
is enough; it also provides the `gateway_home` fixture.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pydantic import ValidationError

from gateway.adapter import Adapter, RawRow, RowRejected, SourceFile
from gateway.errors import FileRejected
from gateway.hookspecs import hookimpl
from gateway.intake.staging import sniff_file

STREAM_ROWS = 200_000
# A workbook is read cell by cell through openpyxl, some ten times slower than a CSV line:
# fewer rows prove the same bounded memory in a test run of seconds.
BINARY_STREAM_ROWS = 20_000
STREAM_PEAK_BYTES = 64 * 1024 * 1024
TEXT_FORMATS = (".csv", ".txt", ".tsv", ".json", ".xml")
# The damage every format gets, then each format's own (`damage_cases`).
COMMON_DAMAGE = ("random_bytes", "truncated", "empty")
FORMAT_DAMAGE: dict[str, tuple[str, ...]] = {
    ".xlsx": ("truncated_zip", "zip_bomb", "doctype_in_sheet"),
    ".xml": ("wrong_encoding", "nul_bytes", "doctype_entity"),
    ".json": ("wrong_encoding", "nul_bytes", "truncated_json"),
}
TEXT_DAMAGE = ("wrong_encoding", "nul_bytes")
# Damage the file as a whole must be refused for (FileRejected), not merely yield no record.
MUST_REFUSE = {"zip_bomb", "doctype_in_sheet", "doctype_entity", "truncated_zip"}


def damage_cases(suffix: str) -> tuple[str, ...]:
    """The damaged files the kit feeds an adapter whose sample has this suffix: a wrong
    encoding and NUL bytes only for text formats; a truncated zip, a zip bomb and a DOCTYPE
    in a sheet for XLSX; a DOCTYPE with an entity for XML; a document cut off for JSON."""
    suffix = suffix.lower()
    return COMMON_DAMAGE + FORMAT_DAMAGE.get(suffix, TEXT_DAMAGE if suffix in TEXT_FORMATS else ())


def damaged(data: bytes, damage: str) -> bytes:
    """The sample's bytes damaged as named (see `damage_cases`)."""
    if damage == "random_bytes":
        return bytes((n * 131 + 7) % 256 for n in range(4096))
    if damage in ("truncated", "truncated_zip"):
        return data[: max(1, len(data) // 2 + 3)]
    if damage == "truncated_json":
        return data.rstrip()[:-1] if len(data.rstrip()) > 1 else b"["
    if damage == "empty":
        return b""
    if damage == "wrong_encoding":
        return _reencode_utf16(data)
    if damage == "nul_bytes":
        return data[: len(data) // 3] + b"\x00" * 16 + data[len(data) // 3 :]
    if damage == "zip_bomb":
        return _with_zip_part(data, "xl/media/image1.bin", b"\0" * (8 << 20))
    if damage == "doctype_in_sheet":
        return _with_doctype_in_sheet(data)
    if damage == "doctype_entity":
        return _with_doctype(data, b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>')
    raise ValueError(f"unknown damage {damage!r}")


def _with_zip_part(data: bytes, name: str, content: bytes) -> bytes:
    """The workbook with one more (highly compressible) part: a zip bomb in miniature."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr(name, content)
    return out.getvalue()


def _with_doctype(data: bytes, doctype: bytes) -> bytes:
    head, sep, rest = data.partition(b"?>")
    if sep and head.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"<?xml"):
        return head + sep + doctype + rest
    return doctype + data


def _with_doctype_in_sheet(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename.startswith("xl/worksheets/") and item.filename.endswith(".xml"):
                content = _with_doctype(content, b'<!DOCTYPE worksheet [<!ENTITY lol "lol">]>')
            target.writestr(item, content)
    return out.getvalue()


def source_from_bytes(data: bytes, name: str, department: str, directory: Path) -> SourceFile:
    """A `SourceFile` as the gateway would hand it to `parse`, from raw bytes."""
    path = directory / f"staged-{len(list(directory.iterdir()))}-{name}"
    path.write_bytes(data)
    sniffed = sniff_file(path)
    return SourceFile(
        path=path,
        name=name,
        department=department,
        sha256=sniffed.sha256,
        size=sniffed.size,
        encoding=sniffed.encoding,
        encoding_problem=sniffed.problem,
        has_nul=sniffed.has_nul,
    )


def read_all(adapter: Adapter, source: SourceFile) -> tuple[list[Any], list[RawRow]]:
    """Parse and normalize every row; returns (records, refused rows). `FileRejected`
    propagates: it is the adapter's way of refusing the file as a whole."""
    records, refused = [], []
    for row in adapter.parse(source):
        if row.problem is not None:
            refused.append(row)
            continue
        try:
            records.append(adapter.normalize(row))
        except (ValidationError, RowRejected):
            refused.append(row)
    return records, refused


def repeat_data_lines(sample: bytes, rows: int) -> Iterator[bytes]:
    """A large file made from a line-oriented sample: its header, then its data lines
    repeated. Good for CSV-like formats; pass `big_file` for others."""
    lines = sample.splitlines(keepends=True)
    header, body = lines[0], [line for line in lines[1:] if line.strip()]
    yield header
    for n in range(rows):
        yield body[n % len(body)]


def repeat_xlsx_rows(sample: bytes, rows: int) -> Iterator[bytes]:
    """A large workbook made from an XLSX sample: its first sheet's rows up to the header
    (the first row of more than one cell), then its data rows repeated (openpyxl's
    write-only mode; the sheet keeps its name)."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(sample), read_only=True)
    sheet = book.worksheets[0]
    title, values = sheet.title, [tuple(row) for row in sheet.iter_rows(values_only=True)]
    book.close()
    at = next((n for n, row in enumerate(values) if sum(1 for cell in row if cell not in (None, "")) > 1), 0)
    head, body = values[: at + 1], [row for row in values[at + 1 :] if any(cell not in (None, "") for cell in row)]
    out = openpyxl.Workbook(write_only=True)
    target = out.create_sheet(title)
    for row in head:
        target.append(row)
    for n in range(rows):
        target.append(body[n % len(body)])
    buffer = io.BytesIO()
    out.save(buffer)
    yield buffer.getvalue()


def repeat_json_array(sample: bytes, rows: int) -> Iterator[bytes]:
    """A large JSON document made from a sample: its first array (the top value, or the
    first one found in its objects, breadth first) with the elements repeated."""
    document = json.loads(sample.decode("utf-8-sig"))
    path: list[str] = []
    if not isinstance(document, list):
        queue: list[tuple[list[str], Any]] = [([], document)]
        while queue:
            where, value = queue.pop(0)
            if isinstance(value, list):
                path = where
                break
            if isinstance(value, dict):
                queue += [([*where, key], item) for key, item in value.items()]
        else:
            raise ValueError("the JSON sample holds no array to repeat")
    marker = "\u0000records\u0000"
    skeleton = copy.deepcopy(document)
    parent: Any = skeleton
    for key in path[:-1]:
        parent = parent[key]
    items = parent[path[-1]] if path else document
    if path:
        parent[path[-1]] = marker
        before, after = json.dumps(skeleton, ensure_ascii=False).split(json.dumps(marker), 1)
    else:
        before, after = "", ""
    yield (before + "[\n").encode()
    for n in range(rows):
        yield ((",\n" if n else "") + json.dumps(items[n % len(items)], ensure_ascii=False)).encode()
    yield ("\n]" + after + "\n").encode()


def repeat_xml_children(sample: bytes, rows: int) -> Iterator[bytes]:
    """A large XML document made from a sample: its root with the root's children repeated
    (written as UTF-8). The sample is the author's own file, parsed with entities off."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)
    root = etree.fromstring(sample, parser)
    children = [etree.tostring(child, encoding="unicode", with_tail=False) for child in root if isinstance(child.tag, str)]
    shell = copy.deepcopy(root)
    for child in list(shell):
        shell.remove(child)
    shell.text = "\n"
    text = etree.tostring(shell, encoding="unicode")
    cut = text.rindex("</")
    yield ('<?xml version="1.0" encoding="UTF-8"?>\n' + text[:cut]).encode()
    for n in range(rows):
        yield (children[n % len(children)] + "\n").encode()
    yield (text[cut:] + "\n").encode()


def big_file_for(suffix: str) -> Callable[[bytes, int], Iterator[bytes]]:
    """The kit's default large-file maker for a sample of this suffix."""
    return {".xlsx": repeat_xlsx_rows, ".json": repeat_json_array, ".xml": repeat_xml_children}.get(suffix.lower(), repeat_data_lines)


class _Auto:
    """`big_file`'s default: chosen by the sample's suffix (`big_file_for`)."""

    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()


# -- one pass over a home (`run_pass`) ---------------------------------------------


class ReportRow(NamedTuple):
    """One row of a rejection report (NAME.errors.csv), values as written (masked)."""

    row: str
    column: str
    field: str
    value: str
    reason_zh: str
    reason_en: str
    code: str


@dataclass
class FileResult:
    """What one pass made of one dropped file."""

    name: str
    status: str
    """`processed`, `rejected`, `duplicate`..."""
    accepted: int
    rejected: int
    duplicates: int
    exchange_id: int
    reason: str | None = None
    """The file's rejection code, when the file as a whole was refused."""


@dataclass
class PassResult:
    """What `run_pass` saw: per dropped file name its outcome, the receipts (path ->
    parsed JSON body) and the rejection reports (path -> parsed rows) the pass wrote."""

    files: dict[str, FileResult]
    receipts: dict[Path, dict[str, Any]] = field(default_factory=dict)
    reports: dict[Path, list[ReportRow]] = field(default_factory=dict)

    def receipt_for(self, name: str) -> dict[str, Any]:
        """The receipt body of the dropped file `name`."""
        [body] = [body for path, body in self.receipts.items() if path.name == f"{Path(name).stem}.receipt.json" or path.name == f"{name}.receipt.json"]
        return body

    def report_for(self, name: str) -> list[ReportRow]:
        """The rejection report rows of the dropped file `name` ([] when it has none)."""
        found = [rows for path, rows in self.reports.items() if path.name in (f"{name}.errors.csv", f"{Path(name).stem}.errors.csv")]
        return found[0] if found else []


def run_pass(
    home: str | os.PathLike[str],
    department: str,
    files: Mapping[str, bytes],
    *,
    adapters: Sequence[type[Adapter]] = (),
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> PassResult:
    """Drop `files` (name -> bytes) into `department`'s inbox of the gateway home and run
    one pass over every inbox, in this process, as `gateway run --once` does; return
    what became of each file, with the receipts and rejection reports written.

    Each file arrives as a department's client sends one (written as NAME.part, then
    renamed, its time a minute back), so it is taken at once. `adapters` registers adapter
    classes that are not installed (work in progress); `config` gives adapters' options
    (`[adapters.NAME]`). The home's own settings decide the database (GATEWAY_DATABASE_URL
    included). The department need not be listed in gateway.toml when an adapter reads it.
    """
    from gateway.config import load_settings
    from gateway.exchange.lifecycle import Gateway
    from gateway.plugins import PluginManager

    settings = load_settings(Path(home))
    settings.settle_seconds = 0
    for name, options in (config or {}).items():
        settings.adapters[name] = dict(options)
    manager = PluginManager()
    installed = set(manager.adapters())
    for adapter_class in adapters:
        if adapter_class.name not in installed:
            manager.register(_SingleAdapterPlugin(adapter_class), name=f"kit-{adapter_class.name}")
    gateway = Gateway(settings, plugins=manager)
    try:
        gateway.ensure_adapter_mailboxes()
        inbox = settings.mailbox_root / department / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        past = time.time() - 60
        for name, data in files.items():
            partial = inbox / f"{name}.part"
            partial.write_bytes(data)
            os.replace(partial, inbox / name)
            os.utime(inbox / name, (past, past))
        outcomes = gateway.run_once()
    finally:
        gateway.close()
    result = PassResult({})
    for outcome in outcomes:
        result.files[outcome.file_name] = FileResult(
            outcome.file_name, outcome.status, outcome.accepted, outcome.rejected, outcome.duplicates,
            outcome.exchange_id, outcome.reason,
        )
        for written in outcome.files:
            path = settings.mailbox_root / written
            if path.name.endswith(".receipt.json") and path.exists():
                result.receipts[path] = json.loads(path.read_text(encoding="utf-8"))
            elif path.name.endswith(".errors.csv") and path.exists():
                with open(path, encoding="utf-8-sig", newline="") as handle:
                    result.reports[path] = [ReportRow(*row[:7]) for row in list(csv.reader(handle))[1:] if len(row) >= 7]
    return result


def _make_home(root: Path) -> Path:
    from gateway.exchange.home import init_home

    home = root / "home"
    init_home(home)
    return home


@pytest.fixture
def gateway_home() -> Iterator[Path]:
    """A fresh gateway home (real GnuPG key, SQLite, local mailbox) in a short path."""
    root = Path(tempfile.mkdtemp(prefix="gwkit", dir="/tmp"))
    try:
        yield _make_home(root)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(root / "home" / "gnupg"), "--kill", "gpg-agent"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def adapter_test_class(
    adapter_class: type[Adapter],
    samples: Sequence[str | os.PathLike[str]],
    *,
    config: Mapping[str, Any] | None = None,
    expected: Mapping[str, tuple[int, int]] | None = None,
    big_file: Callable[[bytes, int], Iterator[bytes]] | None = AUTO,
    stream_rows: int | None = None,
) -> type:
    """Build the standard test class for `adapter_class`. Assign it to a name starting
    with `Test` in a test module.

    :param samples: sample files the adapter must read (at least one).
    :param config: the adapter's options, as in `[adapters.NAME]`.
    :param expected: per sample file name, (accepted, rejected) record counts.
    :param big_file: makes a large file from a sample's bytes and a row count, as an
        iterator of byte chunks; by default chosen by the first sample's suffix
        (`big_file_for`: CSV lines, XLSX rows, the first JSON array, the XML root's
        children repeated); None fails the streaming test (say why in your docs).
    :param stream_rows: rows of that large file: by default 200,000 (`STREAM_ROWS`), and
        20,000 (`BINARY_STREAM_ROWS`) for a binary format such as XLSX.
    """
    sample_paths = [Path(p) for p in samples]
    if not sample_paths:
        raise ValueError("adapter_test_class needs at least one sample file")
    suffix = sample_paths[0].suffix.lower()
    if big_file is AUTO:
        big_file = big_file_for(suffix)
    rows_to_stream = stream_rows or (STREAM_ROWS if suffix in TEXT_FORMATS else BINARY_STREAM_ROWS)
    damages = damage_cases(suffix)

    def make() -> Adapter:
        return adapter_class(dict(config or {}))

    class AdapterConformance:
        adapter = adapter_class

        def test_describes_itself(self) -> None:
            assert adapter_class.name and adapter_class.name == adapter_class.name.lower()
            assert adapter_class.department
            assert adapter_class.contracts, "declare the contracts the adapter emits"
            assert adapter_class.file_types, "declare the file types the adapter reads"

        @pytest.mark.parametrize("sample", sample_paths, ids=[p.name for p in sample_paths])
        def test_sample_parses_and_validates(self, sample: Path, tmp_path: Path) -> None:
            adapter = make()
            source = source_from_bytes(sample.read_bytes(), sample.name, adapter.department, tmp_path)
            assert adapter.accepts(source), f"{adapter.name} does not accept its own sample {sample.name}"
            records, refused = read_all(adapter, source)
            assert records, f"no record of {sample.name} validated"
            emitted = {type(r) for r in records}
            assert emitted <= set(adapter.contracts), f"emits undeclared contracts {emitted - set(adapter.contracts)}"
            if expected and sample.name in expected:
                assert (len(records), len(refused)) == tuple(expected[sample.name])

        @pytest.mark.parametrize("sample", sample_paths, ids=[p.name for p in sample_paths])
        def test_same_bytes_same_record_hashes(self, sample: Path, tmp_path: Path) -> None:
            adapter = make()
            data = sample.read_bytes()
            first = [r.record_hash() for r in read_all(adapter, source_from_bytes(data, sample.name, adapter.department, tmp_path))[0]]
            again = [r.record_hash() for r in read_all(make(), source_from_bytes(data, sample.name, adapter.department, tmp_path))[0]]
            assert first == again

        @pytest.mark.parametrize("damage", damages)
        def test_bad_input_is_an_error_not_a_crash(self, damage: str, tmp_path: Path) -> None:
            adapter = make()
            broken = damaged(sample_paths[0].read_bytes(), damage)
            source = source_from_bytes(broken, sample_paths[0].name, adapter.department, tmp_path)
            try:
                records, refused = read_all(adapter, source)
            except FileRejected as rejected:
                assert rejected.code, "FileRejected needs a code the clerk's report can explain"
                return
            assert damage not in MUST_REFUSE, f"{damage}: the file must be refused as a whole (FileRejected)"
            if damage in ("random_bytes", "wrong_encoding", "empty"):
                assert not records, f"{damage}: records were accepted from a broken file"

        def test_rows_are_streamed(self, tmp_path: Path) -> None:
            if big_file is None:
                pytest.fail("no big_file generator: pass one, or explain why the adapter cannot stream")
            adapter = make()
            sample = sample_paths[0]
            path = tmp_path / f"big-{sample.name}"
            with open(path, "wb") as out:
                for chunk in big_file(sample.read_bytes(), rows_to_stream):
                    out.write(chunk)
            sniffed = sniff_file(path)
            source = SourceFile(path, sample.name, adapter.department, sniffed.sha256, sniffed.size, sniffed.encoding, sniffed.problem, sniffed.has_nul)
            rows = adapter.parse(source)
            assert not isinstance(rows, (list, tuple)), "parse must yield rows, not build a list"
            tracemalloc.start()
            try:
                count = sum(1 for _ in rows)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert count >= rows_to_stream * 0.9
            assert peak < STREAM_PEAK_BYTES, f"parsing {count} rows peaked at {peak / 1e6:.0f} MB"

        def test_same_file_dropped_twice_is_stored_once(self, gateway_home: Path) -> None:
            from gateway.config import load_settings
            from gateway.exchange.lifecycle import Gateway
            from gateway.plugins import PluginManager

            settings = load_settings(gateway_home)
            settings.database_url = ""  # the home's own SQLite, whatever GATEWAY_DATABASE_URL says
            settings.settle_seconds = 0
            if adapter_class.department not in settings.departments:
                settings.departments.append(adapter_class.department)
            manager = PluginManager()
            if adapter_class.name not in manager.adapters():
                manager.register(_SingleAdapterPlugin(adapter_class), name=f"kit-{adapter_class.name}")
            gw = Gateway(settings, plugins=manager)
            try:
                inbox = settings.mailbox_root / adapter_class.department / "inbox"
                inbox.mkdir(parents=True, exist_ok=True)
                settings.adapters[adapter_class.name] = dict(config or {})
                data = sample_paths[0].read_bytes()
                (inbox / sample_paths[0].name).write_bytes(data)
                [first] = gw.run_once()
                (inbox / ("again-" + sample_paths[0].name)).write_bytes(data)
                [second] = gw.run_once()
            finally:
                gw.close()
            assert first.status == "processed" and first.accepted > 0
            assert second.status == "duplicate" and second.accepted == 0

    AdapterConformance.__name__ = f"Test{adapter_class.__name__}Conformance"
    AdapterConformance.__qualname__ = AdapterConformance.__name__
    return AdapterConformance


class _SingleAdapterPlugin:
    """Registers an adapter that is not installed as a plugin (the author's work in progress)."""

    def __init__(self, adapter_class: type[Adapter]):
        self.adapter_class = adapter_class

    @hookimpl
    def register_adapters(self, register: Callable[[type[Adapter]], None]) -> None:
        register(self.adapter_class)


def _reencode_utf16(data: bytes) -> bytes:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding).encode("utf-16")
        except UnicodeDecodeError:
            continue
    return b"\xff\xfe" + data
