"""Held mail (暂扣邮件) and the operator's decision on it: a message from an unknown sender,
or unsigned (or badly signed) mail from a department that must sign, is never processed:
it waits in `[mail] held_folder` until an operator runs `gateway mail release ID` (it goes
back to the folder read and is processed on the next pass, as the department named, the
signature rule waived for it) or `gateway mail refuse ID` (it moves to the rejected
folder; no reply: its sender is not known to be who the address says).

What people see of a held message is masked: its number, when, the department, the
sender's address as `h…@county.test`, the subject masked like any untrusted text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import select

from gateway.errors import GatewayError
from gateway.exchange.lifecycle import Gateway
from gateway.mail.imap import connect, ensure_folders, move
from gateway.masking import mask_untrusted
from gateway.store import session_scope
from gateway.store.mail_models import MailMessage


@dataclass(frozen=True)
class HeldMessage:
    id: int
    received_at: dt.datetime
    department: str | None
    sender: str
    subject: str
    why: str


def masked_sender(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}" if domain else f"{address[:1]}…"


def held(engine: Engine) -> list[HeldMessage]:
    """The held messages, oldest first, masked (`gateway mail held`, the console's jobs page)."""
    with session_scope(engine) as session:
        rows = session.exec(select(MailMessage).where(MailMessage.status == "held").order_by(MailMessage.id)).all()  # type: ignore[arg-type]
        return [
            HeldMessage(row.id or 0, row.received_at, row.department, masked_sender(row.sender), mask_untrusted(row.subject), row.detail)
            for row in rows
        ]


def _held_row(gateway: Gateway, number: int, also: tuple[str, ...] = ()) -> MailMessage:
    with session_scope(gateway.engine) as session:
        row = session.get(MailMessage, number)
        if row is None or row.status not in ("held", *also):
            raise GatewayError(f"没有编号为 {number} 的暂扣邮件 / no held message {number}: `gateway mail held` lists them")
        session.expunge(row)
        return row


def _move_held(gateway: Gateway, message_id: str, folder: str) -> bool:
    box = gateway.settings.mail
    if box is None:
        raise GatewayError("gateway.toml 没有 [mail] / gateway.toml has no [mail] (docs/deploy/mail.md)")
    client = connect(box, gateway.settings.home)
    try:
        ensure_folders(client, (box.held_folder, folder))
        client.select_folder(box.held_folder)
        uids = client.search(["HEADER", "Message-ID", message_id])
        for uid in uids:
            move(client, uid, folder)
        return bool(uids)
    finally:
        client.logout()


def release(gateway: Gateway, number: int, department: str | None = None) -> str:
    """Let held message `number` through as `department` (default: its sender's); the
    next pass processes it. Returns the department."""
    box = gateway.settings.mail
    row = _held_row(gateway, number, also=("released",))
    chosen = department or row.department
    if chosen is None:
        raise GatewayError(f"邮件 {number} 的发件人未登记:请用 --department 指明部门 / message {number} is from an unknown sender: name its department with --department")
    if chosen not in gateway.departments():
        raise GatewayError(f"部门 {chosen!r} 不存在 / no department {chosen!r}: one of {', '.join(gateway.departments())}")
    with session_scope(gateway.engine) as session:
        stored = session.get(MailMessage, number)
        assert stored is not None
        stored.status, stored.department = "released", chosen
        stored.detail = f"{stored.detail}; 已由操作员放行 / released by an operator".lstrip("; ")
    assert box is not None
    _move_held(gateway, row.message_id, box.folder)
    return chosen


def refuse(gateway: Gateway, number: int, reason: str) -> None:
    """Refuse held message `number`: never processed, moved to the rejected folder."""
    box = gateway.settings.mail
    row = _held_row(gateway, number)
    with session_scope(gateway.engine) as session:
        stored = session.get(MailMessage, number)
        assert stored is not None
        stored.status = "refused"
        stored.detail = f"{stored.detail}; 已由操作员拒收 / refused by an operator: {reason}".lstrip("; ")
    assert box is not None
    _move_held(gateway, row.message_id, box.rejected_folder)
