"""SFTP mailboxes: the same contract as the local mailbox, over paramiko.

The exchange's SFTP server (OpenSSH, see docs/deploy/sftp.md) holds one tree per
department, `<root>/<department>/{inbox,outbox,processed,rejected}`. Departments log in
with their own chrooted accounts; the gateway logs in with its own account, which
reaches every department's tree, and polls the inboxes exactly as it polls the local
mailbox:

- listing skips temporary names and reports size and mtime from the server's
  attributes, so the pipeline's settle check works unchanged;
- a file is downloaded into local staging while it is hashed and its encoding sniffed
  (one pass), and only renamed into `processed/` or `rejected/` after the commit;
- outbox files are uploaded as `NAME.part` and renamed, so a department never
  downloads half a receipt;
- a symbolic link in an inbox is never followed (a department could point it at
  another department's tree, which the gateway's account can read).

Host keys are pinned: only the gateway home's known_hosts file is consulted, never
`~/.ssh/known_hosts`, and an unknown or changed key stops the transport (with a
message saying how to pin the key) until that file changes. The gateway
authenticates with its private key only (no agent, no password); the key's
passphrase comes from `GATEWAY_SFTP_<NAME>_PASSPHRASE` or `GATEWAY_SFTP_PASSPHRASE`.

One connection per server is opened on first use and reused across passes. Every
network step has a timeout; a connection that breaks is dropped and, for steps that
are safe to repeat, reopened once at once. A server that cannot be reached is retried
with exponential backoff, and its failures are `TransportError`s, which the pipeline
confines to that server's departments.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import posixpath
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import paramiko

from gateway.errors import TransportError
from gateway.intake.staging import CHUNK, Sniffed, copy_and_sniff
from gateway.intake.transports.base import FOLDERS, FoundFile, is_temporary, os_reason
from gateway.masking import mask_file_path

if TYPE_CHECKING:
    from gateway.config import Settings, SftpServer

log = logging.getLogger("gateway.sftp")

T = TypeVar("T")

OUTBOX_FILE_MODE = 0o640
"""Files the gateway writes: readable by the department's group (the outbox is setgid to it)."""
FIRST_BACKOFF = 5.0
PREFETCH_REQUESTS = 64
"""Read requests in flight while downloading (32 KiB each): fast, with bounded memory."""
KEEPALIVE_SECONDS = 30

_CONNECTION_ERRORS = (paramiko.SSHException, EOFError, TimeoutError, ConnectionError, paramiko.sftp.SFTPError)


class LinkRefused(OSError):
    """An inbox entry is a symbolic link: never followed (as the local mailbox's O_NOFOLLOW)."""


class UnknownHostKey(paramiko.SSHException):
    """The server's host key is not pinned in the gateway's known_hosts file."""

    def __init__(self, hostname: str, key: paramiko.PKey):
        self.hostname, self.key = hostname, key
        super().__init__(f"{hostname}: host key {key.get_name()} {fingerprint(key)} is not pinned")


class PinnedOnly(paramiko.RejectPolicy):
    """`RejectPolicy` that keeps the offered key, so the error can show its fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(hostname, key)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: `SHA256:` and the unpadded base64 of the key blob's sha256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH (and paramiko) name a server in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


def keyscan_command(host: str, port: int, known_hosts: Path, key_type: str | None = None) -> str:
    """The command that pins a server's host key (after its fingerprint was checked)."""
    kind = ""
    if key_type in ("ssh-ed25519", "ssh-rsa"):
        kind = key_type.removeprefix("ssh-")
    elif key_type and key_type.startswith("ecdsa-"):
        kind = "ecdsa"
    type_option = f"-t {kind} " if kind else ""
    port_option = "" if port == 22 else f"-p {port} "
    return f"ssh-keyscan {type_option}{port_option}{host} >> {known_hosts}"


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class SftpTransport:
    """Every department tree on one SFTP server, reached with the gateway's own account."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        username: str,
        key_file: Path,
        known_hosts: Path,
        port: int = 22,
        root: str = "/",
        passphrase: str | None = None,
        connect_timeout: float = 15.0,
        timeout: float = 60.0,
        max_backoff: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.host, self.port, self.username = host, port, username
        self.key_file, self.known_hosts = key_file, known_hosts
        self.root = root.rstrip("/") or "/"
        self._passphrase = passphrase
        self.connect_timeout, self.timeout, self.max_backoff = connect_timeout, timeout, max_backoff
        self._clock = clock
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""
        self._stopped: tuple[str, str | None] | None = None
        """A host key problem and the known_hosts contents it was found with."""

    @classmethod
    def from_settings(cls, name: str, server: SftpServer, settings: Settings) -> SftpTransport:
        from gateway.config import sftp_passphrase

        def at_home(path: Path) -> Path:
            return path if path.is_absolute() else settings.home / path

        return cls(
            name,
            host=server.host,
            port=server.port,
            username=server.username,
            key_file=at_home(server.key_file),
            known_hosts=at_home(server.known_hosts or Path("known_hosts")),
            root=server.root,
            passphrase=sftp_passphrase(name),
            connect_timeout=server.connect_timeout,
            timeout=server.timeout,
            max_backoff=server.reconnect_max_seconds,
        )

    @property
    def label(self) -> str:
        return f"sftp server {self.name} ({self.username}@{self.host}:{self.port})"

    def __repr__(self) -> str:
        return f"<SftpTransport {self.label}>"

    # -- paths ------------------------------------------------------------------

    def remote(self, department: str, folder: str, name: str | None = None) -> str:
        parts = [self.root, department, folder] + ([name] if name is not None else [])
        return posixpath.join(*parts)

    def url(self, department: str, folder: str, name: str) -> str:
        """What exchanges record as source and archive paths: unique across servers."""
        return f"sftp://{self.name}/{department}/{folder}/{name}"

    # -- the connection ---------------------------------------------------------

    def _alive(self) -> bool:
        if self._client is None or self._sftp is None:
            return False
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()

    def _drop(self) -> None:
        sftp, client = self._sftp, self._client
        self._sftp = self._client = None
        for closable in (sftp, client):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # noqa: BLE001 - closing a broken connection may fail in any way
                    pass

    def close(self) -> None:
        self._drop()

    def _known_hosts_state(self) -> str | None:
        try:
            return hashlib.sha256(self.known_hosts.read_bytes()).hexdigest()
        except OSError:
            return None

    def _stop(self, message: str) -> TransportError:
        """A host key problem: refuse this server until known_hosts is changed."""
        self._stopped = (message, self._known_hosts_state())
        log.error("%s", message)
        return TransportError(message)

    def _failed(self, message: str) -> TransportError:
        self._failures += 1
        delay = min(self.max_backoff, FIRST_BACKOFF * 2 ** (self._failures - 1))
        self._retry_at = self._clock() + delay
        self._last_error = message
        return TransportError(f"{message} (attempt {self._failures}; next attempt in {delay:.0f} s at the earliest)")

    def _load_key(self) -> paramiko.PKey:
        secret = self._passphrase.encode("utf-8") if self._passphrase else None
        variable = f"GATEWAY_SFTP_{self.name.upper().replace('-', '_')}_PASSPHRASE"
        try:
            try:
                return paramiko.PKey.from_path(self.key_file, secret)
            except TypeError as exc:
                if secret is not None and "not encrypted" in str(exc):
                    return paramiko.PKey.from_path(self.key_file, None)
                raise
        except FileNotFoundError:
            raise TransportError(f"{self.label}: the gateway's private key {self.key_file} does not exist") from None
        except TypeError as exc:  # paramiko: "Key is password-protected, but password was not provided."
            raise TransportError(
                f"{self.label}: the private key {self.key_file} is protected by a passphrase; "
                f"set {variable} (or GATEWAY_SFTP_PASSPHRASE) in the gateway's environment"
            ) from exc
        except (ValueError, paramiko.SSHException, OSError) as exc:
            raise TransportError(
                f"{self.label}: cannot load the private key {self.key_file}: wrong passphrase in {variable}, "
                f"or not an OpenSSH/PEM private key ({exc})"
            ) from exc

    def _session(self) -> paramiko.SFTPClient:
        if self._alive():
            assert self._sftp is not None
            return self._sftp
        self._drop()
        if self._stopped is not None:
            message, seen = self._stopped
            if self._known_hosts_state() == seen:
                raise TransportError(message)
            log.info("%s: %s changed; trying the server again", self.label, self.known_hosts)
            self._stopped, self._failures, self._retry_at = None, 0, 0.0
        wait = self._retry_at - self._clock()
        if wait > 0:
            raise TransportError(
                f"{self.label}: unreachable ({self._failures} failed attempt(s), last: {self._last_error}); "
                f"not retrying for another {wait:.0f} s"
            )
        self._connect()
        assert self._sftp is not None
        return self._sftp

    def _connect(self) -> None:
        pin = keyscan_command(self.host, self.port, self.known_hosts)
        entry = known_hosts_name(self.host, self.port)
        client = paramiko.SSHClient()
        # Only the pinned file: never the system's or the user's known_hosts.
        client.set_missing_host_key_policy(PinnedOnly())
        try:
            client.load_host_keys(str(self.known_hosts))
        except FileNotFoundError:
            raise self._stop(
                f"{self.label}: no pinned host keys: {self.known_hosts} does not exist. Ask the server's "
                f"administrator for its host key fingerprint (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), "
                f"run `{pin}`, and compare `ssh-keygen -lf {self.known_hosts}` with it before the next pass"
            ) from None
        except Exception as exc:  # noqa: BLE001 - a malformed file, whatever paramiko makes of it
            raise self._stop(f"{self.label}: cannot read the pinned host keys in {self.known_hosts}: {exc}") from exc
        key = self._load_key()
        timeout = self.connect_timeout
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.username,
                pkey=key,
                allow_agent=False,
                look_for_keys=False,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
            )
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            assert channel is not None
            channel.settimeout(self.timeout)
            transport = client.get_transport()
            assert transport is not None
            transport.set_keepalive(KEEPALIVE_SECONDS)
        except UnknownHostKey as exc:
            client.close()
            pin = keyscan_command(self.host, self.port, self.known_hosts, exc.key.get_name())
            raise self._stop(
                f"{self.label}: the server's host key is not pinned: it offered {exc.key.get_name()} "
                f"{fingerprint(exc.key)}, and {self.known_hosts} has no entry for {entry}. The gateway will not "
                f"connect to it. Check that fingerprint with the server's administrator "
                f"(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server), then pin it: `{pin}`"
            ) from exc
        except paramiko.BadHostKeyException as exc:
            client.close()
            pin = keyscan_command(self.host, self.port, self.known_hosts, exc.key.get_name())
            raise self._stop(
                f"{self.label}: HOST KEY CHANGED: {self.known_hosts} pins {exc.expected_key.get_name()} "
                f"{fingerprint(exc.expected_key)} for {entry}, but the server offered {exc.key.get_name()} "
                f"{fingerprint(exc.key)}. Someone may be impersonating the server, or it was reinstalled. "
                f"The gateway will not connect to it. Only once its administrator confirms the new fingerprint: "
                f"`ssh-keygen -R '{entry}' -f {self.known_hosts}` and `{pin}`"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise self._failed(
                f"{self.label}: the server refused the gateway's key {self.key_file} ({exc}); is "
                f"{self.key_file}.pub in the authorized keys of account {self.username}?"
            ) from exc
        except (OSError, EOFError, paramiko.SSHException) as exc:
            # paramiko's own thread may hold the real cause ("Error reading SSH protocol banner").
            session = client.get_transport()
            cause = (session.get_exception() if session is not None else None) or exc
            client.close()
            raise self._failed(f"{self.label}: cannot connect: {_describe(cause, self.connect_timeout)}") from exc
        self._client, self._sftp = client, sftp
        if self._failures:
            log.info("%s: reachable again after %d failed attempt(s)", self.label, self._failures)
        self._failures, self._retry_at, self._last_error = 0, 0.0, ""
        log.info("%s: connected (host key %s)", self.label, fingerprint(transport.get_remote_server_key()))

    def _run(self, what: str, operation: Callable[[paramiko.SFTPClient], T], *, repeatable: bool = True) -> T:
        """Run `operation` on the shared session. A broken connection is dropped; if it was
        an old one (the server restarted, an idle connection was cut) and the step is safe
        to repeat, it is reopened and the step tried once more.

        SFTP status errors (no such file, permission denied) come back as `OSError` for
        the caller to judge; connection failures as `TransportError`."""
        for attempt in (1, 2):
            reused = self._alive()
            sftp = self._session()
            try:
                return operation(sftp)
            except TransportError:
                raise
            except Exception as exc:
                status_error = isinstance(exc, OSError) and not isinstance(exc, (TimeoutError, ConnectionError))
                if status_error and self._alive():
                    raise  # the server answered: no such file, permission denied...
                if not (status_error or isinstance(exc, _CONNECTION_ERRORS)):
                    raise
                self._drop()
                if attempt == 2 or not reused or not repeatable:
                    raise TransportError(f"{self.label}: {what}: connection lost: {_describe(exc, self.timeout)}") from exc
                log.info("%s: connection lost (%s); reconnecting", self.label, _describe(exc, self.timeout))
        raise AssertionError("unreachable")

    # -- the mailbox contract ---------------------------------------------------

    def ensure_tree(self, department: str) -> None:
        """Department trees are made on the server by its administrator (their owners and
        modes are the security boundary); this only checks they are there."""
        for folder in FOLDERS:
            path = self.remote(department, folder)
            try:
                info = self._run(f"check {path}", lambda sftp: sftp.stat(path))
            except OSError as exc:
                raise TransportError(
                    f"{self.label}: {path} is missing or out of reach ({exc}); create the department's tree "
                    f"as docs/deploy/sftp.md shows"
                ) from exc
            if not stat.S_ISDIR(info.st_mode or 0):
                raise TransportError(f"{self.label}: {path} is not a folder")

    def list_inbox(self, department: str, *, everything: bool = False) -> list[FoundFile]:
        """Drops in the inbox; with `everything`, also temporary names (kind `temporary`)
        and folders (kind `directory`), for the arrival rules (gateway/intake/arrival.py).
        A name that is not UTF-8 comes back with surrogate escapes, as os.scandir gives it."""
        inbox = self.remote(department, "inbox")
        try:
            entries = self._run(f"list {inbox}", lambda sftp: _listdir_raw(sftp, inbox))
        except FileNotFoundError as exc:
            raise TransportError(
                f"{self.label}: no folder {inbox}: create the department's tree as docs/deploy/sftp.md shows, "
                f"or correct `root` in [sftp.{self.name}]"
            ) from exc
        except PermissionError as exc:
            raise TransportError(
                f"{self.label}: account {self.username} may not list {inbox}: it must belong to the group that "
                f"owns the inboxes (docs/deploy/sftp.md)"
            ) from exc
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot list {inbox}: {exc}") from exc
        found = []
        for entry in sorted(entries, key=lambda e: e.filename):
            name = entry.filename
            if name in (".", ".."):
                continue
            mode = entry.st_mode or 0
            if is_temporary(name):
                if not everything:
                    continue
                kind = "temporary"
            elif stat.S_ISDIR(mode):
                if not everything:
                    continue
                kind = "directory"
            elif stat.S_ISLNK(mode):
                kind = "symlink"
            elif stat.S_ISREG(mode):
                kind = "file"
            else:
                kind = "special"
            found.append(
                FoundFile(
                    department,
                    name,
                    self.url(department, "inbox", name),
                    entry.st_size or 0,
                    float(entry.st_mtime or 0),
                    kind,
                )
            )
        return found

    def read_ends(self, found: FoundFile, head: int, tail: int) -> tuple[bytes, bytes]:
        """The file's first `head` and last `tail` bytes (a PermissionError when it cannot be read)."""
        path = _raw(self.remote(found.department, "inbox", found.name))

        def read(sftp: paramiko.SFTPClient) -> tuple[bytes, bytes]:
            if not stat.S_ISREG(sftp.lstat(path).st_mode or 0):
                raise LinkRefused(errno.ELOOP, "not a regular file", found.path)
            with sftp.open(path, "rb") as handle:
                first = handle.read(head)
                size = handle.stat().st_size or 0
                handle.seek(max(0, size - tail))
                return first, handle.read(tail)

        try:
            return self._run(f"read the ends of {found.path}", read)
        except (PermissionError, FileNotFoundError, LinkRefused):
            raise
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot read {mask_file_path(found.path)}: {os_reason(exc)}") from exc

    def digest(self, found: FoundFile) -> str | None:
        """sha256 of the file's bytes as they are now; None when it is gone."""
        path = _raw(self.remote(found.department, "inbox", found.name))

        def read(sftp: paramiko.SFTPClient) -> str:
            digest = hashlib.sha256()
            with sftp.open(path, "rb") as handle:
                handle.prefetch(handle.stat().st_size, PREFETCH_REQUESTS)
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
            return digest.hexdigest()

        try:
            return self._run(f"hash {found.path}", read)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot read {mask_file_path(found.path)}: {os_reason(exc)}") from exc

    def rename_in_inbox(self, found: FoundFile, name: str) -> FoundFile:
        """Give an inbox file another name (a name that is not UTF-8 its readable one)."""
        source = _raw(self.remote(found.department, "inbox", found.name))
        target = self.remote(found.department, "inbox", name)
        try:
            self._run(f"rename {found.path}", lambda sftp: sftp.rename(source, target), repeatable=False)
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot rename {mask_file_path(found.path)}: {os_reason(exc)}") from exc
        return FoundFile(found.department, name, self.url(found.department, "inbox", name), found.size, found.mtime, found.kind)

    def remove(self, department: str, folder: str, name: str) -> None:
        path = self.remote(department, folder, name)
        try:
            self._run(f"remove {path}", lambda sftp: sftp.remove(path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot remove {mask_file_path(path)}: {os_reason(exc)}") from exc

    def stage(self, found: FoundFile, target: Path) -> Sniffed:
        path = self.remote(found.department, "inbox", found.name)
        modes: list[int] = []

        def download(sftp: paramiko.SFTPClient) -> Sniffed:
            listed = sftp.lstat(path)
            modes.append(listed.st_mode or 0)
            if stat.S_ISLNK(listed.st_mode or 0):
                raise LinkRefused(errno.ELOOP, "a symbolic link is never followed", found.path)
            if not stat.S_ISREG(listed.st_mode or 0):
                raise TransportError(f"{mask_file_path(found.path)} is not a regular file")
            with sftp.open(path, "rb") as handle:
                # SFTP cannot refuse to follow a link at open time; a link swapped in since the
                # lstat above shows as another file (or none) here.
                opened = handle.stat()
                if not stat.S_ISREG(opened.st_mode or 0) or (opened.st_size, opened.st_mtime) != (
                    listed.st_size,
                    listed.st_mtime,
                ):
                    raise TransportError(f"{mask_file_path(found.path)} changed while it was opened; taking it on a later pass")
                handle.prefetch(opened.st_size, PREFETCH_REQUESTS)
                return copy_and_sniff(handle, target)

        try:
            return self._run(f"download {path}", download)
        except LinkRefused:
            raise
        except PermissionError as exc:
            shown = f"mode {stat.S_IMODE(modes[0]):04o}" if modes else "its mode"
            raise TransportError(
                f"{found.path}: account {self.username} may not read it ({shown}). The department's client "
                f"uploaded it without group read permission; it stays in the inbox. Ask the department to "
                f"upload it again from a file that is readable by its group (for example chmod 644 before "
                f"`put`), or have the server's administrator `chmod g+r` it"
            ) from exc
        except FileNotFoundError as exc:
            raise TransportError(f"{mask_file_path(found.path)} was removed before it could be read") from exc
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot read {mask_file_path(path)}: {os_reason(exc)}") from exc

    def fetch(self, department: str, folder: str, name: str, target: Path) -> Sniffed:
        path = self.remote(department, folder, name)

        def download(sftp: paramiko.SFTPClient) -> Sniffed:
            if not stat.S_ISREG(sftp.lstat(path).st_mode or 0):  # a link is never followed
                raise TransportError(f"{mask_file_path(path)} is not a regular file")
            with sftp.open(path, "rb") as handle:
                return copy_and_sniff(handle, target)

        try:
            return self._run(f"download {path}", download)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot read {mask_file_path(path)}: {os_reason(exc)}") from exc

    def still_there(self, found: FoundFile) -> bool:
        path = self.remote(found.department, "inbox", found.name)
        try:
            info = self._run(f"check {path}", lambda sftp: sftp.lstat(path))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot check {mask_file_path(path)}: {os_reason(exc)}") from exc
        return (info.st_size, float(info.st_mtime or 0)) == (found.size, found.mtime)

    def archive(self, found: FoundFile, folder: str, name: str) -> str:
        source = self.remote(found.department, "inbox", found.name)
        target = self.remote(found.department, folder, name)
        try:
            # Plain SFTP rename never replaces an existing file; it moves a link itself,
            # never its target. Not repeated on a lost connection: it may have happened.
            self._run(f"move {source} to {target}", lambda sftp: sftp.rename(source, target), repeatable=False)
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot move {mask_file_path(source)} to {mask_file_path(target)}: {os_reason(exc)}") from exc
        return self.url(found.department, folder, name)

    def put(self, department: str, folder: str, name: str, source: Path) -> None:
        target = self.remote(department, folder, name)
        partial = target + ".part"
        size = source.stat().st_size

        def upload(sftp: paramiko.SFTPClient) -> None:
            with open(source, "rb") as local, sftp.open(partial, "wb") as remote:
                remote.set_pipelined(True)
                while chunk := local.read(CHUNK):
                    remote.write(chunk)
                remote.chmod(OUTBOX_FILE_MODE)
            written = sftp.stat(partial).st_size
            if written != size:
                raise TransportError(f"{self.label}: {mask_file_path(partial)} holds {written} bytes, not {size}")
            _replace(sftp, partial, target)

        try:
            self._run(f"write {target}", upload)
        except PermissionError as exc:
            raise TransportError(
                f"{self.label}: account {self.username} may not write {partial}: the folder must be owned "
                f"by it (docs/deploy/sftp.md)"
            ) from exc
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot write {mask_file_path(target)}: {os_reason(exc)}") from exc

    def exists(self, department: str, folder: str, name: str) -> bool:
        path = self.remote(department, folder, name)
        try:
            self._run(f"check {path}", lambda sftp: sftp.lstat(path))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise TransportError(f"{self.label}: cannot check {mask_file_path(path)}: {os_reason(exc)}") from exc
        return True


def _raw(path: str) -> str | bytes:
    """A path paramiko can send: a name that is not UTF-8 goes as its original bytes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape")
    return path


def _listdir_raw(sftp: paramiko.SFTPClient, path: str) -> list[paramiko.SFTPAttributes]:
    """`listdir_attr`, except that a name which is not UTF-8 (a GBK name from a Windows
    client) comes back with surrogate escapes instead of failing the whole listing."""
    from paramiko.sftp import CMD_CLOSE, CMD_HANDLE, CMD_NAME, CMD_OPENDIR, CMD_READDIR, SFTPError

    t, msg = sftp._request(CMD_OPENDIR, sftp._adjust_cwd(path))  # noqa: SLF001 - no public raw-name listing
    if t != CMD_HANDLE:
        raise SFTPError("Expected handle")
    handle = msg.get_binary()
    entries = []
    try:
        while True:
            try:
                t, msg = sftp._request(CMD_READDIR, handle)  # noqa: SLF001
            except EOFError:
                break
            if t != CMD_NAME:
                raise SFTPError("Expected name response")
            for _ in range(msg.get_int()):
                filename = msg.get_string().decode("utf-8", "surrogateescape")
                longname = msg.get_string().decode("utf-8", "replace")
                entries.append(paramiko.SFTPAttributes._from_msg(msg, filename, longname))  # noqa: SLF001
    finally:
        sftp._request(CMD_CLOSE, handle)  # noqa: SLF001
    return entries


def _replace(sftp: paramiko.SFTPClient, partial: str, target: str) -> None:
    """Rename over an existing file in one step (OpenSSH's posix-rename extension)."""
    try:
        sftp.posix_rename(partial, target)
    except OSError as exc:
        if exc.errno is not None:
            raise
        # The server lacks the extension: remove, then rename (a short window without the file).
        try:
            sftp.remove(target)
        except FileNotFoundError:
            pass
        sftp.rename(partial, target)


def sftp_transports(settings: Settings) -> dict[str, SftpTransport]:
    """department -> its server's transport, for every `[sftp.NAME]` table in gateway.toml."""
    mapping: dict[str, SftpTransport] = {}
    for name, server in settings.sftp.items():
        transport = SftpTransport.from_settings(name, server, settings)
        for department in server.departments:
            mapping[department] = transport
    return mapping


# -- pinning a host key (for a `gateway sftp pin` command) ------------------------


def fetch_host_key(host: str, port: int = 22, timeout: float = 15.0) -> paramiko.PKey:
    """The host key a server offers (nothing is trusted or sent: no authentication)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise TransportError(f"cannot reach {host}:{port}: {exc}") from exc
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise TransportError(f"{host}:{port} did not complete an SSH handshake: {exc}") from exc
    finally:
        transport.close()
        sock.close()
    return key


def pin_host_key(known_hosts: Path, host: str, port: int, expected: str, timeout: float = 15.0) -> str:
    """Add the server's host key to `known_hosts` if its fingerprint is `expected` (as the
    server's administrator read it out, `SHA256:...`); return the line written.

    A key already pinned for that server is never replaced here: remove it first
    (`ssh-keygen -R`), deliberately."""
    key = fetch_host_key(host, port, timeout)
    offered = fingerprint(key)
    wanted = expected.strip()
    if not wanted.startswith("SHA256:"):
        wanted = "SHA256:" + wanted
    if offered != wanted.rstrip("="):
        raise TransportError(
            f"{host}:{port} offered {key.get_name()} {offered}, not the expected {wanted}: nothing was pinned"
        )
    entry = known_hosts_name(host, port)
    if known_hosts.exists():
        pinned = paramiko.HostKeys(str(known_hosts)).lookup(entry)
        if pinned is not None:
            if any(existing == key for existing in pinned.values()):
                return f"{entry} {key.get_name()} {key.get_base64()}"
            raise TransportError(
                f"{known_hosts} already pins another key for {entry}; remove it with "
                f"`ssh-keygen -R '{entry}' -f {known_hosts}` if the change is confirmed"
            )
    line = f"{entry} {key.get_name()} {key.get_base64()}"
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    with open(known_hosts, "a", encoding="ascii") as handle:
        if known_hosts.stat().st_size and not known_hosts.read_bytes().endswith(b"\n"):
            handle.write("\n")
        handle.write(line + "\n")
    return line


__all__ = [
    "PinnedOnly",
    "SftpTransport",
    "UnknownHostKey",
    "fetch_host_key",
    "fingerprint",
    "pin_host_key",
    "sftp_transports",
]
