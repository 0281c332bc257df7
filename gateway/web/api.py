"""The JSON API: the console's data for scripts, documented at /openapi.json (/docs).
Authenticated by the same session cookie as the pages (POST /api/session signs in);
a write (POST) must send the session's CSRF token in the X-CSRF-Token header."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Header, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from gateway.errors import GatewayError
from gateway.masking import mask_id
from gateway.web import analysis, county, data
from gateway.web.accounts import REFUSED_STATUS, sign_in
from gateway.web.session import (
    COOKIE, CSRF_HEADER, DOWNLOAD, OFFICERS, REVEAL, SIGNED_RECEIPT_READERS, Caller, Named, api_caller, audit, audit_sign_in, audit_subjects, audit_view, check_csrf,
    client_address, require_role, who,
)
from gateway.store.audit_log import AuditFilter
from gateway.web.audit_pages import audit_filters
from gateway.web.paging import Paging, paging
from gateway.store.audit import mask_text
from gateway.web.verification import PURGED_HEADER, Verification, proof_document, read_receipt_upload, verify_upload

ApiCaller = Annotated[Caller, Depends(api_caller)]
AuditFilters = Annotated[AuditFilter, Depends(audit_filters)]
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Problem(BaseModel):
    detail: str


ERRORS = {401: {"model": Problem, "description": "not signed in"}, 403: {"model": Problem, "description": "not for this account"}}
NOT_FOUND = {404: {"model": Problem, "description": "no such thing"}}

router = APIRouter(prefix="/api", responses=ERRORS)


class Credentials(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    name: str
    role: Literal["operator", "security-officer", "department"]
    department: str | None
    csrf_token: str = Field(description="send it in X-CSRF-Token with every POST")


@router.post("/session", response_model=Me, responses={401: {"model": Problem}, 429: {"model": Problem}})
def create_session(request: Request, credentials: Credentials) -> Response:
    """Sign in; the answer sets the session cookie and gives the CSRF token."""
    result = sign_in(request.app.state.writer, request.app.state.engine, credentials.name, credentials.password,
                     client_address(request), request.app.state.signin_throttle)
    audit_sign_in(request, credentials.name, result)
    if result.retry_after:
        return JSONResponse({"detail": result.refusal}, status_code=429, headers={"Retry-After": str(result.retry_after)})
    if result.account is None:
        return JSONResponse({"detail": result.refusal}, status_code=REFUSED_STATUS)
    account = result.account
    body = Me(name=account.name, role=account.role, department=account.department, csrf_token=result.csrf_token or "")  # type: ignore[arg-type]
    response = JSONResponse(body.model_dump())
    response.set_cookie(COOKIE, result.token or "", httponly=True, samesite="strict",
                        secure=bool(request.app.state.secure_cookies or request.url.scheme == "https"), path="/")
    return response


class PasswordChange(BaseModel):
    current: str = Field(min_length=1, max_length=1000)
    new: str = Field(min_length=1, max_length=1000)


@router.post("/session/password", status_code=204, responses={**ERRORS, 400: {"model": Problem}})
def change_own_password(request: Request, caller: ApiCaller, change: PasswordChange,
                        csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None) -> Response:
    """修改密码: change this account's own password (the current one is checked; the new one must
    be strong); every other session of the account ends, this one stays. Audited."""
    from gateway.web.accounts import AccountProblem, change_password
    from gateway.web.session import audit_password_change

    check_csrf(caller, csrf)
    state = request.app.state
    try:
        change_password(state.writer, state.engine, caller.account, change.current, change.new, request.cookies.get(COOKIE, ""))
    except AccountProblem as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    audit_password_change(request, caller)
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(caller: ApiCaller) -> Me:
    a = caller.account
    return Me(name=a.name, role=a.role, department=a.department, csrf_token=caller.csrf_token)  # type: ignore[arg-type]


@router.get("/overview", response_model=data.Overview)
def overview(request: Request, caller: ApiCaller) -> data.Overview:
    state = request.app.state
    summary = data.overview(state.engine, state.settings, caller.scope)
    if state.reconciliation:
        summary.reconciliation_gaps = state.reconciliation(caller.scope)
    return summary


@router.get("/exchanges", response_model=list[data.ExchangeRow])
def exchanges(
    request: Request,
    response: Response,
    caller: ApiCaller,
    department: Annotated[str | None, Query(max_length=100)] = None,
    date_from: Annotated[dt.date | None, Query(description="first day received, China time")] = None,
    date_to: Annotated[dt.date | None, Query(description="last day received, China time")] = None,
    status: Literal["received", "processed", "duplicate", "rejected"] | None = None,
    adapter: Annotated[str | None, Query(max_length=100)] = None,
    file_name: Annotated[str | None, Query(max_length=200, description="part of the file name, any case")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[data.ExchangeRow]:
    """Exchanges newest first, `limit` from `offset`; a department account gets its own
    department's only. The total is in `X-Total-Count`, the neighbouring pages in `Link`."""
    engine = request.app.state.engine
    where = data.ExchangeFilter(department, adapter, status, date_from, date_to, (file_name or "").strip() or None)
    rows = data.list_exchanges(engine, caller.scope, where, limit=limit, offset=offset)
    _page_headers(response, paging("/api/exchanges", data.count_exchanges(engine, caller.scope, where), limit, offset,
                                   department=department, date_from=date_from, date_to=date_to, status=status, adapter=adapter,
                                   file_name=file_name))
    return rows


def _page_headers(response: Response, pager: Paging) -> None:
    response.headers["X-Total-Count"] = str(pager.total)
    link = pager.link_header()
    if link:
        response.headers["Link"] = link


def _detail(request: Request, caller: Caller, exchange_id: int) -> data.ExchangeDetail:
    try:
        return data.exchange_detail(request.app.state.engine, caller.scope, exchange_id)
    except data.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except data.OutOfScope as exc:
        raise HTTPException(403, str(exc)) from exc


@router.get("/exchanges/{exchange_id}", response_model=data.ExchangeDetail, responses=NOT_FOUND)
def exchange(request: Request, caller: ApiCaller, exchange_id: Id) -> data.ExchangeDetail:
    """One exchange: counts, its row errors and warnings (values masked), its receipt (the
    sender's file name masked; the signed bytes are /api/exchanges/N/receipt)."""
    detail = _detail(request, caller, exchange_id)
    if detail.issues:
        audit_view(request, caller, detail.exchange.department,
                   f"{len(detail.issues)} row error(s) (masked) of exchange {exchange_id} via the API")
    return detail


class SignedReceipt(BaseModel):
    file_name: str = Field(description="the receipt's own name (R00000012.receipt.json), never the sender's file name")
    body: str = Field(description="the receipt's canonical JSON, exactly as signed (it keeps the sender's file name)")
    signature: str = Field(description="ASCII-armored detached signature")


@router.get("/exchanges/{exchange_id}/receipt", response_model=SignedReceipt, responses=NOT_FOUND)
def receipt(request: Request, caller: ApiCaller, exchange_id: Id) -> SignedReceipt:
    """The receipt's signed bytes, to verify (`gateway receipts verify`): they keep the
    sender's file name as signed, so only a security officer or the exchange's own
    department gets them; audited. `GET /api/exchanges/N` shows the receipt masked."""
    require_role(caller, *SIGNED_RECEIPT_READERS)
    try:
        stem, body, asc = data.receipt_files(request.app.state.engine, caller.scope, exchange_id)
    except data.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except data.OutOfScope as exc:
        raise HTTPException(403, str(exc)) from exc
    department = str(json.loads(body).get("department", ""))
    audit_view(request, caller, department,
               f"the signed receipt {stem} of exchange {exchange_id} (the sender's file name as signed) via the API", action=DOWNLOAD)
    return SignedReceipt(file_name=f"{stem}.receipt.json", body=body.decode("utf-8"), signature=asc.decode("ascii"))


@router.get("/exchanges/{exchange_id}/proof", responses={**NOT_FOUND, 400: {"model": Problem}, 200: {"content": {"application/json": {}}}})
def proof(
    request: Request,
    caller: ApiCaller,
    exchange_id: Id,
    leaf_index: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="the record's leaf index, 0-based")] = None,
    row: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="or its row in the source file")] = None,
) -> Response:
    """A record's inclusion proof (`gateway receipts prove`): it holds the record in full,
    so only a security officer or the exchange's own department gets it; audited."""
    require_role(caller, "security-officer", "department")
    state = request.app.state
    try:
        data.check_exchange_scope(state.engine, caller.scope, exchange_id)
        document = proof_document(state.engine, exchange_id, leaf_index, row)
    except data.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except data.OutOfScope as exc:
        raise HTTPException(403, str(exc)) from exc
    except GatewayError as exc:
        raise HTTPException(400, str(exc)) from exc
    department = str(json.loads(document["receipt"]["body"]).get("department", ""))
    record = document["record"]
    purged = record.get("purged")
    what = (f"the proof of record {record['leaf_index']} of exchange {exchange_id}, purged under rule {purged['rule']} (hashes only), "
            "via the API" if purged else f"the full record {record['leaf_index']} of exchange {exchange_id} as a proof via the API")
    audit_view(request, caller, department, what, action=DOWNLOAD)
    headers = {PURGED_HEADER: f"purged on {purged['on']} under rule {purged['rule']}"} if purged else None
    return JSONResponse(document, headers=headers)


@router.post("/receipts/verify", response_model=Verification, responses={413: {"model": Problem}})
async def verify(
    request: Request,
    caller: ApiCaller,
    receipt: Annotated[UploadFile, File(description="NAME.receipt.json")],
    signature: Annotated[UploadFile, File(description="NAME.receipt.json.asc")],
    x_csrf_token: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> Verification:
    """Is this receipt genuine, by which key, at which ledger position?"""
    check_csrf(caller, x_csrf_token)
    body, asc = await read_receipt_upload(receipt, signature)
    state = request.app.state
    return verify_upload(state.settings, state.engine, receipt.filename, body, asc)


@router.get("/ledger", response_model=data.LedgerSummary)
def ledger(request: Request, caller: ApiCaller) -> data.LedgerSummary:  # noqa: ARG001
    return data.ledger_summary(request.app.state.engine)


@router.get("/deliveries", response_model=list[data.DeliveryRow])
def deliveries(
    request: Request,
    response: Response,
    caller: ApiCaller,
    status: Literal["open", "held", "waiting", "prepared", "delivered", "acknowledged", "empty", "cancelled"] | None = None,
    unacknowledged: bool = False,
    recipient: Annotated[str | None, Query(max_length=100)] = None,
    agreement: Annotated[str | None, Query(max_length=100)] = None,
    contract: Annotated[str | None, Query(max_length=100)] = None,
    exchange: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only those that carried this exchange's records")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[data.DeliveryRow]:
    """Deliveries newest first, `limit` from `offset` (total in `X-Total-Count`); a department
    account gets those it receives."""
    engine = request.app.state.engine
    if exchange is not None:
        _detail(request, caller, exchange)  # 404 / 403 as for the exchange itself
    where = data.DeliveryFilter(status, unacknowledged, recipient, agreement, contract, exchange)
    rows = data.list_deliveries(engine, caller.scope, where, limit=limit, offset=offset)
    _page_headers(response, paging("/api/deliveries", data.count_deliveries(engine, caller.scope, where), limit, offset, status=status,
                                   unacknowledged="true" if unacknowledged else None, recipient=recipient, agreement=agreement,
                                   contract=contract, exchange=exchange))
    return rows


@router.get("/acknowledgements", response_model=list[data.AcknowledgementRow])
def acknowledgements(request: Request, caller: ApiCaller) -> list[data.AcknowledgementRow]:
    return data.list_acknowledgements(request.app.state.engine, caller.scope)


@router.get("/assist-checks", response_model=list[data.AssistCheckRow])
def assist_checks(
    request: Request,
    response: Response,
    caller: ApiCaller,
    due_within: Annotated[int | None, Query(ge=0, le=3650, description="only those due within this many days")] = None,
    answered: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[data.AssistCheckRow]:
    """Assist-checks by due date, `limit` from `offset`; the total in `X-Total-Count`, the
    neighbouring pages in `Link`."""
    state = request.app.state
    listed = data.list_assist_checks(state.engine, caller.scope, due_within=due_within, include_answered=answered)
    rows = listed[offset:offset + limit]
    _page_headers(response, paging("/api/assist-checks", len(listed), limit, offset,
                                   due_within=None if due_within is None else str(due_within), answered="true" if answered else None))
    audit_subjects(request, caller, rows, "assist-check", "via the API")
    return rows


class RevealRequest(BaseModel):
    reason: str = Field(min_length=2, max_length=200, description="why the full identity is needed (audited)")


class RevealedSubject(BaseModel):
    id: int
    message_id: str
    name: str
    id_number: str


@router.post("/assist-checks/{check_id}/reveal", response_model=RevealedSubject, responses={**NOT_FOUND, 400: {"model": Problem}})
def reveal_subject(
    request: Request,
    caller: ApiCaller,
    check_id: Id,
    body: RevealRequest,
    x_csrf_token: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> RevealedSubject:
    """查看对象: the full name and ID number of one request's subject, for an operator (the
    population office's staff) who states a reason; each reveal is an audit entry."""
    from gateway.platform.assist_checks import reveal_subject as reveal

    require_role(caller, "operator")
    check_csrf(caller, x_csrf_token)
    account = caller.account
    try:
        shown = reveal(request.app.state.writer, str(check_id), reason=body.reason, who=f"{account.name} (operator, console)")
    except GatewayError as exc:
        raise HTTPException(404 if "No assist-check" in str(exc) else 400, str(exc)) from exc
    audit(request, REVEAL, caller, department="national-platform", subjects=[mask_id(shown.id_number or "")],
          detail=f"{who(account)} revealed the subject of assist-check {check_id} via the API; reason: {body.reason}")
    return RevealedSubject(id=shown.check.id or 0, message_id=mask_text(shown.check.message_id), name=shown.name, id_number=shown.id_number)


@router.get("/assist-checks/sent", response_model=list[county.SentRequestRow])
def sent_requests(request: Request, caller: ApiCaller, answered: bool = False) -> list[county.SentRequestRow]:
    """本县发出的协查请求 (`gateway assist-checks sent`): the county's own requests, subjects masked;
    operators and security officers."""
    require_role(caller, *OFFICERS)
    state = request.app.state
    rows = county.list_sent(state.engine, include_answered=answered)
    if rows:
        audit_subjects(request, caller, [Named("national-platform", r.subject) for r in rows], "county request", "via the API")
    return rows


@router.post("/assist-checks", response_model=county.RequestMade, status_code=201,
             responses={400: {"model": Problem}, 409: {"model": Problem}, 202: {"model": county.RequestMade}})
def make_request(
    request: Request,
    caller: ApiCaller,
    body: county.CountyRequest,
    x_csrf_token: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> Response:
    """发起协查 (`gateway assist-checks request`): the county's own assist-check request, built from
    its records, sent to the platform and receipted; operators only. 201 when the platform took
    it, 202 when it is saved and sent later; a refusal (400, or 409 when the platform or the
    configuration refused it) says why, Chinese first."""
    require_role(caller, "operator")
    check_csrf(caller, x_csrf_token)
    try:
        made = county.make_request(request.app.state.settings, body, f"{caller.account.name} (operator, console)")
    except county.Refused as exc:
        raise HTTPException(exc.status, exc.message) from None
    if made.request.status == "refused":
        raise HTTPException(409, made.message)
    return JSONResponse(made.model_dump(mode="json"), status_code=201 if made.sent else 202)


@router.get("/notices/drafts", response_model=list[county.NoticeDraftRow])
def notice_drafts(request: Request, caller: ApiCaller, sent: bool = False) -> list[county.NoticeDraftRow]:
    """本县通报草稿 (`gateway notices drafts`): the county's own notices and why a draft may not
    leave yet, subjects masked; operators and security officers."""
    require_role(caller, *OFFICERS)
    state = request.app.state
    rows = county.list_drafts(state.engine, state.settings, include_sent=sent)
    if rows:
        audit_subjects(request, caller, [Named("national-platform", r.subject) for r in rows], "county notice", "via the API")
    return rows


@router.post("/notices/{notice_id}/send", response_model=county.NoticeSent,
             responses={**NOT_FOUND, 409: {"model": county.NoticeSent, "description": "refused, or not sent yet: `message` says why"}})
def send_notice(
    request: Request,
    caller: ApiCaller,
    notice_id: Id,
    x_csrf_token: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> Response:
    """发出本县通报 (`gateway notices send`): one draft to the platform, receipted; refused before
    it leaves without a name, an ID number and a village-level address; operators only."""
    require_role(caller, "operator")
    check_csrf(caller, x_csrf_token)
    state = request.app.state
    try:
        outcome = county.send_notice(state.settings, state.engine, notice_id, f"{caller.account.name} (operator, console)")
    except county.Refused as exc:
        raise HTTPException(exc.status, exc.message) from None
    return JSONResponse(outcome.model_dump(mode="json"), status_code=200 if outcome.sent else 409)


@router.get("/notices", response_model=list[data.NoticeRow])
def notices(request: Request, caller: ApiCaller, handled: bool = False) -> list[data.NoticeRow]:
    """Notices (通报) from the national platform and when each is due."""
    state = request.app.state
    rows = data.list_notices(state.engine, caller.scope, include_handled=handled)
    audit_subjects(request, caller, rows, "notice", "via the API")
    return rows


class RegisterWoman(BaseModel):
    """One row of the 育龄妇女花名册 (gateway/register/), identifiers masked."""

    name: str = Field(description="姓名 (masked)")
    id_number: str = Field(description="公民身份号码 (masked)")
    birth_date: str = Field(description="出生日期")
    marital_status: str = Field(description="婚姻状况")
    children: str = Field(description="现有子女数")
    household: str = Field(description="户籍地 (masked)")
    residence: str = Field(description="现居住地 (masked)")
    change: str = Field(description="变动情况")
    change_date: str = Field(description="变动日期")
    source: str = Field(description="信息来源")


@router.get("/register/women", response_model=list[RegisterWoman], responses={**ERRORS, 400: {"model": Problem}})
def register_women(
    request: Request,
    caller: ApiCaller,
    township: Annotated[str, Query(min_length=1, max_length=40, description="乡镇（街道）: code, name or town-<code>")],
    village: Annotated[str | None, Query(min_length=1, max_length=40, description="村（居）: code or name")] = None,
    as_of: Annotated[dt.date | None, Query(description="ages on this day (default: today)")] = None,
) -> list[RegisterWoman]:
    """The register of women of childbearing age of a township or village (育龄妇女信息库): operators and the
    population office's accounts only; every view is audited."""
    from gateway import clock
    from gateway.register.divisions import load_divisions
    from gateway.register.settings import register_settings
    from gateway.register.women import roster
    from gateway.web.register_pages import REFUSED, may_read_register, roster_audit

    account = caller.account
    if not may_read_register(caller):
        raise HTTPException(403, REFUSED)
    state = request.app.state
    try:
        divisions = load_divisions(state.settings.home)
        town = divisions.find(township, "township")
        place = divisions.find(village, "village", within=town.code) if village else None
        result = roster(
            state.engine, as_of or clock.today(), register_settings(state.settings), township=town.code,
            village=place.code if place else None, title=f"{town.name}{place.name if place else ''}育龄妇女花名册 via the console",
            operator=f"{account.name} ({account.role}{':' + account.department if account.department else ''})",
            audit=roster_audit(request, caller),
        )
    except GatewayError as exc:
        raise HTTPException(400, str(exc)) from None
    return [RegisterWoman(**dict(zip(RegisterWoman.model_fields, row, strict=True))) for row in result.rows]


@router.get("/deadline-rules", response_model=list[data.DeadlineRuleRow])
def deadline_rules(request: Request, caller: ApiCaller) -> list[data.DeadlineRuleRow]:  # noqa: ARG001
    return data.deadline_rules(request.app.state.settings)


@router.get("/jobs", response_model=list[data.JobInfo])
def jobs(request: Request, caller: ApiCaller) -> list[data.JobInfo]:
    require_role(caller, *OFFICERS)
    state = request.app.state
    return data.list_jobs(state.engine, state.settings)


@router.get("/pulls", response_model=list[data.PullRow])
def pulls(request: Request, caller: ApiCaller) -> list[data.PullRow]:
    require_role(caller, *OFFICERS)
    return data.list_pulls(request.app.state.engine)


@router.get("/adapters", response_model=list[data.AdapterRow])
def adapters(caller: ApiCaller) -> list[data.AdapterRow]:
    require_role(caller, *OFFICERS)
    return data.list_adapters()


@router.get("/audit", response_model=list[data.AuditRow])
def audit_list(
    request: Request, response: Response, caller: ApiCaller, filters: AuditFilters,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[data.AuditRow]:
    """The audit log, newest first: the routing events and the console's entries (sign-ins,
    refusals, 403s, views naming their subjects, reveals, downloads), masked; security
    officers only. A list as before; the total the filters let through is in `X-Total-Count`
    (`/api/audit/page` gives it in the body), and `offset` pages."""
    require_role(caller, "security-officer")
    state = request.app.state
    listed = data.list_audit(state.engine, state.audit.engine, filters, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(listed.total)
    return listed.rows


@router.get("/audit/page", response_model=data.AuditList)
def audit_page(
    request: Request, caller: ApiCaller, filters: AuditFilters,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> data.AuditList:
    """One page of the audit log with its total, limit and offset; the filters of `/api/audit`."""
    require_role(caller, "security-officer")
    state = request.app.state
    return data.list_audit(state.engine, state.audit.engine, filters, limit=limit, offset=offset)


@router.get("/audit.csv", responses={200: {"content": {"text/csv": {}}}})
def audit_csv(request: Request, caller: ApiCaller, filters: AuditFilters) -> Response:
    """The whole filtered audit log as CSV (masked; UTF-8 with BOM); security officers only."""
    from gateway.web.audit_pages import csv_response

    require_role(caller, "security-officer")
    return csv_response(request, caller, filters)


@router.get("/reconciliation", response_model=list[analysis.RuleGaps], responses={409: {"model": Problem}})
def reconciliation(request: Request, caller: ApiCaller) -> list[analysis.RuleGaps]:
    """Open discrepancies per rule (of the last evaluation), subjects masked; a department
    account gets those it is to be told about."""
    state = request.app.state
    try:
        rules = analysis.reconciliation(state.engine, state.settings, caller.scope)
    except GatewayError as exc:
        raise HTTPException(409, f"Reconciliation is not configured right: {exc}") from exc
    audit_subjects(request, caller, [gap for rule in rules for gap in rule.items], "reconciliation gap", "via the API")
    return rules


@router.get("/reconciliation/items", response_model=list[analysis.Gap], responses={404: {"model": Problem}, 409: {"model": Problem}})
def reconciliation_items(
    request: Request,
    response: Response,
    caller: ApiCaller,
    rule: Annotated[str | None, Query(max_length=100, description="only this rule's open discrepancies")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[analysis.Gap]:
    """The open discrepancies, rule by rule (or one rule's), `limit` from `offset`, subjects
    masked; the total in `X-Total-Count`, the neighbouring pages in `Link`."""
    state = request.app.state
    try:
        rules = {gaps.rule: gaps for gaps in analysis.reconciliation(state.engine, state.settings, caller.scope)}
    except GatewayError as exc:
        raise HTTPException(409, f"Reconciliation is not configured right: {exc}") from exc
    if rule is not None and rule not in rules:
        raise HTTPException(404, f"No reconciliation rule {rule!r}; the rules: {', '.join(sorted(rules)) or 'none'}")
    listed = [gap for name, gaps in rules.items() if rule in (None, name) for gap in gaps.items]
    items = listed[offset:offset + limit]
    _page_headers(response, paging("/api/reconciliation/items", len(listed), limit, offset, rule=rule))
    audit_subjects(request, caller, items, "reconciliation gap", "via the API")
    return items


@router.get("/reports/{kind}", responses={400: {"model": Problem}, 200: {"content": {"application/json": {}}}})
def report(
    request: Request,
    caller: ApiCaller,
    kind: Literal["monthly", "quarterly", "half-year", "annual"],
    label: Annotated[str | None, Query(max_length=20, description="2026-10 | 2026Q3 | 2026H1 | 2026; default: the latest due")] = None,
) -> Response:
    """A population report's summary (`gateway report KIND --json`): totals, balance, notes."""
    from gateway.web.pages import REPORT_READERS, may_read_reports

    if not may_read_reports(caller):
        raise HTTPException(403, f"Population reports are for operators, security officers and the {REPORT_READERS}.")
    state = request.app.state
    try:
        view, _ = analysis.report_view(state.engine, state.settings, kind, label)
    except GatewayError as exc:
        raise HTTPException(400, str(exc)) from exc
    return JSONResponse(view.summary)
