"""Ingest benchmark: the bare CSV-to-SQLite ceiling against the gateway end to end, on
SQLite and PostgreSQL, with one and with two `gateway worker` processes.

    python bench/ingest.py --rows 1000000        # the figures in docs/performance.md (make bench)
    python bench/ingest.py --rows 20000          # smoke size (make bench-smoke)
    python bench/ingest.py --rows 200000 --postgres-url postgresql://postgres@127.0.0.1:5432/test

Generates a deterministic GB18030 hospital births file in the real 16-column format with
about 1% bad rows, then measures, each in a fresh process:

  (a) the ceiling: csv.reader + sqlite3.executemany, no validation;
  (b) `gateway ingest FILE --adapter hospital-births` and `gateway run --once`, end to end
      (decode, validate, store, Merkle root, signed receipt), on SQLite and, with
      --postgres-url (default: $GATEWAY_BENCH_POSTGRES_URL), on PostgreSQL;
  (c) the same rows split into --files files (default 100) dropped at once, processed by
      1 and by 2 `gateway worker` processes (bench/scaling.py), on both databases.

Prints rows/s, the ratio to (a) and the peak RSS of each child process, then (c)'s rows/s
and the 2-versus-1 speed-up. On PostgreSQL every measurement gets a database of its own,
created on the server of --postgres-url and dropped at the end; nothing else is touched.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stdnum.cn import ric

from scaling import ScratchDatabases, split_file, time_workers

HEADER = [
    "出生医学证明编号", "新生儿姓名", "性别", "出生日期", "出生时间", "出生体重(克)", "出生孕周", "胎次",
    "母亲姓名", "母亲公民身份号码", "父亲姓名", "父亲公民身份号码", "接生机构名称", "接生机构代码", "家庭住址",
    "户籍地行政区划代码",
]
SURNAMES = "陈李黄王赵周吴郑孙刘何梁覃彭许杨"
GIVEN = "小明然安一二丽强敏杰娜芳云伟红"
DIVISIONS = ("440781", "440703", "440106", "450102", "430102")


def _id(rng: random.Random, year: int, female: bool) -> str:
    body = f"{rng.choice(DIVISIONS)}{year:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 49) * 2 + (0 if female else 1):03d}"
    return body + ric.calc_check_digit(body + "0")


def generate(path: Path, rows: int, seed: int = 20261123) -> int:
    """Write the file; return how many rows were made bad on purpose."""
    rng = random.Random(seed)
    bad = 0
    with open(path, "w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for n in range(rows):
            mother = _id(rng, rng.randint(1980, 2002), True)
            father = _id(rng, rng.randint(1978, 2000), False) if rng.random() < 0.7 else ""
            date = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}"
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
            if n % 100 == 37:  # ~1% bad rows, three kinds
                bad += 1
                kind = (n // 100) % 3
                if kind == 0:
                    mother = mother[:-1] + ("0" if mother[-1] != "0" else "1")
                elif kind == 1:
                    date = "2026-02-30"
                else:
                    name = ""
            writer.writerow(
                [
                    f"Q{n:012d}", name, rng.choice("男女"), date, f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
                    rng.randint(2500, 4200), rng.randint(36, 41), rng.randint(1, 3), rng.choice(SURNAMES) + "丽",
                    mother, (rng.choice(SURNAMES) + "强") if father else "", father, "台山市人民医院",
                    "12440781MB2C23455K", "广东省台山市台城街道环城南路12号", "440781",
                ]
            )
    return bad


CEILING = r"""
import csv, sqlite3, sys, time
path, db = sys.argv[1], sys.argv[2]
start = time.perf_counter()
conn = sqlite3.connect(db)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("CREATE TABLE t (%s)" % ",".join("c%d" % i for i in range(16)))
with open(path, encoding="gb18030", newline="") as handle:
    reader = csv.reader(handle)
    next(reader)
    conn.executemany("INSERT INTO t VALUES (%s)" % ",".join("?" * 16), reader)
conn.commit()
print(time.perf_counter() - start)
"""


def _child(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a child; return (seconds, peak RSS in MB of that child, stdout).

    The peak is the child's own: `os.wait4` reaps exactly this process and returns its
    rusage (RUSAGE_CHILDREN would be the largest of every child so far, the generator's
    and earlier measurements' included). Its ru_maxrss also covers any process the child
    itself waited for (gpg), as a maximum, not a sum. Output goes to temporary files, not
    pipes, so that nothing reaps the child before wait4 does.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stdout}\n{stderr}")
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return elapsed, peak_mb, stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1, help="repeat each measurement, keep the fastest")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("GATEWAY_BENCH_POSTGRES_URL") or None,
        help="a PostgreSQL server to measure on too (a scratch database per measurement is created and dropped); "
        "default $GATEWAY_BENCH_POSTGRES_URL, e.g. postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--files", type=int, default=100, help="files for the 1-versus-2-worker run (0: skip it)")
    parser.add_argument("--workers-only", action="store_true", help="only (c), the 1-versus-2-worker run")
    args = parser.parse_args()
    scratch = ScratchDatabases(args.postgres_url) if args.postgres_url else None

    work = args.keep or Path(tempfile.mkdtemp(prefix="gwbench", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    gateway = str(Path(sys.executable).with_name("gateway"))
    data = work / "hospital_births_bench.csv"
    started = time.perf_counter()
    bad = generate(data, args.rows)
    print(f"generated {args.rows:,} rows ({bad:,} bad), {data.stat().st_size / 1e6:.0f} MB GB18030 in {time.perf_counter() - started:.1f}s", flush=True)

    results: dict[str, tuple[float, float]] = {}

    def measure(label: str, make_command) -> None:  # type: ignore[no-untyped-def]
        best = None
        for run in range(args.runs):
            command, env = make_command(run)
            seconds, rss, _ = _child(command, env)
            best = (seconds, rss) if best is None or seconds < best[0] else best
        assert best is not None
        results[label] = best
        print(f"  {label}: {best[0]:.1f}s", flush=True)  # progress: a long run's figures so far

    def ceiling(run: int):  # type: ignore[no-untyped-def]
        db = work / f"ceiling-{run}.db"
        db.unlink(missing_ok=True)
        return [sys.executable, "-c", CEILING, str(data), str(db)], None

    def fresh_home(run: int, label: str, postgres: bool = False) -> tuple[Path, dict[str, str]]:
        """A new home, and the environment that points it at its own database."""
        home = work / f"home-{label}-{run}"
        shutil.rmtree(home, ignore_errors=True)
        env = {"GATEWAY_DATABASE_URL": scratch.new() if postgres and scratch else ""}
        subprocess.run([gateway, "init", "--home", str(home)], check=True, capture_output=True, env={**os.environ, **env})
        return home, env

    def ingest(postgres: bool):  # type: ignore[no-untyped-def]
        def make(run: int):  # type: ignore[no-untyped-def]
            home, env = fresh_home(run, f"ingest{'-pg' if postgres else ''}", postgres)
            return [gateway, "ingest", str(data), "--adapter", "hospital-births", "--home", str(home)], env
        return make

    def run_once(postgres: bool):  # type: ignore[no-untyped-def]
        def make(run: int):  # type: ignore[no-untyped-def]
            home, env = fresh_home(run, f"run{'-pg' if postgres else ''}", postgres)
            shutil.copy(data, home / "mailbox" / "hospital" / "inbox" / data.name)
            past = time.time() - 60
            os.utime(home / "mailbox" / "hospital" / "inbox" / data.name, (past, past))
            return [gateway, "run", "--once", "--home", str(home)], {**env, "GATEWAY_SETTLE_SECONDS": "0"}
        return make

    def single_process() -> None:
        measure("(a) csv + sqlite3 executemany (ceiling)", ceiling)
        measure("(b) gateway ingest", ingest(False))
        measure("(b) gateway run --once", run_once(False))
        if scratch:
            measure("(b) gateway ingest, PostgreSQL", ingest(True))
            measure("(b) gateway run --once, PostgreSQL", run_once(True))

        ceiling_seconds = results["(a) csv + sqlite3 executemany (ceiling)"][0]
        print(f"\n{'pipeline':45} {'rows/s':>10} {'of ceiling':>11} {'peak RSS':>10}")
        for label, (seconds, rss) in results.items():
            print(f"{label:45} {args.rows / seconds:>10,.0f} {ceiling_seconds / seconds:>11.2f} {rss:>8.0f} MB")
        if not scratch:
            print("(b) on PostgreSQL: not measured (no --postgres-url or GATEWAY_BENCH_POSTGRES_URL)")

    try:
        if not args.workers_only:
            single_process()
        if args.files:
            parts = split_file(data, work / "parts", args.files)
            backends = [("SQLite", False)] + ([("PostgreSQL", True)] if scratch else [])
            print(f"\n{f'workers on {args.files} files, {args.rows:,} rows':45} {'seconds':>10} {'rows/s':>11} {'2 vs 1':>10}")
            for backend, postgres in backends:
                seconds = {}
                for workers in (1, 2):
                    best = None
                    for run in range(args.runs):
                        home, env = fresh_home(run, f"workers{workers}-{backend}", postgres)
                        url = env["GATEWAY_DATABASE_URL"] or f"sqlite:///{(home / 'gateway.db').resolve()}"
                        took = time_workers(gateway, home, url, parts, workers)
                        best = took if best is None or took < best else best
                    assert best is not None
                    seconds[workers] = best
                    label = f"(c) {backend}, {workers} worker{'s' if workers > 1 else ''}"
                    ratio = f"{seconds[1] / best:>9.2f}x" if workers == 2 else ""
                    print(f"{label:45} {best:>10.2f} {args.rows / best:>11,.0f} {ratio:>10}", flush=True)
            if not scratch:
                print("(c) on PostgreSQL: not measured (no --postgres-url or GATEWAY_BENCH_POSTGRES_URL)")
    finally:
        if scratch:
            scratch.drop_all()
    if not args.keep:
        for home in work.glob("home-*"):
            subprocess.run(["gpgconf", "--homedir", str(home / "gnupg"), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
