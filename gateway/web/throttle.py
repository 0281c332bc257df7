"""Sign-in throttle (登录限流): token buckets per client address and per (client address,
name), kept in this process's memory.

Why memory and not the database: an attempt over the limit must cost nothing — no Argon2,
no database write, no wait on the write lock an ingest holds — and a bucket in the database
would need a write per attempt, the very contention sign-in must not add. The price: the
buckets are per `gateway serve` process and start full after a restart; the lasting part
(the back-off after repeated failures, gateway/web/accounts.py) is in the database, where
`gateway users unlock` can clear it.

Behind a reverse proxy every client has the proxy's address (the console does not trust
X-Forwarded-For), so the per-client bucket then throttles all clients together."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

# A client (one address): a burst of 30 attempts, then one every 10 s (6 a minute).
CLIENT_BURST, CLIENT_REFILL_SECONDS = 30, 10.0
# One client for one name: a burst of 10 attempts, then one a minute.
PAIR_BURST, PAIR_REFILL_SECONDS = 10, 60.0
# Buckets idle this long are full again and are forgotten (the dictionary stays small).
_FORGET_AFTER_SECONDS = 3600.0
_MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """Buckets of one kind: `take(key)` spends a token or says how many seconds until one
    is there again."""

    def __init__(self, burst: int, refill_seconds: float, clock=time.monotonic):  # type: ignore[no-untyped-def]
        self.burst, self.refill_seconds, self._clock = burst, refill_seconds, clock
        self._buckets: dict[object, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: object) -> int:
        """0 when a token was spent; otherwise the whole seconds to wait (≥ 1)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_BUCKETS:
                    self._forget(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) / self.refill_seconds)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return max(1, math.ceil((1.0 - bucket.tokens) * self.refill_seconds))

    def _forget(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if now - b.at > _FORGET_AFTER_SECONDS]:
            del self._buckets[key]
        if len(self._buckets) >= _MAX_BUCKETS:  # a flood of fresh keys: start again rather than grow
            self._buckets.clear()


class SignInThrottle:
    """Both buckets of a console: a client's and the client's for one name."""

    def __init__(self) -> None:
        self.clients = TokenBuckets(CLIENT_BURST, CLIENT_REFILL_SECONDS)
        self.pairs = TokenBuckets(PAIR_BURST, PAIR_REFILL_SECONDS)

    def retry_after(self, client: str, name: str) -> int:
        """0 when the attempt may go ahead, else the seconds for `Retry-After`."""
        wait = self.clients.take(client)
        if wait:
            return wait
        return self.pairs.take((client, name))
