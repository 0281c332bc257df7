"""`gateway retention run [--dry-run]` (保存期限清除): gateway/retention/, docs/operations.md "Retention"."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli._common import HomeOption, console, settings_for, setup_logging

app = typer.Typer(help="保存期限 / Retention: purge what is past its [retention] rule.", no_args_is_help=True)


@app.command("run")
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be purged; change nothing.")] = False,
    home: HomeOption = None,
) -> None:
    """Purge the records, row errors and archived files past their [retention] rule (business
    clock): payloads go, record hashes and leaf indexes stay, so every receipt, record proof
    and the ledger still verify. No rule: nothing is deleted."""
    from gateway.retention.purge import run_retention
    from gateway.retention.rules import load_rules
    from gateway.store import make_engine
    from gateway.store.db import create_schema

    setup_logging(verbose=False)
    settings = settings_for(home)
    rules = load_rules(settings.retention)
    engine = make_engine(settings.db_url)
    try:
        create_schema(engine)
        report = run_retention(engine, settings, rules, dry_run=dry_run)
    finally:
        engine.dispose()
    for line in report.lines():
        console.print(line, markup=False)
