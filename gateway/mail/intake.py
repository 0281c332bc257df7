"""One pass over the office's mailbox (邮件收件): each message of `[mail] folder`, oldest
first.

- From an address of `[mail.senders]`: every attachment is staged and processed as one
  exchange of that department (`Gateway.process_page`, exactly like a dropped file); its
  bytes are kept in the department's processed/ (or rejected/) folder. The message's row
  is committed, then it moves to `processed_folder` (or `rejected_folder` when every
  attachment was refused, or it had none), then its sender gets the reply.
- From any other address: never processed; its row says `held` and it moves to
  `held_folder`, for an operator.

Idempotent: an attachment's exchange is found again by its source path
(`mail/<Message-ID digest>/<position>/<name>`) and sha256, so a crash after the commit
only completes what was left (outbox, row, move); a message whose Message-ID has a row
is only moved again (and replied to, if that was not done). A new message with the same
bytes is a new exchange, a duplicate of the first with its own receipt.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import PurePosixPath
from typing import Protocol

from sqlmodel import col, select

from gateway.config import MailBox
from gateway.errors import TransportError
from gateway.exchange.lifecycle import Gateway
from gateway.intake.names import fit, shown
from gateway.intake.staging import sniff_file
from gateway.masking import scrub_message
from gateway.receipts.ledger import checkpoint_after_pass
from gateway.mail.imap import Mailbox, connect, ensure_folders, move
from gateway.store import Exchange, session_scope
from gateway.store.mail_models import MailAttachment, MailMessage

log = logging.getLogger("gateway.mail")

DONE = ("processed", "rejected", "held", "refused")
"""Statuses of a message already dealt with; `released` (an operator let a held message
through: it is back in the folder, taken on the next pass) is not one of them."""
SIGNATURE_SUFFIX = ".asc"


@dataclass
class Attachment:
    position: int
    name: str
    sha256: str
    exchange_id: int | None
    status: str
    fresh: bool = False
    """Its exchange was made (or completed) in this pass."""


@dataclass
class MessageOutcome:
    """What became of one message: its status, and each attachment's exchange."""

    message_id: str
    sender: str
    department: str | None
    subject: str
    status: str
    attachments: list[Attachment] = field(default_factory=list)
    detail: str = ""
    repeated: bool = False
    """Seen before (same Message-ID): nothing new was made."""


@dataclass
class MailPass:
    messages: list[MessageOutcome] = field(default_factory=list)

    def summary(self) -> str:
        counts = {status: sum(1 for m in self.messages if m.status == status) for status in ("processed", "rejected", "held")}
        return f"{len(self.messages)} message(s): {counts['processed']} processed, {counts['rejected']} rejected, {counts['held']} held"


class Replier(Protocol):
    def reply(self, gateway: Gateway, original: EmailMessage[str, str] | None, outcome: MessageOutcome) -> bool: ...


def message_id_of(message: EmailMessage[str, str], raw: bytes) -> str:
    found = str(message.get("Message-ID") or "").strip()
    return found or f"<sha256-{hashlib.sha256(raw).hexdigest()}@gateway.invalid>"


def sender_of(message: EmailMessage[str, str]) -> str:
    return email.utils.parseaddr(str(message.get("From") or ""))[1].strip().lower()


def attachment_name(raw_name: str | None, position: int) -> str:
    """The attachment's file name, its last path component only (a name is the sender's text)."""
    name = PurePosixPath((raw_name or "").replace("\\", "/")).name.strip()
    name = "".join(ch if ch.isprintable() else "_" for ch in name)  # no control characters in a file name
    if not name or name in (".", ".."):
        name = f"attachment-{position}"
    return fit(name)


class MailIntake:
    """Reads `[mail] folder` of the office's mailbox; one instance per pass."""

    def __init__(self, gateway: Gateway, box: MailBox, replier: Replier | None = None):
        self.gateway = gateway
        self.box = box
        self.replier = replier
        self.made = 0

    def run_pass(self) -> MailPass:
        box = self.box
        client = connect(box, self.gateway.settings.home)
        result = MailPass()
        try:
            ensure_folders(client, (box.processed_folder, box.rejected_folder, box.held_folder))
            client.select_folder(box.folder)
            self.reply_pending()
            for uid in sorted(client.search("ALL")):
                outcome = self._one(client, uid)
                if outcome is not None:
                    result.messages.append(outcome)
                    self.made += sum(1 for a in outcome.attachments if a.fresh)
        finally:
            try:
                client.logout()
            except OSError:
                pass
        if self.made:  # receipts were added: sign a ledger checkpoint over them
            checkpoint_after_pass(self.gateway.engine, self.gateway.signer, self.gateway.settings.home)
        return result

    def _one(self, client: Mailbox, uid: int) -> MessageOutcome | None:
        fetched = client.fetch([uid], ["RFC822"]).get(uid, {})
        raw = fetched.get(b"RFC822")
        if not isinstance(raw, bytes):
            return None  # expunged meanwhile
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        message_id, sender = message_id_of(message, raw), sender_of(message)
        with session_scope(self.gateway.engine) as session:
            row = session.exec(select(MailMessage).where(MailMessage.message_id == message_id)).first()
            if row is not None:
                session.expunge(row)
        if row is not None and row.status in DONE:
            outcome = self._outcome_of(row)
            outcome.repeated = True
            log.info("mail %s: seen before (%s); moved again, nothing new", _masked_id(message_id), row.status)
        elif len(raw) > self.box.max_message_mb * 1024 * 1024 and (row is not None or sender in self.box.senders):
            department = row.department if row is not None else self.box.senders[sender]
            outcome = self._record(message, message_id, sender, department, "rejected", [], "邮件过大 / the message is too large")
        else:
            released = row is not None and row.status == "released"
            department = row.department if released and row is not None else self.box.senders.get(sender)
            signed = signed_content(message, raw)
            parts = _parts(signed[0]) if signed is not None else _parts(message)
            if department is None:
                outcome = self._record(message, message_id, sender, None, "held", [], "发件人未登记 / unknown sender")
                log.warning("mail %s from an unregistered address: held, not processed", _masked_id(message_id))
            elif not released and (unsigned := self._unsigned(department, parts, signed)) is not None:
                outcome = self._record(message, message_id, sender, department, "held", [], unsigned)
                log.warning("mail %s of %s: %s; held, not processed", _masked_id(message_id), department, unsigned)
            else:
                attachments = self._attachments(parts, message_id, department)
                ok = any(a.status in ("processed", "duplicate") for a in attachments)
                detail = "" if attachments else _why_nothing(message)
                outcome = self._record(message, message_id, sender, department, "processed" if ok else "rejected", attachments, detail)
        # Only now, the exchanges and the row committed, does the message leave the folder.
        move(client, uid, self._folder(outcome.status))
        if self.replier is not None and outcome.status in ("processed", "rejected"):
            self._reply(message, outcome)
        return outcome

    def _reply(self, message: EmailMessage[str, str] | None, outcome: MessageOutcome) -> None:
        assert self.replier is not None
        try:
            self.replier.reply(self.gateway, message, outcome)
        except TransportError as exc:  # the message is safe in its folder: replied to on a later pass
            log.error("mail %s: reply not sent yet: %s", _masked_id(outcome.message_id), scrub_message(str(exc)))

    def reply_pending(self) -> None:
        """Replies not sent when their message was read (the SMTP server was away)."""
        if self.replier is None:
            return
        with session_scope(self.gateway.engine) as session:
            rows = session.exec(
                select(MailMessage).where(MailMessage.replied_at.is_(None), col(MailMessage.status).in_(("processed", "rejected")))  # type: ignore[union-attr]
                .order_by(MailMessage.id)  # type: ignore[arg-type]
            ).all()
            for row in rows:
                session.expunge(row)
        for row in rows:
            self._reply(None, self._outcome_of(row))

    def _folder(self, status: str) -> str:
        return folder_for(self.box, status)

    def _attachments(self, parts: list[tuple[int, str, bytes]], message_id: str, department: str) -> list[Attachment]:
        digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:24]
        done: list[Attachment] = []
        for position, name, data in parts:
            if name.lower().endswith(SIGNATURE_SUFFIX):
                continue  # a signature is never a drop (gateway/intake/signed_drops.py)
            sha256 = hashlib.sha256(data).hexdigest()
            if len(data) > self.box.max_attachment_mb * 1024 * 1024:
                done.append(self._too_large(message_id, position, name, sha256))
                continue
            done.append(self._attachment(message_id, department, position, name, sha256, data, f"mail/{digest}/{position}/{name}"))
        return done

    def _too_large(self, message_id: str, position: int, name: str, sha256: str) -> Attachment:
        with session_scope(self.gateway.engine) as session:
            known = session.exec(
                select(MailAttachment).where(
                    MailAttachment.message_id == message_id, MailAttachment.position == position, MailAttachment.sha256 == sha256
                )
            ).first()
            if known is None:
                session.add(MailAttachment(message_id=message_id, position=position, name=name, sha256=sha256, status="too_large"))
        log.warning("mail %s: attachment %d (%s) larger than max_attachment_mb; not processed", _masked_id(message_id), position, shown(name))
        return Attachment(position, name, sha256, None, "too_large")

    def _unsigned(
        self, department: str, parts: list[tuple[int, str, bytes]], signed: tuple[EmailMessage[str, str], bytes, bytes] | None = None
    ) -> str | None:
        """None when the department signs nothing, or the whole message is PGP/MIME signed
        (RFC 3156) by a key registered for it, or every attachment has a good detached
        signature `NAME.asc` beside it by such a key; else why it is held."""
        keys = self.gateway.drops.keys
        verifier = keys.verifier(department)
        if verifier is None:
            return None
        if signed is not None:
            _, content, mime_signature = signed
            with verifier:
                if verifier.verify(content, mime_signature).genuine:
                    return None
            return "PGP/MIME 签名无效,不是该部门登记的密钥所签 / the PGP/MIME signature is not a good one by the department's registered key"
        signatures = {name[: -len(SIGNATURE_SUFFIX)]: data for _, name, data in parts if name.lower().endswith(SIGNATURE_SUFFIX)}
        files = [(name, data) for _, name, data in parts if not name.lower().endswith(SIGNATURE_SUFFIX)]
        with verifier:
            for name, data in files:
                signature = signatures.get(name)
                if signature is None:
                    return "附件未签名(缺少 NAME.asc) / an attachment is not signed (no NAME.asc beside it)"
                staged = self.gateway.settings.staging_dir / f"{os.getpid()}-{uuid.uuid4().hex}.mail"
                try:
                    staged.write_bytes(data)
                    verdict = verifier.verify(staged, signature)
                finally:
                    staged.unlink(missing_ok=True)
                if not verdict.genuine:
                    return "签名无效,不是该部门登记的密钥所签 / a signature is not a good one by the department's registered key"
        return None

    def _attachment(
        self, message_id: str, department: str, position: int, name: str, sha256: str, data: bytes, source_path: str
    ) -> Attachment:
        engine = self.gateway.engine
        with session_scope(engine) as session:
            known = session.exec(
                select(MailAttachment).where(
                    MailAttachment.message_id == message_id, MailAttachment.position == position, MailAttachment.sha256 == sha256
                )
            ).first()
            if known is not None:
                return Attachment(position, name, sha256, known.exchange_id, known.status)
            # Committed and completed before a crash that came before this row: only recorded now.
            finished = session.exec(
                select(Exchange).where(
                    Exchange.department == department, Exchange.sha256 == sha256, Exchange.source_path == source_path,
                    Exchange.status != "received", Exchange.archived_path.is_not(None),  # type: ignore[union-attr]
                )
            ).first()
            exchange_id, status = (finished.id, finished.status) if finished is not None else (None, "")
        staged = self.gateway.settings.staging_dir / f"{os.getpid()}-{uuid.uuid4().hex}.mail"
        try:
            staged.write_bytes(data)
            if exchange_id is None:
                outcome = self.gateway.process_page(department, name, source_path, staged, sniff_file(staged), keep_copy=False)
                exchange_id, status = outcome.exchange_id, outcome.status
            # Kept under the exchange's number (two messages may carry files of one name); also
            # after a crash that came before the copy.
            transport = self.gateway.transport_for(department)
            folder, kept = "rejected" if status == "rejected" else "processed", f"mail-{exchange_id}-{name}"
            if not transport.exists(department, folder, kept):
                transport.put(department, folder, kept, staged)
        finally:
            staged.unlink(missing_ok=True)
        with session_scope(engine) as session:
            session.add(MailAttachment(message_id=message_id, position=position, name=name, sha256=sha256,
                                       exchange_id=exchange_id, status=status))
        log.info("mail %s: attachment %d (%s) -> exchange %s, %s", _masked_id(message_id), position, shown(name), exchange_id, status)
        return Attachment(position, name, sha256, exchange_id, status, fresh=True)

    def _record(
        self, message: EmailMessage[str, str], message_id: str, sender: str, department: str | None, status: str,
        attachments: list[Attachment], detail: str,
    ) -> MessageOutcome:
        subject = str(message.get("Subject") or "")
        with session_scope(self.gateway.engine) as session:
            row = session.exec(select(MailMessage).where(MailMessage.message_id == message_id)).first()
            if row is None:
                session.add(MailMessage(message_id=message_id, sender=sender, department=department, subject=subject,
                                        status=status, detail=detail))
            else:  # released by an operator: processed now
                row.department, row.status, row.detail = department, status, detail
        return MessageOutcome(message_id, sender, department, subject, status, attachments, detail)

    def _outcome_of(self, row: MailMessage) -> MessageOutcome:
        with session_scope(self.gateway.engine) as session:
            parts = session.exec(
                select(MailAttachment).where(MailAttachment.message_id == row.message_id).order_by(MailAttachment.position)  # type: ignore[arg-type]
            ).all()
            attachments = [Attachment(p.position, p.name, p.sha256, p.exchange_id, p.status) for p in parts]
        return MessageOutcome(row.message_id, row.sender, row.department, row.subject, row.status, attachments, row.detail)


def signed_content(message: EmailMessage[str, str], raw: bytes) -> tuple[EmailMessage[str, str], bytes, bytes] | None:
    """For a PGP/MIME signed message (multipart/signed, protocol application/pgp-signature):
    its signed part, the exact bytes signed (as sent, line ends made CRLF, RFC 3156 §5)
    and the signature; None for any other message."""
    if message.get_content_type() != "multipart/signed" or message.get_param("protocol") != "application/pgp-signature":
        return None
    payload = message.get_payload()
    boundary = message.get_boundary()
    if not isinstance(payload, list) or len(payload) != 2 or not boundary:
        return None
    first, second = payload
    if not isinstance(first, EmailMessage) or not isinstance(second, EmailMessage):
        return None
    signature = second.get_payload(decode=True)
    if not isinstance(signature, bytes):
        return None
    canonical = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    delimiter = b"\r\n--" + boundary.encode("ascii", "replace")
    start = canonical.find(delimiter + b"\r\n")
    if start < 0:
        return None
    start += len(delimiter) + 2
    end = canonical.find(delimiter, start)
    if end < 0:
        return None
    return first, canonical[start:end], signature


def _why_nothing(message: EmailMessage[str, str]) -> str:
    """Why a registered sender's message made no exchange (it had no file attached)."""
    if message.get_body(("plain",)) is None and message.get_body(("html",)) is not None:
        return "邮件只有 HTML 正文,没有附件:请把文件作为附件发送 / an HTML-only message with no attachment: send the file as an attachment"
    return "邮件没有附件 / the message has no attachment"


def folder_for(box: MailBox, status: str) -> str:
    return {"processed": box.processed_folder, "rejected": box.rejected_folder, "refused": box.rejected_folder}.get(status, box.held_folder)


def _parts(message: EmailMessage[str, str], depth: int = 0) -> list[tuple[int, str, bytes]]:
    """(position, file name, bytes) of each attachment that is a file, numbered from 1 in
    the order a mail client shows them. A forwarded mail (a message/rfc822 attachment: the
    clerk forwarded the mail that carried the file) gives its own attachments, in its place."""
    found: list[tuple[int, str, bytes]] = []
    for part in message.iter_attachments():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_content()
            if isinstance(inner, EmailMessage) and depth < 3:
                for _, inner_name, inner_data in _parts(inner, depth + 1):
                    found.append((len(found) + 1, inner_name, inner_data))
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            position = len(found) + 1
            found.append((position, attachment_name(part.get_filename(), position), payload))
    return found


def _masked_id(message_id: str) -> str:
    """A Message-ID in a log line: its digest only (it may carry a clerk's name)."""
    return "#" + hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:10]


def mail_pass(gateway: Gateway, replier: Replier | None = None) -> MailPass | None:
    """One pass over `[mail]`, or None when gateway.toml has no `[mail]`."""
    box = gateway.settings.mail
    if box is None:
        return None
    return MailIntake(gateway, box, replier).run_pass()


__all__ = ["Attachment", "MailIntake", "MailPass", "MessageOutcome", "mail_pass"]
