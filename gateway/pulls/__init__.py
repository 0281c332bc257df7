"""Scheduled pulls from partners' HTTP APIs (docs/pulls.md): the housing registry's
occupancy changes and the national platform's inbox.

Each page is one exchange, like a file drop: streamed to staging through the sniffer
(hash, encoding), then the pipeline (`Gateway.process_page`): duplicate check, adapter,
one transaction, signed receipt and report in the department's outbox, a copy of the
page in its processed/ (or rejected/) folder.

The cursor (`pullcursor` table) advances only after a page's exchange has committed,
in a transaction of its own that checks the cursor is still where the page was asked
from. A crash between the commit and the advance repeats that one page: the same bytes
from the same cursor are recognised as already committed (the outbox is completed if
need be) and the cursor moves on, storing nothing twice; a page the partner has since
changed is a new exchange whose records already stored count as duplicates.

A page refused as a whole (malformed XML or JSON) holds the cursor: the page is receipted
as `rejected` with its report, later pages are not fetched (so none is lost), and every
run reports the error again without making another exchange of the same bytes. It moves
on when the partner serves that page readable, or when an operator runs `gateway pulls
skip SOURCE --reason ...` (to the cursor the bad page named, or `--to CURSOR`), which is
recorded in the pull history. Nothing is ever skipped silently.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from lxml import etree
from sqlalchemy import update
from sqlmodel import select

from gateway.config import PullSource
from gateway.errors import ConfigError, FileRejected, GatewayError, UnknownName
from gateway.exchange.lifecycle import Gateway, Outcome
from gateway.store import Exchange, session_scope
from gateway.store.models import PullCursor, PullPage, utcnow
from gateway.readers.xml import HARDENED, iter_elements, local_name
from gateway.pulls.http import PullError, RetryLog, endpoint, fetch, make_session

log = logging.getLogger("gateway.pulls")

__all__ = ["PageInfo", "PullError", "PullReport", "Puller", "skip", "sources"]


# -- what a page says about itself ---------------------------------------------------


@dataclass
class PageInfo:
    """Read from a staged page before the pipeline: the cursor for the next request, how
    many records it holds, and whether it could be read at all."""

    next_cursor: str | None
    records: int
    readable: bool = True
    problem: str = ""


def _housing_info(path: Path) -> PageInfo:
    from adapters.housing_registry import parse_page

    try:
        with open(path, "rb") as handle:
            page = parse_page(handle)
            count = sum(1 for _ in page)
            return PageInfo(page.next_cursor, count)
    except (FileRejected, UnicodeDecodeError, ValueError) as exc:
        return PageInfo(None, 0, readable=False, problem=str(exc))


def _platform_info(path: Path) -> PageInfo:
    cursor = None
    try:
        with open(path, "rb") as handle:
            for _, element in etree.iterparse(handle, events=("start",), **HARDENED):
                if local_name(element) == "JHXX":
                    cursor = element.get("CURSOR") or None
                break
    except etree.XMLSyntaxError:
        pass
    try:
        count = sum(1 for _ in iter_elements(str(path), root="JHXX"))
    except (FileRejected, etree.XMLSyntaxError, ValueError) as exc:
        return PageInfo(cursor, 0, readable=False, problem=str(exc))
    return PageInfo(cursor, count)


@dataclass(frozen=True)
class Kind:
    path: str
    suffix: str
    info: Callable[[Path], PageInfo]
    limit: bool


KINDS = {
    "housing": Kind("/api/v1/occupancy-changes", ".json", _housing_info, limit=True),
    "platform": Kind("/exchange/inbox", ".xml", _platform_info, limit=False),
}


def sources(settings) -> dict[str, PullSource]:  # type: ignore[no-untyped-def]
    """The configured pull sources, `[pulls.NAME]`, each checked against the departments."""
    for name, source in settings.pulls.items():
        if source.department not in settings.departments:
            raise ConfigError(f"[pulls.{name}] department {source.department!r} is not in `departments`")
    return dict(settings.pulls)


def source_named(settings, name: str) -> PullSource:  # type: ignore[no-untyped-def]
    configured = sources(settings)
    if name not in configured:
        raise UnknownName("pull source", name, list(configured))
    return configured[name]


# -- a run -----------------------------------------------------------------------------


@dataclass
class PageResult:
    since: str | None
    event: str  # page | unchanged | empty | refused | recovered
    next_cursor: str | None = None
    exchange_id: int | None = None
    status: str | None = None
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0


@dataclass
class PullReport:
    """What one run of one source did."""

    source: str
    cursor_before: str | None = None
    cursor_after: str | None = None
    pages: list[PageResult] = field(default_factory=list)
    error: str | None = None
    blocked: bool = False
    stopped: str | None = None
    retries: RetryLog = field(default_factory=RetryLog)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exchanges(self) -> list[int]:
        return [page.exchange_id for page in self.pages if page.exchange_id is not None and page.event == "page"]

    def summary(self) -> str:
        stored = [p for p in self.pages if p.event == "page"]
        parts = [f"{len(stored)} page(s) as exchanges"]
        if stored:
            parts.append(f"{sum(p.accepted for p in stored)} accepted, {sum(p.rejected for p in stored)} rejected, "
                         f"{sum(p.duplicates for p in stored)} duplicate")
        recovered = sum(1 for p in self.pages if p.event == "recovered")
        if recovered:
            parts.append(f"{recovered} page(s) already committed before (cursor moved on)")
        if self.retries.retries:
            parts.append(f"{self.retries.retries} retries, {self.retries.waited:.1f}s waited")
        parts.append(f"cursor {self.cursor_before or '(start)'} -> {self.cursor_after or '(start)'}")
        if self.stopped:
            parts.append(self.stopped)
        if self.error:
            parts.append(f"ERROR: {self.error}")
        return "; ".join(parts)


class Puller:
    """Pulls one source from its cursor until the partner has nothing new (or `max_pages`).

    `should_continue` is asked before each page (a lost lease, Ctrl-C); `on_page` is
    called with each committed page's outcome (the assist-check sync hooks in there)."""

    def __init__(
        self,
        gateway: Gateway,
        name: str,
        source: PullSource,
        *,
        session: requests.Session | None = None,
        should_continue: Callable[[], bool] = lambda: True,
        on_page: Callable[[Outcome], None] | None = None,
    ):
        self.gateway, self.name, self.source = gateway, name, source
        self.kind = KINDS[source.kind]
        self.retries = RetryLog()
        self._session = session
        self.should_continue = should_continue
        self.on_page = on_page

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = make_session(self.name, self.source, record=self.retries)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    # -- state ---------------------------------------------------------------------

    def state(self) -> PullCursor:
        with session_scope(self.gateway.engine) as session:
            row = session.get(PullCursor, self.name)
            if row is None:
                row = PullCursor(source=self.name)
                session.add(row)
                session.flush()
            session.expunge(row)
            return row

    def _params(self, since: str | None) -> dict[str, str]:
        params: dict[str, str] = {}
        if since is not None:
            params["since"] = since
        if self.kind.limit:
            params["limit"] = str(self.source.limit)
        return params

    def _source_path(self, since: str | None) -> str:
        return f"pull:{self.name}?since={since or ''}"

    # -- the run ---------------------------------------------------------------------

    def run(self) -> PullReport:
        state = self.state()
        report = PullReport(self.name, cursor_before=state.cursor, cursor_after=state.cursor, retries=self.retries)
        since = state.cursor
        assert self.source.department is not None
        try:
            for _ in range(self.source.max_pages):
                if not self.should_continue():
                    report.stopped = "stopped before the next page (lease lost or shutting down)"
                    break
                step = self._one_page(since, report)
                if step is None:
                    break
                since = step
            else:
                report.stopped = f"max_pages = {self.source.max_pages} reached; the next run continues"
        except PullError as exc:
            report.error = str(exc)
        except GatewayError as exc:
            report.error = str(exc)
        report.cursor_after = self.state().cursor
        if report.exchanges:
            from gateway.receipts.ledger import checkpoint_after_pass

            checkpoint_after_pass(self.gateway.engine, self.gateway.signer, self.gateway.settings.home)
        with session_scope(self.gateway.engine) as session:
            row = session.get(PullCursor, self.name)
            if row is not None and report.error is None:
                row.checked_at = utcnow()
        (log.error if report.error else log.info)("pull %s: %s", self.name, report.summary())
        return report

    def _one_page(self, since: str | None, report: PullReport) -> str | None:
        """Fetch and process the page after `since`; the cursor to continue from, or None
        when this run is done."""
        department = self.source.department
        assert department is not None
        staged = self.gateway.settings.staging_dir / f"{os.getpid()}-pull-{uuid.uuid4().hex}.src"
        try:
            sniffed = fetch(self.session, self.name, endpoint(self.source, self.kind.path), self._params(since), staged, self.source)
            info = self.kind.info(staged)
            source_path = self._source_path(since)
            with session_scope(self.gateway.engine) as session:
                prior = session.exec(
                    select(Exchange)
                    .where(
                        Exchange.department == department,
                        Exchange.sha256 == sniffed.sha256,
                        Exchange.source_path == source_path,
                        Exchange.status != "received",
                        Exchange.archived_path.is_not(None),  # type: ignore[union-attr]
                    )
                    .order_by(Exchange.id)  # type: ignore[arg-type]
                ).first()
                prior = (prior.id, prior.status, prior.reason) if prior is not None else None
            moves_on = info.next_cursor is not None and info.next_cursor != since
            if prior is not None:
                exchange_id, status, reason = prior
                if status == "rejected":
                    self._block(since, exchange_id, sniffed.sha256, info, reason or "", record=False)
                    report.blocked = True
                    report.error = self._blocked_message(since, exchange_id, reason or "", info)
                    return None
                if moves_on:  # committed before a crash, cursor not yet moved: move it now
                    self._advance(since, info.next_cursor, exchange_id)
                    report.pages.append(PageResult(since, "recovered", info.next_cursor, exchange_id, status, info.records))
                    return info.next_cursor
                report.pages.append(PageResult(since, "unchanged", info.next_cursor, exchange_id, status, info.records))
                return None
            if info.readable and info.records == 0:
                report.pages.append(PageResult(since, "empty", info.next_cursor))
                if moves_on:
                    self._advance(since, info.next_cursor, None)
                    return info.next_cursor
                return None
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            name = f"{self.name}-{stamp}-{sniffed.sha256[:8]}{self.kind.suffix}"
            outcome = self.gateway.process_page(department, name, source_path, staged, sniffed, adapter=self.source.adapter)
            result = PageResult(
                since, "page", info.next_cursor, outcome.exchange_id, outcome.status, info.records,
                outcome.accepted, outcome.rejected, outcome.duplicates,
            )
            report.pages.append(result)
            if outcome.status == "rejected":
                self._block(since, outcome.exchange_id, sniffed.sha256, info, outcome.reason or "", record=True)
                report.blocked = True
                report.error = self._blocked_message(since, outcome.exchange_id, outcome.reason or "", info)
                return None
            self._advance(since, info.next_cursor if moves_on else since, outcome.exchange_id, page=result, sha256=sniffed.sha256, size=sniffed.size)
            if self.on_page is not None:
                self.on_page(outcome)
            return info.next_cursor if moves_on else None
        finally:
            staged.unlink(missing_ok=True)

    def _blocked_message(self, since: str | None, exchange_id: int, reason: str, info: PageInfo) -> str:
        where = f"the page after cursor {since!r}" if since is not None else "the first page"
        hint = (
            f"`gateway pulls skip {self.name} --reason TEXT` moves to the cursor it names ({info.next_cursor})"
            if info.next_cursor and info.next_cursor != since
            else f"ask the partner for the cursor after it, then `gateway pulls skip {self.name} --to CURSOR --reason TEXT`"
        )
        return (
            f"{where} was refused as a whole (exchange {exchange_id}: {reason}); the cursor stays and later pages wait. "
            f"When the partner serves it readable the pull goes on by itself; or {hint}"
        )

    def _advance(
        self,
        since: str | None,
        next_cursor: str | None,
        exchange_id: int | None,
        *,
        page: PageResult | None = None,
        sha256: str | None = None,
        size: int | None = None,
    ) -> None:
        """Move the cursor from `since` to `next_cursor`, only if nobody moved it meanwhile."""
        condition = PullCursor.cursor.is_(None) if since is None else PullCursor.cursor == since  # type: ignore[union-attr]
        values: dict[str, object] = {"cursor": next_cursor, "updated_at": utcnow()}
        if exchange_id is not None:
            values["last_exchange_id"] = exchange_id
            values["pages"] = PullCursor.pages + 1
            values.update(blocked_exchange_id=None, blocked_sha256=None, blocked_next_cursor=None, blocked_reason=None, blocked_at=None)
        with session_scope(self.gateway.engine) as session:
            moved = session.exec(update(PullCursor).where(PullCursor.source == self.name, condition).values(**values))  # type: ignore[call-overload]
            if moved.rowcount != 1:
                raise PullError(
                    f"{self.name}: the cursor was moved by someone else while this run held it (expected {since!r}); stopping"
                )
            if page is not None:
                session.add(
                    PullPage(
                        source=self.name, event="page", since=since, next_cursor=next_cursor, sha256=sha256, size=size,
                        exchange_id=page.exchange_id, status=page.status, records=page.records,
                        detail=f"{page.accepted} accepted, {page.rejected} rejected, {page.duplicates} duplicate",
                    )
                )

    def _block(self, since: str | None, exchange_id: int, sha256: str, info: PageInfo, reason: str, *, record: bool) -> None:
        with session_scope(self.gateway.engine) as session:
            row = session.get(PullCursor, self.name)
            assert row is not None
            if row.blocked_sha256 != sha256 or row.blocked_exchange_id != exchange_id:
                row.blocked_exchange_id, row.blocked_sha256 = exchange_id, sha256
                row.blocked_next_cursor = info.next_cursor if info.next_cursor != since else None
                row.blocked_reason, row.blocked_at = reason, utcnow()
            if record:
                session.add(
                    PullPage(
                        source=self.name, event="refused", since=since, next_cursor=info.next_cursor, sha256=sha256,
                        exchange_id=exchange_id, status="rejected", detail=reason,
                    )
                )


def skip(gateway: Gateway, name: str, *, reason: str, to: str | None = None, operator: str | None = None) -> tuple[str | None, str]:
    """Move a blocked source's cursor past its refused page, on an operator's word: to the
    cursor the page named, or `to`. Recorded in the pull history. Returns (from, to)."""
    source_named(gateway.settings, name)
    if not reason.strip():
        raise GatewayError("Say why the page may be skipped: --reason TEXT (it is kept in the pull history)")
    with session_scope(gateway.engine) as session:
        row = session.get(PullCursor, name)
        if row is None or (row.blocked_exchange_id is None and to is None):
            raise GatewayError(f"Pull source {name!r} is not held by a refused page; nothing to skip (see `gateway pulls list`)")
        target = to if to is not None else row.blocked_next_cursor
        if target is None:
            raise GatewayError(
                f"The refused page of {name!r} (exchange {row.blocked_exchange_id}) names no readable cursor. "
                "Ask the partner which cursor comes after it and pass --to CURSOR"
            )
        if target == row.cursor:
            raise GatewayError(f"The cursor of {name!r} is already {target!r}; --to must name the cursor after the refused page")
        before = row.cursor
        detail = (
            f"skipped by {operator or getpass.getuser()}: {reason.strip()}; refused page: exchange "
            f"{row.blocked_exchange_id}, sha256 {row.blocked_sha256}"
        )
        session.add(
            PullPage(
                source=name, event="skip", since=before, next_cursor=target, sha256=row.blocked_sha256,
                exchange_id=row.blocked_exchange_id, status="skipped", detail=detail,
            )
        )
        row.cursor, row.updated_at = target, utcnow()
        row.blocked_exchange_id = row.blocked_sha256 = row.blocked_next_cursor = row.blocked_reason = None
        row.blocked_at = None
    log.warning("pull %s: cursor moved by hand from %r to %r (%s)", name, before, target, reason.strip())
    return before, target
