"""The IMAP side of the office's mailbox, on imapclient: a connection whose server
certificate is checked against the configured CA (or pinned by its sha256), the folders
the gateway moves messages to, and the move itself."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, cast

from imapclient import IMAPClient  # type: ignore[import-untyped]
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]

from gateway.config import MailBox
from gateway.errors import TransportError


class Mailbox(Protocol):
    """What the intake uses of an IMAP connection (imapclient's `IMAPClient`)."""

    def select_folder(self, folder: str) -> dict[bytes, object]: ...

    def search(self, criteria: str | list[str]) -> list[int]: ...

    def fetch(self, messages: list[int], data: list[str]) -> dict[int, dict[bytes, object]]: ...

    def folder_exists(self, folder: str) -> bool: ...

    def create_folder(self, folder: str) -> object: ...

    def move(self, messages: list[int], folder: str) -> object: ...

    def append(self, folder: str, msg: bytes) -> object: ...

    def logout(self) -> object: ...


def tls_context(box: MailBox, home: Path) -> ssl.SSLContext:
    """Trust only the configured CA; with `cert_sha256` alone the chain is not checked but
    the certificate itself must be the pinned one (`check_pin`)."""
    if box.ca_file is not None:
        ca = box.ca_file if box.ca_file.is_absolute() else home / box.ca_file
        if not ca.is_file():
            raise TransportError(f"[mail] ca_file 不存在 / does not exist: {ca}")
        return ssl.create_default_context(cafile=str(ca))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def check_pin(box: MailBox, der: bytes | None) -> None:
    if box.cert_sha256 is None:
        return
    wanted = box.cert_sha256.replace(":", "").lower()
    found = hashlib.sha256(der or b"").hexdigest()
    if found != wanted:
        raise TransportError(
            f"邮件服务器证书与 cert_sha256 不符 / the mail server's certificate is not the pinned one (sha256 {found})"
        )


def connect(box: MailBox, home: Path) -> Mailbox:
    """Logged in to the office's mailbox, TLS checked before the password is sent."""
    context = tls_context(box, home)
    try:
        if box.security == "imaps":
            client = IMAPClient(box.imap_host, port=box.imap_port, ssl=True, ssl_context=context, timeout=box.timeout)
        else:
            client = IMAPClient(box.imap_host, port=box.imap_port, ssl=False, timeout=box.timeout)
            client.starttls(context)
        check_pin(box, client.socket().getpeercert(binary_form=True))
        client.login(box.user, box.password())
    except (OSError, IMAPClientError) as exc:
        raise TransportError(f"邮件服务器 {box.imap_host}:{box.imap_port} 无法连接或登录 / cannot reach or log in to the mail server: {exc}") from exc
    return cast(Mailbox, client)


def ensure_folders(client: Mailbox, folders: Iterable[str]) -> None:
    for folder in folders:
        if not client.folder_exists(folder):
            client.create_folder(folder)


def move(client: Mailbox, uid: int, folder: str) -> None:
    """MOVE (RFC 6851; Dovecot and every current server have it)."""
    client.move([uid], folder)
