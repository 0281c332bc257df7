"""Database faults with real servers and real file systems: PostgreSQL restarted under
running workers, a read-only database and a full one. Each time the files stay in the
inbox, the fault is named in one clear line (and `gateway run --once` exits 3), workers
neither die nor spin, and once the fault clears every file is processed exactly once.

How each fault is made, and why:
- PostgreSQL restart: a throwaway cluster of the test's own (tests/pg.py), stopped with
  `pg_ctl stop -m immediate` (like a crash) for a few seconds, never the shared server.
- Read-only, SQLite: the database on a tmpfs of its own, remounted read-only (`mount -o
  remount,ro`). The tests run as root (CI does), for whom file permissions are no fault,
  and Linux refuses a read-only remount while a process holds the file open for writing,
  so the fault is in place before the gateway opens the database.
- Read-only, PostgreSQL: `ALTER DATABASE ... SET default_transaction_read_only = on` on
  the test's own database and its sessions ended, what a failover to a standby looks like
  to the gateway (SQLSTATE 25006), while a worker runs.
- Full, SQLite: the database on a small tmpfs filled up by another file while a worker
  runs; cleared by deleting that file (what an operator does: free space).
- Full, PostgreSQL: the test's own cluster with the database in a tablespace on a small
  tmpfs, filled up the same way (SQLSTATE 53100, "could not extend file").
Mounting needs root (CAP_SYS_ADMIN); without it these tests fail, naming the reason.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import pg
from conftest import BACKEND, REPO, drop, hospital_births_file, query, run_gateway
from gateway.config import load_settings
from gateway.store import create_schema, make_engine

GATEWAY = str(REPO / ".venv" / "bin" / "gateway")


def start_worker(home: Path, name: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ, "GATEWAY_SETTLE_SECONDS": "0", "GATEWAY_POLL_SECONDS": "0.3", "PYTHONUNBUFFERED": "1",
        "GATEWAY_DATABASE_RETRY_MAX_SECONDS": "2",  # back-off 1, 2, 2, 2... s: recovery within seconds
    }
    with open(log, "ab") as handle:
        return subprocess.Popen([GATEWAY, "worker", "--id", name, "--home", str(home)], env=env, stdout=handle, stderr=handle)


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition, seconds: float, what: str, logs: list[Path] = ()) -> None:  # type: ignore[no-untyped-def, assignment]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace")[-3000:] for log in logs)
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.2)


def inbox_names(settings) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(p.name for p in (settings.mailbox_root / "hospital" / "inbox").iterdir())


def assert_each_processed_once(home: Path, settings, names: list[str], rows: int, *, verify_ledger: bool = True) -> None:  # type: ignore[no-untyped-def]
    assert inbox_names(settings) == []
    processed = sorted(p.name for p in (settings.mailbox_root / "hospital" / "processed").iterdir())
    assert processed == sorted(names), "every drop once in processed/, nothing else"
    assert not list((settings.mailbox_root / "hospital" / "rejected").iterdir())
    exchanges = query(home, "SELECT file_name, status FROM exchange ORDER BY file_name")
    assert exchanges == [(name, "processed") for name in sorted(names)], "one processed exchange per drop"
    assert query(home, "SELECT count(*), count(DISTINCT business_key) FROM record") == [(len(names) * rows,) * 2]
    sequences = [s for (s,) in query(home, "SELECT sequence FROM receipt ORDER BY sequence")]
    assert sequences == list(range(1, len(names) + 1)), "one gapless receipt chain"
    chain = query(home, "SELECT sha256, previous_sha256 FROM receipt ORDER BY sequence")
    assert all(chain[i][1] == chain[i - 1][0] for i in range(1, len(chain)))
    if not verify_ledger:
        return
    run_gateway(home, "ledger", "checkpoint")
    verified = run_gateway(home, "ledger", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


# -- file systems and servers the faults are made on ------------------------------------------


class Tmpfs:
    """A tmpfs of `megabytes` mounted on a new folder (root only)."""

    def __init__(self, megabytes: int):
        self.path = Path(tempfile.mkdtemp(prefix="gwfs-", dir="/tmp"))
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0777", "tmpfs", str(self.path)], capture_output=True, text=True)
        if mounted.returncode != 0:
            raise RuntimeError(f"these fault tests mount a tmpfs and need root (CAP_SYS_ADMIN): {mounted.stderr.strip()}")
        self.filler = self.path / "filler"

    def remount(self, option: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{option}", str(self.path)], check=True, capture_output=True)

    def fill(self) -> None:
        """Take every free byte, as another program writing to the volume would."""
        chunk = b"\0" * 65536
        with open(self.filler, "ab", buffering=0) as handle:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        handle.write(chunk[:size])
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        assert os.statvfs(self.path).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        os.rmdir(self.path)


@pytest.fixture
def own_postgres() -> Iterator[tuple[pg.ThrowawayCluster, str]]:
    """A PostgreSQL cluster of this test's own: it may be stopped and filled."""
    cluster = pg.ThrowawayCluster()
    server = cluster.start()
    try:
        yield cluster, server
    finally:
        cluster.stop()


def _admin(server: str):  # type: ignore[no-untyped-def]
    return create_engine("postgresql+psycopg://" + server.split("://", 1)[1], isolation_level="AUTOCOMMIT")


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()


# -- PostgreSQL restarted under running workers -----------------------------------------------


@pytest.mark.slow
def test_workers_carry_on_when_postgresql_restarts_mid_run(home, tmp_path, own_postgres, monkeypatch):
    cluster, server = own_postgres
    url = pg.create_database(server)
    _migrate(url)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    settings = load_settings(home)
    rows, names = 20, []

    def drop_batch(first: int, count: int) -> None:
        for batch in range(first, first + count):
            names.append(f"births_{batch:04d}.csv")
            drop(settings, "hospital", names[-1], hospital_births_file(batch, rows, "F"))

    drop_batch(0, 20)
    logs = [tmp_path / f"w{n}.log" for n in range(2)]
    workers = [start_worker(home, f"w{n}", log) for n, log in enumerate(logs)]
    try:
        wait_for(lambda: query(home, "SELECT count(*) FROM exchange WHERE status = 'processed'")[0][0] >= 3, 60, "the first exchanges", logs)
        cluster.pause("immediate")  # like a crash: sessions cut, no shutdown checkpoint
        drop_batch(20, 10)  # files keep dropping while the database is away
        time.sleep(3)
        assert [w.poll() for w in workers] == [None, None], "a worker died with the database away"
        cluster.resume()
        drop_batch(30, 10)
        wait_for(
            lambda: not inbox_names(settings) and query(home, "SELECT count(*) FROM fileclaim") == [(0,)],
            90, "every drop processed after the restart", logs,
        )
        assert [w.poll() for w in workers] == [None, None]
    finally:
        stop_workers(workers)
    text_of = [log.read_text(errors="replace") for log in logs]
    assert any("database unreachable" in t for t in text_of), "the outage is reported:\n" + text_of[0][-3000:]
    assert any("the database works again" in t for t in text_of)
    for t in text_of:
        # Backing off (1, 2, 4 s...) instead of a line every 0.3 s poll.
        assert t.count("database unreachable") <= 12, t[-3000:]
    assert_each_processed_once(home, settings, names, rows)


# -- read-only and full ------------------------------------------------------------------------


def _fault_is_reported_and_cleared(home, tmp_path, settings, *, kind: str, make_fault, clear_fault, worker_first: bool) -> None:  # type: ignore[no-untyped-def]
    """The scenario shared by the read-only and full tests: three files dropped while the
    fault lasts; `gateway run --once` exits 3 naming it; a worker reports it without dying
    or spinning; after `clear_fault()` the worker processes each file exactly once."""
    rows = 200  # big enough that storing a file needs new space in the database
    names = [f"births_{n:04d}.csv" for n in range(3)]
    log = tmp_path / "worker.log"
    worker = None
    try:
        if worker_first:
            worker = start_worker(home, "w0", log)
            wait_for(lambda: "Polling" in log.read_text(errors="replace"), 60, "the worker to start", [log])
        make_fault()
        for n, name in enumerate(names):
            drop(settings, "hospital", name, hospital_births_file(n, rows, "F"))
        once = run_gateway(home, "run", "--once", check=False)
        assert once.returncode == 3, once.stdout + once.stderr
        assert f"database {kind}" in once.stderr, once.stderr
        assert "files stay in their inboxes" in once.stderr
        assert "Traceback" not in once.stdout + once.stderr
        if worker is None:
            worker = start_worker(home, "w0", log)
        # More tries than max_attempts (3): a try cut short by the database does not count
        # against the file, which would otherwise be rejected as "processing failed repeatedly".
        wait_for(lambda: log.read_text(errors="replace").count(f"database {kind}") >= 4, 60, f"the worker to report the database {kind}", [log])
        assert worker.poll() is None, "the worker died:\n" + log.read_text(errors="replace")[-3000:]
        assert inbox_names(settings) == sorted(names), "files stay in the inbox"
        assert log.read_text(errors="replace").count(f"database {kind}") <= 10, "no line every poll: it backs off"
        clear_fault()
        wait_for(lambda: not inbox_names(settings), 60, "the files after the fault cleared", [log])
        wait_for(lambda: query(home, "SELECT count(*) FROM fileclaim") == [(0,)], 30, "the claims released", [log])
        assert worker.poll() is None
    finally:
        if worker is not None:
            stop_workers([worker])
    assert_each_processed_once(home, settings, names, rows, verify_ledger=False)  # the restart test verifies it
    assert query(home, "SELECT DISTINCT attempts FROM exchange") == [(1,)], "tries cut short by the fault are not counted"


@pytest.mark.slow
def test_read_only_database_keeps_files_until_it_is_writable(home, tmp_path, monkeypatch, database_url, postgres_server):
    if BACKEND == "postgresql":
        settings = load_settings(home)
        server = postgres_server
        name = database_url.rsplit("/", 1)[1]

        def set_read_only(on: bool) -> None:
            admin = _admin(server)
            try:
                with admin.connect() as connection:
                    setting = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
                    connection.execute(text(f'ALTER DATABASE "{name}" {setting}'))
                    if on:  # what a failover does to the sessions of the old primary
                        connection.execute(
                            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                            {"name": name},
                        )
            finally:
                admin.dispose()

        _fault_is_reported_and_cleared(
            home, tmp_path, settings, kind="read-only",
            make_fault=lambda: set_read_only(True), clear_fault=lambda: set_read_only(False), worker_first=True,
        )
        return
    volume = Tmpfs(16)
    try:
        monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{volume.path}/gateway.db")
        settings = load_settings(home)
        _migrate(settings.db_url)
        _fault_is_reported_and_cleared(
            home, tmp_path, settings, kind="read-only",
            make_fault=lambda: volume.remount("ro"), clear_fault=lambda: volume.remount("rw"), worker_first=False,
        )
    finally:
        volume.close()


@pytest.mark.slow
def test_full_database_keeps_files_until_there_is_space(home, tmp_path, monkeypatch, request):
    volume = Tmpfs(24)
    try:
        if BACKEND == "postgresql":
            cluster, server = request.getfixturevalue("own_postgres")
            space = volume.path / "tablespace"
            space.mkdir()
            if cluster.as_root:
                os.chown(space, *_postgres_ids())
            admin = _admin(server)
            try:
                with admin.connect() as connection:
                    connection.execute(text(f"CREATE TABLESPACE small LOCATION '{space}'"))
                    connection.execute(text('CREATE DATABASE "gwfull" TABLESPACE small'))
            finally:
                admin.dispose()
            url = server.rsplit("/", 1)[0] + "/gwfull"
        else:
            url = f"sqlite:///{volume.path}/gateway.db"
        monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
        settings = load_settings(home)
        _migrate(url)
        _fault_is_reported_and_cleared(
            home, tmp_path, settings, kind="full", make_fault=volume.fill, clear_fault=volume.free, worker_first=True,
        )
    finally:
        volume.close()  # lazily: the cluster still holds the tablespace until its fixture stops it


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid
