"""The console's application: pages, JSON API, metrics, security headers."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from urllib.parse import quote, unquote

from gateway.masking import scrubbed_traceback
from gateway.store.audit import mask_text
from gateway.config import Settings
from gateway.store import create_schema, make_engine
from gateway.web import api, audit_pages, pages, register_pages
from gateway.web.i18n import Catalogues
from gateway.web.idle import IDLE_MINUTES, IdleSessions
from gateway.web.metrics import metrics_registry, render
from gateway.web.notices import new_key
from gateway.store.console_audit import ConsoleAudit
from gateway.web.session import FORBIDDEN, NeedsSignIn, audit, optional_caller
from gateway.web.throttle import SignInThrottle

HERE = Path(__file__).parent
log = logging.getLogger("gateway.web")

# No script runs in the console: every page is plain HTML and a stylesheet.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
UNEXPECTED_ZH = "服务器内部错误，已记入网关日志。请稍后重试；如仍出错，请把错误编号告诉运维人员。"
UNEXPECTED_EN = "An unexpected error; it is in the gateway's log. Try again later; if it persists, give the operator the error reference."
# When even the error page cannot be rendered (the templates or the database are what failed).
_BARE_ERROR = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>500 · 部门间数据交换网关</title>'
    '<link rel="stylesheet" href="/static/console.css"></head><body><main><h1>出错了 Error 500</h1>'
    '<p class="bad" id="problem">{message}</p><p><a href="/">返回概览 Back to the overview</a></p></main></body></html>'
)


def _unexpected(request: Request, exc: BaseException) -> Response:
    """Any error no handler answered: logged with where it was raised (its text scrubbed:
    it may quote a file or a record) under a reference, and answered with the console's
    own error page, or JSON for the API; the security headers are added by the caller."""
    reference = secrets.token_hex(4)
    log.error("%s %s failed (error reference %s): %s", request.method, request.url.path, reference, scrubbed_traceback(exc))
    message = f"{UNEXPECTED_ZH} {UNEXPECTED_EN} 错误编号 Error reference: {reference}"
    if _is_api(request):
        return JSONResponse({"detail": message, "reference": reference}, status_code=500)
    try:
        try:
            caller = optional_caller(request)
        except Exception:  # noqa: BLE001 - the database may be what failed: the page without the menu
            caller = None
        return pages.render(request, "error.html", caller, status_code=500, status=500, message=message)
    except Exception as again:  # noqa: BLE001 - the error page itself failed: a bare one, still Chinese first
        log.error("error page for reference %s failed too: %s", reference, scrubbed_traceback(again))
        return HTMLResponse(_BARE_ERROR.format(message=message), status_code=500)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _when(value: Any) -> str:
    """Times in China time, to the minute (the county's clock)."""
    from gateway import clock

    if value is None or value == "":
        return ""
    try:
        return clock.in_china(value).strftime("%Y-%m-%d %H:%M")
    except (AttributeError, TypeError, ValueError):
        return str(value)


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    except ValueError:
        return text


def _gaps(engine: Any, settings: Settings, scope: str | None) -> dict[str, int] | None:
    """Open reconciliation gaps per rule for the overview; None when reconciliation is not
    configured right (its page says why)."""
    from gateway.errors import GatewayError
    from gateway.web.analysis import reconciliation_counts

    try:
        return reconciliation_counts(engine, settings, scope)
    except GatewayError:
        return None


def _audit_refusal(request: Request, detail: str) -> None:
    """A refused (403) request in the audit log: which route, which account (or none)."""
    caller = optional_caller(request)
    audit(request, FORBIDDEN, caller, detail=f"refused (403): {detail}")


def create_app(settings: Settings, *, secure_cookies: bool = False, migrate: bool = True, idle_minutes: float = IDLE_MINUTES) -> FastAPI:
    """The console for one gateway home. `secure_cookies`: mark cookies Secure even when
    the request came over plain http (behind a TLS-terminating proxy); `idle_minutes`: a
    session unused for longer ends (gateway/web/idle.py)."""
    writer = make_engine(settings.db_url)
    reader = make_engine(settings.db_url, readonly=True)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.audit.dispose()
        writer.dispose()
        reader.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="Interagency gateway console",
        version="1",
        description="The gateway's console data as JSON. Sign in with POST /api/session; a department account sees its own department only.",
        # Swagger UI and ReDoc load their scripts from a CDN: blank in an office without the
        # internet, and third-party scripts on the console's origin. /openapi.json stays.
        docs_url=None,
        redoc_url=None,
    )
    if migrate:
        create_schema(writer)
    app.state.settings = settings
    app.state.writer = writer
    app.state.engine = reader
    app.state.secure_cookies = secure_cookies
    app.state.signin_throttle = SignInThrottle()  # per process: see gateway/web/throttle.py
    app.state.idle_sessions = IdleSessions(idle_minutes * 60)  # per process: see gateway/web/idle.py
    app.state.notice_key = new_key()  # signs the outcome a page shows after a form (gateway/web/notices.py)
    # No redirect built from the request's Host header: Starlette's trailing-slash redirect
    # answers `/exchanges/` with an absolute URL on whatever host the client named. Every
    # redirect of the console is a path (/login?next=..., POST-redirect-GET), and
    # `/exchanges/` is a 404 like any other unknown path.
    app.router.redirect_slashes = False
    app.state.throttle_audited = {}  # client -> when its throttling was last audited (session.audit_sign_in)
    # The console's audit log: on SQLite a file of its own, never the write lock of an exchange.
    app.state.audit = ConsoleAudit(settings.db_url, main=writer)
    app.state.reconciliation = lambda scope: _gaps(app.state.engine, settings, scope)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.add_extension("jinja2.ext.i18n")
    catalogues = Catalogues()  # the message catalogue, Chinese and English (gateway/web/i18n.py)
    templates.env.install_gettext_callables(catalogues.gettext, catalogues.ngettext, newstyle=True)  # type: ignore[attr-defined]
    templates.env.filters["when"] = _when
    templates.env.filters["pretty_json"] = _pretty_json
    templates.env.filters["masked"] = lambda text: mask_text(str(text)) if text else ""
    app.state.templates = templates
    app.state.metrics = metrics_registry(app.state.engine, settings)

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(register_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(api.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(render(app.state.metrics), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(NeedsSignIn)
    async def _sign_in_first(request: Request, exc: NeedsSignIn) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 403:
            _audit_refusal(request, str(exc.detail))
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
        caller = optional_caller(request)
        return pages.render(request, "error.html", caller, status_code=exc.status_code, status=exc.status_code, message=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": problems}, status_code=422)
        caller = optional_caller(request)
        return pages.render(request, "error.html", caller, status_code=422, status=422, message=f"Bad request: {problems}")

    @app.middleware("http")
    async def _no_control_characters(request: Request, call_next: Any) -> Response:
        # A NUL (or another C0 control) in a query parameter is no filter value anyone types,
        # and PostgreSQL refuses NUL in text outright (a 500 from deep in a list query): every
        # such request is a 400 here, before any route sees it. (Added before _headers, so
        # that one, the outer, still sets the security headers on this answer.)
        if any(ord(c) < 32 and c not in "\t" for c in unquote(request.url.query)):
            message = "查询参数含控制字符 / a query parameter holds a control character (e.g. NUL)"
            if _is_api(request):
                return JSONResponse({"detail": message}, status_code=400)
            return pages.render(request, "error.html", optional_caller(request), status_code=400, status=400, message=message)
        return await call_next(request)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        # Outside every exception handler: an error none of them answers is caught here, so
        # that it gets the console's error page and these headers (Starlette's own answer is
        # a bare text/plain 500 without them, and uvicorn would log the raw exception text).
        try:
            response = await call_next(request)
        except Exception as exc:  # noqa: BLE001 - every unexpected error, answered alike
            response = _unexpected(request, exc)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


__all__ = ["create_app"]
