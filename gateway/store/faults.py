"""Database faults an operator fixes (server away, read-only, disk full), told apart from
bugs, and the back-off a long-running gateway keeps while one lasts (docs/deploy/scale.md).

A fault is never a reason to lose a file: whatever exchange was being written rolls back,
the file stays in its inbox, and the next pass after the fault clears takes it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

# PostgreSQL SQLSTATEs (Appendix A of the PostgreSQL manual).
_PG_READ_ONLY = {"25006"}  # read_only_sql_transaction: a standby, or default_transaction_read_only
_PG_FULL = {"53100"}  # disk_full
_PG_AWAY_PREFIXES = ("08", "57P")  # connection exceptions; admin/crash shutdown, starting up
_SQLITE = {
    "SQLITE_READONLY": "read-only",
    "SQLITE_CANTOPEN": "read-only",  # a WAL database on a read-only file system cannot be opened
    "SQLITE_FULL": "full",
    "SQLITE_IOERR": "unreachable",
}

ADVICE = {
    "unreachable": "the gateway retries by itself; check that the database server is running and reachable",
    "read-only": "make the database writable again (PostgreSQL: a standby or default_transaction_read_only; "
    "SQLite: the file system or the file's permissions)",
    "full": "free space on the database's volume (or grow it)",
}


@dataclass(frozen=True)
class DatabaseFault:
    """What is wrong: `kind` is unreachable, read-only or full; `detail` is the driver's
    first line (it never carries a record's values for these errors)."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"database {self.kind}: {self.detail}; files stay in their inboxes; {ADVICE[self.kind]}"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def database_fault(exc: BaseException) -> DatabaseFault | None:
    """The fault behind `exc` (or anything in its cause/context chain), None for any
    other error (a bug, a constraint): those are not retried blindly."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        fault = _classify(error)
        if fault is not None:
            return fault
        error = error.__cause__ or error.__context__
    return None


def _classify(error: BaseException) -> DatabaseFault | None:
    original: BaseException = (error.orig or error) if isinstance(error, DBAPIError) else error
    if isinstance(original, sqlite3.Error):
        name = getattr(original, "sqlite_errorname", "") or ""
        for prefix, kind in _SQLITE.items():
            if name == prefix or name.startswith(prefix + "_"):
                return DatabaseFault(kind, _first_line(original))
        return None
    sqlstate = getattr(original, "sqlstate", None)
    module = type(original).__module__
    if module.startswith("psycopg"):
        if sqlstate in _PG_READ_ONLY:
            return DatabaseFault("read-only", _first_line(original))
        if sqlstate in _PG_FULL:
            return DatabaseFault("full", _first_line(original))
        if sqlstate is None and type(original).__name__ == "OperationalError":
            return DatabaseFault("unreachable", _first_line(original))  # refused, reset, timed out
        if sqlstate and sqlstate.startswith(_PG_AWAY_PREFIXES):
            return DatabaseFault("unreachable", _first_line(original))
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return DatabaseFault("unreachable", _first_line(original))
    return None


class Backoff:
    """Waits that double from `first` to `most` seconds while a fault lasts."""

    def __init__(self, first: float = 1.0, most: float = 30.0):
        self.first, self.most = first, most
        self.delay = 0.0
        self.until = 0.0

    def waiting(self) -> bool:
        return time.monotonic() < self.until

    def failed(self) -> float:
        """One more failure: the seconds until the next try."""
        self.delay = min(self.most, max(self.first, self.delay * 2))
        self.until = time.monotonic() + self.delay
        return self.delay

    def succeeded(self) -> bool:
        """True when this ends a fault (so the recovery is logged once)."""
        ended = self.delay > 0
        self.delay, self.until = 0.0, 0.0
        return ended
