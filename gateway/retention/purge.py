"""`gateway retention run [--dry-run]` (保存期限清除): remove what is past its rule.

For each contract rule, the records whose exchange was received before the rule's cutoff
(business clock, China calendar) lose their payload (`{}`) and business key (it may be an
ID number: it becomes `purged:<record id>`, in the routing audit's delivery rows too). Each
keeps its `record_hash` and leaf index, and its leaf hash is written to `retentionpurge`
with the rule and the business clock's moment: every receipt's Merkle root, every record
proof and the ledger still verify. The row errors and the archived original file of an
exchange go once all its records are purged; `rejected_files` and `row_errors` rules do the
same for wholly refused drops and for the row errors of any exchange. The register forgets
what the purged records said (a person only they named is removed). One audit entry per
rule and department says how many, under which rule; never whom. A record whose payload no
longer has its stored `record_hash` (changed since its receipt) is left for verify-home to name.

Idempotent: what is purged is never selected again; a second run reports nothing new. The
files go after their purge commits, and a file whose purge is recorded but still exists (a
crash in between) is removed by the next run."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, String, cast, delete, exists, func, literal, select, update
from sqlmodel import Session, col

from gateway import clock
from gateway.config import Settings
from gateway.receipts.merkle import leaf_hash
from gateway.register.build import forget_records
from gateway.retention.rules import RetentionRules, Rule
from gateway.store import session_scope
from gateway.store.audit import record_event
from gateway.store.models import DeliveryRecord, Exchange, Record, RowError
from gateway.store.retention_models import RetentionPurge, not_purged

log = logging.getLogger("gateway.retention")

PURGED_PAYLOAD = "{}"
AUDIT_ACTION = "retention_purged"


@dataclass
class RulePurge:
    """What one rule purged (or, in a dry run, would purge), per department."""

    rule: Rule
    records: int = 0
    exchanges: int = 0
    files: int = 0
    row_errors: int = 0
    people_removed: int = 0
    changed: int = 0
    """records not purged: their payload no longer has the stored record_hash"""
    departments: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    """department -> [records, row errors, files]"""

    @property
    def nothing(self) -> bool:
        return not (self.records or self.files or self.row_errors)

    def line(self, dry_run: bool) -> str:
        verb_zh, verb_en = ("将清除", "would purge") if dry_run else ("已清除", "purged")
        changed = (f";{self.changed} 条记录与其哈希不符,未清除(运行 gateway verify-home) / {self.changed} record(s) no "
                   "longer match their hash and were left (run `gateway verify-home`)") if self.changed else ""
        return (
            f"{self.rule.name}(规则 {self.rule.text}):{verb_zh}记录 {self.records} 条、行错误 {self.row_errors} 条、"
            f"归档文件 {self.files} 个 / {self.rule.name} (rule {self.rule.text}): {verb_en} {self.records} record(s), "
            f"{self.row_errors} row error(s), {self.files} archived file(s){changed}"
        )


@dataclass
class RetentionReport:
    dry_run: bool
    at: dt.datetime
    purges: list[RulePurge] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return all(p.nothing for p in self.purges)

    def lines(self) -> list[str]:
        shown = clock.in_china(self.at).strftime("%Y-%m-%d %H:%M")
        if not self.purges:
            return ["[retention] 未设任何保存期限规则:不清除任何数据 / no [retention] rules: nothing is ever deleted"]
        head = (f"保存期限{'试运行' if self.dry_run else '清除'}(业务时钟 {shown}) / retention "
                f"{'dry run' if self.dry_run else 'run'} (business clock {shown} China time)")
        lines = [head, *(f"  {p.line(self.dry_run)}" for p in self.purges)]
        if self.nothing:
            lines.append("没有新的到期数据,未清除任何内容 / nothing new is past its rule; nothing purged")
        elif self.dry_run:
            lines.append("试运行:未改动任何数据 / dry run: nothing was changed")
        return lines

    def summary(self) -> str:
        if self.nothing:
            return "nothing new to purge"
        return "; ".join(f"{p.rule.name}: {p.records} record(s), {p.row_errors} row error(s), {p.files} file(s)"
                         for p in self.purges if not p.nothing)


def _left_records(session: Session, exchange_id: int) -> int:
    """The exchange's records not purged yet."""
    return int(session.execute(
        select(func.count()).select_from(Record).where(col(Record.exchange_id) == exchange_id, not_purged())
    ).scalar_one())


def _file_purged(session: Session, exchange_id: int) -> bool:
    return session.execute(
        select(col(RetentionPurge.id)).where(col(RetentionPurge.kind) == "file", col(RetentionPurge.exchange_id) == exchange_id).limit(1)
    ).first() is not None


def _local_archive(settings: Settings, archived: str | None) -> Path | None:
    if not archived or archived.startswith("(") or "://" in archived:
        return None  # by hand, elsewhere, or on an SFTP server: not a file of this home
    return settings.mailbox_root / archived


def _purge_exchange_rest(
    session: Session, settings: Settings, exchange: Exchange, rule: Rule, at: dt.datetime, dry_run: bool,
    result: RulePurge, unlink: list[Path],
) -> None:
    """The row errors and archived file of an exchange all of whose records are gone."""
    assert exchange.id is not None
    errors = int(session.execute(
        select(func.count()).select_from(RowError).where(col(RowError.exchange_id) == exchange.id)
    ).scalar_one())
    counts = result.departments[exchange.department]
    if errors:
        result.row_errors += errors
        counts[1] += errors
        if not dry_run:
            session.execute(delete(RowError).where(col(RowError.exchange_id) == exchange.id))
            session.add(RetentionPurge(kind="row_errors", exchange_id=exchange.id, rule=rule.text, count=errors, purged_on=at))
    if exchange.archived_path and not _file_purged(session, exchange.id):
        result.files += 1
        counts[2] += 1
        if not dry_run:
            session.add(RetentionPurge(kind="file", exchange_id=exchange.id, rule=rule.text, purged_on=at))
            path = _local_archive(settings, exchange.archived_path)
            if path is not None:
                unlink.append(path)


def _purge_contract(session: Session, settings: Settings, rule: Rule, at: dt.datetime, dry_run: bool, unlink: list[Path]) -> RulePurge:
    result = RulePurge(rule)
    cutoff = rule.period.cutoff(at)
    rows = session.execute(
        select(col(Record.id), col(Record.exchange_id), col(Record.leaf_index), col(Record.payload), col(Record.record_hash),
               col(Exchange.department))
        .join(Exchange, col(Exchange.id) == col(Record.exchange_id))
        .where(col(Record.contract) == rule.name, col(Exchange.received_at) < cutoff, not_purged())
        .order_by(col(Record.exchange_id), col(Record.leaf_index))
    ).all()
    exchanges: dict[int, int] = defaultdict(int)  # exchange -> its records purged now
    record_ids: list[int] = []
    for record_id, exchange_id, leaf_index, payload, record_hash, department in rows:
        if hashlib.sha256(str(payload).encode("utf-8")).hexdigest() != record_hash:
            # changed since its receipt signed it: keeping the hash of what is there now would hide
            # that; it stays for `gateway verify-home` to name (restore it from a backup first)
            result.changed += 1
            continue
        result.records += 1
        result.departments[department][0] += 1
        exchanges[int(exchange_id)] += 1
        record_ids.append(int(record_id))
        if dry_run:
            continue
        session.add(RetentionPurge(
            kind="record", exchange_id=exchange_id, record_id=record_id, leaf_index=leaf_index, contract=rule.name,
            leaf_hash=leaf_hash(str(payload).encode("utf-8")).hex(), rule=rule.text, purged_on=at,
        ))
    result.exchanges = len(exchanges)
    if not dry_run and record_ids:
        # the register first: it reads the facts by record id, not the payload
        _, result.people_removed = forget_records(session, settings, record_ids)
        for start in range(0, len(record_ids), 500):
            chunk = record_ids[start:start + 500]
            session.execute(
                update(Record).where(col(Record.id).in_(chunk))
                .values(payload=PURGED_PAYLOAD, business_key=literal("purged:", String) + cast(col(Record.id), String))
            )
            session.execute(
                update(DeliveryRecord).where(col(DeliveryRecord.record_id).in_(chunk))
                .values(business_key=literal("purged:", String) + cast(col(DeliveryRecord.record_id), String))
            )
        session.flush()
    for exchange_id in sorted(exchanges):
        exchange = session.get(Exchange, exchange_id)
        assert exchange is not None
        # its row errors and file go with its last record (a dry run has not purged them yet)
        if _left_records(session, exchange_id) == (exchanges[exchange_id] if dry_run else 0):
            _purge_exchange_rest(session, settings, exchange, rule, at, dry_run, result, unlink)
    return result


def _purge_rejected_files(session: Session, settings: Settings, rule: Rule, at: dt.datetime, dry_run: bool, unlink: list[Path]) -> RulePurge:
    """`rejected_files`: the archived file of a wholly refused drop (no records), past the period."""
    result = RulePurge(rule)
    cutoff = rule.period.cutoff(at)
    done = exists().where(col(RetentionPurge.kind) == "file", col(RetentionPurge.exchange_id) == col(Exchange.id))
    for exchange in session.execute(
        select(Exchange).where(
            col(Exchange.status) == "rejected", col(Exchange.received_at) < cutoff, col(Exchange.archived_path).is_not(None), ~done
        ).order_by(col(Exchange.id))
    ).scalars().all():
        result.exchanges += 1
        _purge_exchange_rest(session, settings, exchange, rule, at, dry_run, result, unlink)
    return result


def _purge_row_errors(session: Session, rule: Rule, at: dt.datetime, dry_run: bool) -> RulePurge:
    """`row_errors`: the row errors of any exchange received before the period."""
    result = RulePurge(rule)
    cutoff = rule.period.cutoff(at)
    for exchange_id, department, errors in session.execute(
        select(col(Exchange.id), col(Exchange.department), func.count(col(RowError.id)))
        .join(RowError, col(RowError.exchange_id) == col(Exchange.id))
        .where(col(Exchange.received_at) < cutoff)
        .group_by(col(Exchange.id), col(Exchange.department))
        .order_by(col(Exchange.id))
    ).all():
        result.exchanges += 1
        result.row_errors += int(errors)
        result.departments[department][1] += int(errors)
        if not dry_run:
            session.execute(delete(RowError).where(col(RowError.exchange_id) == exchange_id))
            session.add(RetentionPurge(kind="row_errors", exchange_id=exchange_id, rule=rule.text, count=int(errors), purged_on=at))
    return result


def _audit(session: Session, result: RulePurge) -> None:
    for department, (records, errors, files) in sorted(result.departments.items()):
        if records or errors or files:
            record_event(
                session, AUDIT_ACTION, department, None,
                f"rule {result.rule.text}: {records} record(s) purged (payload removed, hashes kept), "
                f"{errors} row error(s) and {files} archived file(s) deleted",
            )


def _leftover_files(engine: Engine, settings: Settings) -> list[Path]:
    """Archived files whose purge is recorded but which still exist (a run stopped between)."""
    with Session(engine) as session:
        archived = session.execute(
            select(col(Exchange.archived_path))
            .join(RetentionPurge, col(RetentionPurge.exchange_id) == col(Exchange.id))
            .where(col(RetentionPurge.kind) == "file")
        ).scalars().all()
    paths = [_local_archive(settings, a) for a in archived]
    return [p for p in paths if p is not None and p.exists()]


def run_retention(engine: Engine, settings: Settings, rules: RetentionRules, *, dry_run: bool = False) -> RetentionReport:
    """Purge what is past its rule at the business clock's now (or say what would go)."""
    at = clock.now().replace(microsecond=0)
    report = RetentionReport(dry_run, at)
    if not rules.any:
        return report
    unlink: list[Path] = [] if dry_run else _leftover_files(engine, settings)
    for rule in rules.records:
        with session_scope(engine) as session:
            found = _purge_contract(session, settings, rule, at, dry_run, unlink)
            if not dry_run:
                _audit(session, found)
        report.purges.append(found)
    if rules.rejected_files is not None:
        with session_scope(engine) as session:
            found = _purge_rejected_files(session, settings, rules.rejected_files, at, dry_run, unlink)
            if not dry_run:
                _audit(session, found)
        report.purges.append(found)
    if rules.row_errors is not None:
        with session_scope(engine) as session:
            found = _purge_row_errors(session, rules.row_errors, at, dry_run)
            if not dry_run:
                _audit(session, found)
        report.purges.append(found)
    for path in unlink:  # after the purges committed: a purge recorded never points at a file still wanted
        path.unlink(missing_ok=True)
    if not dry_run and not report.nothing:
        log.info("retention: %s", report.summary())
    return report
