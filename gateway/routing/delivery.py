"""Routing and delivery: each accepted exchange's records go, minimized, encrypted and
signed, to every department a sharing agreement entitles.

1. **Route** (right after an exchange commits, and on every pass for any exchange not yet
   routed): the exchange is assigned to one delivery per (agreement, contract) that
   covers its records: its own delivery (`immediate`), or the open batch of the day or
   month. Cheap: no record is read. Exchanges are routed in id order, once
   (`routedexchange`).
2. **Prepare** (when the delivery is due): the recipient's registered keys are checked
   (none, expired, revoked, unable to encrypt: the delivery is *held* with the reason);
   the agreement's filters and fields are applied to every record; the file is written
   (CSV or JSON Lines), encrypted to the recipient's keys and signed by the gateway's key
   in one OpenPGP message, and kept in HOME/deliveries/; in one transaction the
   delivery becomes `prepared` with the file's sha256 and a `deliveryrecord` row per
   record version carried.
3. **Send**: the prepared file is written to the recipient's outbox through its
   transport as `DELIVERY-<id>.<csv|jsonl>.gpg`; the delivery becomes `delivered`. A
   full or unwritable outbox leaves it `prepared` with the reason; the same file is sent
   again on the next pass. The accepted exchange is never touched.

Corrections: a record version > 1 is sent as a `correction` to whoever received an
earlier version under the same agreement; a version whose visible fields did not change
is not sent; a version the agreement no longer admits is sent as a `withdrawal` (its
reference only). Deliveries of one agreement and contract go out in id order, so a
correction never overtakes the record it corrects.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import socket
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypedDict, cast

from sqlalchemy import delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from contracts import canonical_json

from gateway import clock
from gateway.store.audit import now_utc, record_event
from gateway.errors import ConfigError, GatewayError, TransportError
from gateway.masking import mask_value
from gateway.plugins import contract as registered_contract
from gateway.receipts.keys import DepartmentKeys
from gateway.store import Exchange, Record, session_scope
from gateway.store.models import Delivery, DeliveryExchange, DeliveryRecord, RoutedExchange
from gateway.routing.agreements import AgreementSet, CompiledAgreement, load_agreements
from gateway.routing.minimize import cell, contract_fields, projector

if TYPE_CHECKING:
    from sqlalchemy import Engine, Row

    from gateway.config import Settings
    from gateway.routing.acks import AckOutcome
    from gateway.routing.minimize import FieldInfo
    from gateway.services import GatewayServices

log = logging.getLogger("gateway")

CST = dt.timezone(dt.timedelta(hours=8), "CST")
LEASE = dt.timedelta(minutes=10)
PAGE = 1000
DUE = ("open", "held", "waiting", "prepared")
SENT = ("delivered", "acknowledged")
CHANGE_LABELS = {"new": "新增", "correction": "更正", "withdrawal": "撤回"}
META_HEADERS = ["记录号", "版本", "变更"]
EXTENSIONS = {"csv-gb18030": "csv", "csv-utf8": "csv", "jsonl": "jsonl"}
LEFT_OUT = "未能落到村（居）"  # a township delivery's note on records it left out, kept once delivered
_EMPTY_SHA = hashlib.sha256(b"{}").hexdigest()


def safe_error(exc: BaseException) -> str:
    """An exception as one line for logs and reasons, with anything ID-shaped masked
    (database errors can quote the statement's parameters)."""
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {mask_value(text[:300], None)}" if text else type(exc).__name__


def log_failure(message: str, exc: BaseException) -> None:
    """Log a failure with its traceback's frames but never its values."""
    frames = "".join(traceback.format_tb(exc.__traceback__)[-6:])
    log.error("%s: %s\n%s", message, safe_error(exc), frames.rstrip())


def batch_of(schedule: str, exchange_id: int, now: dt.datetime) -> tuple[str, dt.datetime]:
    """The batch key of a delivery and when it is due (UTC)."""
    if schedule == "immediate":
        return f"exchange:{exchange_id}", now
    local = now.astimezone(CST)
    if schedule == "daily":
        end = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), CST)
        key = f"daily:{local.date().isoformat()}"
    else:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = dt.datetime(year, month, 1, tzinfo=CST)
        key = f"monthly:{local.year:04d}-{local.month:02d}"
    return key, end.astimezone(dt.UTC)


@dataclass
class KeyCheck:
    """The recipient's keys that can encrypt now, or why none can."""

    usable: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class DeliveryOutcome:
    delivery_id: int
    recipient: str
    status: str
    file_name: str | None = None
    records: int = 0
    reason: str | None = None


@dataclass
class PassReport:
    routed: list[int] = field(default_factory=list)
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    acknowledgements: list[AckOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Router:
    """The routing of one gateway (see the module docstring)."""

    def __init__(self, gateway: GatewayServices):
        self.gateway = gateway
        self.keys = DepartmentKeys(gateway.settings.keys_dir)
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._agreements: tuple[tuple[object, ...] | None, AgreementSet] | None = None
        self._reported: str | None = None
        self._held: dict[str, str] = {}  # recipient -> the reason its deliveries were last held for
        from gateway.routing.acks import Acknowledgements

        self.acks = Acknowledgements(self)

    @property
    def settings(self) -> Settings:
        return self.gateway.settings

    @property
    def engine(self) -> Engine:
        return self.gateway.engine

    @property
    def folder(self) -> Path:
        """HOME/deliveries: encrypted files prepared and not yet in the recipient's outbox."""
        path = self.settings.home / "deliveries"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    # -- agreements -------------------------------------------------------------------

    def agreements(self) -> AgreementSet:
        """The agreements in force, read again when gateway.toml's list or the file changed."""
        from gateway.routing.agreements import agreements_path

        path = agreements_path(self.settings)
        stamp: tuple[object, ...] | None
        try:
            info = path.stat() if path is not None else None
            stamp = (json.dumps(self.settings.agreements, default=str), info and (info.st_mtime_ns, info.st_size))
            divisions = self.settings.home / "divisions.csv"  # the township scope places records with it
            if divisions.exists():
                stat = divisions.stat()
                stamp = (*stamp, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if self._agreements is None or stamp is None or self._agreements[0] != stamp:
            self._agreements = (stamp, load_agreements(self.settings, self._adapters()))
        return self._agreements[1]

    def _adapters(self) -> dict[str, str] | None:
        """This gateway's adapters (name -> department): the senders an agreement may name."""
        plugins = getattr(self.gateway, "plugins", None)  # a Gateway has them; a bare GatewayServices may not
        if plugins is None:
            return None
        return {name: info.department for name, info in plugins.adapters().items()}

    def _usable_agreements(self) -> AgreementSet | None:
        """The agreements, or None (logged once per distinct problem) while any is wrong:
        nothing is routed or prepared until they are fixed, so nothing is routed under a
        half-read agreement; exchanges wait and are routed afterwards."""
        try:
            agreements = self.agreements()
            problems = [str(p) for p in agreements.errors]
        except ConfigError as exc:
            problems = [str(exc)]
            agreements = None
        if problems:
            text = "; ".join(problems)
            if text != self._reported:
                log.error(
                    "sharing agreements have errors; nothing is routed until they are fixed (`gateway agreements check`): %s",
                    text,
                )
                self._reported = text
            return None
        self._reported = None
        return agreements

    # -- entry points: never raise --------------------------------------------------------

    def exchange_committed(self, exchange_id: int | None) -> list[DeliveryOutcome]:
        """Route a just-committed exchange (and any earlier one left unrouted) and send
        what is due now. Never raises: the exchange is accepted whatever happens here."""
        try:
            agreements = self._usable_agreements()
            if agreements is None or not agreements.agreements:
                return []
            touched = self.route_pending(agreements)
            if not touched:
                return []
            return self.deliver_due(agreements, only=touched)
        except Exception as exc:  # noqa: BLE001 - routing must never undo an accepted exchange
            log_failure(f"exchange {exchange_id}: routing failed; retried on the next pass", exc)
            return []

    def run_pass(self) -> PassReport:
        """One routing pass: route what is unrouted, take acknowledgements, send what is
        due (held deliveries are tried again). Never raises."""
        report = PassReport()
        agreements = None
        try:
            agreements = self._usable_agreements()
        except Exception as exc:  # noqa: BLE001
            log_failure("reading the sharing agreements failed", exc)
        if agreements is not None:
            try:
                report.routed = self.route_pending(agreements)
            except Exception as exc:  # noqa: BLE001
                log_failure("routing failed; retried on the next pass", exc)
                report.problems.append(safe_error(exc))
        try:
            report.acknowledgements = self.acks.collect(agreements)
        except Exception as exc:  # noqa: BLE001
            log_failure("taking acknowledgements failed; retried on the next pass", exc)
            report.problems.append(safe_error(exc))
        try:
            report.deliveries = self.deliver_due(agreements)
        except Exception as exc:  # noqa: BLE001
            log_failure("delivering failed; retried on the next pass", exc)
            report.problems.append(safe_error(exc))
        return report

    # -- 1. route -----------------------------------------------------------------------

    def route_pending(self, agreements: AgreementSet | None = None) -> list[int]:
        """Route every accepted exchange not routed yet, in id order; return the deliveries touched."""
        agreements = agreements or self._usable_agreements()
        if agreements is None:
            return []
        with Session(self.engine) as session:
            pending = session.exec(
                select(Exchange.id)
                .outerjoin(RoutedExchange, RoutedExchange.exchange_id == Exchange.id)  # type: ignore[arg-type]
                .where(Exchange.status == "processed", Exchange.accepted > 0, RoutedExchange.exchange_id.is_(None))  # type: ignore[attr-defined]
                .order_by(Exchange.id)  # type: ignore[arg-type]
            ).all()
        touched: list[int] = []
        for exchange_id in pending:
            touched += self.route(int(exchange_id), agreements)  # type: ignore[arg-type]  # SQLModel: the key is int | None
        return touched

    def route(self, exchange_id: int, agreements: AgreementSet) -> list[int]:
        """Assign one exchange to its deliveries (once); return their ids."""
        now = now_utc()
        try:
            with session_scope(self.engine) as session:
                if session.get(RoutedExchange, exchange_id) is not None:
                    return []
                exchange = session.get(Exchange, exchange_id)
                assert exchange is not None
                contracts = session.exec(
                    select(Record.contract).where(Record.exchange_id == exchange_id).distinct()
                ).all()
                touched: list[int] = []
                for contract in sorted(contracts):
                    for agreement in agreements.covering(contract):
                        if not agreement.takes_from(exchange.department, exchange.adapter):
                            continue  # not one of its senders, or the recipient's own records
                        delivery = self._open_delivery(session, agreement, contract, exchange_id, now)
                        assert delivery.id is not None  # flushed
                        session.add(DeliveryExchange(delivery_id=delivery.id, exchange_id=exchange_id))
                        touched.append(delivery.id or 0)
                session.add(RoutedExchange(exchange_id=exchange_id, routed_at=now, deliveries=len(touched)))
        except IntegrityError:
            log.info("exchange %s was routed by another process", exchange_id)
            return []
        if touched:
            log.info("exchange %s routed to %d deliveries: %s", exchange_id, len(touched), ", ".join(map(str, touched)))
        return touched

    def _open_delivery(
        self, session: Session, agreement: CompiledAgreement, contract: str, exchange_id: int, now: dt.datetime
    ) -> Delivery:
        batch_key, due = batch_of(agreement.agreement.schedule, exchange_id, now)
        found = session.exec(
            select(Delivery)
            .where(
                Delivery.agreement == agreement.name,
                Delivery.contract == contract,
                Delivery.batch_key == batch_key,
                Delivery.status == "open",
            )
            .order_by(Delivery.id)  # type: ignore[arg-type]
        ).first()
        if found is not None:
            return found
        delivery = Delivery(
            recipient=agreement.recipient,
            agreement=agreement.name,
            contract=contract,
            schedule=agreement.agreement.schedule,
            batch_key=batch_key,
            format=agreement.agreement.format,
            status="open",
            created_at=now,
            due_at=due,
        )
        session.add(delivery)
        session.flush()
        return delivery

    # -- 2 and 3. prepare and send --------------------------------------------------------

    def deliver_due(self, agreements: AgreementSet | None = None, only: list[int] | None = None) -> list[DeliveryOutcome]:
        """Prepare and send every due delivery (or only those listed), in id order.
        Without usable agreements, only files already prepared are sent."""
        now = now_utc()
        query = select(Delivery.id, Delivery.recipient, Delivery.status, Delivery.agreement, Delivery.contract).where(  # type: ignore[call-overload]
            Delivery.status.in_(DUE), Delivery.due_at <= now  # type: ignore[attr-defined]
        )
        if only is not None:
            query = query.where(Delivery.id.in_(only))  # type: ignore[union-attr]
        if agreements is None:
            query = query.where(Delivery.status == "prepared")
        with Session(self.engine) as session:
            rows = session.exec(query.order_by(Delivery.id)).all()
        keys: dict[str, KeyCheck] = {}
        outcomes = []
        due = []
        for i, recipient, status, name, contract in rows:
            agreement = agreements.by_name(name) if agreements is not None else None
            if status != "prepared" and (agreement is None or not agreement.covers(contract) or agreement.recipient != recipient):
                outcomes.append(
                    self._set(int(i), "cancelled", f"agreement {name!r} no longer gives {recipient} {contract} records", "cancelled")
                )
                continue
            due.append((int(i), recipient, status))
        # A recipient without a usable key: all its unprepared deliveries are held at once
        # (one statement, not one transaction per delivery on every pass).
        for recipient in sorted({r for _, r, status in due if status != "prepared"}):
            keys[recipient] = self.check_keys(recipient)
            problem = keys[recipient].problem
            if problem is not None:
                ids = [i for i, r, status in due if r == recipient and status != "prepared"]
                outcomes += self._hold(recipient, ids, problem)
        held = {o.delivery_id for o in outcomes}
        for delivery_id, _, _ in due:
            if delivery_id in held:
                continue
            outcome = self.deliver(delivery_id, agreements, keys)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _hold(self, recipient: str, ids: list[int], reason: str) -> list[DeliveryOutcome]:
        """Hold these deliveries with the reason; audit and log only those it is news for."""
        changed: list[int] = []
        with session_scope(self.engine) as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = session.exec(
                    select(Delivery.id, Delivery.status, Delivery.reason).where(
                        Delivery.id.in_(chunk), Delivery.status.in_(("open", "held", "waiting"))  # type: ignore[union-attr,attr-defined]
                    )
                ).all()
                news = [int(i) for i, status, old in rows if (status, old) != ("held", reason)]  # type: ignore[arg-type]
                if news:
                    session.execute(
                        update(Delivery).where(Delivery.id.in_(news)).values(status="held", reason=reason)  # type: ignore[union-attr]
                        .execution_options(synchronize_session=False)
                    )
                    for delivery_id in news:
                        record_event(session, "held", recipient, delivery_id, reason)
                changed += news
        if changed:
            shown = ", ".join(map(str, changed[:10])) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
            # A warning when the recipient's reason is new to this process; more of the same is info.
            level = logging.INFO if self._held.get(recipient) == reason else logging.WARNING
            self._held[recipient] = reason
            log.log(level, "deliveries to %s held (%s): %s", recipient, shown, reason)
        return [DeliveryOutcome(i, recipient, "held", reason=reason) for i in ids]

    def deliver(
        self, delivery_id: int, agreements: AgreementSet | None, keys: dict[str, KeyCheck] | None = None
    ) -> DeliveryOutcome | None:
        """Prepare (if need be) and send one delivery; None when another process holds it."""
        if not self._claim(delivery_id):
            return None
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            if delivery.status != "prepared":
                if agreements is None:
                    return None
                outcome = self._prepare(delivery, agreements, keys if keys is not None else {})
                if outcome is not None:
                    return outcome
                with Session(self.engine, expire_on_commit=False) as session:
                    delivery = session.get(Delivery, delivery_id)
                assert delivery is not None
            return self._send(delivery)
        finally:
            self._release(delivery_id)

    def _claim(self, delivery_id: int) -> bool:
        now = now_utc()
        with session_scope(self.engine) as session:
            result = session.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery_id,  # type: ignore[arg-type]
                    Delivery.status.in_(DUE),  # type: ignore[attr-defined]
                    or_(Delivery.lease_until.is_(None), Delivery.lease_until < now, Delivery.lease_owner == self.owner),  # type: ignore[union-attr,operator,arg-type]
                )
                .values(lease_owner=self.owner, lease_until=now + LEASE)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _release(self, delivery_id: int) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.lease_owner == self.owner)  # type: ignore[arg-type]
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    def _set(self, delivery_id: int, status: str, reason: str | None, action: str | None = None) -> DeliveryOutcome:
        """Change a delivery's status; an audit event (and a log line) only when the reason changed."""
        with session_scope(self.engine) as session:
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            changed = (delivery.status, delivery.reason) != (status, reason)
            delivery.status, delivery.reason = status, reason
            if changed and action:
                record_event(session, action, delivery.recipient, delivery_id, reason or "")
                log.warning("delivery %s to %s %s: %s", delivery_id, delivery.recipient, status, reason)
            recipient = delivery.recipient
        return DeliveryOutcome(delivery_id, recipient, status, reason=reason)

    def _prepare(self, delivery: Delivery, agreements: AgreementSet, keys: dict[str, KeyCheck]) -> DeliveryOutcome | None:
        """Check keys and order, then write, encrypt and record the file. None when prepared."""
        delivery_id = delivery.id or 0
        agreement = agreements.by_name(delivery.agreement)
        if agreement is None or not agreement.covers(delivery.contract) or agreement.recipient != delivery.recipient:
            return self._set(
                delivery_id, "cancelled",
                f"agreement {delivery.agreement!r} no longer gives {delivery.recipient} {delivery.contract} records",
                "cancelled",
            )
        if delivery.recipient not in keys:
            keys[delivery.recipient] = self.check_keys(delivery.recipient)
        check = keys[delivery.recipient]
        if check.problem is not None:
            return self._set(delivery_id, "held", check.problem, "held")
        with Session(self.engine) as session:
            earlier = session.exec(
                select(func.min(Delivery.id)).where(
                    Delivery.agreement == delivery.agreement,
                    Delivery.contract == delivery.contract,
                    Delivery.id < delivery_id,  # type: ignore[operator]
                    Delivery.status.in_(DUE),  # type: ignore[attr-defined]
                    Delivery.due_at <= now_utc(),
                )
            ).one()
        if earlier is not None:
            return self._set(delivery_id, "waiting", f"waits for delivery {earlier} of the same agreement to go out first")
        return self._build(delivery, agreement, check.usable)

    def _build(self, delivery: Delivery, agreement: CompiledAgreement, recipients: list[str]) -> DeliveryOutcome | None:
        delivery_id = delivery.id or 0
        extension = EXTENSIONS[delivery.format]
        name = f"DELIVERY-{delivery_id}.{extension}.gpg"
        plain = self.settings.staging_dir / f"delivery-{delivery_id}-{self.owner}.plain"
        target = self.folder / name
        signer = self.gateway.signer
        try:
            with session_scope(self.engine) as session:
                # Anything recorded by an earlier attempt whose file was lost is recorded again.
                session.execute(delete(DeliveryRecord).where(DeliveryRecord.delivery_id == delivery_id))  # type: ignore[arg-type]
                fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    counts = self._write_records(session, delivery, agreement, handle)
                left_out = _left_out(agreement, counts["unplaced"])
                if counts["records"] == 0:
                    row = session.get(Delivery, delivery_id)
                    assert row is not None
                    row.status, row.reason = "empty", "; ".join(
                        filter(None, ["the agreement admits none of these records", left_out])
                    )
                    return DeliveryOutcome(delivery_id, delivery.recipient, "empty", reason=row.reason)
                result = signer.gpg.encrypt_file(
                    str(plain),
                    recipients,
                    sign=signer.fingerprint,
                    always_trust=True,  # the recipients are pinned by full fingerprint in the key registry
                    passphrase=signer.passphrase,
                    armor=False,
                    output=str(target),
                    extra_args=["--digest-algo", "SHA256"],
                )
                if not result.ok:
                    lines = (result.stderr or "").strip().splitlines()
                    detail = f"{getattr(result, 'status', None) or 'failed'}: {lines[-1] if lines else 'no output'}"
                    raise GatewayError(
                        f"gpg could not encrypt and sign delivery {delivery_id} ({detail}). "
                        "Check GATEWAY_KEY_PASSPHRASE and the keyring in HOME/gnupg"
                    )
                digest, size = _sha256_file(target)
                row = session.get(Delivery, delivery_id)
                assert row is not None
                row.status, row.reason = "prepared", left_out
                row.file_name, row.sha256, row.size = name, digest, size
                row.records, row.corrections, row.withdrawals = counts["records"], counts["correction"], counts["withdrawal"]
                row.encrypted_to, row.signing_key = ",".join(recipients), signer.fingerprint
                row.prepared_at = now_utc()
        finally:
            plain.unlink(missing_ok=True)
        log.info(
            "delivery %s to %s prepared: %s, %d records (%d corrections, %d withdrawals)",
            delivery_id, delivery.recipient, name, counts["records"], counts["correction"], counts["withdrawal"],
        )
        if left_out:
            log.info("delivery %s to %s: %s", delivery_id, delivery.recipient, left_out)
        return None

    def _write_records(self, session: Session, delivery: Delivery, agreement: CompiledAgreement, handle: BinaryIO) -> dict[str, int]:
        """Write the minimized records of the delivery and record each one; return counts."""
        contract = delivery.contract
        leaves = agreement.columns[contract]
        minimize = projector(leaves)
        described = contract_fields(registered_contract(contract))
        infos = [described.info(path) for path in leaves]
        writer = _Writer(delivery.format, handle, META_HEADERS + [info.label for info in infos], contract)
        # The senders are checked again here: the agreement may have changed since routing.
        exchanges = [
            exchange_id
            for exchange_id, department, adapter in session.exec(
                select(DeliveryExchange.exchange_id, Exchange.department, Exchange.adapter)
                .join(Exchange, Exchange.id == DeliveryExchange.exchange_id)  # type: ignore[arg-type]
                .where(DeliveryExchange.delivery_id == delivery.id)
            ).all()
            if agreement.takes_from(department, adapter)
        ]
        counts = {"records": 0, "new": 0, "correction": 0, "withdrawal": 0, "unplaced": 0}
        here: dict[str, tuple[int, str, str, int]] = {}  # key -> (version, change, projection sha, delivery id)
        for page in _record_pages(session, exchanges, contract):
            # Any version may have been sent before: exchanges commit (and take their versions)
            # in another order than their ids when several workers share the database.
            history = self._history(session, delivery, [r.business_key for r in page if r.business_key not in here])
            firsts = _first_ids(session, contract, [r.business_key for r in page if r.version > 1])
            rows = []
            for record in page:
                key = record.business_key
                prior = here.get(key) or history.get(key)
                if prior is not None and prior[0] >= record.version:
                    continue  # an older version than the recipient already has
                payload = json.loads(record.payload)
                admitted = agreement.admits(contract, payload)
                if not admitted and agreement.township is not None and agreement.place(contract, payload).status != "village":
                    counts["unplaced"] += 1  # placed in no village: goes to no township, never guessed
                if admitted:
                    projected = minimize(payload)
                    digest = hashlib.sha256(canonical_json(projected)).hexdigest()
                    if prior is None or prior[1] == "withdrawal":
                        change = "new"
                    elif prior[2] == digest:
                        continue  # nothing the recipient may see has changed
                    else:
                        change = "correction"
                else:
                    if prior is None or prior[1] == "withdrawal":
                        continue
                    change, projected, digest = "withdrawal", {}, _EMPTY_SHA
                ref = f"{contract}-{firsts.get(key, record.id)}"
                writer.write(ref, record.version, change, projected, infos)
                rows.append(
                    {
                        "delivery_id": delivery.id,
                        "record_id": record.id,
                        "agreement": delivery.agreement,
                        "contract": contract,
                        "business_key": key,
                        "version": record.version,
                        "record_hash": record.record_hash,
                        "projection_sha256": digest,
                        "record_ref": ref,
                        "change": change,
                        "corrects_delivery_id": prior[3] if prior is not None and change != "new" else None,
                    }
                )
                here[key] = (record.version, change, digest, delivery.id or 0)
                counts["records"] += 1
                counts[change] += 1
            if rows:
                session.connection().execute(DeliveryRecord.__table__.insert(), rows)  # type: ignore[attr-defined]
        writer.close()
        return counts

    def _history(self, session: Session, delivery: Delivery, keys: list[str]) -> dict[str, tuple[int, str, str, int]]:
        """The latest version of each key this agreement already sent (or is sending)."""
        found: dict[str, tuple[int, str, str, int, int]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = session.exec(
                select(  # type: ignore[call-overload]
                    DeliveryRecord.id, DeliveryRecord.business_key, DeliveryRecord.version, DeliveryRecord.change,
                    DeliveryRecord.projection_sha256, DeliveryRecord.delivery_id,
                )
                .join(Delivery, Delivery.id == DeliveryRecord.delivery_id)
                .where(
                    DeliveryRecord.agreement == delivery.agreement,
                    DeliveryRecord.contract == delivery.contract,
                    DeliveryRecord.business_key.in_(chunk),  # type: ignore[attr-defined]
                    Delivery.status.in_(("prepared", *SENT)),  # type: ignore[attr-defined]
                    Delivery.id != delivery.id,
                )
            ).all()
            for row_id, key, version, change, digest, delivery_id in rows:
                if key not in found or found[key][4] < row_id:
                    found[key] = (version, change, digest, delivery_id, row_id)
        return {key: value[:4] for key, value in found.items()}

    def _send(self, delivery: Delivery) -> DeliveryOutcome:
        delivery_id = delivery.id or 0
        assert delivery.file_name is not None
        source = self.folder / delivery.file_name
        if not source.exists():
            log.warning("delivery %s: prepared file %s is gone; preparing it again", delivery_id, source)
            return self._set(delivery_id, "open", "the prepared file was lost; it is prepared again")
        try:
            self.gateway.transport_for(delivery.recipient).put(delivery.recipient, "outbox", delivery.file_name, source)
        except (TransportError, OSError) as exc:
            reason = f"not written to the outbox of {delivery.recipient} ({safe_error(exc)}); tried again on the next pass"
            with session_scope(self.engine) as session:
                row = session.get(Delivery, delivery_id)
                assert row is not None
                row.attempts += 1
                if row.reason != reason:
                    record_event(session, "delivery_failed", row.recipient, delivery_id, reason)
                row.reason = reason
            log.error("delivery %s to %s: %s", delivery_id, delivery.recipient, reason)
            return DeliveryOutcome(delivery_id, delivery.recipient, "prepared", delivery.file_name, delivery.records, reason)
        now = clock.now().replace(microsecond=0)  # the business clock: the sign-off is due from it
        with session_scope(self.engine) as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            agreement = None
            try:
                agreement = self.agreements().by_name(row.agreement)
            except ConfigError:
                pass
            rule = agreement.agreement.sign_off_rule if agreement is not None else "sign_off"
            row.status, row.reason = "delivered", row.reason if row.reason and LEFT_OUT in row.reason else None
            row.attempts += 1
            row.delivered_at = now
            row.ack_due_at = self._sign_off_due(session, row, rule, now)
            record_event(
                session, "delivered", row.recipient, delivery_id,
                f"{row.file_name}: {row.records} {row.contract} records ({row.corrections} corrections, "
                f"{row.withdrawals} withdrawals) under {row.agreement}, sha256 {row.sha256}",
            )
        source.unlink(missing_ok=True)
        log.info("delivery %s to %s: %s/outbox/%s, %d records", delivery_id, delivery.recipient, delivery.recipient, delivery.file_name, delivery.records)
        return DeliveryOutcome(delivery_id, delivery.recipient, "delivered", delivery.file_name, delivery.records)

    def _sign_off_due(self, session: Session, row: Delivery, rule: str, now: dt.datetime) -> dt.datetime:
        """Open the delivery's sign-off obligation (签收, gateway/obligations/); its end,
        24:00 China time of the due working day, is the delivery's `ack_due_at`."""
        from gateway.obligations.hooks import delivery_made

        try:
            obligation = delivery_made(session, self.settings, row.id or 0, row.recipient, rule, now)
        except GatewayError as exc:  # a rule the agreement names but gateway.toml lacks: the default
            log.error("delivery %s: sign_off_rule %r: %s; the default sign_off rule is used", row.id, rule, exc)
            obligation = delivery_made(session, self.settings, row.id or 0, row.recipient, "sign_off", now)
        return obligation.due_at

    # -- keys -------------------------------------------------------------------------

    def check_keys(self, department: str) -> KeyCheck:
        """Which of the department's registered keys can be encrypted to now."""
        hint = f"import one that can encrypt: `gateway keys import KEY.asc --department {department}`"
        try:
            registered = self.keys.for_department(department)
        except GatewayError as exc:
            return KeyCheck(problem=f"{exc}")
        if not registered:
            return KeyCheck(problem=f"no public key is registered for {department}; {hint}")
        gpg = self.gateway.signer.gpg
        usable, problems = [], []
        for key in registered:
            path = self.keys.folder / key.public_key_file
            try:
                imported = gpg.import_keys(path.read_bytes())
            except OSError as exc:
                problems.append(f"key file {path} cannot be read ({exc.strerror})")
                continue
            if key.fingerprint not in (imported.fingerprints or []):
                problems.append(f"key file {key.public_key_file} does not hold key {key.fingerprint}")
                continue
            listed = gpg.list_keys(keys=[key.fingerprint])
            problem = _encryption_problem(listed[0] if listed else None, key.fingerprint)
            if problem:
                problems.append(problem)
            else:
                usable.append(key.fingerprint)
        if usable:
            for problem in problems:
                log.warning("%s: %s (its other keys are used)", department, problem)
            return KeyCheck(usable)
        return KeyCheck(problem=f"{'; '.join(problems)}; {hint}")


class KeyInfo(TypedDict, total=False):
    """What this module reads of a key gpg lists (python-gnupg's `list_keys()` item)."""

    trust: str
    expires: str
    cap: str
    subkey_info: dict[str, dict[str, str]]


def _encryption_problem(info: KeyInfo | None, fingerprint: str) -> str | None:
    """Why gpg cannot encrypt to this key now, or None."""
    if info is None:
        return f"key {fingerprint} is not in the keyring"
    now = dt.datetime.now(dt.UTC).timestamp()

    def expired(value: str | None) -> str | None:
        if value and str(value).isdigit() and int(value) <= now:
            return dt.datetime.fromtimestamp(int(value), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return None

    if info.get("trust") == "r":
        return f"key {fingerprint} is revoked"
    when = expired(info.get("expires"))
    if when or info.get("trust") == "e":
        return f"key {fingerprint} expired on {when or 'an earlier date'}"
    if "E" in (info.get("cap") or ""):
        return None
    subkeys = [sub for sub in (info.get("subkey_info") or {}).values() if "e" in (sub.get("cap") or sub.get("capability") or "")]
    if not subkeys:
        return f"key {fingerprint} cannot encrypt (it has no encryption subkey)"
    dates = [expired(sub.get("expires")) for sub in subkeys]
    if all(dates):
        return f"the encryption subkey of key {fingerprint} expired on {max(d for d in dates if d)}"
    return f"key {fingerprint} has no usable encryption subkey (revoked or expired)"


def _left_out(agreement: CompiledAgreement, unplaced: int) -> str | None:
    """The note of a township-scoped delivery on the records placed in no village."""
    if agreement.township is None or not unplaced:
        return None
    return (
        f"{unplaced} 条记录{LEFT_OUT}，未发给任何乡镇 / {unplaced} record(s) placed in no village of "
        "divisions.csv were left out (never guessed; `gateway register unmatched`)"
    )


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class _RecordRow(Protocol):
    """A row of `_record_pages`."""

    id: int
    business_key: str
    version: int
    record_hash: str
    payload: str


def _record_pages(session: Session, exchanges: list[int], contract: str) -> Iterator[list[_RecordRow]]:
    """The delivery's records (id, business_key, version, record_hash, payload) in id order,
    a page at a time (no cursor stays open while rows are inserted; no ORM objects)."""
    last = 0
    while exchanges:
        page = cast("list[_RecordRow]", list(
            session.connection().execute(
                select(Record.id, Record.business_key, Record.version, Record.record_hash, Record.payload)  # type: ignore[call-overload]
                .where(Record.exchange_id.in_(exchanges), Record.contract == contract, Record.id > last)  # type: ignore[attr-defined,operator]
                .order_by(Record.id)
                .limit(PAGE)
            ).all()
        ))
        if not page:
            return
        last = page[-1].id
        yield page


def _first_ids(session: Session, contract: str, keys: list[str]) -> dict[str, int]:
    """The id of each key's first stored version: the recipient's stable reference."""
    found: dict[str, int] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), 500):
        rows = session.exec(
            select(Record.business_key, func.min(Record.id))
            .where(Record.contract == contract, Record.business_key.in_(unique[start : start + 500]))  # type: ignore[attr-defined]
            .group_by(Record.business_key)
        ).all()
        found.update({key: int(first) for key, first in rows})  # type: ignore[arg-type]  # SQLModel: the key is int | None
    return found


class _Writer:
    """CSV (GB18030, or UTF-8 with BOM; Chinese headers; formulas neutralized) or JSON Lines."""

    def __init__(self, fmt: str, handle: BinaryIO, headers: list[str], contract: str):
        self.fmt, self.contract = fmt, contract
        if fmt == "jsonl":
            self.text = io.TextIOWrapper(handle, encoding="utf-8", newline="\n")
            self.csv = None
        else:
            encoding = "gb18030" if fmt == "csv-gb18030" else "utf-8-sig"
            self.text = io.TextIOWrapper(handle, encoding=encoding, newline="")
            self.csv = csv.writer(self.text, lineterminator="\r\n")
            self.csv.writerow(headers)

    def write(self, ref: str, version: int, change: str, projected: dict[str, object], infos: list[FieldInfo]) -> None:
        if self.csv is not None:
            cells = [ref, str(version), CHANGE_LABELS[change]]
            cells += [cell(projected, info) for info in infos] if change != "withdrawal" else [""] * len(infos)
            self.csv.writerow(cells)
        else:
            line: dict[str, object] = {"change": change, "contract": self.contract, "record": ref, "version": version}
            if change != "withdrawal":
                line["fields"] = projected
            self.text.write(canonical_json(line).decode("utf-8") + "\n")

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


__all__ = ["CST", "DeliveryOutcome", "KeyCheck", "PassReport", "Router", "batch_of", "safe_error"]
