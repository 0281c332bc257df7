"""The gateway's business clock: what "now" and "today" are for due dates, cycles and
answers. Due dates and exchange cycles are days in China Standard Time (UTC+8, no
daylight saving), whatever the machine's own time zone.

Tests pin it with `pinned(...)` or `set_clock(...)`; a rehearsal (演练) pins it for a
whole process with the environment variable `GATEWAY_NOW` (an ISO 8601 moment, e.g.
`GATEWAY_NOW=2026-11-27T23:59:00+08:00`; without an offset it is China time): due dates,
cycles, answers and the time an answer is stamped as sent all read that moment, and the
`gateway` command says so on stderr (`pinned_banner`). Nothing else in the gateway reads
the time of day for these purposes. Leases and retry waits use the real
time (`time.time()`, `time.monotonic()`): they coordinate processes, not deadlines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator

CHINA = dt.timezone(dt.timedelta(hours=8), "CST")

_clock: Callable[[], dt.datetime] | None = None

ENVIRONMENT = "GATEWAY_NOW"


class ClockError(ValueError):
    """GATEWAY_NOW holds something that is not a moment."""


def environment_moment() -> dt.datetime | None:
    """The moment `GATEWAY_NOW` pins the clock at (aware, UTC), or None when it is unset or
    empty. A value without an offset is China time; a date alone is 00:00 China time."""
    text = os.environ.get(ENVIRONMENT, "").strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        raise ClockError(
            f"{ENVIRONMENT}={text!r} 不是时间点 is not a moment: write e.g. {ENVIRONMENT}=2026-11-27T23:59:00+08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA)
    return moment.astimezone(dt.UTC)


def pinned_banner() -> str | None:
    """What a command prints on stderr while `GATEWAY_NOW` pins the clock (None: not pinned)."""
    moment = environment_moment()
    if moment is None:
        return None
    shown = moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"【演练时钟】业务时钟已由 {ENVIRONMENT} 固定为 {shown}（北京时间）：期限、周期、反馈及发送时间均按此时刻计，不是真实时间。\n"
        f"[rehearsal clock] the business clock is pinned by {ENVIRONMENT} at {shown} China time: due dates, cycles, "
        "answers and sending times use that moment, not the real time."
    )


def now() -> dt.datetime:
    """The current moment, timezone-aware, in UTC: the pinned clock, else `GATEWAY_NOW`,
    else the real time."""
    if _clock is not None:
        moment = _clock()
    else:
        moment = environment_moment() or dt.datetime.now(dt.UTC)
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
