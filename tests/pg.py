"""PostgreSQL for the test suite: the server named by GATEWAY_TEST_POSTGRES_URL (CI: the
machine's own, 127.0.0.1:5432), else a throwaway cluster started here from Debian's
postgresql binaries (scripts/bootstrap installs them). Each test gets a fresh database.

A throwaway cluster is made with initdb/pg_ctl directly rather than pytest-postgresql,
because PostgreSQL refuses to run as root, and CI runs as root: as root the cluster runs
as the `postgres` system account (created by Debian's package).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL binaries are missing: run ./scripts/bootstrap (apt-get install postgresql)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayCluster:
    def __init__(self) -> None:
        self.bin = _binaries()
        self.dir = Path(tempfile.mkdtemp(prefix="gwpg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else os.environ.get("USER", "postgres")
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        self.resume()
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def pause(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data (`fast` ends sessions cleanly, `immediate` like a crash)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def resume(self) -> None:
        """Start the (initialized) server again on the same port."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _admin_url(server: str) -> str:
    return "postgresql+psycopg://" + server.split("://", 1)[1]


def create_database(server: str, template: str | None = None) -> str:
    """A new database on `server` (a copy of `template`'s URL when given); returns its URL."""
    name = f"gwtest_{uuid.uuid4().hex[:12]}"
    engine = create_engine(_admin_url(server), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            copy = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
            connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    finally:
        engine.dispose()
    base = server.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_database(server: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(_admin_url(server), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for _ in range(3):
                try:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    return
                except Exception:  # noqa: BLE001 - a backend still closing; try again
                    time.sleep(0.5)
    finally:
        engine.dispose()


def migrated_template(server: str) -> str:
    """A database at the current schema, to copy per test (faster than migrating each)."""
    from gateway.store import create_schema, make_engine

    url = create_database(server)
    engine = make_engine(url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()
    return url


class DatabasePool:
    """The per-test databases, made one ahead and dropped behind on a background thread.

    Creating a database from the template and dropping one (WITH FORCE) cost a PostgreSQL
    round of file copies and WAL each, most of a second per test on a loaded machine; the
    thread does both while the tests run, so a test only waits when the next database is
    not ready yet. Every test still gets a fresh copy of the template that no other test
    touched, and each used database is dropped (all of them before the session ends)."""

    def __init__(self, server: str, template: str) -> None:
        self.server, self.template = server, template
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gwtest-databases")
        self.ahead: Future[str] = self.thread.submit(create_database, server, template)

    def take(self) -> str:
        """A fresh database (its URL); the next one is started at once."""
        url = self.ahead.result()
        self.ahead = self.thread.submit(create_database, self.server, self.template)
        return url

    def give_back(self, url: str) -> None:
        """Drop a used database, behind the tests."""
        self.thread.submit(drop_database, self.server, url)

    def close(self) -> None:
        """Drop the unused one made ahead, and wait for every drop."""
        try:
            self.give_back(self.ahead.result())
        finally:
            self.thread.shutdown(wait=True)
