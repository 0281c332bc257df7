"""Where the console's audit entries are written (控制台审计日志的存放): sign-ins and their
refusals, sign-outs, back-offs, unlocks, password changes, refused (403) requests, and views,
reveals and downloads of personal data, each with the account, its role and the client address.

Why not in the routing audit table of the main database: a page that writes there waits for
the write lock a long exchange holds (12.8 s on SQLite during a 34,100-row file), so reading
a page would wait for an ingest to commit. So:

- on SQLite the entries go to a database file of their own beside the main one
  (`gateway.db` → `gateway-audit.db`, WAL, one short BEGIN IMMEDIATE transaction an entry),
  which no exchange ever writes;
- on PostgreSQL they go to the table `consoleaudit` of the gateway database: each entry
  commits in a transaction of its own, and rows of other tables an ingest holds do not
  block an insert there.

gateway/store/audit_log.py reads both this log and the routing events (`auditevent`) as one list.
Every text is masked again here (gateway/masking.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from gateway.masking import mask_identifiers
from gateway.store.db import make_engine, session_scope
from gateway.store.web_models import ConsoleAuditEvent

AUDIT_FILE_SUFFIX = "-audit"
# The side file's own schema version (PRAGMA user_version): its one table is made by
# create(checkfirst) rather than the main database's migrations; a change of the table bumps this.
SCHEMA_VERSION = 1
_TEXT_LIMITS = {"user": 64, "role": 32, "department": 100, "client": 64, "route": 300}


def audit_database_url(db_url: str) -> str:
    """The database the console's audit entries go to: on SQLite the file beside the main
    one (`…/gateway.db` → `…/gateway-audit.db`); otherwise the gateway database itself."""
    if not db_url.startswith("sqlite"):
        return db_url
    prefix, _, path = db_url.partition(":///")
    if not path or path.startswith(":memory:"):
        raise ValueError(f"the console's audit log needs a SQLite file, not {db_url!r}")
    main = Path(path)
    return f"{prefix}:///{main.with_name(main.stem + AUDIT_FILE_SUFFIX + (main.suffix or '.db'))}"


def now_utc() -> dt.datetime:
    """Now, in UTC, to the microsecond (entries of one second keep their order)."""
    return dt.datetime.now(dt.UTC)


class ConsoleAudit:
    """The console's audit log for one gateway database: `record` writes an entry in a short
    transaction of its own; `engine` reads them. On PostgreSQL it can share the caller's
    engine (`main`); on SQLite it opens the side file and makes its table."""

    def __init__(self, db_url: str, main: Engine | None = None):
        url = audit_database_url(db_url)
        self.sqlite = url.startswith("sqlite")
        self._owned = self.sqlite or main is None
        self.writer: Engine = main if main is not None and not self._owned else make_engine(url)
        self.engine: Engine = make_engine(url, readonly=True) if self.sqlite else self.writer
        if self.sqlite:
            _make_side_schema(self.writer)

    def record(
        self,
        action: str,
        *,
        user: str | None = None,
        role: str | None = None,
        department: str = "",
        client: str = "",
        route: str = "",
        subjects: Iterable[str] = (),
        detail: str = "",
    ) -> None:
        """Append one entry; every text is masked again (a caller's slip never stores a full ID)."""
        fields = {"user": user, "role": role, "department": department, "client": client, "route": route}
        clean = {k: (mask_identifiers(v)[: _TEXT_LIMITS[k]] if v else v) for k, v in fields.items()}
        entry = ConsoleAuditEvent(
            at=now_utc(), action=action[:64], subjects=mask_identifiers(", ".join(subjects)), detail=mask_identifiers(detail),
            user=clean["user"], role=clean["role"], department=clean["department"] or "", client=clean["client"] or "",
            route=clean["route"] or "",
        )
        with session_scope(self.writer) as session:
            session.add(entry)

    def dispose(self) -> None:
        if self._owned:
            self.writer.dispose()
            if self.engine is not self.writer:
                self.engine.dispose()


def _make_side_schema(engine: Engine) -> None:
    """The side file's one table, once (BEGIN IMMEDIATE: two processes opening it at once queue)."""
    table = SQLModel.metadata.tables[str(ConsoleAuditEvent.__tablename__)]
    with engine.begin() as connection:
        version = connection.execute(text("PRAGMA user_version")).scalar_one()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"the console's audit file has schema {version}, newer than this gateway's {SCHEMA_VERSION}: upgrade the gateway")
        table.create(connection, checkfirst=True)
        connection.execute(text(f"PRAGMA user_version = {SCHEMA_VERSION}"))


__all__ = ["AUDIT_FILE_SUFFIX", "ConsoleAudit", "audit_database_url", "now_utc"]
