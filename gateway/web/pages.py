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
from gateway.masking import mask_id
from gateway.web import data, i18n, notices
from gateway.web.paging import DEFAULT_LIMIT, MAX_LIMIT, paging
from gateway.web.accounts import MIN_PASSWORD_LENGTH, REFUSED_STATUS, AccountProblem, change_password, sign_in, sign_out
from gateway.store.audit import mask_text
from gateway.web.session import (
    client_address,
    COOKIE,
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    OFFICERS,
    SIGNED_RECEIPT_READERS,
    Caller,
    audit_password_change,
    DOWNLOAD,
    REVEAL,
    Named,
    SIGN_OUT,
    audit,
    audit_sign_in,
    audit_subjects,
    audit_view,
    check_csrf,
    page_caller,
    require_role,
    who,
)
from gateway.web.verification import PURGED_HEADER, proof_bytes, proof_document, read_receipt_upload, verify_upload

router = APIRouter(include_in_schema=False)
PageCaller = Annotated[Caller, Depends(page_caller)]
ExchangeId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def render(request: Request, template: str, caller: Caller | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings = request.app.state.settings
    language = i18n.choose(request.cookies.get(i18n.LANGUAGE_COOKIE), settings.console_language)
    query = request.url.query
    context.update(caller=caller, csrf_field=CSRF_FIELD, departments=data.served_departments(settings), language=language,
                   here=request.url.path + (f"?{query}" if query else ""))
    with i18n.speaking(language):  # TemplateResponse renders at once, in this language
        return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)


@router.get("/language")
def choose_language(request: Request, to: Annotated[str, Query(max_length=5)] = "zh", next: str = "/") -> Response:  # noqa: A002
    """中文 / English: the user's choice of language, kept in a cookie for a year."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if to in i18n.LANGUAGES:
        response.set_cookie(i18n.LANGUAGE_COOKIE, to, max_age=365 * 24 * 3600, httponly=True, samesite="strict",
                            secure=_secure(request), path="/")
    return response


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
    audit_sign_in(request, name, result)
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
    audit(request, SIGN_OUT, caller, detail=f"{caller.account.name} signed out")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, caller: PageCaller) -> HTMLResponse:
    return render(request, "password.html", caller, outcome=None, min_length=MIN_PASSWORD_LENGTH)


@router.post("/account/password", response_class=HTMLResponse)
def password_change(
    request: Request,
    caller: PageCaller,
    current: Annotated[str, Form(max_length=1000)] = "",
    new: Annotated[str, Form(max_length=1000)] = "",
    again: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """修改密码: any account changes its own password; the other sessions of the account end."""
    check_csrf(caller, csrf_token)
    state = request.app.state
    try:
        if new != again:
            raise AccountProblem("两次输入的新密码不一致 / the two new passwords differ")
        change_password(state.writer, state.engine, caller.account, current, new, request.cookies.get(COOKIE, ""))
    except AccountProblem as exc:
        return render(request, "password.html", caller, status_code=400, outcome={"ok": False, "message": str(exc)},
                      min_length=MIN_PASSWORD_LENGTH)
    audit_password_change(request, caller)
    return render(request, "password.html", caller, outcome={"ok": True, "message": "密码已修改，其他会话已结束 / password changed; the other sessions ended"},
                  min_length=MIN_PASSWORD_LENGTH)


# -- pages -------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, caller: PageCaller) -> HTMLResponse:
    state = request.app.state
    # Not audited: the overview is read all day; each subject it shows (masked) is audited
    # where it is worked on (the assist-checks page).
    summary = data.overview(state.engine, state.settings, caller.scope)
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
    adapter: Annotated[str | None, Query(max_length=100)] = None,
    file_name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> HTMLResponse:
    """交换记录: every exchange, a page at a time, filtered by department, adapter, status, the
    days received and part of the file name."""
    engine = request.app.state.engine
    where = data.ExchangeFilter(department or None, adapter or None, status or None, date_from, date_to, (file_name or "").strip() or None)
    rows = data.list_exchanges(engine, caller.scope, where, limit=limit, offset=offset)
    filters = {"department": department or "", "adapter": adapter or "", "date_from": date_from or "", "date_to": date_to or "",
               "status": status or "", "file_name": file_name or ""}
    pager = paging("/exchanges", data.count_exchanges(engine, caller.scope, where), limit, offset, **filters)
    return render(request, "exchanges.html", caller, rows=rows, filters=filters, statuses=data.EXCHANGE_STATUSES,
                  adapters=[a.name for a in data.list_adapters()], pager=pager)


def _exchange_or_error(request: Request, caller: Caller, exchange_id: int) -> data.ExchangeDetail:
    try:
        return data.exchange_detail(request.app.state.engine, caller.scope, exchange_id)
    except data.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except data.OutOfScope as exc:
        raise HTTPException(403, f"{exc} A {caller.scope} account sees its own department's exchanges only.") from exc


@router.get("/exchanges/{exchange_id}", response_class=HTMLResponse)
def exchange_page(
    request: Request, caller: PageCaller, exchange_id: ExchangeId, done: Annotated[str | None, Query(max_length=1000)] = None,
    ok: bool = False, sig: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    detail = _exchange_or_error(request, caller, exchange_id)
    if detail.issues:
        audit_view(request, caller, detail.exchange.department,
                   f"{len(detail.issues)} row error(s) (masked) of exchange {exchange_id}")
    shown = notices.verified(request.app.state.notice_key, caller.csrf_token, done, ok, sig)
    outcome = {"ok": ok, "message": mask_text(done or "")} if shown else None
    engine = request.app.state.engine
    carried_by = data.DeliveryFilter(exchange_id=exchange_id)
    carried = data.list_deliveries(engine, caller.scope, carried_by, limit=20)
    return render(request, "exchange.html", caller, detail=detail, outcome=outcome, carried=carried,
                  signed_download=may_download_signed_receipt(caller), carried_total=data.count_deliveries(engine, caller.scope, carried_by) if len(carried) == 20 else len(carried))


@router.post("/exchanges/{exchange_id}/reprocess", response_class=HTMLResponse, response_model=None)
def exchange_reprocess(
    request: Request, caller: PageCaller, exchange_id: ExchangeId, csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """重新处理: `gateway exchanges reprocess`; operators only; a refusal says why."""
    from gateway.exchange.lifecycle import Gateway
    from gateway.exchange.reprocess import ReprocessRefused, reprocess

    check_csrf(caller, csrf_token)
    require_role(caller, "operator")
    state = request.app.state
    _exchange_or_error(request, caller, exchange_id)
    gateway = Gateway(state.settings)
    try:
        done = reprocess(gateway, exchange_id, _operator(caller))
    except (ReprocessRefused, GatewayError) as exc:
        detail = _exchange_or_error(request, caller, exchange_id)
        return render(request, "exchange.html", caller, status_code=409, detail=detail, outcome={"ok": False, "message": mask_text(str(exc))},
                      carried=[], carried_total=0, signed_download=may_download_signed_receipt(caller))
    finally:
        gateway.close()
    query = notices.outcome_query(state.notice_key, caller.csrf_token, mask_text(done.message))
    return RedirectResponse(f"/exchanges/{done.outcome.exchange_id}?{query}", status_code=303)


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
        audit_view(request, caller, department,
                   f"the signed receipt {stem} of exchange {exchange_id} (the sender's file name as signed) as a download", action=DOWNLOAD)
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
    purged = record.get("purged")
    what = (f"the proof of record {record['leaf_index']} (row {record['row_number']}) of exchange {exchange_id}, purged under rule "
            f"{purged['rule']} (hashes only)" if purged else
            f"the full record {record['leaf_index']} (row {record['row_number']}) of exchange {exchange_id} as a proof download")
    audit_view(request, caller, _department_of(document), what, action=DOWNLOAD)
    name = f"exchange-{exchange_id}-record-{record['leaf_index']}.proof.json"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if purged:  # the file says it in both languages (record.purged.note); a header carries the English
        headers[PURGED_HEADER] = f"purged on {purged['on']} under rule {purged['rule']}"
    return Response(proof_bytes(document), media_type="application/json", headers=headers)


@router.get("/exchanges/{exchange_id}/original")
def exchange_original(request: Request, caller: PageCaller, exchange_id: ExchangeId) -> Response:
    """下载原始文件: the file as the department sent it, the bytes its receipt signs. It holds
    every record in full, so (as a proof) only a security officer or the exchange's own
    department may have it; audited. The download's name says no more than the exchange."""
    import pathlib
    import tempfile

    from gateway.exchange.lifecycle import Gateway
    from gateway.exchange.reprocess import ReprocessRefused, fetch_original

    require_role(caller, "security-officer", "department")
    detail = _exchange_or_error(request, caller, exchange_id)  # 403 for another department's
    state = request.app.state
    gateway = Gateway(state.settings)
    try:
        with tempfile.TemporaryDirectory(dir=state.settings.staging_dir) as scratch:
            target = pathlib.Path(scratch) / "original"
            try:
                fetch_original(gateway, exchange_id, target)
            except (ReprocessRefused, GatewayError) as exc:
                raise HTTPException(404, mask_text(str(exc))) from exc
            body = target.read_bytes()
    finally:
        gateway.close()
    audit_view(request, caller, detail.exchange.department, f"the original file of exchange {exchange_id} ({len(body)} bytes) as a download",
               action=DOWNLOAD)
    suffix = "".join(c for c in pathlib.PurePosixPath(detail.exchange.file_name).suffix.lower() if c.isalnum() or c == ".")[:8]
    name = f"exchange-{exchange_id}-original{suffix}"
    return Response(body, media_type="application/octet-stream", headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _department_of(document: dict[str, Any]) -> str:
    return str(json.loads(document["receipt"]["body"]).get("department", ""))


@router.get("/ledger", response_class=HTMLResponse)
def ledger_page(request: Request, caller: PageCaller) -> HTMLResponse:
    return render(request, "ledger.html", caller, ledger=data.ledger_summary(request.app.state.engine))


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(
    request: Request, caller: PageCaller, status: Annotated[str | None, Query(max_length=20)] = None, unacknowledged: bool = False,
    recipient: Annotated[str | None, Query(max_length=100)] = None, agreement: Annotated[str | None, Query(max_length=100)] = None,
    contract: Annotated[str | None, Query(max_length=100)] = None, exchange: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT, offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> HTMLResponse:
    """送达记录: deliveries a page at a time, by recipient, agreement, contract, status, or the
    exchange whose records they carried; and the acknowledgements received."""
    engine = request.app.state.engine
    if exchange is not None:
        _exchange_or_error(request, caller, exchange)  # a department sees its own exchanges' deliveries only
    where = data.DeliveryFilter(status or None, unacknowledged, recipient or None, agreement or None, contract or None, exchange,
                                ack_due_before=dt.datetime.now(dt.UTC) if overdue else None)
    rows = data.list_deliveries(engine, caller.scope, where, limit=limit, offset=offset)
    pager = paging("/deliveries", data.count_deliveries(engine, caller.scope, where), limit, offset, status=status,
                   unacknowledged="true" if unacknowledged else None, recipient=recipient, agreement=agreement, contract=contract,
                   exchange=exchange, overdue="true" if overdue else None)
    acks = data.list_acknowledgements(engine, caller.scope)
    return render(request, "deliveries.html", caller, rows=rows, acks=acks, status=status or "", unacknowledged=unacknowledged,
                  statuses=data.DELIVERY_STATUSES, pager=pager, recipient=recipient or "", agreement=agreement or "",
                  contract=contract or "", exchange=exchange, overdue=overdue)


def _assist_checks(request: Request, caller: Caller, status_code: int = 200, due_within: int | None = None, answered: bool = False,
                   limit: int = DEFAULT_LIMIT, offset: int = 0, **extra: Any) -> HTMLResponse:
    """The assist-checks page: the requests and notices received, and (operators and officers)
    the county's own requests and notice drafts, with the forms of an operator."""
    from gateway.web import county

    state = request.app.state
    listed = data.list_assist_checks(state.engine, caller.scope, due_within=due_within, include_answered=answered)
    rows = listed[offset:offset + limit]  # a page of it; only the rows shown are audited as viewed
    pager = paging("/assist-checks", len(listed), limit, offset, due_within=None if due_within is None else str(due_within),
                   answered="true" if answered else None)
    notices = data.list_notices(state.engine, caller.scope, include_handled=answered)
    audit_subjects(request, caller, rows, "assist-check", "on the assist-checks page")
    audit_subjects(request, caller, notices, "notice", "on the assist-checks page")
    sent = drafts = None
    if caller.scope is None:  # the county's own requests and notices are the gateway's, not a department's
        sent = county.list_sent(state.engine, include_answered=answered)
        drafts = county.list_drafts(state.engine, state.settings, include_sent=answered)
        if sent:
            audit_subjects(request, caller, [Named("national-platform", r.subject) for r in sent], "county request", "on the assist-checks page")
        if drafts:
            audit_subjects(request, caller, [Named("national-platform", r.subject) for r in drafts], "county notice", "on the assist-checks page")
    extra.setdefault("outcome", None)
    extra.setdefault("revealed", None)
    extra.setdefault("form", {})
    return render(request, "assist_checks.html", caller, status_code=status_code, rows=rows, notices=notices, sent=sent, drafts=drafts,
                  rules=data.deadline_rules(state.settings), due_within=due_within, answered=answered, pager=pager,
                  operator=caller.account.role == "operator", categories=county.categories(), status_zh=county.STATUS_ZH, **extra)


@router.get("/assist-checks", response_class=HTMLResponse)
def assist_checks_page(
    request: Request, caller: PageCaller, due_within: Annotated[int | None, Query(ge=0, le=3650)] = None, answered: bool = False,
    done: Annotated[str | None, Query(max_length=600)] = None, ok: bool = False, sig: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT, offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> HTMLResponse:
    shown = notices.verified(request.app.state.notice_key, caller.csrf_token, done, ok, sig)
    outcome = {"ok": ok, "message": done} if shown else None
    return _assist_checks(request, caller, due_within=due_within, answered=answered, outcome=outcome, limit=limit, offset=offset)


def _done(request: Request, caller: Caller, message: str, ok: bool) -> RedirectResponse:
    """After a form that sent something: POST-redirect-GET, so that reloading the page shows the
    outcome again instead of offering to send a second request (the message is already masked;
    signed for this session: gateway/web/notices.py)."""
    query = notices.outcome_query(request.app.state.notice_key, caller.csrf_token, message, ok)
    return RedirectResponse(f"/assist-checks?{query}", status_code=303)


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
    return _done(request, caller, made.message, made.sent)


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
    audit(request, REVEAL, caller, department="national-platform", subjects=[mask_id(shown.id_number or "")],
          detail=f"{who(caller.account)} revealed the subject of assist-check {check_id}; reason: {reason}")
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
    return _done(request, caller, outcome.message, outcome.sent)


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
    return _done(request, caller, answered.message, answered.sent)


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
    return _done(request, caller, handled.message, handled.sent)


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
    from gateway.mail.held import held  # the office's mailbox (issue 22): what waits for an operator, masked

    return render(request, "jobs.html", caller, jobs=data.list_jobs(state.engine, state.settings), adapters=data.list_adapters(),
                  pulls=data.list_pulls(state.engine), held_mail=held(state.engine), mail_configured=state.settings.mail is not None)


@router.get("/contracts", response_class=HTMLResponse)
def contracts_page(request: Request, caller: PageCaller) -> HTMLResponse:
    """契约目录: every registered contract (the built-ins and every plugin's), its fields, which
    are personal data and how each is masked; for operators, beside the agreements that share them."""
    require_role(caller, *OFFICERS)
    from gateway.plugins import contract
    from gateway.routing.catalogue import field_rows, summaries

    listed = [(summary, field_rows(contract(summary.name))) for summary in summaries()]
    return render(request, "contracts.html", caller, contracts=listed)


# -- reconciliation and population reports (gateway/web/analysis.py) ----------------------------

REPORT_READERS = "population-office"  # the department the population reports are made for


def may_read_reports(caller: Caller) -> bool:
    return caller.account.role in OFFICERS or caller.account.department == REPORT_READERS


@router.get("/reconciliation", response_class=HTMLResponse)
def reconciliation_page(
    request: Request, caller: PageCaller, done: Annotated[str | None, Query(max_length=200)] = None, ok: bool = False,
    sig: Annotated[str | None, Query(max_length=64)] = None, rule: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT, offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> HTMLResponse:
    """核对: every rule's open discrepancies, a page of each; `rule` and `offset` page one rule's
    list while the others show their first page."""
    from gateway.web.analysis import reconciliation

    state = request.app.state
    try:
        rules = reconciliation(state.engine, state.settings, caller.scope)
    except GatewayError as exc:
        return render(request, "error.html", caller, status_code=409, status=409, message=f"Reconciliation is not configured right: {exc}")
    pagers = {}
    for index, gaps in enumerate(rules):
        start = offset if gaps.rule == rule else 0
        pagers[gaps.rule] = paging("/reconciliation", gaps.open, limit, start, rule=gaps.rule)
        rules[index] = gaps.model_copy(update={"items": gaps.items[start:start + limit]})
    audit_subjects(request, caller, [gap for rule in rules for gap in rule.items], "reconciliation gap", "on the reconciliation page")
    evaluated = done if notices.verified(state.notice_key, caller.csrf_token, done, ok, sig) else None
    return render(request, "reconciliation.html", caller, rules=rules, evaluated=evaluated, pagers=pagers)


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
    return RedirectResponse(f"/reconciliation?{notices.outcome_query(state.notice_key, caller.csrf_token, summary)}", status_code=303)


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
