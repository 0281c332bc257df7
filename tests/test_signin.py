"""Sign-in that no one outside can use to stall the gateway or to learn which accounts exist
(issue 20), against a real `gateway serve` over real HTTP, as tests/test_console.py starts it.

Each client is a loopback address of its own (127.x.y.z, console_helpers.from_address), so the
throttle and the back-off, which go by client address, are seen as a county office would see
them. The enumeration test: every refusal has one status, one body and about one time. The
flood test: while threads sign in with wrong passwords from ever new addresses, a real SQLite
connection (or, on PostgreSQL, pg_stat_activity) shows no write transaction held across
Argon2, and `Gateway.run_once()` commits its files. Then 429 with Retry-After, and unlock."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import threading
import time

import pytest
from console_helpers import PASSWORDS, from_address, gateway_command, served  # noqa: F401 - served: the shared fixture
from conftest import BACKEND, drop, hospital_births_file

pytestmark = pytest.mark.slow

REFUSED = "用户名或密码错误，或账户暂不可用 / wrong name or password, or the account is not available"


def _attempt(url: str, address: str, name: str, password: str) -> tuple[int, str, float, dict[str, str]]:
    http = from_address(address)
    started = time.perf_counter()
    answer = http.post(url + "/api/session", json={"name": name, "password": password}, timeout=60)
    elapsed = time.perf_counter() - started
    http.close()
    return answer.status_code, answer.text, elapsed, dict(answer.headers)


def test_unknown_wrong_disabled_and_locked_answer_alike(served):
    url = served.console.url
    served.run("users", "disable", "gone")
    # The locked account: five wrong passwords from this client make it wait for `locky`.
    locker = "127.1.0.4"
    for _ in range(5):
        assert _attempt(url, locker, "locky", "not-the-password")[0] == 401
    kinds = {
        "unknown name": ("127.1.0.1", "nobody-here", "whatever-pass-1"),
        "wrong password": ("127.1.0.2", "clerk", "not-the-password"),
        "disabled, right password": ("127.1.0.3", "gone", PASSWORDS["gone"]),
        "locked, right password": (locker, "locky", PASSWORDS["locky"]),
    }
    answers: dict[str, list[tuple[int, str]]] = {kind: [] for kind in kinds}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(5):  # interleaved, so that a busy moment of the machine falls on every kind alike
        for kind, (address, name, password) in kinds.items():
            status, body, elapsed, _ = _attempt(url, address, name, password)
            answers[kind].append((status, body))
            times[kind].append(elapsed)
    seen = {answer for kind in kinds for answer in answers[kind]}
    assert len(seen) == 1, answers
    [(status, body)] = seen
    assert status == 401 and REFUSED in body
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    unknown = medians["unknown name"]
    for kind, median in medians.items():
        # Every answer does one Argon2 verification: none is much quicker than another.
        assert median >= 0.5 * unknown and unknown >= 0.5 * median, medians
    # The sign-in page answers them alike too (its body carries a fresh form token).
    page = from_address("127.1.0.5")
    form = page.get(url + "/login", timeout=30)
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = page.post(url + "/login", data={"name": "gone", "password": PASSWORDS["gone"], "csrf_token": token}, timeout=60)
    assert refused.status_code == 401 and "用户名或密码错误，或账户暂不可用" in refused.text


def _write_lock_probe(served, stop: threading.Event, results: dict[str, int]) -> None:
    """Try, again and again, what an ingest does first: take the write lock (SQLite) — or, on
    PostgreSQL, look for any transaction of the console open for longer than Argon2 takes."""
    if BACKEND == "sqlite":
        import sqlite3

        path = served.settings.db_url.split("sqlite:///", 1)[1]
        connection = sqlite3.connect(path, timeout=1.0, isolation_level=None)
        try:
            while not stop.is_set():
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    connection.execute("ROLLBACK")
                    results["free"] += 1
                except sqlite3.OperationalError:
                    results["held"] += 1
                time.sleep(0.05)
        finally:
            connection.close()
    else:
        import psycopg

        with psycopg.connect(served.database, autocommit=True) as connection:
            while not stop.is_set():
                [(long_open,)] = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND xact_start < clock_timestamp() - interval '250 milliseconds'").fetchall()
                results["held" if long_open else "free"] += 1
                time.sleep(0.05)


def _run_once(served, files: list[tuple[str, bytes]]) -> tuple[float, list[str]]:
    from gateway.exchange.lifecycle import Gateway

    for name, data in files:
        drop(served.settings, "hospital", name, data)
    gateway = Gateway(served.settings)
    try:
        started = time.monotonic()
        outcomes = gateway.run_once()
        return time.monotonic() - started, sorted(f"{o.file_name}:{o.status}" for o in outcomes)
    finally:
        gateway.close()


def test_a_sign_in_flood_holds_no_write_lock_and_does_not_stall_ingest(served):
    url = served.console.url
    baseline, done = _run_once(served, [(f"hospital_births_2026{n}.csv", hospital_births_file(700 + n, 20)) for n in (10, 11)])
    assert done == ["hospital_births_202610.csv:processed", "hospital_births_202611.csv:processed"], done

    stop = threading.Event()
    statuses: list[int] = []
    lock = threading.Lock()

    def flood(thread: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            # An ever new address: what a throttle by address cannot stop, only a short write can bear.
            address = f"127.2.{thread}.{n % 250 + 1}" if n < 250 else f"127.3.{thread}.{n % 250 + 1}"
            name = "clerk" if n % 2 else f"nobody-{thread}-{n}"
            status = _attempt(url, address, name, "not-the-password")[0]
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=flood, args=(t,), daemon=True) for t in range(4)]
    probe = {"free": 0, "held": 0}
    for thread in threads:
        thread.start()
    try:
        probe_stop = threading.Event()
        prober = threading.Thread(target=_write_lock_probe, args=(served, probe_stop, probe), daemon=True)
        time.sleep(1.0)  # the flood under way
        prober.start()
        time.sleep(6.0)
        probe_stop.set()
        prober.join(timeout=30)
        during, done = _run_once(served, [(f"hospital_births_2026{n}.csv", hospital_births_file(700 + n, 20)) for n in (12, 13)])
        time.sleep(max(0.0, 10.0 - 7.0 - during))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert done == ["hospital_births_202612.csv:processed", "hospital_births_202613.csv:processed"], done
    assert len(statuses) >= 8 and set(statuses) == {401}, (len(statuses), set(statuses))
    # Sign-in never held the write lock (or a transaction) across Argon2.
    assert probe["free"] >= 10 and probe["held"] == 0, probe
    # Generous for a loaded 2-core machine: the flood costs CPU, but ingest never waits on it.
    assert during < 4 * baseline + 30, (baseline, during)


def test_an_empty_bucket_answers_429_with_retry_after_and_no_argon2(served):
    url = served.console.url
    answers = [_attempt(url, "127.4.0.1", "nobody-at-all", "whatever-pass-1") for _ in range(13)]
    statuses = [a[0] for a in answers]
    first = statuses.index(429)
    assert first in (10, 11) and set(statuses[:first]) == {401}, statuses  # a burst of 10 (one more if a minute passed)
    status, body, elapsed, headers = answers[first]
    assert 1 <= int(headers["retry-after"]) <= 60 and "请" in body and "try again" in body, (headers, body)
    refused_times = [a[2] for a in answers[:first]]
    assert elapsed < 0.5 * statistics.median(refused_times), (elapsed, refused_times)
    # Another client, the same name: its own bucket.
    assert _attempt(url, "127.4.0.2", "nobody-at-all", "whatever-pass-1")[0] == 401


@pytest.mark.backend_independent
def test_the_client_bucket_spans_names():
    from gateway.web.throttle import CLIENT_BURST, CLIENT_REFILL_SECONDS, PAIR_BURST, TokenBuckets

    now = [0.0]
    buckets = TokenBuckets(CLIENT_BURST, CLIENT_REFILL_SECONDS, clock=lambda: now[0])
    assert [buckets.take("10.0.0.1") for _ in range(CLIENT_BURST)] == [0] * CLIENT_BURST
    assert buckets.take("10.0.0.1") == CLIENT_REFILL_SECONDS and buckets.take("10.0.0.2") == 0
    now[0] += CLIENT_REFILL_SECONDS
    assert buckets.take("10.0.0.1") == 0 and buckets.take("10.0.0.1") > 0
    assert PAIR_BURST < CLIENT_BURST


def test_back_off_doubles_and_unlock_lifts_it_without_a_new_password(served):
    url, env = served.console.url, {**os.environ, **served.env}
    from gateway.web.accounts import sign_in

    client = "127.5.0.1"
    for _ in range(5):
        assert _attempt(url, client, "locky", "not-the-password")[0] == 401
    assert _attempt(url, client, "locky", PASSWORDS["locky"])[0] == 401
    assert _attempt(url, "127.5.0.2", "locky", PASSWORDS["locky"])[0] == 200  # a stranger's failures lock no one else out
    [(strikes,)] = served.query("SELECT strikes FROM signinbackoff WHERE client = ?", client)
    assert strikes == 1
    def state(name: str) -> str:
        [line] = [line for line in served.run("users", "list").stdout.splitlines() if f" {name} " in line]
        return line

    assert "退避至 / backed off until" in state("locky")
    # The wait over (moved into the past), five more failures: twice as long (60 s).
    engine = served.engine()
    try:
        from sqlalchemy import text

        with engine.begin() as connection:
            connection.execute(text("UPDATE signinbackoff SET blocked_until = NULL WHERE client = :c"), {"c": client})
        for _ in range(5):
            assert sign_in(engine, engine, "locky", "not-the-password", client).refusal == REFUSED
    finally:
        engine.dispose()
    [(strikes, until)] = served.query("SELECT strikes, blocked_until FROM signinbackoff WHERE client = ?", client)
    assert strikes == 2
    until = until if isinstance(until, dt.datetime) else dt.datetime.fromisoformat(str(until))
    wait = (until.replace(tzinfo=until.tzinfo or dt.UTC) - dt.datetime.now(dt.UTC)).total_seconds()
    assert 45 <= wait <= 61, until
    unlocked = subprocess.run([gateway_command(), "users", "unlock", "locky", "--home", str(served.home)],
                              capture_output=True, text=True, timeout=60, env=env)
    assert unlocked.returncode == 0, unlocked.stderr
    assert "已解除 locky 的登录退避" in unlocked.stdout and "password is unchanged" in unlocked.stdout, unlocked.stdout
    assert served.query("SELECT count(*) FROM signinbackoff WHERE client = ?", client) == [(0,)]
    assert _attempt(url, client, "locky", PASSWORDS["locky"])[0] == 200  # the same password as before
    assert "退避至" not in state("locky") and "active" in state("locky")
    unknown = subprocess.run([gateway_command(), "users", "unlock", "nobody-here", "--home", str(served.home)],
                             capture_output=True, text=True, timeout=60, env=env)
    assert unknown.returncode != 0 and "no user named" in unknown.stderr
