"""`gateway backup`, `gateway restore`, `gateway verify-home` (备份、恢复、主目录核验):
gateway/exchange/backup.py, restore.py and home_check.py, docs/operations.md "Backups and restore"."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gateway.cli._common import HomeOption, KeysOption, console, settings_for, setup_logging

GnupgHomeOption = Annotated[
    Optional[Path],
    typer.Option(
        "--gnupghome",
        help="The officer's GnuPG keyring holding the backup key (default: $GNUPGHOME, else ~/.gnupg).",
        show_default=False,
    ),
]


def backup(
    destination: Annotated[Path, typer.Argument(help="The backup file to write (new).", show_default=False)],
    to: Annotated[
        Optional[str],
        typer.Option("--to", help="The office's backup key: a full fingerprint in the keyring, or a public key file."),
    ] = None,
    plain: Annotated[bool, typer.Option("--plain", help="Write it unencrypted (it holds the private keyring and every record).")] = False,
    gnupghome: GnupgHomeOption = None,
    home: HomeOption = None,
) -> None:
    """Write one consistent copy of the home: the database, keys and key history, ledger
    checkpoints, gateway.toml, agreements and the mailbox with its archives, with a
    manifest signed by the gateway's key, encrypted to the office's backup key."""
    from gateway.exchange.backup import PLAIN_WARNING, write_backup

    setup_logging(verbose=False)
    if plain:
        console.print(PLAIN_WARNING, style="bold yellow", markup=False)
    settings = settings_for(home)
    result = write_backup(settings, destination, to=to, plain=plain, gnupghome=gnupghome)
    manifest = result.manifest
    latest = manifest["latest_checkpoint"]
    console.print(f"已备份 / backed up: {result.path}", markup=False)
    console.print(
        f"  文件 files: {len(manifest['members'])}, 数据库 database: {manifest['database']['backend']} "
        f"(revision {manifest['database']['revision']}), 回执 receipts: {manifest['receipts']}",
        markup=False,
    )
    if latest:
        console.print(f"  最新检查点 latest checkpoint: {latest['name']} ({latest['tree_size']} receipts, root {latest['root']})", markup=False)
    console.print(f"  清单签名密钥 manifest signed by: {manifest['signing_key']}", markup=False)
    if result.encrypted_to:
        console.print(f"  加密给 encrypted to: {result.encrypted_to}", markup=False)


def restore(
    source: Annotated[Path, typer.Argument(help="The backup file.", exists=True, dir_okay=False, show_default=False)],
    home: Annotated[Path, typer.Option("--home", help="The new home (must not exist, or be empty).", show_default=False)],
    database_url: Annotated[
        Optional[str],
        typer.Option("--database-url", help="PostgreSQL: an empty database to restore into (SQLite: default NEW/gateway.db)."),
    ] = None,
    gnupghome: GnupgHomeOption = None,
    keys: KeysOption = None,
) -> None:
    """Rebuild a home from a backup: decrypt it with the officer's keyring, check the
    manifest's signature and every file's sha256, then restore the database and files."""
    from gateway.exchange.restore import restore_backup

    setup_logging(verbose=False)
    result = restore_backup(source, home, database_url=database_url, gnupghome=gnupghome, keys=keys)
    manifest = result.manifest
    console.print(f"已恢复 / restored: {result.home}", markup=False)
    console.print(
        f"  备份时间 made: {manifest['created_at']} by gateway {manifest['gateway_version']}; "
        f"文件 files: {len(manifest['members'])}; 回执 receipts: {manifest['receipts']}",
        markup=False,
    )
    console.print(
        f"  清单由 {result.signed_by} 签名(请与公布的指纹核对)/ manifest signed by {result.signed_by} "
        "(compare it with the published fingerprint)",
        markup=False,
    )
    for note in result.notes:
        console.print(f"  {note}", markup=False)
    latest = manifest["latest_checkpoint"]
    kept = f" --checkpoint {result.home}/ledger/checkpoints/{latest['name']}.json" if latest else ""
    console.print(f"下一步 next: gateway verify-home --home {result.home}{kept}", markup=False)


def verify_home(
    checkpoint: Annotated[
        Optional[str],
        typer.Option("--checkpoint", help="A checkpoint you kept (NAME.json with NAME.json.asc beside), as `gateway ledger export` writes it."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Prove a home complete: the ledger verifies from genesis and extends your checkpoint,
    every receipt's exchange and records exist, every archived file matches its receipt.
    Exit 1 on any finding."""
    from gateway.exchange.home_check import verify_home as check_home
    from gateway.receipts.ledger import read_checkpoint_arg
    from gateway.retention.home import StoredRetention
    from gateway.store import make_engine

    settings = settings_for(home)
    engine = make_engine(settings.db_url, readonly=True)
    try:
        kept = read_checkpoint_arg(checkpoint, engine=engine) if checkpoint else None
        retention = StoredRetention(engine)
        report = check_home(settings, engine, kept, retention)
    finally:
        engine.dispose()
    for note in [*report.notes, *retention.notes()]:
        console.print(f"  {note}", markup=False)
    for finding in report.findings:
        console.print("  [red]FAIL[/] ", end="")
        console.print(finding.text(), markup=False)
    summary = f"{report.receipts} 张回执 receipts, {report.records} 条记录 records, {report.archived} 个归档文件 archived files"
    if report.ok:
        console.print(f"[bold green]主目录完整 / HOME COMPLETE[/] {summary}")
        if report.latest:
            console.print(f"最新检查点 latest checkpoint {report.latest[0]}: {report.latest[1]} receipts, root {report.latest[2]}", markup=False)
    else:
        console.print(f"[bold red]主目录不完整 / HOME NOT COMPLETE[/] {len(report.findings)} 项问题 finding(s); {summary}")
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("verify-home")(verify_home)
