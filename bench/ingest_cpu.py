"""CPU time of one `gateway ingest`, split between the gateway process and its parsing
processes: the figure to trust on a shared machine, where wall-clock time swings.

    python bench/ingest.py --rows 200000 --keep /tmp/gwbench     # makes the file
    python bench/ingest_cpu.py /tmp/gwbench/hospital_births_bench.csv --workers 0 1 2

Each run ingests the file into a fresh home (SQLite) in a fresh process and prints the
wall time, the CPU time of that process (the writer) and of its children during the
ingest (the parsing processes; gpg signs once), and peak RSS: the process's own and the
largest child's (a forked child counts the pages it shares with its parent, so this is an
upper bound for each parsing process).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(data: Path, workers: int, home: Path) -> str:
    from gateway.config import load_settings
    from gateway.exchange.home import init_home
    from gateway.exchange.lifecycle import Gateway

    shutil.rmtree(home, ignore_errors=True)
    init_home(home)
    settings = load_settings(home).model_copy(update={"ingest_workers": workers})
    gateway = Gateway(settings)
    try:
        self_before, children_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        outcome = gateway.ingest(data, "hospital-births")
        wall = time.perf_counter() - started
        self_after, children_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        gateway.close()
        subprocess.run(["gpgconf", "--homedir", str(home / "gnupg"), "--kill", "gpg-agent"], capture_output=True)
    writer = self_after.ru_utime + self_after.ru_stime - self_before.ru_utime - self_before.ru_stime
    parsers = children_after.ru_utime + children_after.ru_stime - children_before.ru_utime - children_before.ru_stime
    rows = outcome.accepted + outcome.rejected + outcome.duplicates
    return (
        f"ingest_workers={workers}: {rows:,} rows in {wall:.1f}s ({rows / wall:,.0f} rows/s); CPU gateway process "
        f"{writer:.1f}s, parsing processes {parsers:.1f}s; peak RSS {self_after.ru_maxrss / 1024:.0f} MB "
        f"(largest child process {children_after.ru_maxrss / 1024:.0f} MB); load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--runs", type=int, default=1, help="repeat the sequence of workers this often")
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)  # one run, in this process
    args = parser.parse_args()
    if args.home is not None:
        print(run(args.file.resolve(), args.workers[0], args.home), flush=True)
        return
    work = Path(tempfile.mkdtemp(prefix="gwcpu", dir="/tmp"))
    try:
        for _ in range(args.runs):
            for workers in args.workers:
                # A fresh process per run: its peak RSS and CPU times are this run's own.
                subprocess.run(
                    [sys.executable, __file__, str(args.file), "--workers", str(workers), "--home", str(work / "home")],
                    check=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
