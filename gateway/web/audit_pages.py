"""The audit log in the console (审计日志): the page `/audit` and its CSV `/audit.csv`, for the
security officer. One list of the routing events and the console's entries
(gateway/store/audit_log.py), filtered by user, action, department and China-time dates,
paged with next/previous; the CSV is the whole filtered list, masked, UTF-8 with BOM. The
API's `/api/audit` (gateway/web/api.py) takes the same filters (`audit_filters`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from gateway import clock
from gateway.store import audit_log
from gateway.store.audit_log import AuditFilter
from gateway.web import data
from gateway.web.pages import render
from gateway.web.session import Caller, audit, page_caller, require_role, who

router = APIRouter(include_in_schema=False)
PageCaller = Annotated[Caller, Depends(page_caller)]
AUDITORS = ("security-officer",)
PAGE_SIZES = (50, 100, 200, 500)
EXPORT = "audit-export"


def audit_filters(
    user: Annotated[str | None, Query(max_length=64, description="the account name (console entries only)")] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. sign-in-refused, forbidden, console-view, delivered")] = None,
    department: Annotated[str | None, Query(max_length=100)] = None,
    date_from: Annotated[dt.date | None, Query(description="first day, China time")] = None,
    date_to: Annotated[dt.date | None, Query(description="last day, China time")] = None,
) -> AuditFilter:
    """The filters of the audit list, page and API alike; an empty field is no filter."""
    return AuditFilter(user=(user or "").strip() or None, action=(action or "").strip() or None,
                       department=(department or "").strip() or None, date_from=date_from, date_to=date_to)


Filters = Annotated[AuditFilter, Depends(audit_filters)]


def _query(filters: AuditFilter, **extra: object) -> str:
    pairs = {"user": filters.user, "action": filters.action, "department": filters.department,
             "date_from": filters.date_from.isoformat() if filters.date_from else None,
             "date_to": filters.date_to.isoformat() if filters.date_to else None, **extra}
    return urlencode({k: v for k, v in pairs.items() if v not in (None, "")})


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request, caller: PageCaller, filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 100, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    require_role(caller, *AUDITORS)
    state = request.app.state
    listed = data.list_audit(state.engine, state.audit.engine, filters, limit=limit, offset=offset)
    previous = _query(filters, limit=limit, offset=max(offset - limit, 0)) if offset > 0 else None
    following = _query(filters, limit=limit, offset=offset + limit) if offset + limit < listed.total else None
    return render(request, "audit.html", caller, listed=listed, rows=listed.rows, filters=filters,
                  actions=audit_log.actions(state.engine, state.audit.engine), previous=previous, following=following,
                  export=_query(filters), first=offset + 1 if listed.rows else 0, last=offset + len(listed.rows), limit=limit,
                  page_sizes=PAGE_SIZES)


@router.get("/audit.csv")
def audit_csv(request: Request, caller: PageCaller, filters: Filters) -> StreamingResponse:
    """The whole filtered list as CSV (masked; UTF-8 with BOM, so Excel shows the Chinese)."""
    require_role(caller, *AUDITORS)
    return csv_response(request, caller, filters)


def csv_response(request: Request, caller: Caller, filters: AuditFilter) -> StreamingResponse:
    """The export, itself an entry of the log (which filters)."""
    state = request.app.state
    audit(request, EXPORT, caller, detail=f"{who(caller.account)} exported the audit log as CSV ({_query(filters) or 'everything'})")
    name = f"audit-{clock.today().isoformat()}.csv"
    return StreamingResponse(audit_log.csv_chunks(state.engine, state.audit.engine, filters), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
