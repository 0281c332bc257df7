"""Console list benchmark: how long one page of the exchanges and deliveries lists takes
with thousands of exchanges behind it (issue 20: under 200 ms a page with 5,000).

    python bench/console_lists.py                    # 5,000 exchanges, 15,000 deliveries (make bench-console)
    python bench/console_lists.py --exchanges 300    # smoke size (tests/test_bench.py)

A fresh home (`init_home`, SQLite) gets --exchanges exchange rows, a receipt row for each
processed one and three deliveries per exchange, written straight to the store in one
transaction: the benchmark measures reading and rendering a page, not ingest (bench/ingest.py
does that), and 5,000 real passes would take an hour of GnuPG signing for rows that look the
same to the list. Then a real `gateway serve` on loopback, a signed-in session, and for each
kind of page (first, middle and last page; a department filter; a file-name search; a date
range; the JSON API with its X-Total-Count) --repeat requests, timed from the client.
Prints the median and the 95th percentile in milliseconds and exits non-zero when a median
is over --budget-ms (default 200).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
DEPARTMENTS = ("police", "hospital", "civil-affairs", "school", "housing", "national-platform")
ADAPTERS = {"police": "police-hukou", "hospital": "hospital-births", "civil-affairs": "civil-affairs",
            "school": "school-enrolments", "housing": "housing-occupancy", "national-platform": "national-platform"}
RECIPIENTS = ("population-office", "civil-affairs", "police")
PASSWORD = "bench-lantern-ferry-42"


def _fill(home: Path, exchanges: int) -> None:
    """Exchange, receipt and delivery rows as a month of passes would leave them."""
    sys.path.insert(0, str(REPO))
    from sqlmodel import Session

    from gateway.config import load_settings
    from gateway.store import create_schema, make_engine
    from gateway.store.models import Delivery, Exchange, Receipt
    from gateway.web.accounts import add_user

    settings = load_settings(home)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    sequence = 0
    with Session(engine) as session:
        for n in range(1, exchanges + 1):
            department = DEPARTMENTS[n % len(DEPARTMENTS)]
            status = "rejected" if n % 50 == 0 else "duplicate" if n % 37 == 0 else "processed"
            received = start + dt.timedelta(minutes=13 * n)
            session.add(Exchange(
                id=n, department=department, file_name=f"{department}_2026{10 + n % 2:02d}_{n:05d}.csv",
                source_path=f"{department}/inbox/{department}_{n:05d}.csv", sha256=f"{n:064x}", size=4096, adapter=ADAPTERS[department],
                status=status, reason="表头缺少必填列 / a required column is missing" if status == "rejected" else None,
                rows=120, accepted=0 if status == "rejected" else 118, rejected=2, received_at=received,
                processed_at=received + dt.timedelta(seconds=3),
            ))
        session.flush()
        for n in range(1, exchanges + 1):
            if n % 50 and n % 37:
                sequence += 1
                session.add(Receipt(sequence=sequence, exchange_id=n, body="{}", signature="-", sha256=f"{sequence:064x}",
                                    previous_sha256=f"{sequence - 1:064x}", key_fingerprint="0" * 40))
                for k, recipient in enumerate(RECIPIENTS):
                    delivered = start + dt.timedelta(minutes=13 * n + 1)
                    session.add(Delivery(recipient=recipient, agreement=f"{recipient}-{k}", contract="BirthEvent", batch_key=f"{n}-{k}", format="csv",
                                         status="acknowledged" if n % 3 else "delivered", records=118, file_name=f"DELIVERY-{n}-{k}.csv.gpg",
                                         delivered_at=delivered, ack_due_at=delivered + dt.timedelta(days=3)))
        session.commit()
    add_user(engine, "bench", "operator", PASSWORD, None, list(settings.departments))
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _timed(http: requests.Session, url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = http.get(url, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--budget-ms", type=float, default=200.0)
    options = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gwbench-console-", dir="/tmp"))
    home = root / "home"
    gateway = str(REPO / ".venv" / "bin" / "gateway")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    server = None
    try:
        subprocess.run([gateway, "init", "--home", str(home)], check=True, capture_output=True, env=env, timeout=300)
        filled = time.perf_counter()
        _fill(home, options.exchanges)
        print(f"home with {options.exchanges:,} exchanges and their deliveries written in {time.perf_counter() - filled:.1f} s")
        port = _free_port()
        server = subprocess.Popen([gateway, "serve", "--port", str(port), "--home", str(home)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gateway serve did not start")
            time.sleep(0.2)
        http = requests.Session()
        assert http.post(base + "/api/session", json={"name": "bench", "password": PASSWORD}, timeout=60).status_code == 200
        middle = (options.exchanges // 2) // 50 * 50
        last = max(options.exchanges - 50, 0)
        pages = {
            "exchanges, first page": "/exchanges",
            "exchanges, middle page": f"/exchanges?offset={middle}",
            "exchanges, last page": f"/exchanges?offset={last}",
            "exchanges, one department": "/exchanges?department=hospital",
            "exchanges, file-name search": "/exchanges?file_name=police_202611",
            "exchanges, a week received": "/exchanges?date_from=2026-10-10&date_to=2026-10-16",
            "exchanges, refused only": "/exchanges?status=rejected",
            "deliveries, first page": "/deliveries",
            "deliveries, middle page": f"/deliveries?offset={middle}",
            "API exchanges, 100 a page": f"/api/exchanges?offset={middle}",
        }
        total = http.get(base + "/api/exchanges?limit=1", timeout=60).headers["X-Total-Count"]
        assert int(total) == options.exchanges, total
        print(f"{'page':34} {'median ms':>10} {'p95 ms':>8}")
        over = []
        for label, path in pages.items():
            _timed(http, base + path, 2)  # warm the page's templates and the database cache
            times = sorted(_timed(http, base + path, options.repeat))
            median = statistics.median(times)
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"{label:34} {median:10.1f} {p95:8.1f}")
            if median > options.budget_ms:
                over.append(label)
        if over:
            print(f"over the {options.budget_ms:.0f} ms budget: {', '.join(over)}")
            return 1
        print(f"every page's median within {options.budget_ms:.0f} ms")
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        subprocess.run(["gpgconf", "--homedir", str(home / "gnupg"), "--kill", "gpg-agent"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
