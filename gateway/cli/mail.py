"""`gateway mail`: the office's mailbox (docs/deploy/mail.md): the held messages, and the
operator's release or refusal of each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from gateway.cli._common import HomeOption, console, settings_for

app = typer.Typer(help="The office's mailbox: held messages (暂扣邮件), release or refuse them.", no_args_is_help=True)


def _gateway(home: Path | None):  # type: ignore[no-untyped-def]
    from gateway.exchange.lifecycle import Gateway

    return Gateway(settings_for(home))


@app.command("held")
def mail_held(home: HomeOption = None) -> None:
    """暂扣的邮件 The held messages (masked): unknown senders, unsigned mail of a signing department."""
    from gateway import clock
    from gateway.mail.held import held

    gateway = _gateway(home)
    try:
        rows = held(gateway.engine)
    finally:
        gateway.close()
    if not rows:
        console.print("没有暂扣的邮件。 No held messages.")
        return
    table = Table(title="暂扣的邮件 Held messages")
    for column in ("编号 id", "收到 received", "部门 department", "发件人 sender", "主题 subject", "原因 why"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row.id), clock.in_china(row.received_at).strftime("%Y-%m-%d %H:%M"), row.department or "-",
                      row.sender, row.subject, row.why)
    console.print(table)


@app.command("release")
def mail_release(
    number: Annotated[int, typer.Argument(help="The held message's number (gateway mail held).")],
    department: Annotated[Optional[str], typer.Option("--department", help="Whose files they are (an unknown sender's).")] = None,
    home: HomeOption = None,
) -> None:
    """放行 Let a held message through: the next pass processes it as the department's."""
    from gateway.mail.held import release

    gateway = _gateway(home)
    try:
        chosen = release(gateway, number, department)
    finally:
        gateway.close()
    console.print(f"邮件 {number} 已放行,下次收信时按 {chosen} 处理。 Message {number} released: the next pass processes it as {chosen}'s.", markup=False)


@app.command("refuse")
def mail_refuse(
    number: Annotated[int, typer.Argument(help="The held message's number (gateway mail held).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the message).")] = "",
    home: HomeOption = None,
) -> None:
    """拒收 Refuse a held message: never processed, moved to the rejected folder."""
    from gateway.mail.held import refuse

    gateway = _gateway(home)
    try:
        refuse(gateway, number, reason or "-")
    finally:
        gateway.close()
    console.print(f"邮件 {number} 已拒收。 Message {number} refused.", markup=False)
