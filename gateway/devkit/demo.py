"""`gateway demo`: the main job on the embedded default, start to finish, in a fresh home.

Every department's specimen is dropped into its own inbox, one pass runs, every receipt
is verified; then the hospital file is dropped again under another name (a duplicate
exchange that stores nothing), and the hospital's rejection report is shown.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from rich.console import Console

from gateway.exchange.home import init_home
from gateway.exchange.lifecycle import Gateway, Outcome
from gateway.receipts.check import verify_receipt

SPECIMENS = {
    "hospital_births_202610.csv": "hospital",
    "police_hukou_202610.csv": "police",
    "civil_affairs_202610.xml": "civil-affairs",
    "school_enrolments_202609.csv": "school",
    "housing_occupancy_page1.json": "housing",
    "national_platform_inbound_20261102.xml": "national-platform",
}


def _drop(inbox: Path, name: str, data: bytes) -> Path:
    partial = inbox / (name + ".part")
    partial.write_bytes(data)
    os.replace(partial, inbox / name)  # as a department's client does: upload, then rename
    return inbox / name


def run_demo(home: Path, console: Console, summary: Callable[[list[Outcome]], None]) -> int:
    """Run the tour; return the number of receipts that failed verification."""
    if home.exists():
        shutil.rmtree(home)
    settings, fingerprint, _ = init_home(home)
    console.print(f"[bold]1. Gateway home[/] {settings.home}, signing key {fingerprint}")
    data = files("gateway") / "demo_data"
    gateway = Gateway(settings)
    failures = 0

    def verify(outcomes: list[Outcome]) -> None:
        nonlocal failures
        for outcome in outcomes:
            receipt = settings.mailbox_root / str(outcome.receipt)
            verdict = verify_receipt(receipt, settings.keys_dir, gateway.engine)
            mark = "[green]GENUINE[/]    " if verdict.genuine else "[red]NOT GENUINE[/]"
            console.print(f"  {mark} {receipt.relative_to(settings.home)}")
            failures += not verdict.genuine

    try:
        for name, department in SPECIMENS.items():
            _drop(settings.mailbox_root / department / "inbox", name, (data / name).read_bytes())
        console.print(f"[bold]2. Dropped[/] {len(SPECIMENS)} specimens into their departments' inboxes; one pass")
        outcomes = gateway.run_once()
        summary(outcomes)
        verify(outcomes)

        again = "births october (again).csv"
        _drop(settings.mailbox_root / "hospital" / "inbox", again, (data / "hospital_births_202610.csv").read_bytes())
        console.print(f"[bold]3. Dropped[/] the hospital file again as {again!r}; one pass")
        outcomes = gateway.run_once()
        summary(outcomes)
        verify(outcomes)

        report = settings.mailbox_root / "hospital" / "outbox" / "hospital_births_202610.csv.errors.csv"
        console.print(f"[bold]4. The hospital's rejection report[/] {report.relative_to(settings.home)}:")
        console.print(report.read_text(encoding="utf-8-sig"), markup=False)
        console.print("[bold]5. The hospital's mailbox now[/]")
        for folder in ("inbox", "processed", "outbox"):
            names = sorted(p.name for p in (settings.mailbox_root / "hospital" / folder).iterdir())
            console.print(f"  {folder}/: {', '.join(names) or '(empty)'}", markup=False)
        receipt = f"{home}/mailbox/hospital/outbox/hospital_births_202610.csv.receipt.json"
        console.print(
            f"Verify by hand:  gateway receipts verify --home {home} {receipt}\n"
            f"Plain GnuPG:     gpg --import {settings.keys_dir}/*.asc && gpg --verify {receipt}.asc {receipt}",
            markup=False,
        )
    finally:
        gateway.close()
    return failures
