"""The reply to a processed message (回复邮件): submission with STARTTLS and login, the
server's certificate checked as for IMAP. Chinese first, then English; quoting the
original subject (`Re: ...`, In-Reply-To, References); to the registered From address
(never a Reply-To); each attachment's outcome, and for
each its signed receipt, the receipt's `.asc` and the rejection report attached: the
receipt the clerk keeps, verifiable with plain gpg.

One reply per Message-ID: `mailmessage.replied_at` is set once the server took it, and a
message seen again is not answered again. (A crash between the server taking the reply
and that row can send it twice: a reply is never lost for it.) A held message is never
answered: its sender is not known to be who the address says."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import smtplib
import tempfile
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import select

from gateway.config import MailBox, Settings
from gateway.errors import TransportError
from gateway.exchange.lifecycle import Gateway
from gateway.mail.imap import check_pin, tls_context
from gateway.mail.intake import Attachment, MessageOutcome
from gateway.store import Exchange, Receipt, session_scope
from gateway.store.mail_models import MailMessage

log = logging.getLogger("gateway.mail")

STATUS_TEXT = {
    "processed": ("已处理", "processed"),
    "duplicate": ("重复文件(与已收文件相同,未重复入库)", "a duplicate of a file already received: nothing stored twice"),
    "rejected": ("被拒收", "refused"),
    "received": ("处理中", "being processed"),
    "too_large": ("附件过大,未处理(max_attachment_mb)", "larger than the gateway takes: not processed"),
}
MESSAGE_TEXT = {
    "processed": ("您的邮件已处理,回执附后。", "Your message was processed; the receipts are attached."),
    "rejected": ("您的邮件未能处理,原因见下。", "Your message could not be processed; see below."),
}


def reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def body_text(outcome: MessageOutcome) -> str:
    """Chinese first, then English; the file names are the sender's own."""
    zh, en = MESSAGE_TEXT.get(outcome.status, MESSAGE_TEXT["rejected"])
    lines_zh, lines_en = [zh], [en]
    if outcome.detail:
        reason_zh, _, reason_en = outcome.detail.partition(" / ")
        lines_zh.append(f"原因:{reason_zh}")
        lines_en.append(f"Reason: {reason_en or reason_zh}")
    for part in outcome.attachments:
        status_zh, status_en = STATUS_TEXT.get(part.status, (part.status, part.status))
        number = f"交换编号 {part.exchange_id}" if part.exchange_id else "未入库"
        lines_zh.append(f"附件 {part.position}「{part.name}」:{status_zh}({number})")
        lines_en.append(f"Attachment {part.position} \"{part.name}\": {status_en} (exchange {part.exchange_id or '-'})")
    footer_zh = "回执由网关以 GnuPG 签名,可用 gpg --verify 核验。此邮件由系统自动发送。"
    footer_en = "Each receipt is signed with GnuPG by the gateway: check it with gpg --verify. This message was sent automatically."
    return "\n".join([*lines_zh, "", footer_zh, "", "-" * 40, "", *lines_en, "", footer_en]) + "\n"


class SmtpReplier:
    """Sends the replies through `[mail] smtp_host`."""

    def __init__(self, box: MailBox, home: Path):
        self.box = box
        self.home = home

    @classmethod
    def configured(cls, settings: Settings) -> SmtpReplier | None:
        box = settings.mail
        if box is None or box.smtp_port is None:
            return None
        return cls(box, settings.home)

    def reply(self, gateway: Gateway, original: EmailMessage[str, str] | None, outcome: MessageOutcome) -> bool:
        """Answer `original` once; False when it was answered before. `original` None: a
        reply that could not be sent when its message was read (the row says to whom)."""
        with session_scope(gateway.engine) as session:
            row = session.exec(select(MailMessage).where(MailMessage.message_id == outcome.message_id)).one()
            if row.replied_at is not None:
                return False
        message = self.compose(gateway, original, outcome)
        self.send(message)
        with session_scope(gateway.engine) as session:
            row = session.exec(select(MailMessage).where(MailMessage.message_id == outcome.message_id)).one()
            row.replied_at = dt.datetime.now(dt.UTC).replace(microsecond=0)  # when it was sent, not business time
        log.info("mail: reply sent (%s, %d attachment(s))", outcome.status, len(outcome.attachments))
        return True

    def compose(self, gateway: Gateway, original: EmailMessage[str, str] | None, outcome: MessageOutcome) -> EmailMessage[str, str]:
        box = self.box
        sender = box.from_address or box.user
        message: EmailMessage[str, str] = EmailMessage()
        message["From"] = sender
        # To the registered address itself, never a Reply-To: the receipt and the report go
        # to the department's box, not wherever the message asks.
        message["To"] = outcome.sender
        message["Subject"] = reply_subject(outcome.subject)
        message["Date"] = email.utils.formatdate(localtime=False)
        message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
        message["In-Reply-To"] = outcome.message_id
        earlier = str(original.get("References") or "").strip() if original is not None else ""
        message["References"] = " ".join(filter(None, [earlier, outcome.message_id]))
        message["Auto-Submitted"] = "auto-replied"  # RFC 3834: no mail loop with an autoresponder
        message.set_content(body_text(outcome))
        for part in outcome.attachments:
            self._attach(gateway, message, part)
        return message

    def _attach(self, gateway: Gateway, message: EmailMessage[str, str], part: Attachment) -> None:
        if part.exchange_id is None:
            return
        with session_scope(gateway.engine) as session:
            exchange = session.get(Exchange, part.exchange_id)
            receipt = session.exec(select(Receipt).where(Receipt.exchange_id == part.exchange_id)).first()
            if exchange is None or receipt is None:
                return
            stem, department = exchange.outbox_stem or exchange.file_name, exchange.department
            body, signature = receipt.body.encode("utf-8"), receipt.signature.encode("ascii")
        message.add_attachment(body, maintype="application", subtype="json", filename=f"{stem}.receipt.json")
        message.add_attachment(signature, maintype="application", subtype="pgp-signature", filename=f"{stem}.receipt.json.asc")
        report = f"{stem}.errors.csv"
        transport = gateway.transport_for(department)
        if transport.exists(department, "outbox", report):
            with tempfile.TemporaryDirectory(dir=gateway.settings.staging_dir) as scratch:
                target = Path(scratch) / "report.csv"
                transport.fetch(department, "outbox", report, target)
                message.add_attachment(target.read_bytes(), maintype="text", subtype="csv", filename=report)

    def send(self, message: EmailMessage[str, str]) -> None:
        box = self.box
        host = box.smtp_host or box.imap_host
        try:
            with smtplib.SMTP(host, box.smtp_port, timeout=box.timeout) as client:
                client.starttls(context=tls_context(box, self.home))
                peer = client.sock.getpeercert(binary_form=True) if client.sock is not None and hasattr(client.sock, "getpeercert") else None
                check_pin(box, peer)
                client.login(box.smtp_user or box.user, box.smtp_password())
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"回复邮件无法发送 / the reply could not be sent through {host}:{box.smtp_port}: {exc}") from exc
