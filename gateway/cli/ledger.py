"""`gateway ledger`: signed checkpoints of the receipt ledger, its verification (from the
database or from an export, offline), and the export for a security officer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gateway.cli._common import HomeOption, KeysOption, console, settings_for

app = typer.Typer(help="The receipt ledger: checkpoints, verification, export for officers.", no_args_is_help=True)


@app.command("checkpoint")
def checkpoint(home: HomeOption = None) -> None:
    """Sign a checkpoint of the ledger now (tree size, root, time, key)."""
    from gateway.receipts.ledger import checkpoint_name, checkpoints_dir, make_checkpoint
    from gateway.receipts.signing import Signer
    from gateway.store import create_schema, make_engine

    settings = settings_for(home)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    signer = Signer(settings.gnupg_dir, settings.keys_dir, settings.passphrase())
    try:
        row = make_checkpoint(engine, signer, checkpoints_dir(settings.home))
    finally:
        signer.close()
        engine.dispose()
    name = checkpoint_name(row.id or 0)
    console.print(f"Checkpoint {row.id}: {row.tree_size} receipts, root {row.root}, key {row.key_fingerprint}")
    console.print(f"  {checkpoints_dir(settings.home) / name}.json (+ .asc): keep a copy to check later that the ledger only grew")


@app.command("verify")
def verify(
    since: Annotated[
        Optional[str],
        typer.Option("--since", help="A checkpoint you kept: its file (NAME.json, .asc beside) or its number."),
    ] = None,
    export: Annotated[
        Optional[Path],
        typer.Option("--export", help="Verify an export folder (from `gateway ledger export`) instead of the database.",
                     exists=True, file_okay=False),
    ] = None,
    keys: KeysOption = None,
    home: HomeOption = None,
) -> None:
    """Prove the ledger intact: every receipt signed by a key valid at its time and chained
    to the one before, every checkpoint matching the receipts, and (with --since) that the
    ledger only grew since a checkpoint you kept. Exit 0 only when all of it holds."""
    from gateway.receipts.ledger import load_export, load_store, read_checkpoint_arg, verify_ledger
    from gateway.store import create_schema, make_engine

    if export is not None:
        keys_dir = keys or export / "keys"
        view = load_export(export)
        kept = read_checkpoint_arg(since, view_dir=export) if since else None
        if keys is None:
            console.print(
                f"Keys taken from the export ({keys_dir}); compare their fingerprints with the published ones, "
                "or pass --keys DIR with your own copy."
            )
    else:
        settings = settings_for(home)
        keys_dir = keys or settings.keys_dir
        engine = make_engine(settings.db_url, readonly=True)
        try:
            create_schema(engine)
            view = load_store(engine)
            kept = read_checkpoint_arg(since, engine=engine) if since else None
        finally:
            engine.dispose()
    report = verify_ledger(view, keys_dir, kept)
    for check in report.checks:
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        console.print(f"  {mark} {check.name}: ", end="")
        console.print(check.detail, markup=False)
    if report.ok:
        console.print(f"[bold green]LEDGER INTACT[/] {report.receipts} receipts")
        if report.latest:
            console.print(f"Latest checkpoint {report.latest[0]}: {report.latest[1]} receipts, root {report.latest[2]}")
    else:
        console.print(f"[bold red]LEDGER NOT INTACT[/] ({report.receipts} receipts read)")
    raise typer.Exit(0 if report.ok else 1)


@app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="A new folder (or an earlier export, brought up to date).")],
    home: HomeOption = None,
) -> None:
    """Write everything a security officer needs to verify the ledger offline: receipts and
    signatures, checkpoints and signatures, public keys and key history, consistency
    proofs between consecutive checkpoints, and VERIFY.md. A checkpoint is signed first
    if receipts were added since the last one."""
    from gateway.receipts.ledger import export_ledger
    from gateway.receipts.signing import Signer
    from gateway.store import create_schema, make_engine

    settings = settings_for(home)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    signer = Signer(settings.gnupg_dir, settings.keys_dir, settings.passphrase())
    try:
        manifest = export_ledger(engine, signer, settings.home, settings.keys_dir, directory)
    finally:
        signer.close()
        engine.dispose()
    console.print(
        f"Exported {manifest['receipts']} receipts, {manifest['checkpoints']} checkpoints and {len(manifest['keys'])} key(s) "
        f"to {directory}"
    )
    console.print(f"Latest checkpoint: {manifest['latest_checkpoint']}. Offline: gateway ledger verify --export {directory}")
    console.print(f"How to verify with gpg alone: {directory / 'VERIFY.md'}")
