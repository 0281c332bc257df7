"""The purges of retention (保存期限, gateway/retention/, docs/operations.md "Retention").

One row per purged record (`kind` = `record`: its payload was removed, its `record_hash`
and leaf index kept on the record, its leaf hash kept here so the receipt's Merkle root
still verifies), per purged archived file (`file`) and per exchange whose row errors were
deleted (`row_errors`). `rule` is the rule as configured (`BirthEvent = 10y`), `purged_on`
the business clock's moment of the purge."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, Index, exists
from sqlmodel import Field, SQLModel, col

from gateway.store.models import Record


class RetentionPurge(SQLModel, table=True):
    """What retention removed, when (business clock) and under which rule (清除记录)."""

    __table_args__ = (
        Index("ix_retentionpurge_exchange", "exchange_id", "kind"),
        Index("ix_retentionpurge_record", "record_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(description="record | file | row_errors")
    exchange_id: int = Field(foreign_key="exchange.id")
    record_id: int | None = Field(default=None, foreign_key="record.id")
    leaf_index: int | None = None
    leaf_hash: str | None = Field(default=None, description="hex SHA-256(0x00 || payload) of the purged record")
    contract: str = ""
    rule: str = Field(description="the rule as configured, e.g. `BirthEvent = 10y`")
    count: int = Field(default=1, description="rows removed (row errors: how many)")
    purged_on: dt.datetime


def not_purged() -> ColumnElement[bool]:
    """A `WHERE` clause: the record (`Record`) was not purged under a retention rule. The
    readers of every stored record of a contract (reports, reconciliation) skip a purged
    one: its payload is `{}`."""
    return ~exists().where(col(RetentionPurge.kind) == "record", col(RetentionPurge.record_id) == col(Record.id))
