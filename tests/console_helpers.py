"""A real `gateway serve` for the console tests: a subprocess on a free loopback port,
against a real home whose drops `gateway run --once` processed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import BACKEND, PRIVACY, REPO, drop, run_gateway, specimen

ARTIFACTS = REPO / "test-artifacts" / "console" / os.environ.get("GATEWAY_TEST_DATABASE", "sqlite")
PASSWORDS = {"op": "operator-pass-1", "sec": "officer-pass-12", "clerk": "hospital-clerk-1", "locky": "locked-out-pass-1", "gone": "disabled-pass-12"}


def gateway_command() -> str:
    local = REPO / ".venv" / "bin" / "gateway"
    return str(local) if local.exists() else "gateway"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """A gateway home of its own (and, on PostgreSQL, a database of its own) shared by the
    console tests of a module: the police, hospital and national platform specimens
    processed by `gateway run --once`, the accounts of PASSWORDS, and `gateway serve`
    running on it."""

    def __init__(self, template_home: Path, postgres_server: str | None, env: dict[str, str] | None = None):
        import tempfile

        from gateway.config import load_settings

        self.root = Path(tempfile.mkdtemp(prefix="gwc", dir="/tmp"))
        self.home = self.root / "home"
        shutil.copytree(template_home, self.home, ignore=shutil.ignore_patterns("S.*", "*.lock", "gateway.db*", "gateway-audit.db*"))
        self.env = {"GATEWAY_SETTLE_SECONDS": "0", **(env or {})}  # e.g. PYTHONPATH to a test plugin
        self.database = None
        if postgres_server is not None:
            import pg

            self.database = pg.create_database(postgres_server, template=os.environ["GATEWAY_TEST_POSTGRES_TEMPLATE"])
            self.env["GATEWAY_DATABASE_URL"] = self.database
        self.settings = load_settings(self.home)
        if self.database:
            self.settings = self.settings.model_copy(update={"database_url": self.database})
        self.postgres_server = postgres_server
        drop(self.settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))
        drop(self.settings, "hospital", "hospital_births_202610.csv", specimen("hospital_births_202610.csv"))
        # Two assist-checks (协查), one long overdue: the overview lists it, its subject masked.
        drop(self.settings, "national-platform", "national_platform_inbound_20261102.xml", specimen("national_platform_inbound_20261102.xml"))
        self.run("run", "--once")
        self.register_assist_checks()
        self.add_users(**{name: ("operator" if name == "op" else "security-officer" if name == "sec" else "department") for name in PASSWORDS})
        rows = self.query("SELECT department, id FROM exchange")
        self.ids = {department: exchange_id for department, exchange_id in rows}
        assert set(self.ids) == {"police", "hospital", "national-platform"}, rows
        self.console = Console(self.home, self.env)

    def engine(self):  # type: ignore[no-untyped-def]
        from gateway.store import make_engine

        return make_engine(self.settings.db_url)

    def query(self, sql: str, *args) -> list[tuple]:  # type: ignore[no-untyped-def]
        from sqlalchemy import text

        engine = self.engine()
        try:
            with engine.connect() as connection:
                names = {f"p{i}": value for i, value in enumerate(args)}
                for i in range(len(args)):
                    sql = sql.replace("?", f":p{i}", 1)
                return [tuple(row) for row in connection.execute(text(sql), names)]
        finally:
            engine.dispose()

    def audit(self, **filters):  # type: ignore[no-untyped-def]
        """The audit log as the officer reads it (routing events and the console's entries,
        gateway/store/audit_log.py), oldest first; `filters` as AuditFilter's."""
        from gateway.store import audit_log
        from gateway.store.console_audit import ConsoleAudit

        from gateway.store import make_engine

        engine = make_engine(self.settings.db_url, readonly=True)  # a reader: never waits on a writer's lock
        log = ConsoleAudit(self.settings.db_url, main=engine)
        try:
            return list(reversed(list(audit_log.entries(engine, log.engine, audit_log.AuditFilter(**filters)))))
        finally:
            log.dispose()
            engine.dispose()

    def register_assist_checks(self) -> None:
        """What `gateway run`'s inbox job does after a platform drop (`run --once` leaves it
        to `gateway assist-checks list`)."""
        from gateway.platform import assist_checks

        engine = self.engine()
        try:
            assert assist_checks.sync(engine, self.settings).requests == 2
        finally:
            engine.dispose()

    def add_users(self, **roles: str) -> None:
        """Accounts made in-process (`gateway users add` itself is tested on its own)."""
        from gateway.web.accounts import add_user as add

        engine = self.engine()
        try:
            for name, role in roles.items():
                add(engine, name, role, PASSWORDS[name], "hospital" if role == "department" else None, list(self.settings.departments))
        finally:
            engine.dispose()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_gateway(self.home, *args, env=self.env, check=check)

    def close(self) -> None:
        self.console.stop()
        PRIVACY.collect_files([self.home])
        subprocess.run(["gpgconf", "--homedir", str(self.home / "gnupg"), "--kill", "gpg-agent"], capture_output=True, check=False)
        if self.database:
            import pg

            pg.drop_database(self.postgres_server, self.database)
        shutil.rmtree(self.root, ignore_errors=True)



@pytest.fixture(scope="module")
def served(template_home, request):  # type: ignore[no-untyped-def]
    """The console tests' shared home and `gateway serve` (Served), one per test module; on
    PostgreSQL with a database of its own. A module uses it with `from console_helpers import
    served`; one that needs more in its home defines its own."""
    postgres_server = request.getfixturevalue("postgres_server") if BACKEND == "postgresql" else None
    home = Served(template_home, postgres_server)
    try:
        yield home
    finally:
        home.close()

class Console:
    """`gateway serve` running as a real process."""

    def __init__(self, home: Path, env: dict[str, str], *options: str):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"serve-{self.port}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [gateway_command(), "serve", "--port", str(self.port), "--home", str(home), *options], stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **env},
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


class _FromAddress(requests.adapters.HTTPAdapter):
    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, connections, maxsize, block=False, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(connections, maxsize, block=block, source_address=(self.address, 0), **kwargs)


def from_address(address: str) -> requests.Session:
    """HTTP from another loopback address (any 127.x.y.z is this machine): a client the
    console's sign-in throttle and back-off tell apart from 127.0.0.1."""
    http = requests.Session()
    http.mount("http://", _FromAddress(address))
    return http


def scan_text(where: str, text: str) -> None:
    """Every page and API answer goes to the suite's privacy scan, and is checked here at once."""
    PRIVACY.outputs.append((where, text))
    scanner = PRIVACY.scanner or PRIVACY.make_scanner()
    findings = scanner.scan(text, where)
    assert not findings, "\n".join(str(f) for f in findings)
