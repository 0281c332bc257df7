"""Transports: where files come from and where receipts go."""

from .base import FoundFile, Transport, is_temporary
from .local import LocalMailbox

__all__ = ["FoundFile", "LocalMailbox", "Transport", "is_temporary"]
