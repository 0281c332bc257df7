"""The audit log as a security officer reads it (审计日志): the routing events of the gateway
database (`auditevent`: deliveries, acknowledgements, holds, reminders) and the console's
entries (`consoleaudit`, gateway/store/console_audit.py: sign-ins, refusals, views) in one
list, newest first; filtered by user, action, department and China-time dates; paged
(limit/offset with a total) and exported as CSV (UTF-8 with BOM, masked).

The two sources may be two databases (SQLite: the console's has a file of its own), so the
list is a merge of two keyset-ordered reads rather than one SQL UNION."""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, and_, func, or_
from sqlmodel import Session, col, select

from gateway import clock
from gateway.masking import mask_identifiers
from gateway.store.models import AuditEvent
from gateway.store.web_models import ConsoleAuditEvent

ROUTING, CONSOLE = "routing", "console"
_BATCH = 500
_EARLIEST, _LATEST = dt.date(1900, 1, 1), dt.date(9998, 12, 31)
CSV_COLUMNS = ("时间 at (UTC+8)", "来源 source", "编号 id", "操作 action", "用户 user", "角色 role", "部门 department",
               "客户端 client", "请求 route", "对象 subjects", "交付 delivery", "详情 detail")


@dataclass(frozen=True)
class AuditFilter:
    """What the officer asks for; None: any. Dates are China dates, both included."""

    user: str | None = None
    action: str | None = None
    department: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One entry of either source, masked."""

    source: str
    id: int
    at: dt.datetime
    action: str
    department: str
    user: str | None
    role: str | None
    client: str | None
    route: str | None
    subjects: str
    delivery_id: int | None
    detail: str


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int
    limit: int
    offset: int


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _bounds(filters: AuditFilter) -> tuple[dt.datetime, dt.datetime] | None:
    if filters.date_from is None and filters.date_to is None:
        return None
    first = min(max(filters.date_from or _EARLIEST, _EARLIEST), _LATEST)
    last = min(max(filters.date_to or _LATEST, _EARLIEST), _LATEST)
    return clock.start_of_day(first).astimezone(dt.UTC), clock.start_of_day(last + dt.timedelta(days=1)).astimezone(dt.UTC)


class _Source:
    """One table read newest first, filtered; `model` is AuditEvent or ConsoleAuditEvent."""

    def __init__(self, engine: Engine, model: type[AuditEvent] | type[ConsoleAuditEvent], filters: AuditFilter):
        self.engine, self.model, self.filters = engine, model, filters
        self.name = ROUTING if model is AuditEvent else CONSOLE

    def _conditions(self) -> list[object] | None:
        """The WHERE conditions, or None when the filters exclude the whole source."""
        model, f = self.model, self.filters
        conditions: list[object] = []
        if f.user:
            if model is AuditEvent:
                return None  # routing events are the gateway's own: no account did them
            conditions.append(col(ConsoleAuditEvent.user) == f.user)
        if f.action:
            conditions.append(col(model.action) == f.action)
        if f.department:
            conditions.append(col(model.department) == f.department)
        bounds = _bounds(f)
        if bounds is not None:
            conditions += [col(model.at) >= bounds[0], col(model.at) < bounds[1]]
        return conditions

    def count(self) -> int:
        conditions = self._conditions()
        if conditions is None:
            return 0
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(self.model).where(*conditions)).one())  # type: ignore[arg-type]

    def rows(self) -> Iterator[AuditEntry]:
        """Newest first, in batches (keyset on at, id: no OFFSET over a long log)."""
        conditions = self._conditions()
        if conditions is None:
            return
        model = self.model
        after: tuple[dt.datetime, int] | None = None
        while True:
            query = select(model).where(*conditions).order_by(col(model.at).desc(), col(model.id).desc()).limit(_BATCH)  # type: ignore[arg-type]
            if after is not None:
                query = query.where(or_(col(model.at) < after[0], and_(col(model.at) == after[0], col(model.id) < after[1])))
            with Session(self.engine) as session:
                batch: list[AuditEvent | ConsoleAuditEvent] = list(session.exec(query).all())  # type: ignore[arg-type]
            for row in batch:
                yield self._entry(row)
            if len(batch) < _BATCH:
                return
            last = batch[-1]
            after = (last.at, last.id or 0)

    def _entry(self, row: AuditEvent | ConsoleAuditEvent) -> AuditEntry:
        if isinstance(row, ConsoleAuditEvent):
            return AuditEntry(CONSOLE, row.id or 0, _aware(row.at), row.action, row.department, row.user, row.role, row.client,
                              row.route, mask_identifiers(row.subjects), None, mask_identifiers(row.detail))
        return AuditEntry(ROUTING, row.id or 0, _aware(row.at), row.action, row.department, None, None, None, None, "",
                          row.delivery_id, mask_identifiers(row.detail))


def _sort_key(entry: AuditEntry) -> tuple[dt.datetime, str, int]:
    return entry.at, entry.source, entry.id


def entries(routing: Engine, console: Engine, filters: AuditFilter = AuditFilter()) -> Iterator[AuditEntry]:
    """Every entry of both sources that the filters let through, newest first."""
    sources = [_Source(routing, AuditEvent, filters), _Source(console, ConsoleAuditEvent, filters)]
    return heapq.merge(*(source.rows() for source in sources), key=_sort_key, reverse=True)


def page(routing: Engine, console: Engine, filters: AuditFilter = AuditFilter(), *, limit: int = 100, offset: int = 0) -> AuditPage:
    """One page of the list, and how many entries the filters let through in all."""
    total = _Source(routing, AuditEvent, filters).count() + _Source(console, ConsoleAuditEvent, filters).count()
    chosen = list(itertools.islice(entries(routing, console, filters), offset, offset + limit)) if offset < total else []
    return AuditPage(chosen, total, limit, offset)


def actions(routing: Engine, console: Engine) -> list[str]:
    """Every action either log holds, for the filter's choices."""
    found: set[str] = set()
    for engine, model in ((routing, AuditEvent), (console, ConsoleAuditEvent)):
        with Session(engine) as session:
            found.update(session.exec(select(model.action).distinct()).all())
    return sorted(found)


def csv_chunks(routing: Engine, console: Engine, filters: AuditFilter = AuditFilter()) -> Iterator[bytes]:
    """The whole filtered list as CSV: UTF-8 with a BOM (Excel opens the Chinese), CRLF,
    times in China time, every text masked; in chunks, to stream a long log."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    first = True
    for entry in entries(routing, console, filters):
        writer.writerow(_csv_row(entry))
        if buffer.tell() > 64 * 1024:
            yield _take(buffer, first)
            first = False
    yield _take(buffer, first)


def _take(buffer: io.StringIO, first: bool) -> bytes:
    chunk = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return chunk.encode("utf-8-sig" if first else "utf-8")


def _csv_row(entry: AuditEntry) -> list[str]:
    cells = [
        clock.in_china(entry.at).strftime("%Y-%m-%d %H:%M:%S"), entry.source, str(entry.id), entry.action, entry.user or "",
        entry.role or "", entry.department, entry.client or "", entry.route or "", entry.subjects,
        str(entry.delivery_id or ""), entry.detail,
    ]
    # A cell Excel would take for a formula (=, +, -, @) is kept as text.
    return [mask_identifiers("'" + c if c[:1] in ("=", "+", "-", "@") else c) for c in cells]


__all__ = ["CONSOLE", "CSV_COLUMNS", "ROUTING", "AuditEntry", "AuditFilter", "AuditPage", "actions", "csv_chunks", "entries", "page"]
