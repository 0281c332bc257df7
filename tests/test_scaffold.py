"""`gateway adapters new`: the generated plugin installs into a fresh virtual
environment, its generated tests pass at once, and `gateway adapters list` shows it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO


# Backend-independent (the plugin kit in its own venv; its generated tests make their own
# SQLite homes): runs on one backend only (tests/conftest.py).
pytestmark = pytest.mark.backend_independent


@pytest.mark.slow
def test_scaffolded_plugin_round_trip(tmp_path):
    gateway = REPO / ".venv" / "bin" / "gateway"
    made = subprocess.run([str(gateway), "adapters", "new", "water-board", "--directory", str(tmp_path)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "gateway-water-board"
    assert (package / "pyproject.toml").exists()
    assert (package / "tests" / "test_adapter.py").read_text().count("adapter_test_class(") == 1

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", str(REPO), "-e", f"{package}[test]"],
        capture_output=True, text=True, timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    # The kit makes its own gateway homes (SQLite): not this suite's database.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env,
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "10 passed" in tests.stdout

    listing = subprocess.run([str(venv / "bin" / "gateway"), "adapters", "list"], capture_output=True, text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "water-board" in line)
    assert "gateway-water-board" in row and "WaterBoardRecord" in row and "0.1.0" in row


def test_bad_adapter_name_is_refused(tmp_path):
    result = subprocess.run(
        [str(REPO / ".venv/bin/gateway"), "adapters", "new", "Water Board", "--directory", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "lowercase" in result.stderr
