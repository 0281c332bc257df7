"""`gateway receipts prove` and `gateway receipts verify-proof`: a record's proof file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gateway.cli._common import HomeOption, KeysOption, console, settings_for, show_checks


def register(receipts_app: typer.Typer) -> None:
    receipts_app.command("prove")(prove)
    receipts_app.command("verify-proof")(verify_proof)


def prove(
    exchange: Annotated[int, typer.Option("--exchange", help="Exchange id (see `gateway exchanges list`).")],
    record: Annotated[
        Optional[int], typer.Option("--record", help="The record's leaf index in the exchange, 0-based, in accepted order.")
    ] = None,
    row: Annotated[Optional[int], typer.Option("--row", help="Or: the record's row number in the source file.")] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Proof file (default: exchange-ID-record-N.proof.json here).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Write a self-contained proof that one record was part of one exchange: the record,
    its audit path, the signed receipt and (if a checkpoint covers it) the ledger path."""
    from gateway.receipts.proofs import build_proof, write_proof
    from gateway.store import make_engine

    if (record is None) == (row is None):
        console.print("[red]Give exactly one of --record N (leaf index, 0-based) or --row N (source row).[/]")
        raise typer.Exit(2)
    settings = settings_for(home)
    engine = make_engine(settings.db_url, readonly=True)
    try:
        document = build_proof(engine, exchange, leaf_index=record, row=row)
    finally:
        engine.dispose()
    leaf = document["record"]["leaf_index"]
    path = out or Path(f"exchange-{exchange}-record-{leaf}.proof.json")
    write_proof(document, path)
    merkle, ledger = document["merkle"], document["ledger"]
    purged = document["record"].get("purged")
    if purged is not None:
        console.print(f"Proof written: {path} (mode 0600)", markup=False)
        console.print(f"  {purged['note']}", markup=False)
    else:
        console.print(f"Proof written: {path} (holds the record in full: personal data, mode 0600)")
    console.print(
        f"  exchange {exchange}, record {leaf} of {merkle['tree_size']} (row {document['record']['row_number']}), "
        f"receipt {document['receipt']['receipt_id']}, audit path {len(merkle['audit_path'])} hashes"
    )
    if ledger:
        console.print(f"  in ledger checkpoint {ledger['checkpoint']['name']}")
    else:
        console.print("  no checkpoint covers the receipt yet (run `gateway ledger checkpoint`, then prove again)")
    console.print(f"Check it anywhere:  gateway receipts verify-proof {path} --keys <the gateway's published keys>")


def verify_proof(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A proof file from `gateway receipts prove`.")],
    keys: KeysOption = None,
    home: HomeOption = None,
) -> None:
    """Check a record proof offline: the receipt's signature against the key history, then
    the record through its audit path to the signed Merkle root. Exit 0 only if genuine."""
    from gateway.receipts.proofs import verify_proof as check

    keys_dir = keys or settings_for(home, need_home=False).keys_dir
    try:
        document = json.loads(file.read_bytes())
    except ValueError as exc:
        console.print(f"[red]NOT GENUINE[/] {file}: not JSON ({exc})")
        raise typer.Exit(1)
    checks = check(document, keys_dir)
    ok = bool(checks) and all(c.ok for c in checks)
    show_checks(checks, str(file), ok)
    raise typer.Exit(0 if ok else 1)
