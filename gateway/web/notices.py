"""The one-line outcome a page shows after a form (POST-redirect-GET): "协查请求 … 已发送",
"Evaluated 3 rules".

The outcome travels in the redirect's query string, so that reloading the page shows it
again without sending anything twice. It is signed (HMAC-SHA256) with a key of this
console process and the session's CSRF token: a link someone else wrote
(`/reconciliation?evaluated=all+checks+passed`) shows nothing, and an outcome is good for
the session it was made for only. After `gateway serve` restarts, an old outcome link
shows nothing (the key is new); the work it reports is in the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode


def new_key() -> bytes:
    return secrets.token_bytes(32)


def _signature(key: bytes, session_csrf: str, message: str, ok: bool) -> str:
    body = "\x1f".join((session_csrf, "1" if ok else "0", message)).encode("utf-8", "surrogatepass")
    return hmac.new(key, body, hashlib.sha256).hexdigest()[:32]


def outcome_query(key: bytes, session_csrf: str, message: str, ok: bool = True) -> str:
    """`done=…&ok=…&sig=…` for a redirect to the page that shows the outcome."""
    return urlencode({"done": message, "ok": "true" if ok else "false", "sig": _signature(key, session_csrf, message, ok)})


def verified(key: bytes, session_csrf: str, message: str | None, ok: bool, signature: str | None) -> bool:
    """Whether `message` came from this console for this session (else it is not shown)."""
    if not message or not signature:
        return False
    return hmac.compare_digest(signature, _signature(key, session_csrf, message, ok))
