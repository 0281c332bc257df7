"""The population office's mailbox (电子信箱, issue 22, gateway/mail/): each message seen,
what became of it, and each attachment's exchange. The Message-ID and the attachment's
sha256 make the intake idempotent: a message delivered twice, or read again after a crash
between the commit and the IMAP move, makes nothing new."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.models import utcnow


class MailMessage(SQLModel, table=True):
    """One message (by Message-ID) of the office's mailbox: 邮件.

    status: `processed` (an attachment was processed), `rejected` (every attachment was
    refused, or there was none), `held` (unknown sender: never processed, kept in the
    held folder for an operator)."""

    __table_args__ = (UniqueConstraint("message_id", name="uq_mailmessage_message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(description="the Message-ID header (or a digest of the bytes when it has none)")
    sender: str = Field(description="the From address, lower case")
    department: str | None = Field(default=None, description="whose address it is ([mail.senders]); None: unknown")
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(index=True, description="processed | rejected | held")
    detail: str = Field(default="", sa_column=Column(Text, nullable=False), description="why, never personal data")
    received_at: dt.datetime = Field(default_factory=utcnow)
    replied_at: dt.datetime | None = Field(default=None, description="when the reply was sent (one per Message-ID)")


class MailAttachment(SQLModel, table=True):
    """One attachment of a message and the exchange it became: 附件."""

    __table_args__ = (UniqueConstraint("message_id", "position", "sha256", name="uq_mailattachment"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(index=True)
    position: int = Field(description="its place among the message's attachments, from 1")
    name: str = Field(description="the attachment's file name (the sender's text: shown masked)")
    sha256: str
    exchange_id: int | None = Field(default=None, foreign_key="exchange.id")
    status: str = Field(description="the exchange's status, or refused (not a file the gateway reads)")
