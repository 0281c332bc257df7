"""Several `gateway worker` processes on one database and one mailbox: every drop is
processed exactly once, even while workers are SIGKILLed at random and restarted.

On the PostgreSQL run of the suite (GATEWAY_TEST_DATABASE=postgresql) this is the issue's
fault test: four workers, 200 drops, a random worker killed every few seconds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, drop, hospital_births_file, query, run_gateway
from gateway.intake.claims import ClaimQueue
from gateway.config import load_settings
from gateway.store import make_engine
from gateway.intake.transports import FoundFile

GATEWAY = str(REPO / ".venv" / "bin" / "gateway")


def start_worker(home: Path, name: str, log_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "GATEWAY_SETTLE_SECONDS": "0",
        "GATEWAY_POLL_SECONDS": "0.3",
        "GATEWAY_CLAIM_TIMEOUT_SECONDS": "4",
        "GATEWAY_CLAIM_HEARTBEAT_SECONDS": "0.5",
    }
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([GATEWAY, "worker", "--id", name, "--home", str(home)], env=env, stdout=log, stderr=log)


def test_claims_hand_each_file_to_one_worker_and_take_over_a_dead_ones(settings):
    engine = make_engine(settings.db_url)
    try:
        from gateway.store import create_schema

        create_schema(engine)
        first = ClaimQueue(engine, "w1", timeout=1.5, heartbeat=0.2)
        second = ClaimQueue(engine, "w2", timeout=1.5, heartbeat=0.2)
        found = [FoundFile("hospital", f"f{n}.csv", f"hospital/inbox/f{n}.csv", 10, 1.0) for n in range(3)]
        first.enqueue(found)
        second.enqueue(found)  # queued twice: still three rows
        claims = [first.next(), second.next(), first.next()]
        assert [c.found.name for c in claims if c] == ["f0.csv", "f1.csv", "f2.csv"]
        assert second.next() is None, "nothing is handed out twice"
        with first.holding(claims[0]):
            # claims[0] is heartbeated; claims[1] (w2) and claims[2] (w1) are not renewed.
            time.sleep(2.5)
            taken = [second.next(), second.next(), second.next()]
            assert [c.found.name if c else None for c in taken] == ["f1.csv", "f2.csv", None]
        assert not first.beat(claims[2]), "the old holder learns its claim was taken over"
        assert query(settings, "SELECT count(*) FROM fileclaim WHERE path = 'hospital/inbox/f0.csv'") == [(0,)]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_workers_killed_at_random_process_every_drop_exactly_once(home, tmp_path):
    settings = load_settings(home)
    drops, rows = 200, 5
    names = []
    for batch in range(drops):
        name = f"births_{batch:04d}.csv"
        drop(settings, "hospital", name, hospital_births_file(batch, rows))
        names.append(name)

    rng = random.Random(20261123)
    workers = {f"w{n}": start_worker(home, f"w{n}", tmp_path) for n in range(4)}
    kills = 0
    inbox = settings.mailbox_root / "hospital" / "inbox"
    deadline = time.monotonic() + 240
    try:
        next_kill = time.monotonic() + 2.0
        while list(inbox.iterdir()) and time.monotonic() < deadline:
            if time.monotonic() >= next_kill:
                victim = rng.choice(sorted(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait(timeout=30)
                kills += 1
                workers[victim] = start_worker(home, victim, tmp_path)
                next_kill = time.monotonic() + rng.uniform(1.5, 3.0)
            time.sleep(0.1)
        # Let the survivors finish anything claimed when the inbox emptied.
        settle = time.monotonic() + 30
        while query(home, "SELECT count(*) FROM fileclaim") != [(0,)] and time.monotonic() < settle:
            time.sleep(0.2)
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in workers.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    logs = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("w*.log"))
    assert kills >= 3, "the test must actually kill workers"
    assert not list(inbox.iterdir()), "drops left in the inbox:\n" + logs[-3000:]

    processed = sorted(p.name for p in (settings.mailbox_root / "hospital" / "processed").iterdir())
    assert processed == names, "every drop once in processed/, nothing else"
    exchanges = query(home, "SELECT file_name, status FROM exchange WHERE status <> 'received' ORDER BY file_name")
    assert exchanges == [(name, "processed") for name in names], "one processed exchange per drop"
    assert query(home, "SELECT count(*), count(DISTINCT business_key) FROM record") == [(drops * rows, drops * rows)]
    sequences = [s for (s,) in query(home, "SELECT sequence FROM receipt ORDER BY sequence")]
    assert sequences == list(range(1, drops + 1)), "one gapless receipt chain"
    chain = query(home, "SELECT sha256, previous_sha256 FROM receipt ORDER BY sequence")
    assert all(chain[i][1] == chain[i - 1][0] for i in range(1, len(chain)))
    for name in names[:: drops // 10]:
        receipt = json.loads((settings.mailbox_root / "hospital" / "outbox" / f"{name}.receipt.json").read_bytes())
        assert receipt["counts"]["accepted"] == rows
    # A worker killed mid-pass never signs that pass's checkpoint; sign one now.
    run_gateway(home, "ledger", "checkpoint")
    verified = run_gateway(home, "ledger", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
