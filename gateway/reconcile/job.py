"""The daily reconciliation job of `gateway run`: evaluate every rule as of today (China
time) and send each department concerned its list when it changed. At 07:00 China time by
default (`[reconciliation] at = ["07:00"]`; an empty list disables it), and once when
`gateway run` starts; under a lease, so one process runs it when several share a database."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.hookspecs import hookimpl

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import Job

DEFAULT_AT = ["07:00"]


def job_times(settings: Settings) -> list[str]:
    times = (settings.reconciliation or {}).get("at", DEFAULT_AT)
    if isinstance(times, str):
        times = [times]
    if not isinstance(times, list) or not all(isinstance(t, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t) for t in times):
        raise ConfigError(f"[reconciliation] at = {times!r}: write times of day in China time, e.g. [\"07:00\"]")
    return times


def reconcile_job(settings: Settings) -> Job | None:
    """The `reconcile` job, or None when `[reconciliation] at = []`."""
    from gateway.scheduler.runner import Job, JobContext, JobResult, PerThreadGateway

    times = job_times(settings)
    if not times:
        return None
    deliver = bool((settings.reconciliation or {}).get("deliver", True))
    gateways = PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:  # noqa: ARG001
        from gateway import clock
        from gateway.reconcile.evaluate import evaluate

        gateway = gateways.get()
        today = clock.today()
        evaluation = evaluate(gateway.engine, settings, today)
        summary = evaluation.summary()
        if deliver:
            from gateway.reconcile.deliver import deliver as send

            outcomes = send(gateway, today)
            sent = [o for o in outcomes if o.status == "delivered"]
            held = [o for o in outcomes if o.status == "held"]
            summary += f"; {len(sent)} list(s) delivered, {len(held)} held"
        return JobResult(summary)

    return Job("reconcile", run, at=times, description="open and close discrepancies, send each department its list",
               close=gateways.close)


@hookimpl(trylast=True)
def register_jobs(register: Callable[[Job], None], gateway: Gateway) -> None:
    """The built-in `reconcile` job, through the same hook as a plugin's."""
    job = reconcile_job(gateway.settings)
    if job is not None:
        register(job)
