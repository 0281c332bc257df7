"""Console accounts (控制台账户): adding, listing, disabling, resetting, and signing in
with lock-out. Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
memory-hard profile); only the hash is stored.

Used by `gateway users ...` (gateway/cli/users.py) and by the console's sign-in."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from gateway.errors import GatewayError
from gateway.store.db import session_scope
from gateway.store.web_models import ConsoleSession, ConsoleUser

ROLES = ("operator", "security-officer", "department")
MIN_PASSWORD_LENGTH = 10
LOCK_AFTER_FAILURES = 5
LOCK_MINUTES = 15
SESSION_HOURS = 8

_hasher = PasswordHasher()  # Argon2id, 64 MiB, 3 passes, 4 lanes
# Verified against when the name is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountProblem(GatewayError):
    """An account cannot be added or changed as asked; the message says why."""


@dataclass(frozen=True)
class Account:
    """A signed-in account as the console sees it."""

    id: int
    name: str
    role: str
    department: str | None

    @property
    def scope(self) -> str | None:
        """The one department this account may see, or None for all."""
        return self.department if self.role == "department" else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountProblem(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def add_user(engine: Engine, name: str, role: str, password: str, department: str | None, departments: list[str]) -> ConsoleUser:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise AccountProblem("a user name is 1 to 64 characters without spaces")
    if role not in ROLES:
        raise AccountProblem(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    if role == "department":
        if not department:
            raise AccountProblem("a department account needs --department (the only department it sees)")
        if department not in departments:
            raise AccountProblem(f"unknown department {department!r}; one of: {', '.join(departments)}")
    elif department:
        raise AccountProblem(f"--department is only for the department role; a {role} sees every department")
    _check_password(password)
    with session_scope(engine) as session:
        if session.exec(select(ConsoleUser).where(ConsoleUser.name == name)).first() is not None:
            raise AccountProblem(f"a user named {name!r} exists; use `gateway users reset-password`")
        user = ConsoleUser(name=name, role=role, department=department if role == "department" else None, password_hash=_hasher.hash(password))
        session.add(user)
    return user


def list_users(engine: Engine) -> list[ConsoleUser]:
    with Session(engine) as session:
        return list(session.exec(select(ConsoleUser).order_by(ConsoleUser.name)).all())


def _user(session: Session, name: str) -> ConsoleUser:
    user = session.exec(select(ConsoleUser).where(ConsoleUser.name == name)).first()
    if user is None:
        raise AccountProblem(f"no user named {name!r}; see `gateway users list`")
    return user


def set_disabled(engine: Engine, name: str, disabled: bool) -> None:
    """Disable (or enable again) an account; disabling ends its sessions."""
    with session_scope(engine) as session:
        user = _user(session, name)
        user.disabled = disabled
        session.add(user)
        if disabled:
            session.exec(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))  # type: ignore[call-overload]


def reset_password(engine: Engine, name: str, password: str) -> None:
    """A new password; it also lifts a lock-out and ends the account's sessions."""
    _check_password(password)
    with session_scope(engine) as session:
        user = _user(session, name)
        user.password_hash = _hasher.hash(password)
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
        session.exec(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))  # type: ignore[call-overload]


# -- signing in -------------------------------------------------------------------------------


@dataclass
class SignIn:
    """What a sign-in attempt gave: a session (cookie token and CSRF token) or a refusal."""

    account: Account | None = None
    token: str | None = None
    csrf_token: str | None = None
    refusal: str | None = None


REFUSED = "Wrong name or password."


def sign_in(engine: Engine, name: str, password: str) -> SignIn:
    """Check a name and password. After LOCK_AFTER_FAILURES failures in a row the account
    is locked for LOCK_MINUTES (kept in the database, so restarting the console does not
    lift it)."""
    now = _now()
    with session_scope(engine) as session:
        user = session.exec(select(ConsoleUser).where(ConsoleUser.name == name.strip())).first()
        if user is None:
            try:
                _hasher.verify(_DUMMY_HASH, password)
            except VerificationError:
                pass
            return SignIn(refusal=REFUSED)
        locked_until = _aware(user.locked_until)
        if locked_until is not None and locked_until > now:
            return SignIn(refusal=f"Too many failed sign-ins: this account is locked until {locked_until:%H:%M} UTC.")
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            user.failed_logins += 1
            if user.failed_logins >= LOCK_AFTER_FAILURES:
                user.locked_until = now + dt.timedelta(minutes=LOCK_MINUTES)
                user.failed_logins = 0
            session.add(user)
            if user.locked_until is not None and _aware(user.locked_until) > now:  # type: ignore[operator]
                return SignIn(refusal=f"Too many failed sign-ins: this account is locked for {LOCK_MINUTES} minutes.")
            return SignIn(refusal=REFUSED)
        if user.disabled:
            return SignIn(refusal="This account is disabled.")
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        session.add(user)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session.add(ConsoleSession(token_sha256=token_digest(token), user_id=user.id or 0, csrf_token=csrf,
                                   created_at=now, expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
        session.exec(delete(ConsoleSession).where(ConsoleSession.expires_at < now))  # type: ignore[call-overload,arg-type]
        account = Account(user.id or 0, user.name, user.role, user.department)
    return SignIn(account=account, token=token, csrf_token=csrf)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_account(engine: Engine, token: str) -> tuple[Account, str] | None:
    """The account and CSRF token of a live session, or None."""
    if not token or len(token) > 128:
        return None
    with Session(engine) as session:
        row = session.get(ConsoleSession, token_digest(token))
        if row is None or _aware(row.expires_at) <= _now():  # type: ignore[operator]
            return None
        user = session.get(ConsoleUser, row.user_id)
        if user is None or user.disabled:
            return None
        return Account(user.id or 0, user.name, user.role, user.department), row.csrf_token


def sign_out(engine: Engine, token: str) -> None:
    with session_scope(engine) as session:
        session.exec(delete(ConsoleSession).where(ConsoleSession.token_sha256 == token_digest(token)))  # type: ignore[call-overload]
