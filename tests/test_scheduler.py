"""The scheduler inside `gateway run`: leases so that each job runs on one process, no
job started on top of itself, `gateway jobs`; two real `gateway run` processes pulling
from the simulator store each page once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import REPO, add_pulls, query, run_gateway
from gateway import clock
from gateway.config import load_settings
from gateway.scheduler.runner import Job, JobResult, JobScheduler, Lease, china_time_to_local, run_job
from gateway.store import make_engine

GATEWAY = str(REPO / ".venv" / "bin" / "gateway")
PYTHON = str(REPO / ".venv" / "bin" / "python")


def test_a_lease_is_taken_renewed_released_and_taken_over_once_expired(gateway):
    a = Lease(gateway.engine, "pull:x", 0.5, holder="node-a")
    b = Lease(gateway.engine, "pull:x", 0.5, holder="node-b")
    assert a.acquire()  # the first INSERT
    assert not b.acquire()
    assert a.acquire() and a.renew()  # its own lease: taken again, renewed
    time.sleep(0.7)
    assert b.acquire()  # expired: the UPDATE ... WHERE expires_at < now takes it over
    assert not a.renew() and a.lost.is_set()
    assert query(gateway.settings, "SELECT holder, generation FROM joblease WHERE name = 'pull:x'") == [("node-b", 2)]
    assert not a.acquire()
    b.release()
    assert a.acquire() and not a.lost.is_set()
    assert query(gateway.settings, "SELECT holder, generation FROM joblease WHERE name = 'pull:x'") == [("node-a", 3)]


ACQUIRE = """
import sys, time
from gateway.scheduler.runner import Lease
from gateway.store import make_engine
url, holder, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
engine = make_engine(url)
while time.time() < start:
    time.sleep(0.001)
print(Lease(engine, "pull:race", 60, holder=holder).acquire())
"""


@pytest.mark.parametrize("existing", [False, True], ids=["first-insert", "expired-update"])
def test_processes_racing_for_a_lease_exactly_one_wins(settings, existing):
    from gateway.store import create_schema

    engine = make_engine(settings.db_url)
    create_schema(engine)
    if existing:
        assert Lease(engine, "pull:race", 0.01, holder="dead-node").acquire()
        time.sleep(0.05)
    engine.dispose()
    start = time.time() + 3.0
    processes = [
        subprocess.Popen([PYTHON, "-c", ACQUIRE, settings.db_url, f"node-{n}", str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
        for n in range(6)
    ]
    results = [p.communicate(timeout=60) for p in processes]
    answers = [out.strip() for out, _ in results]
    assert sorted(answers) == ["False"] * 5 + ["True"], [err[-500:] for _, err in results]
    winner = f"node-{answers.index('True')}"
    assert query(settings, "SELECT holder FROM joblease WHERE name = 'pull:race'") == [(winner,)]


def _job(name: str, body, every: float | None = 1.0) -> Job:  # type: ignore[no-untyped-def]
    def run(context) -> JobResult:  # type: ignore[no-untyped-def]
        body(context)
        return JobResult("done")

    return Job(name, run, every=every)


def test_a_slot_run_by_another_process_is_not_run_again_and_a_held_lease_skips(gateway):
    runs: list[str] = []
    job = _job("demo", lambda _ctx: runs.append("x"), every=60)
    assert run_job(gateway.engine, job, lease_seconds=30, holder="node-a") is not None
    assert run_job(gateway.engine, job, lease_seconds=30, holder="node-b") is None  # this slot ran 0s ago
    assert run_job(gateway.engine, job, lease_seconds=30, holder="node-b", force=True) is not None  # by hand
    assert len(runs) == 2
    Lease(gateway.engine, "demo", 30, holder="node-c").acquire()  # node-c is running it now
    assert run_job(gateway.engine, job, lease_seconds=30, holder="node-a", force=True) is None
    state = query(gateway.settings, "SELECT runs, last_holder, last_status FROM jobstate WHERE name = 'demo'")
    assert state == [(2, "node-b", "ok")]


def test_a_job_that_overruns_is_not_started_on_top_of_itself(gateway):
    running, most, lock = [0], [0], threading.Lock()

    def body(_ctx):  # type: ignore[no-untyped-def]
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(1.2)
        with lock:
            running[0] -= 1

    job = _job("slow", body, every=0.2)
    scheduler = JobScheduler(gateway.engine, [job], lease_seconds=30)
    scheduler.start()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        scheduler.run_pending()
        time.sleep(0.05)
    scheduler.stop()
    assert most[0] == 1
    assert scheduler.overruns.get("slow", 0) >= 3
    (overruns,) = query(gateway.settings, "SELECT overruns FROM jobstate WHERE name = 'slow'")[0]
    assert overruns == scheduler.overruns["slow"]


def test_two_processes_share_the_job_without_running_it_twice_at_once(gateway, settings):
    """Two schedulers (two holders, two engines, as two processes would) on one database."""
    active, most, runs, lock = [0], [0], [], threading.Lock()

    def body(context):  # type: ignore[no-untyped-def]
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            runs.append(context.lease.holder)
        time.sleep(0.15)
        with lock:
            active[0] -= 1

    engines = [make_engine(settings.db_url) for _ in range(2)]
    schedulers = [
        JobScheduler(engines[n], [_job("shared", body, every=0.5)], lease_seconds=5, holder=f"node-{n}") for n in range(2)
    ]
    try:
        schedulers[0].start()
        time.sleep(0.3)  # a different phase for the second process
        schedulers[1].start()
        deadline = time.monotonic() + 3.2
        while time.monotonic() < deadline:
            for scheduler in schedulers:
                scheduler.run_pending()
            time.sleep(0.02)
    finally:
        for scheduler in schedulers:
            scheduler.stop()
        for engine in engines:
            engine.dispose()
    assert most[0] == 1
    # About one run per half-second slot (3.5 s: 7 slots), not one per process and slot (14).
    assert 5 <= len(runs) <= 9, runs


@pytest.mark.backend_independent
def test_china_times_of_day_become_local_times(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert china_time_to_local("08:00") == "00:00"
        assert china_time_to_local("03:30") == "19:30"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_gateway_jobs_lists_last_and_next_run_and_the_last_error(home, partner, monkeypatch):
    add_pulls(home, partner, monkeypatch, sources=("platform",))
    monkeypatch.setenv("GATEWAY_PULL_PLATFORM_TOKEN", "not-the-token")
    failed = run_gateway(home, "jobs", "run", "pull:platform", check=False)
    assert failed.returncode == 1 and "refused our token" in failed.stdout
    listing = run_gateway(home, "jobs")
    for expected in ("inboxes", "every 10s", "pull:platform", "every 1h", "assist-checks", "every 5m", "refused our token", "1 failed in a row"):
        assert expected in listing.stdout, expected
    monkeypatch.setenv("GATEWAY_PULL_PLATFORM_TOKEN", partner.token)
    run_gateway(home, "jobs", "run", "pull:platform")
    listing = run_gateway(home, "jobs")
    assert "refused our token" not in listing.stdout and "4 page(s) as exchanges" in listing.stdout
    unknown = run_gateway(home, "jobs", "run", "pull:nope", check=False)
    assert unknown.returncode == 2 and "Valid choices" in unknown.stderr


@pytest.mark.slow
def test_two_gateway_run_processes_pull_each_page_once(home, partner, monkeypatch):
    """Real `gateway run` processes: the platform pulled every 2s by whichever holds the
    lease; the pages are stored once; `gateway jobs` shows the next run; Ctrl-C stops both."""
    from gateway.store import create_schema

    add_pulls(home, partner, monkeypatch, sources=("platform",), every="2s")
    engine = make_engine(load_settings(home).db_url)
    create_schema(engine)
    engine.dispose()
    env = {**os.environ, "GATEWAY_SETTLE_SECONDS": "0", "GATEWAY_POLL_SECONDS": "1", "COLUMNS": "200"}
    processes = [
        subprocess.Popen([GATEWAY, "run", "--home", str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = query(home, "SELECT count(*) FROM exchange WHERE department = 'national-platform'")[0][0]
            if done >= 4:
                break
            time.sleep(0.3)
        time.sleep(5)  # several more slots: nothing new, nothing twice
        partner.platform.add_requests(3)
        while time.monotonic() < deadline:
            if query(home, "SELECT count(*) FROM exchange WHERE department = 'national-platform'")[0][0] >= 5:
                break
            time.sleep(0.3)
        time.sleep(3)
        listing = run_gateway(home, "jobs")
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        outputs = [process.communicate(timeout=60) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-1500:] for _, err in outputs]
    rows = query(home, "SELECT status FROM exchange WHERE department = 'national-platform' ORDER BY id")
    assert rows == [("processed",)] * 5
    assert query(home, "SELECT count(*), count(DISTINCT business_key) FROM record")[0] == (18, 18)
    assert query(home, "SELECT count(*) FROM assistcheck")[0][0] == query(
        home, "SELECT count(*) FROM record WHERE contract = 'AssistCheckRequest'"
    )[0][0]
    holders = {h for (h,) in query(home, "SELECT last_holder FROM jobstate WHERE name = 'pull:platform'")}
    assert len(holders) == 1
    assert "pull:platform" in listing.stdout and "every 2s" in listing.stdout
    next_run = query(home, "SELECT next_run_at FROM jobstate WHERE name = 'pull:platform'")[0][0]
    assert next_run is not None
    for out, err in outputs:
        assert "Traceback" not in err and "Stopped." in out


@pytest.mark.backend_independent
def test_the_business_clock_can_be_pinned():
    moment = dt.datetime(2020, 11, 27, 23, 59, 59, tzinfo=clock.CHINA)
    with clock.pinned(moment):
        assert clock.today() == dt.date(2020, 11, 27)
        assert clock.now() == moment.astimezone(dt.UTC) and clock.now().tzinfo == dt.UTC
        assert clock.in_china(clock.now()).date() == dt.date(2020, 11, 27)  # 15:59:59 UTC is still the 27th in China
    assert clock.now() > moment


def test_settings_reject_bad_schedules(home):
    from gateway.errors import ConfigError

    for table, message in (
        ('kind = "housing"\nurl = "https://x.example"\nevery = "soon"', "not an interval"),
        ('kind = "housing"\nurl = "https://x.example"\nat = ["25:00"]', "not a time of day"),
        ('kind = "housing"\nurl = "https://x.example"\nevery = "1h"\nat = ["08:00"]', "either every or at"),
        ('kind = "ftp"\nurl = "https://x.example"', "kind"),
    ):
        (home / "gateway.toml").write_text(f"[pulls.x]\n{table}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_settings(home)
