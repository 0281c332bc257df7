"""The gateway's tables (SQLModel)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class Exchange(SQLModel, table=True):
    """One file (or pulled page) received from a department: 交换."""

    id: int | None = Field(default=None, primary_key=True)
    department: str = Field(index=True)
    file_name: str
    source_path: str = Field(description="where the file was found, relative to the mailbox root")
    sha256: str = Field(index=True)
    size: int = 0
    encoding: str | None = None
    adapter: str | None = None
    status: str = Field(default="received", index=True, description="received | processed | duplicate | rejected")
    duplicate_of: int | None = Field(default=None, foreign_key="exchange.id")
    reason_code: str | None = None
    reason: str | None = None
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    corrected: int = 0
    warnings: int = 0
    attempts: int = 0
    received_at: dt.datetime = Field(default_factory=utcnow)
    processed_at: dt.datetime | None = None
    archived_path: str | None = Field(default=None, description="processed/ or rejected/ path once moved")
    outbox_stem: str | None = Field(default=None, description="receipt and report names in the outbox")


class Record(SQLModel, table=True):
    """An accepted record; each correction of a business key is a new version beside the old."""

    __table_args__ = (
        UniqueConstraint("contract", "business_key", "version", name="uq_record_version"),
        Index("ix_record_key", "contract", "business_key"),
        Index("ix_record_exchange_leaf", "exchange_id", "leaf_index"),
    )

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: int = Field(foreign_key="exchange.id")
    contract: str
    schema_version: str
    business_key: str
    version: int = 1
    record_hash: str
    payload: str = Field(sa_column=Column(Text, nullable=False))
    row_number: int
    leaf_index: int


class RowError(SQLModel, table=True):
    """A refused row (or a warning on an accepted one), with the value already masked."""

    __table_args__ = (Index("ix_rowerror_exchange", "exchange_id", "row_number"),)

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: int = Field(foreign_key="exchange.id")
    row_number: int
    field: str = ""
    column_name: str = ""
    value_masked: str = ""
    code: str
    reason_zh: str
    reason_en: str
    level: str = "error"


class Receipt(SQLModel, table=True):
    """A signed receipt (回执); `sequence` is its place in the receipt ledger, gapless."""

    sequence: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    exchange_id: int = Field(foreign_key="exchange.id", unique=True)
    body: str = Field(sa_column=Column(Text, nullable=False), description="canonical JSON, exactly as signed")
    signature: str = Field(sa_column=Column(Text, nullable=False), description="ASCII-armored detached signature")
    sha256: str
    previous_sha256: str
    key_fingerprint: str
    created_at: dt.datetime = Field(default_factory=utcnow)


class Checkpoint(SQLModel, table=True):
    """A signed head of the receipt ledger: its size and RFC 6962 root (DESIGN.md, "Receipts")."""

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(index=True)
    root: str
    body: str = Field(sa_column=Column(Text, nullable=False), description="canonical JSON, exactly as signed")
    signature: str = Field(sa_column=Column(Text, nullable=False), description="ASCII-armored detached signature")
    key_fingerprint: str
    frontier: str = Field(
        sa_column=Column(Text, nullable=False),
        description="JSON list of the perfect subtrees' roots at tree_size, to extend the tree without rereading it",
    )
    created_at: dt.datetime = Field(default_factory=utcnow)
