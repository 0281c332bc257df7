"""`gateway pulls` and `gateway jobs`: scheduled pulls from partners' APIs and the jobs
`gateway run` schedules (docs/pulls.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.cli._common import HomeOption, console, settings_for

app = typer.Typer(help="Scheduled pulls from partners' APIs (housing registry, national platform).", no_args_is_help=True)
jobs_app = typer.Typer(help="The jobs `gateway run` schedules: last run, next run, last error.", invoke_without_command=True)


def _gateway(home: Path | None):  # type: ignore[no-untyped-def]
    from gateway.exchange.lifecycle import Gateway

    return Gateway(settings_for(home))


def _when(moment: dt.datetime | None) -> str:
    from gateway import clock

    if moment is None:
        return "-"
    return clock.in_china(moment).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def pulls_list(home: HomeOption = None) -> None:
    """Each source: where it pulls from, its cursor, pages so far, and what holds it."""
    from sqlmodel import Session, select

    from gateway.pulls import sources
    from gateway.store.models import PullCursor

    gateway = _gateway(home)
    try:
        configured = sources(gateway.settings)
        with Session(gateway.engine) as session:
            states = {row.source: row for row in session.exec(select(PullCursor)).all()}
    finally:
        gateway.close()
    if not configured:
        console.print("No pull sources: add [pulls.NAME] tables to gateway.toml (docs/pulls.md).")
        return
    table = Table(title="Pull sources (times in China time)")
    for column in ("source", "kind", "url", "schedule", "cursor", "pages", "last contact", "held by"):
        table.add_column(column)
    for name, source in configured.items():
        state = states.get(name)
        held = "-"
        if state is not None and state.blocked_exchange_id is not None:
            held = f"[red]refused page, exchange {state.blocked_exchange_id}[/]" + (
                f"; skip to {state.blocked_next_cursor}" if state.blocked_next_cursor else "; skip needs --to"
            )
        schedule = f"every {source.every}" if source.every else "at " + ", ".join(source.at)
        table.add_row(
            name + ("" if source.enabled else " (disabled)"), source.kind, source.url, schedule,
            (state.cursor if state and state.cursor else "(start)"), str(state.pages if state else 0),
            _when(state.checked_at if state else None), held,
        )
    console.print(table)


@app.command("run")
def pulls_run(
    names: Annotated[Optional[list[str]], typer.Argument(help="Sources to pull (default: every enabled one).")] = None,
    home: HomeOption = None,
) -> None:
    """Pull now, as the scheduled job would (taking its lease: not while another process runs it)."""
    from gateway.scheduler.runner import job_named, run_job

    gateway = _gateway(home)
    failed = False
    try:
        chosen = names or [n for n, s in gateway.settings.pulls.items() if s.enabled]
        if not chosen:
            console.print("No pull sources: add [pulls.NAME] tables to gateway.toml (docs/pulls.md).")
            return
        for name in chosen:
            job = job_named(gateway, f"pull:{name}")
            try:
                result = run_job(gateway.engine, job, lease_seconds=gateway.settings.job_lease_seconds, force=True)
            finally:
                if job.close is not None:
                    job.close()
            if result is None:
                console.print(f"{name}: [yellow]running in another process right now[/] (see `gateway jobs`)")
                failed = True
                continue
            console.print(f"{name}: {result.summary}", markup=False, soft_wrap=True)
            if result.error:
                failed = True
    finally:
        gateway.close()
    raise typer.Exit(1 if failed else 0)


@app.command("skip")
def pulls_skip(
    name: Annotated[str, typer.Argument(help="The pull source held by a refused page.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the page may be skipped (kept in the pull history).")],
    to: Annotated[Optional[str], typer.Option("--to", help="The cursor after the refused page, when the page names none.")] = None,
    home: HomeOption = None,
) -> None:
    """Move a source past a page it refused as a whole, on your word; recorded."""
    from gateway.pulls import skip

    gateway = _gateway(home)
    try:
        before, after = skip(gateway, name, reason=reason, to=to)
    finally:
        gateway.close()
    console.print(f"{name}: cursor moved from {before or '(start)'} to {after}; the refused page stays receipted as rejected.")


@app.command("history")
def pulls_history(
    name: Annotated[str, typer.Argument(help="The pull source.")],
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 30,
    home: HomeOption = None,
) -> None:
    """Pages committed, pages refused, and skips, newest first."""
    from sqlmodel import Session, select

    from gateway.store.models import PullPage
    from gateway.cli.assist_checks import mask_ids

    gateway = _gateway(home)
    try:
        with Session(gateway.engine) as session:
            rows = session.exec(
                select(PullPage).where(PullPage.source == name).order_by(PullPage.id.desc()).limit(limit)  # type: ignore[union-attr]
            ).all()
    finally:
        gateway.close()
    table = Table(title=f"Pull history of {name}")
    for column in ("at", "event", "since", "next cursor", "exchange", "status", "records", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(_when(row.at), row.event, row.since or "(start)", row.next_cursor or "-", str(row.exchange_id or "-"),
                      row.status or "-", str(row.records), mask_ids(row.detail))
    console.print(table if rows else f"No pages pulled from {name} yet.")


@jobs_app.callback()
def jobs(context: typer.Context, home: HomeOption = None) -> None:
    """List the jobs: schedule, last run, status, next run, last error."""
    if context.invoked_subcommand is not None:
        return
    from gateway.scheduler.runner import gateway_jobs, job_rows

    gateway = _gateway(home)
    try:
        rows = job_rows(gateway.engine, gateway_jobs(gateway))
    finally:
        gateway.close()
    table = Table(title="Jobs of `gateway run` (times in China time)")
    for column in ("job", "schedule", "last run", "status", "runs", "next run", "last error / summary"):
        table.add_column(column)
    for row in rows:
        status = row.last_status or "never run"
        if row.running_on:
            status = f"running on {row.running_on}"
        if row.failures:
            status += f" ({row.failures} failed in a row)"
        if row.overruns:
            status += f", {row.overruns} overrun(s)"
        detail = f"[red]{row.last_error}[/]" if row.last_error else (row.last_summary or "")
        table.add_row(row.name, row.schedule, _when(row.last_started_at), status, str(row.runs), _when(row.next_run_at), detail)
    console.print(table)


@jobs_app.command("run")
def jobs_run(name: Annotated[str, typer.Argument(help="The job (see `gateway jobs`).")], home: HomeOption = None) -> None:
    """Run one job now, under its lease."""
    from gateway.scheduler.runner import job_named, run_job

    gateway = _gateway(home)
    try:
        job = job_named(gateway, name)
        try:
            result = run_job(gateway.engine, job, lease_seconds=gateway.settings.job_lease_seconds, force=True)
        finally:
            if job.close is not None:
                job.close()
    finally:
        gateway.close()
    if result is None:
        console.print(f"{name}: running in another process right now (see `gateway jobs`)")
        raise typer.Exit(1)
    console.print(f"{name}: {result.summary}", markup=False, soft_wrap=True)
    if result.error:
        raise typer.Exit(1)
