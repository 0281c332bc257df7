"""Transports: where files come from and where receipts go."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.intake.transports.base import FoundFile, Transport, is_temporary
from gateway.intake.transports.local import LocalMailbox

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.intake.transports.sftp import SftpTransport


def department_transports(settings: Settings) -> dict[str, Transport]:
    """department -> transport for departments not on the local mailbox ([sftp.NAME] tables)."""
    if not settings.sftp:
        return {}
    from gateway.intake.transports.sftp import sftp_transports  # paramiko is imported only when an SFTP server is configured

    return dict(sftp_transports(settings))


def __getattr__(name: str) -> object:
    if name == "SftpTransport":
        from gateway.intake.transports.sftp import SftpTransport

        return SftpTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FoundFile", "LocalMailbox", "SftpTransport", "Transport", "department_transports", "is_temporary"]
