"""`gateway assist-checks` and `gateway notices`: requests (协查) and notices (通报) from
the national platform, their due dates, drafts and answers. Names and ID numbers are
always shown masked."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.errors import GatewayError
from gateway.masking import mask_id, mask_identifiers as shown_id  # a message id (XXBH) may embed an ID number
from gateway.cli._common import HomeOption, console, settings_for

app = typer.Typer(help="Assist-check requests (协查) from the national platform: due dates, drafts, answers.", no_args_is_help=True)
notices_app = typer.Typer(help="Notices (通报) from the national platform and their feedback or receipt.", no_args_is_help=True)

AsOfOption = Annotated[
    Optional[str], typer.Option("--as-of", help="Evaluate as of this day (YYYY-MM-DD, China time) instead of today.")
]


def _gateway(home: Path | None):  # type: ignore[no-untyped-def]
    from gateway.exchange.lifecycle import Gateway

    return Gateway(settings_for(home))


def _fold_register(gateway) -> None:  # type: ignore[no-untyped-def]
    """The register (育龄妇女信息库, the drafts' first source) takes in what was just stored or imported."""
    from gateway.register import fold

    fold(gateway.engine, gateway.settings)


def _today(as_of: str | None) -> dt.date:
    from gateway import clock

    if as_of is None:
        return clock.today()
    try:
        return dt.date.fromisoformat(as_of)
    except ValueError:
        raise GatewayError(f"--as-of {as_of!r}: write a date YYYY-MM-DD") from None


def parse_days(text: str) -> int:
    """`3d`, `3` or `2w` as a number of days."""
    found = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", text or "")
    if not found:
        raise GatewayError(f"--due-within {text!r}: write a number of days like 3d (or weeks: 2w)")
    return int(found.group(1)) * (7 if found.group(2) == "w" else 1)


def mask_ids(text: str) -> str:
    """Free text (a remark, a reason) with anything shaped like an ID number masked."""
    return re.sub(r"\d{14,17}[\dXx]", lambda m: mask_id(m.group(0)), text)


def _due_text(due: dt.date, provisional: bool, today: dt.date, done: bool) -> str:
    text = due.isoformat() + (" (provisional)" if provisional else "")
    if done:
        return text
    left = (due - today).days
    if left < 0:
        return f"[red]{text}, {-left}d overdue[/]"
    if left <= 3:
        return f"[yellow]{text}, {left}d left[/]"
    return f"{text}, {left}d left"


@app.command("list")
def list_checks(
    overdue: Annotated[bool, typer.Option("--overdue", help="Only those past their due date.")] = False,
    due_within: Annotated[Optional[str], typer.Option("--due-within", help="Only those due within this many days (3d, 2w).")] = None,
    include_answered: Annotated[bool, typer.Option("--all", help="Answered ones too.")] = False,
    as_of: AsOfOption = None,
    home: HomeOption = None,
) -> None:
    """The deadlines list: requests not yet answered, soonest due first."""
    from gateway.platform import assist_checks

    today = _today(as_of)
    gateway = _gateway(home)
    try:
        assist_checks.sync(gateway.engine, gateway.settings)
        views = assist_checks.list_checks(
            gateway.engine, overdue=overdue, due_within=parse_days(due_within) if due_within else None,
            include_answered=include_answered, today=today,
        )
    finally:
        gateway.close()
    table = Table(title=f"Assist-check requests (协查), as of {today.isoformat()}")
    for column in ("id", "XXBH", "from", "urgency", "subject", "categories", "sent", "due", "draft", "status"):
        table.add_column(column, no_wrap=column in ("id", "XXBH", "subject", "sent"))
    for view in views:
        item = view.item
        draft = view.draft
        if draft.result == "1":
            shown = "found: " + ", ".join(f"{f.category}<{f.source}" for f in draft.findings)
            if draft.missing:
                shown += " (not found: " + ",".join(draft.missing) + ")"
        else:
            shown = "not found"
        status = item.status if not item.send_error or item.status == "answered" else f"{item.status}: {item.send_error[:60]}"
        table.add_row(
            str(item.id), shown_id(item.message_id), item.partner, {"1": "紧急", "2": "急"}.get(item.urgency, item.urgency), view.subject,
            item.categories, item.sent_date.isoformat(), _due_text(item.due_date, item.due_provisional, today, item.status == "answered"),
            shown, status,
        )
    if views:
        console.print(table)
    else:
        console.print("No assist-check requests" + (" matching." if overdue or due_within else " waiting for an answer."))


@app.command("show")
def show(check: Annotated[str, typer.Argument(help="The id (see list) or the XXBH.")], home: HomeOption = None) -> None:
    """One request: subject (masked), categories, due date and the draft answer (masked)."""
    from gateway.platform import assist_checks
    from gateway.platform.assist_checks import CATEGORY_LABELS, LOOKUP_SOURCES

    gateway = _gateway(home)
    try:
        view = assist_checks.get_check(gateway.engine, check)
    finally:
        gateway.close()
    item = view.item
    console.print(f"[bold]Assist-check {item.id}[/]  {shown_id(item.message_id)}  from county {item.partner}")
    console.print(f"subject {view.subject}; urgency {item.urgency}; sent {item.sent_date}; due {item.due_date}"
                  + (" (provisional)" if item.due_provisional else "") + f" ({item.due_rule}); status {item.status}")
    console.print("requested: " + ", ".join(f"{c} {CATEGORY_LABELS.get(c, c)}" for c in item.categories.split(",")))
    draft = view.draft
    console.print(f"[bold]Draft[/] ({'found' if draft.result == '1' else 'not found'}; searched "
                  + ", ".join(LOOKUP_SOURCES[s].split(' (')[0] for s in draft.searched) + "):")
    for finding in draft.findings:
        console.print(f"  {finding.category} {CATEGORY_LABELS.get(finding.category, '')} ({finding.source}): "
                      + finding.masked(view.subject_name), markup=False)
    if draft.missing:
        console.print("  not in the county's records: " + ", ".join(f"{c} {CATEGORY_LABELS.get(c, c)}" for c in draft.missing))
    if draft.remark:
        console.print(f"  remark: {draft.remark}", markup=False)
    if item.answered_at:
        console.print(f"answered {item.answered_at} by {item.answered_by}: PDJG {item.answer_result}"
                      + (f", remark {mask_ids(item.answer_remark)}" if item.answer_remark else "")
                      + (f"; sent {item.sent_at}" if item.sent_at else ""), markup=False)
    if item.send_error and item.status != "answered":
        console.print(f"last sending error: {item.send_error}", markup=False, soft_wrap=True)


@app.command("request")
def request_check(
    subject_id: Annotated[str, typer.Option("--subject-id", help="公民身份号码 of the person to ask about.")],
    categories: Annotated[str, typer.Option("--categories", help="LB codes to ask for, comma-separated: 01,05.")],
    to: Annotated[str, typer.Option("--to", help="The division code of the county asked (6 digits).")],
    urgent: Annotated[Optional[bool], typer.Option("--urgent/--ordinary", help="紧急 (15 days, e.g. 现孕) or ordinary (30 days).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="姓名, when the county's records do not hold the person.")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="协查内容 (default: the categories' names).")] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="The [pulls.NAME] platform (default: the only one).")] = None,
    home: HomeOption = None,
) -> None:
    """发起协查: send the county's own assist-check request (XCXX) to the platform, built from
    the county's records; receipted, tracked until the answer (FKXX) arrives."""
    from gateway.platform import outgoing

    if urgent is None:
        raise GatewayError("Say --urgent (紧急, 15 days) or --ordinary (30 days)")
    gateway = _gateway(home)
    try:
        result = outgoing.request(
            gateway, gateway.settings, subject_id=subject_id, categories=categories.split(","), urgent=urgent, to=to,
            name=name, text=text, source=source,
        )
    finally:
        gateway.close()
    item = result.request
    console.print(f"协查请求 {shown_id(item.message_id)} (id {item.id}) → {item.to_division}; due {item.due_date}"
                  + (" (provisional)" if item.due_provisional else "") + f" ({item.due_rule}).")
    if result.sent:
        console.print(f"已发送 Sent to the platform; receipt {result.receipt}. The answer arrives through the platform pull.")
    elif item.status == "refused":
        console.print(f"平台拒收 The platform refused it: {result.error}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    else:
        console.print(f"未发送 Saved, not sent yet: {result.error}", markup=False, soft_wrap=True)
        console.print("`gateway assist-checks send` sends it when the platform is back.")
        raise typer.Exit(3)


@app.command("sent")
def sent_list(
    overdue: Annotated[bool, typer.Option("--overdue", help="Only those past their due date without an answer.")] = False,
    include_answered: Annotated[bool, typer.Option("--all", help="Answered ones too.")] = False,
    as_of: AsOfOption = None,
    home: HomeOption = None,
) -> None:
    """本县发出的协查: the county's own requests, their due dates and answers (masked)."""
    from gateway.platform import assist_checks, outgoing

    today = _today(as_of)
    gateway = _gateway(home)
    try:
        assist_checks.sync(gateway.engine, gateway.settings)
        views = outgoing.list_outgoing(gateway.engine, include_answered=include_answered, overdue=overdue, today=today)
    finally:
        gateway.close()
    table = Table(title=f"本县发出的协查请求 The county's own requests, as of {today.isoformat()}")
    for column in ("id", "XXBH", "发往", "紧急程度", "对象", "类别", "发起", "期限", "状态", "反馈"):
        table.add_column(column, no_wrap=column in ("id", "XXBH", "对象"))
    for view in views:
        item = view.item
        answer = ""
        if item.status == "answered":
            answer = ("查到 found" if item.answer_result == "1" else "未查到 not found") + (
                ": " + ", ".join(code for code, _ in view.findings) if view.findings else "")
        table.add_row(str(item.id), shown_id(item.message_id), item.to_division, {"1": "紧急", "2": "急"}.get(item.urgency, item.urgency), view.subject,
                      item.categories, item.sent_date.isoformat(), _due_text(item.due_date, item.due_provisional, today, item.status == "answered"),
                      item.status if not item.send_error or item.status == "sent" else f"{item.status}: {item.send_error[:60]}", answer)
    console.print(table if views else "没有待反馈的本县协查请求 No requests of the county's own waiting for an answer.")


@app.command("reveal")
def reveal(
    check: Annotated[str, typer.Argument(help="The id (see list) or the XXBH.")],
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why (required; audited): e.g. 核对纸质台账.")] = None,
    home: HomeOption = None,
) -> None:
    """查看对象: the full name and ID number of one request's subject, to check a paper
    ledger or phone the police. Needs a reason; every reveal is in the audit log."""
    import getpass

    from gateway.platform import assist_checks

    gateway = _gateway(home)
    try:
        shown = assist_checks.reveal_subject(gateway.engine, check, reason=reason, who=f"{getpass.getuser()} (command line)")
    finally:
        gateway.close()
    item = shown.check
    console.print(f"协查 {shown_id(item.message_id)} (id {item.id}) 对象 subject:", markup=False)
    console.print(f"  姓名 name: {shown.name}", markup=False)
    console.print(f"  公民身份号码 ID number: {shown.id_number}", markup=False)
    console.print("已记入审计日志 Recorded in the audit log (`gateway audit`).")


@app.command("answer")
def answer(
    check: Annotated[str, typer.Argument(help="The id (see list) or the XXBH.")],
    found: Annotated[Optional[bool], typer.Option("--found/--not-found", help="The person was found (PDJG 1) or not (PDJG 0).")] = None,
    remark: Annotated[Optional[str], typer.Option("--remark", help="备注 BZ; required with --not-found.")] = None,
    finding: Annotated[
        Optional[list[str]], typer.Option("--finding", help="CATEGORY=TEXT: set (or with an empty TEXT, drop) a value of the draft.")
    ] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="The [pulls.NAME] platform to send to (default: the only one).")] = None,
    home: HomeOption = None,
) -> None:
    """Answer a request: the draft's values (or --finding ones) as an FKXX, POSTed to the
    platform and receipted. A not-found answer without a remark is refused."""
    from gateway.platform import assist_checks

    if found is None:
        raise GatewayError("Say --found or --not-found")
    gateway = _gateway(home)
    try:
        result = assist_checks.answer(
            gateway, gateway.settings, check, found=found, remark=remark,
            findings=assist_checks.parse_findings(finding or []), source=source,
        )
    finally:
        gateway.close()
    item = result.check
    console.print(f"Answered {shown_id(item.message_id)} (id {item.id}): {'found' if found else 'not found'}.")
    if result.sent:
        console.print(f"Sent to the platform; receipt {result.receipt} (exchange {result.exchange_id}). It left the deadlines list.")
    elif item.status == "refused":
        console.print(f"The platform refused the answer: {result.error}", markup=False, soft_wrap=True)
        console.print("Correct it and answer again.")
        raise typer.Exit(1)
    else:
        console.print(f"Saved, not sent yet: {result.error}", markup=False, soft_wrap=True)
        console.print("`gateway run` (job assist-checks) sends it when the platform is back, or run `gateway assist-checks send`.")
        raise typer.Exit(3)


@app.command("send")
def send(source: Annotated[Optional[str], typer.Option("--source")] = None, home: HomeOption = None) -> None:
    """Send the answers still waiting (the platform was away when they were given)."""
    from gateway.platform import assist_checks

    from gateway.platform import outgoing

    gateway = _gateway(home)
    try:
        result = assist_checks.send_pending(gateway, gateway.settings, source)
        requests_sent, request_errors = outgoing.send_pending(gateway, gateway.settings, source)
        notices_sent, notice_errors = assist_checks.send_pending_notices(gateway, gateway.settings, source)
        request_errors += notice_errors
    finally:
        gateway.close()
    console.print(result.summary() + f"; {requests_sent} request(s) of the county's own sent; {notices_sent} notice feedback(s) sent")
    for error in result.errors + request_errors:
        console.print(f"  {error}", markup=False, soft_wrap=True)
    raise typer.Exit(0 if not (result.errors or request_errors) else 3)


@app.command("import")
def import_table(
    table: Annotated[str, typer.Argument(help="wcba (育龄妇女信息) or ledger (台账).")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: 公民身份号码, 姓名, 类别, 内容, 登记日期.")],
    home: HomeOption = None,
) -> None:
    """Import facts the county holds into a lookup table; open requests are drafted again."""
    from gateway.platform import assist_checks

    gateway = _gateway(home)
    try:
        result = assist_checks.import_table(gateway.engine, table, file)
        _fold_register(gateway)
        redrafted = assist_checks.redraft_open(gateway.engine)
    finally:
        gateway.close()
    console.print(f"{table}: {result.added} added, {result.already} already there, {len(result.problems)} refused; "
                  f"{redrafted} open request(s) drafted again.")
    if result.problems:
        listing = Table(title="Refused rows (values masked)")
        for column in ("row", "column", "value", "reason"):
            listing.add_column(column)
        for problem in result.problems:
            listing.add_row(str(problem.row), problem.column, problem.value, problem.reason)
        console.print(listing)


@app.command("redraft")
def redraft(check: Annotated[Optional[str], typer.Argument(help="One id or XXBH (default: every open request).")] = None,
            home: HomeOption = None) -> None:
    """Look the subjects up again in the county's records and replace the drafts."""
    from gateway.platform import assist_checks

    gateway = _gateway(home)
    try:
        _fold_register(gateway)
        if check is None:
            console.print(f"{assist_checks.redraft_open(gateway.engine)} open request(s) drafted again.")
        else:
            view = assist_checks.get_check(gateway.engine, check)
            draft = assist_checks.redraft(gateway.engine, view.item.id)  # type: ignore[arg-type]
            console.print(f"{shown_id(view.item.message_id)}: {'found' if draft.result == '1' else 'not found'}.")
    finally:
        gateway.close()


# -- notices ------------------------------------------------------------------------------


@notices_app.command("list")
def notices_list(
    overdue: Annotated[bool, typer.Option("--overdue", help="Only those past their due date.")] = False,
    include_handled: Annotated[bool, typer.Option("--all", help="Handled ones too.")] = False,
    as_of: AsOfOption = None,
    home: HomeOption = None,
) -> None:
    """Notices waiting for feedback (XYFK 1) or a receipt, soonest due first."""
    from gateway.platform import assist_checks

    today = _today(as_of)
    gateway = _gateway(home)
    try:
        assist_checks.sync(gateway.engine, gateway.settings)
        views = assist_checks.list_notices(gateway.engine, include_handled=include_handled, overdue=overdue, today=today)
    finally:
        gateway.close()
    table = Table(title=f"Notices (通报), as of {today.isoformat()}")
    for column in ("id", "XXBH", "from", "category", "needs", "subject", "sent", "due", "status"):
        table.add_column(column, no_wrap=column in ("id", "XXBH", "subject"))
    for view in views:
        item = view.item
        table.add_row(
            str(item.id), shown_id(item.message_id), item.partner, item.category, "feedback" if item.feedback_required else "receipt",
            view.subject, item.sent_date.isoformat(), _due_text(item.due_date, item.due_provisional, today, item.status == "handled"),
            item.status,
        )
    console.print(table if views else "No notices waiting.")


@notices_app.command("done")
def notices_done(
    notice: Annotated[str, typer.Argument(help="The id (see list) or the XXBH.")],
    remark: Annotated[Optional[str], typer.Option("--remark", help="What was done; required when feedback is due.")] = None,
    home: HomeOption = None,
) -> None:
    """Record that a notice was handled (feedback given or receipt confirmed)."""
    from gateway.platform import assist_checks

    gateway = _gateway(home)
    try:
        item = assist_checks.handle_notice(gateway.engine, notice, remark=remark, gateway=gateway, settings=gateway.settings)
    finally:
        gateway.close()
    if item.status == "sending":
        console.print(f"通报 {shown_id(item.message_id)}: 反馈未发出 feedback saved, not sent yet: {item.send_error}", markup=False, soft_wrap=True)
        console.print("`gateway assist-checks send` sends it when the platform is back.")
        raise typer.Exit(3)
    sent = " Feedback sent to the platform (已向平台反馈) and receipted." if item.feedback_sent_at else ""
    console.print(f"Notice {shown_id(item.message_id)} (id {item.id}) handled;{sent} it left the deadlines list.")


# -- the county's own notices (本县发出的通报) ------------------------------------------------


@notices_app.command("drafts")
def notices_drafts(
    include_sent: Annotated[bool, typer.Option("--all", help="Sent and answered ones too.")] = False,
    home: HomeOption = None,
) -> None:
    """本县应发出的通报草稿 The county's own notice drafts (a birth to a woman registered elsewhere ...), soonest due first."""
    from gateway.platform import notices_out

    gateway = _gateway(home)
    try:
        notices_out.follow_up(gateway, gateway.settings)
        views = notices_out.list_drafts(gateway.engine, gateway.settings, include_sent=include_sent)
    finally:
        gateway.close()
    today = _today(None)
    table = Table(title="本县通报 The county's own notices (通报)")
    for column in ("id", "XXBH", "类别 case", "发往 to", "对象 subject", "期限 due", "状态 status", "问题 problems"):
        table.add_column(column, no_wrap=column in ("id", "XXBH"))
    for view in views:
        item = view.item
        table.add_row(
            str(item.id), shown_id(item.message_id), notices_out.CASE_LABELS.get(item.category, item.category), item.to_division, view.subject,
            _due_text(item.due_date, item.due_provisional, today, item.status != "draft"), item.status, "；".join(view.problems),
        )
    console.print(table if views else "没有待发的通报 No notices of the county's own waiting.")


@notices_app.command("send")
def notices_send(
    notice: Annotated[str, typer.Argument(help="The id (see drafts) or the XXBH.")],
    home: HomeOption = None,
) -> None:
    """发出一条本县通报 Send one of the county's own notices to the platform (refused before it leaves without a village-level address)."""
    from gateway.platform import notices_out

    gateway = _gateway(home)
    try:
        result = notices_out.send(gateway, gateway.settings, notice)
    finally:
        gateway.close()
    item = result.notice
    if result.sent:
        console.print(f"通报 {shown_id(item.message_id)} 已发出并签发回执 sent to {item.to_division} and receipted"
                      + (f" ({result.receipt})" if result.receipt else "") + f"; due {item.due_date.isoformat()}.", markup=False, soft_wrap=True)
        return
    if result.refused_here:
        console.print(f"通报 {shown_id(item.message_id)} 不能发出 refused: {result.error}", markup=False, soft_wrap=True)
        console.print("补全触发记录（如医院出生记录的家庭住址到村/社区居委会）后重新提交，再 `gateway notices send`。")
        raise typer.Exit(1)
    if item.status == "refused":
        console.print(f"平台拒收 The platform refused notice {shown_id(item.message_id)}: {result.error}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"通报 {shown_id(item.message_id)} 未发出 not sent yet: {result.error}", markup=False, soft_wrap=True)
    console.print("平台恢复后再 `gateway notices send`（或 send_notices = true 时由 `gateway run` 自动发送）。")
    raise typer.Exit(3)
