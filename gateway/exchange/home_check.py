"""`gateway verify-home`: proof that a home is complete (主目录完整性), after a restore or an upgrade.

Four things must hold, each failure a finding in Chinese first with what to do:

1. the database is at this gateway's schema revision;
2. the ledger verifies from genesis (every receipt signed and chained, every checkpoint
   matching), and its latest checkpoint matches or extends the one the officer kept;
3. every receipt's exchange exists with the file hash the receipt signs, and its records
   exist: their leaves give the Merkle root and size the receipt signs;
4. every archived file matches the sha256 its receipt signs.

Retention (gateway/retention/) purges records' payloads and archived files while keeping
their leaf hashes; `Retention` is the seam (`gateway.retention.home.StoredRetention` reads
the purge table): what it reports as purged is accepted as "purged on ... under rule ...",
never as missing, and its kept leaf hash stands in for the payload in the Merkle root.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from gateway.config import Settings
from gateway.masking import mask_file_name, mask_file_path
from gateway.receipts.ledger import Signed, check_checkpoint, iter_leaf_hashes, load_store, verify_ledger
from gateway.receipts.merkle import leaf_hash, root_from_leaf_hashes
from gateway.receipts.signing import read_history
from gateway.receipts.verify import Verifier
from gateway.store.migrate import current_revision, head_revision
from gateway.store.models import Exchange, Receipt, Record

SHOWN_PER_EXCHANGE = 5


@dataclass(frozen=True)
class Purge:
    """What retention removed, and why (清除:规则与日期)."""

    rule: str
    purged_on: str
    leaf_hash: bytes | None = None
    """For a record: the leaf hash kept in place of the payload."""


class Retention(Protocol):
    """What verify-home asks of retention: which records and archived files of an
    exchange were purged under a rule."""

    def purged_records(self, exchange_id: int) -> Mapping[int, Purge]:
        """Leaf index -> purge, for the exchange's purged records."""
        ...

    def purged_file(self, exchange_id: int) -> Purge | None:
        """The purge of the exchange's archived file, if it was purged."""
        ...


class NoRetention:
    """Nothing is ever purged (no `[retention]` rules yet)."""

    def purged_records(self, exchange_id: int) -> Mapping[int, Purge]:
        return {}

    def purged_file(self, exchange_id: int) -> Purge | None:
        return None


@dataclass
class Finding:
    """One thing wrong with the home: what, in Chinese and English, and what to do."""

    zh: str
    en: str
    fix_zh: str
    fix_en: str

    def text(self) -> str:
        return f"{self.zh}。处理:{self.fix_zh} / {self.en}. To do: {self.fix_en}"


@dataclass
class HomeReport:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    receipts: int = 0
    records: int = 0
    archived: int = 0
    latest: tuple[str, int, str] | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


RESTORE_FIX_ZH = "从较早的备份恢复,或查明谁改动了主目录"
RESTORE_FIX_EN = "restore from an earlier backup, or find out who changed the home"


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check_schema(engine: Engine, report: HomeReport) -> bool:
    revision, head = current_revision(engine), head_revision()
    if revision == head:
        return True
    report.findings.append(Finding(
        f"数据库结构版本为 {revision or '(空)'},本程序需要 {head}",
        f"the database is at schema revision {revision or '(none)'}, this gateway needs {head}",
        "运行 gateway db upgrade(先备份)", "run `gateway db upgrade` (after a backup)",
    ))
    return False


def _check_ledger(engine: Engine, settings: Settings, since: Signed | None, report: HomeReport) -> None:
    view = load_store(engine)
    ledger = verify_ledger(view, settings.keys_dir, since)
    report.receipts, report.latest = ledger.receipts, ledger.latest
    for check in ledger.checks:
        if check.ok:
            continue
        if check.name == "checkpoints" and not view.checkpoints:
            # A backup taken mid-pass: receipts, no checkpoint yet (the pass signs one at its
            # end). The receipts were checked by signature and chain all the same.
            report.notes.append("账本尚无检查点,下一轮处理会签署一个 / the ledger has no checkpoint yet; the next pass "
                                "signs one (or run `gateway ledger checkpoint`)")
        elif check.name == "since checkpoint" and since is not None and not view.checkpoints:
            _check_prefix(engine, settings, since, report)
        elif check.name == "since checkpoint":
            report.findings.append(_since_finding(check.detail))
        else:
            report.findings.append(Finding(
                f"回执账本校验失败({check.name})", f"the receipt ledger does not verify ({check.name}): {check.detail}",
                "运行 gateway ledger verify 查看详情;" + RESTORE_FIX_ZH,
                "run `gateway ledger verify` for the details; " + RESTORE_FIX_EN,
            ))


def _since_finding(detail: str) -> Finding:
    return Finding(
        "账本未包含您保存的检查点(账本被截短或改动)",
        f"the ledger does not match or extend the checkpoint you kept: {detail}",
        "从包含该检查点的备份恢复;仍不符则报告安全员",
        "restore from a backup that holds that checkpoint; if it still fails, tell the security officer",
    )


def _check_prefix(engine: Engine, settings: Settings, since: Signed, report: HomeReport) -> None:
    """The kept checkpoint against the receipts themselves, when the ledger has no
    checkpoint of its own yet: its root must be the root of the first tree_size receipts."""
    with Verifier(read_history(settings.keys_dir), settings.keys_dir) as verifier:
        checks, size, root = check_checkpoint(since, verifier)
    if size is None or root is None:
        report.findings.append(_since_finding("your checkpoint is not genuine: " + "; ".join(c.detail for c in checks if not c.ok)))
        return
    leaves = list(iter_leaf_hashes(engine, size))
    if len(leaves) < size:
        report.findings.append(_since_finding(f"your checkpoint covers {size} receipts, the ledger holds only {len(leaves)}"))
    elif root_from_leaf_hashes(leaves) != root:
        report.findings.append(_since_finding(f"the first {size} receipts do not give your checkpoint's root"))


def _find_unarchived(settings: Settings, exchange: Exchange, sha256: str) -> str | None:
    """Where the bytes of a receipted exchange not yet moved to processed/ are: still in the
    inbox, held in staging, or (moved after the backup's database copy) in processed/ or
    rejected/ under its name."""
    root = settings.mailbox_root
    candidates = [root / exchange.source_path, settings.staging_dir / f"held-{exchange.id}.src"]
    for folder in ("processed", "rejected"):
        directory = root / exchange.department / folder
        name = Path(exchange.source_path).name
        candidates += [directory / name, *sorted(directory.glob(f"{Path(name).stem}*"))]
    for candidate in candidates:
        if candidate.is_file() and _sha256(candidate) == sha256:
            return str(candidate.relative_to(settings.home)) if candidate.is_relative_to(settings.home) else str(candidate)
    return None


def _check_exchange(
    session: Session, settings: Settings, receipt: Receipt, retention: Retention, report: HomeReport
) -> None:
    document = json.loads(receipt.body)
    exchange_id = receipt.exchange_id
    exchange = session.get(Exchange, exchange_id)
    receipt_id = f"R{receipt.sequence:08d}"
    if exchange is None or exchange.sha256 != document.get("file_sha256") or exchange.department != document.get("department"):
        report.findings.append(Finding(
            f"回执 {receipt_id} 的交换 {exchange_id} 不存在或与回执不符",
            f"receipt {receipt_id}: its exchange {exchange_id} is missing or no longer what the receipt signs",
            RESTORE_FIX_ZH, RESTORE_FIX_EN,
        ))
        return
    shown = mask_file_name(exchange.file_name)

    # Records: their leaves, in leaf order, give the root and size the receipt signs.
    merkle = document.get("merkle") or {}
    size, root = merkle.get("size"), merkle.get("root")
    purged = retention.purged_records(exchange_id)
    rows = session.execute(
        select(
            col(Record.leaf_index), col(Record.row_number), col(Record.business_key), col(Record.payload), col(Record.record_hash)
        )
        .where(col(Record.exchange_id) == exchange_id)
        .order_by(col(Record.leaf_index))
    ).all()
    stored = {int(index): (int(row), str(key), str(payload), str(sha)) for index, row, key, payload, sha in rows}
    report.records += len(stored)
    if isinstance(size, int) and size >= 0:
        leaves: list[bytes] = []
        missing: list[int] = []
        for index in range(size):
            if index in purged and purged[index].leaf_hash is not None:
                # purged under a retention rule: the row stays, its payload is gone, its leaf hash kept
                leaves.append(purged[index].leaf_hash or b"")
            elif index in stored:
                leaves.append(leaf_hash(stored[index][2].encode("utf-8")))
            else:
                missing.append(index)
        extra = sorted(set(stored) - set(range(size)))
        if missing:
            listed = ", ".join(str(i) for i in missing[:SHOWN_PER_EXCHANGE]) + (" …" if len(missing) > SHOWN_PER_EXCHANGE else "")
            report.findings.append(Finding(
                f"交换 {exchange_id}({exchange.department},{shown})缺少 {len(missing)} 条记录(叶序号 {listed})",
                f"exchange {exchange_id} ({exchange.department}, {shown}): {len(missing)} record(s) missing (leaf index {listed}), "
                "not recorded as purged under a retention rule",
                RESTORE_FIX_ZH, RESTORE_FIX_EN,
            ))
        changed = _changed_leaves({index: row for index, row in stored.items() if index not in purged})
        if changed[0]:
            report.findings.append(Finding(
                f"交换 {exchange_id}({exchange.department},{shown})的记录被改动{changed[0]}",
                f"exchange {exchange_id} ({exchange.department}, {shown}): record(s) changed since receipt {receipt_id} "
                f"signed them{changed[1]}",
                RESTORE_FIX_ZH, RESTORE_FIX_EN,
            ))
        elif not missing and size and root_from_leaf_hashes(leaves).hex() != root:
            report.findings.append(Finding(
                f"交换 {exchange_id}({exchange.department},{shown})的记录与回执 {receipt_id} 签署的默克尔根不符",
                f"exchange {exchange_id} ({exchange.department}, {shown}): its records no longer give the Merkle root its "
                f"receipt {receipt_id} signs",
                RESTORE_FIX_ZH, RESTORE_FIX_EN,
            ))
        if extra:
            report.findings.append(Finding(
                f"交换 {exchange_id}({shown})有回执未签署的记录(叶序号 {', '.join(map(str, extra[:SHOWN_PER_EXCHANGE]))})",
                f"exchange {exchange_id} ({shown}): records its receipt does not sign (leaf index "
                f"{', '.join(map(str, extra[:SHOWN_PER_EXCHANGE]))})",
                RESTORE_FIX_ZH, RESTORE_FIX_EN,
            ))

    # The archived file: exactly the bytes the receipt signs.
    signed_sha = str(document.get("file_sha256"))
    archived = exchange.archived_path
    if retention.purged_file(exchange_id) is not None:
        return
    if archived is None:
        where = _find_unarchived(settings, exchange, signed_sha)
        if where is None:
            report.findings.append(Finding(
                f"交换 {exchange_id}({exchange.department},{shown})已出回执,但其文件不在收件箱、暂存区或归档中",
                f"exchange {exchange_id} ({exchange.department}, {shown}) is receipted but its file is in neither the inbox, "
                "staging nor the archive",
                RESTORE_FIX_ZH, RESTORE_FIX_EN,
            ))
        else:
            report.notes.append(f"交换 {exchange_id} 尚未归档,文件在 {mask_file_path(where)} / exchange {exchange_id} not yet "
                                f"archived; its bytes are at {mask_file_path(where)} (the next pass moves them)")
        return
    if archived.startswith("(") or "://" in archived:
        return  # ingested by hand, kept elsewhere, or on an SFTP server: not in this home
    path = settings.mailbox_root / archived
    if not path.is_file():
        report.findings.append(Finding(
            f"交换 {exchange_id} 的归档文件 {mask_file_path(archived)} 不存在",
            f"exchange {exchange_id}: the archived file {mask_file_path(archived)} is missing",
            RESTORE_FIX_ZH, RESTORE_FIX_EN,
        ))
    elif _sha256(path) != signed_sha:
        report.findings.append(Finding(
            f"交换 {exchange_id} 的归档文件 {mask_file_path(archived)} 与回执 {receipt_id} 签署的 sha256 不符",
            f"exchange {exchange_id}: the archived file {mask_file_path(archived)} does not match the sha256 its receipt "
            f"{receipt_id} signs",
            RESTORE_FIX_ZH, RESTORE_FIX_EN,
        ))
    else:
        report.archived += 1


def _changed_leaves(stored: Mapping[int, tuple[int, str, str, str]]) -> tuple[str, str]:
    """The records whose payload no longer has the sha256 stored beside it, by leaf index
    and source row (never by business key: it may be an ID number); a root can fail
    without one when hashes were changed too."""
    named = [
        f"{index} (row {row})"
        for index, (row, _key, payload, record_hash) in sorted(stored.items())
        if hashlib.sha256(payload.encode("utf-8")).hexdigest() != record_hash
    ]
    if not named:
        return "", ""
    shown = ", ".join(named[:SHOWN_PER_EXCHANGE])
    return f"(叶序号:{shown})", f"; changed record(s), leaf index: {shown}"


def verify_home(
    settings: Settings, engine: Engine, since: Signed | None = None, retention: Retention | None = None
) -> HomeReport:
    """Every check of the module docstring; the report lists the findings."""
    report = HomeReport()
    if not _check_schema(engine, report):
        return report
    _check_ledger(engine, settings, since, report)
    retention = retention or NoRetention()
    with Session(engine) as session:
        receipts = session.exec(select(Receipt).order_by(col(Receipt.sequence))).scalars().all()  # type: ignore[call-overload]
        for receipt in receipts:
            _check_exchange(session, settings, receipt, retention, report)
            session.expunge_all()
    return report
