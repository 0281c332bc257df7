"""The layout is a checked rule (issue 15, docs/architecture.md): the modules allowed at
the top of gateway/, and the import-linter contracts of pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

# Backend-independent (the package layout and lint-imports on the source tree): runs on one backend only (tests/conftest.py).
pytestmark = pytest.mark.backend_independent


LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# The top of gateway/: the plugin interface, the settings and the small shared modules.
# Everything else lives in the package of its step or domain (docs/architecture.md).
TOP_LEVEL = {
    "__init__",
    "adapter",
    "clock",
    "config",
    "errors",
    "hookspecs",
    "masking",
    "plugins",
    "services",
    "testing",
}


def _top_level(root: Path) -> set[str]:
    return {path.stem for path in root.glob("*.py")}


def test_only_the_listed_modules_sit_at_the_top_of_gateway():
    found = _top_level(REPO / "gateway")
    assert found - TOP_LEVEL == set(), (
        f"new module(s) at the top of gateway/: {sorted(found - TOP_LEVEL)}; put them in the package of their "
        "step or domain (docs/architecture.md), or add them here and to the layers in pyproject.toml"
    )
    assert TOP_LEVEL - found == set(), f"listed but gone: {sorted(TOP_LEVEL - found)}"


def test_every_package_says_what_it_holds():
    for init in sorted((REPO / "gateway").glob("*/__init__.py")):
        text = init.read_text(encoding="utf-8").lstrip()
        assert text.startswith('"""'), f"{init.relative_to(REPO)} has no docstring"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_lint_imports_keeps_every_contract():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_lint_imports_fails_on_an_upward_import_and_on_a_cycle(tmp_path):
    shutil.copytree(REPO / "gateway", tmp_path / "gateway", ignore=shutil.ignore_patterns("__pycache__", "demo_data", "static"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    # the store reaching up into routing: a layer breach
    audit = tmp_path / "gateway" / "store" / "audit.py"
    audit.write_text(audit.read_text(encoding="utf-8") + "\n\ndef _up():\n    from gateway.routing import Router  # noqa\n", encoding="utf-8")
    # two modules of one package importing each other: a cycle
    (tmp_path / "gateway" / "obligations" / "one.py").write_text("from gateway.obligations import two  # noqa\n")
    (tmp_path / "gateway" / "obligations" / "two.py").write_text("from gateway.obligations import one  # noqa\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "gateway.store is not allowed to import gateway.routing" in broken.stdout, broken.stdout
    assert "2 broken" in broken.stdout, broken.stdout


def test_no_duty_takes_a_gateway_typed_any():
    """Routing, the platform, the reports and the register are typed on the narrow
    `GatewayServices` / `ExchangeServices` Protocols (gateway/services.py), never on
    `gateway: Any`, which would hide from the type checker what they use of a gateway."""
    import re

    untyped = re.compile(r"\bgateway\s*:\s*(?:\"Any\"|Any)\b")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "gateway").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if untyped.search(line)
    ]
    assert offenders == []


def test_no_committed_file_keeps_a_merge_conflict_marker():
    # A merge once left `<<<<<<< HEAD` ... `>>>>>>> backup` in two docs; nothing read them.
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    markers = ("<<<<<<< ", ">>>>>>> ")
    found = []
    for name in filter(None, listed.decode("utf-8").split("\0")):
        path = REPO / name
        if path.suffix not in {".md", ".py", ".toml", ".html", ".cfg", ".po", ".in", ".txt", ".json", ".xml", ".csv", ""} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if line.startswith(markers):
                found.append(f"{name}:{number}")
    assert found == []
