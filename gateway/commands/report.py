"""`gateway report cycle`: the exchange cycle's figures (gateway/cycle_report.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import GatewayError
from ._common import HomeOption, console, settings_for

app = typer.Typer(help="Reports.", no_args_is_help=True)


@app.command("cycle")
def cycle(
    month: Annotated[Optional[str], typer.Option("--month", help="YYYY-MM (default: the cycle that contains today).")] = None,
    csv_file: Annotated[Optional[Path], typer.Option("--csv", help="Also write the figures as CSV (UTF-8 with BOM).", dir_okay=False)] = None,
    as_of: Annotated[
        Optional[str], typer.Option("--as-of", help="Evaluate as of this moment (YYYY-MM-DD[THH:MM], China time) instead of now.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Requests received and answered, the feedback rate against the required 95%, what is
    overdue; submissions per partner and category."""
    from .. import assist_checks, clock
    from ..cycle_report import build, cycle_containing, write_csv
    from ..pipeline import Gateway

    moment = None
    if as_of is not None:
        try:
            moment = dt.datetime.fromisoformat(as_of)
        except ValueError:
            raise GatewayError(f"--as-of {as_of!r}: write YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=clock.CHINA)
    gateway = Gateway(settings_for(home))
    try:
        assist_checks.sync(gateway.engine, gateway.settings)
        chosen = month or cycle_containing(clock.in_china(moment or clock.now()).date()).month
        report = build(gateway.engine, chosen, as_of=moment)
    finally:
        gateway.close()
    c = report.cycle
    console.print(f"[bold]Exchange cycle {c.month}[/]: submissions {c.submission_start} – {c.submission_end}; "
                  f"receipt and feedback {c.feedback_start} – {c.feedback_end} (cut-off {clock.in_china(c.cutoff):%Y-%m-%d %H:%M} China time)")
    evaluated = clock.in_china(report.evaluated_at).strftime("%Y-%m-%d %H:%M")
    if report.provisional:
        console.print(f"[yellow]Provisional: evaluated at {evaluated}; the cycle is still open.[/]")
    else:
        console.print(f"Evaluated at the cut-off ({evaluated}).")
    table = Table(title="Submissions per partner and category")
    for column in ("partner", "category", "received", "accepted", "rejected rows"):
        table.add_column(column, justify="right" if column in ("received", "accepted", "rejected rows") else "left")
    for row in report.submissions:
        table.add_row(row.partner, row.category, str(row.received), str(row.accepted), str(row.rejected) if row.category == "(exchanges)" else "")
    console.print(table if report.submissions else "No submissions in the cycle.")
    for title, rows in (("Assist-check requests (协查) per asking county", report.requests), ("Notices (通报)", report.notices)):
        table = Table(title=title)
        for column in ("partner", "category", "received", "answered by cut-off", "of which late", "open", "overdue"):
            table.add_column(column, justify="left" if column in ("partner", "category") else "right")
        for row in rows:
            table.add_row(row.partner, row.category, str(row.received), str(row.answered), str(row.late), str(row.open),
                          f"[red]{row.overdue}[/]" if row.overdue else "0")
        console.print(table if rows else f"{title}: none in the cycle.")
    colour = "green" if report.meets_target else "red"
    console.print(f"[bold]Feedback rate[/]: [{colour}]{report.rate_text()}[/]")
    if report.overdue:
        table = Table(title=f"Overdue ({len(report.overdue)})")
        for column in ("kind", "id", "XXBH", "from", "category", "subject", "due", "days over", "status"):
            table.add_column(column, no_wrap=column in ("XXBH", "subject"))
        for item in report.overdue:
            table.add_row(item.kind, str(item.item_id), item.message_id, item.partner, item.category, item.subject,
                          item.due_date.isoformat() + (" (provisional)" if item.provisional else ""), str(item.days_overdue), item.status)
        console.print(table)
    else:
        console.print("Nothing overdue.")
    if csv_file is not None:
        write_csv(report, csv_file)
        console.print(f"CSV: {csv_file}")
