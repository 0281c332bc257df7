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
