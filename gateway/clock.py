"""The gateway's business clock: what "now" and "today" are for due dates, cycles and
answers. Due dates and exchange cycles are days in China Standard Time (UTC+8, no
daylight saving), whatever the machine's own time zone.

Tests (and rehearsals) pin it with `pinned(...)` or `set_clock(...)`; nothing else in
the gateway reads the time of day for these purposes. Leases and retry waits use the real
time (`time.time()`, `time.monotonic()`): they coordinate processes, not deadlines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator

CHINA = dt.timezone(dt.timedelta(hours=8), "CST")

_clock: Callable[[], dt.datetime] | None = None


def now() -> dt.datetime:
    """The current moment, timezone-aware, in UTC."""
    moment = _clock() if _clock is not None else dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise ValueError("the gateway clock must give timezone-aware datetimes")
    return moment.astimezone(dt.UTC)


def china_now() -> dt.datetime:
    """The current moment in China Standard Time."""
    return now().astimezone(CHINA)


def today() -> dt.date:
    """Today's date in China."""
    return china_now().date()


def in_china(moment: dt.datetime) -> dt.datetime:
    """`moment` in China Standard Time; a naive value is taken as UTC (as stored)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(CHINA)


def start_of_day(day: dt.date) -> dt.datetime:
    """00:00 China time on `day`, as an aware datetime."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=CHINA)


def set_clock(clock: Callable[[], dt.datetime] | None) -> None:
    """Replace the clock (None: the real one)."""
    global _clock
    _clock = clock


@contextlib.contextmanager
def pinned(moment: dt.datetime | Callable[[], dt.datetime]) -> Iterator[None]:
    """Within the block, the clock says `moment` (or whatever the callable returns)."""
    previous = _clock
    set_clock(moment if callable(moment) else (lambda: moment))
    try:
        yield
    finally:
        set_clock(previous)
