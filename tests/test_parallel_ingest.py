"""One large file on several cores (gateway/exchange/parallel.py): parsing processes validate
the file's batches while the gateway process stores them. The stored records, row errors,
counts, Merkle root, receipt and error report must be exactly those of the in-process
path; a parsing process that fails or is killed must leave the file in the inbox with
nothing stored."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stdnum.cn import ric

import conftest
from adapters.hospital_births import HospitalBirthsAdapter
from conftest import PRIVACY, _kill_agent, _short_tmpdir, drop, query
from gateway.exchange import parallel as parallel_parse
from gateway.config import load_settings
from gateway.exchange.lifecycle import Gateway

HEADER = [
    "出生医学证明编号", "新生儿姓名", "性别", "出生日期", "出生时间", "出生体重(克)", "出生孕周", "胎次",
    "母亲姓名", "母亲公民身份号码", "父亲姓名", "父亲公民身份号码", "接生机构名称", "接生机构代码", "家庭住址",
    "户籍地行政区划代码",
]
ROWS = 2_000
BATCH = 200  # 10 batches: several per parsing process


def _id(rng: random.Random, year: int, female: bool) -> str:
    body = f"{rng.choice(('440781', '440703', '450102'))}{year:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 49) * 2 + (0 if female else 1):03d}"
    return body + ric.calc_check_digit(body + "0")


def births_csv(rows: int, seed: int, *, first: int = 0) -> bytes:
    """A GB18030 hospital export with every kind of row the writer treats differently:
    valid rows (some with warnings: 450102 is not a division of this county), bad ID
    check characters, impossible dates, missing names, truncated rows, a certificate
    repeated unchanged (a duplicate) and repeated changed (a correction)."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for n in range(first, first + rows):
        mother = _id(rng, rng.randint(1980, 2002), True)
        date = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}"
        name = rng.choice("陈李黄王赵") + rng.choice("小明然安一")
        row = [
            f"Q{n:012d}", name, rng.choice("男女"), date, "08:30", rng.randint(2500, 4200), 39, 1, "陈丽", mother, "", "",
            "台山市人民医院", "12440781MB2C23455K", "广东省台山市台城街道环城南路12号", rng.choice(("440781", "450102")),
        ]
        kind = n % 97
        if kind == 11:
            row[9] = mother[:-1] + ("0" if mother[-1] != "0" else "1")
        elif kind == 23:
            row[3] = "2026-02-30"
        elif kind == 41:
            row[1] = ""
        elif kind == 53:
            row = row[:7]
        elif kind in (61, 62):
            row[0] = f"Q{n - 1 - (kind - 61):012d}"  # 61 repeats row n-1 changed; 62 repeats it again
        writer.writerow(row)
        if kind == 71:
            writer.writerow(row)  # the same certificate, unchanged: a duplicate
    return out.getvalue().encode("gb18030")


@pytest.fixture
def make_home(template_home: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Gateway]]:
    """Gateways on fresh homes (and, on PostgreSQL, fresh databases) with the given settings."""
    made: list[tuple[Path, Gateway, str | None]] = []

    def make(**overrides: object) -> Gateway:
        root = _short_tmpdir("gwp")
        home = root / "home"
        shutil.copytree(template_home, home, ignore=shutil.ignore_patterns("S.*", "*.lock", "gateway.db*"))
        url = None
        if conftest.BACKEND == "postgresql":
            import pg

            url = pg.create_database(request.getfixturevalue("postgres_server"), template=os.environ["GATEWAY_TEST_POSTGRES_TEMPLATE"])
            overrides["database_url"] = url
        settings = load_settings(home).model_copy(update={"settle_seconds": 0.0, "batch_size": BATCH, **overrides})
        gateway = Gateway(settings)
        made.append((home, gateway, url))
        return gateway

    yield make
    for home, gateway, url in made:
        gateway.close()
        PRIVACY.collect_files([home])
        _kill_agent(home / "gnupg")
        shutil.rmtree(home.parent, ignore_errors=True)
        if url is not None:
            import pg

            pg.drop_database(request.getfixturevalue("postgres_server"), url)


def stored(gateway: Gateway) -> dict[str, object]:
    """Everything an exchange leaves behind, without ids and clock times."""
    settings = gateway.settings
    receipts = []
    for (body,) in query(settings, "SELECT body FROM receipt ORDER BY sequence"):
        document = json.loads(body)
        for moment in ("received_at", "processed_at"):
            document.pop(moment)
        document["ledger"].pop("previous_receipt_sha256")  # the hash of the previous receipt, times included
        receipts.append(document)
    outbox = settings.mailbox_root / "hospital" / "outbox"
    return {
        "exchanges": query(settings, "SELECT id, status, rows, accepted, rejected, duplicates, corrected, warnings FROM exchange ORDER BY id"),
        "records": query(
            settings,
            "SELECT exchange_id, contract, schema_version, business_key, version, record_hash, payload, row_number, leaf_index"
            " FROM record ORDER BY id",
        ),
        "row_errors": query(
            settings,
            "SELECT exchange_id, row_number, field, column_name, value_masked, code, reason_zh, reason_en, level FROM rowerror ORDER BY id",
        ),
        "receipts": receipts,
        "reports": {path.name: path.read_bytes() for path in sorted(outbox.glob("*.errors.csv"))},
    }


def ingest_two_files(gateway: Gateway) -> None:
    """A first export through the inbox, then (by hand) a second that repeats part of it."""
    first = births_csv(ROWS, seed=1)
    drop(gateway.settings, "hospital", "hospital_births_202610.csv", first)
    [outcome] = gateway.run_once()
    assert outcome.status == "processed"
    second = gateway.settings.home / "hospital_births_202611.csv"
    second.write_bytes(births_csv(ROWS // 2, seed=2, first=ROWS // 2))  # certificates ROWS/2.. again, changed
    assert gateway.ingest(second, "hospital-births").status == "processed"


def test_parsing_processes_store_exactly_what_one_process_stores(make_home):
    one_process = make_home(ingest_workers=0)
    ingest_two_files(one_process)
    expected = stored(one_process)
    [(_, _, rows, accepted, rejected, duplicates, corrected, warnings), second] = expected["exchanges"]
    # The file exercises every path of the writer: duplicates, corrections, errors, warnings.
    assert rows > ROWS and accepted and rejected and duplicates and corrected and warnings
    assert second[5] > 0 and second[6] > 0  # the second file corrects and repeats the first
    codes = {error[5] for error in expected["row_errors"]}
    assert {"id_check_char", "date_impossible", "missing", "row_truncated", "division_unknown"} <= codes

    for workers in (1, 3):
        parallel = make_home(ingest_workers=workers, parallel_parse_min_bytes=0)
        ingest_two_files(parallel)
        assert stored(parallel) == expected, f"{workers} parsing process(es)"


def test_small_files_stay_in_process_and_large_ones_go_to_the_parsing_processes(make_home, caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    gateway = make_home(ingest_workers=2, parallel_parse_min_bytes=100_000)
    small, large = gateway.settings.home / "small.csv", gateway.settings.home / "large.csv"
    small.write_bytes(births_csv(100, seed=3))
    large.write_bytes(births_csv(ROWS, seed=4, first=1000))
    assert small.stat().st_size < 100_000 <= large.stat().st_size
    gateway.ingest(small, "hospital-births")
    assert "parsing process" not in caplog.text
    gateway.ingest(large, "hospital-births")
    from gateway.masking import mask_file_name

    assert f"{mask_file_name('large.csv')} validated by 2 parsing process(es)" in caplog.text


def test_a_file_unreadable_as_a_whole_is_rejected_with_the_same_reason(make_home):
    data = births_csv(ROWS, seed=5).decode("gb18030").replace("母亲公民身份号码", "母亲身份证", 1).encode("gb18030")
    reasons = []
    for workers in (0, 2):
        gateway = make_home(ingest_workers=workers, parallel_parse_min_bytes=0)
        drop(gateway.settings, "hospital", "births.csv", data)
        [outcome] = gateway.run_once()
        assert outcome.status == "rejected"
        reasons.append((outcome.reason, query(gateway.settings, "SELECT row_number, code, reason_en FROM rowerror")))
    assert reasons[0] == reasons[1]
    assert "missing column(s): 母亲公民身份号码" in reasons[0][0]


@pytest.mark.parametrize("how", ["killed", "raises", "stalls"])
def test_a_parsing_process_that_dies_leaves_the_file_in_the_inbox_and_nothing_stored(make_home, monkeypatch, caplog, how):
    gateway = make_home(ingest_workers=2, parallel_parse_min_bytes=0)
    data = births_csv(ROWS, seed=6)
    drop(gateway.settings, "hospital", "births.csv", data)
    gateway_pid = os.getpid()
    normalize = HospitalBirthsAdapter.normalize

    def dies_in_a_parsing_process(self, row):  # type: ignore[no-untyped-def]
        # The parsing processes are forked: they run this; the gateway process never does.
        if os.getpid() != gateway_pid and row.number >= 1_500:
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "stalls":  # as if stuck on a lock inherited at the fork
                time.sleep(3600)
            raise RuntimeError("simulated adapter bug")
        return normalize(self, row)

    monkeypatch.setattr(HospitalBirthsAdapter, "normalize", dies_in_a_parsing_process)
    monkeypatch.setattr(parallel_parse, "STALL_SECONDS", 3.0)
    # Children the suite's own servers left running (the session's Dovecot is one) are not parsing processes.
    servers = set(_live_children(gateway_pid))
    assert gateway.run_once() == []
    expected = {
        "killed": "ended before it finished the file",
        "raises": "failed: RuntimeError: simulated adapter bug",
        "stalls": "sent nothing for 3 s",
    }[how]
    assert expected in caplog.text and "left in the inbox for the next pass" in caplog.text
    inbox = gateway.settings.mailbox_root / "hospital" / "inbox"
    assert sorted(os.listdir(inbox)) == ["births.csv"] and (inbox / "births.csv").read_bytes() == data
    assert query(gateway.settings, "SELECT status, rows FROM exchange") == [("received", 0)]
    assert query(gateway.settings, "SELECT count(*) FROM record") == [(0,)]
    assert query(gateway.settings, "SELECT count(*) FROM rowerror") == [(0,)]
    assert query(gateway.settings, "SELECT count(*) FROM receipt") == [(0,)]
    assert set(_live_children(gateway_pid)) - servers == set(), "a parsing process was left running"

    monkeypatch.setattr(HospitalBirthsAdapter, "normalize", normalize)
    [outcome] = gateway.run_once()
    assert outcome.status == "processed" and outcome.accepted > 0
    assert query(gateway.settings, "SELECT status, attempts FROM exchange") == [("processed", 2)]


def _live_children(parent: int) -> list[int]:
    return [int(child) for child in os.listdir("/proc") if child.isdigit() and _parent_of(int(child)) == parent and _alive(int(child))]


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(" ", 3)[2] != "Z"
    except OSError:
        return False


@pytest.mark.backend_independent
def test_extending_a_merkle_tree_by_a_batch_of_leaf_hashes_is_appending_them_one_by_one():
    from gateway.receipts.merkle import TreeBuilder, leaf_hash

    leaves = [leaf_hash(str(n).encode()) for n in range(1000)]
    one_by_one, batched = TreeBuilder(), TreeBuilder()
    for h in leaves:
        one_by_one.append_leaf_hash(h)
    for start, end in ((0, 1), (1, 7), (7, 512), (512, 1000)):  # uneven batches across power-of-two edges
        batched.extend_leaf_hashes(leaves[start:end])
        assert batched.size == end
    assert batched.root() == one_by_one.root()
    with pytest.raises(ValueError):
        batched.extend_leaf_hashes([b"short"])


@pytest.mark.backend_independent
def test_a_parsing_process_opens_the_source_as_an_adapter_does(tmp_path):
    # Adapters open the source with `with source.open_binary() as handle` (school's zip
    # check, civil affairs); in a parsing process that reader counts the bytes read.
    from gateway.readers import CountingReader

    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    counted: list[int] = []
    with CountingReader(open(path, "rb"), counted.append) as handle:
        handle.seek(5)
        assert handle.read() == b"56789" and handle.tell() == 10
    assert handle.closed and sum(counted) == 5


def test_a_small_file_is_validated_before_its_transaction_takes_the_write_lock(make_home):
    """On SQLite one transaction writes at a time: while a small file's rows are validated
    another worker must still be able to write (tests/test_workers.py runs such workers;
    bench/ingest.py measures what it buys). A large file past the limit is validated inside
    its transaction, holding the lock: nobody else writes meanwhile."""
    import sqlite3

    from sqlalchemy import create_engine

    gateway = make_home(ingest_workers=0, validate_before_lock_max_bytes=200_000)
    small, large = gateway.settings.home / "small.csv", gateway.settings.home / "large.csv"
    small.write_bytes(births_csv(300, seed=8))
    large.write_bytes(births_csv(ROWS, seed=9, first=5000))
    assert small.stat().st_size <= 200_000 < large.stat().st_size
    normalize = HospitalBirthsAdapter.normalize
    outcomes: list[str] = []
    armed = [False]

    def another_writer_meanwhile(self, row):  # type: ignore[no-untyped-def]
        if armed[0]:  # once a file, in the middle of its validation
            armed[0] = False
            if gateway.engine.dialect.name == "sqlite":
                other = sqlite3.connect(gateway.settings.db_url.split("///", 1)[1], timeout=0.5)
                try:
                    other.execute("BEGIN IMMEDIATE")
                    other.execute("UPDATE exchange SET adapter = adapter WHERE id = 0")
                    other.commit()
                    outcomes.append("wrote")
                except sqlite3.OperationalError as exc:
                    outcomes.append(str(exc))
                finally:
                    other.close()
            else:  # PostgreSQL locks rows, not the database: another writer always goes on
                engine = create_engine(gateway.engine.url)
                with engine.begin() as connection:
                    connection.exec_driver_sql("UPDATE exchange SET adapter = adapter WHERE id = 0")
                engine.dispose()
                outcomes.append("wrote")
        return normalize(self, row)

    HospitalBirthsAdapter.normalize = another_writer_meanwhile  # type: ignore[method-assign]
    try:
        for path in (small, large):
            armed[0] = True
            assert gateway.ingest(path, "hospital-births").status == "processed"
    finally:
        HospitalBirthsAdapter.normalize = normalize  # type: ignore[method-assign]
    expected_large = "wrote" if gateway.engine.dialect.name != "sqlite" else "database is locked"
    assert outcomes == ["wrote", expected_large]
