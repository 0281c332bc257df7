"""The built-in `population-reports` job (定时报表任务), registered through the `register_jobs`
hook like a plugin's: every hour, produce the reports that are due and not yet in the
population office's outbox (`scheduled.produce_due`). Only when `[reports] scheduled` is on.

Light on purpose: the plugin manager imports this module; the report code is imported
when the job is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.hookspecs import hookimpl

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import Job


@hookimpl(trylast=True)
def register_jobs(register: Callable[[Job], None], gateway: Gateway) -> None:
    from gateway.population_reports.settings import report_settings

    if report_settings(gateway.settings).scheduled:
        from gateway.population_reports.scheduled import report_job

        register(report_job(gateway.settings))
