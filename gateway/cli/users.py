"""`gateway users ...` (the console's accounts) and `gateway serve` (the console itself)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.errors import GatewayError
from gateway.cli._common import HomeOption, console, settings_for

app = typer.Typer(help="Accounts of the web console (`gateway serve`).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input (one line) instead of a prompt."),
]


def _password(from_stdin: bool) -> str:
    # Never a command-line argument: it would stay in the shell history and `ps`.
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise GatewayError("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _audit(settings, engine, action: str, command: str, name: str, detail: str) -> None:  # type: ignore[no-untyped-def]
    """An account change in the console's audit log (gateway/store/console_audit.py): done by
    this machine's user, from the command line."""
    import getpass

    from gateway.store.console_audit import ConsoleAudit

    log = ConsoleAudit(settings.db_url, main=engine)
    try:
        who = getpass.getuser()
        log.record(action, user=who, role="cli", client="local", route=f"gateway users {command} {name}",
                   detail=f"{who} (command line): {detail}")
    finally:
        log.dispose()


def _engine(home):  # type: ignore[no-untyped-def]
    from gateway.store import create_schema, make_engine

    settings = settings_for(home)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    return settings, engine


@app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The sign-in name.")],
    role: Annotated[str, typer.Option("--role", help="operator | security-officer | department")],
    department: Annotated[Optional[str], typer.Option("--department", help="For --role department: the only department it sees.")] = None,
    password_stdin: PasswordStdin = False,
    home: HomeOption = None,
) -> None:
    """Add an account; the password comes from a prompt or --password-stdin."""
    from gateway.config import effective_departments
    from gateway.plugins import get_manager
    from gateway.web.accounts import add_user

    settings, engine = _engine(home)
    try:
        password = _password(password_stdin)
        departments = effective_departments(settings, get_manager().adapters().values())  # an installed adapter's too
        user = add_user(engine, name, role, password, department, departments)
        _audit(settings, engine, "user-added", "add", name, f"added account {user.name} ({user.role}{':' + user.department if user.department else ''})")
    finally:
        engine.dispose()
    scope = f", sees {user.department} only" if user.department else ", sees every department"
    console.print(f"Added {user.name}: {user.role}{scope}.", markup=False)


@app.command("list")
def users_list(home: HomeOption = None) -> None:
    """Every account: role, department, state, last sign-in."""
    from gateway.web.accounts import backoffs, list_users

    _, engine = _engine(home)
    try:
        users = list_users(engine)
        waits = backoffs(engine)
    finally:
        engine.dispose()
    table = Table()
    for column in ("name", "role", "department", "state", "last sign-in (UTC)"):
        table.add_column(column)
    for u in users:
        state = "disabled" if u.disabled else (
            f"退避至 / backed off until {waits[u.name]:%Y-%m-%d %H:%M} UTC (gateway users unlock)" if u.name in waits else "active")
        table.add_row(u.name, u.role, u.department or "", state, f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "")
    console.print(table)


@app.command("disable")
def users_disable(name: str, home: HomeOption = None) -> None:
    """Disable an account and end its sessions."""
    from gateway.web.accounts import set_disabled

    settings, engine = _engine(home)
    try:
        set_disabled(engine, name, True)
        _audit(settings, engine, "user-disabled", "disable", name, f"disabled account {name}; its sessions ended")
    finally:
        engine.dispose()
    console.print(f"Disabled {name}; its sessions ended.", markup=False)


@app.command("enable")
def users_enable(name: str, home: HomeOption = None) -> None:
    """Enable a disabled account again."""
    from gateway.web.accounts import set_disabled

    settings, engine = _engine(home)
    try:
        set_disabled(engine, name, False)
        _audit(settings, engine, "user-enabled", "enable", name, f"enabled account {name}")
    finally:
        engine.dispose()
    console.print(f"Enabled {name}.", markup=False)


@app.command("reset-password")
def users_reset_password(name: str, password_stdin: PasswordStdin = False, home: HomeOption = None) -> None:
    """Set a new password (prompt or --password-stdin); lifts a lock-out, ends the sessions."""
    from gateway.web.accounts import reset_password

    settings, engine = _engine(home)
    try:
        reset_password(engine, name, _password(password_stdin))
        _audit(settings, engine, "password-reset", "reset-password", name, f"set a new password for {name}; back-offs lifted, sessions ended")
    finally:
        engine.dispose()
    console.print(f"New password set for {name}; its sessions ended.", markup=False)


@app.command("unlock")
def users_unlock(name: str, home: HomeOption = None) -> None:
    """Lift the sign-in back-off of an account for every client address (解除登录退避); the password stays."""
    from gateway.web.accounts import unlock

    settings, engine = _engine(home)
    try:
        cleared = unlock(engine, name)
        _audit(settings, engine, "unlock", "unlock", name, f"lifted the sign-in back-off of {name} for {cleared} client address(es); password unchanged")
    finally:
        engine.dispose()
    console.print(f"已解除 {name} 的登录退避（{cleared} 个客户端地址），密码不变。 / "
                  f"Unlocked {name}: back-off cleared for {cleared} client address(es); the password is unchanged.", markup=False)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; keep the loopback default unless behind a TLS proxy.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8400,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure although served over http (a TLS proxy in front).")
    ] = False,
    idle_minutes: Annotated[
        float, typer.Option("--idle-minutes", min=0.01, max=8 * 60, help="End a session unused for this long (空闲超时; default 30).")
    ] = 30,
    home: HomeOption = None,
) -> None:
    """The web console and its JSON API (http://HOST:PORT, API schema at /openapi.json, metrics at /metrics)."""
    import logging

    import uvicorn

    from gateway.web.app import create_app

    settings = settings_for(home)
    application = create_app(settings, secure_cookies=secure_cookies, idle_minutes=idle_minutes)
    console.print(f"Console of {settings.home} on http://{host}:{port} (Ctrl-C stops)", markup=False)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=False, proxy_headers=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="users")
    root.command("serve")(serve)
