"""The `obligations` job of `gateway run`: every hour, open the submissions of the
statistical months begun (so a month not sent shows as missed the day after its 28th
without anyone running a command), mirror the platform's assist-checks and notices, and
make provisional due days final once the calendar knows their year. Under a lease, like
the reconciliation job (the scheduler is imported only when the job is built)."""

from __future__ import annotations

from typing import Any

EVERY_SECONDS = 3600.0


def obligations_job(settings: Any) -> Any:
    from gateway.scheduler.runner import Job, JobContext, JobResult, _PerThreadGateway

    gateways = _PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:  # noqa: ARG001
        from gateway.obligations.platform_mirror import mirror_platform
        from gateway.obligations.service import ensure_submissions, refresh_provisional
        from gateway.store import session_scope

        gateway = gateways.get()
        with session_scope(gateway.engine) as session:
            opened = ensure_submissions(session, settings)
            mirrored = mirror_platform(session)
        final = refresh_provisional(gateway.engine, settings)
        return JobResult(f"{opened} submission obligation(s) opened, {mirrored} platform item(s) mirrored, "
                         f"{final} provisional due date(s) made final")

    return Job("obligations", run, every=EVERY_SECONDS, description="open submissions due, mirror the platform's items",
               close=gateways.close)
