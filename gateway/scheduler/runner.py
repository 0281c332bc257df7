"""Scheduled jobs inside `gateway run`, on the `schedule` library (docs/pulls.md).

The jobs come through the `register_jobs` hook (`gateway_jobs`); the built-in ones are
`inboxes`, `pull:NAME` and `assist-checks` (gateway/platform/jobs.py), `reconcile`
(gateway/reconcile/job.py) and `population-reports` (gateway/population_reports/job.py).

When several gateway processes share one database, a **lease row** (`joblease`) makes
each run of a job happen on one of them:

- a due job first takes the lease: an `UPDATE ... WHERE name = :job AND (holder = :me OR
  expires_at < :now)`, or, if the job has no row yet, an `INSERT` (a duplicate-key error
  means another process was first). Both are plain SQL on SQLite and PostgreSQL;
- while the job runs its lease is renewed every third of `job_lease_seconds`; a process
  that dies (or freezes) loses it when it expires, and another may then take the job;
- under the lease the job's last start is read (`jobstate`): a run started by another
  process less than half an interval ago (5 minutes for times of day) counts for this
  slot, and the job is not run again;
- a job still running when it is due again is **not started on top of itself**: the
  overrun is counted and logged.

`gateway jobs` lists the jobs with their last run, next run and last error.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import schedule
from sqlalchemy import Engine, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway import clock
from gateway.config import Settings
from gateway.errors import PluginError, UnknownName
from gateway.plugins import PluginManager, get_manager
from gateway.store.faults import Backoff, database_fault
from gateway.store.models import JobLease, JobState

if TYPE_CHECKING:
    from gateway.exchange.lifecycle import Gateway

log = logging.getLogger("gateway.jobs")

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
AT_JOB_GAP = 300.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# -- leases ------------------------------------------------------------------------------


class Lease:
    """One job's lease for one holder (this process, by default)."""

    def __init__(self, engine: Engine, name: str, seconds: float, holder: str = HOLDER):
        self.engine, self.name, self.seconds, self.holder = engine, name, seconds, holder
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours."""
        now = _now()
        expires = now + dt.timedelta(seconds=self.seconds)
        taken = JobLease.holder != self.holder  # type: ignore[arg-type]
        with self.engine.begin() as connection:
            result = connection.execute(
                update(JobLease)
                .where(JobLease.name == self.name, or_(JobLease.holder == self.holder, JobLease.expires_at < now))  # type: ignore[arg-type]
                .values(
                    holder=self.holder,
                    expires_at=expires,
                    acquired_at=case((taken, now), else_=JobLease.acquired_at),
                    generation=case((taken, JobLease.generation + 1), else_=JobLease.generation),
                )
            )
            if result.rowcount == 1:
                self.lost.clear()
                return True
            if connection.execute(select(JobLease.name).where(JobLease.name == self.name)).first() is not None:
                return False
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(JobLease).values(name=self.name, holder=self.holder, expires_at=expires, acquired_at=now, generation=1)
                )
        except IntegrityError:
            return False  # another process inserted it first
        self.lost.clear()
        return True

    def renew(self) -> bool:
        """Extend our lease; False (and `lost` set) if it is no longer ours."""
        now = _now()
        with self.engine.begin() as connection:
            result = connection.execute(
                update(JobLease)
                .where(JobLease.name == self.name, JobLease.holder == self.holder)
                .values(expires_at=now + dt.timedelta(seconds=self.seconds))
            )
        if result.rowcount != 1:
            self.lost.set()
            return False
        return True

    def release(self) -> None:
        """Let it go at once (expired now), if it is still ours."""
        with self.engine.begin() as connection:
            connection.execute(
                update(JobLease).where(JobLease.name == self.name, JobLease.holder == self.holder).values(expires_at=_now())
            )

    def holder_info(self) -> tuple[str, dt.datetime] | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(JobLease.holder, JobLease.expires_at).where(JobLease.name == self.name)).first()
        return (row[0], _aware(row[1])) if row else None  # type: ignore[return-value]

    def keep_alive(self) -> None:
        """Renew every third of the lease in a background thread until `stop_keep_alive`."""
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.seconds / 3):
                try:
                    if not self.renew():
                        log.error("job %s: lease lost to another process; stopping at the next step", self.name)
                        return
                except Exception:  # noqa: BLE001 - the database may be briefly away; try again
                    log.exception("job %s: lease renewal failed", self.name)

        self._beat = threading.Thread(target=beat, name=f"lease-{self.name}", daemon=True)
        self._beat.start()

    def stop_keep_alive(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None


# -- jobs --------------------------------------------------------------------------------


@dataclass
class JobResult:
    summary: str = ""
    error: str | None = None


@dataclass
class JobContext:
    """What a running job may ask: whether to go on (lease still ours, not shutting down)."""

    lease: Lease | None
    stopping: threading.Event

    def should_continue(self) -> bool:
        return not self.stopping.is_set() and not (self.lease is not None and self.lease.lost.is_set())


@dataclass
class Job:
    name: str
    run: Callable[[JobContext], JobResult]
    every: float | None = None
    at: list[str] = field(default_factory=list)
    leased: bool = True
    description: str = ""
    close: Callable[[], None] | None = None

    @property
    def schedule_text(self) -> str:
        if self.every is not None:
            return f"every {_seconds_text(self.every)}"
        return "at " + ", ".join(self.at) + " (China time)"

    @property
    def min_gap(self) -> float:
        """A run started by anyone less than this ago counts for the current slot."""
        return self.every / 2 if self.every is not None else AT_JOB_GAP


def _seconds_text(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _state(connection: Any, name: str) -> Any:
    return connection.execute(select(JobState).where(JobState.name == name)).first()


def _ensure_state(engine: Engine, job: Job) -> None:
    with engine.begin() as connection:
        if _state(connection, job.name) is None:
            try:
                with connection.begin_nested():
                    connection.execute(insert(JobState).values(name=job.name, schedule=job.schedule_text, runs=0, failures=0, overruns=0))
            except IntegrityError:
                pass
        else:
            connection.execute(update(JobState).where(JobState.name == job.name).values(schedule=job.schedule_text))


def run_job(
    engine: Engine,
    job: Job,
    *,
    lease_seconds: float,
    stopping: threading.Event | None = None,
    force: bool = False,
    holder: str = HOLDER,
) -> JobResult | None:
    """Run `job` once here if its lease is ours and its slot was not run already (unless
    `force`, for a run by hand). None when it was not run (and why is logged)."""
    stopping = stopping or threading.Event()
    _ensure_state(engine, job)
    lease = Lease(engine, job.name, lease_seconds, holder) if job.leased else None
    if lease is not None and not lease.acquire():
        info = lease.holder_info()
        log.info("job %s: running on %s (lease until %s); not here", job.name, *(info or ("?", "?")))
        return None
    try:
        started = _now()
        with engine.begin() as connection:
            state = _state(connection, job.name)
            last = _aware(state.last_started_at) if state is not None else None
            if not force and job.leased and last is not None and (started - last).total_seconds() < job.min_gap:
                log.info("job %s: already run at %s by %s; next slot", job.name, last.isoformat(timespec="seconds"), state.last_holder)
                return None
            connection.execute(
                update(JobState)
                .where(JobState.name == job.name)
                .values(last_started_at=started, last_status="running", last_holder=holder)
            )
        if lease is not None:
            lease.keep_alive()
        context = JobContext(lease, stopping)
        try:
            result = job.run(context)
        except Exception as exc:  # noqa: BLE001 - a failing job must not stop the scheduler
            if database_fault(exc) is not None:
                raise  # its state cannot be written either; the scheduler backs off (JobScheduler._run)
            log.exception("job %s failed", job.name)
            result = JobResult(error=f"{type(exc).__name__}: {exc}")
        finally:
            if lease is not None:
                lease.stop_keep_alive()
        with engine.begin() as connection:
            connection.execute(
                update(JobState)
                .where(JobState.name == job.name)
                .values(
                    last_finished_at=_now(),
                    last_status="error" if result.error else "ok",
                    last_error=result.error,
                    last_summary=result.summary[:2000],
                    runs=JobState.runs + 1,
                    failures=JobState.failures + 1 if result.error else 0,
                )
            )
        return result
    finally:
        if lease is not None:
            lease.release()


def record_run_by_hand(engine: Engine, job: Job, started: dt.datetime, summary: str, error: str | None = None) -> None:
    """Write down a run of `job`'s work done outside the scheduler (`gateway run --once` is
    one pass of the `inboxes` job), so that `gateway jobs` and the console show its real
    last run instead of "never run"."""
    _ensure_state(engine, job)
    with engine.begin() as connection:
        connection.execute(
            update(JobState)
            .where(JobState.name == job.name)
            .values(
                last_started_at=started, last_finished_at=_now(), last_status="error" if error else "ok", last_error=error,
                last_summary=summary[:2000], last_holder=HOLDER, runs=JobState.runs + 1,
                failures=JobState.failures + 1 if error else 0,
            )
        )


def _record_overrun(engine: Engine, name: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(JobState).where(JobState.name == name).values(overruns=JobState.overruns + 1))


def _record_next_run(engine: Engine, name: str, moment: dt.datetime | None) -> None:
    with engine.begin() as connection:
        connection.execute(update(JobState).where(JobState.name == name).values(next_run_at=moment))


def china_time_to_local(hhmm: str) -> str:
    """A China-time HH:MM as this machine's local HH:MM (what `schedule` expects)."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    today = dt.datetime.now(clock.CHINA).date()
    moment = dt.datetime.combine(today, dt.time(hour, minute), tzinfo=clock.CHINA)
    return moment.astimezone().strftime("%H:%M")


class JobScheduler:
    """The jobs of one `gateway run` process. Each due job runs in its own thread; the
    main loop calls `run_pending()`."""

    def __init__(
        self, engine: Engine, jobs: list[Job], *, lease_seconds: float = 120.0, holder: str = HOLDER, database_retry_max: float = 30.0
    ):
        self.engine, self.jobs, self.lease_seconds, self.holder = engine, jobs, lease_seconds, holder
        self.scheduler = schedule.Scheduler()
        self.stopping = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._entries: dict[str, list[schedule.Job]] = {}
        self.overruns: dict[str, int] = {}
        # While the database is away, read-only or full, no job starts before the back-off
        # ends: one log line per try instead of a traceback every poll.
        self.database = Backoff(most=database_retry_max)
        self._database_lock = threading.Lock()
        for job in jobs:
            _ensure_state(engine, job)
            if job.every is not None:
                self._entries[job.name] = [self.scheduler.every(job.every).seconds.do(self.fire, job)]
            else:
                self._entries[job.name] = [
                    self.scheduler.every().day.at(china_time_to_local(moment)).do(self.fire, job) for moment in job.at
                ]

    def fire(self, job: Job) -> None:
        """The job is due: start it in a thread, unless its previous run is still going."""
        if self.database.waiting():
            return
        running = self._threads.get(job.name)
        if running is not None and running.is_alive():
            self.overruns[job.name] = self.overruns.get(job.name, 0) + 1
            log.warning("job %s: still running its previous run; not started again on top of it", job.name)
            try:
                _record_overrun(self.engine, job.name)
            except Exception:  # noqa: BLE001
                log.exception("job %s: could not record the overrun", job.name)
            return
        thread = threading.Thread(target=self._run, args=(job,), name=f"job-{job.name}", daemon=True)
        self._threads[job.name] = thread
        thread.start()

    def _run(self, job: Job) -> None:
        try:
            run_job(self.engine, job, lease_seconds=self.lease_seconds, stopping=self.stopping, holder=self.holder)
        except Exception as exc:  # noqa: BLE001 - the database may be away; the next slot tries again
            fault = database_fault(exc)
            if fault is None:
                log.exception("job %s: could not run", job.name)
                self._publish_next_run(job)
            else:
                with self._database_lock:
                    delay = self.database.failed()
                # Fresh connections next time: pooled ones may point at a server that went
                # away, a demoted (read-only) primary, or carry an old session setting.
                self.engine.dispose()
                log.error("job %s: %s; next try in %.0fs", job.name, fault, delay)
            return
        with self._database_lock:
            if self.database.succeeded():
                log.warning("job %s: the database works again", job.name)
        self._publish_next_run(job)

    def _publish_next_run(self, job: Job) -> None:
        runs = [entry.next_run for entry in self._entries.get(job.name, []) if entry.next_run is not None]
        moment = min(runs).astimezone(dt.UTC) if runs else None  # naive local time -> aware
        try:
            _record_next_run(self.engine, job.name, moment)
        except Exception as exc:  # noqa: BLE001
            if database_fault(exc) is None:  # a fault is reported by the job that met it
                log.exception("job %s: could not record its next run", job.name)

    def start(self) -> None:
        """Run every job once now (each in its thread), then on its schedule."""
        for job in self.jobs:
            self.fire(job)
        # The schedule's own clock starts now: the first `every` run is one interval away.
        for job in self.jobs:
            self._publish_next_run(job)

    def run_pending(self) -> None:
        self.scheduler.run_pending()

    def busy(self) -> list[str]:
        return [name for name, thread in self._threads.items() if thread.is_alive()]

    def stop(self, timeout: float = 30.0) -> None:
        """Ask running jobs to stop at their next step and wait for them."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for name, thread in list(self._threads.items()):
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("job %s did not stop within %.0fs; its lease expires by itself", name, timeout)
        for job in self.jobs:
            if job.close is not None:
                try:
                    job.close()
                except Exception:  # noqa: BLE001
                    log.exception("job %s: closing failed", job.name)


# -- the gateway's jobs ----------------------------------------------------------------------


class PerThreadGateway:
    """A Gateway of its own for a job's thread (engine, signer), opened on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._gateway: Gateway | None = None
        self._lock = threading.Lock()

    def get(self) -> Gateway:
        with self._lock:
            if self._gateway is None:
                from gateway.exchange.lifecycle import Gateway

                self._gateway = Gateway(self.settings)
            return self._gateway

    def close(self) -> None:
        with self._lock:
            if self._gateway is not None:
                self._gateway.close()
                self._gateway = None


_PerThreadGateway = PerThreadGateway  # the name before the jobs moved out (issue 15)


def gateway_jobs(gateway: Gateway, plugins: PluginManager | None = None) -> list[Job]:
    """Every job `gateway run` schedules for this gateway's settings: what the plugins
    register through the `register_jobs` hook (gateway/hookspecs.py). The built-in jobs
    come through the same hook (`gateway.platform.jobs`, `gateway.reconcile.job`,
    `gateway.population_reports.job`); the scheduler knows none of them by name.

    A job name registered twice raises `PluginError` naming both registrations."""
    found: dict[str, tuple[Job, str]] = {}  # name -> (job, the module of its run)
    manager = plugins or get_manager()

    def register(job: Job) -> None:
        if not isinstance(job, Job):
            raise PluginError(f"register() takes a gateway.scheduler.Job, got {job!r}")
        caller = getattr(job.run, "__module__", None) or "?"
        existing = found.get(job.name)
        if existing is not None:
            raise PluginError(
                f"Job name {job.name!r} is registered twice: by {existing[1]} and by {caller}. "
                "Rename one, or disable a plugin with GATEWAY_DISABLED_PLUGINS."
            )
        found[job.name] = (job, caller)

    manager.pm.hook.register_jobs(register=register, gateway=gateway)
    return [job for job, _ in found.values()]


def job_named(gateway: Gateway, name: str) -> Job:
    jobs = {job.name: job for job in gateway_jobs(gateway)}
    if name not in jobs:
        raise UnknownName("job", name, list(jobs))
    return jobs[name]


@dataclass
class JobRow:
    name: str
    schedule: str
    last_started_at: dt.datetime | None
    last_finished_at: dt.datetime | None
    last_status: str | None
    last_error: str | None
    last_summary: str | None
    next_run_at: dt.datetime | None
    runs: int
    failures: int
    overruns: int
    running_on: str | None


def job_rows(engine: Engine, jobs: list[Job]) -> list[JobRow]:
    """`gateway jobs`: the configured jobs with their recorded state."""
    now = _now()
    with engine.connect() as connection:
        states = {row.name: row for row in connection.execute(select(JobState))}
        leases = {row.name: row for row in connection.execute(select(JobLease))}
    rows = []
    for job in jobs:
        state, lease = states.get(job.name), leases.get(job.name)
        running_on = None
        if lease is not None and _aware(lease.expires_at) > now and state is not None and state.last_status == "running":  # type: ignore[operator]
            running_on = lease.holder
        rows.append(
            JobRow(
                job.name,
                job.schedule_text,
                _aware(state.last_started_at) if state else None,
                _aware(state.last_finished_at) if state else None,
                state.last_status if state else None,
                state.last_error if state else None,
                state.last_summary if state else None,
                _aware(state.next_run_at) if state else None,
                state.runs if state else 0,
                state.failures if state else 0,
                state.overruns if state else 0,
                running_on,
            )
        )
    return rows
