"""`gateway sample-month`: a generated month of every department's exports (gateway/devkit/sample_month.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from gateway.errors import GatewayError
from gateway.cli._common import HomeOption, console, settings_for


def _month(text: str, option: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise GatewayError(f"{option} {text!r}: write a month YYYY-MM")
    return int(match.group(1)), int(match.group(2))


def sample_month(
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM (all its dates must be past).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the files and manifest.json here instead of the inboxes.")] = None,
    plant: Annotated[bool, typer.Option("--plant/--no-plant", help="Plant discrepancies for every reconciliation rule.")] = True,
    supply_from: Annotated[Optional[str], typer.Option("--supply-from", help="YYYY-MM: supply half of that generated month's missing records.")] = None,
    home: HomeOption = None,
) -> None:
    """Generate one month of all six departments' exports in their real formats, with
    discrepancies planted in known numbers (docs/reconciliation.md), and drop them into
    the inboxes (then `gateway run --once`), or write them with their manifest to --out."""
    from gateway.devkit.sample_month import generate_month

    year, number = _month(month, "MONTH")
    previous = None
    if supply_from is not None:
        before = _month(supply_from, "--supply-from")
        if before >= (year, number):
            raise GatewayError(f"--supply-from {supply_from} must be a month before {month}")
        previous = generate_month(*before)
    generated = generate_month(year, number, plant=plant, supply=previous)
    if out is not None:
        path = generated.write(out)
        console.print(f"Wrote {sum(len(f) for f in generated.files.values())} files and {path}", markup=False)
    else:
        written = generated.drop(settings_for(home).mailbox_root)
        console.print(f"Dropped {len(written)} files into the inboxes; now run `gateway run --once`.", markup=False)
    counts = generated.counts["records"]
    console.print("Records: " + ", ".join(f"{department} {n}" for department, n in counts.items()), markup=False)
    planted = generated.manifest()["planted"]
    if any(planted.values()):
        console.print("Planted: " + ", ".join(f"{rule} {len(keys)}" for rule, keys in planted.items()), markup=False)
    supplied = generated.manifest()["supplied"]
    if any(supplied.values()):
        console.print("Supplied: " + ", ".join(f"{rule} {len(keys)}" for rule, keys in supplied.items()), markup=False)
    register = generated.counts["register"]
    console.print(
        "育龄妇女 by village (register women, `gateway register divisions --as-of "
        f"{register['as_of']}`): " + ", ".join(f"{code} {n}" for code, n in register["women_by_village"].items())
        + f"; unmatched mothers {register['unmatched_mothers']}",
        markup=False,
    )
