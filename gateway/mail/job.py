"""The `mail` job of `gateway run` (registered through `register_jobs` like any plugin's):
one pass over the office's mailbox every `poll_seconds`, under a lease, so that one
process reads the box when several share a database. `gateway run --once` runs one pass
too (gateway/cli/app.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.hookspecs import hookimpl

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway
    from gateway.scheduler.runner import Job


def mail_job(gateway: Gateway) -> Job:
    from gateway.errors import TransportError
    from gateway.scheduler.runner import Job, JobContext, JobResult, PerThreadGateway

    settings = gateway.settings
    gateways = PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:  # noqa: ARG001
        from gateway.mail.intake import mail_pass
        from gateway.mail.reply import SmtpReplier

        threaded = gateways.get()
        try:
            done = mail_pass(threaded, SmtpReplier.configured(threaded.settings))
        except TransportError as exc:  # the server away: said, and tried again next time
            return JobResult("mailbox not read", str(exc))
        return JobResult(done.summary() if done is not None else "no [mail]")

    return Job("mail", run, every=settings.poll_seconds, description="read the office's mailbox, reply to each sender",
               close=gateways.close)


@hookimpl(trylast=True)
def register_jobs(register: Callable[[Job], None], gateway: Gateway) -> None:
    if gateway.settings.mail is not None:
        register(mail_job(gateway))
