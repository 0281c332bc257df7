"""Console accounts (控制台账户): adding, listing, disabling, resetting, unlocking, and
signing in with a back-off per client address and name. Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
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
from zxcvbn import zxcvbn

from gateway.errors import GatewayError
from gateway.store.db import session_scope
from gateway.store.web_models import ConsoleSession, ConsoleUser, SignInBackoff
from gateway.web.throttle import SignInThrottle

ROLES = ("operator", "security-officer", "department")
MIN_PASSWORD_LENGTH = 10
# zxcvbn's score (0-4): 3 means about 10^8 guesses or more. Its frequency lists hold some
# 30,000 common passwords (leaked sets), English words and names, keyboard walks,
# repeats and dates; `aaaaaaaaaa`, `qwertyuiop`, `1qaz2wsx3edc`, `password123` and
# `woaini1314` all score below 3.
MIN_PASSWORD_SCORE = 3
# Words a county account's password must not lean on (given to zxcvbn as user inputs).
_LOCAL_WORDS = ("gateway", "console", "county", "population", "admin", "wangguan", "renkou", "xian")
# Back-off (登录退避), per client address and name together: 5 failures in a row → wait 30 s,
# doubling with each further 5 up to 15 min; forgotten after a day without failures.
BACKOFF_AFTER = 5
BACKOFF_FIRST_SECONDS = 30
BACKOFF_MAX_SECONDS = 15 * 60
BACKOFF_FORGET_HOURS = 24
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


def _check_password(password: str, name: str = "", department: str | None = None) -> None:
    """Refuse a password that is short or easy to guess (密码强度), in Chinese first."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountProblem(f"密码至少 {MIN_PASSWORD_LENGTH} 个字符 / the password must have at least {MIN_PASSWORD_LENGTH} characters")
    inputs = [w for w in (name, department or "", *(department or "").split("-"), *_LOCAL_WORDS) if w]
    verdict = zxcvbn(password[:100], user_inputs=inputs)  # zxcvbn's time grows with length; 100 is plenty
    if verdict["score"] < MIN_PASSWORD_SCORE:
        raise AccountProblem(
            "密码太容易被猜到（常见密码、重复字符、键盘顺序、日期或含用户名）：请换一个更长、更少见的，例如几个不相关的词加数字 / "
            "the password is too easy to guess (a common password, repeats, a keyboard walk, a date or the user name): "
            "choose a longer, less common one, e.g. a few unrelated words and digits"
        )


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
    _check_password(password, name, department)
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
    """A new password; it also lifts every back-off and ends the account's sessions."""
    with Session(engine) as session:
        user = _user(session, name)
        _check_password(password, user.name, user.department)
    new_hash = _hasher.hash(password)
    with session_scope(engine) as session:
        user = _user(session, name)
        session.exec(delete(SignInBackoff).where(SignInBackoff.name_sha256 == _name_digest(user.name)))  # type: ignore[call-overload,arg-type]
        user.password_hash = new_hash
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
        session.exec(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))  # type: ignore[call-overload]


def change_password(writer: Engine, reader: Engine, account: Account, current: str, new: str, keep_token: str) -> None:
    """An account changes its own password (修改密码): the current one is checked (Argon2,
    outside any write transaction, as at sign-in), the new one must be strong and
    different; every other session of the account ends, the one asking (`keep_token`)
    stays signed in. Raises AccountProblem with the reason, Chinese first."""
    with Session(reader) as session:
        user = session.get(ConsoleUser, account.id)
        stored_hash = user.password_hash if user is not None and not user.disabled else None
    if stored_hash is None or not _verify(stored_hash, current):
        raise AccountProblem("当前密码不对 / the current password is wrong")
    if new == current:
        raise AccountProblem("新密码与当前密码相同 / the new password is the same as the current one")
    _check_password(new, account.name, account.department)
    new_hash = _hasher.hash(new)
    with session_scope(writer) as session:
        user = session.get(ConsoleUser, account.id)
        if user is None or user.password_hash != stored_hash:
            raise AccountProblem("密码刚被他人修改，请重新登录 / the password was changed meanwhile: sign in again")
        user.password_hash = new_hash
        session.add(user)
        session.exec(delete(ConsoleSession).where(ConsoleSession.user_id == account.id,  # type: ignore[call-overload,arg-type]
                                                  ConsoleSession.token_sha256 != token_digest(keep_token)))


# -- signing in -------------------------------------------------------------------------------


@dataclass
class SignIn:
    """What a sign-in attempt gave: a session (cookie token and CSRF token) or a refusal;
    `retry_after` (seconds) when the throttle refused it before any check (HTTP 429)."""

    account: Account | None = None
    token: str | None = None
    csrf_token: str | None = None
    refusal: str | None = None
    retry_after: int = 0
    reason: str = ""
    """why it was refused, for the audit log only (never the answer): unknown-name,
    wrong-password, disabled, backed-off, throttled, changed-while-signing-in"""
    backoff_seconds: int = 0
    """a back-off this failure imposed on the client for this name (0: none)"""


# One answer for an unknown name, a wrong password, a client in back-off and a disabled
# account: whoever signs in learns nothing about which names exist or which password is right.
REFUSED = "用户名或密码错误，或账户暂不可用 / wrong name or password, or the account is not available"
REFUSED_STATUS = 401


def throttled(seconds: int) -> str:
    return f"登录尝试过于频繁，请 {seconds} 秒后再试 / too many sign-in attempts: try again in {seconds} s"


def _name_digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def sign_in(writer: Engine, reader: Engine, name: str, password: str, client: str, throttle: SignInThrottle | None = None) -> SignIn:
    """Check a name and password for one client address (登录).

    Never inside a write transaction while Argon2 works (~0.3 s): the account and this
    client's back-off are read with a deferred read, the password is verified with no
    transaction open, and only the outcome is written, in a short write transaction. Every
    refusal is REFUSED after exactly one Argon2 verification (against a dummy hash for an
    unknown name or a client in back-off). Over the throttle (gateway/web/throttle.py) the
    answer is a `retry_after` at once, without Argon2 or the database."""
    name = name.strip()
    client = (client or "unknown")[:64]
    digest = _name_digest(name)
    if throttle is not None:
        wait = throttle.retry_after(client, digest)
        if wait:
            return SignIn(refusal=throttled(wait), retry_after=wait, reason="throttled")
    now = _now()
    with Session(reader) as session:  # deferred BEGIN: no write lock; closed before Argon2
        user = session.exec(select(ConsoleUser).where(ConsoleUser.name == name)).first()
        backoff = session.get(SignInBackoff, (client, digest))
        user_id, stored_hash, disabled = (user.id, user.password_hash, user.disabled) if user is not None else (None, None, True)
    blocked_until = _aware(backoff.blocked_until) if backoff is not None else None
    blocked = blocked_until is not None and blocked_until > now
    checked_hash = stored_hash if stored_hash is not None and not blocked else _DUMMY_HASH
    right = _verify(checked_hash, password) and checked_hash is not _DUMMY_HASH
    if not right or disabled or blocked or user_id is None or stored_hash is None:
        reason = ("unknown-name" if user_id is None else "backed-off" if blocked else "wrong-password" if not right
                  else "disabled")
        return SignIn(refusal=REFUSED, reason=reason, backoff_seconds=_record_failure(writer, client, digest, now))
    new_hash = _hasher.hash(password) if _hasher.check_needs_rehash(stored_hash) else None  # Argon2 again: outside too
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with session_scope(writer) as session:
        user = session.get(ConsoleUser, user_id)
        # Disabled, or given a new password, between the read and now: refused like any other.
        if user is None or user.disabled or user.password_hash != stored_hash:
            refused = True
        else:
            refused = False
            if new_hash is not None:
                user.password_hash = new_hash
            user.failed_logins = 0
            user.locked_until = None
            user.last_login_at = now
            session.add(user)
            session.exec(delete(SignInBackoff).where(SignInBackoff.client == client, SignInBackoff.name_sha256 == digest))  # type: ignore[call-overload,arg-type]
            session.add(ConsoleSession(token_sha256=token_digest(token), user_id=user_id, csrf_token=csrf,
                                       created_at=now, expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
            session.exec(delete(ConsoleSession).where(ConsoleSession.expires_at < now))  # type: ignore[call-overload,arg-type]
            account = Account(user_id, user.name, user.role, user.department)
    if refused:
        return SignIn(refusal=REFUSED, reason="changed-while-signing-in", backoff_seconds=_record_failure(writer, client, digest, now))
    return SignIn(account=account, token=token, csrf_token=csrf)


def _record_failure(writer: Engine, client: str, digest: str, now: dt.datetime) -> int:
    """One failure of `client` for a name, in a short write transaction: BACKOFF_AFTER in a
    row start a wait of BACKOFF_FIRST_SECONDS, doubling each time up to BACKOFF_MAX_SECONDS.
    Written for unknown names too, so that they cost and answer the same. The seconds of a
    wait this failure began (0: none), for the audit log."""
    imposed = 0
    with session_scope(writer) as session:
        row = session.get(SignInBackoff, (client, digest))
        if row is None:
            row = SignInBackoff(client=client, name_sha256=digest, last_failure_at=now)
        blocked_until = _aware(row.blocked_until)
        if blocked_until is not None and blocked_until > now:
            pass  # already waiting: the wait is not lengthened (an unlock or the clock lifts it)
        else:
            if now - (_aware(row.last_failure_at) or now) > dt.timedelta(hours=BACKOFF_FORGET_HOURS):
                row.failures, row.strikes = 0, 0
            row.failures += 1
            if row.failures >= BACKOFF_AFTER:
                wait = min(BACKOFF_FIRST_SECONDS * 2**row.strikes, BACKOFF_MAX_SECONDS)
                row.blocked_until = now + dt.timedelta(seconds=wait)
                imposed = wait
                row.strikes += 1
                row.failures = 0
        row.last_failure_at = now
        session.add(row)
        if secrets.randbelow(100) == 0:  # now and then, forget old back-off rows
            old = now - dt.timedelta(hours=BACKOFF_FORGET_HOURS)
            session.exec(delete(SignInBackoff).where(SignInBackoff.last_failure_at < old))  # type: ignore[call-overload,arg-type]
    return imposed


def unlock(engine: Engine, name: str) -> int:
    """Clear every client's back-off for an account (解除锁定), without a new password;
    the number of client addresses that were waiting or counting failures."""
    with session_scope(engine) as session:
        user = _user(session, name)
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
        rows = session.exec(select(SignInBackoff).where(SignInBackoff.name_sha256 == _name_digest(user.name))).all()
        for row in rows:
            session.delete(row)
        return len(rows)


def backoffs(engine: Engine) -> dict[str, dt.datetime]:
    """For each account name some client must wait for: the latest end of those waits."""
    now = _now()
    with Session(engine) as session:
        names = {_name_digest(u.name): u.name for u in session.exec(select(ConsoleUser)).all()}
        waits: dict[str, dt.datetime] = {}
        for row in session.exec(select(SignInBackoff)).all():
            until = _aware(row.blocked_until)
            if row.name_sha256 in names and until is not None and until > now:
                name = names[row.name_sha256]
                waits[name] = max(until, waits.get(name, until))
        return waits


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
