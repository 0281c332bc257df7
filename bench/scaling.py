"""The benchmark's multi-process parts: scratch PostgreSQL databases, and the
1-versus-2-`gateway worker` run on many files (bench/ingest.py prints both).

A worker run: a fresh gateway home (and on PostgreSQL a fresh database), N workers
started on an empty inbox and waited for until each has started polling, then the files
are renamed into the inbox at once; the clock runs from the first rename until the
exchange table shows every file done. Worker start-up (imports, migrations check,
signing key) is therefore not counted, for either worker count.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


class ScratchDatabases:
    """Databases made for one benchmark run on `server` and dropped at its end, so that
    nothing else on the server is touched."""

    def __init__(self, server: str):
        self.server = server
        self.made: list[str] = []

    def new(self) -> str:
        name = f"gwbench_{uuid.uuid4().hex[:12]}"
        engine = create_engine(_psycopg(self.server), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        self.made.append(name)
        return f"{self.server.rsplit('/', 1)[0]}/{name}"

    def drop_all(self) -> None:
        engine = create_engine(_psycopg(self.server), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                for name in self.made:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            engine.dispose()
        self.made.clear()


def split_file(source: Path, folder: Path, files: int, encoding: str = "gb18030") -> list[Path]:
    """Split a CSV file (header + rows, CRLF lines) into `files` files with the same header
    and about the same number of rows each; returns their paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    header, *rows = source.read_bytes().split(b"\r\n")
    rows = [row for row in rows if row]
    per_file, extra = divmod(len(rows), files)
    paths, start = [], 0
    for number in range(files):
        count = per_file + (1 if number < extra else 0)
        path = folder / f"hospital_births_part{number:03d}.csv"
        path.write_bytes(b"\r\n".join([header, *rows[start : start + count]]) + b"\r\n")
        start += count
        paths.append(path)
    return paths


def _done(database_url: str) -> int:
    engine = create_engine(_psycopg(database_url) if database_url.startswith("postgres") else database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM exchange WHERE status <> 'received'")).scalar_one()
    finally:
        engine.dispose()


def time_workers(gateway: str, home: Path, database_url: str, parts: list[Path], workers: int, timeout: float = 3600) -> float:
    """Seconds for `workers` `gateway worker` processes to process every file of `parts`
    dropped at once into the hospital inbox of `home` (already initialized)."""
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": database_url if database_url.startswith("postgres") else "",
        "GATEWAY_SETTLE_SECONDS": "0",
        "GATEWAY_POLL_SECONDS": "0.2",
        "PYTHONUNBUFFERED": "1",  # the "Polling" line is what says a worker is ready
    }
    logs = [home / f"worker{n}.log" for n in range(workers)]
    processes = []
    for n, log in enumerate(logs):
        with open(log, "wb") as handle:
            processes.append(
                subprocess.Popen([gateway, "worker", "--id", f"bench{n}", "--home", str(home)], env=env, stdout=handle, stderr=handle)
            )
    try:
        started = time.monotonic()
        while not all("Polling" in log.read_text(errors="replace") for log in logs):
            if any(p.poll() is not None for p in processes) or time.monotonic() - started > 120:
                raise SystemExit("a benchmark worker did not start:\n" + "\n".join(log.read_text(errors="replace")[-2000:] for log in logs))
            time.sleep(0.1)
        # Same filesystem: each rename is atomic, and an old mtime means settled.
        staged = home / "bench-staged"
        staged.mkdir()
        past = time.time() - 60
        for part in parts:
            shutil.copy(part, staged / part.name)
            os.utime(staged / part.name, (past, past))
        inbox = home / "mailbox" / "hospital" / "inbox"
        start = time.perf_counter()
        for part in parts:
            os.replace(staged / part.name, inbox / part.name)
        while _done(database_url) < len(parts):
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a benchmark worker died:\n" + "\n".join(log.read_text(errors="replace")[-2000:] for log in logs))
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"workers did not finish {len(parts)} files in {timeout:.0f}s")
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
