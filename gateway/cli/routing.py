"""`gateway agreements`, `gateway deliveries`, `gateway audit`: routing under the sharing
agreements (docs/routing.md). Tables never show a full ID number or name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway import clock
from gateway.cli._common import HomeOption, console, settings_for
from gateway.masking import mask_file_name

agreements_app = typer.Typer(help="Sharing agreements: who receives which records and fields.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Deliveries to the entitled departments, and their acknowledgements.", no_args_is_help=True)
audit_app = typer.Typer(help="审计 Who received which records, when; the audit log (events: sign-ins, refusals, views, deliveries); and a scan for unmasked ID numbers.", no_args_is_help=True)


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _gateway(home: Optional[Path]):  # type: ignore[no-untyped-def]
    from gateway.exchange.lifecycle import Gateway

    return Gateway(settings_for(home))


# -- agreements ----------------------------------------------------------------------


@agreements_app.command("check")
def agreements_check(home: HomeOption = None) -> None:
    """Validate the sharing agreements against the contracts and departments; exit 1 on any error."""
    from gateway.routing.agreements import check_agreements

    settings = settings_for(home)
    result = check_agreements(settings)
    console.print(f"Agreements from: {', '.join(result.sources) or '(none: set agreements_file in gateway.toml)'}")
    for compiled in result.agreements:
        a = compiled.agreement
        columns = sum(len(v) for v in compiled.columns.values())
        console.print(
            f"  [green]ok[/]   {a.name}: {a.recipient} receives {', '.join(a.contracts)} "
            f"({columns} fields, {a.format}, {a.schedule})",
            highlight=False,
        )
    for problem in result.warnings:
        console.print("  [yellow]warn[/] ", end="")
        console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    for problem in result.errors:
        console.print("  [red]FAIL[/] ", end="")
        console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if result.errors:
        console.print(f"[bold red]{len(result.errors)} error(s)[/]: nothing is routed until they are fixed.")
        raise typer.Exit(1)
    console.print(f"[bold green]{len(result.agreements)} agreement(s) valid[/]")


@agreements_app.command("list")
def agreements_list(home: HomeOption = None) -> None:
    """Every agreement: recipient, contracts, format, schedule, purpose."""
    from gateway.routing.agreements import load_agreements

    result = load_agreements(settings_for(home))
    table = Table()
    for column in ("name", "recipient", "contracts", "fields", "filters", "发送方 senders", "format", "schedule", "purpose"):
        table.add_column(column)
    for compiled in result.agreements:
        a = compiled.agreement
        filters = "; ".join(sorted({part for c in a.contracts for part in a.filters.describe(c)}))
        senders = (", ".join(a.senders) or "all") + ("" if a.include_own else f" (not {a.recipient})")
        table.add_row(
            a.name, a.recipient, ", ".join(a.contracts), str(sum(len(v) for v in compiled.columns.values())),
            filters or "-", senders, a.format, a.schedule, a.purpose,
        )
    console.print(table)
    for problem in result.errors:
        console.print(f"[red]error:[/] {problem}", markup=True, highlight=False)


@agreements_app.command("explain")
def agreements_explain(
    recipient: Annotated[str, typer.Argument(help="The receiving department (police, school, ...).")],
    home: HomeOption = None,
) -> None:
    """What a department receives, field by field: every field of each contract, with its
    column header and whether the department sees it."""
    from gateway.errors import UnknownName
    from gateway.plugins import contract as registered_contract
    from gateway.routing.agreements import FORMAT_LABELS, SCHEDULE_LABELS, load_agreements
    from gateway.routing.minimize import contract_fields

    from gateway.config import effective_departments
    from gateway.plugins import get_manager

    settings = settings_for(home)
    departments = effective_departments(settings, get_manager().adapters().values())  # an installed adapter's too
    if recipient not in departments:
        raise UnknownName("department", recipient, departments)
    result = load_agreements(settings)
    mine = result.for_recipient(recipient)
    if not mine:
        console.print(f"{recipient} receives nothing: no valid agreement names it as recipient.")
    for compiled in mine:
        a = compiled.agreement
        console.print(f"\n[bold]Agreement {a.name}[/]: {recipient} receives {', '.join(a.contracts)}", highlight=False)
        console.print(f"  purpose:  {a.purpose}", markup=False, highlight=False)
        console.print(f"  format:   {FORMAT_LABELS[a.format]}  (files DELIVERY-<id>.{'jsonl' if a.format == 'jsonl' else 'csv'}.gpg)", highlight=False)
        console.print(f"  schedule: {SCHEDULE_LABELS[a.schedule]}", highlight=False)
        if compiled.township is not None and compiled.divisions is not None:
            console.print(f"  范围 scope: 仅本乡镇（{compiled.divisions.name_of(compiled.township)}）的人员 / only the people placed "
                          "in its villages by divisions.csv; unplaced records go to no township", highlight=False)
        console.print(f"  发送方 senders: {compiled.describe_senders()}", highlight=False)
        console.print(
            "  含本部门自己的记录 own records: "
            + ("是，含 {0} 自己发送的记录 / yes, {0}'s own exchanges included" if a.include_own
               else "否，{0} 自己发送的记录不发回 / no, {0}'s own exchanges are never sent back to it").format(recipient),
            highlight=False,
        )
        console.print(f"  sign off (签收) by rule {a.sign_off_rule} (gateway deadlines rules): drop ACK-<delivery id>.json into its inbox",
                      highlight=False)
        for contract in a.contracts:
            described = contract_fields(registered_contract(contract))
            allowed = set(compiled.columns.get(contract, []))
            filters = a.filters.describe(contract)
            console.print(
                f"  [bold]{contract}[/]: " + ("only records where " + "; ".join(filters) if filters else "every record"),
                highlight=False,
            )
            table = Table(show_edge=False, pad_edge=False)
            for column in ("field", "column header", "personal data", "receives"):
                table.add_column(column)
            for info in described.leaves:
                gets = info.path in allowed
                table.add_row(
                    info.path, info.label if gets else "", info.kind or "",
                    "[green]yes[/]" if gets else "[dim]no[/]",
                )
            console.print(table)
            console.print(
                f"  {len(allowed)} of {len(described.leaves)} fields; each row also carries 记录号 (a stable "
                "reference), 版本 (version) and 变更 (新增 new / 更正 correction / 撤回 withdrawal)",
                highlight=False,
            )
    if result.errors:
        console.print(
            f"[red]{len(result.errors)} agreement error(s)[/]: see `gateway agreements check`; nothing is routed until fixed."
        )
        raise typer.Exit(1)


def _date(option: str, value: str) -> dt.date:
    from gateway.errors import GatewayError

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise GatewayError(f"{option} {value!r}: 请写日期 YYYY-MM-DD / write a date YYYY-MM-DD") from None


@agreements_app.command("apply")
def agreements_apply(
    name: Annotated[str, typer.Argument(help="The agreement (its name in agreements.toml).")],
    since: Annotated[str, typer.Option("--since", help="First day (China date, YYYY-MM-DD) an exchange was received.")],
    until: Annotated[
        Optional[str], typer.Option("--until", help="Last day (YYYY-MM-DD, included); default: today (the business date).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """协议补发 / Route the records of exchanges received since a date under a new or changed
    agreement, once: nothing the recipient received under it is sent again (audited)."""
    from gateway.cli._common import setup_logging as _logging
    from gateway.routing.apply import apply_agreement

    first = _date("--since", since)
    last = _date("--until", until) if until else clock.today()
    _logging()
    gateway = _gateway(home)
    try:
        report = apply_agreement(gateway.routing, name, first, last)
    finally:
        gateway.close()
    console.print(
        f"协议 {report.agreement}（接收方 {report.recipient}）补发 {report.since} 至 {report.until} 收到的交换 / "
        f"agreement {report.agreement} (recipient {report.recipient}) applied to exchanges received {report.since} to {report.until}",
        highlight=False,
    )
    lines = [
        ("查看交换 / exchanges looked at", report.exchanges),
        ("查看记录 / records looked at", report.records),
        ("本次发送 / delivered now", report.delivered),
        ("已排入、待发送 / routed, waiting (key, order or batch)", report.waiting),
        ("此前已发送，不再发送 / delivered before, not sent again", report.already),
        ("已在未发出的交付中 / already in a delivery not yet sent", report.pending),
        ("发送方不符（含本部门自己的记录）/ left out: not from its senders, or the recipient's own", report.left_out_senders),
        ("筛选条件或乡镇范围不符 / left out by its filters or township scope", report.left_out_filters),
    ]
    for label, count in lines:
        console.print(f"  {label}: {count}", highlight=False)
    for outcome in sorted(report.outcomes, key=lambda o: o.delivery_id):
        console.print(
            f"  交付 delivery {outcome.delivery_id}: {outcome.status}"
            + (f", {outcome.records} 条记录 records" if outcome.records else "")
            + (f" ({outcome.reason})" if outcome.reason else ""),
            markup=False, highlight=False,
        )
    if not report.to_send:
        console.print("没有需要补发的记录：本次未发送任何记录 / nothing to apply: no record was sent this time.")


# -- deliveries ----------------------------------------------------------------------


@deliveries_app.command("list")
def deliveries_list(
    recipient: Annotated[Optional[str], typer.Option(help="Only this recipient department.")] = None,
    status: Annotated[
        Optional[str],
        typer.Option(help="Only this status: open, held, waiting, prepared, delivered, acknowledged, empty, cancelled."),
    ] = None,
    unacknowledged: Annotated[
        bool, typer.Option("--unacknowledged", help="Only delivered files not acknowledged by their deadline.")
    ] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Also empty and cancelled deliveries.")] = False,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 100,
    home: HomeOption = None,
) -> None:
    """Deliveries, newest first, with their status and, for held ones, why."""
    from sqlmodel import Session, select

    from gateway.store import create_schema, make_engine
    from gateway.store.models import Delivery

    settings = settings_for(home)
    engine = make_engine(settings.db_url)
    now = clock.now()  # the business clock: the sign-off deadlines are its days
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)  # type: ignore[union-attr]
    if recipient:
        query = query.where(Delivery.recipient == recipient)
    if status:
        query = query.where(Delivery.status == status)
    elif unacknowledged:
        query = query.where(Delivery.status == "delivered", Delivery.ack_due_at < now)  # type: ignore[operator]
    elif not show_all:
        query = query.where(Delivery.status.notin_(("empty", "cancelled")))  # type: ignore[attr-defined]
    try:
        create_schema(engine)
        with Session(engine) as session:
            rows = session.exec(query).all()
    finally:
        engine.dispose()
    title = "Unacknowledged deliveries past their deadline" if unacknowledged else "Deliveries"
    table = Table(title=title)
    columns = ["id", "recipient", "agreement", "contract", "status", "records", "file", "delivered (UTC)"]
    columns += ["ack due (UTC)", "overdue"] if unacknowledged else ["acknowledged (UTC)", "reason"]
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "file", "status"))
    for d in rows:
        records = str(d.records) + (f" ({d.corrections} corr.)" if d.corrections else "")
        cells = [str(d.id), d.recipient, d.agreement, d.contract, d.status, records, d.file_name or "", _when(d.delivered_at)]
        if unacknowledged:
            overdue = now - d.ack_due_at if d.ack_due_at else dt.timedelta()
            cells += [_when(d.ack_due_at), f"{overdue.days}d {overdue.seconds // 3600}h"]
        else:
            cells += [_when(d.acknowledged_at), d.reason or ""]
        table.add_row(*cells)
    console.print(table)
    if unacknowledged:
        console.print(f"{len(rows)} delivered file(s) past their acknowledgement deadline.")


@deliveries_app.command("show")
def deliveries_show(delivery_id: int, home: HomeOption = None) -> None:
    """One delivery: what it carried (masked record keys), its file, its acknowledgement."""
    from gateway.store.audit import events, received
    from gateway.store import create_schema, make_engine
    from gateway.store.models import Delivery

    settings = settings_for(home)
    engine = make_engine(settings.db_url)
    try:
        create_schema(engine)
        from sqlmodel import Session

        with Session(engine) as session:
            d = session.get(Delivery, delivery_id)
        if d is None:
            console.print(f"[red]No delivery {delivery_id}.[/] See `gateway deliveries list --all`.")
            raise typer.Exit(1)
        console.print(f"[bold]Delivery {d.id}[/] to {d.recipient} under {d.agreement}: {d.contract}, {d.format}, {d.schedule} ({d.batch_key})", highlight=False)
        console.print(f"status {d.status}" + (f": {d.reason}" if d.reason else ""), markup=False, highlight=False)
        console.print(f"file {d.file_name or '-'}  sha256 {d.sha256 or '-'}  size {d.size or '-'}", highlight=False)
        console.print(f"records {d.records} (corrections {d.corrections}, withdrawals {d.withdrawals})", highlight=False)
        console.print(f"encrypted to {d.encrypted_to or '-'}; signed by {d.signing_key or '-'}", highlight=False)
        console.print(
            f"created {_when(d.created_at)}  due {_when(d.due_at)}  delivered {_when(d.delivered_at) or '-'}  "
            f"ack due {_when(d.ack_due_at) or '-'}  acknowledged {_when(d.acknowledged_at) or '-'}"
            + (f" (signed by {d.ack_signed_by})" if d.ack_signed_by else ""),
            highlight=False,
        )
        carried = received(engine, delivery_id=delivery_id, limit=10_000)
        if carried:
            table = Table(title="Records carried (keys masked)")
            for column in ("record", "contract", "version", "change", "from exchange"):
                table.add_column(column)
            for r in carried:
                table.add_row(r.record, r.contract, str(r.version), r.change, str(r.exchange_id))
            console.print(table)
        history = events(engine, delivery_id=delivery_id)
        if history:
            table = Table(title="Events")
            for column in ("at (UTC)", "action", "detail"):
                table.add_column(column, overflow="fold")
            for event in reversed(history):
                table.add_row(_when(event.at), event.action, event.detail)
            console.print(table)
    finally:
        engine.dispose()


@deliveries_app.command("send")
def deliveries_send(home: HomeOption = None) -> None:
    """One routing pass now, without taking drops: route accepted exchanges, take
    acknowledgements, prepare and send what is due (held deliveries are tried again,
    for example after `gateway keys import`)."""
    from gateway.cli._common import setup_logging as _logging

    _logging()
    gateway = _gateway(home)
    try:
        report = gateway.routing.run_pass()
    finally:
        gateway.close()
    table = Table(title="Deliveries this pass")
    for column in ("id", "recipient", "status", "file", "records", "reason"):
        table.add_column(column, overflow="fold")
    for o in sorted(report.deliveries, key=lambda o: o.delivery_id):
        table.add_row(str(o.delivery_id), o.recipient, o.status, o.file_name or "", str(o.records), o.reason or "")
    if report.deliveries:
        console.print(table)
    for ack in report.acknowledgements:
        console.print(f"acknowledgement {mask_file_name(ack.file_name)} from {ack.department}: {ack.status}" + (f" ({ack.reason})" if ack.reason else ""), markup=False)
    if not report.deliveries and not report.acknowledgements:
        console.print("Nothing due.")
    if report.problems:
        raise typer.Exit(1)


# -- audit ---------------------------------------------------------------------------


@audit_app.command("list")
def audit_list(
    recipient: Annotated[Optional[str], typer.Option(help="Only this recipient department.")] = None,
    record: Annotated[Optional[str], typer.Option(help="Only this record (its business key, e.g. hospital|Q440781260001).")] = None,
    contract: Annotated[Optional[str], typer.Option(help="Only this contract.")] = None,
    exchange: Annotated[Optional[int], typer.Option(help="Only records of this exchange.")] = None,
    delivery: Annotated[Optional[int], typer.Option(help="Only this delivery.")] = None,
    limit: Annotated[int, typer.Option(help="How many rows, newest first.")] = 200,
    events_too: Annotated[bool, typer.Option("--events", help="Also the delivery and acknowledgement events.")] = False,
    home: HomeOption = None,
) -> None:
    """Who received which records, when (record keys masked), and whether they acknowledged."""
    from gateway.store.audit import events, received
    from gateway.store import create_schema, make_engine

    settings = settings_for(home)
    engine = make_engine(settings.db_url)
    try:
        create_schema(engine)
        rows = received(
            engine, recipient=recipient, business_key=record, contract=contract, exchange_id=exchange,
            delivery_id=delivery, limit=limit,
        )
        table = Table(title="Records received (keys masked)")
        for column in ("delivered (UTC)", "recipient", "delivery", "agreement", "contract", "record", "version", "change", "exchange", "acknowledged (UTC)"):
            table.add_column(column, overflow="fold", no_wrap=column in ("record", "delivered (UTC)", "acknowledged (UTC)"))
        for r in rows:
            table.add_row(
                _when(r.delivered_at), r.recipient, str(r.delivery_id), r.agreement, r.contract,
                r.record, str(r.version), r.change, str(r.exchange_id), _when(r.acknowledged_at) or "-",
            )
        console.print(table)
        if events_too:
            table = Table(title="Events")
            for column in ("at (UTC)", "department", "action", "delivery", "detail"):
                table.add_column(column, overflow="fold")
            for event in events(engine, department=recipient, limit=limit):
                table.add_row(_when(event.at), event.department, event.action, str(event.delivery_id or ""), event.detail)
            console.print(table)
    finally:
        engine.dispose()


@audit_app.command("events")
def audit_events(
    user: Annotated[Optional[str], typer.Option(help="只看此账户 Only this console account (console entries only).")] = None,
    action: Annotated[Optional[str], typer.Option(help="只看此操作 Only this action, e.g. sign-in-refused, forbidden, console-view, delivered.")] = None,
    department: Annotated[Optional[str], typer.Option(help="只看此部门 Only this department.")] = None,
    date_from: Annotated[Optional[dt.datetime], typer.Option("--from", formats=["%Y-%m-%d"], help="起 First day, China time (YYYY-MM-DD).")] = None,
    date_to: Annotated[Optional[dt.datetime], typer.Option("--to", formats=["%Y-%m-%d"], help="止 Last day, China time (YYYY-MM-DD).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="每页条数 How many entries, newest first.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="跳过 Skip this many (the next page: --offset LIMIT).")] = 0,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="导出 Write the whole filtered list to this CSV file (UTF-8 with BOM, masked).")] = None,
    home: HomeOption = None,
) -> None:
    """审计日志 The audit log as the console's /audit shows it: the routing events and the
    console's entries (sign-ins, refusals, 403s, views naming their subjects, reveals,
    downloads, unlocks, password changes) in one list, newest first, masked; filtered, paged."""
    from gateway.store import audit_log, create_schema, make_engine
    from gateway.store.console_audit import ConsoleAudit

    settings = settings_for(home)
    engine = make_engine(settings.db_url)
    try:
        create_schema(engine)
        log = ConsoleAudit(settings.db_url, main=engine)
        try:
            filters = audit_log.AuditFilter(
                user=user or None, action=action or None, department=department or None,
                date_from=date_from.date() if date_from else None, date_to=date_to.date() if date_to else None,
            )
            if csv_path is not None:
                with open(csv_path, "wb") as out:
                    for chunk in audit_log.csv_chunks(engine, log.engine, filters):
                        out.write(chunk)
                log.record("audit-export", user=_os_user(), role="cli", client="local", route="gateway audit events --csv",
                           detail=f"{_os_user()} exported the audit log as CSV to {csv_path.name}")
                console.print(f"已导出 / exported: {csv_path}", markup=False)
                return
            found = audit_log.page(engine, log.engine, filters, limit=limit, offset=offset)
        finally:
            log.dispose()
    finally:
        engine.dispose()
    table = Table(title=f"审计日志 Audit log: {found.total} 条 entries, {offset + 1 if found.entries else 0}-{offset + len(found.entries)}")
    for column in ("时间 at (UTC+8)", "来源 source", "操作 action", "用户 user", "角色 role", "部门 department", "客户端 client",
                   "请求 route", "对象 subjects", "详情 detail"):
        table.add_column(column, overflow="fold")
    for e in found.entries:
        table.add_row(clock.in_china(e.at).strftime("%Y-%m-%d %H:%M:%S"), e.source, e.action, e.user or "", e.role or "", e.department,
                      e.client or "", e.route or "", e.subjects, e.detail)
    console.print(table)
    if offset + len(found.entries) < found.total:
        console.print(f"下一页 / next page: --offset {offset + limit}", markup=False)


def _os_user() -> str:
    import getpass

    return getpass.getuser()


@audit_app.command("scan")
def audit_scan(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Log files, reports or folders to scan.")],
    home: HomeOption = None,  # noqa: ARG001 - accepted like every command's; the scan needs no home
) -> None:
    """Look for full ID numbers (an 18-character number with a right check character and a
    possible birth date) and full phone numbers (mobile or landline shaped) in logs, reports
    and command output; exit 1 if any is found. The findings are shown masked."""
    from gateway.store.audit import IdScanner

    scanner = IdScanner(any_phone=True)
    findings, files = [], 0
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                files += 1
                findings += scanner.scan_file(file)
    for finding in findings:
        console.print(str(finding), markup=False, highlight=False)
    console.print(f"{files} file(s) scanned: {len(findings)} unmasked ID or phone number(s).")
    raise typer.Exit(1 if findings else 0)


__all__ = ["agreements_app", "audit_app", "deliveries_app"]
