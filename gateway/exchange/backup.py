"""`gateway backup`: one consistent copy of a gateway home (备份), signed and encrypted.

The copy is a tar archive:

* `database/gateway.sqlite3` (SQLite's online backup API) or `database/gateway.pgdump`
  (`pg_dump --format=custom`), taken first;
* `home/...`: every file of the home the database refers to or the gateway needs to go on
  (gateway.toml, agreements, the private keyring `gnupg/`, `keys/` with the key history,
  handovers and departments' keys, `ledger/checkpoints/`, the whole local mailbox with
  the archived originals the receipts sign, the held copies in `staging/`), walked after
  the database copy; `mailbox/...` when the mailbox lies outside the home;
* `MANIFEST.json` (last): every member's path, size and sha256, the gateway version, the
  database backend and migration revision, the ledger's latest checkpoint; and
  `MANIFEST.json.asc`, its detached signature by the gateway's signing key.

The whole is encrypted with GnuPG to the office's backup key, streamed (the plain tar
never lies on disk), unless `plain`.

Why the database first: the gateway commits an exchange (its records and receipt), then
writes the outbox, moves the source to processed/ (or rejected/) and only then records
`archived_path` in a second commit (lifecycle.py, `_finish`). So every archived path in
the database copy names a file that was already in place when the files were walked
after it; an exchange committed but not yet moved in the copy has its bytes in the inbox,
in `staging/held-ID.src`, or (moved meanwhile) in processed/, and `gateway verify-home`
looks for them there. The other way round, a file the copy does not know may have moved
from the inbox to processed/ while the files were walked (its exchange committed after
the copy, or was only a `received` row in it): such a file is backed up under its inbox
name, so that the restored gateway takes it again and nothing the copy lacks is lost.
Receipts signed after the copy are not in it; the restored gateway signs those files'
receipts again, after the ones it has.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypedDict

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from contracts import canonical_json

from gateway.store.console_audit import audit_database_url
from gateway.config import CONFIG_FILE, Settings
from gateway.errors import GatewayError
from gateway.masking import mask_file_path
from gateway.receipts.ledger import checkpoint_if_grown, checkpoints_dir
from gateway.receipts.signing import Signer, gpg_binary
from gateway.store import make_engine

log = logging.getLogger("gateway")

MANIFEST_TYPE = "gateway.backup-manifest"
MANIFEST = "MANIFEST.json"
SIGNATURE = MANIFEST + ".asc"
SQLITE_MEMBER = "database/gateway.sqlite3"
# On SQLite the console's audit log is a database file of its own (gateway/store/console_audit.py):
# copied by the same online backup API, never as a raw file (WAL).
AUDIT_MEMBER = "database/gateway-audit.sqlite3"
PGDUMP_MEMBER = "database/gateway.pgdump"
HOME_PREFIX = "home/"
MAILBOX_PREFIX = "mailbox/"
_CHUNK = 1 << 20

PLAIN_WARNING = (
    "警告:未加密的备份含有网关的私钥环和每一位公民的记录,请像对待数据库本身一样保管它 / "
    "warning: an unencrypted backup holds the gateway's private keyring and every citizen's records; "
    "keep it as safe as the database itself"
)


class BackupProblem(GatewayError):
    """A backup cannot be written or read as asked; the message says what to do."""


class MemberEntry(TypedDict):
    path: str
    size: int
    sha256: str


class CheckpointEntry(TypedDict):
    name: str
    tree_size: int
    root: str


class DatabaseEntry(TypedDict):
    backend: str
    member: str
    revision: str | None


class ManifestDocument(TypedDict):
    type: str
    version: str
    created_at: str
    gateway_version: str
    signing_key: str
    encrypted_to: str | None
    database: DatabaseEntry
    receipts: int
    latest_checkpoint: CheckpointEntry | None
    mailbox: str
    members: list[MemberEntry]


def gateway_version() -> str:
    try:
        return importlib.metadata.version("interagency-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def libpq_url(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy PostgreSQL URL as pg_dump/pg_restore take it, and the environment that
    carries its password (PGPASSWORD), so that no password is ever on a command line."""
    parsed = make_url(url)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupProblem(f"{url}: not a SQLite file")
    return Path(database)


# -- the database copy -----------------------------------------------------------------


@dataclass
class DatabaseCopy:
    """The database as one snapshot: its file, and what the manifest says of it."""

    path: Path
    member: str
    backend: str
    revision: str | None
    receipts: int
    latest: CheckpointEntry | None
    archives: ArchiveReferences


@dataclass
class ArchiveReferences:
    """What the database copy knows of processed/ and rejected/: the files it names
    (archives, pulled pages' copies), and the inbox name of each exchange it holds that
    was not archived yet."""

    known: set[str]
    """Mailbox-relative paths of the archived files the copy names."""
    unarchived: dict[str, str]
    """`department/archive name` -> inbox name, for exchanges not archived in the copy."""

    def relocation(self, relative: str) -> str | None:
        """The inbox path a processed/ or rejected/ file goes back to in the backup, when
        the database copy does not know it: its exchange committed (or was even found)
        only after the copy, so the restored gateway must take it again. None: keep it."""
        parts = relative.split("/")
        if len(parts) != 3 or parts[1] not in ("processed", "rejected"):
            return None
        department, _, name = parts
        for suffix in COMPANIONS:
            if name.endswith(suffix) and f"{department}/{parts[1]}/{name.removesuffix(suffix)}" in self.known:
                return None  # a known archive's signature, manifest or report
        if relative in self.known or name.endswith(".errors.csv"):
            return None
        stem = name.removesuffix(next((s for s in COMPANIONS if name.endswith(s)), ""))
        original = self.unarchived.get(f"{department}/{stem}") or _EXCHANGE_SUFFIX.sub("", stem)
        return f"{department}/inbox/{original}{name[len(stem):]}"


COMPANIONS = (".asc", ".sha256", ".errors.csv")
_EXCHANGE_SUFFIX = re.compile(r"\.exchange-(\d+)(?=\.[^.]*$|$)")


def _archive_references(connection: Connection) -> ArchiveReferences:
    known: set[str] = set()
    unarchived: dict[str, str] = {}
    rows = connection.execute(text("SELECT id, department, file_name, source_path, archived_path FROM exchange"))
    for exchange_id, department, file_name, source_path, archived_path in rows:
        if archived_path is None:
            # Archived later under its inbox name, or NAME.exchange-ID.EXT when that was taken.
            inbox_name = str(source_path).rsplit("/", 1)[-1]
            stem, dot, extension = inbox_name.rpartition(".")
            renamed = f"{stem}.exchange-{exchange_id}.{extension}" if dot else f"{inbox_name}.exchange-{exchange_id}"
            unarchived[f"{department}/{inbox_name}"] = unarchived[f"{department}/{renamed}"] = inbox_name
        elif str(archived_path).startswith("(ingested from"):
            for folder in ("processed", "rejected"):  # a pulled page's kept copy
                known.add(f"{department}/{folder}/{file_name}")
        elif "://" not in str(archived_path) and not str(archived_path).startswith("("):
            known.add(str(archived_path))
    return ArchiveReferences(known, unarchived)


def _ledger_facts(connection: Connection) -> tuple[str | None, int, CheckpointEntry | None]:
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    receipts = connection.execute(text("SELECT COUNT(*) FROM receipt")).scalar() or 0
    row = connection.execute(
        text("SELECT id, tree_size, root FROM checkpoint ORDER BY tree_size DESC, id DESC LIMIT 1")
    ).first()
    latest: CheckpointEntry | None = None
    if row is not None:
        latest = {"name": f"checkpoint-{int(row[0]):06d}", "tree_size": int(row[1]), "root": str(row[2])}
    return (str(revision) if revision is not None else None), int(receipts), latest


def copy_sqlite(url: str, target: Path) -> DatabaseCopy:
    """SQLite's online backup API: one consistent snapshot while writers go on (WAL)."""
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise BackupProblem(f"no database at {source_path}; run `gateway init` first")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=60)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)  # pages=-1: the whole database in one step, one read snapshot
    finally:
        destination.close()
        source.close()
    engine = make_engine(f"sqlite:///{target}", readonly=True)
    try:
        with engine.connect() as connection:
            revision, receipts, latest = _ledger_facts(connection)
            archives = _archive_references(connection)
    finally:
        engine.dispose()
    return DatabaseCopy(target, SQLITE_MEMBER, "sqlite", revision, receipts, latest, archives)


def copy_sqlite_audit(url: str, target: Path) -> Path | None:
    """The console's audit log of a SQLite home (its side file), by the online backup API;
    None on PostgreSQL (its entries are in the gateway database) or when there is none yet."""
    if backend_of(url) != "sqlite":
        return None
    source_path = sqlite_path(audit_database_url(url))
    if not source_path.exists():
        return None
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=60)
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)
    finally:
        destination.close()
        source.close()
    return target


def copy_postgresql(url: str, target: Path) -> DatabaseCopy:
    """pg_dump in the custom format, of a snapshot exported by a REPEATABLE READ
    transaction that also reads the revision and latest checkpoint: the manifest
    describes exactly the dump."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupProblem("pg_dump is not installed: apt-get install postgresql-client (the server's major version or newer)")
    address, env = libpq_url(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar()
                revision, receipts, latest = _ledger_facts(connection)
                archives = _archive_references(connection)
                result = subprocess.run(
                    [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                     "--file", str(target), "--dbname", address],
                    capture_output=True, text=True, env={**os.environ, **env}, check=False,
                )
    finally:
        engine.dispose()
    if result.returncode != 0:
        raise BackupProblem(
            f"pg_dump failed (exit {result.returncode}): {result.stderr.strip()[-400:]}; "
            "check the database URL and that pg_dump's version is at least the server's"
        )
    return DatabaseCopy(target, PGDUMP_MEMBER, "postgresql", revision, receipts, latest, archives)


# -- the files -------------------------------------------------------------------------


def _skipped(relative: Path, excluded: set[Path]) -> bool:
    parts = relative.parts
    name = relative.name
    if relative in excluded or name.endswith(".part"):
        return True
    if parts[0] == "gnupg" and (name.startswith("S.") or name.endswith(".lock") or name.startswith(".#")):
        return True  # gpg-agent's sockets and lock files belong to the running agent
    if parts[0] == "staging":
        return not name.startswith("held-")  # scratch copies; the held ones are receipted bytes
    return False


def home_files(
    settings: Settings, exclude: Iterable[Path] = (), archives: ArchiveReferences | None = None
) -> Iterator[tuple[str, Path]]:
    """(member name, file) for every file of the home to keep, then the mailbox when it
    lies outside the home. Sockets, links and devices are never followed. With `archives`
    (the database copy's), a processed/ or rejected/ file the copy does not know is put
    back under its inbox name (module docstring)."""
    mailbox = settings.mailbox_root.resolve()
    seen: set[str] = set()
    home = settings.home
    excluded = {path.resolve() for path in exclude}
    db = settings.db_url
    if backend_of(db) == "sqlite":
        for database in (sqlite_path(db).resolve(), sqlite_path(audit_database_url(db)).resolve()):
            excluded |= {database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")}
    relative_excluded = {path.relative_to(home) for path in excluded if path.is_relative_to(home)}
    for prefix, root in ((HOME_PREFIX, home), (MAILBOX_PREFIX, settings.mailbox_root.resolve())):
        if prefix == MAILBOX_PREFIX and root.is_relative_to(home):
            continue
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                relative = path.relative_to(root)
                if prefix == HOME_PREFIX and _skipped(relative, relative_excluded):
                    continue
                if not path.is_file() or path.is_symlink():
                    continue
                name = prefix + relative.as_posix()
                if archives is not None and path.is_relative_to(mailbox):
                    inside = path.relative_to(mailbox).as_posix()
                    back = archives.relocation(inside)
                    if back is not None and not (mailbox / back).exists():
                        log.info("%s: not yet archived in the database copy; backed up as %s", mask_file_path(inside), mask_file_path(back))
                        name = name[: len(name) - len(inside)] + back
                if name in seen:
                    continue  # moved from the inbox to processed/ while the walk went: copied once, from the inbox
                seen.add(name)
                yield name, path


class _Exactly:
    """Reads exactly `size` bytes of a file that may change while it is copied (an inbox
    file still being written): short reads are padded, the digest covers what was
    written, so the archive and its manifest always agree."""

    def __init__(self, handle: IO[bytes], size: int):
        self.handle, self.left, self.digest, self.short = handle, size, hashlib.sha256(), False

    def read(self, size: int = -1) -> bytes:
        want = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(want)
        if len(data) < want:
            self.short = True
            data += b"\0" * (want - len(data))
        self.left -= len(data)
        self.digest.update(data)
        return data


def _add(tar: tarfile.TarFile, name: str, path: Path, members: list[MemberEntry]) -> None:
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        entry = tarfile.TarInfo(name)
        entry.size, entry.mtime, entry.mode = info.st_size, int(info.st_mtime), info.st_mode & 0o777
        reader = _Exactly(handle, info.st_size)
        tar.addfile(entry, reader)  # tarfile only calls .read()
    if reader.short:
        log.warning("%s shrank while it was copied; the backup holds it as it was when copying began", mask_file_path(name))
    members.append({"path": name, "size": info.st_size, "sha256": reader.digest.hexdigest()})


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    entry = tarfile.TarInfo(name)
    entry.size, entry.mtime, entry.mode = len(data), int(dt.datetime.now(dt.UTC).timestamp()), 0o600
    tar.addfile(entry, io.BytesIO(data))


# -- the backup key --------------------------------------------------------------------


@dataclass
class BackupKey:
    """The office's backup key (备份密钥), its public half in a throw-away keyring."""

    fingerprint: str
    keyring: Path


def backup_key(to: str, scratch: Path, gnupghome: Path | None = None) -> BackupKey:
    """`--to`: a public key file, or the fingerprint of a key in the officer's keyring
    (`gnupghome`, else GNUPGHOME, else ~/.gnupg). Its public half is copied into a fresh
    keyring, so nothing else there is trusted or used."""
    import gnupg

    keyring = scratch / "recipient"
    keyring.mkdir(mode=0o700)
    gpg = gnupg.GPG(gnupghome=str(keyring), gpgbinary=gpg_binary())
    candidate = Path(to)
    if candidate.is_file():
        data = candidate.read_bytes()
        source = f"the key file {to}"
    else:
        wanted = to.replace(" ", "").upper()
        if len(wanted) != 40 or any(c not in "0123456789ABCDEF" for c in wanted):
            raise BackupProblem(
                f"--to {to!r} is neither a public key file nor a full fingerprint (40 hex digits); "
                "see `gpg --list-keys --with-fingerprint`"
            )
        home = gnupghome or (Path(os.environ["GNUPGHOME"]) if os.environ.get("GNUPGHOME") else Path.home() / ".gnupg")
        officer = gnupg.GPG(gnupghome=str(home), gpgbinary=gpg_binary())
        data = officer.export_keys(wanted).encode("ascii")
        source = f"the keyring {home}"
        if not data.strip():
            raise BackupProblem(f"no key {wanted} in {home}; import the office's backup key there (gpg --import) or give its file")
    imported = gpg.import_keys(data)
    keys = gpg.list_keys()
    if len(keys) != 1:
        raise BackupProblem(f"{source} holds {len(keys)} keys; give exactly the office's backup key ({imported.summary()})")
    key = keys[0]
    fingerprint = str(key["fingerprint"])
    if not candidate.is_file() and fingerprint != to.replace(" ", "").upper():
        raise BackupProblem(f"{source} gave key {fingerprint}, not {to}")
    usable = "e" in str(key.get("cap", "")).lower()
    if not usable or key.get("trust") in ("r", "e") or key.get("expired") or key.get("revoked"):
        raise BackupProblem(f"key {fingerprint} cannot encrypt (no valid encryption subkey, expired or revoked); ask for the office's current backup key")
    return BackupKey(fingerprint, keyring)


# -- writing the backup ----------------------------------------------------------------


@dataclass
class BackupResult:
    path: Path
    manifest: ManifestDocument
    encrypted_to: str | None
    warnings: list[str] = field(default_factory=list)


def _encryptor(key: BackupKey, output: Path) -> subprocess.Popen[bytes]:
    # gpg itself, streaming: python-gnupg would hold the plaintext or write it to a file first.
    return subprocess.Popen(
        [gpg_binary(), "--homedir", str(key.keyring), "--batch", "--yes", "--no-tty", "--trust-model", "always",
         "--compress-algo", "zlib", "--encrypt", "--recipient", key.fingerprint, "--output", str(output)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def write_backup(
    settings: Settings, destination: Path, *, to: str | None, plain: bool = False, gnupghome: Path | None = None
) -> BackupResult:
    """Write the backup of `settings.home` to `destination` (a new file)."""
    if (to is None) == (not plain):
        raise BackupProblem("give the office's backup key with --to KEY (a fingerprint or a public key file), or --plain")
    destination = destination.resolve()
    if destination.exists():
        raise BackupProblem(f"{destination} exists; a backup never overwrites a file: choose a new name")
    if not (settings.home / CONFIG_FILE).exists():
        raise BackupProblem(f"No gateway home at {settings.home}. Run `gateway init --home {settings.home}` first")
    destination.parent.mkdir(parents=True, exist_ok=True)
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="backup-", dir=settings.staging_dir))
    partial = destination.with_name(f".{destination.name}.part")
    try:
        key = backup_key(to, scratch, gnupghome) if to is not None else None
        # 0. a checkpoint of the ledger as it is, so the backup carries one covering its
        # receipts (as `gateway ledger export` does); a failure only means an older one.
        # The signer is never closed (`Signer.close` stops the keyring's gpg-agent, which a
        # gateway running beside the backup is using).
        signer = Signer(settings.gnupg_dir, settings.keys_dir, settings.passphrase())
        engine = make_engine(settings.db_url)
        try:
            checkpoint_if_grown(engine, signer, checkpoints_dir(settings.home))
        except Exception:  # noqa: BLE001 - the backup goes on with the checkpoints there are
            log.warning("no new ledger checkpoint before the backup; it carries the latest one there is", exc_info=True)
        finally:
            engine.dispose()
        # 1. the database, as one snapshot
        dump = scratch / "database"
        if backend_of(settings.db_url) == "sqlite":
            database = copy_sqlite(settings.db_url, dump)
        else:
            database = copy_postgresql(settings.db_url, dump)
        # 2. the files, walked after it; 3. the signed manifest, last
        encryptor = _encryptor(key, partial) if key is not None else None
        sink: IO[bytes]
        if encryptor is not None:
            assert encryptor.stdin is not None
            sink = encryptor.stdin
        else:
            sink = open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        members: list[MemberEntry] = []
        try:
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add(tar, database.member, database.path, members)
                audit_copy = copy_sqlite_audit(settings.db_url, scratch / "console-audit")
                if audit_copy is not None:
                    _add(tar, AUDIT_MEMBER, audit_copy, members)
                for name, path in home_files(settings, [destination, partial], database.archives):
                    _add(tar, name, path, members)
                manifest: ManifestDocument = {
                    "type": MANIFEST_TYPE,
                    "version": "1",
                    "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
                    "gateway_version": gateway_version(),
                    "signing_key": signer.fingerprint,
                    "encrypted_to": key.fingerprint if key is not None else None,
                    "database": {"backend": database.backend, "member": database.member, "revision": database.revision},
                    "receipts": database.receipts,
                    "latest_checkpoint": database.latest,
                    "mailbox": "home" if settings.mailbox_root.resolve().is_relative_to(settings.home) else "separate",
                    "members": members,
                }
                body = canonical_json(manifest)
                signature = signer.sign(body).encode("ascii")
                _add_bytes(tar, MANIFEST, body)
                _add_bytes(tar, SIGNATURE, signature)
        finally:
            sink.close()
        if encryptor is not None:
            errors = encryptor.stderr.read().decode(errors="replace") if encryptor.stderr else ""
            if encryptor.wait() != 0:
                raise BackupProblem(f"gpg could not encrypt to {key.fingerprint if key else ''}: {errors.strip()[-400:]}")
        os.chmod(partial, 0o600)
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        subprocess.run(["gpgconf", "--homedir", str(scratch / "recipient"), "--kill", "gpg-agent"], capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    log.info(
        "backup written: %d files, database %s at revision %s, %d receipts",
        len(members), database.backend, database.revision, database.receipts,
    )
    return BackupResult(destination, manifest, key.fingerprint if key else None, [PLAIN_WARNING] if plain else [])


def read_manifest(body: bytes) -> ManifestDocument:
    """The manifest as written (BackupProblem when it is not one)."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise BackupProblem(f"{MANIFEST} is not JSON ({exc}): the backup is damaged") from exc
    if not isinstance(document, dict) or document.get("type") != MANIFEST_TYPE or not isinstance(document.get("members"), list):
        raise BackupProblem(f"{MANIFEST} is not a gateway backup manifest: the backup is damaged or not a gateway backup")
    manifest: ManifestDocument = document  # type: ignore[assignment]  # checked above as far as restore relies on it
    return manifest
