"""The benchmark runs in CI at a smoke size only (figures are for `make bench`, not tests)."""

from __future__ import annotations

import subprocess

import pytest

from conftest import REPO


@pytest.mark.slow
def test_benchmark_runs_at_smoke_size():
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), str(REPO / "bench" / "ingest.py"), "--rows", "3000"],
        capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for label in ("(a) csv + sqlite3 executemany (ceiling)", "(b) gateway ingest", "(b) gateway run --once"):
        row = next(line for line in lines if line.startswith(label))
        rows_per_second = float(row[len(label):].split()[0].replace(",", ""))
        assert rows_per_second > 0
