"""Acknowledgements: a recipient drops `ACK-<delivery id>.json` into its own inbox (and,
optionally or when `require_signed_acks` is set, `ACK-<delivery id>.json.asc`, a detached
signature by one of its registered keys, uploaded first).

The file is a JSON object. It may name the delivery (`"delivery": 12`) and the sha256 of
the file it received (`"sha256": "..."`); when it does, both must match. A matched
acknowledgement records the time on the delivery and moves to `processed/`; a refused
one (unknown delivery, bad signature, not JSON, another file's sha256) moves to
`rejected/` with `ACK-<id>.json.errors.csv` beside it saying why.

ACK files are never taken as data drops: `without_acknowledgements` removes them from
every inbox listing the pipeline takes drops from.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlmodel import Session, select

from gateway import clock
from gateway.obligations.hooks import delivery_signed_off
from gateway.store.audit import now_utc, record_event
from gateway.errors import GatewayError, TransportError
from gateway.receipts.rejection_report import write_report
from gateway.store import session_scope
from gateway.store.models import Acknowledgement, Delivery, RowError
from gateway.intake.transports import FoundFile
from gateway.masking import mask_file_name, mask_file_path, scrub_message

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.config import Settings
    from gateway.receipts.keys import DepartmentKeys
    from gateway.routing.agreements import AgreementSet
    from gateway.services import GatewayServices


class Router(Protocol):
    """What the acknowledgements need of `gateway.routing.delivery.Router` (which builds them):
    its gateway, the departments' keys, the settings and the engine."""

    gateway: GatewayServices
    keys: DepartmentKeys

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

log = logging.getLogger("gateway")

ACK_NAME = re.compile(r"^ACK-0*(\d{1,12})\.json$", re.IGNORECASE)
MAX_ACK_BYTES = 64 * 1024
SIGNATURE = ".asc"


def is_acknowledgement(name: str) -> bool:
    """`ACK-….json` (any case): an acknowledgement, never a data drop."""
    lowered = name.lower()
    return lowered.startswith("ack-") and lowered.endswith(".json")


def without_acknowledgements(listed: list[FoundFile]) -> list[FoundFile]:
    """An inbox listing without acknowledgement files (the hook the pipeline calls before
    it takes drops). Symbolic links and special files stay, to be refused as drops."""
    return [found for found in listed if not (found.kind == "file" and is_acknowledgement(found.name))]


@dataclass
class AckOutcome:
    department: str
    file_name: str
    status: str
    delivery_id: int | None = None
    reason: str | None = None


class Refused(Exception):
    def __init__(self, reason: str, delivery_id: int | None = None):
        super().__init__(reason)
        self.reason, self.delivery_id = reason, delivery_id


class Acknowledgements:
    """Takes acknowledgements from the inboxes of the departments that receive deliveries."""

    def __init__(self, router: Router):
        self.router = router

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.router.settings

    def departments(self, agreements: AgreementSet | None) -> list[str]:
        """Departments that may acknowledge: recipients of an agreement or of a delivery."""
        names = {a.recipient for a in agreements.agreements} if agreements is not None else set()
        with Session(self.router.engine) as session:
            names.update(session.exec(select(Delivery.recipient).where(Delivery.status.in_(("delivered", "acknowledged"))).distinct()).all())  # type: ignore[attr-defined]
        return sorted(name for name in names if name in self.settings.departments)

    def collect(self, agreements: AgreementSet | None) -> list[AckOutcome]:
        outcomes = []
        now = time.time()
        for department in self.departments(agreements):
            transport = self.router.gateway.transport_for(department)
            try:
                listed = transport.list_inbox(department)
            except TransportError as exc:
                log.error("inbox of %s unreadable this pass (acknowledgements): %s", department, exc)
                continue
            names = {found.name for found in listed}
            for found in listed:
                if found.kind != "file" or not is_acknowledgement(found.name):
                    continue
                if now - found.mtime < self.settings.settle_seconds:
                    continue  # still being written, perhaps
                outcome = self.take(found, found.name + SIGNATURE in names, now)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    def take(self, found: FoundFile, signed: bool, now: float | None = None) -> AckOutcome | None:
        """Match one acknowledgement; None while it waits for its signature."""
        now = time.time() if now is None else now
        department, transport = found.department, self.router.gateway.transport_for(found.department)
        required = self.settings.require_signed_acks
        if not signed and required and now - found.mtime < self.settings.signature_wait_seconds:
            return None
        staged = self.settings.staging_dir / f"ack-{uuid.uuid4().hex}.json"
        try:
            sniffed = transport.stage(found, staged)
            sha256 = sniffed.sha256
            try:
                delivery_id, signer = self._check(found, staged, signed, required)
            except Refused as refused:
                return self._refuse(found, sha256, refused, signed)
            return self._accept(found, sha256, delivery_id, signer, signed)
        except (TransportError, OSError) as exc:
            log.error("%s: left in the inbox for the next pass: %s", mask_file_path(found.path), scrub_message(str(exc)))
            return None
        finally:
            staged.unlink(missing_ok=True)

    def _check(self, found: FoundFile, staged: Path, signed: bool, required: bool) -> tuple[int, str | None]:
        department = found.department
        match = ACK_NAME.match(found.name)
        delivery_id = int(match.group(1)) if match else None
        if delivery_id is None:
            raise Refused(f"{mask_file_name(found.name)}: an acknowledgement must be named ACK-<delivery id>.json, for example ACK-12.json")
        if staged.stat().st_size > MAX_ACK_BYTES:
            raise Refused(f"{found.name} is larger than an acknowledgement can be ({MAX_ACK_BYTES} bytes)", delivery_id)
        signer = None
        if signed:
            signer = self._verify(found, staged, delivery_id)
        elif required:
            raise Refused(
                f"{found.name} is not signed, and signed acknowledgements are required: upload "
                f"{found.name}{SIGNATURE} (a detached signature by {department}'s registered key) first, then {found.name}",
                delivery_id,
            )
        try:
            body = json.loads(staged.read_bytes().decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            raise Refused(f"{found.name} is not a JSON object in UTF-8", delivery_id) from None
        if not isinstance(body, dict):
            raise Refused(f"{found.name} is not a JSON object", delivery_id)
        named = body.get("delivery", body.get("delivery_id"))
        if named is not None and str(named).strip().lstrip("0") != str(delivery_id):
            raise Refused(f"{found.name} names delivery {str(named)[:20]!r} inside; the file name says {delivery_id}", delivery_id)
        with Session(self.router.engine) as session:
            delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.recipient != department or delivery.status not in ("delivered", "acknowledged"):
            # The same words whether it exists for another department or not at all.
            raise Refused(f"no delivery {delivery_id} was delivered to {department}", delivery_id)
        claimed = body.get("sha256")
        if claimed is not None and str(claimed).lower() != delivery.sha256:
            raise Refused(
                f"{found.name} acknowledges a file with sha256 {str(claimed)[:64]}, but {delivery.file_name} has {delivery.sha256}",
                delivery_id,
            )
        return delivery_id, signer

    def _verify(self, found: FoundFile, staged: Path, delivery_id: int) -> str:
        department = found.department
        transport = self.router.gateway.transport_for(department)
        try:
            verifier = self.router.keys.verifier(department)
        except GatewayError as exc:
            raise Refused(f"the key registry cannot be read: {exc}", delivery_id) from exc
        if verifier is None:
            raise Refused(f"{found.name}{SIGNATURE}: {department} has no registered key to check it with", delivery_id)
        scratch = self.settings.staging_dir / f"ack-{uuid.uuid4().hex}.asc"
        try:
            transport.stage(FoundFile(department, found.name + SIGNATURE, found.path + SIGNATURE, 0, 0.0), scratch)
            if scratch.stat().st_size > MAX_ACK_BYTES:
                raise Refused(f"{found.name}{SIGNATURE} is larger than a signature can be", delivery_id)
            with verifier:
                verdict = verifier.verify(staged, scratch.read_bytes())
        finally:
            scratch.unlink(missing_ok=True)
        if not verdict.genuine:
            raise Refused(
                f"{found.name}{SIGNATURE} is not a good signature by {department}'s registered key: {'; '.join(verdict.problems)}",
                delivery_id,
            )
        return verdict.fingerprint or ""

    def _accept(self, found: FoundFile, sha256: str, delivery_id: int, signer: str | None, signed: bool) -> AckOutcome:
        department = found.department
        with session_scope(self.router.engine) as session:
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            repeated = session.exec(
                select(Acknowledgement.id).where(
                    Acknowledgement.department == department,
                    Acknowledgement.delivery_id == delivery_id,
                    Acknowledgement.sha256 == sha256,
                    Acknowledgement.status == "accepted",
                )
            ).first()
            if repeated is None:
                ack = Acknowledgement(
                    department=department, file_name=found.name, delivery_id=delivery_id, sha256=sha256,
                    status="accepted", signed_by=signer, received_at=now_utc(),
                )
                session.add(ack)
                first = delivery.acknowledged_at is None
                if first:
                    delivery.acknowledged_at = clock.now().replace(microsecond=0)
                    delivery.status = "acknowledged"
                    delivery.ack_signed_by = signer
                    delivery_signed_off(session, delivery_id, department, delivery.acknowledged_at)
                record_event(
                    session, "acknowledged", department, delivery_id,
                    f"{found.name}" + (f", signed by {signer}" if signer else ", unsigned")
                    + ("" if first else f" (again; first acknowledged {delivery.acknowledged_at})"),
                )
                session.flush()
                ack_id = ack.id
            else:
                ack_id = repeated
        self._archive(found, "processed", signed, ack_id)
        log.info("delivery %s acknowledged by %s (%s)", delivery_id, department, mask_file_name(found.name))
        return AckOutcome(department, found.name, "accepted", delivery_id)

    def _refuse(self, found: FoundFile, sha256: str, refused: Refused, signed: bool) -> AckOutcome:
        department = found.department
        with session_scope(self.router.engine) as session:
            ack = Acknowledgement(
                department=department, file_name=found.name, delivery_id=refused.delivery_id, sha256=sha256,
                status="refused", reason=refused.reason, received_at=now_utc(),
            )
            session.add(ack)
            record_event(session, "ack_refused", department, refused.delivery_id, refused.reason)
            session.flush()
            ack_id = ack.id
        report = self.settings.staging_dir / f"ack-{uuid.uuid4().hex}.errors.csv"
        try:
            error = RowError(
                exchange_id=0, row_number=0, field="(file)", column_name="", value_masked="", code="ack_refused",
                reason_zh="回执(ACK)未被接受", reason_en=refused.reason,
            )
            write_report(report, [error])
            transport = self.router.gateway.transport_for(department)
            name = self._free_name(found, "rejected", ack_id)
            transport.put(department, "rejected", f"{name}.errors.csv", report)
            self._archive(found, "rejected", signed, ack_id, name)
        finally:
            report.unlink(missing_ok=True)
        log.warning("%s: acknowledgement refused: %s", mask_file_path(found.path), refused.reason)
        return AckOutcome(department, found.name, "refused", refused.delivery_id, refused.reason)

    def _free_name(self, found: FoundFile, folder: str, ack_id: int | None) -> str:
        transport = self.router.gateway.transport_for(found.department)
        if transport.exists(found.department, folder, found.name):
            return f"{found.name[: -len('.json')]}.ack-{ack_id}.json"
        return found.name

    def _archive(self, found: FoundFile, folder: str, signed: bool, ack_id: int | None, name: str | None = None) -> None:
        """Move the ACK (its signature first) out of the inbox."""
        transport = self.router.gateway.transport_for(found.department)
        name = name or self._free_name(found, folder, ack_id)
        if signed and transport.exists(found.department, "inbox", found.name + SIGNATURE):
            transport.archive(
                FoundFile(found.department, found.name + SIGNATURE, found.path + SIGNATURE, 0, 0.0), folder, name + SIGNATURE
            )
        transport.archive(found, folder, name)


__all__ = ["ACK_NAME", "AckOutcome", "Acknowledgements", "is_acknowledgement", "without_acknowledgements"]
