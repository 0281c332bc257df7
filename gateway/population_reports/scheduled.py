"""Each report on its due date, into the population office's outbox, signed.

The `population-reports` job of `gateway run` (gateway/scheduler/runner.py: leased, so it runs on
one process of a cluster) wakes every hour and on start. For each kind it takes the latest
period whose due date (periods.py) is today or before, China time, and produces it unless
the office's outbox already holds its summary `STEM.json`. It then walks back to earlier
periods the same way, up to `CATCH_UP[kind]` of them, stopping at the first one already
produced: so a due date missed while the gateway was down is produced on the next start,
named by the period it covers, and nothing is produced twice.

Every file goes to the outbox with a detached signature `NAME.asc` by the gateway's key
(as receipts are); the summary and its signature go last, so a summary in the outbox means
the whole report is there. `gpg --verify NAME.asc NAME` checks any of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from pathlib import Path
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway import clock
from gateway.errors import GatewayError
from gateway.population_reports.events import read_events
from gateway.population_reports.figures import build
from gateway.population_reports.periods import KINDS, Period, latest_due, previous
from gateway.population_reports.settings import report_settings
from gateway.population_reports.writers import write_all

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.population_reports.events import Events
    from gateway.scheduler.runner import Job
    from gateway.services import GatewayServices

log = logging.getLogger("gateway.reports")

JOB_NAME = "population-reports"
JOB_EVERY = 3600.0
CATCH_UP = {"monthly": 2, "quarterly": 1, "half-year": 1, "annual": 1}


@dataclass
class Produced:
    period: Period
    balanced: bool
    files: list[str]


@dataclass
class ScheduledRun:
    produced: list[Produced] = field(default_factory=list)
    already: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.produced:
            return "nothing due: " + (", ".join(self.already) or "no report") + " already in the outbox"
        return "; ".join(
            f"{p.period.stem} ({'balanced' if p.balanced else 'UNBALANCED'})" for p in self.produced
        )


def summary_name(period: Period) -> str:
    return f"{period.stem}.json"


def is_produced(gateway: GatewayServices, period: Period) -> bool:
    office = report_settings(gateway.settings).office
    return bool(gateway.transport_for(office).exists(office, "outbox", summary_name(period)))


def due_periods(gateway: GatewayServices, today: dt.date) -> tuple[list[Period], list[str]]:
    """The periods due by `today` and not yet in the outbox (oldest first), and the names
    of the latest ones already there."""
    due: list[Period] = []
    already: list[str] = []
    for kind in KINDS:
        candidate = latest_due(kind, today)
        for _ in range(CATCH_UP[kind]):
            if is_produced(gateway, candidate):
                already.append(candidate.stem)
                break
            due.append(candidate)
            candidate = previous(candidate)
    return sorted(due, key=lambda p: (p.due, KINDS.index(p.kind))), already


def produce(gateway: GatewayServices, period: Period, *, events: Events | None = None) -> Produced:
    """Build the report of `period`, sign each file, put them into the office's outbox."""
    settings = gateway.settings
    options = report_settings(settings)
    report = build(gateway.engine, settings, period, events=events)
    transport = gateway.transport_for(options.office)
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f"{period.stem}-", dir=settings.staging_dir)
    try:
        files = write_all(report, Path(scratch), options.formats)
        names = []
        for path in files:  # the summary is last
            signature = path.with_name(path.name + ".asc")
            signature.write_text(gateway.signer.sign(path.read_bytes()), encoding="ascii")
            transport.put(options.office, "outbox", path.name, path)
            transport.put(options.office, "outbox", signature.name, signature)
            names += [path.name, signature.name]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("report %s: %s/outbox, %d file(s), %s", period.stem, options.office, len(names), report.status)
    if period.kind == "monthly":  # the month's early warning goes to the member departments too
        from gateway.population_reports.warning import deliver_warning

        try:  # the report stands whatever happens to the warning's delivery
            outcomes = deliver_warning(gateway, period.label)
        except GatewayError as exc:
            log.error("early warning %s not delivered to the member departments: %s", period.label, exc)
            outcomes = []
        for outcome in outcomes:
            if outcome.status in ("held", "failed"):
                log.warning("early warning %s not delivered to %s: %s", period.label, outcome.department, outcome.reason)
    return Produced(period, report.balanced, names)


def produce_due(gateway: GatewayServices, today: dt.date | None = None, should_continue: Callable[[], bool] | None = None) -> ScheduledRun:
    """Produce every report due by `today` (default: today in China) and not yet produced."""
    run = ScheduledRun()
    due, run.already = due_periods(gateway, today or clock.today())
    events = read_events(gateway.engine) if due else None
    for period in due:
        if should_continue is not None and not should_continue():
            break
        run.produced.append(produce(gateway, period, events=events))
    return run


def report_job(settings: Settings) -> Job:
    """The scheduler's `population-reports` job, registered by `gateway.population_reports.job`."""
    from gateway.scheduler.runner import Job, JobContext, JobResult, PerThreadGateway

    gateways = PerThreadGateway(settings)

    def run(context: JobContext) -> JobResult:
        # An unbalanced report is still a produced report: it says where it fails, the job did not.
        return JobResult(produce_due(gateways.get(), should_continue=context.should_continue).summary())

    return Job(JOB_NAME, run, every=JOB_EVERY, description="population reports on their due dates, signed, into the office's outbox",
               close=gateways.close)
