"""`gateway deadlines`: the regulations' deadline rules and the open items they govern."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.errors import GatewayError
from gateway.cli import obligations as _obligation_commands
from gateway.cli._common import HomeOption, console, settings_for

app = typer.Typer(help="Deadlines: the rules (calendar or working days) and what is due.", no_args_is_help=True)


@app.command("rules")
def rules(home: HomeOption = None) -> None:
    """Each rule as configured (defaults from the regulations, [deadlines.RULE] overrides)."""
    from gateway.obligations.deadlines import Deadlines

    deadlines = Deadlines(settings_for(home).deadlines)
    table = Table(title=f"Deadline rules (working days: {deadlines.calendar.source}, covers {deadlines.calendar.span})")
    for column in ("rule", "days", "counted in", "from", "roll to workday", "what"):
        table.add_column(column)
    for name, rule in deadlines.rules.items():
        table.add_row(name, str(rule.days), f"{rule.count} days", "FQSJ (sent)" if rule.start == "sent" else "received",
                      "yes" if rule.roll_to_workday else "no", rule.description)
    console.print(table)


@app.command("due")
def due(
    rule: Annotated[str, typer.Argument(help="The rule (see `gateway deadlines rules`).")],
    start: Annotated[str, typer.Option("--from", help="The day counted from (YYYY-MM-DD).")],
    home: HomeOption = None,
) -> None:
    """When a deadline of RULE counted from --from ends (provisional beyond the calendar's years)."""
    from gateway.obligations.deadlines import Deadlines

    try:
        day = dt.date.fromisoformat(start)
    except ValueError:
        raise GatewayError(f"--from {start!r}: write a date YYYY-MM-DD") from None
    result = Deadlines(settings_for(home).deadlines).due(rule, day)
    console.print(f"{rule} from {day}: due {result.label()}")
    if result.provisional:
        console.print(f"[yellow]{result.note}[/]")


# The old name of `gateway obligations list` (every deadline is an obligation now).
app.command("list", help="旧名 Old name of `gateway obligations list`: everything owed, soonest due first.")(
    _obligation_commands.list_command
)


@app.command("refresh")
def refresh(home: HomeOption = None) -> None:
    """Recompute provisional due dates (after `pip install -U chinesecalendar`)."""
    from gateway.platform import assist_checks
    from gateway.exchange.lifecycle import Gateway

    gateway = Gateway(settings_for(home))
    try:
        count = assist_checks.refresh_provisional(gateway.engine, gateway.settings)
        from gateway.obligations.service import refresh_provisional

        count += refresh_provisional(gateway.engine, gateway.settings)  # the obligations' own (sign-offs, checks)
    finally:
        gateway.close()
    console.print(f"{count} provisional due date(s) made final.")


