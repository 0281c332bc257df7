"""Where the gateway's own events open and close obligations: thin functions the
routing, acknowledgement and intake code call, each inside that code's own transaction.

May import: `gateway.store`, `gateway.obligations`, the top-level modules.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway import clock
from gateway.obligations.service import open_obligation, fulfil, submission_received
from gateway.store import session_scope
from gateway.store.models import Exchange, Record
from gateway.store.obligation_models import Obligation

log = logging.getLogger("gateway")


def delivery_made(session: Session, settings: Any, delivery_id: int, recipient: str, rule: str, at: dt.datetime) -> Obligation:
    """A delivery was written to `recipient`'s outbox at `at`: its sign-off (签收) is due
    by `rule` (an agreement's `sign_off_rule`, default `sign_off`: 3 working days)."""
    return open_obligation(
        session, kind="sign-off", party=recipient, subject=f"delivery:{delivery_id}", start=at, rule=rule,
        detail=f"签收 delivery {delivery_id} (ACK-{delivery_id}.json)", settings=settings,
    )


def delivery_signed_off(session: Session, delivery_id: int, department: str, at: dt.datetime | None = None) -> Obligation | None:
    """The recipient's acknowledgement of delivery `delivery_id` was accepted."""
    return fulfil(session, "sign-off", f"delivery:{delivery_id}", at, by=department)


def exchange_committed(engine: Engine, settings: Any, exchange_id: int | None) -> None:
    """A department's file was processed: the submissions it fulfils are met (or late).
    Never raises: the exchange stays accepted whatever happens here."""
    if exchange_id is None:
        return
    try:
        with session_scope(engine) as session:
            exchange = session.get(Exchange, exchange_id)
            if exchange is None:
                return
            contracts = set(session.exec(select(Record.contract).where(Record.exchange_id == exchange_id).distinct()).all())
            submission_received(session, settings, exchange.department, contracts, clock.now(), exchange_id)
    except Exception as exc:  # noqa: BLE001 - obligations must never undo an accepted exchange
        log.error(
            "exchange %s: its submission obligations were not updated (%s); fix and check `gateway obligations list`",
            exchange_id, type(exc).__name__,
        )
