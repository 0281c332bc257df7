"""A real `gateway serve` for the console tests: a subprocess on a free loopback port,
against a real home whose drops `gateway run --once` processed."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests

from conftest import PRIVACY, REPO, drop, run_gateway, specimen

ARTIFACTS = REPO / "test-artifacts" / "console" / os.environ.get("GATEWAY_TEST_DATABASE", "sqlite")
PASSWORDS = {"op": "operator-pass-1", "sec": "officer-pass-12", "clerk": "hospital-clerk-1"}


def gateway_command() -> str:
    local = REPO / ".venv" / "bin" / "gateway"
    return str(local) if local.exists() else "gateway"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_user(home: Path, name: str, *args: str, password: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`gateway users add NAME ... --password-stdin`, the password on standard input."""
    result = subprocess.run(
        [gateway_command(), "users", "add", name, *args, "--password-stdin", "--home", str(home)],
        input=(password if password is not None else PASSWORDS[name]) + "\n", capture_output=True, text=True, timeout=120,
    )
    PRIVACY.outputs.append((f"gateway users add {name}", result.stdout + result.stderr))
    if check and result.returncode != 0:
        raise AssertionError(f"users add {name} exited {result.returncode}: {result.stdout}{result.stderr}")
    return result


def prepared_home(settings, home: Path) -> dict[str, int]:
    """Police and hospital specimens dropped and processed; the three accounts added.
    Returns the exchange id of each department."""
    drop(settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))
    drop(settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
    run_gateway(home, "run", "--once", env={"GATEWAY_SETTLE_SECONDS": "0"})
    add_user(home, "op", "--role", "operator")
    add_user(home, "sec", "--role", "security-officer")
    add_user(home, "clerk", "--role", "department", "--department", "hospital")
    listed = run_gateway(home, "exchanges", "list").stdout
    ids = {}
    for line in listed.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 3 and cells[1].isdigit():
            ids[cells[3]] = int(cells[1])
    assert set(ids) == {"police", "hospital"}, listed
    return ids


class Console:
    """`gateway serve` running as a real process."""

    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / "serve.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [gateway_command(), "serve", "--port", str(self.port), "--home", str(home)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"gateway serve did not start:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.2)

    def session(self, name: str) -> tuple[requests.Session, str]:
        """A signed-in API session and its CSRF token."""
        http = requests.Session()
        answer = http.post(self.url + "/api/session", json={"name": name, "password": PASSWORDS[name]}, timeout=30)
        assert answer.status_code == 200, answer.text
        return http, answer.json()["csrf_token"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        PRIVACY.outputs.append((f"gateway serve log {self.home}", self.log.read_text(errors="replace")))


def scan_text(where: str, text: str) -> None:
    """Every page and API answer goes to the suite's privacy scan, and is checked here at once."""
    PRIVACY.outputs.append((where, text))
    scanner = PRIVACY.scanner or PRIVACY.make_scanner()
    findings = scanner.scan(text, where)
    assert not findings, "\n".join(str(f) for f in findings)
