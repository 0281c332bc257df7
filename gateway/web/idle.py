"""The console's idle timeout (空闲超时): a session nobody used for IDLE_MINUTES ends,
whatever is left of its eight hours.

Kept in this process's memory, not in the database: marking every request as "seen" would
write a row per page load, and on SQLite a page must never wait for an ingest's write lock
(the audit-log issue). After `gateway serve` restarts, a session's idle time starts again
from its next request; its absolute expiry (accounts.SESSION_HOURS) still holds. With
several `serve` processes behind one address, each keeps its own idle clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

IDLE_MINUTES = 30


class IdleSessions:
    """When each session token (by its digest) was last used, on a monotonic clock."""

    def __init__(self, idle_seconds: float = IDLE_MINUTES * 60, clock: Callable[[], float] = time.monotonic):
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def touch(self, digest: str) -> bool:
        """Mark a session used now; False when it had been idle too long (it must end)."""
        now = self._clock()
        with self._lock:
            last = self._seen.get(digest)
            if last is not None and now - last > self.idle_seconds:
                del self._seen[digest]
                return False
            self._seen[digest] = now
            if len(self._seen) > 10_000:  # forget the long idle ones now and then
                self._seen = {d: t for d, t in self._seen.items() if now - t <= self.idle_seconds}
            return True

    def forget(self, digest: str) -> None:
        with self._lock:
            self._seen.pop(digest, None)
