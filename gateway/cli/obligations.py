"""`gateway obligations`: 义务与时限 — what each party owes, by when, what is late, and the
rates the county is judged by (docs/obligations.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.cli._common import HomeOption, console, settings_for
from gateway.errors import GatewayError

app = typer.Typer(help="义务 Obligations: due dates on the working-day calendar, what is overdue, the rates.", no_args_is_help=True)

STATUS_ZH = {"open": "未完成 open", "met": "按时 met", "late": "逾期完成 late", "waived": "豁免 waived"}


def _gateway(home):  # type: ignore[no-untyped-def]
    from gateway.exchange.lifecycle import Gateway

    return Gateway(settings_for(home))


def _sync(gateway) -> None:  # type: ignore[no-untyped-def]
    """Open what has begun by now: the submissions of the statistical months begun, and the
    platform's assist-checks and notices registered (gateway/platform/) mirrored."""
    from gateway.obligations.platform_mirror import mirror_platform
    from gateway.obligations.service import ensure_submissions
    from gateway.platform import assist_checks
    from gateway.store import session_scope

    assist_checks.sync(gateway.engine, gateway.settings)
    with session_scope(gateway.engine) as session:
        ensure_submissions(session, gateway.settings)
        mirror_platform(session)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise GatewayError(f"{option} {value!r}: write a date YYYY-MM-DD") from None


def list_command(
    overdue: Annotated[bool, typer.Option("--overdue", help="只列逾期 Only those past their due day.")] = False,
    department: Annotated[Optional[str], typer.Option("--department", help="义务方 Only this party's.")] = None,
    due_before: Annotated[Optional[str], typer.Option("--due-before", help="到期不晚于 Due on or before YYYY-MM-DD.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="含已完成 Closed ones too (met, late, waived).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array (id, kind, party, due, status, overdue, ...).")] = False,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="截至 Overdue as of 00:00 China time of YYYY-MM-DD (default: now).")] = None,
    home: HomeOption = None,
) -> None:
    """义务清单 What is owed, soonest due first (open ones unless --all)."""
    from gateway import clock
    from gateway.obligations.service import KIND_NAMES_ZH, list_obligations

    before = _date(due_before, "--due-before")
    day = _date(as_of, "--as-of")
    gateway = _gateway(home)
    try:
        _sync(gateway)
        now = clock.now() if day is None else clock.start_of_day(day).astimezone(dt.UTC)
        views = list_obligations(gateway.engine, overdue=overdue, party=department, due_before=before, include_closed=all_, now=now)
    finally:
        gateway.close()
    if as_json:
        typer.echo(json.dumps([v.as_json() for v in views], ensure_ascii=False, indent=1))
        return
    today = clock.in_china(now).date()
    table = Table(title=f"义务 Obligations — {today} (北京时间 China time)")
    for column in ("编号 id", "种类 kind", "义务方 party", "事项 subject", "到期 due", "剩余天数 days left", "状态 status"):
        table.add_column(column)
    for view in views:
        left = (view.due - today).days
        status = STATUS_ZH.get(view.status, view.status) + (" [red]逾期 overdue[/]" if view.overdue else "")
        table.add_row(
            str(view.id), f"{KIND_NAMES_ZH.get(view.kind, view.kind)} {view.kind}", view.party, view.detail or view.subject,
            view.due.isoformat() + (" (暂定 provisional)" if view.provisional else ""),
            f"[red]{left}[/]" if view.overdue else str(left), status,
        )
    console.print(table if views else "无 Nothing owed.")


app.command("list")(list_command)


@app.command("show")
def show(obligation_id: Annotated[int, typer.Argument(help="编号 The obligation's id.")], home: HomeOption = None) -> None:
    """一项义务 One obligation in full."""
    from gateway.obligations.service import KIND_NAMES_ZH, get_obligation

    gateway = _gateway(home)
    try:
        view = get_obligation(gateway.engine, obligation_id)
    finally:
        gateway.close()
    lines = [
        ("编号 id", str(view.id)), ("种类 kind", f"{KIND_NAMES_ZH.get(view.kind, view.kind)} {view.kind}"),
        ("义务方 party", view.party), ("事项 subject", view.subject), ("说明 detail", view.detail),
        ("规则 rule", view.rule), ("起算 started", view.started_at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()),
        ("到期 due", f"{view.due} 24:00 北京时间" + (" (暂定 provisional: 调休 not yet published)" if view.provisional else "")),
        ("统计月 month", view.period), ("状态 status", STATUS_ZH.get(view.status, view.status) + (" 逾期 overdue" if view.overdue else "")),
    ]
    if view.closed_at:
        lines.append(("完成/豁免 closed", f"{view.closed_at.isoformat()} by {view.closed_by or '-'}"))
    if view.reason:
        lines.append(("理由 reason", view.reason))
    for label, value in lines:
        console.print(f"{label}: ", end="")
        console.print(value, markup=False)


@app.command("waive")
def waive(
    obligation_id: Annotated[int, typer.Argument(help="编号 The obligation's id.")],
    reason: Annotated[str, typer.Option("--reason", help="豁免理由 Why it is waived (kept with who waived it).")],
    by: Annotated[Optional[str], typer.Option("--by", help="经办人 Who waives it (default: $USER).")] = None,
    home: HomeOption = None,
) -> None:
    """豁免 Waive an open obligation: it counts in no rate; the reason and who are kept."""
    from gateway.obligations.service import waive as waive_obligation

    gateway = _gateway(home)
    try:
        row = waive_obligation(gateway.engine, obligation_id, reason, by or os.environ.get("USER") or "operator")
    finally:
        gateway.close()
    console.print(f"已豁免 Waived: obligation {row.id} ({row.kind} {row.subject}) by {row.closed_by}.", markup=False)


@app.command("add")
def add(
    kind: Annotated[str, typer.Argument(help="种类 A kind: feedback-check, forward, update, or one of [obligations.kinds].")],
    party: Annotated[str, typer.Option("--party", help="义务方 Who owes it (a department, township ...).")],
    subject: Annotated[str, typer.Option("--subject", help="事项 What it is about, unique per kind (no personal data), e.g. letter:2026-17.")],
    start: Annotated[Optional[str], typer.Option("--from", help="起算 The day of the event (YYYY-MM-DD; default: now).")] = None,
    detail: Annotated[str, typer.Option("--detail", help="说明 A note (no personal data).")] = "",
    home: HomeOption = None,
) -> None:
    """登记 Record an obligation by hand; its kind's rule (gateway deadlines rules) gives the due day."""
    from gateway import clock
    from gateway.obligations.service import record

    day = _date(start, "--from")
    gateway = _gateway(home)
    try:
        row = record(gateway.engine, gateway.settings, kind=kind, party=party, subject=subject, detail=detail,
                     start=clock.start_of_day(day) if day is not None else None)
    finally:
        gateway.close()
    console.print(f"已登记 Recorded: obligation {row.id}, {row.kind} of {row.party}, due {row.due_date}"
                  + (" (暂定 provisional)" if row.provisional else "") + f" by rule {row.rule}.", markup=False)


@app.command("done")
def done(
    obligation_id: Annotated[int, typer.Argument(help="编号 The obligation's id.")],
    by: Annotated[Optional[str], typer.Option("--by", help="经办人 Who did it (default: $USER).")] = None,
    home: HomeOption = None,
) -> None:
    """办结 Record an open obligation fulfilled now: met by its due day, late after."""
    from gateway.obligations.service import mark_done

    gateway = _gateway(home)
    try:
        row = mark_done(gateway.engine, obligation_id, by or os.environ.get("USER") or "operator")
    finally:
        gateway.close()
    console.print(f"已办结 Done: obligation {row.id} ({row.kind} {row.subject}): {STATUS_ZH.get(row.status, row.status)}.", markup=False)


@app.command("rates")
def rates(
    month: Annotated[Optional[str], typer.Option("--month", help="统计月 YYYY-MM (21st-20th; default: the current one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON object: month, rows per party, totals, platform.")] = False,
    home: HomeOption = None,
) -> None:
    """考核率 The rates of a statistical month: sign-off 签收率, notices 通报率, submissions on time 报送及时率, beside their targets."""
    from gateway import clock
    from gateway.obligations.service import KIND_NAMES_ZH, rates as compute, statistical_month
    from gateway.platform import cycle_report

    gateway = _gateway(home)
    try:
        _sync(gateway)
        now = clock.now()
        chosen = month or statistical_month(clock.in_china(now).date())
        result = compute(gateway.engine, chosen, now)
        platform = cycle_report.build(gateway.engine, chosen, as_of=now)
        platform_row = {
            "period": f"{platform.cycle.submission_start}..{platform.cycle.feedback_end}",
            "received": platform.received, "answered_by_cutoff": platform.answered_by_cutoff,
            "rate": round(platform.answered_by_cutoff / platform.received, 4) if platform.received else None,
        }
    finally:
        gateway.close()
    if as_json:
        typer.echo(json.dumps({
            "month": result.month, "first": result.first.isoformat(), "last": result.last.isoformat(),
            "rows": [r.as_json() for r in result.rows], "totals": [r.as_json() for r in result.totals],
            "platform_feedback": platform_row,
        }, ensure_ascii=False, indent=1))
        return

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    table = Table(title=f"考核率 Rates — 统计月 {result.month} ({result.first}..{result.last})")
    for column in ("种类 kind", "义务方 party", "应完成 due", "按时 met", "逾期完成 late", "未完成 missed", "未到期 pending",
                   "豁免 waived", "比率 rate", "要求 target"):
        table.add_column(column)
    for row in [*result.rows, *result.totals]:
        short = row.target is not None and row.rate is not None and row.rate < row.target
        table.add_row(
            f"{KIND_NAMES_ZH.get(row.kind, row.kind)} {row.kind}", "合计 (all)" if row.party == "(all)" else row.party,
            str(row.due), str(row.met), str(row.late), str(row.missed), str(row.pending), str(row.waived),
            f"[red]{pct(row.rate)}[/]" if short else pct(row.rate), pct(row.target),
        )
    console.print(table if result.rows else f"统计月 {result.month}: 无到期义务 nothing was due.")
    console.print(
        f"国家平台协查反馈率 Platform feedback rate (its own period {platform_row['period']}, `gateway report cycle`): "
        f"{pct(platform_row['rate'])} ({platform_row['answered_by_cutoff']}/{platform_row['received']})",
        markup=False,
    )


@app.command("refresh")
def refresh(home: HomeOption = None) -> None:
    """重算暂定日期 Recompute provisional due days (after `pip install -U chinesecalendar`)."""
    from gateway.obligations.service import refresh_provisional

    gateway = _gateway(home)
    try:
        count = refresh_provisional(gateway.engine, gateway.settings)
    finally:
        gateway.close()
    console.print(f"{count} 项暂定日期已确定 provisional due date(s) made final.")


@app.command("remind")
def remind(
    any_day: Annotated[bool, typer.Option("--any-day", help="今天就发 Send today even if it is not a Friday.")] = False,
    home: HomeOption = None,
) -> None:
    """催办 The weekly reminder: each department its overdue list, the population office a summary (signed, encrypted)."""
    from gateway.reminders.weekly import send_reminders

    gateway = _gateway(home)
    try:
        _sync(gateway)
        outcomes = send_reminders(gateway, only_on_friday=not any_day)
    finally:
        gateway.close()
    if not outcomes:
        console.print("今天不是星期五或无逾期义务 Not a Friday (use --any-day), or nothing overdue.")
    words = {"delivered": "已发送 delivered", "held": "暂缓 held", "already": "今天已发 already sent today", "failed": "失败 failed"}
    for outcome in outcomes:
        line = f"{outcome.department}: {words.get(outcome.status, outcome.status)}, {outcome.items} 项逾期 overdue"
        if outcome.file_name:
            line += f" ({outcome.file_name})"
        if outcome.reason:
            line += f" — {outcome.reason}"
        console.print(line, markup=False)
