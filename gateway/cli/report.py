"""`gateway report cycle`: the exchange cycle's figures (gateway/platform/cycle_report.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.masking import mask_identifiers
from gateway.errors import GatewayError
from gateway.cli._common import HomeOption, console, settings_for

app = typer.Typer(help="Reports.", no_args_is_help=True)


@app.command("cycle")
def cycle(
    month: Annotated[Optional[str], typer.Option("--month", help="YYYY-MM (default: the cycle that contains today).")] = None,
    quarter: Annotated[Optional[str], typer.Option("--quarter", help="YYYYQn: the quarter's ranking view (three months and pooled).")] = None,
    csv_file: Annotated[Optional[Path], typer.Option("--csv", help="Also write the figures as CSV (UTF-8 with BOM).", dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON instead of tables.")] = False,
    as_of: Annotated[
        Optional[str], typer.Option("--as-of", help="Evaluate as of this moment (YYYY-MM-DD[THH:MM], China time) instead of now.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """交换周期报表: requests the other side submitted in the month (21st – 20th) and answered
    by the 27th, the feedback rate (反馈率) against the required 95%, what is overdue;
    submissions per partner and category. `--quarter` shows the province's ranking view."""
    import json

    from gateway import clock
    from gateway.platform import assist_checks
    from gateway.platform.cycle_report import build, build_quarter, cycle_containing, write_csv
    from gateway.exchange.lifecycle import Gateway

    if month is not None and quarter is not None:
        raise GatewayError("Give --month or --quarter, not both")
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
        if quarter is not None:
            ranking = build_quarter(gateway.engine, quarter, as_of=moment)
        else:
            chosen = month or cycle_containing(clock.in_china(moment or clock.now()).date()).month
            report = build(gateway.engine, chosen, as_of=moment)
    finally:
        gateway.close()
    if quarter is not None:
        if csv_file is not None:
            raise GatewayError("--csv is for one month: write each month's CSV with --month")
        _print_quarter(ranking, as_json)
        return
    if csv_file is not None:
        write_csv(report, csv_file)
    if as_json:
        data = report.as_dict()
        if csv_file is not None:
            data["csv"] = str(csv_file)
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    c = report.cycle
    console.print(f"[bold]交换周期 Exchange cycle {c.month}[/]: 报送 submissions {c.submission_start} – {c.submission_end}")
    console.print(f"接收与反馈 receipt and feedback {c.feedback_start} – {c.feedback_end} "
                  f"(截止 cut-off {clock.in_china(c.cutoff):%Y-%m-%d %H:%M} China time)")
    evaluated = clock.in_china(report.evaluated_at).strftime("%Y-%m-%d %H:%M")
    if report.provisional:
        console.print(f"[yellow]暂定 Provisional: evaluated at {evaluated}; the cycle is still open.[/]")
    else:
        console.print(f"按截止时刻统计 Evaluated at the cut-off ({evaluated}).")
    table = Table(title="报送 Submissions per partner and category")
    for column in ("对方地区/单位", "类别", "收到", "接收", "拒收行"):
        table.add_column(column, justify="left" if column in ("对方地区/单位", "类别") else "right")
    for row in report.submissions:
        table.add_row(row.partner, row.category, str(row.received), str(row.accepted), str(row.rejected) if row.category == "(exchanges)" else "")
    console.print(table if report.submissions else "本期无报送 No submissions in the cycle.")
    for title, rows in (("协查请求 Assist-check requests per asking county", report.requests), ("通报 Notices", report.notices)):
        table = Table(title=title)
        for column in ("对方地区/单位", "类别", "对方提交", "截止日前反馈", "其中超期反馈", "未反馈", "逾期"):
            table.add_column(column, justify="left" if column in ("对方地区/单位", "类别") else "right")
        for row in rows:
            table.add_row(row.partner, row.category, str(row.received), str(row.answered), str(row.late), str(row.open),
                          f"[red]{row.overdue}[/]" if row.overdue else "0")
        console.print(table if rows else f"{title}: 本期无 none in the cycle.")
    colour = "green" if report.meets_target else "red"
    console.print(f"[bold]反馈率 Feedback rate[/] (协查 requests): [{colour}]{report.rate_text()}[/]")
    ncolour = "green" if report.notice_rate.meets_target else "red"
    console.print(f"[bold]反馈率 Feedback rate[/] (通报 notices): [{ncolour}]{report.notice_rate.text()}[/]")
    if report.submitted_nothing:
        console.print("[red]本期空白[/]: 本县本期未提交任何协查信息（每个交换周期提供的查询信息个数不能有空白）"
                      " — the county submitted no requests of its own in this cycle.")
    else:
        console.print(f"本县提交 submitted by the county: {report.submitted_requests} 协查请求 request(s), {report.submitted_notices} 通报 notice(s)")
    if report.overdue:
        table = Table(title=f"逾期 Overdue ({len(report.overdue)})")
        for column in ("种类", "id", "XXBH", "对方地区/单位", "类别", "对象", "期限", "逾期天数", "状态"):
            table.add_column(column, no_wrap=column in ("XXBH", "对象"))
        for item in report.overdue:
            table.add_row({"assist-check": "协查", "notice": "通报"}.get(item.kind, item.kind), str(item.item_id), mask_identifiers(item.message_id),
                          item.partner, item.category, item.subject,
                          item.due_date.isoformat() + (" (provisional)" if item.provisional else ""), str(item.days_overdue), item.status)
        console.print(table)
    else:
        console.print("无逾期 Nothing overdue.")
    if csv_file is not None:
        console.print(f"CSV: {csv_file}")


def _print_quarter(ranking, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    import json

    if as_json:
        typer.echo(json.dumps(ranking.as_dict(), ensure_ascii=False, indent=2))
        return
    console.print(f"[bold]季度排序 Quarter {ranking.quarter}[/]" + (" [yellow](暂定 provisional)[/]" if ranking.provisional else ""))
    table = Table(title="反馈率 Feedback rate per month and pooled")
    for column in ("月份", "协查 对方提交", "协查 截止日前反馈", "协查 反馈率", "通报 对方提交", "通报 截止日前反馈", "通报 反馈率"):
        table.add_column(column, justify="left" if column == "月份" else "right")

    def shown(rate) -> str:  # type: ignore[no-untyped-def]
        if rate.rate is None:
            return "—"
        colour = "green" if rate.meets_target else "red"
        return f"[{colour}]{rate.rate:.1%}[/]"

    for month in ranking.months:
        r, n = month.request_rate, month.notice_rate
        table.add_row(month.cycle.month + (" (暂定)" if month.provisional else ""), str(r.received), str(r.answered_in_time), shown(r),
                      str(n.received), str(n.answered_in_time), shown(n))
    r, n = ranking.requests, ranking.notices
    table.add_row(f"[bold]{ranking.quarter} 合计 pooled[/]", str(r.received), str(r.answered_in_time), shown(r),
                  str(n.received), str(n.answered_in_time), shown(n))
    console.print(table)


# -- population reports and the early warning (gateway/population_reports/, docs/reports.md) --

MonthOption = Annotated[Optional[str], typer.Option("--month", help="YYYY-MM: the statistical month (21st of the previous month to the 20th).")]
OutOption = Annotated[Optional[Path], typer.Option("--out", help="Folder for the files (default: HOME/reports).", file_okay=False)]
FormatOption = Annotated[str, typer.Option("--format", help="Comma-separated: xlsx, csv, html (the STEM.json summary is always written).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary (with the balance checks) instead of tables.")]


def _population_report(kind: str, label: str | None, out: Path | None, formats: str, as_json: bool, home: Path | None) -> None:
    import json

    from gateway import clock
    from gateway.exchange.lifecycle import Gateway
    from gateway.population_reports import periods
    from gateway.population_reports.figures import build
    from gateway.population_reports.tables import summary
    from gateway.population_reports.writers import write_all

    settings = settings_for(home)
    chosen = periods.period(kind, label) if label else periods.latest_due(kind, clock.today())
    gateway = Gateway(settings)
    try:
        report = build(gateway.engine, settings, chosen)
    finally:
        gateway.close()
    files = write_all(report, out or settings.home / "reports", [f.strip() for f in formats.split(",") if f.strip()])
    if as_json:
        data = summary(report)
        data["files"] = [str(path) for path in files]
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        p = report.period
        colour = "green" if report.balanced else "red"
        console.print(f"[bold]{p.title}[/] {p.first} – {p.last} (due {p.due}): [{colour}]{report.status}[/]")
        table = Table(title="人口变动 合计 (county totals)")
        for column in ("", "男", "女", "合计"):
            table.add_column(column, justify="left" if not column else "right")
        from gateway.population_reports.events import ITEM_LABELS

        for item, counts in report.changes[-1].counts.items():
            table.add_row(ITEM_LABELS[item], *(str(n) for n in counts))
        console.print(table)
        ratio = report.sex_ratio
        console.print(f"出生人口 births occurred {report.occurred[2]}; sex ratio at birth {'—' if ratio is None else f'{ratio:.1f}'}")
        for failure in report.failures:
            console.print(f"[red]不平衡[/] {failure.text()}")
        for note in report.notes:
            console.print(f"[yellow]note[/] {note}")
        for path in files:
            console.print(f"written: {path}")
    if not report.balanced:
        raise typer.Exit(3)


@app.command("monthly")
def monthly(month: MonthOption = None, out: OutOption = None, formats: FormatOption = "xlsx,csv,html", as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Monthly population changes (人口变动月报) by division and sex, balance-checked (default: the latest month due)."""
    _population_report("monthly", month, out, formats, as_json, home)


@app.command("quarterly")
def quarterly(
    quarter: Annotated[Optional[str], typer.Option("--quarter", help="YYYYQn, e.g. 2026Q3.")] = None,
    out: OutOption = None, formats: FormatOption = "xlsx,csv,html", as_json: JsonOption = False, home: HomeOption = None,
) -> None:
    """Quarterly report (季报), with women aged 15–49 moving in and out."""
    _population_report("quarterly", quarter, out, formats, as_json, home)


@app.command("half-year")
def half_year(
    year: Annotated[Optional[str], typer.Option("--year", help="YYYY (first half) or YYYYH1 / YYYYH2.")] = None,
    out: OutOption = None, formats: FormatOption = "xlsx,csv,html", as_json: JsonOption = False, home: HomeOption = None,
) -> None:
    """Half-year report (半年报), due by 28 June."""
    _population_report("half-year", year, out, formats, as_json, home)


@app.command("annual")
def annual(
    year: Annotated[Optional[str], typer.Option("--year", help="YYYY.")] = None,
    out: OutOption = None, formats: FormatOption = "xlsx,csv,html", as_json: JsonOption = False, home: HomeOption = None,
) -> None:
    """Annual report (年报), due by 10 January of the next year."""
    _population_report("annual", year, out, formats, as_json, home)


@app.command("warning")
def warning(month: MonthOption = None, as_json: JsonOption = False, home: HomeOption = None) -> None:
    """The monthly early warning (预警): sex ratio at birth, unregistered births, overdue
    assist-checks, silent departments (a submission missed), missed submissions. Exit status 4
    when anything is raised."""
    import json

    from gateway import clock
    from gateway.platform import assist_checks
    from gateway.exchange.lifecycle import Gateway
    from gateway.population_reports.periods import month_of
    from gateway.population_reports.warning import build_warning

    settings = settings_for(home)
    gateway = Gateway(settings)
    try:
        assist_checks.sync(gateway.engine, settings)
        result = build_warning(gateway.engine, settings, month or month_of(clock.today()))
    finally:
        gateway.close()
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        p = result.period
        console.print(f"[bold]预警 early warning {p.label}[/] ({p.first} – {p.last}), evaluated at "
                      f"{clock.in_china(result.evaluated_at):%Y-%m-%d %H:%M} China time: {len(result.raised)} warning(s)")
        for line in result.lines:
            console.print(("[red]WARNING[/] " if line.raised else "[green]ok[/] ") + line.text)
            for detail in line.details if line.raised else []:
                console.print(f"    {detail}")
        for note in result.notes:
            console.print(f"[yellow]note[/] {note}")
    if result.raised:
        raise typer.Exit(4)
