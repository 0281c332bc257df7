"""`gateway adapters new`: the generated plugins (one per format: CSV, XLSX, XML, JSON)
install into one fresh virtual environment, their generated tests pass at once, and
`gateway adapters list` shows them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO

# name, department, format, the contract class shown by `gateway adapters list`
PLUGINS = [
    ("water-board", None, "csv", "WaterBoardRecord"),
    ("grid-meters", "power-company", "xlsx", "GridMetersRecord"),
    ("tax-office", "taxation", "xml", "TaxOfficeRecord"),
    ("bus-cards", "transport", "json", "BusCardsRecord"),
]


# Backend-independent (the plugin kit in its own venv; its generated tests make their own
# SQLite homes): runs on one backend only (tests/conftest.py).
# its venv and pip install take two minutes: side by side, the PostgreSQL half (the shorter) runs it
pytestmark = pytest.mark.backend_independent(run_on="postgresql")


@pytest.mark.slow
def test_scaffolded_plugins_round_trip_for_every_format(tmp_path):
    gateway = REPO / ".venv" / "bin" / "gateway"
    packages = []
    for name, department, format, _ in PLUGINS:
        args = [str(gateway), "adapters", "new", name, "--directory", str(tmp_path), "--format", format]
        made = subprocess.run(args + (["--department", department] if department else []), capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        package = tmp_path / f"gateway-{name}"
        assert (package / "pyproject.toml").exists()
        assert (package / "tests" / "test_adapter.py").read_text().count("adapter_test_class(") == 1
        assert (package / "tests" / "samples" / f"{name.replace('-', '_')}_sample.{format}").exists()
        reader = {"csv": "csv_rows", "xlsx": "xlsx_rows", "xml": "iter_elements", "json": "json_records"}[format]
        assert "from gateway.readers import" in (package / f"gateway_{name.replace('-', '_')}" / "adapter.py").read_text()
        assert reader in (package / f"gateway_{name.replace('-', '_')}" / "adapter.py").read_text()
        packages.append(package)

    # One environment for the four: one venv, one pip run.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", str(REPO), *(arg for p in packages for arg in ("-e", f"{p}[test]"))],
        capture_output=True, text=True, timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    # The kit makes its own gateway homes (SQLite): not this suite's database. One pytest
    # run for the four packages (importlib mode: each has a tests/test_adapter.py).
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib", "-rA", *map(str, packages)],
        capture_output=True, text=True, cwd=tmp_path, timeout=900, env=env,
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "43 passed" in tests.stdout  # 10 kit tests for CSV; 11 for each other format (a third damage case)
    passed = [line for line in tests.stdout.splitlines() if line.startswith("PASSED ")]
    for name, *_ in PLUGINS:
        klass = "".join(part.capitalize() for part in name.split("-"))
        assert any(line.endswith(f"Test{klass}::test_rows_are_streamed") for line in passed), name

    listing = subprocess.run([str(venv / "bin" / "gateway"), "adapters", "list"], capture_output=True, text=True, env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"})
    assert listing.returncode == 0, listing.stderr
    for name, department, _, contract in PLUGINS:
        row = next(line for line in listing.stdout.splitlines() if f" {name} " in f" {line} ")
        assert f"gateway-{name}" in row and contract in row and "0.1.0" in row and (department or name) in row


def test_bad_adapter_name_is_refused(tmp_path):
    result = subprocess.run(
        [str(REPO / ".venv/bin/gateway"), "adapters", "new", "Water Board", "--directory", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "lowercase" in result.stderr


def test_unknown_format_is_refused(tmp_path):
    result = subprocess.run(
        [str(REPO / ".venv/bin/gateway"), "adapters", "new", "water-board", "--format", "dbf", "--directory", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "dbf" in result.stderr and "csv, xlsx, xml, json" in result.stderr
    assert not (tmp_path / "gateway-water-board").exists()
