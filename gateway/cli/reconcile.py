"""`gateway reconcile`: the open discrepancies between departments' records, per rule;
closing one by hand; deciding proposed matches; sending the lists (docs/reconciliation.md)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.errors import GatewayError
from gateway.cli._common import HomeOption, console, settings_for

app = typer.Typer(
    help="Reconciliation: records of one department that another's should match (docs/reconciliation.md).",
    invoke_without_command=True,
)

RuleOption = Annotated[Optional[list[str]], typer.Option("--rule", help="Only this rule (repeatable); see `gateway reconcile rules`.")]
AsOfOption = Annotated[Optional[str], typer.Option("--as-of", help="Evaluate as of this day, YYYY-MM-DD (default: today, China time).")]
ByOption = Annotated[Optional[str], typer.Option("--by", help="Who decides (default: your login name).")]


def _as_of(text: str | None) -> dt.date:
    from gateway import clock

    if text is None:
        return clock.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise GatewayError(f"--as-of {text!r}: write a date YYYY-MM-DD") from None


@app.callback()
def reconcile(
    ctx: typer.Context,
    rule: RuleOption = None,
    as_of: AsOfOption = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"as_of": ..., "rules": {NAME: {"open": N, "items": [...]}}}.')] = False,
    deliver: Annotated[bool, typer.Option("--deliver", help="Also send each department concerned its list (encrypted, signed).")] = False,
    home: HomeOption = None,
) -> None:
    """Evaluate the rules as of a day and show the open discrepancies, per rule, with masked
    identifiers and the departments to notify."""
    if ctx.invoked_subcommand is not None:
        return
    from gateway.reconcile import evaluate, open_items
    from gateway.store import make_engine

    day = _as_of(as_of)
    settings = settings_for(home)
    sent = []
    if deliver:  # the signing key and the transports: a whole gateway
        from gateway.exchange.lifecycle import Gateway
        from gateway.reconcile.deliver import deliver as send

        gateway = Gateway(settings)
        try:
            evaluation = evaluate(gateway.engine, settings, day, rule)
            items = open_items(gateway.engine, list(evaluation.rules))
            sent = send(gateway, day, list(evaluation.rules))
        finally:
            gateway.close()
    else:
        from gateway.store.migrate import upgrade

        engine = make_engine(settings.db_url)
        try:
            upgrade(engine)
            evaluation = evaluate(engine, settings, day, rule)
            items = open_items(engine, list(evaluation.rules))
        finally:
            engine.dispose()
    if as_json:
        document = {
            "as_of": day.isoformat(),
            "rules": {name: {"open": len(found), "items": [item.to_json() for item in found]} for name, found in items.items()},
        }
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return
    console.print(f"Reconciliation {evaluation.summary()}", markup=False)
    for name, found in items.items():
        if not found:
            console.print(f"{name}: nothing open")
            continue
        table = Table(title=f"{name}: {len(found)} open")
        for column in ("id", "subject", "name", "from", "event", "due", "notify", "proposed match"):
            table.add_column(column, no_wrap=column in ("subject", "due", "event"))
        for item in found:
            row = item.to_json()
            proposals = "; ".join(f"#{p['id']} {p['record']['contract']} {p.get('name', '')} {p.get('id_number', '')}".strip()
                                  for p in row["proposals"])
            table.add_row(str(row["id"]), row["subject"], row["name"], row["record"]["department"], row["event_date"],
                          row["due_on"], ", ".join(row["notify"]), proposals)
        console.print(table)
    for outcome in sent:
        detail = outcome.file_name or outcome.reason or ""
        console.print(f"list for {outcome.department}: {outcome.status}, {outcome.items} open {detail}".rstrip(), markup=False)


@app.command("resolve")
def resolve(
    discrepancy_id: Annotated[int, typer.Argument(help="The discrepancy's id (`gateway reconcile`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is closed, e.g. \"home birth registered elsewhere\".")],
    by: ByOption = None,
    home: HomeOption = None,
) -> None:
    """Close a discrepancy by hand, recording who and why (also in `gateway audit list`)."""
    from gateway.reconcile import resolve as close
    from gateway.store import make_engine

    engine = make_engine(settings_for(home).db_url)
    try:
        row = close(engine, discrepancy_id, reason, by)
    finally:
        engine.dispose()
    console.print(f"Discrepancy {row.id} ({row.rule}) resolved by {row.closed_by}.", markup=False)


def _decide(discrepancy_id: int, confirm: bool, proposal: int | None, by: str | None, home) -> None:  # type: ignore[no-untyped-def]
    from gateway.reconcile import decide_proposal
    from gateway.store import make_engine

    engine = make_engine(settings_for(home).db_url)
    try:
        row = decide_proposal(engine, discrepancy_id, confirm, proposal, by)
    finally:
        engine.dispose()
    if confirm:
        console.print(f"Discrepancy {row.id} ({row.rule}) closed: the proposed match is confirmed by {row.closed_by}.", markup=False)
    else:
        console.print(f"Discrepancy {row.id} ({row.rule}): the proposed match is rejected; it stays open.", markup=False)


ProposalOption = Annotated[Optional[int], typer.Option("--proposal", help="Which proposal, when there are several.")]


@app.command("confirm")
def confirm(
    discrepancy_id: Annotated[int, typer.Argument(help="The discrepancy's id.")],
    proposal: ProposalOption = None,
    by: ByOption = None,
    home: HomeOption = None,
) -> None:
    """Confirm a proposed match (same name, birth dates within 2 days): the discrepancy
    closes, and the two records count as matched for every rule joining them."""
    _decide(discrepancy_id, True, proposal, by, home)


@app.command("reject")
def reject(
    discrepancy_id: Annotated[int, typer.Argument(help="The discrepancy's id.")],
    proposal: ProposalOption = None,
    by: ByOption = None,
    home: HomeOption = None,
) -> None:
    """Reject a proposed match: it is not the same person; the discrepancy stays open."""
    _decide(discrepancy_id, False, proposal, by, home)


@app.command("rules")
def rules(home: HomeOption = None) -> None:
    """Each registered rule: the contracts it joins, its keys, grace period and departments."""
    from gateway.reconcile import configured_rules

    table = Table(title="Reconciliation rules")
    for column in ("rule", "joins", "matching keys", "grace", "notify", "what"):
        table.add_column(column)
    for name, configured in configured_rules(settings_for(home)).items():
        rule = configured.rule
        table.add_row(
            name, f"{rule.subject_contract} → {rule.evidence_contract}", " = ".join(rule.matching_keys),
            f"{configured.grace} ({configured.grace_source})", ", ".join(rule.notify), rule.description,
        )
    console.print(table)
