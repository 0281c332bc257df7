"""`gateway sftp`: pin an SFTP server's host key, check the department trees."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gateway.config import load_settings
from gateway.errors import ConfigError, GatewayError, TransportError

app = typer.Typer(help="SFTP servers holding department mailboxes.", no_args_is_help=True)
console = Console()
HomeOption = Annotated[Optional[Path], typer.Option("--home", help="Gateway home.", show_default=False)]


def _server(home: Path | None, name: str):  # type: ignore[no-untyped-def]
    settings = load_settings(home)
    if name not in settings.sftp:
        from gateway.errors import UnknownName

        raise UnknownName("SFTP server", name, list(settings.sftp))
    return settings, settings.sftp[name]


@app.command("pin")
def pin(
    name: Annotated[str, typer.Argument(help="The [sftp.NAME] server.")],
    fingerprint: Annotated[str, typer.Option("--fingerprint", help="SHA256:... as the server's administrator read it out.")],
    home: HomeOption = None,
) -> None:
    """Pin the server's host key in HOME/known_hosts, only if it has the fingerprint you were given."""
    from gateway.intake.transports.sftp import pin_host_key

    settings, server = _server(home, name)
    known_hosts = server.known_hosts or settings.home / "known_hosts"
    if not known_hosts.is_absolute():
        known_hosts = settings.home / known_hosts
    try:
        line = pin_host_key(known_hosts, server.host, server.port, fingerprint, server.connect_timeout)
    except (TransportError, ValueError) as exc:
        raise GatewayError(str(exc)) from exc
    console.print(f"Pinned in {known_hosts}: {line.strip()}", markup=False)


@app.command("check")
def check(name: Annotated[str, typer.Argument(help="The [sftp.NAME] server.")], home: HomeOption = None) -> None:
    """Log in and check every department tree on the server (inbox, outbox, processed, rejected)."""
    from gateway.intake.transports import department_transports

    settings, server = _server(home, name)
    transports = department_transports(settings)
    failed = False
    for department in server.departments:
        transport = transports.get(department)
        if transport is None:
            raise ConfigError(f"department {department} is not on server {name}")
        try:
            transport.ensure_tree(department)
            console.print(f"[green]ok[/]   {department}")
        except (TransportError, OSError) as exc:
            failed = True
            console.print(f"[red]FAIL[/] {department}: {exc}", markup=True)
    for transport in {id(t): t for t in transports.values()}.values():
        close = getattr(transport, "close", None)
        if close:
            close()
    raise typer.Exit(1 if failed else 0)
