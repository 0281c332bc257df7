"""The `Retention` of `gateway verify-home` (gateway/exchange/home_check.py), read from the
purge table: a record or archived file purged under a rule is accepted as such, never
counted missing; the record's kept leaf hash stands in for its payload in the Merkle root."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from gateway.clock import in_china
from gateway.exchange.home_check import Purge
from gateway.store.retention_models import RetentionPurge


class StoredRetention:
    """What retention purged, as `retentionpurge` records it (one query per exchange)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts: Counter[tuple[str, str]] = Counter()
        """(kind, rule) -> purges seen by verify-home"""

    def _rows(self, exchange_id: int, kind: str) -> list[RetentionPurge]:
        with Session(self.engine) as session:
            return list(session.execute(
                select(RetentionPurge).where(col(RetentionPurge.exchange_id) == exchange_id, col(RetentionPurge.kind) == kind)
            ).scalars().all())

    def purged_records(self, exchange_id: int) -> Mapping[int, Purge]:
        found: dict[int, Purge] = {}
        for row in self._rows(exchange_id, "record"):
            if row.leaf_index is None:
                continue
            found[row.leaf_index] = Purge(row.rule, _shown(row), bytes.fromhex(row.leaf_hash) if row.leaf_hash else None)
            self.counts["record", row.rule] += 1
        return found

    def purged_file(self, exchange_id: int) -> Purge | None:
        rows = self._rows(exchange_id, "file")
        if not rows:
            return None
        self.counts["file", rows[0].rule] += 1
        return Purge(rows[0].rule, _shown(rows[0]))

    def notes(self) -> list[str]:
        """What verify-home says about the purges it accepted, per rule."""
        rules = sorted({rule for _, rule in self.counts})
        return [
            f"按保存期限规则 {rule} 已清除记录 {self.counts['record', rule]} 条、归档文件 {self.counts['file', rule]} 个"
            f"(哈希保留,验证通过) / purged under rule {rule}: {self.counts['record', rule]} record(s), "
            f"{self.counts['file', rule]} archived file(s) (hashes kept, verified)"
            for rule in rules
        ]


def _shown(row: RetentionPurge) -> str:
    return in_china(row.purged_on).strftime("%Y-%m-%d")
