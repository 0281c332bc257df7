"""The obligations table (issue 17, gateway/obligations/): one duty of one party with a
due day (法定义务/时限), how it ended and why."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.models import utcnow


class Obligation(SQLModel, table=True):
    """One duty (义务): `party` owes `kind` for `subject`, due by the end of `due_date`
    (24:00 China time, `due_at` in UTC), computed by `rule` from `started_at`.

    status: `open` -> `met` (fulfilled by `due_at`), `late` (fulfilled after it) or
    `waived` (`reason` and `closed_by` say why and who). An open obligation past `due_at`
    is overdue (a missed submission, an unsigned delivery)."""

    __table_args__ = (
        UniqueConstraint("kind", "subject", name="uq_obligation_subject"),
        Index("ix_obligation_status_due", "status", "due_at"),
        Index("ix_obligation_party_period", "party", "period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(description="sign-off | submission | assist-check | notice | feedback-check | forward | update | a configured kind")
    party: str = Field(description="who owes it: a department, the county office or a township")
    subject: str = Field(description="what it is about, unique per kind: delivery:12, police:births:2026-10, assist-check:XXBH")
    rule: str = Field(description="the deadline rule (gateway deadlines rules) or fixed:28 for a fixed day")
    detail: str = Field(default="", sa_column=Column(Text, nullable=False), description="what is owed, never personal data")
    started_at: dt.datetime = Field(description="the event it started from, by the business clock")
    due_date: dt.date = Field(index=True)
    due_at: dt.datetime = Field(description="24:00 China time of due_date, in UTC")
    provisional: bool = Field(default=False, description="the due day depends on a year the holiday calendar does not cover")
    period: str = Field(description="the statistical month (21st-20th) it counts in: its event's, a submission's last covered, YYYY-MM")
    status: str = Field(default="open", index=True)
    closed_at: dt.datetime | None = None
    closed_by: str | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow)
