"""The test suite never touches a real home (issue 14): with the README tour's
`export GATEWAY_HOME=...` (and other GATEWAY_* settings) in the environment, the
suite's gateway commands run on homes the tests made, and the real home is left
byte for byte as it was."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, SUITE_VARIABLES, run_gateway, user_gateway_variables


def _tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under `root`: kind, mode and (for files) the sha256 of its bytes."""
    found: dict[str, tuple[str, int, str]] = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            found[relative] = ("link", 0, os.readlink(path))
        elif path.is_dir():
            found[relative] = ("dir", path.stat().st_mode, "")
        elif path.is_socket() or relative.startswith("gnupg/S."):
            continue  # gpg-agent's sockets come and go with the agent, not with the suite
        else:
            found[relative] = ("file", path.stat().st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def test_the_session_runs_without_the_users_gateway_variables(database_url):
    # The one GATEWAY_* variable a test sees is the one the suite sets itself: on
    # PostgreSQL, its own fresh database for this test (conftest.database_url).
    expected = ["GATEWAY_DATABASE_URL"] if database_url else []
    assert user_gateway_variables() == expected
    assert os.environ.get("GATEWAY_DATABASE_URL") == database_url
    assert "GATEWAY_HOME" not in os.environ
    assert user_gateway_variables({"GATEWAY_HOME": "x", "GATEWAY_TEST_DATABASE": "sqlite",
                                   "GATEWAY_CONSOLE_DOCS_SCREENSHOT": "1", "GATEWAY_SETTLE_SECONDS": "0"}) == [
        "GATEWAY_HOME", "GATEWAY_SETTLE_SECONDS"]
    assert all(name.startswith("GATEWAY_") for name in SUITE_VARIABLES)


def test_the_suites_gateway_commands_leave_a_real_gateway_home_untouched(tmp_path):
    real = tmp_path / "gateway-home"
    run_gateway(real, "init")
    # A file waiting in the real home's inbox: a test that ran on this home would take it.
    inbox = real / "mailboxes" / "hospital" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "hospital_births_202610.csv").write_bytes((REPO / "gateway" / "demo_data" / "hospital_births_202610.csv").read_bytes())
    before = _tree(real)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") or k.startswith(SUITE_VARIABLES)}
    env.update({"GATEWAY_HOME": str(real), "GATEWAY_SETTLE_SECONDS": "0", "GATEWAY_POLL_SECONDS": "0.2",
                "GATEWAY_DATABASE_URL": "sqlite:///" + str(real / "gateway.db")})  # the real home's database too
    tests = [
        "tests/test_cli.py::test_run_once_prints_a_summary_and_exchanges_show_masks",
        "tests/test_cli.py::test_ingest_by_hand_leaves_the_file_and_delivers_the_receipt",
        "tests/test_cli.py::test_environment_overrides_the_settings_file",
        "tests/test_delivery.py::test_one_hospital_drop_fans_out_to_three_departments_each_seeing_only_its_fields",
        "tests/test_suite_isolation.py::test_the_session_runs_without_the_users_gateway_variables",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *tests],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout
    assert _tree(real) == before
