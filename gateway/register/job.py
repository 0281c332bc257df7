"""The register's daily job in `gateway run`: fold what is new and send each township
(`town-<code>` departments) the name lists that fell due. At 06:30 China time and once when
`gateway run` starts; under a lease. Scheduled only when a township is configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.hookspecs import hookimpl

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import Job

AT = ["06:30"]


def register_job(settings: Settings) -> Job | None:
    """The `register-lists` job, or None while no department is named `town-<9-digit code>`."""
    from gateway.register.lists import TOWNSHIP_RECIPIENT
    from gateway.scheduler.runner import Job, JobContext, JobResult, PerThreadGateway

    if not any(TOWNSHIP_RECIPIENT.match(d) for d in settings.departments):
        return None
    gateways = PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:  # noqa: ARG001
        from gateway import clock
        from gateway.register.lists import deliver_due, describe

        outcomes = deliver_due(gateways.get(), clock.today())
        held = [o.reason for o in outcomes if o.status == "held" and o.reason]
        return JobResult(describe(outcomes), "; ".join(sorted(set(held))) or None)

    return Job("register-lists", run, at=AT, description="fold the register, send the townships their name lists when due",
               close=gateways.close)


@hookimpl(trylast=True)
def register_jobs(register: Callable[[Job], None], gateway: Gateway) -> None:
    """The built-in `register-lists` job, through the same hook as a plugin's."""
    job = register_job(gateway.settings)
    if job is not None:
        register(job)
