"""Who is asking: the session cookie, roles, CSRF, and the console's audit entries (every
view of personal data, sign-ins, refusals). Shared by the HTML pages and the JSON API."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from fastapi import HTTPException, Request
from gateway.web.accounts import Account, SignIn, session_account, sign_out, token_digest

COOKIE = "gateway_console"
LOGIN_CSRF_COOKIE = "gateway_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

OFFICERS = ("operator", "security-officer")
# The actions of the console's audit log (docs/security.md lists them).
VIEW, DOWNLOAD, REVEAL, FORBIDDEN = "console-view", "download", "reveal", "forbidden"
PASSWORD_CHANGED = "password-changed"
SIGN_IN, SIGN_IN_REFUSED, SIGN_OUT, BACKOFF = "sign-in", "sign-in-refused", "sign-out", "backoff"


@dataclass(frozen=True)
class Named:
    """A subject (masked) of a department, for `audit_subjects`."""

    department: str
    subject: str


class Subjected(Protocol):
    """A row that names a subject (masked) of a department: an assist-check, a notice, a gap."""

    @property
    def department(self) -> str: ...

    @property
    def subject(self) -> str: ...


# Who may have a receipt's signed bytes (签名回执原文): they keep the sender's file name as it
# was signed (it may hold a name or an ID number), so, like a record proof, a security officer
# and the exchange's own department (whose file it is); every download is audited. Operators
# see the receipt on the exchange page, its file name masked.
SIGNED_RECEIPT_READERS = ("security-officer", "department")


@dataclass(frozen=True)
class Caller:
    """A signed-in account and its session's CSRF token."""

    account: Account
    csrf_token: str

    @property
    def scope(self) -> str | None:
        return self.account.scope


def client_address(request: Request) -> str:
    """The address sign-in throttles and backs off by: the TCP peer (`gateway serve` runs
    uvicorn without proxy headers, so X-Forwarded-For cannot choose it)."""
    return request.client.host if request.client is not None else "unknown"


class NeedsSignIn(Exception):
    """A page was asked for without a live session: the browser goes to /login."""

    def __init__(self, next_path: str):
        self.next_path = next_path


SIGN_IN_FIRST = (
    "请先登录：POST /api/session（JSON：name、password），之后每个请求带上 gateway_console cookie，POST 还要带 X-CSRF-Token / "
    "sign in first: POST /api/session with JSON name and password, then send the gateway_console cookie "
    "(and X-CSRF-Token with every POST)"
)


def optional_caller(request: Request) -> Caller | None:
    """The caller when signed in (error pages show the menu to a signed-in account). A
    session idle for longer than gateway/web/idle.py allows is ended here."""
    token = request.cookies.get(COOKIE, "")
    found = session_account(request.app.state.engine, token) if token else None
    if found is None:
        return None
    idle = getattr(request.app.state, "idle_sessions", None)
    if idle is not None and not idle.touch(token_digest(token)):
        sign_out(request.app.state.writer, token)
        return None
    return Caller(*found)


def page_caller(request: Request) -> Caller:
    caller = optional_caller(request)
    if caller is None:
        # Back to the very page asked for after signing in, query included (a link in a mail).
        query = request.url.query
        raise NeedsSignIn(request.url.path + (f"?{query}" if query else ""))
    return caller


def api_caller(request: Request) -> Caller:
    caller = optional_caller(request)
    if caller is None:
        raise HTTPException(401, SIGN_IN_FIRST)
    return caller


def require_role(caller: Caller, *roles: str) -> None:
    if caller.account.role not in roles:
        raise HTTPException(403, f"A {caller.account.role} account may not see this; it needs: {', '.join(roles)}.")


def check_csrf(caller: Caller, presented: str | None) -> None:
    if not presented or not secrets.compare_digest(presented, caller.csrf_token):
        raise HTTPException(403, "The form's CSRF token is missing or wrong: reload the page and try again.")


def who(account: Account) -> str:
    return f"{account.name} ({account.role}{':' + account.department if account.department else ''})"


def audit_password_change(request: Request, caller: Caller) -> None:
    """An account changed its own password (修改密码); its other sessions ended."""
    audit(request, PASSWORD_CHANGED, caller, detail=f"{who(caller.account)} changed its own password; its other sessions ended")


def audit(
    request: Request, action: str, caller: Caller | None = None, *, user: str | None = None, role: str | None = None,
    department: str = "", subjects: Iterable[str] = (), detail: str = "",
) -> None:
    """One entry of the console's audit log (gateway/store/console_audit.py: never the write
    lock of an exchange): the account (or the `user` named), its role, the client address the
    sign-in throttle uses, and the route."""
    account = caller.account if caller is not None else None
    request.app.state.audit.record(
        action, user=account.name if account else user, role=account.role if account else role,
        department=department or (account.department if account and account.department else ""), client=client_address(request),
        route=f"{request.method} {request.url.path}", subjects=subjects, detail=detail,
    )


def audit_view(request: Request, caller: Caller, department: str, what: str, subjects: Iterable[str] = (), action: str = VIEW) -> None:
    """Write to the audit log that this account viewed personal data (`what` and the
    `subjects`, masked keys, are masked again)."""
    audit(request, action, caller, department=department, subjects=subjects, detail=f"{who(caller.account)} viewed {what}")


def audit_subjects(request: Request, caller: Caller, rows: Sequence[Subjected], kind: str, where: str) -> None:
    """Audit a list of assist-checks or notices shown (`kind`): one entry per department
    whose subjects were seen, naming them (masked)."""
    seen: dict[str, list[str]] = {}
    for row in rows:
        seen.setdefault(row.department, []).append(row.subject)
    for department, subjects in sorted(seen.items()):
        audit_view(request, caller, department, f"{len(subjects)} {kind} subject(s) (masked) {where}", subjects)


# A throttled attempt must cost nothing (gateway/web/throttle.py): of a client's flood of
# refused attempts, one entry a minute says it is being throttled.
THROTTLE_AUDIT_SECONDS = 60.0


def audit_sign_in(request: Request, name: str, result: SignIn) -> None:
    """The audit entry of a sign-in attempt: who, from where, and, refused, why (the answer
    never says which reason; the officer's log does); a back-off it began as an entry of its own."""
    if result.account is not None:
        account = result.account
        audit(request, SIGN_IN, Caller(account, ""), detail=f"{who(account)} signed in")
        return
    typed = " ".join(name.split())[:64]
    if result.reason == "throttled":
        seen = request.app.state.throttle_audited
        client, now = client_address(request), time.monotonic()
        if now - seen.get(client, -THROTTLE_AUDIT_SECONDS) < THROTTLE_AUDIT_SECONDS:
            return
        if len(seen) > 10_000:
            seen.clear()
        seen[client] = now
        detail = (f"refused: throttled (429, retry after {result.retry_after} s); "
                  f"this client's further throttled attempts within {THROTTLE_AUDIT_SECONDS:.0f} s are not recorded one by one")
    else:
        detail = f"refused: {result.reason}"
    audit(request, SIGN_IN_REFUSED, user=typed, detail=detail)
    if result.backoff_seconds:
        audit(request, BACKOFF, user=typed, detail=f"back-off of {result.backoff_seconds} s imposed on this client for this name after repeated failures")
