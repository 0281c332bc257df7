"""Tables of the web console (issue 10, gateway/web/): its accounts and their sessions.

Passwords are stored only as Argon2id hashes; a session row holds the SHA-256 of the
cookie's random token, never the token itself, so a copy of the database cannot be used
to sign in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from gateway.store.models import utcnow


class ConsoleUser(SQLModel, table=True):
    """A person who signs in to the console (控制台账户): an operator, a security officer,
    or a department's clerk who sees that department only."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    role: str = Field(description="operator | security-officer | department")
    department: str | None = Field(default=None, description="the only department a `department` account sees")
    password_hash: str = Field(sa_column=Column(Text, nullable=False), description="Argon2id, PHC string")
    disabled: bool = False
    failed_logins: int = Field(default=0, description="consecutive failed sign-ins")
    locked_until: dt.datetime | None = Field(default=None, description="sign-in refused until then (lock-out)")
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_login_at: dt.datetime | None = None


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser: the cookie carries a random token, this row its SHA-256 and
    the session's CSRF token (every form and API write must echo it)."""

    token_sha256: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="consoleuser.id", index=True)
    csrf_token: str
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime = Field(index=True)


class SignInBackoff(SQLModel, table=True):
    """Failed sign-ins of one client address for one name (登录退避): after
    accounts.BACKOFF_AFTER failures that client waits before it may try that name again,
    30 s doubling up to 15 min. Keyed by client *and* name, so a stranger elsewhere cannot
    lock a clerk out; the name is kept only as its SHA-256 (an unknown name someone typed
    may be personal data). `gateway users unlock NAME` deletes the account's rows."""

    client: str = Field(primary_key=True, max_length=64, description="the client's IP address as the console saw it")
    name_sha256: str = Field(primary_key=True, max_length=64, index=True)
    failures: int = Field(default=0, description="failures since the last wait began")
    strikes: int = Field(default=0, description="waits so far; each doubles the next")
    blocked_until: dt.datetime | None = Field(default=None, description="no attempt from this client for this name before then")
    last_failure_at: dt.datetime = Field(default_factory=utcnow)


class ConsoleAuditEvent(SQLModel, table=True):
    """One entry of the console's audit log (控制台审计): a sign-in or its refusal, a sign-out,
    a back-off, an unlock, a password change, a refused (403) request, a view, reveal or
    download of personal data; who (account, role), from where (client address, route), and
    which subjects (masked keys). Never a full identifier or name.

    On PostgreSQL the rows are in this table of the gateway database; on SQLite in the same
    table of a database file of its own beside the main one (gateway/store/console_audit.py),
    and this table of the main file stays empty."""

    __tablename__ = "consoleaudit"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    action: str = Field(index=True, max_length=64)
    user: str | None = Field(default=None, index=True, max_length=64, description="the account (or, refused, the name typed, masked)")
    role: str | None = Field(default=None, max_length=32)
    department: str = Field(default="", index=True, max_length=100, description="whose data, or the account's department")
    client: str = Field(default="", max_length=64, description="the client address the sign-in throttle uses")
    route: str = Field(default="", max_length=300, description="METHOD /path")
    subjects: str = Field(default="", sa_column=Column(Text, nullable=False), description="the subjects seen, masked keys")
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
