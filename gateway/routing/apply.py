"""Applying an agreement to the past (协议补发): the accepted records of exchanges received
in a date range, routed under one new or changed agreement, once.

Live routing assigns an exchange to deliveries once, when it is accepted, under the
agreements then in force; an agreement added later never sees it, and sending the file
again stores nothing (every record is a duplicate). `apply_agreement` looks at the
exchanges received from `since` to `until` (China dates, both included) and routes to the
agreement's deliveries, through the Router's own `_open_delivery` and `deliver_due`, each
exchange that holds a record the recipient has not received under that agreement yet.
What the delivery then carries is decided by the Router as for any delivery: the
agreement's senders, own-records rule, filters, township scope and fields, and what
`deliveryrecord` says went out before (a version the recipient has is never sent again).
So a second apply finds nothing new and delivers nothing, and says so.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlmodel import Session, select

from gateway import clock
from gateway.errors import ConfigError, GatewayError, UnknownName
from gateway.store import Exchange, session_scope
from gateway.store.audit import now_utc, record_event
from gateway.store.models import Delivery, DeliveryExchange, DeliveryRecord

if TYPE_CHECKING:
    from gateway.routing.agreements import CompiledAgreement
    from gateway.routing.delivery import DeliveryOutcome, Router

UNSENT = ("open", "held", "waiting")  # a delivery that has not taken its records yet


@dataclass
class ApplyReport:
    """What one `gateway agreements apply` did (counts of records unless named exchanges)."""

    agreement: str
    recipient: str
    since: dt.date
    until: dt.date
    exchanges: int = 0
    records: int = 0
    to_send: int = 0
    """records not yet received under the agreement, admitted by it: routed now"""
    delivered: int = 0
    """of those, carried by a delivery already prepared or sent"""
    already: int = 0
    """received under this agreement before (the same or a later version)"""
    pending: int = 0
    """in a delivery of this agreement not yet prepared (a batch still open, a held key)"""
    left_out_senders: int = 0
    """from exchanges of a department or adapter the agreement does not take from (or its own)"""
    left_out_filters: int = 0
    """not admitted by the agreement's filters or township scope"""
    deliveries: list[int] = field(default_factory=list)
    outcomes: list[DeliveryOutcome] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        """Routed now but not yet prepared: held for a key, waiting for an earlier delivery,
        or in a daily or monthly batch sent once its day or month is over."""
        return self.to_send - self.delivered

    def summary(self) -> str:
        """One line for the audit trail (counts only: nothing personal)."""
        return (
            f"agreement {self.agreement} applied to exchanges received {self.since}..{self.until}: "
            f"{self.exchanges} exchange(s), {self.records} record(s) looked at; {self.to_send} routed "
            f"({self.delivered} delivered, {self.waiting} waiting), {self.already} delivered before, "
            f"{self.pending} already waiting, {self.left_out_senders} left out by senders, "
            f"{self.left_out_filters} left out by filters; deliveries {', '.join(map(str, self.deliveries)) or 'none'}"
        )


def apply_agreement(
    router: Router, name: str, since: dt.date, until: dt.date | None = None, operator: str | None = None
) -> ApplyReport:
    """Route the stored records of exchanges received from `since` to `until` (default: the
    business date today) under agreement `name`, once; audited. Raises GatewayError when
    the agreements have errors or `name` is none of them."""
    until = until or clock.today()
    if since > until:
        raise GatewayError(f"--since {since} 晚于 --until {until} / --since {since} is after --until {until}")
    agreements = router._usable_agreements()
    if agreements is None:
        raise ConfigError(
            "共享协议有错误，未补发任何记录；请先运行 `gateway agreements check` / the sharing agreements have errors: "
            "nothing is applied until they are fixed (`gateway agreements check`)"
        )
    agreement = agreements.by_name(name)
    if agreement is None:
        raise UnknownName("agreement", name, [a.name for a in agreements.agreements])
    # Exchanges not routed yet go the live way first, under every agreement (this one too).
    router.route_pending(agreements)
    report = ApplyReport(name, agreement.recipient, since, until)
    start = clock.start_of_day(since).astimezone(dt.UTC)
    end = clock.start_of_day(until + dt.timedelta(days=1)).astimezone(dt.UTC)
    now = now_utc()
    with session_scope(router.engine) as session:
        exchanges = session.exec(
            select(Exchange.id, Exchange.department, Exchange.adapter)
            .where(
                Exchange.status == "processed", Exchange.accepted > 0,
                Exchange.received_at >= start, Exchange.received_at < end,
            )
            .order_by(Exchange.id)  # type: ignore[arg-type]
        ).all()
        for exchange_id, department, adapter in exchanges:
            report.exchanges += 1
            for contract in agreement.agreement.contracts:
                if agreement.covers(contract) and _look_at(session, report, agreement, int(exchange_id), contract, department, adapter):  # type: ignore[arg-type]
                    delivery = router._open_delivery(session, agreement, contract, int(exchange_id), now)  # type: ignore[arg-type]
                    assert delivery.id is not None  # flushed
                    session.add(DeliveryExchange(delivery_id=delivery.id, exchange_id=int(exchange_id)))  # type: ignore[arg-type]
                    if delivery.id not in report.deliveries:
                        report.deliveries.append(delivery.id)
    if report.deliveries:
        report.outcomes = router.deliver_due(agreements, only=report.deliveries)
        with Session(router.engine) as session:
            carried = session.exec(
                select(func.coalesce(func.sum(Delivery.records), 0)).where(
                    Delivery.id.in_(report.deliveries),  # type: ignore[union-attr]
                    Delivery.status.in_(("prepared", "delivered", "acknowledged")),  # type: ignore[attr-defined]
                )
            ).one()
        report.delivered = int(carried)
    # Audited once its outcome is known (each delivery has its own events too).
    with session_scope(router.engine) as session:
        who = operator or getpass.getuser()
        record_event(session, "agreement_applied", agreement.recipient, None, f"{report.summary()}, by {who}")
    return report


def _look_at(
    session: Session, report: ApplyReport, agreement: CompiledAgreement, exchange_id: int, contract: str,
    department: str, adapter: str | None,
) -> bool:
    """Count one exchange's records of one contract; True when any is still to be sent."""
    from gateway.routing.delivery import _record_pages

    pending = session.exec(
        select(func.count())
        .select_from(DeliveryExchange)
        .join(Delivery, Delivery.id == DeliveryExchange.delivery_id)  # type: ignore[arg-type]
        .where(
            DeliveryExchange.exchange_id == exchange_id, Delivery.agreement == agreement.name,
            Delivery.contract == contract, Delivery.status.in_(UNSENT),  # type: ignore[attr-defined]
        )
    ).one()
    takes = agreement.takes_from(department, adapter)
    found = False
    for page in _record_pages(session, [exchange_id], contract):
        report.records += len(page)
        if not takes:
            report.left_out_senders += len(page)
            continue
        if pending:
            report.pending += len(page)  # the Router takes them when that delivery is prepared
            continue
        sent = _sent_versions(session, agreement.name, contract, [r.business_key for r in page])
        for record in page:
            if sent.get(record.business_key, 0) >= record.version:
                report.already += 1
            elif not agreement.admits(contract, json.loads(record.payload)):
                report.left_out_filters += 1
            else:
                report.to_send += 1
                found = True
    return found


def _sent_versions(session: Session, agreement: str, contract: str, keys: list[str]) -> dict[str, int]:
    """The latest version of each key this agreement has sent (prepared or delivered)."""
    found: dict[str, int] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), 500):
        rows = session.exec(
            select(DeliveryRecord.business_key, func.max(DeliveryRecord.version))
            .join(Delivery, Delivery.id == DeliveryRecord.delivery_id)  # type: ignore[arg-type]
            .where(
                DeliveryRecord.agreement == agreement, DeliveryRecord.contract == contract,
                DeliveryRecord.business_key.in_(unique[start : start + 500]),  # type: ignore[attr-defined]
                DeliveryRecord.change != "withdrawal",
                Delivery.status.in_(("prepared", "delivered", "acknowledged")),  # type: ignore[attr-defined]
            )
            .group_by(DeliveryRecord.business_key)
        ).all()
        found.update({key: int(version) for key, version in rows})
    return found


__all__ = ["ApplyReport", "apply_agreement"]
