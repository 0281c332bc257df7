"""Tables of the reconciliation (核对): discrepancies between departments' records, the
matches the fallback proposes, the links a person confirmed, and the discrepancy lists
delivered to the departments (gateway/reconcile/, docs/reconciliation.md)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.models import utcnow


class Discrepancy(SQLModel, table=True):
    """A record whose counterpart in another department is missing once its grace period
    ended (差异): a hospital birth never registered by the police, say.

    status: `open`, or `closed` with `closure` = `matched` (the missing record arrived:
    `matched_record_id`), `confirmed` (a person confirmed a proposed match), `resolved`
    (closed by hand with `closed_by` and `close_reason`) or `withdrawn` (the record no
    longer calls for a counterpart: a corrected version, a tenant who moved out).
    `open_key` is the subject while open and NULL once closed: at most one open
    discrepancy per rule and subject, whoever evaluates."""

    __table_args__ = (
        UniqueConstraint("rule", "open_key", name="uq_discrepancy_open"),
        Index("ix_discrepancy_rule_subject", "rule", "subject_key"),
        Index("ix_discrepancy_status", "status", "rule"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule: str
    subject_key: str = Field(description="the identifier the rule matches on, or a stand-in when it is missing")
    open_key: str | None = Field(default=None, description="subject_key while open, NULL once closed")
    status: str = Field(default="open")
    record_id: int = Field(foreign_key="record.id", description="the current version of the record that lacks its counterpart")
    contract: str
    business_key: str
    event_date: dt.date
    due_on: dt.date = Field(description="event date plus the grace period: when the counterpart was due")
    departments: str = Field(description="departments to notify, comma-separated")
    summary: str = Field(default="{}", sa_column=Column(Text, nullable=False), description="JSON: masked fields shown to people")
    opened_at: dt.datetime = Field(default_factory=utcnow)
    opened_as_of: dt.date
    closed_at: dt.datetime | None = None
    closed_as_of: dt.date | None = None
    closure: str | None = None
    closed_by: str | None = None
    close_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    matched_record_id: int | None = Field(default=None, foreign_key="record.id")


class DiscrepancyProposal(SQLModel, table=True):
    """A match the fallback proposes where an identifier is missing (same name, birth
    dates within 2 days): `proposed` until a person confirms or rejects it; never decided
    by the gateway."""

    __table_args__ = (UniqueConstraint("discrepancy_id", "record_id", name="uq_proposal"),)

    id: int | None = Field(default=None, primary_key=True)
    discrepancy_id: int = Field(foreign_key="discrepancy.id", index=True)
    record_id: int = Field(foreign_key="record.id")
    contract: str
    business_key: str
    status: str = Field(default="proposed", description="proposed | confirmed | rejected")
    basis: str = Field(default="", description="why it was proposed (masked)")
    proposed_at: dt.datetime = Field(default_factory=utcnow)
    decided_at: dt.datetime | None = None
    decided_by: str | None = None


class ReconciliationLink(SQLModel, table=True):
    """Two records a person confirmed to be about the same event (a death and its
    cremation recorded without the ID number): every rule joining the two contracts
    counts them as matched from then on."""

    __table_args__ = (
        UniqueConstraint("left_contract", "left_key", "right_contract", "right_key", name="uq_reconciliation_link"),
    )

    id: int | None = Field(default=None, primary_key=True)
    left_contract: str
    left_key: str = Field(index=True)
    right_contract: str
    right_key: str = Field(index=True)
    rule: str
    discrepancy_id: int | None = Field(default=None, foreign_key="discrepancy.id")
    confirmed_by: str
    confirmed_at: dt.datetime = Field(default_factory=utcnow)


class DiscrepancyList(SQLModel, table=True):
    """The open discrepancies one department must act on, as one encrypted, signed file
    in its outbox (`DISCREPANCIES-<id>.json.gpg`); a new list goes out only when the
    department's open items changed since the last list delivered.

    status: `held` (no usable key: `reason`), `delivered`."""

    __table_args__ = (Index("ix_discrepancylist_department", "department", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    department: str
    as_of: dt.date
    items: int = 0
    content_sha256: str = Field(description="sha256 of the list's plain content: unchanged lists are not sent again")
    status: str = "held"
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    file_name: str | None = None
    sha256: str | None = Field(default=None, description="of the encrypted file")
    encrypted_to: str | None = None
    signing_key: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    delivered_at: dt.datetime | None = None


class ReconciliationItem(SQLModel, table=True):
    """A subject a reconciliation run saw without its counterpart (补报核对), from the first run
    that saw it: its `reconcile-evidence` obligation (subject `reconcile:<rule>:item:<id>`,
    gateway/obligations/hooks.py) is owed by `owed_by` until `due_on`, the grace end. The
    obligation's subject names this row, never the identifier (`subject_key`, which may be
    an ID number)."""

    __table_args__ = (UniqueConstraint("rule", "subject_key", name="uq_reconciliation_item"),)

    id: int | None = Field(default=None, primary_key=True)
    rule: str
    subject_key: str
    record_id: int = Field(foreign_key="record.id", description="the subject's record when first seen")
    event_date: dt.date
    due_on: dt.date = Field(description="the grace end: the counterpart is due by 24:00 China time that day")
    owed_by: str
    first_seen_at: dt.datetime
