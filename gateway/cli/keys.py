"""`gateway keys`: rotate the gateway's signing key; register departments' public keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.cli._common import HomeOption, console, settings_for

app = typer.Typer(help="Signing keys: rotation, and departments' public keys for signed drops.", no_args_is_help=True)


@app.command("rotate")
def rotate(
    keep_old_secret: Annotated[
        bool, typer.Option("--keep-old-secret", help="Keep the retired private key in HOME/gnupg (default: delete it).")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Make a new signing key: the old key's window closes, the new one's opens at the same
    second, and a handover statement is signed by both. Publish HOME/keys afterwards."""
    from gateway.receipts.keys import rotate as do_rotate

    settings = settings_for(home)
    rotation = do_rotate(settings.gnupg_dir, settings.keys_dir, settings.passphrase(), keep_old_secret=keep_old_secret)
    console.print(f"Old key: {rotation.old} (valid until {rotation.at})")
    console.print(f"New key: {rotation.new} (valid from {rotation.at})")
    console.print(f"Handover: {rotation.statement} (+ .old.asc, .new.asc)")
    if not keep_old_secret:
        state = "deleted" if rotation.old_secret_deleted else "[red]NOT deleted (see the log)[/]"
        console.print(f"Retired private key: {state}")
    console.print(f"Publish {settings.keys_dir} (history.json, the new public key, handovers/) to the verifiers.")


@app.command("import")
def import_key(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The department's public key (armored or binary).")],
    department: Annotated[str, typer.Option("--department", help="The department that signs with it.")],
    fingerprint: Annotated[
        Optional[str], typer.Option("--fingerprint", help="The key's full fingerprint; required when FILE holds several keys.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Register a department's public key, pinned by full fingerprint. From then on its
    drops must come with a detached signature NAME.asc by that key."""
    from gateway.errors import UnknownName
    from gateway.receipts.keys import DepartmentKeys

    from gateway.config import effective_departments
    from gateway.plugins import get_manager

    settings = settings_for(home)
    departments = effective_departments(settings, get_manager().adapters().values())  # an installed adapter's too
    if department not in departments:
        raise UnknownName("department", department, departments)
    key = DepartmentKeys(settings.keys_dir).import_key(file.read_bytes(), department, fingerprint)
    console.print(f"Registered {key.fingerprint} for {department} ({settings.keys_dir / 'departments' / key.public_key_file}).")
    console.print(
        f"{department}'s drops must now be signed: NAME.asc beside NAME (upload the .asc first); "
        f"an unsigned drop waits {settings.signature_wait_seconds:.0f}s, then is refused."
    )


@app.command("list")
def list_keys(home: HomeOption = None) -> None:
    """The gateway's signing keys (with their windows) and the departments' keys."""
    from gateway.receipts.keys import DepartmentKeys
    from gateway.receipts.signing import read_history

    settings = settings_for(home)
    table = Table(title="Gateway signing keys (HOME/keys/history.json)")
    for column in ("fingerprint", "valid from", "valid until", "file"):
        table.add_column(column)
    for entry in read_history(settings.keys_dir):
        table.add_row(entry.fingerprint, entry.valid_from, entry.valid_until or "(current)", entry.public_key_file)
    console.print(table)
    keys = DepartmentKeys(settings.keys_dir).all()
    table = Table(title="Departments' keys (signed drops)")
    for column in ("department", "fingerprint", "registered", "file"):
        table.add_column(column)
    for key in sorted(keys, key=lambda k: (k.department, k.added_at)):
        table.add_row(key.department, key.fingerprint, key.added_at, key.public_key_file)
    if keys:
        console.print(table)
    else:
        console.print("No department has a registered key: drops are taken unsigned.")


@app.command("remove")
def remove(
    department: Annotated[str, typer.Option("--department", help="The department.")],
    fingerprint: Annotated[
        Optional[str], typer.Option("--fingerprint", help="Which key, when the department has several.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Unregister a department's key. With no key left, its drops are taken unsigned again."""
    from gateway.receipts.keys import DepartmentKeys

    settings = settings_for(home)
    registry = DepartmentKeys(settings.keys_dir)
    for key in registry.remove(department, fingerprint):
        console.print(f"Removed {key.fingerprint} from {department}.")
    if not registry.for_department(department):
        console.print(f"{department} has no registered key left: its drops are taken unsigned.")
