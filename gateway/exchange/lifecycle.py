"""The exchange lifecycle (DESIGN.md, "One exchange, end to end").

found file -> staged and hashed -> exchange row (received) -> adapter parse/normalize ->
one transaction: records, row errors, receipt -> outbox (report, signature, receipt) ->
source moved to processed/ or rejected/.

A crash anywhere leaves either a finished exchange or one that the next pass redoes from
the start: the source stays in the inbox until its exchange has committed, and an
exchange that committed but whose file was not yet moved is only completed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from pydantic import ValidationError
from sqlalchemy import text, update
from sqlmodel import Session, select


from gateway.adapter import Adapter, SourceFile
from gateway.intake.claims import ClaimQueue
from gateway.config import Settings
from gateway.intake.signed_drops import REASONS as SIGNATURE_REASONS, SignedDrops
from gateway.obligations import hooks as obligation_hooks
from gateway.routing import Router, without_acknowledgements
from gateway.routing.acks import ACK_NAME
from gateway.errors import ConfigError, FileRejected, GatewayError, TransportError
from gateway.exchange.parallel import ParsedInProcesses
from gateway.plugins import PluginManager, get_manager
from gateway.readers import CountingReader
from gateway.receipts.ledger import checkpoint_after_pass
from gateway.receipts.merkle import TreeBuilder
from gateway.receipts.receipt import GENESIS, receipt_bytes, receipt_document, sha256_hex
from gateway.receipts.signing import Signer
from gateway.receipts.rejection_report import write_report
from gateway.config import effective_departments
from gateway.exchange.home import ensure_adapter_mailboxes
from gateway.exchange.batches import ISSUE_KEYS, PreparedBatch, RowPreparer
from gateway.intake.arrival import HEAD_BYTES, TAIL_BYTES, ArrivalWatch
from gateway.intake import manifests
from gateway.intake.names import fit, is_utf8, readable_name, shown
from gateway.masking import mask_file_path, scrub_message, scrubbed_traceback
from gateway.intake.pending import WHY as PENDING_WHY, pending_name, pending_text
from gateway.intake.staging import Sniffed, sniff_file
from gateway.store import Exchange, Receipt, Record, RowError, create_schema, make_engine, session_scope
from gateway.store.faults import database_fault
from gateway.store.models import utcnow
from gateway.intake.transports import FoundFile, LocalMailbox, Transport, department_transports

if TYPE_CHECKING:
    from sqlalchemy import Connection, Insert

log = logging.getLogger("gateway")
LEDGER_LOCK = 0x6757_6C67  # "gWlg": advisory lock id held while a receipt is appended

FILE_REASONS: dict[str, tuple[str, str]] = {
    "empty": ("文件为空或没有表头", "the file is empty or has no header row"),
    "encoding": ("文件编码无法识别(应为 UTF-8 或 GB18030)", "the file is neither UTF-8 nor GB18030"),
    "binary": ("文件含有二进制内容(NUL 字节),不是文本文件", "the file holds binary content (NUL bytes), not text"),
    "header_missing": ("表头缺少必需的列", "the header lacks required columns"),
    "header_duplicate": ("表头有重复的列", "the header repeats a column"),
    "header_unreadable": ("表头无法读取", "the header row cannot be read"),
    "no_adapter": ("没有适用于此文件的适配器", "no adapter of this department reads this file"),
    "symlink": ("收件箱中的符号链接不予读取", "symbolic links in the inbox are never followed"),
    "special": ("不是普通文件", "not a regular file"),
    "directory": ("收件箱中的文件夹不予读取,请把文件直接上传到收件箱", "a folder in the inbox is never read: upload the files themselves into the inbox"),
    "failed": ("文件读取时出错,未能处理", "reading the file failed"),
    "too_many_attempts": ("多次处理失败", "processing failed repeatedly"),
    "unreadable": ("文件无法读取", "the file cannot be read"),
    **SIGNATURE_REASONS,
}


@dataclass
class Outcome:
    """What happened to one file, for summaries and tests."""

    exchange_id: int
    department: str
    file_name: str
    status: str
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    corrected: int = 0
    reason: str | None = None
    receipt: str | None = None
    files: list[str] = field(default_factory=list)



_KEY_PROBES = text(
    "SELECT r.business_key, r.version, r.record_hash FROM unnest(CAST(:keys AS text[])) AS k(key) "
    "JOIN record r ON r.contract = :contract AND r.business_key = k.key"
)
_PROBE_PLAN = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
_DEFAULT_PLAN = (
    "SET LOCAL enable_seqscan TO DEFAULT; SET LOCAL enable_bitmapscan TO DEFAULT; "
    "SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT"
)


# (business key, version, record hash) of a stored record version
StoredVersion = tuple[str, int, str]


class _Table(Protocol):
    """What the fast insert path needs of a table (`Model.__table__`)."""

    def insert(self) -> Insert: ...


def _stored_on_postgresql(connection: Connection, contract: str, keys: list[str]) -> list[StoredVersion]:
    """(business key, version, hash) of the stored versions of `keys`, one index probe a key.

    PostgreSQL plans from the table's statistics, which know nothing of the rows this
    exchange has inserted (uncommitted) nor, until the next ANALYZE, of recent ones. With
    none it takes `contract = X` as selective and reads every stored row of the contract
    for each chunk of keys (65 ms a chunk at 200,000 rows, and growing). A probe per key
    through the (contract, business_key) index is always the right plan for this lookup,
    so it is asked for, in this transaction only, around this statement only."""
    found: list[StoredVersion] = []
    connection.exec_driver_sql(_PROBE_PLAN)
    try:
        for start in range(0, len(keys), 500):
            found.extend(connection.execute(_KEY_PROBES, {"keys": keys[start : start + 500], "contract": contract}))
    finally:
        connection.exec_driver_sql(_DEFAULT_PLAN)
    return found


class Gateway:
    """One gateway home: its settings, database, signing key, plugins and mailbox."""

    def __init__(
        self,
        settings: Settings,
        plugins: PluginManager | None = None,
        transport: Transport | None = None,
        transports: dict[str, Transport] | None = None,
        worker: str | None = None,
    ):
        self.settings = settings
        self.plugins = plugins or get_manager()
        self.engine = make_engine(settings.db_url)
        create_schema(self.engine)
        self.signer = Signer(settings.gnupg_dir, settings.keys_dir, settings.passphrase())
        self.transport: Transport = transport or LocalMailbox(settings.mailbox_root)
        # Departments on an SFTP server ([sftp.NAME] in gateway.toml); the rest use `self.transport`.
        self.transports: dict[str, Transport] = (
            department_transports(settings) if transports is None else dict(transports)
        )
        self.settings.staging_dir.mkdir(parents=True, exist_ok=True)
        _sweep_staging(self.settings.staging_dir)
        # Observations of every inbox, kept across polls (gateway/intake/arrival.py).
        self.arrival = ArrivalWatch(settings.settle_seconds, settings.arrival_wait_seconds, dict(settings.arrival))
        self._pending_noted: set[tuple[str, str, str]] = set()
        self._manifest_held: set[tuple[str, str]] = set()  # (inbox path, why) logged once
        self._staged: dict[str, Path] = {}  # inbox path -> its staged copy, while it is processed
        self._adapters: dict[str, Adapter] = {}
        self._adapter_mailboxes_made = False  # the inboxes of unlisted adapter departments (once per process)
        # Exchanges whose counted attempt a database fault cut short: a fault is not the
        # file's doing, so the attempt is taken back once the database works (max_attempts).
        self._attempt: int | None = None
        self._attempts_to_forgive: set[int] = set()
        self.claims = ClaimQueue(
            self.engine, worker or os.environ.get("GATEWAY_WORKER_ID"), timeout=settings.claim_timeout_seconds, heartbeat=settings.claim_heartbeat_seconds
        )
        self.drops = SignedDrops(self)
        # Sharing agreements: deliveries to entitled departments, their ACKs (gateway/routing/).
        self.routing = Router(self)

    def close(self) -> None:
        for transport in {id(t): t for t in [self.transport, *self.transports.values()]}.values():
            closer = getattr(transport, "close", None)
            if closer is not None:
                closer()
        self.signer.close()
        self.engine.dispose()

    def transport_for(self, department: str) -> Transport:
        """Where this department's mailbox is: its SFTP server, else the local mailbox."""
        return self.transports.get(department, self.transport)

    # -- adapters ---------------------------------------------------------------

    def departments(self) -> list[str]:
        """The departments polled (gateway/exchange/home.py `effective_departments`): the
        configured ones, then those an installed adapter reads that gateway.toml omits."""
        return effective_departments(self.settings, self.plugins.adapters().values())

    def ensure_adapter_mailboxes(self, *, log_them: bool = True) -> list[str]:
        """Make (once per process) the mailbox of each installed adapter's department that
        gateway.toml does not list; return a message per mailbox made, logged unless the
        caller shows them itself (`gateway run` prints them)."""
        if self._adapter_mailboxes_made:
            return []
        said = ensure_adapter_mailboxes(self.settings, self.plugins.adapters().values(), self.transport_for)
        for message in said if log_them else ():
            log.warning("%s", message)
        self._adapter_mailboxes_made = True
        return said

    def adapter(self, name: str) -> Adapter:
        if name not in self._adapters:
            info = self.plugins.adapter(name)
            try:
                self._adapters[name] = info.adapter_class(self.settings.adapters.get(name, {}))
            except ValidationError as exc:
                raise ConfigError(f"[adapters.{name}] in gateway.toml: {exc}") from exc
        return self._adapters[name]

    def choose_adapter(self, source: SourceFile) -> Adapter:
        candidates = self.plugins.adapters_for(source.department)
        for info in candidates:
            adapter = self.adapter(info.name)
            if adapter.accepts(source):
                return adapter
        names = ", ".join(f"{i.name} ({'/'.join(i.file_types)})" for i in candidates) or "none registered"
        detail = f"adapters of department {source.department}: {names}"
        elsewhere = [
            info for info in self.plugins.adapters().values()
            if info.department != source.department and self.adapter(info.name).accepts(source)
        ]
        if elsewhere:
            fits = elsewhere[0]
            detail += f"; the file looks like {fits.name} input, which department {fits.department} sends"
        raise FileRejected("no_adapter", detail)

    # -- polling ----------------------------------------------------------------

    def ready_files(self, now: float | None = None) -> tuple[list[FoundFile], float]:
        """Files that have arrived (gateway/intake/arrival.py), and how long until the next
        one may have (0 if none). Every entry of an inbox gets an outcome: taken, or held
        with a logged reason; a problem with one entry never hides the others."""
        now = time.time() if now is None else now
        ready, wait = [], 0.0
        acknowledging = self._acknowledging()
        try:
            self.ensure_adapter_mailboxes()
        except OSError as exc:  # a mailbox that cannot be made: said, the other inboxes go on
            log.error("an adapter's inbox could not be made: %s", type(exc).__name__)
        for department in self.departments():
            try:
                found, waiting = self._ready_in(department, now, acknowledging)
            except Exception as exc:
                if database_fault(exc) is not None:
                    raise
                # One inbox's surprise never stops the others (its files wait, logged).
                log.error("inbox of %s not taken this pass: %s", department, type(exc).__name__)
                continue
            ready += found
            wait = max(wait, waiting)
        return ready, wait

    def _ready_in(self, department: str, now: float, acknowledging: set[str]) -> tuple[list[FoundFile], float]:
        """`ready_files` for one department's inbox."""
        ready: list[FoundFile] = []
        wait = 0.0
        transport = self.transport_for(department)
        try:
            everything = transport.list_inbox(department, everything=True)
        except TransportError as exc:
            log.error("inbox of %s unreadable this pass: %s", department, exc)
            return [], 0.0
        temporaries = [f.name for f in everything if f.kind == "temporary"]
        listing = [f for f in everything if f.kind != "temporary"]
        if department in acknowledging:
            # ACK-<delivery id>.json files are acknowledgements (gateway/routing/acks.py), never drops.
            listing = without_acknowledgements(listing)
        else:
            # A department that receives nothing: only a strict `ACK-<id>.json` is an
            # acknowledgement (refused: no delivery was made to it); another `ack-…`
            # name is an ordinary drop (a housing page may be called so).
            strays = [f for f in listing if f.kind == "file" and ACK_NAME.match(f.name)]
            listing = [f for f in listing if f not in strays]
            self._refuse_stray_acknowledgements(strays, {f.name for f in everything}, now)
        if self.settings.arrival.get(department) == "manifest":
            listing = self._with_manifests(department, listing)
        try:
            listed = self.drops.ready(department, listing, now)
        except TransportError as exc:
            log.error("inbox of %s unreadable this pass: %s", department, exc)
            return [], 0.0
        taken = {f.path for f in listed}
        try:
            signs = bool(self.drops.keys.for_department(department))
        except GatewayError:
            signs = False  # a damaged registry: nothing is taken (logged), and no note says otherwise
        if signs:
            for found in listing:
                if found.path not in taken and found.kind == "file" and not found.name.lower().endswith(".asc"):
                    self._note_pending(found, "signature")
        unreadable: list[FoundFile] = []

        def probe(found: FoundFile) -> tuple[bytes, bytes] | None:
            try:
                return transport.read_ends(found, HEAD_BYTES, TAIL_BYTES)
            except PermissionError:
                unreadable.append(found)
            except (TransportError, OSError) as exc:
                log.warning("%s/inbox/%s: cannot be read yet: %s", department, shown(found.name), type(exc).__name__)
            return None

        arrived, waiting = self.arrival.observe(
            department, listed, temporaries, now, probe, local_clock=isinstance(transport, LocalMailbox)
        )
        wait = max(wait, waiting)
        while self.arrival.vanished:
            gone_department, gone = self.arrival.vanished.pop()
            try:
                self._archive_replaced(FoundFile(gone_department, PurePosixPath(gone).name, gone, 0, 0.0), "", changed=False)
            except (TransportError, OSError) as exc:
                log.error("%s: removed before it was archived; its kept bytes could not be archived: %s", gone_department, scrub_message(str(exc)))
        for found in unreadable:
            self._note_pending(found, "unreadable")  # logged once, with the note
        for found in arrived:
            if not is_utf8(found.name):
                renamed = self._readable(transport, found)
                if renamed is None:
                    continue
                found = renamed
            ready.append(found)
        return ready, wait

    def _with_manifests(self, department: str, listing: list[FoundFile]) -> list[FoundFile]:
        """A `manifest` department's drops that have their NAME.sha256 (gateway/intake/manifests.py);
        the others are held, logged once."""
        drops, named = manifests.split(listing)
        kept = []
        for found in drops:
            if found.kind == "file" and found.name not in named:
                if (found.path, "missing") not in self._manifest_held:
                    self._manifest_held.add((found.path, "missing"))
                    log.info("%s: held: waiting for its manifest (.sha256)", mask_file_path(found.path))
                continue
            kept.append(found)
        return kept

    def _matches_manifest(self, found: FoundFile, sniffed: Sniffed) -> bool:
        """For a `manifest` department: True when the staged bytes hash to NAME.sha256's digest."""
        if self.settings.arrival.get(found.department) != "manifest" or found.path.startswith("/"):
            return True
        transport = self.transport_for(found.department)
        scratch = self.settings.staging_dir / f"{os.getpid()}-{uuid.uuid4().hex}.sha256"
        try:
            transport.stage(manifests.manifest_for(found), scratch)
            digest = manifests.digest_in(scratch.read_bytes())
        except (TransportError, OSError):
            digest = None  # removed, or not readable yet: the next poll looks again
        finally:
            scratch.unlink(missing_ok=True)
        if digest == sniffed.sha256:
            self._manifest_held -= {(found.path, "missing"), (found.path, "mismatch")}
            return True
        if (found.path, "mismatch") not in self._manifest_held:
            self._manifest_held.add((found.path, "mismatch"))
            log.info("%s: held: its bytes do not match its manifest yet (still arriving?)", mask_file_path(found.path))
        return False

    def _archive_manifest(self, transport: Transport, found: FoundFile, folder: str, name: str) -> None:
        if self.settings.arrival.get(found.department) != "manifest" or found.path.startswith("/"):
            return
        manifest = manifests.manifest_for(found)
        if transport.exists(found.department, "inbox", manifest.name):
            transport.archive(manifest, folder, name + manifests.MANIFEST_SUFFIX)

    def _refuse_stray_acknowledgements(self, strays: list[FoundFile], names: set[str], now: float) -> None:
        for found in strays:
            if now - found.mtime < self.settings.settle_seconds:
                continue
            try:
                self.routing.acks.take(found, found.name + ".asc" in names, now)
            except Exception as exc:  # noqa: BLE001 - one acknowledgement never stops the pass
                log.error("%s/inbox/%s: acknowledgement not taken: %s", found.department, shown(found.name), type(exc).__name__)

    def _acknowledging(self) -> set[str]:
        """Departments whose inbox may hold acknowledgements (`ack-*.json` there is one);
        elsewhere such a name is an ordinary drop (a housing page may be named so)."""
        try:
            return set(self.routing.acks.departments(self.routing._usable_agreements()))  # noqa: SLF001
        except Exception:  # noqa: BLE001 - the routing tables unreadable: as before, never a drop
            return set(self.settings.departments)

    def _readable(self, transport: Transport, found: FoundFile) -> FoundFile | None:
        """A file whose name is not UTF-8 (a GBK name from a Windows client), renamed in
        its inbox to its readable form so that it can be received like any other."""
        target = fit(readable_name(found.name))
        if transport.exists(found.department, "inbox", target):
            target = fit(readable_name(found.name), tag=hashlib.sha256(os.fsencode(found.name)).hexdigest()[:8])
        try:
            renamed = transport.rename_in_inbox(found, target)
        except (TransportError, OSError) as exc:
            log.error("%s/inbox/%s: its name is not UTF-8 and it cannot be renamed: %s", found.department, shown(found.name), exc)
            return None
        log.warning(
            "%s/inbox/%s: its name is not UTF-8 (GBK from a Windows client?); renamed to %s to receive it",
            found.department, shown(found.name), shown(target),
        )
        self.arrival.forget(found)
        return renamed

    def _note_pending(self, found: FoundFile, why: str) -> None:
        """`NAME.pending.txt` in the department's outbox, once: why the file waits (it
        cannot be read, its signature has not arrived). Removed once it is processed."""
        key = (found.department, found.path, why)
        if key in self._pending_noted:
            return
        self._pending_noted.add(key)
        transport = self.transport_for(found.department)
        name = found.name if is_utf8(found.name) else readable_name(found.name)
        note = pending_name(name)
        scratch = self.settings.staging_dir / f"pending-{uuid.uuid4().hex}.txt"
        try:
            if transport.exists(found.department, "outbox", note):
                return
            scratch.write_bytes(pending_text(why, name, self.drops.wait_seconds))
            transport.put(found.department, "outbox", note, scratch)
            log.warning("%s/inbox/%s: held (%s); a note was left in the outbox", found.department, shown(found.name), PENDING_WHY[why])
        except (TransportError, OSError) as exc:
            log.error("%s/inbox/%s: held (%s); the outbox note could not be written: %s", found.department, shown(found.name), why, exc)
        finally:
            scratch.unlink(missing_ok=True)

    def run_once(self, *, wait_for_fresh: bool = True) -> list[Outcome]:
        """One pass over every inbox. A fresh file is waited for until it settles."""
        outcomes: list[Outcome] = []
        deadline = time.monotonic() + max(30.0, 10 * self.settings.settle_seconds)
        while True:
            ready, wait = self.ready_files()
            self._forgive_attempts()
            # Through the shared queue, so that several processes never take the same file.
            self.claims.enqueue(ready)
            while (claim := self.claims.next()) is not None:
                with self.claims.holding(claim):
                    outcome = self.process_safely(claim.found)
                if outcome is not None:
                    outcomes.append(outcome)
            if not (wait_for_fresh and wait > 0) or time.monotonic() > deadline:
                if outcomes:  # receipts were added: sign a ledger checkpoint over them
                    checkpoint_after_pass(self.engine, self.signer, self.settings.home)
                self.routing.run_pass()  # route, take ACKs, send due and held deliveries; never raises
                return outcomes
            time.sleep(min(wait, 1.0) + 0.05)

    def process_safely(self, found: FoundFile) -> Outcome | None:
        """Process one file; an unexpected failure is logged and retried next pass."""
        self._attempt = None
        try:
            outcome = self.process(found)
            if outcome is not None and not self.arrival.is_deferred(found):
                self.arrival.forget(found)  # moved out of the inbox: a file dropped later under its name is new
            return outcome
        except (TransportError, OSError) as exc:
            log.error("%s: left in the inbox for the next pass: %s", mask_file_path(found.path), scrub_message(str(exc)))
        except Exception as exc:
            fault = database_fault(exc)
            if fault is not None:
                if self._attempt is not None:
                    self._attempts_to_forgive.add(self._attempt)
                # Every other file would fail the same way: stop the pass (the caller backs off).
                log.error("%s: left in the inbox: %s", mask_file_path(found.path), fault)
                raise
            # Not log.exception: an adapter's or a library's text may quote the file.
            log.error(
                "%s: processing failed; left in the inbox for the next pass: %s",
                mask_file_path(found.path), scrubbed_traceback(exc),
            )
        return None

    def _forgive_attempts(self) -> None:
        for exchange_id in sorted(self._attempts_to_forgive):
            with session_scope(self.engine) as session:
                session.execute(
                    update(Exchange)
                    .where(Exchange.id == exchange_id, Exchange.status == "received", Exchange.attempts > 0)  # type: ignore[arg-type]
                    .values(attempts=Exchange.attempts - 1)
                )
            self._attempts_to_forgive.discard(exchange_id)

    # -- one file ---------------------------------------------------------------

    def process(self, found: FoundFile) -> Outcome | None:
        if found.kind != "file":
            return self._refuse_unreadable(found, found.kind)
        staged = self.settings.staging_dir / f"{os.getpid()}-{uuid.uuid4().hex}.src"
        try:
            transport = self.transport_for(found.department)
            try:
                sniffed = transport.stage(found, staged)
            except (TransportError, PermissionError) as exc:
                if isinstance(exc, PermissionError) or isinstance(exc.__cause__, PermissionError):
                    self._note_pending(found, "unreadable")
                raise
            if not transport.still_there(found):
                log.info("%s changed while it was read; taking it on a later pass", mask_file_path(found.path))
                return None
            if not self._matches_manifest(found, sniffed):
                return None
            self._staged[found.path] = staged
            return self._process_staged(found, staged, sniffed, archive=True)
        finally:
            self._staged.pop(found.path, None)
            staged.unlink(missing_ok=True)

    def ingest(self, path: Path, adapter_name: str, progress: Callable[[int], None] | None = None) -> Outcome:
        """Process one file by hand (`gateway ingest`); the file itself is left where it is."""
        adapter = self.adapter(adapter_name)
        info = path.stat()
        found = FoundFile(adapter.department, path.name, str(path.resolve()), info.st_size, info.st_mtime)
        outcome = self._process_staged(found, path, sniff_file(path), archive=False, adapter=adapter, progress=progress)
        assert outcome is not None
        return outcome

    def process_page(
        self,
        department: str,
        name: str,
        source_path: str,
        staged: Path,
        sniffed: Sniffed,
        *,
        adapter: Adapter | str | None = None,
        keep_copy: bool = True,
    ) -> Outcome:
        """Process bytes fetched over HTTP (a pulled page; also the FKXX answer the gateway
        sent) as one exchange of `department`, exactly like a dropped file: duplicate
        check, adapter, one transaction, signed receipt and report in the department's
        outbox (gateway/pulls/, docs/pulls.md).

        `source_path` says where the bytes came from; the same page fetched again must
        give the same path, so that an exchange committed before a crash is only
        completed. `staged` stays the caller's. With `keep_copy`, the bytes are kept in
        the department's processed/ (or rejected/) folder under the exchange's name."""
        found = FoundFile(department, name, source_path, sniffed.size, time.time())
        with session_scope(self.engine) as session:
            finished = session.exec(
                select(Exchange).where(
                    Exchange.department == department,
                    Exchange.sha256 == sniffed.sha256,
                    Exchange.source_path == source_path,
                    Exchange.status != "received",
                    Exchange.archived_path.is_(None),  # type: ignore[union-attr]
                )
            ).first()
            if finished is not None:
                session.expunge(finished)
        if finished is not None:
            log.info("exchange %s: committed earlier; completing its outbox", finished.id)
            outcome = self._finish(finished, found, archive=False)
        else:
            chosen = self.adapter(adapter) if isinstance(adapter, str) else adapter
            processed = self._process_staged(found, staged, sniffed, archive=False, adapter=chosen)
            assert processed is not None
            outcome = processed
        if keep_copy:
            folder = "rejected" if outcome.status == "rejected" else "processed"
            self.transport_for(department).put(department, folder, outcome.file_name, staged)
        return outcome

    def _process_staged(
        self,
        found: FoundFile,
        staged: Path,
        sniffed: Sniffed,
        *,
        archive: bool,
        adapter: Adapter | None = None,
        progress: Callable[[int], None] | None = None,
        supersedes: int | None = None,
        signature_at: tuple[str, str] | None = None,
    ) -> Outcome | None:
        """One staged file as one exchange. `supersedes` and `signature_at` (the folder and
        name the file lies under, its NAME.asc beside it) are a reprocessing's
        (gateway/exchange/reprocess.py): the new exchange replaces that one, and a signing
        department's signature is checked there instead of in the inbox."""
        if archive:
            self._archive_replaced(found, sniffed.sha256)
        with session_scope(self.engine) as session:
            finished = session.exec(
                select(Exchange).where(
                    Exchange.department == found.department,
                    Exchange.sha256 == sniffed.sha256,
                    Exchange.source_path == found.path,
                    Exchange.status != "received",
                    Exchange.archived_path.is_(None),  # type: ignore[union-attr]
                )
            ).first()
            if finished is not None and archive:
                session.expunge(finished)
            else:
                finished = None
                taken = session.exec(
                    select(Exchange).where(
                        Exchange.department == found.department,
                        Exchange.sha256 == sniffed.sha256,
                        Exchange.source_path == found.path,
                        Exchange.status == "received",
                    )
                ).first()
                if taken is None:
                    taken = Exchange(
                        department=found.department,
                        file_name=found.name,
                        source_path=found.path,
                        sha256=sniffed.sha256,
                        size=sniffed.size,
                        encoding=sniffed.encoding,
                        supersedes=supersedes if supersedes is not None else self._superseded(session, found) if archive else None,
                    )
                    session.add(taken)
                exchange = taken
                exchange.attempts += 1
                session.flush()
                session.expunge(exchange)
        if finished is None:
            self._attempt = exchange.id  # committed: counted (see _forgive_attempts)
        if finished is not None:
            log.info("exchange %s: committed earlier; completing the move of %s", finished.id, mask_file_path(found.path))
            return self._finish(finished, found, archive=True)

        if exchange.attempts > self.settings.max_attempts:
            return self._reject(exchange, found, FileRejected("too_many_attempts", f"{exchange.attempts - 1} attempts"), archive)
        # Signed drops (gateway/intake/signed_drops.py); a reprocessed file's signature lies beside its archived copy.
        refused = self.drops.check(found, staged, at=signature_at) if archive or signature_at is not None else None
        if refused is not None:
            return self._reject(exchange, found, refused, archive)

        source = SourceFile(
            path=staged,
            name=found.name,
            department=found.department,
            sha256=sniffed.sha256,
            size=sniffed.size,
            encoding=sniffed.encoding,
            encoding_problem=sniffed.problem,
            has_nul=sniffed.has_nul,
        )

        with session_scope(self.engine) as session:
            original = session.exec(
                select(Exchange)
                .where(
                    Exchange.department == found.department,
                    Exchange.sha256 == sniffed.sha256,
                    Exchange.status == "processed",
                    Exchange.id != exchange.id,
                )
                .order_by(Exchange.id)  # type: ignore[arg-type]
            ).first()
            if original is not None:
                exchange = session.merge(exchange)
                exchange.status, exchange.duplicate_of = "duplicate", original.id
                exchange.adapter = original.adapter
                exchange.processed_at = utcnow()
                self._seal(session, exchange, TreeBuilder(), {}, report_sha256=None)
                session.expunge(exchange)
        if original is not None:
            log.info("exchange %s: duplicate of exchange %s (same bytes), nothing stored", exchange.id, original.id)
            return self._finish(exchange, found, archive=archive)

        received = exchange  # detached, fully loaded: what a rejection starts from
        try:
            chosen = adapter or self.choose_adapter(source)
            validated = self._validate_before_lock(chosen, source, exchange.id, progress)
            with session_scope(self.engine) as session:
                exchange = session.merge(exchange)
                exchange.adapter = chosen.name
                self._store_rows(session, exchange, chosen, source, progress, validated=validated)
                session.expunge(exchange)
        except FileRejected as rejected:
            return self._reject(exchange, found, rejected, archive)
        except (TransportError, GatewayError, OSError, MemoryError):
            # Not the file's doing (the mailbox, the signing key, the settings, a parsing
            # process that died): it stays in the inbox, retried on the next pass.
            raise
        except Exception as exc:
            if database_fault(exc) is not None:
                raise
            # A reader or library failing on these bytes (a lone surrogate, an encrypted
            # workbook): this file is refused now, with a reason; the pass goes on. The
            # library's message is not shown: it may quote the file's content.
            log.warning("exchange %s: %s could not be read (%s); refused", received.id, shown(found.name), type(exc).__name__)
            return self._reject(received, found, FileRejected("failed", _failure(exc)), archive)
        return self._finish(exchange, found, archive=archive)

    def _held_copy(self, exchange: Exchange) -> Path:
        """The bytes of an exchange processed but not yet archived (see `_finish`)."""
        return self.settings.staging_dir / f"held-{exchange.id}.src"

    def _archive_replaced(self, found: FoundFile, sha256: str, *, changed: bool = True) -> None:
        """Exchanges of this inbox file left there unarchived (taken early, see `_finish`)
        whose content has changed since (or, not `changed`, that was removed from the
        inbox): their kept bytes go to processed/ (or rejected/), and a changed one is
        marked `left_changed`, so the new content's exchange supersedes it."""
        with session_scope(self.engine) as session:
            left = session.exec(
                select(Exchange).where(
                    Exchange.department == found.department,
                    Exchange.source_path == found.path,
                    Exchange.status != "received",
                    Exchange.sha256 != sha256,
                    Exchange.archived_path.is_(None),  # type: ignore[union-attr]
                )
            ).all()
            for exchange in left:
                session.expunge(exchange)
        transport = self.transport_for(found.department)
        for exchange in left:
            held = self._held_copy(exchange)
            folder = "rejected" if exchange.status == "rejected" else "processed"
            if held.exists():
                name = self._archive_name(found, folder, exchange)
                transport.put(found.department, folder, name, held)
                url = getattr(transport, "url", None)
                archived = url(found.department, folder, name) if url is not None else f"{found.department}/{folder}/{name}"
            else:
                archived = "(changed in the inbox before it was archived; its signed bytes were not kept here)"
                log.error("exchange %s: %s", exchange.id, archived)
            with session_scope(self.engine) as session:
                row = session.get(Exchange, exchange.id)
                assert row is not None
                row.archived_path, row.left_changed = archived, changed
            held.unlink(missing_ok=True)
            if not changed:
                log.warning("exchange %s: removed from the inbox before it was archived; its kept bytes were archived", exchange.id)
                continue
            log.warning(
                "exchange %s: %s/inbox/%s changed after it was receipted; its new content is a new exchange superseding it",
                exchange.id, found.department, shown(found.name),
            )

    def _superseded(self, session: Session, found: FoundFile) -> int | None:
        """The exchange of an earlier content of this inbox file, which changed after it was
        staged (`left_changed`) and is not yet superseded: the new exchange replaces it."""
        earlier = session.exec(
            select(Exchange.id)
            .where(
                Exchange.department == found.department,
                Exchange.source_path == found.path,
                Exchange.left_changed.is_(True),  # type: ignore[attr-defined]
            )
            .order_by(Exchange.id.desc())  # type: ignore[union-attr]
            .limit(1)
        ).first()
        if earlier is None:
            return None
        taken = session.exec(select(Exchange.id).where(Exchange.supersedes == earlier).limit(1)).first()
        return None if taken is not None else earlier

    # -- storing ----------------------------------------------------------------

    def _validate_before_lock(
        self, adapter: Adapter, source: SourceFile, exchange_id: int | None, progress: Callable[[int], None] | None
    ) -> list[PreparedBatch] | None:
        """A small file's batches, parsed and validated before its transaction begins; None
        for a large file (the parsing processes' when it is large enough) or on PostgreSQL. On SQLite the exchange's transaction holds the
        database's one write lock from its first statement: validating inside it would make
        several workers take turns for the whole of each file, not only for its writes.
        Nothing is written here, so a crash or a rejection leaves what it always did."""
        settings = self.settings
        parallel = settings.ingest_workers > 0 and source.size >= settings.parallel_parse_min_bytes
        if parallel or self.engine.dialect.name != "sqlite" or source.size > settings.validate_before_lock_max_bytes:
            return None
        if progress is not None:
            opener = source.open_binary
            source.open_binary = lambda: cast(BinaryIO, CountingReader(opener(), progress))  # type: ignore[method-assign]
        return list(RowPreparer(adapter, exchange_id, self.plugins.reasons()).batches(source, self.settings.batch_size))

    def _store_rows(
        self,
        session: Session,
        exchange: Exchange,
        adapter: Adapter,
        source: SourceFile,
        progress: Callable[[int], None] | None = None,
        *,
        validated: list[PreparedBatch] | None = None,
    ) -> None:
        from sqlalchemy import bindparam

        tree = TreeBuilder()
        versions: dict[str, str] = {}
        batch = self.settings.batch_size
        # Counted in plain ints; they reach the mapped exchange once, at the end (each
        # assignment to a mapped attribute is an ORM event).
        rows = rejected = warnings = 0
        compiled: dict[object, str | None] = {}  # a table, or "stored", -> its SQLite statement

        def insert_many(table: _Table, keys: tuple[str, ...], values: Sequence[tuple[object, ...]]) -> None:
            """executemany of `values` (tuples in `keys` order) into `table`. On SQLite the
            driver takes the tuples as they are when the compiled INSERT binds exactly `keys`
            and no column type converts its value: SQLAlchemy's per-row parameter handling
            costs about half as much again as SQLite's own insert. Elsewhere: Core insert."""
            connection = session.connection()
            dialect = connection.dialect
            if table not in compiled:
                compiled[table] = None
                if dialect.name == "sqlite":
                    statement = table.insert().compile(dialect=dialect, column_keys=list(keys))
                    if (
                        statement.positional
                        and tuple(statement.positiontup or ()) == keys
                        and all(statement.binds[key].type.bind_processor(dialect) is None for key in keys)
                    ):
                        compiled[table] = str(statement)
            sql = compiled[table]
            if sql is not None:
                connection.exec_driver_sql(sql, values)
            else:
                connection.execute(table.insert(), [dict(zip(keys, value)) for value in values])

        def stored(contract: str, keys: list[str]) -> list[StoredVersion]:
            """(business key, version, hash) of every stored version of these keys, 500 keys
            a query. On SQLite one statement with 500 places, compiled once (a short last
            chunk repeats a key: IN is a set test); the Core IN renders its list each time."""
            connection = session.connection()
            dialect = connection.dialect
            if dialect.name == "postgresql":
                return _stored_on_postgresql(connection, contract, keys)
            columns = select(Record.business_key, Record.version, Record.record_hash)
            if "stored" not in compiled:
                compiled["stored"] = None
                if dialect.name == "sqlite":
                    places = [f"key{i}" for i in range(500)]
                    statement = columns.where(
                        Record.contract == bindparam("contract"),
                        Record.business_key.in_([bindparam(place) for place in places]),  # type: ignore[attr-defined]
                    ).compile(dialect=dialect)
                    if statement.positional and list(statement.positiontup or ()) == ["contract", *places]:
                        compiled["stored"] = str(statement)
            sql = compiled["stored"]
            found: list[StoredVersion] = []
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                if sql is not None:
                    found.extend(connection.exec_driver_sql(sql, (contract, *chunk, *[chunk[0]] * (500 - len(chunk)))))
                else:
                    found.extend(connection.execute(columns.where(Record.contract == contract, Record.business_key.in_(chunk))))  # type: ignore[attr-defined]
            return found

        workers = self.settings.ingest_workers
        parallel = validated is None and workers > 0 and source.size >= self.settings.parallel_parse_min_bytes
        with contextlib.ExitStack() as stack:
            if validated is not None:
                batches: Iterable[PreparedBatch] = validated
            elif parallel:
                # Validation in other processes, storing here (gateway/exchange/parallel.py).
                batches = stack.enter_context(
                    ParsedInProcesses(adapter, source, exchange.id, batch, workers, self.plugins.reasons())
                )
                log.info("exchange %s: %s validated by %d parsing process(es)", exchange.id, shown(source.name), workers)
            else:
                if progress is not None:
                    opener = source.open_binary
                    source.open_binary = lambda: cast(BinaryIO, CountingReader(opener(), progress))  # type: ignore[method-assign]
                batches = RowPreparer(adapter, exchange.id, self.plugins.reasons()).batches(source, batch)
            read = 0
            for prepared in batches:
                rows += prepared.rows
                rejected += prepared.rejected
                warnings += prepared.warnings
                versions.update(prepared.versions)
                self._flush(session, exchange, tree, prepared.records, insert_many=insert_many, stored=stored)
                if prepared.issues:
                    insert_many(RowError.__table__, ISSUE_KEYS, prepared.issues)  # type: ignore[attr-defined]
                if parallel and progress is not None and prepared.read > read:
                    progress(prepared.read - read)
                    read = prepared.read
        exchange.rows += rows
        exchange.rejected += rejected
        exchange.warnings += warnings
        exchange.status = "processed"
        exchange.processed_at = utcnow()
        report_sha = None
        if exchange.rejected:
            report_sha = write_report(self._report_path(exchange), self._errors(session, exchange.id))
        self._seal(session, exchange, tree, versions, report_sha)

    def _flush(
        self,
        session: Session,
        exchange: Exchange,
        tree: TreeBuilder,
        pending: list[tuple[str, str, str, str, str, int, bytes]],
        insert_many: Callable[[_Table, tuple[str, ...], Sequence[tuple[object, ...]]], None] | None = None,
        stored: Callable[[str, list[str]], list[StoredVersion]] | None = None,
    ) -> None:
        """Store a batch of `PreparedBatch.records`: dedupe by business key against what is
        stored (a duplicate, a new key, or a correction = next version), insert, append
        their leaf hashes to the Merkle tree.
        `insert_many` and `stored` are _store_rows' faster SQLite paths; without them,
        Core statements."""
        if not pending:
            return
        # contract -> business key -> (latest stored version, its hash), for this batch's keys.
        latest: dict[str, dict[str, tuple[int, str]]] = {}
        by_contract: dict[str, set[str]] = {}
        for item in pending:
            keys = by_contract.get(item[0])
            if keys is None:
                keys = by_contract[item[0]] = set()
            keys.add(item[2])
        connection = session.connection()  # Core, not the ORM's execute: plain rows are all that is needed
        for contract, keys in by_contract.items():
            known = latest[contract] = {}
            key_list = list(keys)
            if stored is not None:
                found: Iterable[StoredVersion] = stored(contract, key_list)
            elif connection.dialect.name == "postgresql":
                found = _stored_on_postgresql(connection, contract, key_list)
            else:
                found = [
                    row
                    for start in range(0, len(key_list), 500)
                    for row in connection.execute(
                        select(Record.business_key, Record.version, Record.record_hash).where(
                            Record.contract == contract, Record.business_key.in_(key_list[start : start + 500])  # type: ignore[attr-defined]
                        )
                    )
                ]
            for key, version, record_hash in found:
                seen = known.get(key)
                if seen is None or seen[0] < version:
                    known[key] = (version, record_hash)
        inserts = []
        leaves: list[bytes] = []
        exchange_id, leaf, append = exchange.id, tree.size, leaves.append
        duplicates = corrected = 0
        for contract, schema_version, key, record_hash, payload, row, leaf_hash in pending:
            known = latest[contract]
            seen = known.get(key)
            if seen is not None and seen[1] == record_hash:
                duplicates += 1
                continue
            if seen is None:
                version = 1
            else:
                version = seen[0] + 1
                corrected += 1
            known[key] = (version, record_hash)
            inserts.append((exchange_id, contract, schema_version, key, version, record_hash, payload, row, leaf))
            append(leaf_hash)
            leaf += 1
        tree.extend_leaf_hashes(leaves)
        if duplicates:  # once per batch: each assignment to a mapped attribute is an ORM event
            exchange.duplicates += duplicates
        if corrected:
            exchange.corrected += corrected
        if inserts:
            # executemany, not the ORM bulk path: no per-row object bookkeeping.
            columns = ("exchange_id", "contract", "schema_version", "business_key", "version", "record_hash", "payload", "row_number", "leaf_index")
            if insert_many is not None:
                insert_many(Record.__table__, columns, inserts)  # type: ignore[attr-defined]
            else:
                session.connection().execute(Record.__table__.insert(), [dict(zip(columns, row)) for row in inserts])  # type: ignore[attr-defined]
            exchange.accepted += len(inserts)

    def _errors(self, session: Session, exchange_id: int | None) -> Iterator[RowError]:
        return session.exec(
            select(RowError)
            .where(RowError.exchange_id == exchange_id, RowError.level == "error")
            .order_by(RowError.row_number, RowError.id)  # type: ignore[arg-type]
            .execution_options(yield_per=1000)
        )

    def _seal(
        self,
        session: Session,
        exchange: Exchange,
        tree: TreeBuilder,
        contracts: dict[str, str],
        report_sha256: str | None,
    ) -> Receipt:
        """Append the exchange's receipt to the ledger, inside the exchange's transaction."""
        if exchange.outbox_stem is None:
            earlier = session.exec(
                select(Exchange.id).where(
                    Exchange.department == exchange.department,
                    Exchange.file_name == exchange.file_name,
                    Exchange.id < exchange.id,  # type: ignore[operator]
                )
            ).first()
            exchange.outbox_stem = fit(exchange.file_name) if earlier is None else fit(f"{exchange.file_name}.exchange-{exchange.id}")
        if session.get_bind().dialect.name == "postgresql":
            # One gapless chain across workers: sealing takes the ledger lock until commit
            # (SQLite's BEGIN IMMEDIATE already serializes whole exchanges).
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK})
        last = session.exec(select(Receipt).order_by(Receipt.sequence.desc()).limit(1)).first()  # type: ignore[attr-defined]
        sequence = last.sequence + 1 if last else 1
        previous = last.sha256 if last else GENESIS
        document = receipt_document(
            exchange,
            sequence=sequence,
            previous_sha256=previous,
            key_fingerprint=self.signer.fingerprint,
            merkle_root=tree.root().hex(),
            merkle_size=tree.size,
            report_sha256=report_sha256,
            contracts=contracts,
        )
        body = receipt_bytes(document)
        receipt = Receipt(
            sequence=sequence,
            exchange_id=exchange.id,  # type: ignore[arg-type]  # SQLModel: the key is int | None
            body=body.decode("utf-8"),
            signature=self.signer.sign(body),
            sha256=sha256_hex(body),
            previous_sha256=previous,
            key_fingerprint=self.signer.fingerprint,
        )
        session.add(exchange)
        session.add(receipt)
        session.flush()
        return receipt

    # -- rejection and completion -----------------------------------------------

    def _reject(self, exchange: Exchange, found: FoundFile, rejected: FileRejected, archive: bool) -> Outcome:
        zh, en = FILE_REASONS.get(rejected.code) or self.plugins.reason_text(rejected.code, rejected.code)
        detail = f"{en}: {rejected.detail}" if rejected.detail else en
        with session_scope(self.engine) as session:
            exchange = session.merge(exchange)
            exchange.status, exchange.reason_code, exchange.reason = "rejected", rejected.code, detail
            exchange.rows = exchange.accepted = exchange.rejected = exchange.duplicates = exchange.corrected = 0
            exchange.warnings = 0
            exchange.processed_at = utcnow()
            session.add(
                RowError(
                    exchange_id=exchange.id,  # type: ignore[arg-type]  # SQLModel: the key is int | None
                    row_number=rejected.row or 0,
                    field="(file)",
                    column_name=rejected.field,
                    value_masked="",
                    code=rejected.code,
                    reason_zh=zh,
                    reason_en=detail,
                )
            )
            session.flush()
            report_sha = write_report(self._report_path(exchange), self._errors(session, exchange.id))
            self._seal(session, exchange, TreeBuilder(), {}, report_sha)
            session.expunge(exchange)
        log.warning("exchange %s: file %s rejected: %s", exchange.id, mask_file_path(found.path), rejected.code)
        return self._finish(exchange, found, archive=archive)

    def _refuse_unreadable(self, found: FoundFile, kind: str) -> Outcome:
        with session_scope(self.engine) as session:
            exchange = Exchange(
                department=found.department,
                file_name=found.name,
                source_path=found.path,
                sha256=sha256_hex(b""),
                size=0,
                attempts=1,
            )
            session.add(exchange)
            session.flush()
            session.expunge(exchange)
        return self._reject(exchange, found, FileRejected(kind), archive=True)

    def _report_path(self, exchange: Exchange) -> Path:
        return self.settings.staging_dir / f"exchange-{exchange.id}.errors.csv"

    def _finish(self, exchange: Exchange, found: FoundFile, *, archive: bool) -> Outcome:
        """Deliver the outbox files and move the source; safe to repeat after a crash."""
        with session_scope(self.engine) as session:
            receipt = session.exec(select(Receipt).where(Receipt.exchange_id == exchange.id)).one()
            has_errors = session.exec(
                select(RowError.id).where(RowError.exchange_id == exchange.id, RowError.level == "error").limit(1)
            ).first() is not None
            report = self._report_path(exchange)
            if has_errors and not report.exists():
                write_report(report, self._errors(session, exchange.id))
        stem = exchange.outbox_stem or exchange.file_name
        department = exchange.department
        transport = self.transport_for(department)
        written: list[str] = []
        scratch = self.settings.staging_dir / f"exchange-{exchange.id}"
        try:
            if has_errors:
                transport.put(department, "outbox", f"{stem}.errors.csv", report)
                written.append(f"{department}/outbox/{stem}.errors.csv")
            signature, body = scratch.with_suffix(".asc"), scratch.with_suffix(".json")
            signature.write_text(receipt.signature, encoding="ascii")
            body.write_bytes(receipt.body.encode("utf-8"))
            transport.put(department, "outbox", f"{stem}.receipt.json.asc", signature)
            transport.put(department, "outbox", f"{stem}.receipt.json", body)
            written += [f"{department}/outbox/{stem}.receipt.json", f"{department}/outbox/{stem}.receipt.json.asc"]
            archived = None
            deferred = archive and found.kind == "file" and self.arrival.taken_early(found)
            if deferred:
                # Taken on the short settle alone (it looked complete): a client may only be
                # pausing. Receipted now; moved once quiet for arrival_wait_seconds, and the
                # bytes its receipt signs are kept meanwhile (gateway/intake/arrival.py).
                held = self._held_copy(exchange)
                if not held.exists():
                    source = self._staged.get(found.path)
                    if source is None:
                        raise TransportError(f"{found.path}: the staged copy is gone; retried on the next pass")
                    shutil.copyfile(source, held)
                self.arrival.defer(found)
                transport.remove(department, "outbox", pending_name(found.name))
                log.info(
                    "exchange %s: %s/inbox/%s receipted; it stays in the inbox until unchanged for %.0f s, then moves to processed/",
                    exchange.id, department, shown(found.name), self.settings.arrival_wait_seconds,
                )
            elif archive:
                folder = "rejected" if exchange.status == "rejected" else "processed"
                name = self._archive_name(found, folder, exchange)
                if exchange.status == "rejected" and has_errors:
                    transport.put(department, folder, f"{name}.errors.csv", report)
                self.drops.archive_signature(found, folder, name)
                self._archive_manifest(transport, found, folder, name)
                archived = self._archive(transport, exchange, found, folder, name)
                transport.remove(department, "outbox", pending_name(found.name))
                self._pending_noted = {key for key in self._pending_noted if key[:2] != (department, found.path)}
            else:
                archived = f"(ingested from {found.path})"
            if not deferred:
                with session_scope(self.engine) as session:
                    row = session.get(Exchange, exchange.id)
                    assert row is not None
                    row.archived_path = archived
                exchange.archived_path = archived
                self._held_copy(exchange).unlink(missing_ok=True)
        finally:
            for leftover in (report, scratch.with_suffix(".asc"), scratch.with_suffix(".json")):
                leftover.unlink(missing_ok=True)
        log.info(
            "exchange %s (%s, %s): %s, %d accepted, %d rejected, %d duplicate",
            exchange.id, department, shown(exchange.file_name), exchange.status,
            exchange.accepted, exchange.rejected, exchange.duplicates,
        )
        if exchange.status == "processed":  # deliveries to the entitled departments (gateway/routing/); never raises
            self.routing.exchange_committed(exchange.id)
            obligation_hooks.exchange_committed(self.engine, self.settings, exchange.id)  # submissions met; never raises
        return Outcome(
            exchange_id=exchange.id or 0,
            department=department,
            file_name=exchange.file_name,
            status=exchange.status,
            accepted=exchange.accepted,
            rejected=exchange.rejected,
            duplicates=exchange.duplicates,
            corrected=exchange.corrected,
            reason=exchange.reason,
            receipt=f"{department}/outbox/{stem}.receipt.json",
            files=written,
        )

    def _archive_name(self, found: FoundFile, folder: str, exchange: Exchange) -> str:
        name = fit(found.name)
        if self.transport_for(found.department).exists(found.department, folder, name):
            path = PurePosixPath(name)
            name = fit(f"{path.stem}.exchange-{exchange.id}{path.suffix}")
        return name

    def _archive(self, transport: Transport, exchange: Exchange, found: FoundFile, folder: str, name: str) -> str:
        """Keep in processed/ (or rejected/) exactly the bytes the receipt signs.

        The inbox file is hashed again first: unchanged, it is moved there; changed since
        it was staged (a client still writing, rows appended), the staged copy is kept
        instead and the file stays in the inbox, where its new content becomes a new
        exchange that supersedes this one (`Exchange.left_changed`, `supersedes`)."""
        if found.kind != "file":  # a link, a folder, a device: never read, moved as it is
            return transport.archive(found, folder, name)
        current = transport.digest(found)
        if current == exchange.sha256:
            return transport.archive(found, folder, name)
        staged = self._staged.get(found.path)
        if staged is None or not staged.exists() or sniff_file(staged).sha256 != exchange.sha256:
            raise TransportError(f"{found.path} changed since it was staged, and the staged copy is gone; retried on the next pass")
        transport.put(found.department, folder, name, staged)
        if current is not None:
            with session_scope(self.engine) as session:
                row = session.get(Exchange, exchange.id)
                assert row is not None
                row.left_changed = True
            log.warning(
                "exchange %s: %s/inbox/%s changed after it was staged; the staged bytes (those its receipt signs) "
                "were archived, and its new content is taken as a new exchange superseding this one",
                exchange.id, found.department, shown(found.name),
            )
        url = getattr(transport, "url", None)
        return url(found.department, folder, name) if url is not None else f"{found.department}/{folder}/{name}"


def _failure(exc: BaseException) -> str:
    """What a refusal says of a library's failure: its kind, never its text."""
    if isinstance(exc, UnicodeError):
        return f"{type(exc).__name__}: the file holds text that cannot be stored as Unicode (for example a lone surrogate)"
    name = type(exc).__name__
    module = type(exc).__module__.split(".")[0]
    return f"{module}.{name}" if module not in ("builtins", "gateway") else name


def _sweep_staging(staging: Path) -> None:
    """Remove staged copies left by gateway processes that died (named PID-UUID.src).
    A live process's copies are kept: several processes may share one home."""
    for path in staging.glob("*-*.src"):
        pid = path.name.split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            continue


def open_gateway(home: Path | None = None) -> Gateway:
    from gateway.config import load_settings

    return Gateway(load_settings(home))


def iter_exchanges(session: Session, department: str | None = None, limit: int = 50) -> Iterable[Exchange]:
    query = select(Exchange).order_by(Exchange.id.desc()).limit(limit)  # type: ignore[union-attr]
    if department:
        query = query.where(Exchange.department == department)
    return session.exec(query)


__all__ = ["Gateway", "Outcome", "open_gateway", "iter_exchanges", "os"]
