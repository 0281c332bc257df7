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

import os
import shutil
import subprocess
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.adapter import Adapter, RawRow, RowRejected, SourceFile
from gateway.errors import FileRejected
from gateway.hookspecs import hookimpl
from gateway.intake.staging import sniff_file

STREAM_ROWS = 200_000
STREAM_PEAK_BYTES = 64 * 1024 * 1024


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
    big_file: Callable[[bytes, int], Iterator[bytes]] | None = repeat_data_lines,
) -> type:
    """Build the standard test class for `adapter_class`. Assign it to a name starting
    with `Test` in a test module.

    :param samples: sample files the adapter must read (at least one).
    :param config: the adapter's options, as in `[adapters.NAME]`.
    :param expected: per sample file name, (accepted, rejected) record counts.
    :param big_file: makes a large file from a sample's bytes and a row count, as an
        iterator of byte chunks; None skips the streaming test (say why in your docs).
    """
    sample_paths = [Path(p) for p in samples]
    if not sample_paths:
        raise ValueError("adapter_test_class needs at least one sample file")

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

        @pytest.mark.parametrize(
            "damage",
            ["random_bytes", "truncated", "wrong_encoding", "empty", "nul_bytes"],
        )
        def test_bad_input_is_an_error_not_a_crash(self, damage: str, tmp_path: Path) -> None:
            adapter = make()
            data = sample_paths[0].read_bytes()
            broken = {
                "random_bytes": bytes((n * 131 + 7) % 256 for n in range(4096)),
                "truncated": data[: max(1, len(data) // 2 + 3)],
                "wrong_encoding": _reencode_utf16(data),
                "empty": b"",
                "nul_bytes": data[: len(data) // 3] + b"\x00" * 16 + data[len(data) // 3 :],
            }[damage]
            source = source_from_bytes(broken, sample_paths[0].name, adapter.department, tmp_path)
            try:
                records, refused = read_all(adapter, source)
            except FileRejected as rejected:
                assert rejected.code, "FileRejected needs a code the clerk's report can explain"
                return
            if damage in ("random_bytes", "wrong_encoding", "empty"):
                assert not records, f"{damage}: records were accepted from a broken file"

        def test_rows_are_streamed(self, tmp_path: Path) -> None:
            if big_file is None:
                pytest.fail("no big_file generator: pass one, or explain why the adapter cannot stream")
            adapter = make()
            sample = sample_paths[0]
            path = tmp_path / f"big-{sample.name}"
            with open(path, "wb") as out:
                for chunk in big_file(sample.read_bytes(), STREAM_ROWS):
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
            assert count >= STREAM_ROWS * 0.9
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
