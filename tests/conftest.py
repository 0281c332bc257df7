"""Shared fixtures: a real gateway home (real GnuPG keyring, real SQLite file, local
mailbox) per test, copied from one made per session so the key is generated once."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.home import init_home
from gateway.pipeline import Gateway

REPO = Path(__file__).resolve().parents[1]
SPECIMENS = Path(str(files("gateway") / "demo_data"))


def _short_tmpdir(prefix: str) -> Path:
    # gpg-agent puts its socket in the keyring folder; a Unix socket path must stay
    # under 108 bytes, which pytest's long tmp_path names can exceed.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _kill_agent(gnupg_dir: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(gnupg_dir), "--kill", "gpg-agent"], capture_output=True, check=False)


@pytest.fixture(scope="session")
def template_home() -> Iterator[Path]:
    root = _short_tmpdir("gwt")
    home = root / "home"
    settings, _, _ = init_home(home)
    _kill_agent(settings.gnupg_dir)
    yield home
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def home(template_home: Path) -> Iterator[Path]:
    """A fresh gateway home with the session's signing key and an empty database."""
    root = _short_tmpdir("gw")
    target = root / "home"
    shutil.copytree(template_home, target, ignore=shutil.ignore_patterns("S.*", "*.lock", "gateway.db*"))
    yield target
    _kill_agent(target / "gnupg")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def settings(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    return load_settings(home)


@pytest.fixture
def gateway(settings) -> Iterator[Gateway]:
    gw = Gateway(settings)
    yield gw
    gw.close()


def drop(settings, department: str, name: str, data: bytes, *, age: float = 60.0) -> Path:
    """Drop a file as a department's client does: write NAME.part, then rename."""
    inbox = settings.mailbox_root / department / "inbox"
    partial = inbox / (name + ".part")
    partial.write_bytes(data)
    target = inbox / name
    os.replace(partial, target)
    if age:
        past = time.time() - age
        os.utime(target, (past, past))
    return target


def specimen(name: str) -> bytes:
    return (SPECIMENS / name).read_bytes()


def run_gateway(home: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the installed `gateway` command as a user would."""
    command = [str(REPO / ".venv" / "bin" / "gateway") if (REPO / ".venv" / "bin" / "gateway").exists() else "gateway"]
    result = subprocess.run(
        [*command, *args, "--home", str(home)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"gateway {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def sshd() -> Iterator["Sshd"]:
    """A real OpenSSH sshd on 127.0.0.1 with chrooted `hospital` and `police` accounts and
    the gateway's account (tests/sshd.py). Fails, never skips, when it cannot start."""
    from sshd import Sshd

    server = Sshd(("hospital", "police"))
    try:
        yield server.start()
    finally:
        server.cleanup()
