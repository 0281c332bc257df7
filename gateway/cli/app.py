"""The `gateway` command."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gateway.cli._common import setup_logging as _logging
from gateway.config import default_home, load_settings
from gateway.errors import GatewayError
from gateway.masking import mask_file_name, mask_file_path, mask_identifiers

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway

# Tracebacks never show local variables: they would print records' personal data.
app = typer.Typer(
    help="Interagency data-exchange gateway (部门间数据交换网关).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
adapters_app = typer.Typer(help="Adapter plugins.", no_args_is_help=True)
exchanges_app = typer.Typer(help="Exchanges received.", no_args_is_help=True)
receipts_app = typer.Typer(help="Signed receipts.", no_args_is_help=True)
contracts_app = typer.Typer(help="Shared contracts and their JSON Schemas.", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")
app.add_typer(exchanges_app, name="exchanges")
app.add_typer(receipts_app, name="receipts")
app.add_typer(contracts_app, name="contracts")

T = TypeVar("T")

# Off a terminal (CI logs, pipes) rich assumes 80 columns and truncates the tables.
console = Console(width=None if sys.stdout.isatty() else 160)
HomeOption = Annotated[
    Optional[Path],
    typer.Option("--home", help="Gateway home (default: $GATEWAY_HOME or ./gateway-home).", show_default=False),
]


def _gateway(home: Path | None):
    from gateway.exchange.lifecycle import Gateway

    settings = load_settings(home)
    if not (settings.home / "gateway.toml").exists():
        raise GatewayError(f"No gateway home at {settings.home}. Run `gateway init --home {settings.home}` first")
    return Gateway(settings)


def _readonly_engine(home: Path | None):  # type: ignore[no-untyped-def]
    """For listings: reads alongside a running gateway without waiting for its writes."""
    from gateway.store import make_engine

    settings = load_settings(home)
    if not (settings.home / "gateway.toml").exists():
        raise GatewayError(f"No gateway home at {settings.home}. Run `gateway init --home {settings.home}` first")
    return make_engine(settings.db_url, readonly=True)


# -- init / run / ingest ----------------------------------------------------------


@app.command()
def init(home: HomeOption = None) -> None:
    """Create the gateway home: settings, database, every department's mailbox, signing key."""
    from gateway.exchange.home import init_home

    from gateway.config import effective_departments
    from gateway.exchange.home import ensure_adapter_mailboxes
    from gateway.intake.transports import LocalMailbox
    from gateway.plugins import get_manager

    settings, fingerprint, created = init_home(home or default_home())
    adapters = list(get_manager().adapters().values())
    mailbox = LocalMailbox(settings.mailbox_root)
    made = ensure_adapter_mailboxes(settings, adapters, lambda _department: mailbox)
    console.print(f"Gateway home: [bold]{settings.home}[/]")
    console.print(f"Mailbox:      {settings.mailbox_root} ({len(effective_departments(settings, adapters))} departments)")
    for message in made:
        console.print(message, markup=False)
    console.print(f"Database:     {settings.db_url}")
    console.print(f"Signing key:  {fingerprint} ({'new' if created else 'existing'})")
    console.print(f"Public key:   {settings.keys_dir} (publish it; verifiers need nothing else)")
    from gateway.register.divisions import write_example

    if write_example(settings.home):
        console.print(f"Divisions:    {settings.home / 'divisions.csv'} (an example: write the county's townships and villages)")


def _warn_unread_folders(gateway: Gateway) -> None:
    from gateway.exchange.home import unread_inbox_folders, unread_inbox_message

    for folder in unread_inbox_folders(gateway.settings, gateway.plugins.adapters().values()):
        console.print(unread_inbox_message(folder, gateway.settings.mailbox_root / folder), markup=False, style="yellow")


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="One pass over every inbox, then exit.")] = False,
    home: HomeOption = None,
) -> None:
    """Poll every inbox and process what departments drop, and run the scheduled pulls
    and assist-check jobs of gateway.toml (`gateway jobs`); Ctrl-C stops cleanly."""
    _logging()
    if once:
        gateway = _gateway(home)
        try:
            for message in gateway.ensure_adapter_mailboxes(log_them=False):
                console.print(message, markup=False)
            _warn_unread_folders(gateway)
            started = time.time()  # job runs are kept in real time, as the scheduler keeps them
            outcomes = gateway.run_once()
            _summary(outcomes)
            _record_inbox_pass(gateway, started, outcomes)
            if gateway.settings.mail is not None:  # the office's mailbox (issue 22): one pass of the `mail` job
                from gateway.mail.intake import mail_pass
                from gateway.mail.reply import SmtpReplier

                done = mail_pass(gateway, SmtpReplier.configured(gateway.settings))
                if done is not None:
                    console.print(f"邮箱 Mailbox: {done.summary()}", markup=False)
        finally:
            gateway.close()
        return
    # The jobs the plugins register (`register_jobs`: inboxes, pulls, assist checks, ...;
    # gateway/scheduler/runner.py): each due job runs in its own thread, under its lease
    # when several processes run.
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import Job, JobScheduler, gateway_jobs

    def start() -> tuple[Gateway, list[Job], JobScheduler]:
        gateway = _gateway(home)
        try:
            jobs = gateway_jobs(gateway)
            scheduler = JobScheduler(
                gateway.engine, jobs, lease_seconds=gateway.settings.job_lease_seconds,
                database_retry_max=gateway.settings.database_retry_max_seconds,
            )
            return gateway, jobs, scheduler
        except BaseException:
            gateway.close()
            raise

    gateway, jobs, scheduler = _when_database_works(start, load_settings(home).database_retry_max_seconds)
    try:
        stop = False

        def _stop(_signum, _frame):  # type: ignore[no-untyped-def]
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        for message in gateway.ensure_adapter_mailboxes(log_them=False):
            console.print(message, markup=False)
        _warn_unread_folders(gateway)
        console.print(f"Polling {len(gateway.departments())} inboxes every {gateway.settings.poll_seconds:g}s; Ctrl-C stops.")
        for job in jobs[1:]:
            console.print(f"Job {job.name}: {job.schedule_text} ({job.description})", markup=False)
        scheduler.start()
        try:
            while not stop:
                scheduler.run_pending()
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            scheduler.stop()
        console.print("Stopped.")
    finally:
        gateway.close()


def _when_database_works(start: Callable[[], T], most: float) -> T:
    """`start()`, tried again with back-off while the database is away, read-only or full:
    a long-running gateway started during a database fault waits instead of exiting."""
    from gateway.store.faults import Backoff, database_fault

    backoff = Backoff(most=most)
    while True:
        try:
            return start()
        except Exception as exc:
            fault = database_fault(exc)
            if fault is None:
                raise
            delay = backoff.failed()
            logging.getLogger("gateway").error("cannot start yet: %s; next try in %.0fs", fault, delay)
            time.sleep(delay)  # Ctrl-C ends the wait


@app.command()
def worker(
    home: HomeOption = None,
    worker_id: Annotated[Optional[str], typer.Option("--id", help="This worker's name in claims and logs (default: host:pid).")] = None,
) -> None:
    """Run as one of several processes sharing one database (PostgreSQL) and one mailbox:
    each found file is claimed by exactly one worker; a dead worker's claim is taken over.
    Scheduled jobs run on one worker at a time through their lease rows."""
    if worker_id:
        os.environ["GATEWAY_WORKER_ID"] = worker_id
    run(once=False, home=home)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file to ingest.")],
    adapter: Annotated[str, typer.Option("--adapter", help="Adapter name (see `gateway adapters list`).")],
    home: HomeOption = None,
) -> None:
    """Ingest one file by hand with a named adapter; the file is left where it is."""
    gateway = _gateway(home)
    try:
        size = file.stat().st_size
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
            console=console, transient=True, disable=size < 5_000_000,
        ) as progress:
            task = progress.add_task(file.name, total=size)
            outcome = gateway.ingest(file, adapter, progress=lambda n: progress.advance(task, n))
        _summary([outcome])
    finally:
        gateway.close()


def _record_inbox_pass(gateway, started, outcomes) -> None:  # type: ignore[no-untyped-def]
    """`run --once` is one pass of the `inboxes` job: its last run, for `gateway jobs` and the console."""
    from gateway.scheduler.runner import gateway_jobs, record_run_by_hand

    inbox = next((job for job in gateway_jobs(gateway) if job.name == "inboxes"), None)
    if inbox is not None:
        import datetime as dt

        record_run_by_hand(gateway.engine, inbox, dt.datetime.fromtimestamp(started, dt.UTC), f"{len(outcomes)} file(s) (gateway run --once)")


def _summary(outcomes) -> None:  # type: ignore[no-untyped-def]
    table = Table(title="Exchanges this pass")
    for column in ("exchange", "department", "file", "status", "accepted", "rejected", "duplicate", "receipt"):
        table.add_column(column, justify="right" if column in {"exchange", "accepted", "rejected", "duplicate"} else "left")
    for o in outcomes:
        status = o.status if not o.reason else f"{o.status}: {mask_identifiers(o.reason)}"
        table.add_row(str(o.exchange_id), o.department, mask_file_name(o.file_name), status, str(o.accepted), str(o.rejected), str(o.duplicates),
                      mask_file_path(o.receipt) if o.receipt else "")
    if outcomes:
        console.print(table)
    else:
        console.print("No files waiting.")


# -- exchanges -------------------------------------------------------------------


@exchanges_app.command("list")
def exchanges_list(
    department: Annotated[Optional[str], typer.Option(help="Only this department.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    home: HomeOption = None,
) -> None:
    """List exchanges, newest first."""
    from sqlmodel import Session

    from gateway.exchange.lifecycle import iter_exchanges

    engine = _readonly_engine(home)
    table = Table()
    for column in ("id", "received", "department", "file", "adapter", "status", "rows", "accepted", "rejected", "duplicate"):
        table.add_column(column)
    with Session(engine) as session:
        for e in iter_exchanges(session, department, limit):
            table.add_row(
                str(e.id), e.received_at.isoformat(sep=" "), e.department, mask_file_name(e.file_name), e.adapter or "",
                e.status + (f" (of {e.duplicate_of})" if e.duplicate_of else ""),
                str(e.rows), str(e.accepted), str(e.rejected), str(e.duplicates),
            )
    console.print(table)
    engine.dispose()


@exchanges_app.command("show")
def exchanges_show(exchange_id: int, home: HomeOption = None) -> None:
    """Show one exchange: counts, receipt and its row errors (values masked)."""
    from sqlmodel import Session, select

    from gateway.store import Exchange, Receipt, RowError

    engine = _readonly_engine(home)
    with Session(engine) as session:
        e = session.get(Exchange, exchange_id)
        if e is None:
            console.print(f"[red]No exchange {exchange_id}.[/] See `gateway exchanges list`.")
            raise typer.Exit(1)
        receipt = session.exec(select(Receipt).where(Receipt.exchange_id == exchange_id)).first()
        console.print(f"[bold]Exchange {e.id}[/]  {e.department}  {mask_file_name(e.file_name)}")
        console.print(f"status {e.status}" + (f" (duplicate of {e.duplicate_of})" if e.duplicate_of else "") + (f": {e.reason}" if e.reason else ""))
        console.print(f"sha256 {e.sha256}  size {e.size}  encoding {e.encoding}  adapter {e.adapter}")
        console.print(f"received {e.received_at}  processed {e.processed_at}  archived {mask_file_path(e.archived_path or '')}")
        console.print(f"rows {e.rows}: accepted {e.accepted}, rejected {e.rejected}, duplicate {e.duplicates}, corrected {e.corrected}, warnings {e.warnings}")
        if receipt:
            console.print(f"receipt R{receipt.sequence:08d}  sha256 {receipt.sha256}  key {receipt.key_fingerprint}")
        if e.supersedes:
            console.print(f"取代交换 {e.supersedes} / supersedes exchange {e.supersedes}")
        later = session.exec(select(Exchange.id).where(Exchange.supersedes == exchange_id)).first()
        if later is not None:
            console.print(f"已由交换 {later} 重新处理或取代 / reprocessed (or superseded) as exchange {later}")
        table = Table(title="Row errors and warnings (values masked)")
        for column in ("row", "level", "column", "field", "value", "reason"):
            table.add_column(column)
        issues = session.exec(select(RowError).where(RowError.exchange_id == exchange_id).order_by(RowError.row_number, RowError.id)).all()
        for issue in issues:
            table.add_row(str(issue.row_number), issue.level, issue.column_name, issue.field, issue.value_masked, f"{issue.reason_zh} / {issue.reason_en}")
        if issues:
            console.print(table)
    engine.dispose()


@exchanges_app.command("reprocess")
def exchanges_reprocess(
    exchange_id: Annotated[int, typer.Argument(help="The refused or failed exchange (see `gateway exchanges list`).")],
    home: HomeOption = None,
) -> None:
    """Reprocess a refused or failed file once its cause is fixed (重新处理): a new exchange
    with its own receipt, superseding the first."""
    from gateway.exchange.reprocess import ReprocessRefused, reprocess

    gateway = _gateway(home)
    try:
        done = reprocess(gateway, exchange_id, "gateway exchanges reprocess")
    except ReprocessRefused as exc:
        console.print(f"[red]不能重新处理 / Not reprocessed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    finally:
        gateway.close()
    console.print(escape(done.message))
    _summary([done.outcome])


# -- receipts --------------------------------------------------------------------


@receipts_app.command("verify")
def receipts_verify(
    receipts: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="RECEIPT.json file(s); the .asc lies beside each.")],
    home: HomeOption = None,
    offline: Annotated[bool, typer.Option("--offline", help="Check the signature only, not the database.")] = False,
    keys: Annotated[
        Optional[Path], typer.Option("--keys", help="Public keys and history.json to trust (default: HOME/keys).", file_okay=False)
    ] = None,
) -> None:
    """Tell whether receipts are genuine; exit 0 only when every one is."""
    from gateway.receipts.check import verify_receipt
    from gateway.store import make_engine

    settings = load_settings(home)
    engine = None
    if not offline and (settings.home / "gateway.toml").exists():
        engine = make_engine(settings.db_url, readonly=True)
    all_genuine = True
    try:
        for path in receipts:
            try:
                verdict = verify_receipt(path, keys or settings.keys_dir, engine)
            except GatewayError as exc:
                console.print(f"[red]CANNOT VERIFY[/] {path}: {exc}")
                all_genuine = False
                continue
            for check in verdict.checks:
                mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
                console.print(f"  {mark} {check.name}: {check.detail}")
            if verdict.genuine:
                console.print(f"[bold green]GENUINE[/] {path}")
            else:
                console.print(f"[bold red]NOT GENUINE[/] {path}")
                all_genuine = False
    finally:
        if engine is not None:
            engine.dispose()
    raise typer.Exit(0 if all_genuine else 1)


# -- adapters and contracts ------------------------------------------------------


@adapters_app.command("list")
def adapters_list() -> None:
    """Every registered adapter: name, department, contracts, package and version."""
    from gateway.plugins import get_manager

    table = Table()
    for column in ("name", "department", "contracts", "file types", "package", "version"):
        table.add_column(column)
    for info in sorted(get_manager().adapters().values(), key=lambda i: i.name):
        table.add_row(info.name, info.department, ", ".join(info.contracts), " ".join(info.file_types), info.package, info.version)
    console.print(table)


@adapters_app.command("new")
def adapters_new(
    name: Annotated[str, typer.Argument(help="Adapter name, lowercase with dashes (water-board).")],
    directory: Annotated[Path, typer.Option(help="Where to create gateway-NAME/.")] = Path("."),
    department: Annotated[Optional[str], typer.Option(help="Department whose inbox it reads (default: NAME).")] = None,
    format: Annotated[str, typer.Option("--format", help="The file format it reads: csv, xlsx, xml or json.")] = "csv",
) -> None:
    """Write an installable adapter plugin package whose tests pass at once."""
    from gateway.devkit.scaffold import scaffold

    root = scaffold(name, directory, department, format)
    console.print(f"Created {root}")
    console.print(f"Next:  pip install -e '{root}[test]'  &&  pytest {root}  &&  gateway adapters list", markup=False)


@contracts_app.command("list")
def contracts_list() -> None:
    """每个已注册的数据契约:名称、中文名、字段数、来源软件包 / Every registered contract: name,
    Chinese name, number of fields, the package it comes from (built-ins and plugins')."""
    from gateway.routing.catalogue import summaries

    table = Table(title="数据契约 Contracts")
    for column in ("名称 name", "中文名 Chinese name", "字段数 fields", "来源软件包 package"):
        table.add_column(column)
    for summary in summaries():
        table.add_row(summary.name, summary.label_zh, str(summary.field_count), summary.package)
    console.print(table)


@contracts_app.command("show")
def contracts_show(name: Annotated[str, typer.Argument(help="The contract's name (DeathEvent, ...).")]) -> None:
    """一个契约的每个字段:路径、类型、中文名、是否个人信息、掩码类别和掩码示例 / Each field of
    one contract: dotted path, type, Chinese label, personal data or not, masking kind and an
    example of how it is masked."""
    from gateway.plugins import contract, get_manager
    from gateway.routing.catalogue import field_rows

    model = contract(name)
    console.print(
        f"[bold]{escape(model.contract_name)}[/] {escape(model.label_zh)}  "
        f"来源软件包 package: {escape(get_manager().package_of(model))}", highlight=False,
    )
    # Where who reported it is part of identity, the stored key starts with the sender (contracts.base.stored_business_key).
    source = "发送部门 sending department | " if model.business_key_includes_source else ""
    console.print(f"  业务键 business key: {source}{', '.join(model.business_key_fields)}", highlight=False, markup=False)
    console.print(
        f"  事件日期 event date: {model.event_date_field or '—'}   行政区划 division code: {model.division_field or '—'}",
        highlight=False, markup=False,
    )
    table = Table()
    for column in ("字段 field", "类型 type", "中文名 label", "个人信息 personal", "掩码类别 kind", "掩码示例 masked example"):
        table.add_column(column)
    for row in field_rows(model):
        table.add_row(
            escape(row.path), escape(row.type_name), escape(row.label_zh), "是 yes" if row.personal else "否 no",
            escape(f"{row.kind} {row.kind_label_zh}" if row.kind else "—"), escape(row.masked_example),
        )
    console.print(table)


@contracts_app.command("export")
def contracts_export(
    check: Annotated[bool, typer.Option("--check", help="Only report whether the committed schemas are stale.")] = False,
    directory: Annotated[Optional[Path], typer.Option(help="Where to write (default: the contracts package); "
                                                     "plugins' contracts are written only to a directory given.")] = None,
) -> None:
    """Regenerate contracts/schemas/*.json from the pydantic models; with --directory, the
    registered plugins' contracts too (the committed schemas stay the built-ins')."""
    from contracts import CONTRACTS
    from contracts.export import SCHEMA_DIR, schema_documents, write_schemas
    from gateway.plugins import contracts as registered

    target = directory or SCHEMA_DIR
    plugins = {name: model for name, model in registered().items() if CONTRACTS.get(name) is not model}
    extra = plugins if directory is not None else {}
    if check:
        stale = [n for n, text in schema_documents(extra).items() if not (target / n).exists() or (target / n).read_text(encoding="utf-8") != text]
        if stale:
            console.print(f"[red]Stale schemas:[/] {', '.join(stale)}. Run `gateway contracts export`.")
            raise typer.Exit(1)
        console.print("Schemas are up to date.")
        return
    for path in write_schemas(target, extra):
        console.print(str(path))
    if plugins and directory is None:
        console.print(
            f"插件契约 {', '.join(sorted(plugins))} 未写入 contracts/schemas/(只放内置契约);"
            "请用 --directory 指定目录 / plugin contracts are written only with --directory",
            highlight=False, markup=False,
        )


# -- demo ------------------------------------------------------------------------


@app.command()
def demo(
    home: Annotated[Path, typer.Option("--home", help="Where to build the demo home (replaced).")] = Path("demo-home"),
) -> None:
    """The main job on the embedded default: every department's specimen dropped into a
    fresh home, one pass, the receipts verified, then a duplicate drop."""
    from gateway.devkit.demo import run_demo

    _logging(verbose=False)
    failures = run_demo(home, console, _summary)
    raise typer.Exit(1 if failures else 0)


@app.command()
def doctor(
    home: HomeOption = None,
    min_free_mb: Annotated[int, typer.Option("--min-free-mb", help="Warn below this much free disk (MiB).")] = 1024,
) -> None:
    """Check a home and say how to fix each finding (体检): keyring and mailbox permissions,
    the signing key, the database and its schema, SFTP hosts, disk space, the clock.
    Exits 1 on a finding that stops the gateway, 0 otherwise (warnings included)."""
    from gateway.exchange.doctor import examine

    settings = load_settings(home)
    if not (settings.home / "gateway.toml").exists():
        raise GatewayError(f"No gateway home at {settings.home}. Run `gateway init --home {settings.home}` first")
    report = examine(settings, min_free_bytes=min_free_mb << 20)
    for finding in report.findings:
        console.print(finding.line(), markup=False, highlight=False)
    errors = sum(1 for f in report.findings if f.level == "error")
    warnings = len(report.findings) - errors
    if report.passed:
        console.print("通过 passed: " + ", ".join(report.passed), markup=False, highlight=False)
    if errors:
        console.print(f"{errors} 个错误,{warnings} 个警告:修复错误后网关才能正常运行 / {errors} error(s), {warnings} warning(s): "
                      "fix the errors before running the gateway", markup=False, highlight=False)
        raise typer.Exit(1)
    console.print(f"网关主目录 {settings.home} 检查通过({warnings} 个警告)/ the home passed ({warnings} warning(s))",
                  markup=False, highlight=False)


@app.command("install-service")
def install_service(
    home: HomeOption = None,
    user: Annotated[str, typer.Option("--user", help="The dedicated account the services run as.")] = "gateway",
    dest: Annotated[
        Optional[Path], typer.Option("--dest", help="Write the units (and gateway.env) here instead: a dry run.", file_okay=False)
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address of the web console (keep loopback behind a TLS proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port of the web console.")] = 8400,
) -> None:
    """Install systemd units for `gateway run`, `gateway worker` and `gateway serve` for a
    home (作为服务运行): to /etc/systemd/system, the passphrase file /etc/gateway/gateway.env (mode 600)."""
    from gateway.cli.service import ENV_FILE, SYSTEMD_DIR, ServiceSettings, gateway_command, install, next_steps

    settings = load_settings(home)
    if not (settings.home / "gateway.toml").exists():
        raise GatewayError(f"No gateway home at {settings.home}. Run `gateway init --home {settings.home}` first")
    service = ServiceSettings(
        home=settings.home.absolute(), user=user, gateway=gateway_command(), mailbox=settings.mailbox_root.absolute(),
        host=host, port=port,
    )
    if any(p == service.home or p in service.home.parents for p in (Path("/tmp"), Path("/var/tmp"))):
        console.print(f"警告 WARNING: {service.home} 在临时目录中,服务的 PrivateTmp=yes 看不到它 / the home is under a temporary "
                      "folder, which the services' PrivateTmp=yes hides from them: move it (e.g. /var/lib/gateway)", markup=False, highlight=False)
    target = dest or SYSTEMD_DIR
    try:
        written = install(service, target, (dest / ENV_FILE.name) if dest else ENV_FILE)
    except PermissionError as exc:
        raise GatewayError(f"不能写入 {exc.filename} / cannot write {exc.filename}: run it with sudo, or --dest DIR for a dry run") from None
    for unit in written.units:
        console.print(f"已写入 written: {unit}", markup=False, highlight=False)
    said = "已存在,未改动 kept as it was" if written.env_file_kept else "已写入 written (mode 600)"
    console.print(f"{said}: {written.env_file}", markup=False, highlight=False)
    console.print("接下来运行 Next, run:", markup=False, highlight=False)
    for step in next_steps(service, written, dry_run=dest is not None):
        console.print(f"  {step}", markup=False, highlight=False, soft_wrap=True)


# -- ledger, keys, record proofs (gateway/cli/) ---------------------------------

from gateway.cli import keys as _keys_commands, ledger as _ledger_commands, receipts as _receipt_commands  # noqa: E402

app.add_typer(_ledger_commands.app, name="ledger")
app.add_typer(_keys_commands.app, name="keys")
_receipt_commands.register(receipts_app)

from gateway.cli import db as _db_commands, sftp as _sftp_commands  # noqa: E402

app.add_typer(_sftp_commands.app, name="sftp")
app.add_typer(_db_commands.app, name="db")

from gateway.cli import retention as _retention_commands  # noqa: E402 - retention (issue 21)

app.add_typer(_retention_commands.app, name="retention")

# -- sharing agreements, deliveries, audit (gateway/cli/routing.py) ----------------

from gateway.cli import routing as _routing_commands  # noqa: E402

app.add_typer(_routing_commands.agreements_app, name="agreements")
app.add_typer(_routing_commands.deliveries_app, name="deliveries")
app.add_typer(_routing_commands.audit_app, name="audit")

# -- scheduled pulls, jobs, assist-checks, deadlines, cycle report, simulator (issue 5) ---

from gateway.cli import (  # noqa: E402
    assist_checks as _assist_check_commands,
    deadlines as _deadline_commands,
    pulls as _pull_commands,
    report as _report_commands,
    simulate as _simulate_commands,
)

app.add_typer(_pull_commands.app, name="pulls")
app.add_typer(_pull_commands.jobs_app, name="jobs")
app.add_typer(_assist_check_commands.app, name="assist-checks")
app.add_typer(_assist_check_commands.notices_app, name="notices")
app.add_typer(_deadline_commands.app, name="deadlines")
from gateway.cli import obligations as _obligation_commands  # noqa: E402 - obligations (issue 17)

app.add_typer(_obligation_commands.app, name="obligations")
app.add_typer(_report_commands.app, name="report")
from gateway.cli import mail as _mail_commands  # noqa: E402 - the office's mailbox (issue 22)

app.add_typer(_mail_commands.app, name="mail")
_simulate_commands.register(app)

# -- reconciliation between departments' records (issue 9, gateway/reconcile/) -----------------

from gateway.cli import reconcile as _reconcile_commands  # noqa: E402

app.add_typer(_reconcile_commands.app, name="reconcile")

from gateway.cli import sample as _sample_commands  # noqa: E402

app.command("sample-month")(_sample_commands.sample_month)

# -- the population register and 育龄妇女信息库 (issue 18: gateway/register/) ------------------

from gateway.cli import register as _register_commands  # noqa: E402

app.add_typer(_register_commands.app, name="register")

# -- the web console and its accounts (issue 10: gateway/web/) ---------------------------

from gateway.cli import users as _user_commands  # noqa: E402

_user_commands.register(app)

# -- backups, restore and the home's completeness (issue 21: gateway/exchange/backup.py) -------

from gateway.cli import backup as _backup_commands  # noqa: E402

_backup_commands.register(app)


def main() -> None:
    from gateway import clock

    try:
        banner = clock.pinned_banner()
    except clock.ClockError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]Error:[/] {escape(str(exc))}")
        sys.exit(2)
    if banner is not None:
        # Every command that reads the business clock says it is pinned (a rehearsal).
        Console(stderr=True, soft_wrap=True).print(f"[bold yellow]{escape(banner)}[/]")
    try:
        app()
    except GatewayError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]Error:[/] {escape(str(exc))}")
        sys.exit(2)
    except Exception as exc:
        from gateway.store.faults import database_fault

        fault = database_fault(exc)
        if fault is None:
            raise
        # Away, read-only or full: the operator's problem, not a bug; 3 says "try again later".
        Console(stderr=True, soft_wrap=True).print(f"[bold red]Error:[/] {escape(str(fault))}")
        sys.exit(3)


if __name__ == "__main__":
    main()
