"""`gateway restore`: a new gateway home rebuilt from a backup (恢复), checked before it is used.

The backup is decrypted as a stream (the officer's keyring holds the backup key's secret
part) and unpacked into a hidden folder beside the new home; the manifest's signature and
every member's size and sha256 are checked there, and only when all of it holds is the
database restored (SQLite: the file; PostgreSQL: `pg_restore` into an empty database, in
one transaction) and the folder renamed to the new home. A damaged or tampered backup
leaves the new home and the database as they were.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import delete, inspect, text, update
from sqlmodel import col
from sqlalchemy.engine import make_url

from gateway.store.console_audit import audit_database_url
from gateway.config import CONFIG_FILE, load_settings
from gateway.exchange.backup import (
    HOME_PREFIX,
    MAILBOX_PREFIX,
    MANIFEST,
    PGDUMP_MEMBER,
    SIGNATURE,
    SQLITE_MEMBER,
    AUDIT_MEMBER,
    BackupProblem,
    ManifestDocument,
    libpq_url,
    read_manifest,
    sqlite_path,
)
from gateway.intake.transports import LocalMailbox
from gateway.masking import mask_file_path
from gateway.receipts.signing import gpg_binary, read_history
from gateway.receipts.verify import Verifier
from gateway.store import make_engine
from gateway.store.migrate import alembic_config, head_revision
from gateway.store.models import FileClaim, JobLease, JobState

log = logging.getLogger("gateway")

PASSPHRASE_VARIABLE = "GATEWAY_BACKUP_KEY_PASSPHRASE"
SHOWN = 5


@dataclass
class RestoreResult:
    home: Path
    manifest: ManifestDocument
    database_url: str
    signed_by: str
    notes: list[str] = field(default_factory=list)


def _refuse_non_empty_home(home: Path) -> None:
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise BackupProblem(f"{home} is not empty; restore into a new folder (a restore never mixes with an existing home)")


def _refuse_non_empty_database(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            count = connection.execute(
                text(
                    "SELECT COUNT(*) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            ).scalar()
    finally:
        engine.dispose()
    if count:
        shown = make_url(url).render_as_string(hide_password=True)
        raise BackupProblem(f"the database {shown} is not empty ({count} tables); create a new, empty one to restore into")


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return False
    return name in (MANIFEST, SIGNATURE, SQLITE_MEMBER, AUDIT_MEMBER, PGDUMP_MEMBER) or name.startswith((HOME_PREFIX, MAILBOX_PREFIX))


def _decrypting(source: Path, gnupghome: Path | None) -> tuple[subprocess.Popen[bytes], int | None]:
    """gpg --decrypt SOURCE as a stream; the backup key's passphrase, when the officer's
    key has one and gpg-agent cannot ask, comes from GATEWAY_BACKUP_KEY_PASSPHRASE
    through a pipe (never a command line or a file)."""
    command = [gpg_binary(), "--batch", "--no-tty", "--status-fd", "2"]
    if gnupghome is not None:
        command += ["--homedir", str(gnupghome)]
    passphrase = os.environ.get(PASSPHRASE_VARIABLE)
    read_end: int | None = None
    if passphrase:
        read_end, write_end = os.pipe()
        os.write(write_end, passphrase.encode("utf-8") + b"\n")
        os.close(write_end)
        command += ["--pinentry-mode", "loopback", "--passphrase-fd", str(read_end)]
    command += ["--decrypt", str(source)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(read_end,) if read_end is not None else ()
    )
    return process, read_end


def _unpack(stream: IO[bytes], scratch: Path) -> tuple[dict[str, tuple[int, str]], dict[str, bytes]]:
    """Every member written under `scratch`, with its size and sha256; the manifest and
    its signature kept in memory. Only regular files with names a backup writes."""
    found: dict[str, tuple[int, str]] = {}
    documents: dict[str, bytes] = {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not member.isfile() or not _safe_name(member.name):
                raise BackupProblem(f"the backup holds {mask_file_path(member.name)!r}, which no gateway backup writes: refused")
            if member.name in found or member.name in documents:
                raise BackupProblem(f"the backup holds {mask_file_path(member.name)} twice: refused")
            handle = tar.extractfile(member)
            assert handle is not None
            if member.name in (MANIFEST, SIGNATURE):
                documents[member.name] = handle.read()
                continue
            target = scratch / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            digest, size = hashlib.sha256(), 0
            with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            os.chmod(target, member.mode & 0o777 or 0o600)
            found[member.name] = (size, digest.hexdigest())
    return found, documents


def _check_members(manifest: ManifestDocument, found: dict[str, tuple[int, str]]) -> None:
    listed = {entry["path"]: (entry["size"], entry["sha256"]) for entry in manifest["members"]}
    problems = []
    for name, (size, sha) in sorted(listed.items()):
        if name not in found:
            problems.append(f"{mask_file_path(name)} is missing")
        elif found[name] != (size, sha):
            problems.append(f"{mask_file_path(name)} does not match its sha256 in the manifest")
    problems += [f"{mask_file_path(name)} is not in the manifest" for name in sorted(set(found) - set(listed))]
    if problems:
        more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise BackupProblem(
            "备份已损坏或被篡改,未恢复任何内容 / the backup is damaged or was altered; nothing was restored: "
            + "; ".join(problems[:SHOWN]) + more
        )


def _check_signature(manifest_body: bytes, signature: bytes, keys_dir: Path) -> str:
    try:
        history = read_history(keys_dir)
    except Exception as exc:  # noqa: BLE001 - any unreadable history means: not verifiable
        raise BackupProblem(f"cannot read the key history in {keys_dir}: {exc}") from exc
    with Verifier(history, keys_dir) as verifier:
        verdict = verifier.verify(manifest_body, signature)
    if not verdict.genuine or verdict.fingerprint is None:
        raise BackupProblem(
            "备份清单的签名无效,未恢复任何内容 / the backup's manifest is not signed by the gateway's key; nothing was "
            f"restored: {'; '.join(verdict.problems)}"
        )
    return verdict.fingerprint


def _check_revision(revision: str | None, version: str) -> str | None:
    """A note when the restored schema is older than this gateway's; refused when newer."""
    if revision is None:
        return None
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError as exc:
        raise BackupProblem(
            f"the backup's database is at revision {revision}, which this gateway does not know: it was made by gateway "
            f"{version}; restore it with that version (or newer)"
        ) from exc
    if revision != head_revision():
        return (
            f"数据库版本 {revision} 早于本程序的 {head_revision()}:请运行 gateway db upgrade / the database is at revision "
            f"{revision}, older than this gateway's {head_revision()}: run `gateway db upgrade`"
        )
    return None


def _pg_restore(url: str, dump: Path) -> None:
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        raise BackupProblem("pg_restore is not installed: apt-get install postgresql-client")
    address, env = libpq_url(url)
    result = subprocess.run(
        [pg_restore, "--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges", "--dbname", address, str(dump)],
        capture_output=True, text=True, env={**os.environ, **env}, check=False,
    )
    if result.returncode != 0:
        raise BackupProblem(f"pg_restore failed (exit {result.returncode}), nothing was restored: {result.stderr.strip()[-400:]}")


def set_top_level(toml_text: str, key: str, value: str) -> str:
    """gateway.toml with top-level `key` set to the TOML string `value` (comments kept)."""
    line = f"{key} = {json.dumps(value, ensure_ascii=False)}"
    pattern = re.compile(rf"^{re.escape(key)}\s*=.*$", re.MULTILINE)
    first_table = re.search(r"^\[", toml_text, re.MULTILINE)
    limit = first_table.start() if first_table else len(toml_text)
    match = pattern.search(toml_text, 0, limit)
    if match:
        return toml_text[: match.start()] + line + toml_text[match.end():]
    return line + "\n" + toml_text


def _release_claims(url: str) -> None:
    """Forget the old home's claims on inbox files (认领) and its job leases (租约): they belong
    to processes of the backed-up gateway, which never run on the restored database; kept,
    each claimed file would wait `claim_timeout_seconds` for a takeover, each leased job
    `job_lease_seconds`. The queue is rebuilt by polling."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            tables = inspect(connection)
            if tables.has_table("fileclaim"):  # an older schema may have none
                connection.execute(delete(FileClaim))
            if tables.has_table("joblease"):
                # The old home's job leases and "running" claims: their holders are processes of
                # the backed-up gateway. Kept, a job would wait for a lease that no process renews
                # or releases, or be skipped as "already run" in its slot; cleared, the restored
                # home's scheduler can run every job at once. Each job's last result stays.
                connection.execute(delete(JobLease))
                connection.execute(
                    update(JobState).where(col(JobState.last_status) == "running")
                    .values(last_status="error", last_error="interrupted: the backup was taken while it ran (中断:备份时正在运行)")
                )
                connection.execute(update(JobState).values(last_started_at=None, last_holder=None, next_run_at=None))
    finally:
        engine.dispose()


def _complete_tree(home: Path) -> None:
    """The empty folders a backup (files only) does not carry: every department's mailbox
    folders and the staging folder, as `gateway init` makes them."""
    settings = load_settings(home)
    settings.staging_dir.mkdir(exist_ok=True)
    mailbox = LocalMailbox(settings.mailbox_root)
    for department in settings.departments:
        mailbox.ensure_tree(department)


def restore_backup(
    source: Path,
    home: Path,
    *,
    database_url: str | None = None,
    gnupghome: Path | None = None,
    keys: Path | None = None,
) -> RestoreResult:
    """Rebuild a home at `home` (new or empty) from the backup `source`."""
    home = home.resolve()
    _refuse_non_empty_home(home)
    if not source.is_file():
        raise BackupProblem(f"no backup file at {source}")
    if database_url and not database_url.startswith("sqlite"):
        _refuse_non_empty_database(database_url)
    home.parent.mkdir(parents=True, exist_ok=True)
    scratch = home.parent / f".{home.name}.restoring-{uuid.uuid4().hex[:8]}"
    scratch.mkdir(mode=0o700)
    notes: list[str] = []
    try:
        if tarfile.is_tarfile(source):
            notes.append("这是未加密的备份 / this backup was not encrypted (--plain)")
            with open(source, "rb") as stream:
                found, documents = _unpack(stream, scratch)
        else:
            process, passphrase_fd = _decrypting(source, gnupghome)
            try:
                assert process.stdout is not None
                try:
                    found, documents = _unpack(process.stdout, scratch)
                except tarfile.TarError as exc:
                    found, documents = {}, {}
                    unpack_error: tarfile.TarError | None = exc
                else:
                    unpack_error = None
                process.stdout.read()
                status = process.stderr.read().decode(errors="replace") if process.stderr else ""
                code = process.wait()
            finally:
                if passphrase_fd is not None:
                    os.close(passphrase_fd)
            if code != 0 or "DECRYPTION_OKAY" not in status:
                said = [line for line in status.splitlines() if not line.startswith("[GNUPG:]")]
                raise BackupProblem(
                    "无法解密备份,未恢复任何内容 / cannot decrypt the backup; nothing was restored (the backup key's secret "
                    "part must be in the officer's keyring: --gnupghome DIR or GNUPGHOME; a passphrase from "
                    f"{PASSPHRASE_VARIABLE}): {' '.join(said)[-400:]}"
                )
            if unpack_error is not None:
                raise BackupProblem(f"the decrypted backup is not a gateway backup ({unpack_error}); nothing was restored")
        if MANIFEST not in documents or SIGNATURE not in documents:
            raise BackupProblem(f"the backup has no {MANIFEST} and {SIGNATURE}: it is incomplete or not a gateway backup")
        manifest = read_manifest(documents[MANIFEST])
        keys_dir = keys or scratch / HOME_PREFIX / "keys"
        signed_by = _check_signature(documents[MANIFEST], documents[SIGNATURE], keys_dir)
        _check_members(manifest, found)
        note = _check_revision(manifest["database"]["revision"], manifest["gateway_version"])
        if note:
            notes.append(note)

        # Everything checked: now the database, then the home.
        backend = manifest["database"]["backend"]
        restored_home = scratch / HOME_PREFIX
        config = restored_home / CONFIG_FILE
        config_text = config.read_text(encoding="utf-8")
        if backend == "postgresql":
            if not database_url or database_url.startswith("sqlite"):
                raise BackupProblem(
                    "the backup holds a PostgreSQL database: give an empty one to restore into with "
                    "--database-url postgresql://USER@HOST/NAME; nothing was restored"
                )
            _pg_restore(database_url, scratch / PGDUMP_MEMBER)
            recorded, _ = libpq_url(database_url)  # the password, if any, stays out of gateway.toml
            config_text = set_top_level(config_text, "database_url", recorded)
            if make_url(database_url).password:
                notes.append("数据库密码未写入 gateway.toml,请用 PGPASSWORD 或 ~/.pgpass / the database password was not "
                             "written to gateway.toml: give it through PGPASSWORD or ~/.pgpass")
            restored_url = recorded
        else:
            if database_url and not database_url.startswith("sqlite"):
                raise BackupProblem("the backup holds a SQLite database; restore it without --database-url (or a sqlite:/// one)")
            target = sqlite_path(database_url) if database_url else home / "gateway.db"
            if target.exists():
                raise BackupProblem(f"{target} exists; restore into a new database file")
            config_text = set_top_level(config_text, "database_url", database_url or "")
            restored_url = database_url or f"sqlite:///{target}"
        if manifest["mailbox"] == "separate":
            shutil.move(str(scratch / MAILBOX_PREFIX), str(restored_home / "mailbox"))
            config_text = set_top_level(config_text, "mailbox", "mailbox")
            notes.append("邮箱已恢复到新主目录的 mailbox/ / the mailbox (outside the old home) is now NEW/mailbox")
        config.write_text(config_text, encoding="utf-8")
        if (restored_home / "gnupg").is_dir():
            os.chmod(restored_home / "gnupg", 0o700)
        if home.exists():
            home.rmdir()  # empty, checked above
        os.rename(restored_home, home)
        if backend == "sqlite":
            target = sqlite_path(restored_url)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(scratch / SQLITE_MEMBER), str(target))
            if (scratch / AUDIT_MEMBER).exists():  # the console's audit log, beside it (gateway/store/console_audit.py)
                shutil.move(str(scratch / AUDIT_MEMBER), str(sqlite_path(audit_database_url(restored_url))))
        _release_claims(restored_url)
        _complete_tree(home)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("restored %d files and the %s database into %s", len(found), backend, home)
    return RestoreResult(home, manifest, restored_url, signed_by, notes)
