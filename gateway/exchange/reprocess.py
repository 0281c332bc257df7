"""Reprocessing a refused file (重新处理), once its cause is fixed: `gateway exchanges
reprocess ID` and the console's button.

The file's bytes are taken from where the gateway kept them (the department's rejected/
folder, or the file a clerk ingested by hand, or a pulled page's copy), checked against the
sha256 the first receipt signs, and processed again as a new exchange with its own receipt.
The new exchange `supersedes` the first, the link a changed inbox file's new content uses
(docs/operations.md, "Reprocessing a refused file"). Its bytes are archived again under the
new exchange (processed/ when it is taken), and the first exchange's copy stays where its
receipt says, so that both receipts keep matching an archived file.

Refused: an exchange that was processed (or was a duplicate), one already reprocessed or
superseded, one still being processed, and one whose file is gone or changed.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from gateway.errors import GatewayError, TransportError
from gateway.exchange.lifecycle import Gateway, Outcome
from gateway.intake.names import fit
from gateway.intake.signed_drops import SIGNATURE_SUFFIX
from gateway.intake.staging import Sniffed, sniff_file
from gateway.intake.transports import FoundFile
from gateway.masking import mask_file_path
from gateway.receipts.ledger import checkpoint_after_pass
from gateway.store import Exchange, session_scope
from gateway.store.audit import record_event

INGESTED = "(ingested from "


class ReprocessRefused(GatewayError):
    """Why an exchange cannot be reprocessed (不能重新处理), Chinese first."""


@dataclass(frozen=True)
class Reprocessed:
    """The first exchange, the new one, and what became of the file."""

    first: int
    outcome: Outcome

    @property
    def message(self) -> str:
        o = self.outcome
        if o.status == "processed":
            said = f"已重新处理为交换 {o.exchange_id}:接收 {o.accepted} 条,拒收 {o.rejected} 条,重复 {o.duplicates} 条"
            en = f"reprocessed as exchange {o.exchange_id}: {o.accepted} accepted, {o.rejected} rejected, {o.duplicates} duplicate"
        elif o.status == "duplicate":
            said = f"已重新处理为交换 {o.exchange_id}:与已处理的文件相同,未重复保存"
            en = f"reprocessed as exchange {o.exchange_id}: the same bytes were processed before, nothing stored twice"
        else:
            said = f"已重新处理为交换 {o.exchange_id},但仍被拒收:{o.reason}"
            en = f"reprocessed as exchange {o.exchange_id}, refused again: {o.reason}"
        return f"交换 {self.first} {said} / exchange {self.first} {en}; receipt {o.receipt}"


@dataclass(frozen=True)
class _Kept:
    """Where the bytes of a refused exchange are kept: a mailbox folder, or a local path."""

    folder: str | None
    name: str
    local: Path | None = None


def successor(gateway: Gateway, exchange_id: int) -> int | None:
    """The exchange that supersedes this one (its reprocessing, or a changed file's new content)."""
    with session_scope(gateway.engine) as session:
        return session.exec(select(Exchange.id).where(Exchange.supersedes == exchange_id)).first()


def fetch_original(gateway: Gateway, exchange_id: int, target: Path) -> Exchange:
    """Copy an exchange's original file — exactly the bytes its receipt signs — to `target`
    (the console's download, 下载原始文件). Raises ReprocessRefused when there is no such
    exchange, or its file is gone or no longer matches."""
    with session_scope(gateway.engine) as session:
        first = session.get(Exchange, exchange_id)
        if first is None:
            raise ReprocessRefused(f"没有交换 {exchange_id} / No exchange {exchange_id}.")
        session.expunge(first)
    _fetch(gateway, first, target)
    return first


def reprocess(gateway: Gateway, exchange_id: int, who: str) -> Reprocessed:
    """Process a refused exchange's file again as a new exchange superseding it; audited.
    `who` says who asked (`alice (operator, console)`, `gateway exchanges reprocess`)."""
    with session_scope(gateway.engine) as session:
        first = session.get(Exchange, exchange_id)
        if first is None:
            raise ReprocessRefused(f"没有交换 {exchange_id} / No exchange {exchange_id}. See `gateway exchanges list`.")
        session.expunge(first)
    _check_refused(gateway, first)
    scratch = gateway.settings.staging_dir / f"{os.getpid()}-{uuid.uuid4().hex}.src"
    try:
        kept, sniffed = _fetch(gateway, first, scratch)
        found = FoundFile(first.department, first.file_name, first.source_path, sniffed.size, scratch.stat().st_mtime)
        signature_at = (kept.folder, kept.name) if kept.folder is not None else None
        try:
            outcome = gateway._process_staged(  # noqa: SLF001 - the lifecycle's own path for one staged file
                found, scratch, sniffed, archive=False, supersedes=exchange_id, signature_at=signature_at
            )
        except IntegrityError as exc:  # uq_exchange_supersedes: another process reprocessed it meanwhile
            if successor(gateway, exchange_id) is None:
                raise
            _check_refused(gateway, first)
            raise AssertionError("unreachable") from exc
        assert outcome is not None  # archive=False never defers
        archived = _archive(gateway, first, kept, outcome, scratch)
    finally:
        scratch.unlink(missing_ok=True)
    with session_scope(gateway.engine) as session:
        row = session.get(Exchange, outcome.exchange_id)
        assert row is not None
        row.archived_path = archived
        record_event(
            session, "exchange-reprocessed", first.department,
            detail=f"exchange {exchange_id} ({first.reason_code}) reprocessed as exchange {outcome.exchange_id} "
            f"({outcome.status}) by {who}",
        )
    checkpoint_after_pass(gateway.engine, gateway.signer, gateway.settings.home)
    return Reprocessed(first=exchange_id, outcome=outcome)


def _check_refused(gateway: Gateway, first: Exchange) -> None:
    if first.status in ("processed", "duplicate"):
        raise ReprocessRefused(
            f"交换 {first.id} 已正常处理({first.status}),无需重新处理 / exchange {first.id} was {first.status}: "
            "only a refused or failed file is reprocessed. A corrected file is dropped into the inbox again."
        )
    if first.status != "rejected":
        raise ReprocessRefused(
            f"交换 {first.id} 正在处理中({first.status}),请稍后再试 / exchange {first.id} is still being processed; try again after the pass."
        )
    later = successor(gateway, first.id or 0)
    if later is not None:
        raise ReprocessRefused(
            f"交换 {first.id} 已由交换 {later} 重新处理或取代,不能再次处理 / exchange {first.id} was already "
            f"reprocessed (or superseded) by exchange {later}; reprocess exchange {later} if it was refused too."
        )


def _candidates(first: Exchange) -> list[_Kept]:
    """Where the first exchange's bytes are kept, by its archived path."""
    archived = first.archived_path or ""
    if archived.startswith(INGESTED):
        origin = archived[len(INGESTED) : -1]
        if origin.startswith("/"):  # `gateway ingest FILE`: the file was left where it was
            return [_Kept(None, PurePosixPath(origin).name, Path(origin))]
        # A pulled page (its URL): its copy is kept under the exchange's file name (gateway/pulls/).
        return [_Kept("rejected", fit(first.file_name))]
    parts = PurePosixPath(archived.split("://", 1)[1] if "://" in archived else archived).parts
    if len(parts) >= 3 and parts[-3] == first.department and parts[-2] in ("rejected", "processed"):
        return [_Kept(parts[-2], parts[-1])]
    return []


def _fetch(gateway: Gateway, first: Exchange, target: Path) -> tuple[_Kept, Sniffed]:
    """The first exchange's bytes, exactly those its receipt signs, copied to `target`."""
    transport = gateway.transport_for(first.department)
    changed = False
    for kept in _candidates(first):
        try:
            if kept.local is not None:
                if kept.local.is_symlink() or not kept.local.is_file():
                    continue
                target.write_bytes(kept.local.read_bytes())
                sniffed = sniff_file(target)
            else:
                sniffed = transport.fetch(first.department, kept.folder or "rejected", kept.name, target)
        except FileNotFoundError:
            continue
        except (TransportError, OSError) as exc:
            if isinstance(exc, TransportError) and "not a regular file" not in str(exc):
                raise  # the mailbox is unreachable: say so, nothing was done
            continue
        if sniffed.sha256 == first.sha256:
            return kept, sniffed
        changed = True
    where = mask_file_path(first.archived_path or f"{first.department}/rejected/{first.file_name}")
    if changed:
        raise ReprocessRefused(
            f"交换 {first.id} 的原始文件已被改动,与回执所签的 sha256 不符,不能重新处理 / the original file of exchange "
            f"{first.id} ({where}) no longer matches the sha256 its receipt signs. Ask the department to drop the file again."
        )
    raise ReprocessRefused(
        f"交换 {first.id} 的原始文件已不在(应在 {where}),不能重新处理 / the original file of exchange {first.id} is gone "
        f"(it was kept at {where}). Ask the department to drop the file again, or restore it there from a backup."
    )


def _archive(gateway: Gateway, first: Exchange, kept: _Kept, outcome: Outcome, staged: Path) -> str:
    """Where the new exchange's bytes are kept: taken, a copy in processed/ (beside its
    signature); refused again, the same copy the first exchange's receipt points to."""
    department = first.department
    transport = gateway.transport_for(department)
    if outcome.status != "processed":
        if kept.local is not None:
            return f"{INGESTED}{kept.local})"
        return first.archived_path or f"{department}/{kept.folder}/{kept.name}"
    path = PurePosixPath(fit(first.file_name))
    name = path.name
    if transport.exists(department, "processed", name):
        name = fit(f"{path.stem}.exchange-{outcome.exchange_id}{path.suffix}")
    transport.put(department, "processed", name, staged)
    if kept.folder is not None and transport.exists(department, kept.folder, kept.name + SIGNATURE_SUFFIX):
        signature = gateway.settings.staging_dir / f"{os.getpid()}-{uuid.uuid4().hex}.asc"
        try:
            transport.fetch(department, kept.folder, kept.name + SIGNATURE_SUFFIX, signature)
            transport.put(department, "processed", name + SIGNATURE_SUFFIX, signature)
        finally:
            signature.unlink(missing_ok=True)
    url = getattr(transport, "url", None)
    return str(url(department, "processed", name)) if url is not None else f"{department}/processed/{name}"
