"""Where the gateway's own events open and close obligations: thin functions the
routing, acknowledgement, intake, platform, register and reconciliation code call, each
inside that code's own transaction (or its own, never undoing the caller's work).

| event | obligation | closed by |
|---|---|---|
| a delivery made (routing) | `sign-off` of the recipient | its ACK accepted |
| a department's file processed (exchange) | its `submission` met | - |
| the same file, while the department holds a delivered discrepancy list | `feedback-check` 反馈核查 of the county office, 3 working days | the next reconciliation run (`gateway reconcile run`, the daily job) |
| a platform notice registered (platform) | `update` 信息更新 of the register's keeper, 5 working days | the register folding a record (or a 育龄妇女 row) of the notice's person |
| a department's file of changes to people (births, marriages, deaths, moves …) processed (exchange) | `update` 信息更新 of the register's keeper, 5 working days from its arrival | the register folding the last of its records |
| a platform request or notice about a person of a configured township (platform/forward.py) | `forward` 转送 of the county office, 2 working days from its registration | `FORWARD-<XXBH>.json.gpg` written to the township's outbox |
| a reconciliation item first seen unmatched (reconcile) | `reconcile-evidence` 补报核对 of the rule's `owed_by`, due on the grace end (a fixed date) | its counterpart matched (met or late by the counterpart's arrival); waived when a clerk resolves the discrepancy, or when the record no longer calls for one |

Callers import this module, never the reverse (obligations sits below them).

May import: `gateway.store`, `gateway.obligations`, the top-level modules.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from sqlalchemy.engine import Engine
from sqlalchemy import exists
from sqlmodel import Session, col, select

from gateway import clock
from gateway.obligations.deadlines import Due
from gateway.obligations.service import open_obligation, fulfil, submission_received, waive_open
from gateway.store import session_scope
from gateway.store.models import Exchange, NoticeItem, Record
from gateway.store.obligation_models import Obligation
from gateway.store.reconcile_models import DiscrepancyList
from gateway.store.register_models import RegisterFolded

log = logging.getLogger("gateway")

# Who checks feedback and keeps the register (育龄妇女信息库): the county's population office.
COUNTY_OFFICE = "population-office"
NOTICE_UPDATE = "update:notice:"
CHANGE_UPDATE = "update:exchange:"
# The contracts whose records change a person of the register (gateway/register/build.py
# folds exactly these): a file of them owes the register an update (变动信息 5 个工作日内更新).
REGISTER_CONTRACTS = ("BirthEvent", "DeathEvent", "CremationEvent", "Migration", "ResidencePermit", "MarriageEvent",
                      "AdoptionEvent", "HousingOccupancy", "SchoolEnrolment")


def register_contracts() -> frozenset[str]:
    """The built-in `REGISTER_CONTRACTS` and every registered contract that gives the
    register facts (a plugin's, through `Contract.person_facts`)."""
    from gateway import plugins

    return frozenset(REGISTER_CONTRACTS) | {name for name, model in plugins.contracts().items() if model.gives_person_facts()}
FEEDBACK = "feedback:exchange:"
FORWARD = "forward:"
RECONCILE = "reconcile:"


def delivery_made(session: Session, settings: object, delivery_id: int, recipient: str, rule: str, at: dt.datetime) -> Obligation:
    """A delivery was written to `recipient`'s outbox at `at`: its sign-off (签收) is due
    by `rule` (an agreement's `sign_off_rule`, default `sign_off`: 3 working days)."""
    return open_obligation(
        session, kind="sign-off", party=recipient, subject=f"delivery:{delivery_id}", start=at, rule=rule,
        detail=f"签收 delivery {delivery_id} (ACK-{delivery_id}.json)", settings=settings,
    )


def delivery_signed_off(session: Session, delivery_id: int, department: str, at: dt.datetime | None = None) -> Obligation | None:
    """The recipient's acknowledgement of delivery `delivery_id` was accepted."""
    return fulfil(session, "sign-off", f"delivery:{delivery_id}", at, by=department)


def exchange_committed(engine: Engine, settings: object, exchange_id: int | None) -> None:
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
            _feedback_arrived(session, settings, exchange)
            if contracts & register_contracts():
                _changes_arrived(session, settings, exchange)
    except Exception as exc:  # noqa: BLE001 - obligations must never undo an accepted exchange
        log.error(
            "exchange %s: its submission obligations were not updated (%s); fix and check `gateway obligations list`",
            exchange_id, type(exc).__name__,
        )


def _feedback_arrived(session: Session, settings: object, exchange: Exchange) -> Obligation | None:
    """A file from a department that holds a delivered discrepancy list is its feedback
    (反馈): the county office checks it within 3 working days (rule `department_feedback`)."""
    listed = session.exec(
        select(DiscrepancyList).where(
            DiscrepancyList.department == exchange.department, DiscrepancyList.status == "delivered",
        ).order_by(DiscrepancyList.id.desc())  # type: ignore[union-attr]
    ).first()
    if listed is None or listed.items == 0:  # no list, or the last one said nothing is open
        return None
    return open_obligation(
        session, kind="feedback-check", party=COUNTY_OFFICE, subject=f"{FEEDBACK}{exchange.id}", start=clock.now(),
        detail=f"核查 {exchange.department} 的反馈 (exchange {exchange.id}) against its discrepancy list "
               f"DISCREPANCIES-{listed.id} ({listed.items} open)",
        settings=settings,
    )


def _changes_arrived(session: Session, settings: object, exchange: Exchange) -> Obligation:
    """A file of changes to people (变动信息) was stored: the register is to be updated from it
    within 5 working days of its arrival (rule `update`), due at 24:00 of the last day."""
    return open_obligation(
        session, kind="update", party=COUNTY_OFFICE, subject=f"{CHANGE_UPDATE}{exchange.id}",
        start=clock.now(),  # the business clock: a rehearsal under GATEWAY_NOW dates it as it says
        detail=f"更新人口库: {exchange.department} 的变动信息 (exchange {exchange.id})", settings=settings,
    )


def reconciliation_checked(engine: Engine, started: dt.datetime, by: str = "reconcile") -> int:
    """A reconciliation run that began at `started` checked every department's feedback
    received before it: those `feedback-check` obligations are met (or late). Never raises."""
    try:
        with session_scope(engine) as session:
            rows = session.exec(
                select(Obligation).where(
                    Obligation.kind == "feedback-check", Obligation.status == "open",
                    Obligation.subject.like(f"{FEEDBACK}%"),  # type: ignore[attr-defined]
                )
            ).all()
            closed = 0
            for row in rows:
                if clock.in_china(row.started_at) <= clock.in_china(started):
                    closed += fulfil(session, "feedback-check", row.subject, started, by=by) is not None
            return closed
    except Exception as exc:  # noqa: BLE001 - the reconciliation's own results stand
        log.error("feedback checks not closed after a reconciliation run (%s); see `gateway obligations list`", type(exc).__name__)
        return 0


def notice_registered(session: Session, settings: object, message_id: str, at: dt.datetime) -> Obligation:
    """A platform notice (通报) was registered at `at`: the register (育龄妇女信息库) is to
    be updated within 5 working days ("5個工作日內審核信息、更新…數據庫", rule `update`)."""
    return open_obligation(
        session, kind="update", party=COUNTY_OFFICE, subject=f"{NOTICE_UPDATE}{message_id}", start=at,
        detail=f"更新育龄妇女信息库: notice {message_id} (通报)", settings=settings,
    )


def _notice_person(session: Session, message_id: str) -> str | None:
    from contracts.identity import normalize_id_number

    notice = session.exec(select(NoticeItem).where(NoticeItem.message_id == message_id)).first()
    record = session.get(Record, notice.record_id) if notice is not None else None
    if record is None:
        return None
    number = ((json.loads(record.payload).get("subject") or {}).get("id_number"))
    if not isinstance(number, str) or not number.strip():
        return None
    try:
        return normalize_id_number(number)
    except Exception:  # noqa: BLE001 - pydantic's error for a number that does not check out
        return None


def register_folded(session: Session, touched: set[str], at: dt.datetime | None = None) -> int:
    """The register folded new facts (a feed's record or a 育龄妇女 row) about the persons
    `touched` at `at`: each open update it makes is met (by its due day, late after): a
    notice's about one of them, a file of changes' once all its records are folded; how many."""
    if not touched:
        return 0
    at = at if at is not None else clock.now()
    rows = session.exec(select(Obligation).where(Obligation.kind == "update", Obligation.status == "open")).all()
    folded = exists().where(col(RegisterFolded.kind) == "record", col(RegisterFolded.ref_id) == Record.id)
    closed = 0
    for row in rows:
        if row.subject.startswith(NOTICE_UPDATE):
            made = clock.in_china(row.started_at) <= clock.in_china(at) and (
                _notice_person(session, row.subject.removeprefix(NOTICE_UPDATE)) in touched)
        elif row.subject.startswith(CHANGE_UPDATE):
            exchange_id = int(row.subject.removeprefix(CHANGE_UPDATE))
            made = session.exec(select(Record.id).where(Record.exchange_id == exchange_id, ~folded).limit(1)).first() is None
        else:
            continue
        if made:
            closed += fulfil(session, "update", row.subject, at, by="register") is not None
    return closed


# -- forwarding to the township (转送) --------------------------------------------------------


def forward_opened(session: Session, settings: object, message_id: str, what: str, township: str, at: dt.datetime) -> Obligation:
    """A platform request or notice (`what`: assist-check | notice) registered at `at` is
    about a person of `township` (`town-<code>`): the population office forwards it within
    2 working days (rule `forward_to_town`). Idempotent."""
    label = "协查请求" if what == "assist-check" else "协查通报"
    return open_obligation(
        session, kind="forward", party=COUNTY_OFFICE, subject=f"{FORWARD}{message_id}", start=at,
        detail=f"转送 {label} {message_id} to {township} (FORWARD-{message_id}.json.gpg)", settings=settings,
    )


def forward_sent(session: Session, message_id: str, at: dt.datetime | None = None, by: str | None = None) -> Obligation | None:
    """The request or notice `message_id` was written to its township's outbox."""
    return fulfil(session, "forward", f"{FORWARD}{message_id}", at, by=by)


# -- reconciliation items (补报核对) ----------------------------------------------------------


def reconcile_subject(rule: str, item_id: int) -> str:
    """The obligation's subject of reconciliation item `item_id`: never the identifier itself."""
    return f"{RECONCILE}{rule}:item:{item_id}"


def reconcile_item_seen(session: Session, *, rule: str, item_id: int, owed_by: str, at: dt.datetime, grace_end: dt.date,
                        detail: str) -> Obligation:
    """A reconciliation run first saw item `item_id` of `rule` without its counterpart: `owed_by`
    owes the counterpart (补报) by `grace_end`, a fixed date (never rolled). Idempotent.
    `detail` must hold no personal data."""
    return open_obligation(
        session, kind="reconcile-evidence", party=owed_by, subject=reconcile_subject(rule, item_id), start=at,
        due=Due("fixed:grace-end", clock.in_china(at).date(), grace_end), detail=detail,
    )


def reconcile_item_matched(session: Session, rule: str, item_id: int, at: dt.datetime, by: str | None = None) -> Obligation | None:
    """The counterpart of item `item_id` arrived at `at`: met by the grace end's 24:00, late after."""
    return fulfil(session, "reconcile-evidence", reconcile_subject(rule, item_id), at, by=by)


def reconcile_item_resolved(session: Session, rule: str, item_id: int, by: str) -> Obligation | None:
    """A clerk resolved the item's discrepancy by hand: nothing is owed any more (waived, counted in no rate)."""
    return waive_open(session, "reconcile-evidence", reconcile_subject(rule, item_id), "resolved by clerk", by)


def reconcile_item_withdrawn(session: Session, rule: str, item_id: int) -> Obligation | None:
    """The record no longer calls for a counterpart (corrected, moved out, gone): waived."""
    return waive_open(session, "reconcile-evidence", reconcile_subject(rule, item_id),
                      "withdrawn: the record no longer calls for a counterpart", "reconcile")
