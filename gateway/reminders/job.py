"""The `obligations` job of `gateway run`: every hour, open the submissions of the
statistical months begun (so a month not sent shows as missed the day after its 28th
without anyone running a command), mirror the platform's assist-checks and notices, and
make provisional due days final once the calendar knows their year; on Fridays from 09:00
China time, send the weekly reminders (gateway/reminders/weekly.py). Under a lease, like
the reconciliation job (the scheduler is imported only when the job is built)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.hookspecs import hookimpl

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import Job

EVERY_SECONDS = 3600.0
REMIND_HOUR = 9  # the Friday reminder goes out with the first run from 09:00 China time


def obligations_job(settings: Settings) -> Job:
    from gateway.scheduler.runner import Job, JobContext, JobResult, PerThreadGateway

    gateways = PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:  # noqa: ARG001
        from gateway import clock
        from gateway.obligations.platform_mirror import mirror_platform
        from gateway.reminders.weekly import send_reminders
        from gateway.obligations.service import ensure_submissions, obligation_settings, refresh_provisional
        from gateway.store import session_scope

        gateway = gateways.get()
        with session_scope(gateway.engine) as session:
            opened = ensure_submissions(session, settings)
            mirrored = mirror_platform(session)
        final = refresh_provisional(gateway.engine, settings)
        summary = (f"{opened} submission obligation(s) opened, {mirrored} platform item(s) mirrored, "
                   f"{final} provisional due date(s) made final")
        error = None
        if obligation_settings(settings).remind and clock.china_now().hour >= REMIND_HOUR:
            sent = send_reminders(gateway)  # Fridays only; once a day per department
            delivered = [o for o in sent if o.status == "delivered"]
            if delivered:
                summary += f"; reminders to {', '.join(o.department for o in delivered)}"
            problems = [f"{o.department}: {o.reason}" for o in sent if o.status in ("held", "failed")]
            error = "; ".join(problems) or None
        return JobResult(summary, error)

    return Job("obligations", run, every=EVERY_SECONDS, description="open submissions due, mirror the platform's items",
               close=gateways.close)


@hookimpl(trylast=True)
def register_jobs(register: Callable[[Job], None], gateway: Gateway) -> None:
    """The built-in `obligations` job, through the same hook as a plugin's."""
    register(obligations_job(gateway.settings))
