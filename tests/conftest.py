"""Shared fixtures: a real gateway home (real GnuPG keyring, real SQLite file, local
mailbox) per test, copied from one made per session so the key is generated once."""

from __future__ import annotations

import csv
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
from gateway.exchange.home import init_home
from gateway.exchange.lifecycle import Gateway

REPO = Path(__file__).resolve().parents[1]
SPECIMENS = Path(str(files("gateway") / "demo_data"))


def _short_tmpdir(prefix: str) -> Path:
    # gpg-agent puts its socket in the keyring folder; a Unix socket path must stay
    # under 108 bytes, which pytest's long tmp_path names can exceed.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _kill_agent(gnupg_dir: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(gnupg_dir), "--kill", "gpg-agent"], capture_output=True, check=False)


# The suite's own settings: which backend (GATEWAY_TEST_DATABASE), which PostgreSQL
# server (GATEWAY_TEST_POSTGRES_URL), the template database it makes
# (GATEWAY_TEST_POSTGRES_TEMPLATE), scripts/test's GATEWAY_TEST_DATABASES and
# GATEWAY_TEST_SERIAL, GATEWAY_TEST_ALL_BACKENDS (below), and GATEWAY_CONSOLE_DOCS_SCREENSHOT (refreshes the README's
# picture). Every other GATEWAY_* variable is the user's gateway configuration (their
# GATEWAY_HOME after the README's tour, a database URL, passphrases...): the suite must
# never read or write a home it did not make, so those are cleared for the whole
# session, before any test module is imported (scripts/test clears them too).
SUITE_VARIABLES = ("GATEWAY_TEST_", "GATEWAY_CONSOLE_DOCS_SCREENSHOT")


def user_gateway_variables(environ=os.environ) -> list[str]:  # type: ignore[no-untyped-def]
    """The GATEWAY_* variables in `environ` that configure a gateway, not the suite."""
    return sorted(k for k in environ if k.startswith("GATEWAY_") and not k.startswith(SUITE_VARIABLES))


CLEARED_VARIABLES = {name: os.environ.pop(name) for name in user_gateway_variables()}


@pytest.fixture(scope="session", autouse=True)
def clean_gateway_environment() -> Iterator[None]:
    """No user GATEWAY_* variable during the session (cleared at import above, and again
    here in case a plugin set one since); restored when the session ends."""
    for name in user_gateway_variables():
        CLEARED_VARIABLES.setdefault(name, os.environ.pop(name))
    try:
        yield
    finally:
        for name in user_gateway_variables():
            os.environ.pop(name, None)
        os.environ.update(CLEARED_VARIABLES)


BACKEND = os.environ.get("GATEWAY_TEST_DATABASE", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"GATEWAY_TEST_DATABASE must be sqlite or postgresql, not {BACKEND!r}")


# -- tests that run on one backend only ------------------------------------------------------
# `@pytest.mark.backend_independent` (or a module's `pytestmark`) marks a test that neither
# reads nor writes the gateway database and whose outcome cannot depend on the backend:
# parsing, contracts, masking, Merkle arithmetic, calendars, the plugin kit in its own venv,
# sshd's chroots, gpg over bytes, the partner simulator, pure CLI help. The SQLite run runs
# them; the PostgreSQL run deselects them (each would only cost it a fresh database), unless
# GATEWAY_TEST_ALL_BACKENDS=1. Be conservative: a test that touches a gateway home's database
# (directly, through `gateway` commands, or through a fixture), or whose behaviour may differ
# by backend (locks, workers, migrations, concurrency, transactions), stays unmarked.
# `backend_independent(run_on="postgresql")`: when scripts/test runs the two backends side by
# side (GATEWAY_TEST_SIDE_BY_SIDE=1), the PostgreSQL run takes it instead, to even out two
# halves that run at once (a run of one backend alone still runs every marked test on SQLite).

# The plugin kit's generated class (gateway/testing.py, shared with plugin authors) cannot
# carry this suite's marker: its tests that only parse are marked here by name.
ADAPTER_KIT_PARSE_ONLY = (
    "test_describes_itself",
    "test_sample_parses_and_validates",
    "test_same_bytes_same_record_hashes",
    "test_bad_input_is_an_error_not_a_crash",
    "test_rows_are_streamed",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        cls = getattr(item, "cls", None)
        if getattr(cls, "__module__", None) == "gateway.testing" and getattr(item, "originalname", None) in ADAPTER_KIT_PARSE_ONLY:
            item.add_marker(pytest.mark.backend_independent)
    if os.environ.get("GATEWAY_TEST_ALL_BACKENDS") == "1":
        return
    balanced = os.environ.get("GATEWAY_TEST_SIDE_BY_SIDE") == "1"

    def runs_here(item: pytest.Item) -> bool:
        marker = item.get_closest_marker("backend_independent")
        if marker is None:
            return True
        # side by side (scripts/test), a long one may go to the PostgreSQL run to even out the halves
        on = marker.kwargs.get("run_on", "sqlite") if balanced else "sqlite"
        return on == BACKEND

    kept = [item for item in items if runs_here(item)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if not runs_here(item)])
        items[:] = kept


TEST_DATABASES = None  # tests/pg.py's DatabasePool while the PostgreSQL session runs


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """The PostgreSQL server URL when the suite runs on PostgreSQL. Fails (never skips)
    when the server cannot be reached or started."""
    if BACKEND != "postgresql":
        yield None
        return
    import pg

    given = os.environ.get("GATEWAY_TEST_POSTGRES_URL")
    cluster = None if given else pg.ThrowawayCluster()
    server = given or cluster.start()  # type: ignore[union-attr]
    template = pg.migrated_template(server)
    os.environ["GATEWAY_TEST_POSTGRES_TEMPLATE"] = template
    global TEST_DATABASES
    TEST_DATABASES = pg.DatabasePool(server, template)
    try:
        yield server
    finally:
        TEST_DATABASES.close()
        TEST_DATABASES = None
        pg.drop_database(server, template)
        if cluster is not None:
            cluster.stop()


@pytest.fixture(autouse=True)
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """Every test's gateway database: SQLite in the home by default; on PostgreSQL a fresh
    database per test, named to every gateway in the test through GATEWAY_DATABASE_URL."""
    if BACKEND != "postgresql":
        yield None
        return
    import pg

    request.getfixturevalue("postgres_server")
    assert TEST_DATABASES is not None
    url = TEST_DATABASES.take()  # made ahead from the template (tests/pg.py)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    try:
        yield url
    finally:
        TEST_DATABASES.give_back(url)  # dropped behind, WITH (FORCE)


@pytest.fixture
def another_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A second, separate database URL on PostgreSQL (None on SQLite: each home has its own file)."""
    if BACKEND != "postgresql":
        yield None
        return
    import pg

    server = request.getfixturevalue("postgres_server")
    url = pg.create_database(server)
    try:
        yield url
    finally:
        pg.drop_database(server, url)


def _engine_for(target, readonly: bool = True):  # type: ignore[no-untyped-def]
    """An engine on the database of `target`: settings (their db_url) or a home path."""
    from gateway.store import make_engine

    url = target.db_url if hasattr(target, "db_url") else load_settings(Path(target)).db_url
    return make_engine(url, readonly=readonly)


def query(target, sql: str, *args) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Rows of `sql` (with ? placeholders) from the gateway database of `target` (a
    home or settings), on whichever backend the suite runs."""
    engine = _engine_for(target)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                sql = sql.replace("%", "%%").replace("?", "%s")
            return [tuple(row) for row in connection.exec_driver_sql(sql, tuple(args)).fetchall()]
    finally:
        engine.dispose()


def execute(target, script: str) -> None:  # type: ignore[no-untyped-def]
    """Run `;`-separated statements in one transaction (tests that tamper with the store)."""
    engine = _engine_for(target, readonly=False)
    try:
        with engine.begin() as connection:
            for statement in filter(None, (part.strip() for part in script.split(";"))):
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def database_text(target) -> str:  # type: ignore[no-untyped-def]
    """Every value in every table, as text: for checking that something never got stored."""
    from sqlalchemy import inspect

    engine = _engine_for(target)
    try:
        lines = []
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.exec_driver_sql(f'SELECT * FROM "{table}"'):
                    lines.append(f"{table}: " + " | ".join(str(value) for value in row))
        return "\n".join(lines)
    finally:
        engine.dispose()


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


def hospital_births_file(batch: int, rows: int, prefix: str = "W") -> bytes:
    """A hospital file of `rows` valid births whose certificate numbers (`PREFIX` + batch +
    row) are unique per batch: for tests that drop many files and count records."""
    from stdnum.cn import ric

    header = specimen("hospital_births_202610.csv").decode("gb18030").splitlines()[0]
    lines = [header]
    for n in range(rows):
        body = f"44078119{90 + n % 10:02d}0315{(n * 2) % 1000:03d}"
        mother = body + ric.calc_check_digit(body + "0")
        lines.append(
            f"{prefix}{batch:05d}{n:05d},陈小明,男,2026-10-03,14:25,3250,39,1,陈丽,{mother},,,"
            "台山市人民医院,12440781MB2C23455K,广东省台山市台城街道环城南路12号,440781"
        )
    return ("\r\n".join(lines) + "\r\n").encode("gb18030")


def error_report(settings, department: str, name: str, columns: tuple[int, ...] = (1, 2, 3, 6)) -> dict[int, list[tuple[str, ...]]]:
    """The outbox's `NAME.errors.csv` as {row: [(the chosen columns), ...]}. Its columns:
    0 row, 1 column, 2 field, 3 masked value, 4 reason (zh), 5 reason (en), 6 code."""
    path = settings.mailbox_root / department / "outbox" / f"{name}.errors.csv"
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    found: dict[int, list[tuple[str, ...]]] = {}
    for row in rows:
        found.setdefault(int(row[0] or 0), []).append(tuple(row[c] for c in columns))
    return found


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


@pytest.fixture(scope="session")
def mail_servers() -> Iterator["MailServers"]:
    """A real Dovecot (IMAPS, STARTTLS, LMTP) and Postfix (submission, STARTTLS, SASL) on
    127.0.0.1 with a throwaway CA (tests/mail_servers.py). Fails, never skips, when they cannot start."""
    from mail_servers import MailServers

    servers = MailServers()
    try:
        yield servers.start()
    finally:
        servers.cleanup()


# -- routing (issue 7): recipients' keyrings, and the privacy scan of the whole suite ----------

import logging  # noqa: E402
import traceback  # noqa: E402


class RecipientKeyring:
    """A department's own GnuPG keyring as a recipient of deliveries: an ed25519 key with a
    cv25519 encryption subkey (optionally expiring), decryption with plain gpg."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="gwr", dir="/tmp"))
        self.home.chmod(0o700)

    def gpg(self, *args: str, data: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            input=data, capture_output=True, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"gpg {' '.join(args)}: {result.stderr.decode(errors='replace')}")
        return result

    def new_key(self, name: str, *, encrypt: bool = True, expire: str = "never") -> str:
        """A new key; `expire` like "never" or "seconds=2" (applies to the encryption subkey too)."""
        self.gpg("--quick-gen-key", f"{name} <{name.lower().replace(' ', '.')}@example.org>", "ed25519", "sign", expire)
        listing = self.gpg("--with-colons", "--list-keys", name).stdout.decode()
        fingerprint = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][0]
        if encrypt:
            self.gpg("--quick-add-key", fingerprint, "cv25519", "encr", expire)
        return fingerprint

    def export(self, fingerprint: str) -> bytes:
        return self.gpg("--armor", "--export", fingerprint).stdout

    def sign(self, data: bytes, fingerprint: str) -> bytes:
        return self.gpg("--armor", "--detach-sign", "--local-user", fingerprint, "--output", "-", data=data).stdout

    def trust_gateway(self, keys_dir: Path) -> None:
        for key in sorted(keys_dir.glob("gateway-*.asc")):
            self.gpg("--import", str(key))

    def decrypt(self, path: Path) -> tuple[bytes, str]:
        """Plain `gpg --decrypt FILE`: the plaintext and gpg's status lines."""
        result = self.gpg("--status-fd", "2", "--decrypt", str(path))
        return result.stdout, result.stderr.decode(errors="replace")

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], capture_output=True, check=False)
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="session")
def recipients() -> Iterator[dict[str, tuple[RecipientKeyring, str]]]:
    """One keyring per receiving department, each with an encryption-capable key, made
    once per session: {department: (keyring, fingerprint)}."""
    made = {}
    for department in ("population-office", "school", "police", "civil-affairs"):
        ring = RecipientKeyring()
        made[department] = (ring, ring.new_key(f"{department.title()} Office"))
    yield made
    for ring, _ in made.values():
        ring.close()


@pytest.fixture
def register_recipients(settings, recipients):
    """Register every receiving department's public key in the gateway home."""
    from gateway.receipts.keys import DepartmentKeys

    registry = DepartmentKeys(settings.keys_dir)
    for department, (ring, fingerprint) in recipients.items():
        registry.import_key(ring.export(fingerprint), department)
        ring.trust_gateway(settings.keys_dir)
    return recipients


class _PrivacyCollector(logging.Handler):
    """Keeps the text of every log record (message and traceback) of the whole suite."""

    def __init__(self, skip_prefix: str | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.skip_prefix = skip_prefix
        self.texts: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.skip_prefix and record.name.startswith(self.skip_prefix):
            return  # the gateway logger's own collector has it
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.texts.append((f"log {record.name} {record.levelname}", text))


class PrivacyState:
    """What the privacy scan collects during the session and checks at its end."""

    REPORT_PATTERNS = ("*.errors.csv", "*.receipt.json", "*.log")

    def __init__(self) -> None:
        self.logs = _PrivacyCollector()
        self.root_logs = _PrivacyCollector(skip_prefix="gateway")
        self.outputs: list[tuple[str, str]] = []
        self.files: dict[str, str] = {}
        self.scanner = None

    def make_scanner(self):  # type: ignore[no-untyped-def]
        """Known ID numbers and names: the specimens and every test module's literals."""
        import csv as _csv
        import io as _io

        from gateway.store.audit import IdScanner, known_ids, known_phones

        texts, names = [], set()
        for path in sorted(SPECIMENS.iterdir()):
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("gb18030")
            texts.append(text)
            if path.suffix == ".csv":
                for row in _csv.DictReader(_io.StringIO(text)):
                    names.update(v.strip() for k, v in row.items() if k and ("姓名" in k or k.strip() == "XM") and v and v.strip())
        for path in sorted(Path(__file__).parent.glob("*.py")):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        # Every personal field kind is looked for: ID numbers and names, and phone numbers
        # (the `phone` kind) of the specimens and the test modules.
        return IdScanner(known_ids(texts), names, phones=known_phones(texts))

    def collect_files(self, roots: list[Path]) -> None:
        for root in roots:
            if not root.is_dir():
                continue
            for pattern in self.REPORT_PATTERNS:
                for path in root.rglob(pattern):
                    if path.is_file() and str(path) not in self.files:
                        try:
                            with open(path, "rb") as handle:
                                data = handle.read(1 << 20)
                        except OSError:
                            continue
                        for encoding in ("utf-8-sig", "gb18030", "latin-1"):
                            try:
                                self.files[str(path)] = data.decode(encoding)
                                break
                            except UnicodeDecodeError:
                                continue

    def findings(self) -> list:  # type: ignore[type-arg]
        scanner = self.scanner or self.make_scanner()
        found = []
        for where, text in self.logs.texts + self.root_logs.texts + self.outputs:
            found += scanner.scan(text, where)
        for path, text in self.files.items():
            found += scanner.scan(text, path)
        return found


PRIVACY = PrivacyState()


@pytest.fixture(scope="session", autouse=True)
def privacy_scan() -> Iterator[PrivacyState]:
    """The whole suite's privacy check (issue 7): every log record, every `*.errors.csv`,
    receipt and log file under the tests' homes (collected before each test's teardown
    removes them), and the output of every `gateway` command run through `run_gateway`
    or printed by a test, are scanned at the end of the session for full ID numbers and
    names of the specimens and test data, and for any 18-character number with a right
    check character. Any finding fails the session. `tests/test_privacy.py` proves the
    scanner catches a planted unmasked number."""
    gateway_logger = logging.getLogger("gateway")
    previous_level = gateway_logger.level
    gateway_logger.setLevel(logging.DEBUG)
    gateway_logger.addHandler(PRIVACY.logs)
    logging.getLogger().addHandler(PRIVACY.root_logs)
    PRIVACY.scanner = PRIVACY.make_scanner()
    try:
        yield PRIVACY
    finally:
        gateway_logger.removeHandler(PRIVACY.logs)
        logging.getLogger().removeHandler(PRIVACY.root_logs)
        gateway_logger.setLevel(previous_level)
    findings = PRIVACY.findings()
    if findings:
        shown = "\n".join(str(f) for f in findings[:40])
        pytest.fail(f"{len(findings)} unmasked ID number(s) or name(s) in logs, reports or command output:\n{shown}", pytrace=False)


def _privacy_roots(item: pytest.Item) -> list[Path]:
    roots = []
    for value in getattr(item, "funcargs", {}).values():
        for candidate in (value, getattr(value, "home", None), getattr(getattr(value, "settings", None), "home", None)):
            if isinstance(candidate, Path):
                roots.append(candidate)
    return roots


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    """Before a test's fixtures remove its homes: collect their reports and receipts."""
    try:
        PRIVACY.collect_files(_privacy_roots(item))
    except Exception:  # noqa: BLE001 - never break a test's teardown
        pass
    yield


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """What tests printed (in-process command output among it)."""
    for name, text in (("stdout", report.capstdout), ("stderr", report.capstderr)):
        if text:
            PRIVACY.outputs.append((f"{report.nodeid} ({report.when}, {name})", text))


_run_gateway_unscanned = run_gateway


def run_gateway(home: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:  # noqa: F811
    """`run_gateway` (above), whose output also goes to the privacy scan."""
    result = _run_gateway_unscanned(home, *args, env=env, check=check)
    PRIVACY.outputs.append((f"gateway {' '.join(args)}", (result.stdout or "") + (result.stderr or "")))
    return result


# -- scheduled pulls and the partner simulator (issue 5: tests/test_pulls.py and friends) --


@pytest.fixture
def partner() -> Iterator["PartnerSimulator"]:
    """The housing registry and the national platform simulated on a free loopback port
    (gateway/devkit/simulator.py), token `test-token`, seed 0, no random faults."""
    from gateway.devkit.simulator import PartnerSimulator

    simulator = PartnerSimulator(token="test-token", housing_items=30, platform_pages=3, per_page=4).start()
    try:
        yield simulator
    finally:
        simulator.stop()


def add_pulls(home: Path, partner, monkeypatch: pytest.MonkeyPatch, *, sources=("housing", "platform"), **options) -> None:  # type: ignore[no-untyped-def]
    """Point `[pulls.housing]` / `[pulls.platform]` of the home's gateway.toml at `partner`,
    with fast retries (tests) unless `options` say otherwise; the tokens in the environment."""
    settings = {"retries": 4, "backoff": 0.02, "backoff_jitter": 0.01, "backoff_max": 0.2, "connect_timeout": 2.0, "read_timeout": 10.0}
    settings.update(options)
    lines = []
    for name in sources:
        lines += [f"\n[pulls.{name}]", f'kind = "{name}"', f'url = "{partner.url}"']
        lines += [f"{key} = {value!r}".replace("'", '"') if not isinstance(value, bool) else f"{key} = {str(value).lower()}"
                  for key, value in settings.items()]
        monkeypatch.setenv(f"GATEWAY_PULL_{name.upper()}_TOKEN", partner.token)
    with open(home / "gateway.toml", "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
