"""What the command modules share: the console, the --home and --keys options, and the
way checks are shown."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler

from gateway.config import Settings, load_settings
from gateway.errors import GatewayError

console = Console(width=None if sys.stdout.isatty() else 160)


def setup_logging(verbose: bool = True) -> None:
    """Log lines on stderr through rich (INFO, or WARNING when not `verbose`)."""
    from gateway.masking import MaskingFilter

    handler = RichHandler(console=Console(stderr=True), show_path=False)
    handler.addFilter(MaskingFilter())  # what reaches the terminal or the journal: identifiers masked
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s", handlers=[handler], force=True)
    # paramiko logs a full traceback for every failed SSH handshake; the SFTP transport
    # already reports the failure in one line.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)


HomeOption = Annotated[
    Optional[Path],
    typer.Option("--home", help="Gateway home (default: $GATEWAY_HOME or ./gateway-home).", show_default=False),
]
KeysOption = Annotated[
    Optional[Path],
    typer.Option(
        "--keys",
        help="Folder with the gateway's public keys and history.json (a ledger export's keys/, or your copy of the "
        "published keys); default: HOME/keys.",
        show_default=False,
    ),
]


def settings_for(home: Path | None, *, need_home: bool = True) -> Settings:
    settings = load_settings(home)
    if need_home and not (settings.home / "gateway.toml").exists():
        raise GatewayError(f"No gateway home at {settings.home}. Run `gateway init --home {settings.home}` first")
    return settings


def show_checks(checks: Iterable, title: str, ok: bool) -> None:  # type: ignore[type-arg]
    for check in checks:
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        console.print(f"  {mark} {check.name}: ", end="")
        console.print(check.detail, markup=False)
    console.print(("[bold green]GENUINE[/] " if ok else "[bold red]NOT GENUINE[/] ") + title)
