"""Issue 4: real SFTP inboxes and outboxes.

Every test marked `slow` runs against a real OpenSSH sshd (tests/sshd.py) configured as
docs/deploy/sftp.md prescribes: chrooted department accounts that upload with the real
`sftp` client in batch mode, and the gateway's own account reaching every tree.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from conftest import query, specimen
from sshd import GATEWAY_KEY_PASSPHRASE, Sshd, department_account

from gateway.config import CONFIG_FILE, load_settings
from gateway.errors import ConfigError, TransportError
from gateway.exchange.lifecycle import Gateway
from gateway.receipts.check import verify_receipt
from gateway.intake.transports import FoundFile
from gateway.intake.transports.sftp import SftpTransport, fingerprint, pin_host_key

SPECIMEN = "hospital_births_202610.csv"
POLICE_SPECIMEN = "police_hukou_202610.csv"
PASSPHRASE_VARIABLE = "GATEWAY_SFTP_COUNTY_PASSPHRASE"


def configure(home: Path, *tables: str) -> None:
    with open(home / CONFIG_FILE, "a", encoding="utf-8") as config:
        config.write("".join(tables))


def pin(home: Path, server: Sshd) -> None:
    """What the operator does: ssh-keyscan, then compare the fingerprint out of band."""
    import subprocess

    scanned = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", "-p", str(server.port), "127.0.0.1"], capture_output=True, text=True, check=True
    ).stdout
    (home / "known_hosts").write_text(scanned)
    listed = subprocess.run(["ssh-keygen", "-lf", str(home / "known_hosts")], capture_output=True, text=True, check=True)
    assert server.host_fingerprint in listed.stdout


@pytest.fixture
def county(home: Path, sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """A gateway whose hospital and police mailboxes are on the test sshd (host key pinned)."""
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    monkeypatch.setenv(PASSPHRASE_VARIABLE, GATEWAY_KEY_PASSPHRASE)
    configure(home, sshd.gateway_toml("county", ["hospital", "police"]))
    pin(home, sshd)
    gateway = Gateway(load_settings(home))
    yield gateway
    gateway.close()


def local_copy(tmp_path: Path, name: str, data: bytes, mode: int = 0o644) -> Path:
    source = tmp_path / "clerk" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(data)
    os.chmod(source, mode)
    return source


def remote_names(server: Sshd, department: str, folder: str) -> list[str]:
    return sorted(p.name for p in (server.root / department / folder).iterdir())


# -- the user story -------------------------------------------------------------


@pytest.mark.slow
def test_department_uploads_with_sftp_and_downloads_a_genuine_receipt(county, sshd, home, tmp_path):
    sshd.upload("hospital", local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN)))
    sshd.upload("police", local_copy(tmp_path, POLICE_SPECIMEN, specimen(POLICE_SPECIMEN)))

    outcomes = {o.department: o for o in county.run_once()}
    hospital = outcomes["hospital"]
    assert (hospital.status, hospital.accepted, hospital.rejected) == ("processed", 3, 3)
    assert outcomes["police"].status in ("processed", "rejected")

    # The clerk fetches the receipt, its signature and the rejection report with plain sftp.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    sshd.sftp(
        "hospital",
        f"get outbox/{SPECIMEN}.receipt.json",
        f"get outbox/{SPECIMEN}.receipt.json.asc",
        f"get outbox/{SPECIMEN}.errors.csv",
        cwd=downloads,
    )
    receipt = downloads / f"{SPECIMEN}.receipt.json"
    verdict = verify_receipt(receipt, home / "keys", county.engine)
    assert verdict.genuine, [(c.name, c.detail) for c in verdict.checks if not c.ok]
    document = json.loads(receipt.read_bytes())
    assert document["file_sha256"] == hashlib.sha256(specimen(SPECIMEN)).hexdigest()
    assert document["counts"]["accepted"] == 3 and document["department"] == "hospital"

    # The source moved to processed/ after the commit; nothing half-written is left.
    assert remote_names(sshd, "hospital", "inbox") == []
    assert remote_names(sshd, "hospital", "processed") == [SPECIMEN]
    assert (sshd.root / "hospital" / "processed" / SPECIMEN).read_bytes() == specimen(SPECIMEN)
    assert remote_names(sshd, "hospital", "outbox") == [
        f"{SPECIMEN}.errors.csv", f"{SPECIMEN}.receipt.json", f"{SPECIMEN}.receipt.json.asc"
    ]
    for delivered in (sshd.root / "hospital" / "outbox").iterdir():
        info = delivered.stat()
        assert (info.st_mode & 0o777, info.st_gid) == (0o640, _gid(department_account("hospital")))

    # Police got its own receipt in its own outbox, which it can fetch.
    police_receipt = f"{POLICE_SPECIMEN}.receipt.json"
    assert police_receipt in remote_names(sshd, "police", "outbox")
    sshd.sftp("police", f"get outbox/{police_receipt}", cwd=downloads)
    assert json.loads((downloads / police_receipt).read_bytes())["department"] == "police"
    assert remote_names(sshd, "police", "inbox") == []

    paths = query(home, "SELECT department, source_path, archived_path FROM exchange ORDER BY id")
    assert query(home, "SELECT count(*) FROM record r JOIN exchange e ON e.id = r.exchange_id "
                 "WHERE e.department = 'hospital'") == [(3,)]
    assert ("hospital", f"sftp://county/hospital/inbox/{SPECIMEN}", f"sftp://county/hospital/processed/{SPECIMEN}") in paths

    # The same bytes again: a duplicate exchange, receipted, archived under another name.
    sshd.upload("hospital", local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN)))
    [again] = county.run_once()
    assert again.status == "duplicate"
    assert len(remote_names(sshd, "hospital", "processed")) == 2


@pytest.mark.slow
def test_temporary_and_unsettled_files_wait(home, sshd, monkeypatch, tmp_path):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "4")  # SFTP mtimes are whole seconds
    monkeypatch.setenv(PASSPHRASE_VARIABLE, GATEWAY_KEY_PASSPHRASE)
    configure(home, sshd.gateway_toml("county", ["hospital"]))
    pin(home, sshd)
    gateway = Gateway(load_settings(home))
    try:
        source = local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN))
        sshd.sftp("hospital", f'put "{source}" "inbox/{SPECIMEN}.part"')  # an upload still in progress
        assert gateway.run_once() == []
        assert remote_names(sshd, "hospital", "inbox") == [f"{SPECIMEN}.part"]

        sshd.sftp("hospital", f'rename "inbox/{SPECIMEN}.part" "inbox/{SPECIMEN}"')
        ready, wait = gateway.ready_files()
        assert ready == [] and wait > 0  # fresh: its mtime (from the server) is too recent
        [found] = gateway.transport_for("hospital").list_inbox("hospital")
        assert (found.path, found.size) == (f"sftp://county/hospital/inbox/{SPECIMEN}", len(specimen(SPECIMEN)))

        [outcome] = gateway.run_once()  # waits for it to settle, then takes it
        assert outcome.status == "processed"
    finally:
        gateway.close()


# -- confinement ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.backend_independent
def test_a_department_sees_only_its_inbox_and_outbox(sshd, tmp_path):
    note = local_copy(tmp_path, "note.csv", b"a,b\n1,2\n")
    (sshd.root / "police" / "outbox" / "secret.receipt.json").write_text("{}")
    (sshd.root / "police" / "inbox" / "secret.csv").write_text("x")
    (sshd.root / "hospital" / "outbox" / "mine.receipt.json").write_text("{}")
    os.chmod(sshd.root / "hospital" / "outbox" / "mine.receipt.json", 0o640)
    os.chown(sshd.root / "hospital" / "outbox" / "mine.receipt.json", 0, _gid(department_account("hospital")))

    listing = sshd.sftp("hospital", "ls -1").stdout
    assert "inbox" in listing and "outbox" in listing and "police" not in listing
    sshd.upload("hospital", note)
    sshd.sftp("hospital", "get outbox/mine.receipt.json", cwd=tmp_path)

    forbidden = {
        "another department's tree": "ls ../police",
        "another department's tree by name": "ls /police",
        "another department's outbox": "get /police/outbox/secret.receipt.json",
        "the real path of another tree": f"get {sshd.root}/police/inbox/secret.csv",
        "writing into its outbox": f'put "{note}" outbox/forged.receipt.json',
        "deleting from its outbox": "rm outbox/mine.receipt.json",
        "writing beside its folders": f'put "{note}" note.csv',
        "making folders beside them": "mkdir extra",
        "reading processed/": "ls processed",
        "writing processed/": f'put "{note}" processed/note.csv',
        "reading rejected/": "ls rejected",
        "symbolic links": "ln -s /inbox/note.csv inbox/link.csv",
        "hard links": "ln /inbox/note.csv inbox/hard.csv",
    }
    allowed = {what: command for what, command in forbidden.items() if sshd.sftp("hospital", command, check=False).returncode == 0}
    assert allowed == {}
    assert not (sshd.root / "hospital" / "outbox" / "forged.receipt.json").exists()
    assert not (sshd.root / "hospital" / "note.csv").exists()

    # And the other way round.
    assert sshd.sftp("police", "ls /hospital/inbox", check=False).returncode != 0
    assert "note.csv" not in sshd.sftp("police", "ls -1 inbox").stdout


# -- host keys -----------------------------------------------------------------


@pytest.mark.slow
def test_unknown_or_changed_host_key_is_refused_and_never_trusted(home, sshd, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    monkeypatch.setenv(PASSPHRASE_VARIABLE, GATEWAY_KEY_PASSPHRASE)
    configure(home, sshd.gateway_toml("county", ["hospital"]))
    sshd.upload("hospital", local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN)))
    known_hosts = home / "known_hosts"

    # 1. Nothing pinned yet.
    gateway = Gateway(load_settings(home))
    try:
        with caplog.at_level(logging.ERROR):
            assert gateway.run_once() == []
        assert "does not exist" in caplog.text and "ssh-keyscan" in caplog.text
        assert not known_hosts.exists()

        # 2. A known_hosts file that knows other servers only: unknown key.
        known_hosts.write_text("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert gateway.run_once() == []
        assert "host key is not pinned" in caplog.text
        assert sshd.host_fingerprint in caplog.text
        assert f"ssh-keyscan -t ed25519 -p {sshd.port} 127.0.0.1 >> {known_hosts}" in caplog.text
        assert sshd.host_key_line not in known_hosts.read_text()  # never added by itself

        # 3. Another key pinned for this very server: refused as a changed key.
        impostor = paramiko.Ed25519Key.from_private_key_file(str(sshd.key(department_account("police"))))
        known_hosts.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {impostor.get_base64()}\n")
        before = known_hosts.read_bytes()
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert gateway.run_once() == []
        assert "HOST KEY CHANGED" in caplog.text and fingerprint(impostor) in caplog.text
        assert known_hosts.read_bytes() == before

        # The transport stays stopped (it does not even connect) until known_hosts changes.
        connections = sshd.log_text().count("Connection from")
        assert gateway.run_once() == []
        assert sshd.log_text().count("Connection from") == connections
        assert f"Accepted publickey for {department_account('hospital')}" in sshd.log_text()
        assert "Accepted publickey for gwt-gateway" not in sshd.log_text()  # no login was ever attempted
        assert remote_names(sshd, "hospital", "inbox") == [SPECIMEN]

        # 4. The operator pins the right key (checked against the fingerprint): served again.
        known_hosts.write_text("")
        with pytest.raises(TransportError, match="nothing was pinned"):
            pin_host_key(known_hosts, "127.0.0.1", sshd.port, fingerprint(impostor))
        assert known_hosts.read_text() == ""
        line = pin_host_key(known_hosts, "127.0.0.1", sshd.port, sshd.host_fingerprint)
        assert known_hosts.read_text() == line + "\n" and line.split()[:2] == sshd.host_key_line.split()[:2]
        [outcome] = gateway.run_once()
        assert outcome.status == "processed"
    finally:
        gateway.close()


# -- failures stay with their server --------------------------------------------


class Blackhole:
    """A TCP port that accepts connections and never says a word (a hung server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.slow
def test_one_server_down_leaves_the_other_departments_served(home, sshd, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    monkeypatch.setenv(PASSPHRASE_VARIABLE, GATEWAY_KEY_PASSPHRASE)
    monkeypatch.setenv("GATEWAY_SFTP_PASSPHRASE", GATEWAY_KEY_PASSPHRASE)
    hung = Blackhole()
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    configure(
        home,
        sshd.gateway_toml("county", ["hospital"]),
        sshd.gateway_toml("city", ["police"], port=hung.port, connect_timeout=2.0),
        sshd.gateway_toml("town", ["civil-affairs"], port=closed_port, connect_timeout=2.0),
    )
    pin(home, sshd)
    sshd.upload("hospital", local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN)))
    gateway = Gateway(load_settings(home))
    try:
        started = time.monotonic()
        with caplog.at_level(logging.ERROR):
            outcomes = gateway.run_once()
        first_pass = time.monotonic() - started
        assert [(o.department, o.status) for o in outcomes] == [("hospital", "processed")]
        assert first_pass < 15, "a hung server must time out"
        assert "sftp server city" in caplog.text and "cannot connect" in caplog.text
        assert "sftp server town" in caplog.text

        # The next pass does not wait on the hung server again: it backs off.
        sshd.upload("hospital", local_copy(tmp_path, "second.csv", specimen(SPECIMEN).replace(b"Q4407812600", b"Q4407812609")))
        caplog.clear()
        started = time.monotonic()
        with caplog.at_level(logging.ERROR):
            [outcome] = gateway.run_once()
        assert outcome.department == "hospital" and outcome.accepted == 3
        assert time.monotonic() - started < 10
        assert "not retrying for another" in caplog.text
    finally:
        gateway.close()
        hung.close()


@pytest.mark.slow
def test_connections_are_reused_and_reopened_after_the_server_restarts(home, sshd, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    monkeypatch.setenv(PASSPHRASE_VARIABLE, GATEWAY_KEY_PASSPHRASE)
    configure(home, sshd.gateway_toml("county", ["hospital", "police"], reconnect_max_seconds=1.0))
    pin(home, sshd)
    gateway = Gateway(load_settings(home))
    try:
        sshd.upload("hospital", local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN)))
        [first] = gateway.run_once()
        gateway.run_once()
        assert first.status == "processed"
        assert sshd.log_text().count("Accepted publickey for gwt-gateway") == 1  # one connection, reused

        port = sshd.port
        sshd.stop()  # the server goes away, killing the gateway's session too
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert gateway.run_once() == []
        assert "sftp server county" in caplog.text

        sshd.start(port)
        time.sleep(1.1)  # the (shortened) backoff
        sshd.upload("hospital", local_copy(tmp_path, "second.csv", specimen(SPECIMEN).replace(b"Q4407812600", b"Q4407812609")))
        [second] = gateway.run_once()
        assert (second.status, second.accepted) == ("processed", 3)
        assert sshd.log_text().count("Accepted publickey for gwt-gateway") == 2
    finally:
        gateway.close()


@pytest.mark.slow
def test_a_stale_connection_is_replaced_within_the_pass(county, sshd, tmp_path):
    county.run_once()  # connects
    port = sshd.port
    sshd.stop()
    sshd.start(port)  # back before the next pass: the kept connection is dead
    sshd.upload("hospital", local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN)))
    [outcome] = county.run_once()
    assert outcome.status == "processed"


@pytest.mark.slow
def test_a_hung_session_times_out_and_is_replaced(home, sshd, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    monkeypatch.setenv(PASSPHRASE_VARIABLE, GATEWAY_KEY_PASSPHRASE)
    configure(home, sshd.gateway_toml("county", ["hospital"], timeout=2.0))
    pin(home, sshd)
    gateway = Gateway(load_settings(home))
    frozen = []
    try:
        assert gateway.run_once() == []  # connected
        frozen = sshd.sessions("gwt-gateway")
        assert frozen
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)  # the server side of the connection hangs
        sshd.upload("hospital", local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN)))
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="gateway.sftp"):
            [outcome] = gateway.run_once()
        assert outcome.status == "processed"
        assert "connection lost" in caplog.text and "reconnecting" in caplog.text
        assert time.monotonic() - started < 15
    finally:
        gateway.close()
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


# -- what the gateway never does ------------------------------------------------


@pytest.mark.slow
def test_a_link_in_an_inbox_is_never_followed(county, sshd, tmp_path):
    # The department's server denies creating links; suppose one got there anyway,
    # pointing (from the gateway's side of the chroot) into another department's tree.
    secret = sshd.root / "police" / "processed" / "secret.csv"  # readable by the gateway's account
    secret.write_bytes(specimen(SPECIMEN))
    os.symlink("../../police/processed/secret.csv", sshd.root / "hospital" / "inbox" / "births.csv")

    link = FoundFile("hospital", "births.csv", "sftp://county/hospital/inbox/births.csv", 0, 0.0)
    with pytest.raises(OSError) as refused:
        county.transport_for("hospital").stage(link, tmp_path / "staged")
    assert refused.value.errno == errno.ELOOP and not (tmp_path / "staged").exists()

    [outcome] = county.run_once()
    assert (outcome.department, outcome.status) == ("hospital", "rejected")
    assert "symbolic links" in (outcome.reason or "")
    assert (sshd.root / "hospital" / "rejected" / "births.csv").is_symlink()
    assert secret.read_bytes() == specimen(SPECIMEN)
    assert remote_names(sshd, "police", "processed") == ["secret.csv"]
    assert query(county.settings, "SELECT count(*) FROM record") == [(0,)]


@pytest.mark.slow
def test_a_file_the_gateway_may_not_read_stays_with_a_clear_error(county, sshd, tmp_path, caplog):
    private = local_copy(tmp_path, SPECIMEN, specimen(SPECIMEN), mode=0o600)  # the clerk's umask was 077
    sshd.upload("hospital", private)
    with caplog.at_level(logging.ERROR):
        assert county.run_once() == []
    assert "may not read it (mode 0600)" in caplog.text
    assert remote_names(sshd, "hospital", "inbox") == [SPECIMEN]
    # The clerk is told too, once, in the outbox (UTF-8 with BOM, Chinese first).
    note = sshd.root / "hospital" / "outbox" / f"{SPECIMEN}.pending.txt"
    text = note.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf") and text.decode("utf-8-sig").index("无权读取") < text.decode("utf-8-sig").index("may not read")
    assert county.run_once() == []
    assert remote_names(sshd, "hospital", "outbox") == [f"{SPECIMEN}.pending.txt"]
    # Made readable on the server, it is processed and the note goes away.
    os.chmod(sshd.root / "hospital" / "inbox" / SPECIMEN, 0o640)
    [outcome] = county.run_once()
    assert outcome.status == "processed"
    assert f"{SPECIMEN}.pending.txt" not in remote_names(sshd, "hospital", "outbox")


@pytest.mark.slow
def test_a_gbk_name_on_the_server_does_not_stop_the_pass(county, sshd, tmp_path):
    """A Windows client's GBK name: received under its readable name, beside a good file."""
    gbk = "出生登记.csv".encode("gbk")
    inbox = os.fsencode(sshd.root / "hospital" / "inbox")
    with open(os.path.join(inbox, gbk), "wb") as handle:
        handle.write(specimen(SPECIMEN).replace(b"Q4407812600", b"Q4407812690"))
    os.chown(os.path.join(inbox, gbk), _uid(department_account("hospital")), _gid("gwt-exchange"))
    os.chmod(os.path.join(inbox, gbk), 0o640)
    sshd.upload("police", local_copy(tmp_path, POLICE_SPECIMEN, specimen(POLICE_SPECIMEN)))
    outcomes = {o.file_name: o for o in county.run_once()}
    assert outcomes["出生登记.csv"].status == "processed"
    assert POLICE_SPECIMEN in outcomes
    assert remote_names(sshd, "hospital", "processed") == ["出生登记.csv"]
    assert "出生登记.csv.receipt.json" in remote_names(sshd, "hospital", "outbox")


# -- settings and keys (no server needed) -----------------------------------------


def test_the_key_passphrase_comes_from_the_environment_only(home, tmp_path, monkeypatch):
    import subprocess

    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(key)], check=True)
    (home / "known_hosts").write_text("")
    table = f'\n[sftp.county]\nhost = "127.0.0.1"\nport = 9\nusername = "gw"\nkey_file = "{key}"\ndepartments = ["hospital"]\n'
    configure(home, table)
    for variable in (PASSPHRASE_VARIABLE, "GATEWAY_SFTP_PASSPHRASE"):
        monkeypatch.delenv(variable, raising=False)

    def attempt() -> str:
        transport = SftpTransport.from_settings("county", load_settings(home).sftp["county"], load_settings(home))
        with pytest.raises(TransportError) as caught:
            transport.list_inbox("hospital")
        return str(caught.value)

    assert PASSPHRASE_VARIABLE in attempt()
    monkeypatch.setenv(PASSPHRASE_VARIABLE, "wrong")
    assert "wrong passphrase" in attempt()
    monkeypatch.setenv(PASSPHRASE_VARIABLE, "s3cret")
    assert "cannot connect" in attempt()  # the key loads; port 9 refuses

    (home / CONFIG_FILE).write_text((home / CONFIG_FILE).read_text() + 'passphrase = "s3cret"\n')
    with pytest.raises(ConfigError, match=PASSPHRASE_VARIABLE):
        load_settings(home)


def test_sftp_settings_are_checked(home):
    base = '\n[sftp.{name}]\nhost = "h"\nusername = "gw"\nkey_file = "k"\ndepartments = {departments}\n'
    original = (home / CONFIG_FILE).read_text()
    for tables, problem in (
        ([("a", '["hospitl"]')], "not in `departments`"),
        ([("a", '["hospital"]'), ("b", '["hospital"]')], "listed under both"),
        ([("A", '["hospital"]')], "lowercase"),
    ):
        (home / CONFIG_FILE).write_text(original + "".join(base.format(name=n, departments=d) for n, d in tables))
        with pytest.raises(ConfigError, match=problem):
            load_settings(home)
    (home / CONFIG_FILE).write_text(original + base.format(name="county", departments='["hospital"]'))
    settings = load_settings(home)
    server = settings.sftp["county"]
    assert (server.port, server.root, server.known_hosts) == (22, "/", None)
    gateway = Gateway(settings)
    try:
        transport = gateway.transport_for("hospital")
        assert isinstance(transport, SftpTransport) and transport.known_hosts == home / "known_hosts"
        assert gateway.transport_for("police") is gateway.transport  # the local mailbox
    finally:
        gateway.close()


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid



@pytest.mark.slow
def test_operator_pins_the_host_key_with_the_fingerprint_and_checks_the_trees(home, sshd):
    from conftest import run_gateway

    configure(home, sshd.gateway_toml("county", ["hospital", "police"]))
    env = {PASSPHRASE_VARIABLE: GATEWAY_KEY_PASSPHRASE}
    wrong = run_gateway(home, "sftp", "pin", "county", "--fingerprint", "SHA256:" + "A" * 43, env=env, check=False)
    assert wrong.returncode == 2 and not (home / "known_hosts").exists()
    unknown = run_gateway(home, "sftp", "pin", "nowhere", "--fingerprint", sshd.host_fingerprint, check=False)
    assert unknown.returncode == 2 and "county" in unknown.stderr
    pinned = run_gateway(home, "sftp", "pin", "county", "--fingerprint", sshd.host_fingerprint, env=env)
    assert "Pinned" in pinned.stdout
    assert sshd.host_key_line.split()[-1] in (home / "known_hosts").read_text()
    checked = run_gateway(home, "sftp", "check", "county", env=env)
    assert "ok   hospital" in checked.stdout and "ok   police" in checked.stdout


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
