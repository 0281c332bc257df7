"""A real OpenSSH sshd for the SFTP tests, set up the way docs/deploy/sftp.md sets up
production: one chrooted account per department (ForceCommand internal-sftp), the
gateway's own account chrooted to the parent of the department trees, and the
ownership and modes the document prescribes.

Machine state: system accounts `gwt-<department>` and `gwt-gateway` and group
`gwt-exchange` are created (idempotently) and left in place, locked to key login with
no shell; each server's files live under /srv/gateway-test/run-*/ (a chroot cannot be
under /tmp) and are removed by `cleanup()`. Needs root and Debian's openssh-server
(`scripts/bootstrap` installs it).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BASE = Path("/srv/gateway-test")
SSHD = Path("/usr/sbin/sshd")
EXCHANGE_GROUP = "gwt-exchange"
GATEWAY_ACCOUNT = "gwt-gateway"
GATEWAY_KEY_PASSPHRASE = "gateway sftp key passphrase"
NOLOGIN = "/usr/sbin/nologin"


class SshdError(RuntimeError):
    """The test server could not be set up or started (a test failure, never a skip)."""


def department_account(department: str) -> str:
    return f"gwt-{department}"


def _run(*command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(command), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise SshdError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def _settle(command: tuple[str, ...], done) -> None:
    """Run an account command until `done()` holds: another test run on this machine may be
    making the same account at the same moment (the account files are then locked)."""
    for _ in range(50):
        if done():
            return
        if _run(*command, check=False).returncode != 0:
            time.sleep(0.2)
    if not done():
        _run(*command)


def _exists(lookup, name: str) -> bool:
    try:
        lookup(name)
        return True
    except KeyError:
        return False


def ensure_group(name: str) -> None:
    _settle(("groupadd", name), lambda: _exists(grp.getgrnam, name))


def ensure_account(name: str, groups: tuple[str, ...] = ()) -> None:
    """A key-only account with no shell and its own group (useradd -U), home `/`."""
    _settle(("useradd", "-M", "-U", "-d", "/", "-s", NOLOGIN, name), lambda: _exists(pwd.getpwnam, name))
    # useradd makes a locked account ('!'), which sshd refuses without PAM; '*' allows key login only.
    _settle(("usermod", "-p", "*", name), lambda: _shadow(name) == "*")
    for group in groups:
        _settle(("usermod", "-a", "-G", group, name), lambda g=group: name in grp.getgrnam(g).gr_mem)


def _shadow(name: str) -> str | None:
    for line in Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields[1]
    return None


def match_block(account: str, chroot: Path, keys: Path, *, department: bool = True) -> list[str]:
    """One account's `Match User` block, as docs/deploy/sftp.md writes it."""
    command = "internal-sftp -u 0027 -P symlink,hardlink" if department else "internal-sftp -u 0027"
    return [
        f"Match User {account}",
        f"    ChrootDirectory {chroot}",
        f"    ForceCommand {command}",
        f"    AuthorizedKeysFile {keys}/%u",
        "    AuthenticationMethods publickey",
        "    PasswordAuthentication no",
        "    KbdInteractiveAuthentication no",
        "    AllowTcpForwarding no",
        "    AllowStreamLocalForwarding no",
        "    AllowAgentForwarding no",
        "    PermitTunnel no",
        "    X11Forwarding no",
        "    PermitTTY no",
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (sshd's per-connection processes run in their own sessions)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _chown(path: Path, user: str, group: str, mode: int) -> None:
    shutil.chown(path, user, group)
    os.chmod(path, mode)  # after chown, so the setgid bit is set on the final owner and group


class Sshd:
    """One sshd on 127.0.0.1 with its own host key, config and department trees."""

    def __init__(self, departments: tuple[str, ...] = ("hospital", "police")):
        if os.geteuid() != 0:
            raise SshdError("the SFTP tests start a real sshd with chroot accounts and must run as root")
        if not SSHD.exists() or shutil.which("sftp") is None or shutil.which("ssh-keygen") is None:
            raise SshdError(f"{SSHD} or the sftp client is missing: run scripts/bootstrap (it installs openssh)")
        self.departments = departments
        for _ in range(5):  # another run may remove BASE the moment it empties
            BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
            os.chmod(BASE, 0o755)
            try:
                self.base = Path(tempfile.mkdtemp(prefix="run-", dir=BASE))
                break
            except FileNotFoundError:
                continue
        else:
            raise SshdError(f"cannot make a folder under {BASE}")
        os.chmod(self.base, 0o755)  # a chroot's every component: root-owned, not group/other-writable
        self.root = self.base / "exchange"
        self.etc = self.base / "etc"
        self.authorized = self.etc / "authorized_keys"
        self.clients = self.etc / "clients"
        self.config = self.etc / "sshd_config"
        self.log = self.etc / "sshd.log"
        self.host_key = self.etc / "ssh_host_ed25519_key"
        self.known_hosts = self.clients / "known_hosts"
        self.port = 0
        self.process: subprocess.Popen | None = None
        try:
            self._setup()
        except BaseException:
            self.cleanup()
            raise

    # -- setting up -------------------------------------------------------------

    def _setup(self) -> None:
        ensure_group(EXCHANGE_GROUP)
        ensure_account(GATEWAY_ACCOUNT, (EXCHANGE_GROUP,))
        for department in self.departments:
            ensure_account(department_account(department))
        for folder, mode in ((self.root, 0o755), (self.etc, 0o755), (self.authorized, 0o755), (self.clients, 0o700)):
            folder.mkdir(mode=mode)
            os.chmod(folder, mode)
        for department in self.departments:
            self.make_tree(department)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gwt-host", "-f", str(self.host_key))
        self.key(GATEWAY_ACCOUNT, passphrase=GATEWAY_KEY_PASSPHRASE)
        for department in self.departments:
            self.key(department_account(department))
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)

    def make_tree(self, department: str) -> Path:
        """The tree docs/deploy/sftp.md prescribes, with the same owners and modes."""
        account = department_account(department)
        tree = self.root / department
        tree.mkdir(mode=0o755)
        _chown(tree, "root", "root", 0o755)  # the department's chroot
        for folder, owner, group, mode in (
            ("inbox", account, EXCHANGE_GROUP, 0o2770),
            ("outbox", GATEWAY_ACCOUNT, account, 0o2750),
            ("processed", GATEWAY_ACCOUNT, EXCHANGE_GROUP, 0o750),
            ("rejected", GATEWAY_ACCOUNT, EXCHANGE_GROUP, 0o750),
        ):
            (tree / folder).mkdir()
            _chown(tree / folder, owner, group, mode)
        return tree

    def key(self, account: str, passphrase: str = "") -> Path:
        """A client key pair for `account`, authorized on the server."""
        path = self.clients / account
        if not path.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", account, "-f", str(path))
            authorized = self.authorized / account
            authorized.write_text(path.with_suffix(".pub").read_text())
            os.chmod(authorized, 0o644)
        return path

    def _write_config(self) -> None:
        # The test server's own settings; the Match blocks are docs/deploy/sftp.md's.
        departments = [department_account(d) for d in self.departments]
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.etc / 'sshd.pid'}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin no",
            f"AllowUsers {GATEWAY_ACCOUNT} {' '.join(departments)}",
            "StrictModes yes",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            "",
            *match_block(GATEWAY_ACCOUNT, self.root, self.authorized, department=False),
        ]
        for department in self.departments:
            lines += ["", *match_block(department_account(department), self.root / department, self.authorized)]
        self.config.write_text("\n".join(lines) + "\n")
        os.chmod(self.config, 0o644)
        _run(str(SSHD), "-t", "-f", str(self.config))

    # -- running ----------------------------------------------------------------

    def start(self, port: int | None = None) -> Sshd:
        """Start sshd (on `port`, or a free one) and wait until it speaks SSH."""
        attempts = 1 if port else 3
        for attempt in range(attempts):
            self.port = port or _free_port()
            self._write_config()
            self.process = subprocess.Popen(
                [str(SSHD), "-D", "-f", str(self.config), "-E", str(self.log)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                        if probe.recv(64).startswith(b"SSH-2.0-"):
                            return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
            if attempt + 1 == attempts:
                log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise SshdError(f"sshd did not start on port {self.port}:\n{log}")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop sshd and every session it forked (they survive their parent otherwise)."""
        process, self.process = self.process, None
        if process is None:
            return
        victims = [process.pid, *_children(process.pid)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        deadline = time.monotonic() + 5
        for pid in victims[1:]:
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.02)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def sessions(self, account: str) -> list[int]:
        """The processes serving `account`'s open connections ("sshd: ACCOUNT", "[priv]")."""
        if self.process is None:
            return []
        found = []
        for pid in _children(self.process.pid):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"sshd: {account}" in title:
                found.append(pid)
        return found

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
        try:
            BASE.rmdir()  # only if no other run is using it
        except OSError:
            pass

    # -- what clients need --------------------------------------------------------

    @property
    def host_key_line(self) -> str:
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}"

    @property
    def host_fingerprint(self) -> str:
        return _run("ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key.with_suffix(".pub"))).stdout.split()[1]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def sftp(self, department: str, *commands: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """Run the real OpenSSH `sftp` client in batch mode as the department's clerk would.
        Batch mode stops at the first failing command and exits non-zero."""
        account = department_account(department)
        self.known_hosts.write_text(self.host_key_line + "\n")
        with tempfile.NamedTemporaryFile("w", suffix=".batch", dir=self.clients, delete=False) as batch:
            batch.write("\n".join(commands) + "\n")
        try:
            result = subprocess.run(self._sftp_command(account, batch.name), capture_output=True, text=True, timeout=60, cwd=cwd)
        finally:
            os.unlink(batch.name)
        if check and result.returncode != 0:
            raise AssertionError(f"sftp as {account} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def _sftp_command(self, account: str, batch: str, limit_kbit: int | None = None) -> list[str]:
        limit = ["-l", str(limit_kbit)] if limit_kbit else []
        return [
            "sftp", "-b", batch, *limit, "-F", "/dev/null", "-i", str(self.key(account)),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=10", "-P", str(self.port), f"{account}@127.0.0.1",
        ]

    def sftp_background(self, department: str, *commands: str, limit_kbit: int | None = None) -> subprocess.Popen:
        """The real `sftp` client in batch mode, left running (`-l KBIT`: a slow line, as
        OpenSSH throttles it: bursts of writes with pauses between them)."""
        account = department_account(department)
        self.known_hosts.write_text(self.host_key_line + "\n")
        batch = self.clients / f"batch-{time.monotonic_ns()}.txt"
        batch.write_text("\n".join(commands) + "\n")
        return subprocess.Popen(
            self._sftp_command(account, str(batch), limit_kbit),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def upload(self, department: str, local: Path, name: str | None = None) -> None:
        """Upload as ordinary clients do: `put` under a temporary name, then `rename`."""
        name = name or local.name
        self.sftp(department, f'put "{local}" "inbox/{name}.part"', f'rename "inbox/{name}.part" "inbox/{name}"')

    def gateway_toml(self, name: str, departments: list[str], **extra: object) -> str:
        """A `[sftp.NAME]` table for the gateway's account on this server."""
        values: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": GATEWAY_ACCOUNT,
            "key_file": str(self.key(GATEWAY_ACCOUNT)),
            "root": "/",
            "departments": departments,
            "connect_timeout": 5.0,
            "timeout": 20.0,
            **extra,
        }
        body = "\n".join(f"{key} = {_toml(value)}" for key, value in values.items())
        return f"\n[sftp.{name}]\n{body}\n"


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)
