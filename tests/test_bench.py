"""The benchmark runs in CI at a smoke size only (figures are for `make bench`, not tests).
On the PostgreSQL run of the suite it measures on that server too (scratch databases)."""

from __future__ import annotations

import subprocess

import pytest

from conftest import REPO


def _figures(lines: list[str], label: str) -> list[float]:
    row = next((line for line in lines if line.startswith(label)), None)
    assert row is not None, f"no line {label!r} in:\n" + "\n".join(lines)
    return [float(field.replace(",", "").rstrip("x")) for field in row[len(label):].split() if field != "MB"]


@pytest.mark.slow
def test_benchmark_runs_at_smoke_size(postgres_server):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    if postgres_server:
        env["GATEWAY_BENCH_POSTGRES_URL"] = postgres_server
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), str(REPO / "bench" / "ingest.py"), "--rows", "2000", "--files", "8"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    backends = ["SQLite"] + (["PostgreSQL"] if postgres_server else [])
    single = ["(a) csv + sqlite3 executemany (ceiling)", "(b) gateway ingest", "(b) gateway run --once"]
    if postgres_server:
        single += ["(b) gateway ingest, PostgreSQL", "(b) gateway run --once, PostgreSQL"]
    else:
        assert "(b) on PostgreSQL: not measured" in result.stdout
    for label in single:
        rows_per_second, of_ceiling, peak_mb = _figures(lines, label)
        assert rows_per_second > 0 and 0 < of_ceiling <= 1.5 and 20 < peak_mb < 1000, label
    for backend in backends:
        seconds, rows_per_second = _figures(lines, f"(c) {backend}, 1 worker")
        # Both figures are printed rounded (seconds to 0.01, rows/s to 1): their product may
        # miss the row count by up to half a row per second plus 0.005 s of rows.
        assert abs(rows_per_second * seconds - 2000) <= 0.5 * seconds + 0.005 * rows_per_second + 1, "rows/s is rows over seconds"
        seconds2, rows_per_second2, speed_up = _figures(lines, f"(c) {backend}, 2 workers")
        assert abs(rows_per_second2 * seconds2 - 2000) <= 0.5 * seconds2 + 0.005 * rows_per_second2 + 1
        assert speed_up > 0 and abs(speed_up - rows_per_second2 / rows_per_second) <= 0.01, "2 vs 1 is the ratio of rows/s"


@pytest.mark.slow
@pytest.mark.backend_independent  # the benchmark makes its own SQLite home
def test_console_list_benchmark_runs_at_smoke_size():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), str(REPO / "bench" / "console_lists.py"), "--exchanges", "300", "--repeat", "3",
         "--budget-ms", "5000"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("home with 300 exchanges")
    for label in ("exchanges, first page", "exchanges, last page", "exchanges, file-name search", "deliveries, middle page",
                  "API exchanges, 100 a page"):
        median, p95 = _figures(lines, label)
        assert 0 < median <= p95, label
    assert lines[-1] == "every page's median within 5000 ms"
