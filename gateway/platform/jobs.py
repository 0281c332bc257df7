"""The built-in exchange jobs of `gateway run` (定时任务), registered through the
`register_jobs` hook like a plugin's (gateway/hookspecs.py, docs/plugins.md):

- `inboxes`: poll every inbox, every `poll_seconds`, on every process (no lease: the
  drops themselves are claimed by the pipeline);
- `pull:NAME` for each enabled `[pulls.NAME]` (its `every` or `at` times, China time);
- `assist-checks` (every 5 minutes, when a platform pull is enabled): register new
  requests and notices, forward those about a configured township's people to it
  (转送, gateway/platform/forward.py; the pull and inbox jobs do too after they register),
  make provisional due dates final when the calendar allows, send answers still waiting; draft the county's own notices (通报) the accepted records owe and
  send them when `send_notices = true` (gateway/platform/notices_out.py), as the inbox
  job does after every file.

They live here, in the platform's package, because each does the platform's follow-up
after its exchange work: registering the assist-check requests and notices a page or a
drop of the national platform brought, and sending the answers waiting for it. Heavy
modules are imported when a job runs, not when the plugin manager loads this one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.config import Settings, parse_every
from gateway.errors import GatewayError
from gateway.hookspecs import hookimpl
from gateway.scheduler.runner import Job, JobContext, JobResult, PerThreadGateway

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway, Outcome

log = logging.getLogger("gateway.scheduler")

ASSIST_CHECK_EVERY = 300.0


def _forward(gateway: Gateway) -> tuple[str, list[str]]:
    """Forward to the townships what the last sync registered (转送); never raises."""
    from gateway.platform.forward import forward_pending

    try:
        forwarded = forward_pending(gateway)
    except GatewayError as exc:  # a wrong divisions.csv: said, and the job goes on
        log.warning("requests not forwarded to the townships: %s", exc)
        return "0 forwarded to a township", [str(exc)]
    return forwarded.summary(), forwarded.errors


def pull_job(settings: Settings, name: str, gateways: PerThreadGateway | None = None) -> Job:
    """The job that pulls `[pulls.NAME]`; for the platform it also registers the requests
    and notices of each page and sends answers still waiting."""
    from gateway.pulls import Puller, source_named

    source = source_named(settings, name)
    threads = gateways or PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:
        from gateway.platform import assist_checks

        gateway = threads.get()
        hook: Callable[[Outcome], None] | None = None
        registered = assist_checks.SyncResult()
        if source.kind == "platform":
            def hook(outcome: Outcome) -> None:  # noqa: ARG001 - after any committed page
                found = assist_checks.sync(gateway.engine, settings)
                registered.requests += found.requests
                registered.notices += found.notices
                registered.updated += found.updated

        puller = Puller(gateway, name, source, should_continue=context.should_continue, on_page=hook)
        try:
            report = puller.run()
        finally:
            puller.close()
        summary, error = report.summary(), report.error
        if source.kind == "platform":
            found = assist_checks.sync(gateway.engine, settings)  # pages committed before a crash, drops
            registered.requests += found.requests
            registered.notices += found.notices
            registered.updated += found.updated
            forwarded, forward_errors = _forward(gateway)
            sent = assist_checks.send_pending(gateway, settings, name)
            from gateway.platform import notices_out

            notices = notices_out.follow_up(gateway, settings, name)  # feedback on the county's notices came with the pull
            summary += f"; {registered.summary()}; {forwarded}; {sent.summary()}; {notices.summary()}"
            if (sent.errors or notices.errors or forward_errors) and error is None:
                error = "; ".join(sent.errors + (notices.errors or []) + forward_errors)
        return JobResult(summary, error)

    every = parse_every(source.every) if source.every else None
    return Job(f"pull:{name}", run, every=every, at=list(source.at), description=f"pull {source.kind} from {source.url}",
               close=threads.close)


def assist_check_job(settings: Settings) -> Job:
    gateways = PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:  # noqa: ARG001
        from gateway.platform import assist_checks

        gateway = gateways.get()
        registered = assist_checks.sync(gateway.engine, settings)
        forwarded, errors = _forward(gateway)
        refreshed = assist_checks.refresh_provisional(gateway.engine, settings)
        parts = [registered.summary(), forwarded, f"{refreshed} provisional due date(s) made final"]
        for name, source in settings.pulls.items():
            if source.kind == "platform" and source.enabled:
                sent = assist_checks.send_pending(gateway, settings, name)
                parts.append(sent.summary())
                errors += sent.errors
                from gateway.platform import outgoing

                requests_sent, request_errors = outgoing.send_pending(gateway, settings, name)
                notices_sent, notice_errors = assist_checks.send_pending_notices(gateway, settings, name)
                parts.append(f"{requests_sent} request(s) of the county's own and {notices_sent} notice feedback(s) sent")
                errors += request_errors + notice_errors
                from gateway.platform import notices_out

                own = notices_out.follow_up(gateway, settings, name)
                parts.append(own.summary())
                errors += own.errors or []
        return JobResult("; ".join(parts), "; ".join(errors) or None)

    return Job("assist-checks", run, every=ASSIST_CHECK_EVERY, description="register requests and notices, send waiting answers",
               close=gateways.close)


def inbox_job(gateway: Gateway) -> Job:
    """Poll every inbox (the gateway's main object; on every process, no lease: the inbox
    files themselves are claimed by the pipeline)."""

    def run(context: JobContext) -> JobResult:
        outcomes = gateway.run_once(wait_for_fresh=False)
        if outcomes:
            from gateway.register import fold

            try:
                # the register follows every stored exchange, a batch per transaction; on a stop
                # the rest waits for the next pass (or the register's daily job)
                fold(gateway.engine, gateway.settings, should_continue=context.should_continue)
            except GatewayError as exc:  # a wrong divisions.csv: said, and the inboxes go on
                log.warning("register not updated: %s", exc)
        if any(o.department == "national-platform" for o in outcomes):
            from gateway.platform import assist_checks

            assist_checks.sync(gateway.engine, gateway.settings)
            _forward(gateway)  # 转送: what the drop brought about a township's people
        summary = f"{len(outcomes)} file(s)"
        if outcomes and any(s.kind == "platform" and s.enabled for s in gateway.settings.pulls.values()):
            from gateway.platform import notices_out

            try:
                notices = notices_out.follow_up(gateway, gateway.settings)  # a birth accepted: its notice drafted (sent, if so configured)
                summary += f"; {notices.summary()}"
            except GatewayError as exc:
                log.warning("the county's own notices not followed up: %s", exc)
        return JobResult(summary)

    return Job("inboxes", run, every=gateway.settings.poll_seconds, leased=False, description="poll every inbox")


@hookimpl(trylast=True)
def register_jobs(register: Callable[[Job], None], gateway: Gateway) -> None:
    settings = gateway.settings
    register(inbox_job(gateway))
    for name, source in settings.pulls.items():
        if source.enabled:
            register(pull_job(settings, name))
    if any(source.kind == "platform" and source.enabled for source in settings.pulls.values()):
        register(assist_check_job(settings))
