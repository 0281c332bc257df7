"""`gateway doctor` (体检): check a gateway home and say how to fix each finding.

Each check gives findings of two levels: an error (错误) stops the gateway or leaves it
unsafe to run (a private keyring others can read, a signing key it cannot use, a database
it cannot reach or that is not at the schema this gateway knows, an SFTP server whose host
key is not pinned, a disk nearly full, a clock behind the ledger); a warning (警告) is
worth fixing but the gateway runs (a server not answering now, a mailbox folder others can
read, a key with no passphrase). `gateway doctor` exits 1 on an error, 0 otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from gateway.config import Settings
from gateway.errors import GatewayError, SigningError, TransportError
from gateway.intake.transports.sftp import fetch_host_key, fingerprint, keyscan_command, known_hosts_name
from gateway.receipts.signing import Signer
from gateway.store import make_engine
from gateway.store.migrate import current_revision, head_revision
from gateway.store.models import Checkpoint

ERROR, WARNING = "error", "warning"
MIN_FREE_BYTES = 1 << 30  # below 1 GiB free: a month's drops and their archive may not fit
STOP_FREE_BYTES = 100 << 20  # below 100 MiB: SQLite and the staging copies fail mid-pass
CLOCK_TOLERANCE = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Finding:
    """One thing found wrong: its check, level, what (Chinese first) and how to fix it."""

    check: str
    level: str
    what: str
    fix: str

    def line(self) -> str:
        label = "错误 ERROR" if self.level == ERROR else "警告 WARNING"
        return f"{label} [{self.check}] {self.what}\n    修复 Fix: {self.fix}"


@dataclass(frozen=True)
class Report:
    findings: list[Finding]
    passed: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing stops the gateway (warnings may remain)."""
        return not any(f.level == ERROR for f in self.findings)


Check = Callable[[Settings], Iterator[Finding]]


def examine(settings: Settings, *, min_free_bytes: int = MIN_FREE_BYTES, now: dt.datetime | None = None) -> Report:
    """Run every check on this home."""
    checks: list[tuple[str, Check]] = [
        ("permissions 权限", permissions),
        ("signing key 签名密钥", signing_key),
        ("database 数据库", database),
        ("sftp 服务器", sftp_servers),
        ("disk 磁盘空间", lambda s: disk_space(s, min_free_bytes)),
        ("clock 时钟", lambda s: clock_skew(s, now)),
    ]
    findings: list[Finding] = []
    passed: list[str] = []
    for name, check in checks:
        found = list(check(settings))
        findings += found
        if not found:
            passed.append(name)
    return Report(findings, passed)


# -- permissions -------------------------------------------------------------------------------


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return None


def permissions(settings: Settings) -> Iterator[Finding]:
    gnupg = settings.gnupg_dir
    if _mode(gnupg) is None:
        yield Finding("permissions", ERROR, f"私钥环目录 {gnupg} 不存在 / the private keyring folder {gnupg} is missing",
                      f"restore it from a backup, or run `gateway init --home {settings.home}` for a new key")
    else:
        # The public keyring (pubring.kbx, which GnuPG makes 644) may be read; nothing else.
        exposed = [
            p for p in [gnupg, *sorted(gnupg.rglob("*"))]
            if not p.name.startswith("pubring.kbx") and not p.is_symlink() and not p.is_socket() and (_mode(p) or 0) & 0o077
        ]
        if exposed:
            shown = ", ".join(str(p.relative_to(settings.home)) for p in exposed[:3]) + (" …" if len(exposed) > 3 else "")
            yield Finding(
                "permissions", ERROR,
                f"私钥环可被其他用户读取或写入:{shown} / the private keyring is open to the group or others: {shown}",
                f"chmod -R go-rwx {gnupg}  (only the gateway's own user may read its private key)",
            )
    keys = settings.keys_dir
    keys_mode = _mode(keys)
    if keys_mode is not None and keys_mode & 0o022:
        yield Finding(
            "permissions", ERROR,
            f"密钥目录 {keys} 可被其他用户写入(可登记假冒的部门密钥)/ {keys} is writable by the group or others: "
            "anyone could register a department key",
            f"chmod go-w {keys}",
        )
    root = settings.mailbox_root
    if _mode(root) is None:
        yield Finding("permissions", ERROR, f"邮箱目录 {root} 不存在 / the mailbox folder {root} is missing",
                      f"run `gateway init --home {settings.home}` (it makes each department's folders)")
        return
    on_sftp = {d for server in settings.sftp.values() for d in server.departments}  # their modes are the server's
    readable: list[Path] = []
    writable: list[Path] = []
    root_closed = not (_mode(root) or 0) & 0o007  # others cannot pass the root: nothing below is theirs
    for department in settings.departments:
        if department in on_sftp:
            continue
        for folder in ("inbox", "outbox", "processed", "rejected"):
            path = root / department / folder
            mode = _mode(path)
            if mode is None:
                yield Finding("permissions", ERROR, f"{path} 不存在 / {path} is missing",
                              f"run `gateway init --home {settings.home}` to make it")
            elif not root_closed and mode & 0o002:
                writable.append(path)
            elif not root_closed and folder != "inbox" and mode & 0o004:
                readable.append(path)
    if writable:
        yield Finding(
            "permissions", WARNING,
            f"{len(writable)} 个邮箱文件夹任何用户都可写入,如 {writable[0]} / {len(writable)} mailbox folder(s) are writable by "
            f"every user of this machine, such as {writable[0]}",
            f"chmod o-w {' '.join(str(p) for p in writable[:4])}{' …' if len(writable) > 4 else ''}  "
            "(give each department's upload account its group instead)",
        )
    if readable:
        yield Finding(
            "permissions", WARNING,
            f"{len(readable)} 个邮箱文件夹任何用户都可读取(内含公民记录),如 {readable[0]} / {len(readable)} mailbox folder(s) "
            f"hold citizens' records and are readable by every user of this machine, such as {readable[0]}",
            f"chmod o-rwx {root}  (the departments' upload accounts reach their own folders through their groups)",
        )


# -- the signing key ---------------------------------------------------------------------------


def signing_key(settings: Settings) -> Iterator[Finding]:
    if _mode(settings.gnupg_dir) is None:
        return  # said by `permissions`
    signer = Signer(settings.gnupg_dir, settings.keys_dir, settings.passphrase())
    try:
        signer.sign(b"gateway doctor")
    except (SigningError, GatewayError) as exc:
        missing = settings.passphrase() is None
        yield Finding(
            "signing key", ERROR,
            ("签名密钥无法使用:未设置口令 GATEWAY_KEY_PASSPHRASE / the signing key cannot be used: GATEWAY_KEY_PASSPHRASE is not set"
             if missing else f"签名密钥无法使用 / the signing key cannot be used: {exc}"),
            "set GATEWAY_KEY_PASSPHRASE to the key's passphrase (as a service: in the EnvironmentFile, mode 600, "
            "see docs/operations.md)" if missing else "check GATEWAY_KEY_PASSPHRASE and the keyring in HOME/gnupg",
        )
        return
    finally:
        signer.close()
    if settings.passphrase() is None:
        yield Finding(
            "signing key", WARNING,
            "签名密钥没有口令:复制 gnupg/ 的人即可签发回执 / the signing key has no passphrase: whoever copies gnupg/ can sign receipts",
            "for a new key, set GATEWAY_KEY_PASSPHRASE before `gateway keys rotate`",
        )


# -- the database ------------------------------------------------------------------------------


def database(settings: Settings) -> Iterator[Finding]:
    from sqlalchemy.engine import make_url

    shown = make_url(settings.db_url).render_as_string(hide_password=True)
    if settings.db_url.startswith("sqlite:///") and not Path(settings.db_url.removeprefix("sqlite:///")).exists():
        yield Finding("database", ERROR, f"数据库文件不存在:{shown} / the database file is missing: {shown}",
                      f"restore it from a backup, or `gateway db upgrade --home {settings.home}` for an empty one")
        return
    engine = make_engine(settings.db_url, readonly=True)
    try:
        revision = current_revision(engine)
    except Exception as exc:  # noqa: BLE001 - any driver failure is this finding
        yield Finding("database", ERROR, f"无法连接数据库 {shown} / the database {shown} cannot be reached: {type(exc).__name__}",
                      "start the database server, or correct database_url / GATEWAY_DATABASE_URL")
        return
    finally:
        engine.dispose()
    head = head_revision()
    if revision != head:
        yield Finding(
            "database", ERROR,
            f"数据库结构版本为 {revision or '(空)'},本版本网关需要 {head} / the schema is at {revision or '(empty)'}, "
            f"this gateway needs {head}",
            f"back it up, then `gateway db upgrade --home {settings.home}` (docs/operations.md, \"Upgrading\")",
        )


# -- SFTP servers ------------------------------------------------------------------------------


def sftp_servers(settings: Settings, timeout: float = 5.0) -> Iterator[Finding]:
    import paramiko

    for name, server in settings.sftp.items():
        known = server.known_hosts or Path("known_hosts")
        known = known if known.is_absolute() else settings.home / known
        entry = known_hosts_name(server.host, server.port)
        pinned = paramiko.HostKeys(str(known)).lookup(entry) if known.exists() else None
        if not pinned:
            yield Finding(
                "sftp", ERROR,
                f"SFTP 服务器 {name}({entry})的主机密钥未登记在 {known} / the host key of sftp server {name} ({entry}) "
                f"is not pinned in {known}: the gateway never connects to it",
                f"read its fingerprint with the server's administrator, then `gateway sftp pin {name} SHA256:...` "
                f"(or {keyscan_command(server.host, server.port, known)} after checking it)",
            )
        try:
            offered = fetch_host_key(server.host, server.port, min(timeout, server.connect_timeout))
        except (TransportError, OSError, socket.timeout) as exc:
            yield Finding(
                "sftp", WARNING,
                f"SFTP 服务器 {name}({entry})现在无法连接 / sftp server {name} ({entry}) cannot be reached now: {exc}",
                "check the host and port in gateway.toml, the network and the server; its departments' files wait meanwhile",
            )
            continue
        if pinned and not any(key == offered for key in pinned.values()):
            yield Finding(
                "sftp", ERROR,
                f"SFTP 服务器 {name} 提供的主机密钥 {fingerprint(offered)} 与登记的不同 / sftp server {name} offers host key "
                f"{fingerprint(offered)}, not the one pinned in {known}",
                "confirm the change with the server's administrator before replacing the pinned key (`ssh-keygen -R`)",
            )


# -- disk space and the clock ------------------------------------------------------------------


def disk_space(settings: Settings, min_free_bytes: int = MIN_FREE_BYTES) -> Iterator[Finding]:
    seen: set[int] = set()
    for label, path in (("home", settings.home), ("mailbox", settings.mailbox_root)):
        if not path.exists():
            continue
        device = path.stat().st_dev
        if device in seen:
            continue
        seen.add(device)
        free = shutil.disk_usage(path).free
        if free >= min_free_bytes:
            continue
        level = ERROR if free < min(STOP_FREE_BYTES, min_free_bytes) else WARNING
        yield Finding(
            "disk", level,
            f"{path}({label})所在磁盘仅剩 {free / 2**20:.0f} MiB / the disk of {path} ({label}) has {free / 2**20:.0f} MiB free "
            f"(threshold {min_free_bytes / 2**20:.0f} MiB)",
            "free space (old backups, logs), or move the mailbox to a larger disk; "
            "`gateway retention run` removes what its rules allow",
        )


def clock_skew(settings: Settings, now: dt.datetime | None = None) -> Iterator[Finding]:
    """The machine's clock (not business time: checkpoints carry the machine's) against the
    newest checkpoint: behind it, the next checkpoint would seem older than the last."""
    now = now or dt.datetime.now(dt.UTC)
    engine = make_engine(settings.db_url, readonly=True)
    try:
        with Session(engine) as session:
            newest = session.exec(select(Checkpoint).order_by(col(Checkpoint.tree_size).desc()).limit(1)).first()
    except Exception:  # noqa: BLE001 - said by `database`
        return
    finally:
        engine.dispose()
    if newest is None:
        return
    stamp = dt.datetime.fromisoformat(str(json.loads(newest.body)["time"]))
    if stamp - now > CLOCK_TOLERANCE:
        yield Finding(
            "clock", ERROR,
            f"本机时钟({now:%Y-%m-%d %H:%M:%S} UTC)早于账本最新检查点的时间({stamp:%Y-%m-%d %H:%M:%S} UTC)"
            f" / this machine's clock is behind the ledger's newest checkpoint ({stamp.isoformat()})",
            "set the clock right (timedatectl set-ntp true; chronyc tracking), then run the gateway again",
        )


def home_exists(settings: Settings) -> bool:
    return (settings.home / "gateway.toml").exists() and os.path.isdir(settings.home)
