"""Who is asking: the session cookie, roles, CSRF, and the audit entry for every view of
personal data. Shared by the HTML pages and the JSON API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request
from sqlalchemy import Engine

from gateway.store.audit import record_event
from gateway.store.db import session_scope
from gateway.web.accounts import Account, session_account

COOKIE = "gateway_console"
LOGIN_CSRF_COOKIE = "gateway_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

OFFICERS = ("operator", "security-officer")
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


def optional_caller(request: Request) -> Caller | None:
    """The caller when signed in (error pages show the menu to a signed-in account)."""
    token = request.cookies.get(COOKIE, "")
    found = session_account(request.app.state.engine, token) if token else None
    return Caller(*found) if found else None


def page_caller(request: Request) -> Caller:
    caller = optional_caller(request)
    if caller is None:
        raise NeedsSignIn(request.url.path)
    return caller


def api_caller(request: Request) -> Caller:
    caller = optional_caller(request)
    if caller is None:
        raise HTTPException(401, "Sign in first: POST /login, then send the gateway_console cookie.")
    return caller


def require_role(caller: Caller, *roles: str) -> None:
    if caller.account.role not in roles:
        raise HTTPException(403, f"A {caller.account.role} account may not see this; it needs: {', '.join(roles)}.")


def check_csrf(caller: Caller, presented: str | None) -> None:
    if not presented or not secrets.compare_digest(presented, caller.csrf_token):
        raise HTTPException(403, "The form's CSRF token is missing or wrong: reload the page and try again.")


def audit_view(engine: Engine, caller: Caller, department: str, what: str) -> None:
    """Write to the audit log that this account viewed personal data (`what` is masked again)."""
    account = caller.account
    who = f"{account.name} ({account.role}{':' + account.department if account.department else ''})"
    with session_scope(engine) as session:
        record_event(session, "console-view", department, None, f"{who} viewed {what}")


def audit_subjects(engine: Engine, caller: Caller, rows: list, kind: str, where: str) -> None:  # type: ignore[type-arg]
    """Audit a list of assist-checks or notices shown (`kind`): one entry per department
    whose subjects (masked) were seen."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.department] = counts.get(row.department, 0) + 1
    for department, n in sorted(counts.items()):
        audit_view(engine, caller, department, f"{n} {kind} subject(s) (masked) {where}")
