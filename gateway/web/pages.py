"""The console's pages (server-rendered, Jinja2 templates in gateway/web/templates/)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.errors import GatewayError
from gateway.web import data
from gateway.web.accounts import REFUSED_STATUS, sign_in, sign_out
from gateway.web.session import (
    client_address,
    COOKIE,
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    OFFICERS,
    SIGNED_RECEIPT_READERS,
    Caller,
    audit_subjects,
    audit_view,
    check_csrf,
    page_caller,
    require_role,
)
from gateway.web.verification import proof_bytes, proof_document, read_receipt_upload, verify_upload

router = APIRouter(include_in_schema=False)
PageCaller = Annotated[Caller, Depends(page_caller)]
ExchangeId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def render(request: Request, template: str, caller: Caller | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.update(caller=caller, csrf_field=CSRF_FIELD, departments=data.served_departments(request.app.state.settings))
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)


def _secure(request: Request) -> bool:
    return bool(request.app.state.secure_cookies or request.url.scheme == "https")


def _safe_next(value: str | None) -> str:
    # Only a path of this console: never an absolute URL or //host (an open redirect).
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# -- signing in and out ------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", None, login_csrf=token, next=_safe_next(next), refusal=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/login")
    return response


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        raise HTTPException(403, "The sign-in form's CSRF token is missing or wrong: reload the page and try again.")
    result = sign_in(request.app.state.writer, request.app.state.engine, name, password, client_address(request), request.app.state.signin_throttle)
    if result.account is None:
        token = secrets.token_urlsafe(32)
        status = 429 if result.retry_after else REFUSED_STATUS
        response = render(request, "login.html", None, status_code=status, login_csrf=token, next=_safe_next(next), refusal=result.refusal)
        if result.retry_after:
            response.headers["Retry-After"] = str(result.retry_after)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/login")
        return response
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, result.token or "", httponly=True, samesite="strict", secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, caller: PageCaller, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(caller, csrf_token)
    sign_out(request.app.state.writer, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- pages -------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, caller: PageCaller) -> HTMLResponse:
    state = request.app.state
    summary = data.overview(state.engine, state.settings, caller.scope)
    audit_subjects(state.writer, caller, summary.assist_checks_due, "assist-check", "on the overview")
    summary.reconciliation_gaps = state.reconciliation(caller.scope)
    return render(request, "overview.html", caller, summary=summary)


@router.get("/exchanges", response_class=HTMLResponse)
def exchanges_page(
    request: Request,
    caller: PageCaller,
    department: Annotated[str | None, Query(max_length=100)] = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    rows = data.list_exchanges(
        request.app.state.engine, caller.scope, department=department or None, date_from=date_from, date_to=date_to,
        status=status or None, limit=500,
    )
    filters = {"department": department or "", "date_from": date_from or "", "date_to": date_to or "", "status": status or ""}
    return render(request, "exchanges.html", caller, rows=rows, filters=filters, statuses=data.EXCHANGE_STATUSES)


def _exchange_or_error(request: Request, caller: Caller, exchange_id: int) -> data.ExchangeDetail:
    try:
        return data.exchange_detail(request.app.state.engine, caller.scope, exchange_id)
    except data.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except data.OutOfScope as exc:
        raise HTTPException(403, f"{exc} A {caller.scope} account sees its own department's exchanges only.") from exc


@router.get("/exchanges/{exchange_id}", response_class=HTMLResponse)
def exchange_page(request: Request, caller: PageCaller, exchange_id: ExchangeId) -> HTMLResponse:
    detail = _exchange_or_error(request, caller, exchange_id)
    if detail.issues:
        audit_view(request.app.state.writer, caller, detail.exchange.department,
                   f"{len(detail.issues)} row error(s) (masked) of exchange {exchange_id}")
    return render(request, "exchange.html", caller, detail=detail, signed_download=may_download_signed_receipt(caller))


@router.get("/exchanges/{exchange_id}/receipt.json")
def receipt_download(request: Request, caller: PageCaller, exchange_id: ExchangeId) -> Response:
    return _receipt_file(request, caller, exchange_id, signature=False)


@router.get("/exchanges/{exchange_id}/receipt.json.asc")
def signature_download(request: Request, caller: PageCaller, exchange_id: ExchangeId) -> Response:
    return _receipt_file(request, caller, exchange_id, signature=True)


def may_download_signed_receipt(caller: Caller) -> bool:
    return caller.account.role in SIGNED_RECEIPT_READERS


def _receipt_file(request: Request, caller: Caller, exchange_id: int, *, signature: bool) -> Response:
    if not signature:
        require_role(caller, *SIGNED_RECEIPT_READERS)
    try:
        stem, body, asc = data.receipt_files(request.app.state.engine, caller.scope, exchange_id)
    except data.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except data.OutOfScope as exc:
        raise HTTPException(403, str(exc)) from exc
    if not signature:
        department = str(json.loads(body).get("department", ""))
        audit_view(request.app.state.writer, caller, department,
                   f"the signed receipt {stem} of exchange {exchange_id} (the sender's file name as signed) as a download")
    # Named after the receipt (R00000012.receipt.json), never the sender's file name.
    name = f"{stem}.receipt.json" + (".asc" if signature else "")
    media = "application/pgp-signature" if signature else "application/json"
    return Response(asc if signature else body, media_type=media, headers={"Content-Disposition": f"attachment; filename=\"{quote(name)}\""})


@router.get("/receipts", response_class=HTMLResponse)
def receipts_page(request: Request, caller: PageCaller) -> HTMLResponse:
    return render(request, "receipts.html", caller, verification=None, proof_error=None)


@router.post("/receipts/verify", response_class=HTMLResponse)
async def receipts_verify(
    request: Request,
    caller: PageCaller,
    receipt: Annotated[UploadFile, File()],
    signature: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    check_csrf(caller, csrf_token)
    body, asc = await read_receipt_upload(receipt, signature)
    state = request.app.state
    verification = verify_upload(state.settings, state.engine, receipt.filename, body, asc)
    return render(request, "receipts.html", caller, verification=verification, proof_error=None)


@router.post("/receipts/proof")
def receipts_proof(
    request: Request,
    caller: PageCaller,
    exchange_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    leaf_index: Annotated[str, Form(max_length=12)] = "",
    row: Annotated[str, Form(max_length=12)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """A record's inclusion proof, downloaded: it holds the record in full, so only a
    security officer or the exchange's own department may have it, and it is audited."""
    check_csrf(caller, csrf_token)
    require_role(caller, "security-officer", "department")
    state = request.app.state
    try:
        data.check_exchange_scope(state.engine, caller.scope, exchange_id)
        leaf = int(leaf_index) if leaf_index.strip() else None
        row_number = int(row) if row.strip() else None
        document = proof_document(state.engine, exchange_id, leaf, row_number)
    except data.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except data.OutOfScope as exc:
        raise HTTPException(403, str(exc)) from exc
    except (GatewayError, ValueError) as exc:
        return render(request, "receipts.html", caller, status_code=400, verification=None, proof_error=str(exc))
    record = document["record"]
    audit_view(state.writer, caller, _department_of(document), f"the full record {record['leaf_index']} (row {record['row_number']}) of exchange {exchange_id} as a proof download")
    name = f"exchange-{exchange_id}-record-{record['leaf_index']}.proof.json"
    return Response(proof_bytes(document), media_type="application/json", headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _department_of(document: dict[str, Any]) -> str:
    return str(json.loads(document["receipt"]["body"]).get("department", ""))


@router.get("/ledger", response_class=HTMLResponse)
def ledger_page(request: Request, caller: PageCaller) -> HTMLResponse:
    return render(request, "ledger.html", caller, ledger=data.ledger_summary(request.app.state.engine))


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(
    request: Request, caller: PageCaller, status: Annotated[str | None, Query(max_length=20)] = None, unacknowledged: bool = False
) -> HTMLResponse:
    engine = request.app.state.engine
    rows = data.list_deliveries(engine, caller.scope, status=status or None, unacknowledged=unacknowledged)
    acks = data.list_acknowledgements(engine, caller.scope)
    return render(request, "deliveries.html", caller, rows=rows, acks=acks, status=status or "", unacknowledged=unacknowledged,
                  statuses=data.DELIVERY_STATUSES)


def _assist_checks(request: Request, caller: Caller, status_code: int = 200, due_within: int | None = None, answered: bool = False,
                   **extra: Any) -> HTMLResponse:
    """The assist-checks page: the requests and notices received, and (operators and officers)
    the county's own requests and notice drafts, with the forms of an operator."""
    from gateway.web import county

    state = request.app.state
    rows = data.list_assist_checks(state.engine, caller.scope, due_within=due_within, include_answered=answered)
    notices = data.list_notices(state.engine, caller.scope, include_handled=answered)
    audit_subjects(state.writer, caller, rows, "assist-check", "on the assist-checks page")
    audit_subjects(state.writer, caller, notices, "notice", "on the assist-checks page")
    sent = drafts = None
    if caller.scope is None:  # the county's own requests and notices are the gateway's, not a department's
        sent = county.list_sent(state.engine, include_answered=answered)
        drafts = county.list_drafts(state.engine, state.settings, include_sent=answered)
        if sent:
            audit_view(state.writer, caller, "national-platform", f"{len(sent)} of the county's own request subject(s) (masked) on the assist-checks page")
        if drafts:
            audit_view(state.writer, caller, "national-platform", f"{len(drafts)} of the county's own notice subject(s) (masked) on the assist-checks page")
    extra.setdefault("outcome", None)
    extra.setdefault("revealed", None)
    extra.setdefault("form", {})
    return render(request, "assist_checks.html", caller, status_code=status_code, rows=rows, notices=notices, sent=sent, drafts=drafts,
                  rules=data.deadline_rules(state.settings), due_within=due_within, answered=answered,
                  operator=caller.account.role == "operator", categories=county.categories(), status_zh=county.STATUS_ZH, **extra)


@router.get("/assist-checks", response_class=HTMLResponse)
def assist_checks_page(
    request: Request, caller: PageCaller, due_within: Annotated[int | None, Query(ge=0, le=3650)] = None, answered: bool = False,
    done: Annotated[str | None, Query(max_length=600)] = None, ok: bool = False,
) -> HTMLResponse:
    outcome = {"ok": ok, "message": done} if done else None
    return _assist_checks(request, caller, due_within=due_within, answered=answered, outcome=outcome)


def _done(message: str, ok: bool) -> RedirectResponse:
    """After a form that sent something: POST-redirect-GET, so that reloading the page shows the
    outcome again instead of offering to send a second request (the message is already masked)."""
    return RedirectResponse(f"/assist-checks?done={quote(message)}&ok={'true' if ok else 'false'}", status_code=303)


def _operator(caller: Caller) -> str:
    return f"{caller.account.name} (operator, console)"


@router.post("/assist-checks/request", response_class=HTMLResponse, response_model=None)
def assist_check_request(
    request: Request,
    caller: PageCaller,
    subject_id: Annotated[str, Form(max_length=40)] = "",
    categories: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 - FastAPI's form default
    urgency: Annotated[str, Form(max_length=20)] = "",
    to: Annotated[str, Form(max_length=20)] = "",
    name: Annotated[str, Form(max_length=50)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """发起协查 from the form: `gateway assist-checks request`; operators only."""
    from gateway.web import county

    check_csrf(caller, csrf_token)
    require_role(caller, "operator")
    # The ID number is never written back into the form (a page holds no full identifier).
    form = {"categories": categories, "urgency": urgency, "to": to}
    if urgency not in ("urgent", "ordinary"):
        return _assist_checks(request, caller, 400, form=form, outcome={"ok": False, "message": "请选择紧急程度 Choose the urgency: 紧急 urgent or 急 ordinary"})
    try:
        made = county.make_request(
            request.app.state.settings,
            county.CountyRequest(subject_id=subject_id, categories=categories, urgency=urgency, to=to, name=name or None),  # type: ignore[arg-type]
            _operator(caller),
        )
    except county.Refused as exc:
        return _assist_checks(request, caller, exc.status, form=form, outcome={"ok": False, "message": exc.message})
    return _done(made.message, made.sent)


@router.post("/assist-checks/{check_id}/reveal", response_class=HTMLResponse)
def assist_check_reveal(
    request: Request,
    caller: PageCaller,
    check_id: ExchangeId,
    reason: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """查看对象: the subject's full name and ID number, on this answer only; operators, with a reason; audited."""
    from gateway.platform.assist_checks import reveal_subject

    check_csrf(caller, csrf_token)
    require_role(caller, "operator")
    try:
        shown = reveal_subject(request.app.state.writer, str(check_id), reason=reason, who=_operator(caller))
    except GatewayError as exc:
        status = 404 if "No assist-check" in str(exc) else 400
        return _assist_checks(request, caller, status, outcome={"ok": False, "message": f"未能查看对象 Not revealed: {exc}"})
    return _assist_checks(request, caller, revealed=shown)


@router.post("/notices/{notice_id}/send", response_class=HTMLResponse, response_model=None)
def notice_send(
    request: Request, caller: PageCaller, notice_id: ExchangeId, csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """发出本县通报: `gateway notices send`; operators only; a refusal says why."""
    from gateway.web import county

    check_csrf(caller, csrf_token)
    require_role(caller, "operator")
    state = request.app.state
    try:
        outcome = county.send_notice(state.settings, state.engine, notice_id, _operator(caller))
    except county.Refused as exc:
        return _assist_checks(request, caller, exc.status, outcome={"ok": False, "message": exc.message})
    return _done(outcome.message, outcome.sent)


@router.post("/assist-checks/{check_id}/answer", response_class=HTMLResponse, response_model=None)
def assist_check_answer(
    request: Request,
    caller: PageCaller,
    check_id: ExchangeId,
    result: Annotated[str, Form(max_length=20)] = "",
    remark: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """反馈协查: `gateway assist-checks answer`, with the draft's findings; operators only."""
    from gateway.web import county

    check_csrf(caller, csrf_token)
    require_role(caller, "operator")
    if result not in ("found", "not-found"):
        return _assist_checks(request, caller, 400, outcome={"ok": False, "message": "请选择查询结果 Choose found or not found"})
    try:
        answered = county.answer_request(request.app.state.settings, check_id, found=result == "found", remark=remark or None,
                                         operator=_operator(caller))
    except county.Refused as exc:
        return _assist_checks(request, caller, exc.status, outcome={"ok": False, "message": exc.message})
    return _done(answered.message, answered.sent)


@router.post("/notices-received/{notice_id}/done", response_class=HTMLResponse, response_model=None)
def notice_received_done(
    request: Request,
    caller: PageCaller,
    notice_id: ExchangeId,
    remark: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """处理通报: `gateway notices done`; feedback to the platform where the notice asks for it; operators only."""
    from gateway.web import county

    check_csrf(caller, csrf_token)
    require_role(caller, "operator")
    try:
        handled = county.handle_received_notice(request.app.state.settings, notice_id, remark=remark or None, operator=_operator(caller))
    except county.Refused as exc:
        return _assist_checks(request, caller, exc.status, outcome={"ok": False, "message": exc.message})
    return _done(handled.message, handled.sent)


@router.get("/obligations", response_class=HTMLResponse)
def obligations_page(
    request: Request, caller: PageCaller, party: Annotated[str | None, Query(max_length=60)] = None, overdue: bool = False,
) -> HTMLResponse:
    """义务: what is overdue, what falls due in the next 3 working days, per party (a
    department's account sees its own only)."""
    from gateway import clock
    from gateway.obligations.service import KIND_NAMES_ZH, list_obligations, working_days_ahead

    state = request.app.state
    chosen = caller.scope if caller.scope is not None else (party or None)
    now = clock.now()
    today = clock.in_china(now).date()
    soon_until = working_days_ahead(today, 3, None)
    rows = list_obligations(state.engine, party=chosen, overdue=overdue, now=now)
    parties: dict[str, dict[str, int]] = {}
    for row in list_obligations(state.engine, party=chosen, now=now):
        counts = parties.setdefault(row.party, {"open": 0, "overdue": 0, "soon": 0})
        counts["open"] += 1
        counts["overdue"] += row.overdue
        counts["soon"] += (not row.overdue) and row.due <= soon_until
    return render(
        request, "obligations.html", caller, overdue_rows=[r for r in rows if r.overdue],
        soon_rows=[r for r in rows if not r.overdue and r.due <= soon_until],
        later_rows=[r for r in rows if not r.overdue and r.due > soon_until], parties=parties, party=chosen or "",
        overdue=overdue, today=today, soon_until=soon_until, kind_zh=KIND_NAMES_ZH,
    )


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, caller: PageCaller) -> HTMLResponse:
    require_role(caller, *OFFICERS)
    state = request.app.state
    return render(request, "jobs.html", caller, jobs=data.list_jobs(state.engine, state.settings), adapters=data.list_adapters(),
                  pulls=data.list_pulls(state.engine))


@router.get("/contracts", response_class=HTMLResponse)
def contracts_page(request: Request, caller: PageCaller) -> HTMLResponse:
    """契约目录: every registered contract (the built-ins and every plugin's), its fields, which
    are personal data and how each is masked; for operators, beside the agreements that share them."""
    require_role(caller, *OFFICERS)
    from gateway.plugins import contract
    from gateway.routing.catalogue import field_rows, summaries

    listed = [(summary, field_rows(contract(summary.name))) for summary in summaries()]
    return render(request, "contracts.html", caller, contracts=listed)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, caller: PageCaller) -> HTMLResponse:
    require_role(caller, "security-officer")
    return render(request, "audit.html", caller, rows=data.list_audit(request.app.state.engine, None))


# -- reconciliation and population reports (gateway/web/analysis.py) ----------------------------

REPORT_READERS = "population-office"  # the department the population reports are made for


def may_read_reports(caller: Caller) -> bool:
    return caller.account.role in OFFICERS or caller.account.department == REPORT_READERS


@router.get("/reconciliation", response_class=HTMLResponse)
def reconciliation_page(request: Request, caller: PageCaller, evaluated: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    from gateway.web.analysis import reconciliation

    state = request.app.state
    try:
        rules = reconciliation(state.engine, state.settings, caller.scope)
    except GatewayError as exc:
        return render(request, "error.html", caller, status_code=409, status=409, message=f"Reconciliation is not configured right: {exc}")
    counts: dict[str, int] = {}
    for rule in rules:
        for gap in rule.items:
            counts[gap.department] = counts.get(gap.department, 0) + 1
    for department, n in sorted(counts.items()):
        audit_view(state.writer, caller, department, f"{n} reconciliation gap(s) (subjects masked)")
    return render(request, "reconciliation.html", caller, rules=rules, evaluated=evaluated)


@router.post("/reconciliation/evaluate")
def reconciliation_evaluate(request: Request, caller: PageCaller, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    from gateway.web.analysis import evaluate_now

    check_csrf(caller, csrf_token)
    require_role(caller, *OFFICERS)
    state = request.app.state
    try:
        summary = evaluate_now(state.writer, state.settings)
    except GatewayError as exc:
        raise HTTPException(409, f"Reconciliation is not configured right: {exc}") from exc
    return RedirectResponse(f"/reconciliation?evaluated={quote(summary)}", status_code=303)


@router.get("/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    caller: PageCaller,
    kind: Annotated[str, Query(max_length=20)] = "monthly",
    label: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    from gateway.population_reports.periods import KIND_LABELS, KINDS
    from gateway.web.analysis import report_view

    if not may_read_reports(caller):
        raise HTTPException(403, f"Population reports are for operators, security officers and the {REPORT_READERS}.")
    state = request.app.state
    try:
        view, _ = report_view(state.engine, state.settings, kind, label or None)
    except GatewayError as exc:
        return render(request, "reports.html", caller, status_code=400, view=None, problem=str(exc), kind=kind, label=label or "",
                      kinds=KINDS, kind_labels=KIND_LABELS)
    return render(request, "reports.html", caller, view=view, problem=None, kind=view.kind, label=view.label, kinds=KINDS,
                  kind_labels=KIND_LABELS)


@router.get("/reports/{kind}/{label}.html")
def report_download(request: Request, caller: PageCaller, kind: str, label: str) -> Response:
    """The report's self-contained HTML page (charts inline), as `gateway report` writes it."""
    from gateway.population_reports.html_page import render as render_report
    from gateway.web.analysis import report_view

    if not may_read_reports(caller):
        raise HTTPException(403, f"Population reports are for operators, security officers and the {REPORT_READERS}.")
    state = request.app.state
    try:
        _, report = report_view(state.engine, state.settings, kind, label)
    except GatewayError as exc:
        raise HTTPException(400, str(exc)) from exc
    name = f"{report.period.stem}.html"
    return Response(render_report(report), media_type="text/html; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
