"""`gateway db`: schema migrations (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gateway.config import load_settings

app = typer.Typer(help="The gateway database: schema migrations.", no_args_is_help=True)
console = Console()
HomeOption = Annotated[Optional[Path], typer.Option("--home", help="Gateway home.", show_default=False)]


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("upgrade")
def upgrade(home: HomeOption = None) -> None:
    """Bring the schema to the newest revision (also run by `gateway init` and at start-up)."""
    from gateway.store import make_engine
    from gateway.store.migrate import current_revision, upgrade as run_upgrade

    settings = load_settings(home)
    engine = make_engine(settings.db_url)
    try:
        before = current_revision(engine)
        after = run_upgrade(engine)
    finally:
        engine.dispose()
    console.print(f"{_redacted(settings.db_url)}: {before or '(empty)'} -> {after}", markup=False)


@app.command("current")
def current(home: HomeOption = None) -> None:
    """Show the schema revision of the database and the newest one this gateway knows."""
    from gateway.store import make_engine
    from gateway.store.migrate import current_revision, head_revision

    settings = load_settings(home)
    engine = make_engine(settings.db_url, readonly=True)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    console.print(f"database {revision or '(empty)'}, newest {head_revision()}", markup=False)
    raise typer.Exit(0 if revision == head_revision() else 1)
