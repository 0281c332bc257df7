"""The daily `retention` job of `gateway run` (保存期限清除): `gateway retention run` at 03:30
China time and once when `gateway run` starts, under a lease. Scheduled only while
`[retention]` has rules: without one nothing is ever deleted, so there is no job."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.hookspecs import hookimpl

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import Job

AT = ["03:30"]
NAME = "retention"


def retention_job(settings: Settings) -> Job | None:
    """The `retention` job, or None while `[retention]` has no rule (a bad rule is a ConfigError here)."""
    from gateway.retention.rules import load_rules
    from gateway.scheduler.runner import Job, JobContext, JobResult, PerThreadGateway

    rules = load_rules(settings.retention)
    if not rules.any:
        return None
    gateways = PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:  # noqa: ARG001
        from gateway.retention.purge import run_retention

        return JobResult(run_retention(gateways.get().engine, settings, rules).summary())

    return Job(NAME, run, at=AT, description="purge records, row errors and archived files past their [retention] rule",
               close=gateways.close)


@hookimpl(trylast=True)
def register_jobs(register: Callable[[Job], None], gateway: Gateway) -> None:
    """The built-in `retention` job, through the same hook as a plugin's."""
    job = retention_job(gateway.settings)
    if job is not None:
        register(job)
