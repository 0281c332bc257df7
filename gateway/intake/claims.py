"""Work sharing between gateway processes: found files are queued in the database and
claimed one at a time, so several `gateway worker` processes (on several machines, on
one PostgreSQL database) never process the same file at once, and a file whose worker
died is taken over after `claim_timeout_seconds`.

On PostgreSQL a claim is `SELECT ... FOR UPDATE SKIP LOCKED`: workers never wait on each
other's rows. On SQLite the writer's BEGIN IMMEDIATE makes the same check-and-set atomic.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from sqlalchemy import CursorResult, Engine, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from gateway.store import session_scope
from gateway.store.faults import database_fault
from gateway.store.models import FileClaim
from gateway.intake.transports import FoundFile
from gateway.masking import mask_file_path

log = logging.getLogger("gateway.intake.claims")


def utcnow() -> dt.datetime:
    # Full precision: heartbeats and takeover timeouts can be shorter than a second.
    return dt.datetime.now(dt.UTC)


def worker_id(name: str | None = None) -> str:
    """`NAME@HOST:PID`: the host and pid let a restarted process on the same machine take
    over its dead predecessor's claims at once instead of after the timeout."""
    return f"{name or uuid.uuid4().hex[:6]}@{socket.gethostname()}:{os.getpid()}"


def _dead_on_this_host(worker: str) -> bool:
    name, _, place = worker.rpartition("@")
    host, _, pid = place.rpartition(":")
    if not name or host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class Claim:
    id: int
    found: FoundFile


class ClaimQueue:
    """The shared queue of found files, on the gateway database."""

    def __init__(self, engine: Engine, worker: str | None = None, *, timeout: float = 60.0, heartbeat: float = 10.0):
        self.engine, self.worker = engine, worker_id(worker)
        self.timeout, self.heartbeat = timeout, heartbeat
        # Claims whose release failed because the database was away: released first
        # thing once it is back, rather than left to the takeover timeout.
        self.unreleased: list[Claim] = []

    def enqueue(self, found: list[FoundFile]) -> None:
        """Queue files (a file already queued, by anyone, is left as it is)."""
        if not found:
            return
        rows = [
            {"department": f.department, "path": f.path, "name": f.name, "size": f.size, "mtime": f.mtime, "kind": f.kind, "queued_at": utcnow()}
            for f in found
        ]
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(FileClaim).values(rows).on_conflict_do_nothing(index_elements=["department", "path"])
        with session_scope(self.engine) as session:
            session.execute(statement)

    def next(self) -> Claim | None:
        """Claim the oldest unclaimed (or abandoned) file, or None when there is none."""
        while self.unreleased:
            self.release(self.unreleased[0])
            self.unreleased.pop(0)
        self._free_claims_of_dead_local_workers()
        stale = utcnow() - dt.timedelta(seconds=self.timeout)
        with session_scope(self.engine) as session:
            row = session.execute(
                select(FileClaim)
                .where(or_(col(FileClaim.worker).is_(None), col(FileClaim.heartbeat_at) < stale))
                .order_by(col(FileClaim.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalars().first()
            if row is None:
                return None
            if row.worker is not None:
                log.warning("taking over %s from %s, silent since %s", mask_file_path(row.path), row.worker, row.heartbeat_at)
            row.worker, row.heartbeat_at = self.worker, utcnow()
            found = FoundFile(row.department, row.name, row.path, row.size, row.mtime, row.kind)
            return Claim(row.id or 0, found)

    def _free_claims_of_dead_local_workers(self) -> None:
        with session_scope(self.engine) as session:
            held = session.execute(select(col(FileClaim.id), col(FileClaim.worker)).where(col(FileClaim.worker).is_not(None))).all()
            dead = [claim_id for claim_id, worker in held if _dead_on_this_host(worker)]
            if dead:
                log.warning("freeing %d claim(s) of dead gateway processes on this machine", len(dead))
                session.execute(update(FileClaim).where(col(FileClaim.id).in_(dead)).values(worker=None, heartbeat_at=None))

    def release(self, claim: Claim) -> None:
        with session_scope(self.engine) as session:
            session.execute(delete(FileClaim).where(col(FileClaim.id) == claim.id, col(FileClaim.worker) == self.worker))

    def beat(self, claim: Claim) -> bool:
        """Renew the claim; False when another process took it over meanwhile."""
        with session_scope(self.engine) as session:
            result = session.execute(
                update(FileClaim).where(col(FileClaim.id) == claim.id, col(FileClaim.worker) == self.worker).values(heartbeat_at=utcnow())
            )
            return bool(cast("CursorResult[object]", result).rowcount)

    @contextmanager
    def holding(self, claim: Claim) -> Iterator[None]:
        """Heartbeat the claim while the block runs; release it afterwards, whatever happens."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat):
                try:
                    if not self.beat(claim):
                        log.error("claim on %s was taken over by another process", mask_file_path(claim.found.path))
                        return
                except Exception:  # noqa: BLE001 - the database may be briefly away; try on the next beat
                    log.warning("heartbeat for %s failed; retrying", mask_file_path(claim.found.path))

        thread = threading.Thread(target=beat, name=f"heartbeat-{claim.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            try:
                self.release(claim)
            except Exception as exc:
                if database_fault(exc) is not None:
                    self.unreleased.append(claim)
                raise
