"""HTTP for pulls and feedback: a `requests` session per source with connect and read
timeouts, bearer-token auth from the environment, and retries with exponential backoff
and jitter that honour `Retry-After` on 429 and 503 (urllib3's `Retry`, mounted on the
session's adapters).

Retried: connection errors, read errors before the response, and 429, 502, 503, 504.
Backoff before retry n (n = 1, 2, ...) is `backoff * 2**(n-1)` seconds, at most
`backoff_max`, plus up to `backoff_jitter` seconds at random; a `Retry-After` on 429/503
replaces it. A `Retry-After` longer than `retry_after_max` is not slept through: the run
stops with an error that says so, and the next scheduled run tries again.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from gateway.config import PullSource, pull_token_variable
from gateway.errors import ConfigError, TransportError
from gateway.masking import mask_identifiers
from gateway.intake.staging import CHUNK, Sniffed, Sniffer

log = logging.getLogger("gateway.pulls")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "interagency-gateway (+docs/pulls.md)"


class PullError(TransportError):
    """A partner could not be reached or refused us this run; the cursor stays and the
    next run tries again. The message never holds the token or personal data. `status`
    is the partner's HTTP status when it answered at all."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class WaitTooLong(PullError):
    """The partner asked (Retry-After) for a longer wait than `retry_after_max`."""


@dataclass
class RetryLog:
    """What the retries of one session did, for the run's report and the tests."""

    waits: list[tuple[str, float]] = field(default_factory=list)
    """(reason, seconds) for every wait before a retry."""

    @property
    def retries(self) -> int:
        return len(self.waits)

    @property
    def waited(self) -> float:
        return sum(seconds for _, seconds in self.waits)


class PullRetry(Retry):
    """urllib3's Retry, with backoff from the first retry on, a cap on Retry-After, and a
    log of each wait (urllib3 retries the first time without waiting)."""

    def __init__(
        self,
        *args: Any,
        longest_wait: float = 600.0,
        label: str = "",
        record: RetryLog | None = None,
        sleeper: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.longest_wait = longest_wait  # (urllib3's own retry_after_max would shorten the wait silently)
        self.label = label
        self.record = record if record is not None else RetryLog()
        self.sleeper = sleeper

    def new(self, **kw: Any) -> PullRetry:
        fresh = super().new(**kw)
        fresh.longest_wait, fresh.label, fresh.record, fresh.sleeper = (
            self.longest_wait, self.label, self.record, self.sleeper,
        )
        return fresh

    def get_backoff_time(self) -> float:
        failures = len([entry for entry in self.history if entry.redirect_location is None])
        if failures < 1 or self.backoff_factor <= 0:
            return 0.0
        value = min(self.backoff_max, self.backoff_factor * (2 ** (failures - 1)))
        if self.backoff_jitter:
            value += random.random() * self.backoff_jitter
        return float(value)

    def _last(self) -> str:
        if not self.history:
            return "error"
        last = self.history[-1]
        return f"HTTP {last.status}" if last.status else type(last.error).__name__ if last.error else "error"

    def sleep(self, response: Any = None) -> None:
        if self.respect_retry_after_header and response is not None and response.status in self.RETRY_AFTER_STATUS_CODES:
            after = self.get_retry_after(response)
            if after is not None and after > self.longest_wait:
                raise WaitTooLong(
                    f"{self.label}: the partner asked us to wait {after:.0f}s (Retry-After), more than "
                    f"retry_after_max = {self.longest_wait:.0f}s; the next run tries again"
                )
            if after:
                self._wait(f"{self._last()}, Retry-After", after)
                return
        backoff = self.get_backoff_time()
        if backoff > 0:
            self._wait(f"{self._last()}, backoff", backoff)

    def _wait(self, why: str, seconds: float) -> None:
        self.record.waits.append((why, seconds))
        log.warning("%s: %s; retry %d in %.1fs", self.label, why, len(self.record.waits), seconds)
        self.sleeper(seconds)


def source_token(name: str, source: PullSource) -> str:
    variable = pull_token_variable(name, source)
    token = os.environ.get(variable, "").strip()
    if not token:
        raise ConfigError(f"No token for pull source {name!r}: set {variable} (the partner's bearer token)")
    return token


def make_session(name: str, source: PullSource, *, record: RetryLog | None = None, token: str | None = None) -> requests.Session:
    """A session for one source: its token, its retry policy; timeouts are given per request."""
    retry = PullRetry(
        total=source.retries,
        connect=source.retries,
        read=source.retries,
        status=source.retries,
        other=0,
        backoff_factor=source.backoff,
        backoff_jitter=source.backoff_jitter,
        backoff_max=source.backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),  # FKXX feedback is idempotent per XXBH
        respect_retry_after_header=True,
        raise_on_status=True,
        longest_wait=source.retry_after_max,
        label=name,
        record=record,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=2)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Authorization"] = f"Bearer {token if token is not None else source_token(name, source)}"
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = False  # no proxy or .netrc from the environment: the token goes only to the partner
    return session


def endpoint(source: PullSource, path: str) -> str:
    return source.url.rstrip("/") + path


def _refused(name: str, response: requests.Response, token_hint: str) -> PullError:
    status = response.status_code
    if status in (401, 403):
        return PullError(f"{name}: the partner refused our token (HTTP {status}); check {token_hint}", status)
    kind = response.headers.get("Content-Type", "")
    # What the partner said, shortened, with anything shaped like an ID number masked.
    snippet = ""
    if "text" in kind or "xml" in kind:
        snippet = re.sub(r"<\?xml[^>]*\?>", "", response.text[:400]).replace("\n", " ").strip()
        snippet = mask_identifiers(snippet)
    return PullError(f"{name}: HTTP {status} from {response.url.split('?')[0]}" + (f": {snippet}" if snippet else ""), status)


def _failed(name: str, exc: Exception) -> PullError:
    if isinstance(exc, WaitTooLong):
        return exc
    if isinstance(exc, requests.exceptions.RetryError):
        return PullError(f"{name}: the partner kept failing ({_reason(exc)}); retries exhausted, the next run tries again")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return PullError(f"{name}: could not connect in time ({_reason(exc)}); the next run tries again")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return PullError(f"{name}: partner unreachable ({_reason(exc)}); the next run tries again")
    if isinstance(exc, requests.exceptions.Timeout):
        return PullError(f"{name}: the partner stopped answering (read timeout); the next run tries again")
    return PullError(f"{name}: {type(exc).__name__}: {exc}")


def _reason(exc: Exception) -> str:
    inner = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", None)
    text = str(reason or inner)
    # urllib3 repeats the pool and URL; keep the part that says what happened.
    for marker in ("Caused by ", "): "):
        if marker in text:
            text = text.split(marker, 1)[-1]
    return text.strip("()")[:200]


def fetch(
    session: requests.Session,
    name: str,
    url: str,
    params: dict[str, str],
    target: Path,
    source: PullSource,
) -> Sniffed:
    """GET `url` and stream the body into `target` (fsynced) through the staging sniffer.
    Errors while the body streams (a dropped connection) are retried like the request."""
    token_hint = pull_token_variable(name, source)
    limit = int(source.max_page_mb * 1024 * 1024)
    attempts = source.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            with session.get(url, params=params, timeout=(source.connect_timeout, source.read_timeout), stream=True) as response:
                if response.status_code >= 400:
                    raise _refused(name, response, token_hint)
                sniffer = Sniffer()
                with open(target, "wb") as out:
                    for chunk in response.iter_content(CHUNK):
                        sniffer.feed(chunk)
                        out.write(chunk)
                        if out.tell() > limit:
                            raise PullError(f"{name}: the page is larger than max_page_mb = {source.max_page_mb:g}")
                    out.flush()
                    os.fsync(out.fileno())
                return sniffer.result()
        except PullError:
            raise
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as exc:
            streaming = isinstance(exc, requests.exceptions.ChunkedEncodingError) or "Read timed out" in str(exc)
            if not streaming or attempt == attempts:
                raise _failed(name, exc) from None
            wait = min(source.backoff_max, source.backoff * 2 ** (attempt - 1))
            log.warning("%s: the page broke off while streaming (%s); retry in %.1fs", name, type(exc).__name__, wait)
            time.sleep(wait)
        except requests.exceptions.RequestException as exc:
            raise _failed(name, exc) from None
    raise PullError(f"{name}: no page after {attempts} attempts")  # pragma: no cover - the loop returns or raises


def post(session: requests.Session, name: str, url: str, body: bytes, source: PullSource) -> requests.Response:
    """POST `body` (UTF-8 XML); raise PullError unless the partner answers 2xx."""
    try:
        response = session.post(
            url, data=body, headers={"Content-Type": "application/xml; charset=utf-8"},
            timeout=(source.connect_timeout, source.read_timeout),
        )
    except requests.exceptions.RequestException as exc:
        raise _failed(name, exc) from None
    if response.status_code >= 300:
        raise _refused(name, response, pull_token_variable(name, source))
    return response
